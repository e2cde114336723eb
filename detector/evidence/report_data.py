"""The audit report's figures, computed from the alert records (``detector.evidence.report`` renders them).

Counts per category and per zone, the places where alerts cluster (hotspots, on a local metric map
around the camera or the alerts' centroid), and the map and the per-hour chart laid out for the
report's inline SVG.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from zones.alert import AlertRecord
from zones.categories import CATEGORIES, CATEGORY_ZH

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies and in greyscale print.
CATEGORY_COLOUR: dict[str, str] = {
    "street_vending": "#D55E00",
    "storefront_overflow": "#E69F00",
    "hanging_laundry": "#0072B2",
    "illegal_structure": "#009E73",
    "sidewalk_obstruction": "#CC79A7",
}

PLACE_RADIUS_M = 10.0
"""Alerts within this distance of a place's seed alert count as the same place (top places)."""


def format_time(value: datetime | None) -> dict[str, str] | None:
    if value is None:
        return None
    offset = value.strftime("%z")
    return {
        "datetime": value.strftime("%Y-%m-%d %H:%M:%S"),
        "date": value.strftime("%Y-%m-%d"),
        "time": value.strftime("%H:%M:%S"),
        "tz": f"{offset[:3]}:{offset[3:]}" if offset else "",
    }


def camera_label(camera_id: str, camera_names: Mapping[str, str]) -> str:
    name = camera_names.get(camera_id)
    return f"{name} ({camera_id})" if name and name != camera_id else camera_id


# --- geometry --------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _to_local(lon0: float, lat0: float) -> Transformer:
    """WGS84 → metres east/north of (lon0, lat0) (azimuthal equidistant: distances from the origin are true)."""
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m +no_defs")
    return Transformer.from_crs("EPSG:4326", local, always_xy=True)


def _nice_step(span: float, target: int) -> float:
    raw = max(span, 1e-9) / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude:
            return multiple * magnitude
    return 10 * magnitude


def _ticks(low: float, high: float, target: int = 6) -> list[float]:
    step = _nice_step(high - low, target)
    first = math.ceil(low / step - 1e-9) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(max(count, 0))]


def _count_axis(peak: int, target: int = 5) -> tuple[int, list[int]]:
    """An axis for counts: whole-number steps of 1, 2 or 5 × 10^k, from 0 to a step multiple ≥ peak."""
    peak = max(peak, 1)
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * magnitude
            if peak / step <= target:
                top = math.ceil(peak / step) * step
                return top, list(range(0, top + 1, step))
        magnitude *= 10


def _tick_label(value: float, unit_m: bool) -> str:
    if unit_m:
        return f"{value:g}"
    return f"{value / 1000:g}"


@dataclass
class _Point:
    x: float
    y: float
    r: float
    colour: str
    title: str
    error_r: float


@dataclass
class _Tick:
    pos: float
    label: str


@dataclass
class _Marker:
    x: float
    y: float
    label: str


@dataclass
class MapPlot:
    width: int
    height: int
    left: float
    top: float
    size: float
    points: list[_Point]
    x_ticks: list[_Tick]
    y_ticks: list[_Tick]
    cameras: list[_Marker]
    places: list[_Marker]
    x_label: str
    y_label: str
    origin_note: str


@dataclass
class _Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class HourChart:
    width: int
    height: int
    left: float
    top: float
    plot_w: float
    plot_h: float
    bars: list[_Bar]
    x_ticks: list[_Tick]
    y_ticks: list[_Tick]
    peak_hours: str


@dataclass
class Place:
    rank: int
    lon: float
    lat: float
    count: int
    radius_m: float
    categories: list[tuple[str, str, int]]  # (category, colour, count)
    where: list[str]
    first: dict[str, str] | None
    last: dict[str, str] | None
    x: float = 0.0
    y: float = 0.0
    members: list[int] = field(default_factory=list)


def _local_xy(alerts: Sequence[AlertRecord], origin: tuple[float, float]) -> np.ndarray:
    if not alerts:
        return np.zeros((0, 2))
    lon = np.array([a.location.coordinates[0] for a in alerts], dtype=np.float64)
    lat = np.array([a.location.coordinates[1] for a in alerts], dtype=np.float64)
    x, y = _to_local(*origin).transform(lon, lat)
    return np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])


def cluster_places(xy: np.ndarray, radius_m: float = PLACE_RADIUS_M) -> list[list[int]]:
    """Group points (metres) into places: the point with most neighbours within ``radius_m`` seeds a
    place that takes all its unassigned neighbours, and so on. Largest places first.

    Leader clustering on a k-d tree keeps it O(n log n) for audits with many thousands of alerts,
    where a full linkage matrix would not fit in memory.
    """
    if len(xy) == 0:
        return []
    tree = cKDTree(xy)
    neighbours = tree.query_ball_point(xy, r=radius_m)
    order = sorted(range(len(xy)), key=lambda i: (-len(neighbours[i]), i))
    assigned = np.zeros(len(xy), dtype=bool)
    places: list[list[int]] = []
    for seed in order:
        if assigned[seed]:
            continue
        members = sorted(j for j in neighbours[seed] if not assigned[j])
        assigned[members] = True
        places.append(members)
    places.sort(key=lambda members: (-len(members), members[0]))
    return places


def build_map(
    xy: np.ndarray,
    alerts: Sequence[AlertRecord],
    titles: Sequence[str],
    cameras_xy: Sequence[tuple[str, float, float]],
    places: Sequence[Place],
    origin_note: str,
) -> MapPlot:
    width, height, left, top, size = 600, 560, 70.0, 16.0, 480.0
    # The error circles belong on the map too (up to 100 m, so one uncalibrated camera cannot
    # shrink every calibrated alert to a dot).
    errors = np.array([min(a.location_error_m, 100.0) for a in alerts])
    xs = [*(xy[:, 0] - errors), *(xy[:, 0] + errors), *(c[1] for c in cameras_xy)]
    ys = [*(xy[:, 1] - errors), *(xy[:, 1] + errors), *(c[2] for c in cameras_xy)]
    centre_x = (min(xs) + max(xs)) / 2
    centre_y = (min(ys) + max(ys)) / 2
    # Equal scale on both axes (it is a map), at least 20 m across, 8 % margin.
    half = max(max(xs) - min(xs), max(ys) - min(ys), 20.0) / 2 * 1.08 + 2.0
    step = _nice_step(2 * half, 6)
    low_x = math.floor((centre_x - half) / step) * step
    low_y = math.floor((centre_y - half) / step) * step
    span = max(math.ceil((centre_x + half) / step) * step - low_x, math.ceil((centre_y + half) / step) * step - low_y)
    scale = size / span
    unit_m = span < 5000

    def sx(x: float) -> float:
        return left + (x - low_x) * scale

    def sy(y: float) -> float:
        return top + size - (y - low_y) * scale

    points = [
        _Point(
            x=sx(float(px)),
            y=sy(float(py)),
            r=5.5,
            colour=CATEGORY_COLOUR.get(alert.category, "#555555"),
            title=title,
            error_r=alert.location_error_m * scale,
        )
        for (px, py), alert, title in zip(xy, alerts, titles, strict=True)
    ]
    x_ticks = [_Tick(sx(v), _tick_label(v, unit_m)) for v in _ticks(low_x, low_x + span) if v <= low_x + span]
    y_ticks = [_Tick(sy(v), _tick_label(v, unit_m)) for v in _ticks(low_y, low_y + span) if v <= low_y + span]
    unit = "m" if unit_m else "km"
    return MapPlot(
        width=width,
        height=height,
        left=left,
        top=top,
        size=size,
        points=points,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        cameras=[_Marker(sx(x), sy(y), label) for label, x, y in cameras_xy],
        places=[_Marker(sx(p.x), sy(p.y), f"#{p.rank}") for p in places if p.count > 1],
        x_label=f"east ({unit})",
        y_label=f"north ({unit})",
        origin_note=origin_note,
    )


def build_hours(alerts: Sequence[AlertRecord]) -> HourChart:
    width, height, left, top, plot_w, plot_h = 1200, 230, 44.0, 12.0, 1140.0, 170.0
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for alert in alerts:
        counts[alert.started_at.hour][alert.category] += 1
    totals = [sum(counts[h].values()) for h in range(24)]
    peak = max(totals)
    y_max, y_values = _count_axis(peak)
    slot = plot_w / 24
    bars: list[_Bar] = []
    for hour in range(24):
        base = 0
        for category in CATEGORIES:
            n = counts[hour][category]
            if not n:
                continue
            bar_h = n / y_max * plot_h
            bars.append(
                _Bar(
                    x=left + hour * slot + slot * 0.15,
                    y=top + plot_h - (base + n) / y_max * plot_h,
                    width=slot * 0.7,
                    height=bar_h,
                    colour=CATEGORY_COLOUR[category],
                    title=f"{hour:02d}:00–{hour:02d}:59 · {CATEGORY_ZH[category]} {category}: {n}",
                )
            )
            base += n
    peak_hours = ", ".join(f"{h:02d}:00" for h in range(24) if peak and totals[h] == peak)
    return HourChart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_w=plot_w,
        plot_h=plot_h,
        bars=bars,
        x_ticks=[_Tick(left + h * slot + slot / 2, f"{h:02d}") for h in range(24)],
        y_ticks=[_Tick(top + plot_h - v / y_max * plot_h, f"{v:g}") for v in y_values],
        peak_hours=peak_hours,
    )


# --- totals and places ----------------------------------------------------------------------------


def category_totals(records: Sequence[AlertRecord]) -> list[dict[str, Any]]:
    """Alerts per category (every category, in the canonical order) with its share in per cent."""
    counts = Counter(a.category for a in records)
    return [
        {
            "category": c,
            "zh": CATEGORY_ZH[c],
            "colour": CATEGORY_COLOUR[c],
            "count": counts.get(c, 0),
            "share": (counts.get(c, 0) / len(records) * 100) if records else 0.0,
        }
        for c in CATEGORIES
    ]


def zone_totals(records: Sequence[AlertRecord], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Alerts per camera and zone, the busiest first, with their categories."""
    zone_counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for record in records:
        zone_counts[(record.camera_id, record.zone)][record.category] += 1
    return [
        {
            "camera": camera_label(camera, names),
            "zone": zone,
            "count": sum(per.values()),
            "categories": [(c, CATEGORY_COLOUR[c], CATEGORY_ZH[c], per[c]) for c in CATEGORIES if per[c]],
        }
        for (camera, zone), per in sorted(zone_counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    ]


def map_and_places(
    records: Sequence[AlertRecord],
    titles: Sequence[str],
    names: Mapping[str, str],
    camera_locations: Mapping[str, tuple[float, float]] | None,
) -> tuple[MapPlot, list[Place]]:
    """The places where the (non-empty) ``records`` cluster, largest first, and the map of them.

    The map is drawn relative to the camera when one located camera is audited, else to the alerts'
    centroid; ``titles`` are the points' tooltips, one per record.
    """
    cameras_used = {a.camera_id for a in records}
    places: list[Place] = []
    located = [(cid, loc) for cid, loc in (camera_locations or {}).items() if cid in cameras_used]
    if len(located) == 1:
        origin = located[0][1]
        origin_note = f"relative to camera {camera_label(located[0][0], names)}"
    else:
        origin = (
            float(np.mean([a.location.coordinates[0] for a in records])),
            float(np.mean([a.location.coordinates[1] for a in records])),
        )
        origin_note = f"relative to the centroid of the alerts ({origin[0]:.6f}, {origin[1]:.6f})"
    xy = _local_xy(records, origin)
    for rank, members in enumerate(cluster_places(xy), start=1):
        centre = xy[members].mean(axis=0)
        lon_c = float(np.mean([records[i].location.coordinates[0] for i in members]))
        lat_c = float(np.mean([records[i].location.coordinates[1] for i in members]))
        per = Counter(records[i].category for i in members)
        where = sorted({f"{camera_label(records[i].camera_id, names)} · {records[i].zone}" for i in members})
        times = sorted(records[i].started_at for i in members)
        places.append(
            Place(
                rank=rank,
                lon=lon_c,
                lat=lat_c,
                count=len(members),
                radius_m=float(np.max(np.hypot(*(xy[members] - centre).T))),
                categories=[(c, CATEGORY_COLOUR[c], per[c]) for c in CATEGORIES if per[c]],
                where=where,
                first=format_time(times[0]),
                last=format_time(times[-1]),
                x=float(centre[0]),
                y=float(centre[1]),
                members=members,
            )
        )
    cam_xy: list[tuple[str, float, float]] = []
    if located:
        lon_arr = np.array([loc[0] for _, loc in located])
        lat_arr = np.array([loc[1] for _, loc in located])
        cx, cy = _to_local(*origin).transform(lon_arr, lat_arr)
        cam_xy = [(cid, float(x), float(y)) for (cid, _), x, y in zip(located, cx, cy, strict=True)]
    return build_map(xy, records, titles, cam_xy, places[:10], origin_note), places
