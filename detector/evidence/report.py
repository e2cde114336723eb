"""The audit report (DESIGN §3.1): one self-contained ``report.html`` an auditor can open offline.

Everything is inline: CSS, SVG charts, thumbnails as base64 ``data:`` URIs. The only links point to
the evidence files next to the report (relative paths). Every value from the data (camera names are
free text) goes through Jinja2's autoescaping. The figures (totals, places, map, per-hour chart) come
from ``detector.evidence.report_data``; this module adds the per-alert rows and thumbnails and renders
the template.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import cv2
import jinja2
import numpy as np

from detector.evidence.report_data import (
    CATEGORY_COLOUR,
    PLACE_RADIUS_M,
    HourChart,
    MapPlot,
    Place,
    build_hours,
    camera_label,
    category_totals,
    format_time,
    map_and_places,
    zone_totals,
)
from zones.alert import AlertRecord, EvidenceItem
from zones.categories import CATEGORIES, CATEGORY_ZH

REPORT_FILE = "report.html"
TEMPLATES_DIR = Path(__file__).with_name("templates")

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


# --- the report ------------------------------------------------------------------------------------


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
                "camera": camera_label(record.camera_id, names),
                "camera_name": names.get(record.camera_id) or record.camera_id,
                "camera_id": record.camera_id,
                "zone": record.zone,
                "started": format_time(record.started_at),
                "alerted": format_time(record.alerted_at),
                "ended": format_time(record.ended_at),
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

    by_category = category_totals(records)
    by_zone = zone_totals(records, names)

    map_plot: MapPlot | None = None
    hours: HourChart | None = None
    places: list[Place] = []
    if records:
        titles = [
            f"{row['category_zh']} {row['category']} · {row['camera']} · {row['zone']} · "
            f"{row['started']['datetime'] if row['started'] else ''} · ±{row['error_m']} m"
            for row in rows
        ]
        map_plot, places = map_and_places(records, titles, names, camera_locations)
        hours = build_hours(records)

    period = None
    if records:
        end_times = [a.ended_at or a.alerted_at for a in records]
        period = {"from": format_time(records[0].started_at), "to": format_time(max(end_times))}
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
        cameras=[camera_label(c, names) for c in cameras_used],
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
