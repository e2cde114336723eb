"""The audit report (DESIGN §3.1): one self-contained ``report.html`` an auditor can open offline.

Everything is inline: CSS, SVG charts, thumbnails as base64 ``data:`` URIs. The only links point to
the evidence files next to the report (relative paths). Every value from the data (camera names are
free text) goes through Jinja2's autoescaping.
"""

from __future__ import annotations

import base64
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import cv2
import jinja2
import numpy as np
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from zones.alert import AlertRecord, EvidenceItem
from zones.categories import CATEGORIES

REPORT_FILE = "report.html"
TEMPLATES_DIR = Path(__file__).with_name("templates")

CATEGORY_ZH: dict[str, str] = {
    "street_vending": "占道经营",
    "storefront_overflow": "出店经营",
    "hanging_laundry": "沿街晾晒",
    "illegal_structure": "乱搭乱建",
}

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies and in greyscale print.
CATEGORY_COLOUR: dict[str, str] = {
    "street_vending": "#D55E00",
    "storefront_overflow": "#E69F00",
    "hanging_laundry": "#0072B2",
    "illegal_structure": "#009E73",
}

PLACE_RADIUS_M = 10.0
"""Alerts within this distance of a place's seed alert count as the same place (top places)."""

_EVIDENCE_LABEL = {
    "snapshot": "snapshot",
    "snapshot_clean": "clean",
    "clip": "clip",
    "snapshot_after": "after",
}


# --- formatting ------------------------------------------------------------------------------------


def format_offset(seconds: float | None) -> str:
    """Video offset as ``mm:ss`` (``h:mm:ss`` from one hour on); an em dash when unknown."""
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _format_time(value: datetime | None) -> dict[str, str] | None:
    if value is None:
        return None
    offset = value.strftime("%z")
    return {
        "datetime": value.strftime("%Y-%m-%d %H:%M:%S"),
        "date": value.strftime("%Y-%m-%d"),
        "time": value.strftime("%H:%M:%S"),
        "tz": f"{offset[:3]}:{offset[3:]}" if offset else "",
    }


def _number(value: Any, digits: int = 0) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


# --- evidence and thumbnails -----------------------------------------------------------------------


def _safe_relative(path: str) -> str | None:
    """A URL-quoted relative href for an evidence file, or None when the path must not become a link
    (absolute, escaping the audit directory, or a URL: the report links nothing outside itself)."""
    if "://" in path or path.startswith(("/", "\\")) or ":" in path.split("/")[0]:
        return None
    pure = PurePosixPath(path)
    if ".." in pure.parts:
        return None
    return quote(pure.as_posix())


def _thumbnail(out_dir: Path, item: EvidenceItem, width: int) -> str | None:
    """A ``data:`` URI of a downscaled JPEG of the snapshot, or None when it cannot be read."""
    if _safe_relative(item.path) is None:
        return None
    try:
        data = (out_dir / item.path).read_bytes()
    except OSError:
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    # libjpeg can decode straight to 1/2, 1/4 or 1/8 size (DCT scaling), many times faster than a
    # full decode: the 1/8 decode is cheap and tells the width, then take the smallest scale that
    # still gives at least the thumbnail width. Matters for audits with thousands of alerts.
    image = cv2.imdecode(buffer, cv2.IMREAD_REDUCED_COLOR_8)
    if image is None:
        return None
    approx_width = image.shape[1] * 8
    for factor, flag in ((4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2), (1, cv2.IMREAD_COLOR)):
        if image.shape[1] >= width:
            break
        if approx_width // factor >= width or factor == 1:
            image = cv2.imdecode(buffer, flag)
            if image is None:
                return None
    height, source_width = image.shape[:2]
    if source_width > width:
        image = cv2.resize(image, (width, max(1, round(height * width / source_width))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _snapshot_item(record: AlertRecord) -> EvidenceItem | None:
    by_kind = {item.kind: item for item in record.evidence}
    return by_kind.get("snapshot") or by_kind.get("snapshot_clean")


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


def _build_map(
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


def _build_hours(alerts: Sequence[AlertRecord]) -> HourChart:
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


# --- the report ------------------------------------------------------------------------------------


def _camera_label(camera_id: str, camera_names: Mapping[str, str]) -> str:
    name = camera_names.get(camera_id)
    return f"{name} ({camera_id})" if name and name != camera_id else camera_id


def _video_entries(videos: Any) -> list[dict[str, Any]]:
    """summary.json ``videos`` holds paths or objects; show both without guessing too much."""
    entries: list[dict[str, Any]] = []
    for video in videos if isinstance(videos, list) else []:
        if isinstance(video, Mapping):
            name = next((str(video[k]) for k in ("video", "path", "uri", "name") if k in video), "")
            details = [
                f"{k}: {v}"
                for k, v in video.items()
                if k not in ("video", "path", "uri", "name") and isinstance(v, str | int | float | bool)
            ]
            entries.append({"name": name or "(unnamed)", "details": ", ".join(details)})
        else:
            entries.append({"name": str(video), "details": ""})
    return entries


def _error_entries(errors: Any) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, Mapping):
            read, expected = error.get("frames_read"), error.get("frames_expected")
            extra = {k: v for k, v in error.items() if k not in ("video", "error", "frames_read", "frames_expected")}
            entries.append(
                {
                    "video": str(error.get("video", "")),
                    "error": str(error.get("error", "")),
                    "frames": f"{_number(read)} of {_number(expected)}" if read is not None else "—",
                    "details": ", ".join(f"{k}: {v}" for k, v in extra.items()),
                }
            )
        else:
            entries.append({"video": "", "error": str(error), "frames": "—", "details": ""})
    return entries


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every value is escaped: camera names, zone names, paths are user text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(
    out_dir: Path,
    alerts: Iterable[AlertRecord],
    summary: Mapping[str, Any],
    *,
    camera_names: Mapping[str, str] | None = None,
    camera_locations: Mapping[str, tuple[float, float]] | None = None,
    thumbnail_width: int = 240,
    max_thumbnails: int = 2000,
) -> str:
    """The report's HTML text (``write_report`` writes it); evidence paths are read relative to ``out_dir``."""
    out_dir = Path(out_dir)
    names = dict(camera_names or {})
    records = sorted(alerts, key=lambda a: (a.started_at, a.camera_id, str(a.id)))
    cameras_used = sorted({a.camera_id for a in records})

    snapshots = [_snapshot_item(record) for record in records]

    def thumbnail_of(item: EvidenceItem | None) -> str | None:
        return _thumbnail(out_dir, item, thumbnail_width) if item is not None else None

    # OpenCV releases the GIL while decoding, so threads use every core for the thumbnails.
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        thumbs = list(pool.map(thumbnail_of, snapshots[: max(0, max_thumbnails)]))
    thumbs += [None] * (len(records) - len(thumbs))
    rows: list[dict[str, Any]] = []
    for number, (record, snapshot, thumb) in enumerate(zip(records, snapshots, thumbs, strict=True), start=1):
        offsets = record.video_offset_s
        lon, lat = record.location.coordinates
        rows.append(
            {
                "number": number,
                "id": str(record.id),
                "short_id": str(record.id)[:8],
                "category": record.category,
                "category_zh": CATEGORY_ZH.get(record.category, ""),
                "colour": CATEGORY_COLOUR.get(record.category, "#555555"),
                "object_class": record.object_class,
                "camera": _camera_label(record.camera_id, names),
                "camera_name": names.get(record.camera_id) or record.camera_id,
                "camera_id": record.camera_id,
                "zone": record.zone,
                "started": _format_time(record.started_at),
                "alerted": _format_time(record.alerted_at),
                "ended": _format_time(record.ended_at),
                "open": record.event == "violation.opened",
                "offsets": None
                if offsets is None
                else {
                    "start": format_offset(offsets.start),
                    "alert": format_offset(offsets.alert),
                    "end": format_offset(offsets.end),
                },
                "source": f"{os.path.basename(record.source.uri) or record.source.uri} · frame {record.source.frame}",
                "source_full": f"{record.source.uri} frame {record.source.frame}",
                "confidence": f"{record.confidence * 100:.0f} %",
                "lon": f"{lon:.6f}",
                "lat": f"{lat:.6f}",
                "error_m": f"{record.location_error_m:.1f}",
                "grid": record.grid,
                "thumb": thumb,
                "thumb_href": _safe_relative(snapshot.path) if snapshot else None,
                "thumb_state": "no image" if snapshot is None else ("image not shown" if thumb is None else ""),
                "evidence": [
                    {
                        "label": _EVIDENCE_LABEL.get(item.kind, item.kind),
                        "href": _safe_relative(item.path),
                        "path": item.path,
                        "sha256": item.sha256,
                    }
                    for item in record.evidence
                ],
            }
        )
    if max_thumbnails < len(records):
        for row in rows[max_thumbnails:]:
            if row["thumb_state"] == "image not shown":
                row["thumb_state"] = "thumbnail limit"

    counts = Counter(a.category for a in records)
    by_category = [
        {
            "category": c,
            "zh": CATEGORY_ZH[c],
            "colour": CATEGORY_COLOUR[c],
            "count": counts.get(c, 0),
            "share": (counts.get(c, 0) / len(records) * 100) if records else 0.0,
        }
        for c in CATEGORIES
    ]
    zone_counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for record in records:
        zone_counts[(record.camera_id, record.zone)][record.category] += 1
    by_zone = [
        {
            "camera": _camera_label(camera, names),
            "zone": zone,
            "count": sum(per.values()),
            "categories": [(c, CATEGORY_COLOUR[c], CATEGORY_ZH[c], per[c]) for c in CATEGORIES if per[c]],
        }
        for (camera, zone), per in sorted(zone_counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    ]

    map_plot: MapPlot | None = None
    hours: HourChart | None = None
    places: list[Place] = []
    if records:
        located = [(cid, loc) for cid, loc in (camera_locations or {}).items() if cid in cameras_used]
        if len(located) == 1:
            origin = located[0][1]
            origin_note = f"relative to camera {_camera_label(located[0][0], names)}"
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
            where = sorted({f"{_camera_label(records[i].camera_id, names)} · {records[i].zone}" for i in members})
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
                    first=_format_time(times[0]),
                    last=_format_time(times[-1]),
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
        titles = [
            f"{row['category_zh']} {row['category']} · {row['camera']} · {row['zone']} · "
            f"{row['started']['datetime'] if row['started'] else ''} · ±{row['error_m']} m"
            for row in rows
        ]
        map_plot = _build_map(xy, records, titles, cam_xy, places[:10], origin_note)
        hours = _build_hours(records)

    period = None
    if records:
        end_times = [a.ended_at or a.alerted_at for a in records]
        period = {"from": _format_time(records[0].started_at), "to": _format_time(max(end_times))}
    models = sorted({(a.model.name, a.model.sha256[:12]) for a in records})
    videos = _video_entries(summary.get("videos"))
    errors = _error_entries(summary.get("errors"))
    frames_total = summary.get("frames_total")
    frames_analysed = summary.get("frames_analysed")
    stats = [
        ("Violations", str(len(records)), "incidents in alerts.jsonl"),
        ("Videos", str(len(videos)), "files audited"),
        ("Duration", format_duration(summary.get("duration_s")), "h:mm:ss of video"),
        ("Frames", _number(frames_analysed), f"analysed of {_number(frames_total)}"),
        ("Processing", format_duration(summary.get("processing_s")), "h:mm:ss wall time"),
        ("Speed", f"{_number(summary.get('realtime_factor'), 1)} ×", "realtime factor"),
        ("Errors", str(len(errors)), "damaged or unreadable input"),
    ]
    template = _environment().get_template("report.html")
    return template.render(
        rows=rows,
        stats=stats,
        videos=videos,
        errors=errors,
        period=period,
        models=models,
        by_category=by_category,
        by_zone=by_zone,
        map=map_plot,
        hours=hours,
        places=places[:10],
        place_radius_m=PLACE_RADIUS_M,
        cameras=[_camera_label(c, names) for c in cameras_used],
        legend=[(c, CATEGORY_ZH[c], CATEGORY_COLOUR[c]) for c in CATEGORIES],
        thumbnails_capped=max_thumbnails < len(records),
        max_thumbnails=max_thumbnails,
    )


def write_report(
    out_dir: Path,
    alerts: Iterable[AlertRecord],
    summary: Mapping[str, Any],
    *,
    camera_names: Mapping[str, str] | None = None,
    camera_locations: Mapping[str, tuple[float, float]] | None = None,
    thumbnail_width: int = 240,
    max_thumbnails: int = 2000,
) -> Path:
    """Write ``out_dir/report.html`` and return its path.

    ``camera_names`` maps camera ids to their free-text names; ``camera_locations`` maps camera ids to
    ``(lon, lat)``: the map is drawn relative to the camera when one camera is audited (else to the
    alerts' centroid) and marks the cameras. Thumbnails are embedded for the first ``max_thumbnails``
    incidents only, so that an audit of days of footage still gives a report a browser can open.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html = render_report(
        out_dir,
        alerts,
        summary,
        camera_names=camera_names,
        camera_locations=camera_locations,
        thumbnail_width=thumbnail_width,
        max_thumbnails=max_thumbnails,
    )
    path = out_dir / REPORT_FILE
    part = path.with_name(path.name + ".part")
    part.write_text(html, encoding="utf-8")
    os.replace(part, path)
    return path
