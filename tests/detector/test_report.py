"""The self-contained audit report: content, escaping, offline-ness, and how it looks in a real browser."""

from __future__ import annotations

import base64
import os
import re
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import cv2
import numpy as np
import pytest

from detector.evidence.report import format_offset, render_report, write_report
from detector.evidence.report_data import cluster_places
from detector.evidence.writer import EvidenceWriter
from tests.conftest import screenshot_page
from zones.alert import AlertRecord, EvidenceItem

TZ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 27, 9, 0, 0, tzinfo=TZ)
CAMERA = (118.7969, 32.0603)
SUMMARY: dict[str, Any] = {
    "videos": ["jiefang-east.mp4", "jiefang-east-evening.mp4"],
    "duration_s": 7325.0,
    "frames_total": 183125,
    "frames_analysed": 14650,
    "processing_s": 610.4,
    "realtime_factor": 12.0,
    "alerts": {"street_vending": 3, "storefront_overflow": 1, "hanging_laundry": 1, "illegal_structure": 1},
    "errors": [
        {"video": "jiefang-east-evening.mp4", "error": "truncated", "frames_read": 5210, "frames_expected": 9000}
    ],
}


class Tags(HTMLParser):
    """Collects every tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attrs(self, tag: str, name: str) -> list[str]:
        return [a[name] or "" for t, a in self.tags if t == tag and name in a]


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def scene(seed: int, width: int = 1280, height: int = 720) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 3] = (200, 170, 140)
    image[height // 3 :] = (105, 110, 112)
    for _ in range(6):
        x, y = int(rng.integers(0, width - 200)), int(rng.integers(height // 3, height - 150))
        colour = tuple(int(c) for c in rng.integers(30, 230, 3))
        cv2.rectangle(image, (x, y), (x + 160, y + 120), colour, cv2.FILLED)
    return image


def make_record(
    *,
    category: str,
    object_class: str,
    started_min: float,
    east_m: float,
    north_m: float,
    camera_id: str = "cam-jfdl-01",
    zone: str = "sidewalk-north",
    closed: bool = True,
    evidence: list[EvidenceItem] | None = None,
    alert_id: str | None = None,
) -> AlertRecord:
    started = T0 + timedelta(minutes=started_min)
    lon = CAMERA[0] + east_m / (111_320 * np.cos(np.radians(CAMERA[1])))
    lat = CAMERA[1] + north_m / 110_574
    start_s = started_min * 60
    return AlertRecord.model_validate(
        {
            "id": alert_id or str(uuid.uuid4()),
            "event": "violation.closed" if closed else "violation.opened",
            "camera_id": camera_id,
            "category": category,
            "object_class": object_class,
            "zone": zone,
            "started_at": started,
            "alerted_at": started + timedelta(seconds=180),
            "ended_at": started + timedelta(seconds=400) if closed else None,
            "video_offset_s": {"start": start_s, "alert": start_s + 180, "end": start_s + 400 if closed else None},
            "confidence": 0.87,
            "bbox": [300, 380, 520, 560],
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "location_error_m": 1.8,
            "grid": {"code": "320102001001", "team": "team-a"},
            "evidence": [item.model_dump() for item in evidence or []],
            "model": {"name": "streetwatch-v1", "sha256": "ab" * 32},
            "source": {"uri": "/data/jiefang-east.mp4", "frame": 4800},
        }
    )


# (category, object_class, minutes after 09:00, metres east, metres north, camera, zone, closed)
INCIDENTS = [
    ("street_vending", "stall", 0.2, 12.0, 18.0, "cam-jfdl-01", "sidewalk-north", True),
    ("street_vending", "stall", 65.0, 14.0, 21.0, "cam-jfdl-01", "sidewalk-north", True),
    ("street_vending", "stall", 70.0, 15.0, 16.0, "cam-jfdl-01", "sidewalk-north", False),
    ("storefront_overflow", "stall", 12.5, -20.0, 8.0, "cam-jfdl-01", "shopfront-row", True),
    ("hanging_laundry", "laundry", 610.0, 30.0, 40.0, "cam-jfdl-02", "balcony-east", True),
    ("illegal_structure", "structure", 118.0, -35.0, 45.0, "cam-jfdl-02", "rooftop", False),
]


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[AlertRecord]]:
    """An audit directory with real evidence written by EvidenceWriter, and its records."""
    out = tmp_path_factory.mktemp("audit")
    writer = EvidenceWriter(out)
    records = []
    for n, (category, object_class, minute, east, north, camera, zone, closed) in enumerate(INCIDENTS):
        alert_id = str(uuid.uuid4())
        frame = scene(n)
        items = writer.snapshot(alert_id, frame, bbox=(300, 380, 520, 560), label=category, zone_polygon_px=None)
        writer.start_clip(alert_id, [(i * 0.5, frame) for i in range(3)])
        clip = writer.finish_clip(alert_id)
        assert clip is not None
        items.append(clip)
        if closed:
            items += writer.snapshot(
                alert_id,
                scene(99),
                bbox=(300, 380, 520, 560),
                label="cleared",
                zone_polygon_px=None,
                kind="snapshot_after",
            )
        records.append(
            make_record(
                category=category,
                object_class=object_class,
                started_min=minute,
                east_m=east,
                north_m=north,
                camera_id=camera,
                zone=zone,
                closed=closed,
                evidence=items,
                alert_id=alert_id,
            )
        )
    names = {"cam-jfdl-01": "解放东路 1 号", "cam-jfdl-02": "解放东路 7 号 <rooftop>"}
    write_report(out, records, SUMMARY, camera_names=names, camera_locations={"cam-jfdl-01": CAMERA})
    return out, records


def test_report_is_self_contained(audit: tuple[Path, list[AlertRecord]]) -> None:
    out, records = audit
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    tags = parse(html)
    assert not [t for t, _ in tags.tags if t in {"link", "script", "iframe", "object", "embed"}]
    # Every image is an embedded JPEG thumbnail about 240 px wide.
    sources = tags.attrs("img", "src")
    assert len(sources) == len(records)
    for src in sources:
        assert src.startswith("data:image/jpeg;base64,")
        thumb = cv2.imdecode(np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        assert thumb is not None and thumb.shape[1] == 240
    # Every link is a relative path to an evidence file that exists next to the report.
    hrefs = tags.attrs("a", "href")
    evidence_count = sum(len(r.evidence) for r in records)
    assert len(hrefs) == evidence_count + len(records)  # + the thumbnail links to the snapshots
    for href in hrefs:
        assert not re.match(r"^[a-z]+:|^/", href), href
        assert (out / unquote(href)).is_file(), href
    assert re.search(r'<meta charset="utf-8">', html)


def test_report_content(audit: tuple[Path, list[AlertRecord]]) -> None:
    out, records = audit
    html = (out / "report.html").read_text(encoding="utf-8")
    text = " ".join(parse(html).text)
    for chinese, category in [
        ("占道经营", "street_vending"),
        ("出店经营", "storefront_overflow"),
        ("沿街晾晒", "hanging_laundry"),
        ("乱搭乱建", "illegal_structure"),
    ]:
        assert chinese in text and category in text
    # Header numbers from summary.json.
    header = ["2:02:05", "14,650", "183,125", "12.0 ×", "truncated", "5,210 of 9,000", "jiefang-east-evening.mp4"]
    for expected in header:
        assert expected in text, expected
    # Video offsets (start, alert, end) as mm:ss, h:mm:ss past an hour, rows in order of start.
    offsets = re.findall(r'<td class="off">([^<]*)</td>', html)
    assert [tuple(offsets[i : i + 3]) for i in range(0, len(offsets), 3)] == [
        ("00:12", "03:12", "06:52"),
        ("12:30", "15:30", "19:10"),
        ("1:05:00", "1:08:00", "1:11:40"),
        ("1:10:00", "1:13:00", "—"),  # still open at the end of the video
        ("1:58:00", "2:01:00", "—"),
        ("10:10:00", "10:13:00", "10:16:40"),
    ]
    assert "jiefang-east.mp4 · frame 4800" in text
    assert "± 1.8 m" in text and "320102001001" in text and "team-a" in text and "87 %" in text
    assert "解放东路 1 号 (cam-jfdl-01)" in text
    # Rows in order of start; open and closed incidents marked.
    assert text.count("open") >= 2 and text.count("closed") >= 4
    tags = parse(html)
    row_ids = [a["id"] for t, a in tags.tags if t == "tr" and (a.get("id") or "").startswith("incident-")]
    ordered = sorted(records, key=lambda r: r.started_at)
    assert row_ids == [f"incident-{r.id}" for r in ordered]
    # Map: one dot per alert (with a tooltip), the camera marked; hour chart: stacked bars per category.
    assert len(re.findall(r'<circle [^>]*r="5.5"[^>]*><title>', html)) == len(records)
    assert "camera 解放东路 1 号 (cam-jfdl-01)" in text
    bar_titles = re.findall(r"<rect [^>]*><title>([^<]*)</title>", html)
    assert sorted((t[:5], t.split(" ")[-2].rstrip(":"), t.split(" ")[-1]) for t in bar_titles) == [
        ("09:00", "storefront_overflow", "1"),
        ("09:00", "street_vending", "1"),
        ("10:00", "illegal_structure", "1"),
        ("10:00", "street_vending", "2"),
        ("19:00", "hanging_laundry", "1"),
    ]
    # Top places: the three street-vending alerts within a few metres form place #1.
    assert re.search(r"#1</td>.*?sidewalk-north.*?<td class=\"num\">3</td>", html, re.S)


def test_camera_names_and_zone_names_are_escaped(tmp_path: Path) -> None:
    record = make_record(
        category="street_vending",
        object_class="stall",
        started_min=1,
        east_m=0,
        north_m=0,
        zone='kerb"><img src=x onerror=alert(2)>',
    )
    names = {"cam-jfdl-01": "<script>alert('x')</script> & 解放东路"}
    path = write_report(tmp_path, [record], {"videos": ["<b>v.mp4</b>"], "errors": []}, camera_names=names)
    html = path.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; 解放东路" in html
    assert "<img src=x" not in html and "<b>v.mp4" not in html
    tags = parse(html)
    assert not [t for t, _ in tags.tags if t in {"script", "b"}]
    assert not [a for t, a in tags.tags if "onerror" in a]


def test_zero_alerts_report(tmp_path: Path) -> None:
    summary = {
        "videos": ["quiet.mp4"],
        "duration_s": 60.0,
        "frames_total": 1500,
        "frames_analysed": 120,
        "processing_s": 5.0,
        "realtime_factor": 12.0,
        "alerts": {},
        "errors": [],
    }
    html = write_report(tmp_path, [], summary).read_text(encoding="utf-8")
    text = " ".join(parse(html).text)
    assert "No violations found" in text
    assert "quiet.mp4" in text and "All input was read without errors" in text
    assert "<svg" not in html and "<img" not in html


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({}, ["No videos listed", "—"]),  # replayed detections, nothing known: no crash
        ({"videos": [{"video": "a.mp4", "frames": 10}], "errors": ["odd error"]}, ["a.mp4", "frames: 10", "odd error"]),
        ({"duration_s": None, "realtime_factor": float("nan")}, ["— ×"]),
    ],
)
def test_report_tolerates_sparse_summaries(tmp_path: Path, summary: dict[str, Any], expected: list[str]) -> None:
    html = write_report(tmp_path, [], summary).read_text(encoding="utf-8")
    for item in expected:
        assert item in html


@pytest.mark.parametrize(
    ("evidence", "shown"),
    [
        ([], "no image"),  # --detections-from without video: no evidence images
        ([EvidenceItem(kind="snapshot", path="evidence/gone/snapshot.jpg", sha256="0" * 64)], "image not shown"),
        ([EvidenceItem(kind="snapshot", path="https://cdn.example.org/s.jpg", sha256="0" * 64)], "image not shown"),
    ],
)
def test_missing_or_remote_snapshots(tmp_path: Path, evidence: list[EvidenceItem], shown: str) -> None:
    record = make_record(
        category="hanging_laundry", object_class="laundry", started_min=5, east_m=1, north_m=1, evidence=evidence
    )
    html = render_report(tmp_path, [record], {})
    assert shown in html
    tags = parse(html)
    assert not [h for h in tags.attrs("a", "href") + tags.attrs("img", "src") if "://" in h]


def test_thumbnails_are_capped_for_huge_audits(audit: tuple[Path, list[AlertRecord]]) -> None:
    out, records = audit
    html = render_report(out, records, SUMMARY, max_thumbnails=2)
    assert len(parse(html).attrs("img", "src")) == 2
    assert "thumbnail limit" in html and "first 2 incidents" in html


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "—"),
        (0, "00:00"),
        (12.4, "00:12"),
        (192, "03:12"),
        (3599.4, "59:59"),
        (3599.6, "1:00:00"),
        (3725, "1:02:05"),
        (90061, "25:01:01"),
    ],
)
def test_format_offset(seconds: float | None, expected: str) -> None:
    assert format_offset(seconds) == expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], []),
        ([(0, 0)], [[0]]),
        ([(0, 0), (3, 4), (100, 0)], [[0, 1], [2]]),
        ([(100, 0), (0, 0), (6, 8), (-6, -8), (500, 500)], [[1, 2, 3], [0], [4]]),  # the densest point seeds
        ([(0, 0), (10.5, 0)], [[0], [1]]),  # beyond 10 m: two places
    ],
)
def test_cluster_places(points: list[tuple[float, float]], expected: list[list[int]]) -> None:
    assert cluster_places(np.array(points, dtype=float).reshape(-1, 2)) == expected


@pytest.mark.browser
def test_report_screenshot_in_headless_chromium(audit: tuple[Path, list[AlertRecord]], tmp_path: Path) -> None:
    out, _ = audit
    png = screenshot_page(out / "report.html", tmp_path)
    shot = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert shot is not None and shot.shape[:2] == (2000, 1280)
    assert float(shot.std()) > 20, "the screenshot is blank"
    # The styled header band is there (CSS applied): dark navy #0f2a44 at the top.
    assert np.abs(shot[15, 640].astype(int) - np.array([0x44, 0x2A, 0x0F])).max() < 12
    # The category colours of the charts and thumbnails were painted (inline SVG and data: images render).
    vending = np.all(np.abs(shot.astype(int) - np.array([0x00, 0x5E, 0xD5])) < 8, axis=2)
    assert vending.sum() > 200
    keep = os.environ.get("STREETWATCH_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)
