"""Evidence files: snapshots, clips, the frame ring's memory bound, and integrity checking."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detector.evidence.writer import EvidenceWriter, FrameRing, sha256_file, verify_evidence
from zones.alert import AlertRecord, EvidenceItem

TZ = timezone(timedelta(hours=8))
BOX = (300, 380, 520, 560)
ZONE = np.array([[64.0, 432.0], [1216.0, 432.0], [1216.0, 705.0], [64.0, 705.0]])


def street_frame(width: int = 1280, height: int = 720, shade: int = 0) -> np.ndarray:
    """A plain synthetic street scene: sky, road and a 'stall' block, so drawings are easy to find."""
    image = np.full((height, width, 3), (110, 120, 115), np.uint8)
    cv2.rectangle(image, (0, 0), (width, height * 5 // 12), (180, 160, 140), cv2.FILLED)
    x1, y1, x2, y2 = (round(v * width / 1280) if i % 2 == 0 else round(v * height / 720) for i, v in enumerate(BOX))
    cv2.rectangle(image, (x1 + 10, y1 + 10), (x2 - 10, y2 - 10), (30, 90, (200 + shade) % 256), cv2.FILLED)
    return image


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable image"
    return image


def decode_clip(path: Path) -> tuple[str, list[float], tuple[int, int]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        times = [float(frame.time) for frame in container.decode(video=0)]
        size = (stream.codec_context.width, stream.codec_context.height)
    return codec, times, size


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (b"x" * 3_000_000, hashlib.sha256(b"x" * 3_000_000).hexdigest()),
    ],
)
def test_sha256_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    assert sha256_file(path) == expected


@pytest.mark.parametrize(
    ("kind", "expected_files"),
    [
        ("snapshot", {"snapshot": "snapshot.jpg", "snapshot_clean": "snapshot_clean.jpg"}),
        ("snapshot_after", {"snapshot_after": "snapshot_after.jpg"}),
    ],
)
def test_snapshot_files_and_hashes(tmp_path: Path, kind: str, expected_files: dict[str, str]) -> None:
    alert_id = str(uuid.uuid4())
    frame = street_frame()
    original = frame.copy()
    items = EvidenceWriter(tmp_path).snapshot(
        alert_id, frame, bbox=BOX, label="street_vending 0.91", zone_polygon_px=ZONE, kind=kind
    )
    assert {item.kind: item.path for item in items} == {
        k: f"evidence/{alert_id}/{name}" for k, name in expected_files.items()
    }
    for item in items:
        path = tmp_path / item.path
        assert path.is_file()
        assert item.sha256 == sha256_file(path)
        assert read_image(path).shape == frame.shape
    assert np.array_equal(frame, original), "the caller's frame must not be drawn on"
    assert not list(tmp_path.rglob("*.part")), "no temporary files may be left behind"


def test_drawn_snapshot_differs_from_clean_copy_inside_the_box(tmp_path: Path) -> None:
    frame = street_frame()
    items = EvidenceWriter(tmp_path).snapshot("a1", frame, bbox=BOX, label="street_vending 0.91", zone_polygon_px=ZONE)
    paths = {item.kind: tmp_path / item.path for item in items}
    drawn = read_image(paths["snapshot"]).astype(np.int16)
    clean = read_image(paths["snapshot_clean"]).astype(np.int16)
    # The clean copy is the camera's frame (only JPEG loss).
    assert np.abs(clean - frame.astype(np.int16)).mean() < 2.0
    x1, y1, x2, _ = BOX
    # The box outline runs along the box edge: strongly different there.
    edge = np.abs(drawn[y1 - 1 : y1 + 2, x1:x2] - clean[y1 - 1 : y1 + 2, x1:x2]).mean()
    assert edge > 40
    # The zone fill tints the inside of the box (it lies in the zone) but keeps it recognisable.
    inside = np.abs(drawn[450:540, 330:490] - clean[450:540, 330:490]).mean()
    assert 3 < inside < 80
    # The sky far from box, label and zone is untouched.
    assert np.abs(drawn[20:200, 800:1200] - clean[20:200, 800:1200]).mean() < 2.0


@pytest.mark.parametrize(
    ("frame", "label"),
    [
        (cv2.cvtColor(street_frame(), cv2.COLOR_BGR2GRAY), "grey frame"),
        (cv2.cvtColor(street_frame(), cv2.COLOR_BGR2BGRA), "bgra frame"),
        (street_frame(), "占道经营 street_vending"),  # CJK cannot be drawn by cv2: replaced, no crash
        (street_frame(), ""),
    ],
)
def test_snapshot_accepts_odd_frames_and_labels(tmp_path: Path, frame: np.ndarray, label: str) -> None:
    items = EvidenceWriter(tmp_path).snapshot(
        "a2", frame, bbox=(-50, -20, 5000, 300), label=label, zone_polygon_px=None
    )
    assert read_image(tmp_path / items[0].path).shape == (720, 1280, 3)


@pytest.mark.parametrize("bad_id", ["../evil", "a/b", "", ".hidden", "a\\b", "x" * 200])
def test_unsafe_alert_ids_are_refused(tmp_path: Path, bad_id: str) -> None:
    writer = EvidenceWriter(tmp_path)
    with pytest.raises(ValueError, match="not a safe file name"):
        writer.snapshot(bad_id, street_frame(), bbox=BOX, label="x", zone_polygon_px=None)
    with pytest.raises(ValueError, match="not a safe file name"):
        writer.start_clip(bad_id, [])
    assert not (tmp_path.parent / "evil").exists()


def run_clip(
    writer: EvidenceWriter, alert_id: str, fps: float, alert_t: float, end_t: float, ring: FrameRing | None = None
) -> dict[str, EvidenceItem]:
    """Feed frames at ``fps`` from 0 to end_t through a ring; start the clip at alert_t."""
    ring = ring or FrameRing(max_seconds=writer.clip_before_s + 1.0)
    finished: dict[str, EvidenceItem] = {}
    step = 1.0 / fps
    for i in range(round(end_t * fps) + 1):
        t = round(i * step, 6)
        frame = street_frame(shade=i)
        ring.push(t, i, frame)
        finished.update(writer.feed(t, frame))
        if abs(t - alert_t) < step / 2:
            writer.start_clip(alert_id, ring.frames())
    return finished


@pytest.mark.parametrize(
    ("fps", "alert_t", "end_t", "before", "after", "expected_span"),
    [
        (5.0, 10.0, 20.0, 5.0, 5.0, 10.0),  # full window on both sides
        (2.0, 3.0, 20.0, 5.0, 5.0, 8.0),  # alert 3 s in: only 3 s exist before it
        (5.0, 10.0, 12.0, 5.0, 5.0, 7.0),  # video ends 2 s after the alert: finish_all writes what it has
        (10.0, 6.0, 9.0, 2.0, 1.0, 3.0),
    ],
)
def test_clip_is_decodable_video_covering_the_window(
    tmp_path: Path, fps: float, alert_t: float, end_t: float, before: float, after: float, expected_span: float
) -> None:
    alert_id = str(uuid.uuid4())
    writer = EvidenceWriter(tmp_path, clip_before_s=before, clip_after_s=after)
    finished = run_clip(writer, alert_id, fps, alert_t, end_t)
    complete = alert_t + after <= end_t
    assert (alert_id in finished) == complete, "a clip finishes by itself once clip_after_s has passed"
    assert writer.open_clips == (() if complete else (alert_id,))
    at_end = writer.finish_all()
    assert alert_id in at_end, "finish_all also returns clips completed earlier"
    item = at_end[alert_id]
    assert item.kind == "clip" and item.path == f"evidence/{alert_id}/clip.mp4"
    path = tmp_path / item.path
    assert item.sha256 == sha256_file(path)
    codec, times, (width, height) = decode_clip(path)
    assert codec in {"h264", "mpeg4"}
    assert (width, height) == (960, 540), "clips are downscaled to at most 960 px wide"
    # Timestamps come from t: the clip spans the window at the analysed rate.
    assert times[-1] - times[0] == pytest.approx(expected_span, abs=0.01)
    assert len(times) == pytest.approx(expected_span * fps + 1, abs=1)
    assert np.allclose(np.diff(times), 1.0 / fps, atol=0.002)


def test_clip_timestamps_follow_irregular_frame_times(tmp_path: Path) -> None:
    writer = EvidenceWriter(tmp_path, clip_before_s=5, clip_after_s=5)
    frame_times = [0.0, 0.4, 0.5, 1.7, 2.0, 2.0, 2.9, 3.05]  # a repeated time is dropped
    writer.start_clip("irregular", [(t, street_frame()) for t in frame_times[:3]])
    for t in frame_times[3:]:
        writer.add_clip_frame("irregular", t, street_frame())
    item = writer.finish_clip("irregular")
    assert item is not None
    _, times, _ = decode_clip(tmp_path / item.path)
    assert times == pytest.approx([0.0, 0.4, 0.5, 1.7, 2.0, 2.9, 3.05], abs=0.002)


def test_clip_survives_frame_size_changes(tmp_path: Path) -> None:
    writer = EvidenceWriter(tmp_path)
    sizes = [(640, 360)] * 4 + [(1920, 1080)] * 4 + [(333, 201)] * 4
    writer.start_clip("resize", [(i * 0.5, street_frame(*size)) for i, size in enumerate(sizes[:4])])
    for i, size in enumerate(sizes[4:], start=4):
        writer.add_clip_frame("resize", i * 0.5, street_frame(*size))
    item = writer.finish_clip("resize")
    assert item is not None
    _, times, size = decode_clip(tmp_path / item.path)
    assert len(times) == len(sizes)
    assert size == (640, 360)


def test_clip_without_frames_writes_nothing(tmp_path: Path) -> None:
    writer = EvidenceWriter(tmp_path)
    writer.start_clip("empty", [])
    assert writer.finish_clip("empty") is None
    assert writer.finish_clip("never-started") is None
    assert not list((tmp_path / "evidence").rglob("*.mp4*"))


def test_clip_started_without_frames_before_takes_the_first_frame_as_alert(tmp_path: Path) -> None:
    writer = EvidenceWriter(tmp_path, clip_after_s=1.0)
    writer.start_clip("late", [])
    done = [writer.add_clip_frame("late", 10 + i * 0.25, street_frame()) for i in range(6)]
    assert done == [False, False, False, False, True, True]
    item = writer.finish_clip("late")
    assert item is not None
    _, times, _ = decode_clip(tmp_path / item.path)
    assert len(times) == 5


@pytest.mark.parametrize(
    ("fps", "seconds", "size", "max_seconds", "max_frames", "max_bytes"),
    [
        (25.0, 12.0, (1920, 1080), 6.0, 150, 40 * 1024 * 1024),  # bytes bind: 40 MiB of 960x540 frames
        (25.0, 12.0, (640, 360), 6.0, 60, 1 << 30),  # frame count binds
        (2.0, 30.0, (1280, 720), 6.0, 150, 1 << 30),  # time binds
        (40.0, 2.5, (3840, 2160), 1.5, 500, 8 * 1024 * 1024),  # 4K: 5 frames of 960x540 fit
    ],
)
def test_frame_ring_memory_bound(
    fps: float,
    seconds: float,
    size: tuple[int, int],
    max_seconds: float,
    max_frames: int,
    max_bytes: int,
) -> None:
    ring = FrameRing(max_seconds=max_seconds, max_frames=max_frames, max_bytes=max_bytes, max_width=960)
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    for i in range(round(seconds * fps)):
        ring.push(i / fps, i, frame)
        assert len(ring) <= max_frames
        assert ring.nbytes <= max_bytes or len(ring) == 1
    items = ring.items()
    assert all(item.image.shape[1] <= 960 for item in items)
    assert ring.nbytes == sum(item.image.nbytes for item in items)
    times = [item.t for item in items]
    assert times == sorted(times)
    newest = (round(seconds * fps) - 1) / fps
    assert times[-1] == pytest.approx(newest)
    # Thinning keeps the whole window at a lower, roughly even rate instead of only the last few
    # frames: the span falls short of the window by at most one gap.
    gaps = np.diff(times)
    assert gaps.max() <= 3 * max_seconds / (len(times) - 1)
    assert ring.span_s >= min(max_seconds, newest) - gaps.max() - 1e-9


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=-2.0, max_value=3.0, allow_nan=False), min_size=1, max_size=60),
    max_frames=st.integers(min_value=1, max_value=12),
    max_bytes=st.integers(min_value=1, max_value=64 * 48 * 3 * 10),
    max_seconds=st.floats(min_value=0.1, max_value=10.0),
)
@example(steps=[1.0, 0.1], max_frames=2, max_bytes=4608, max_seconds=0.1)  # float rounding at the window edge
def test_frame_ring_invariants(steps: list[float], max_frames: int, max_bytes: int, max_seconds: float) -> None:
    ring = FrameRing(max_seconds=max_seconds, max_frames=max_frames, max_bytes=max_bytes, max_width=32)
    t = 0.0
    frame = np.zeros((48, 64, 3), np.uint8)
    for index, step in enumerate(steps):
        t += step
        ring.push(t, index, frame)
        times = [item.t for item in ring.items()]
        assert times[-1] == t, "the newest frame is always kept"
        assert times == sorted(times), "a jump back in time (next video) starts afresh"
        assert len(ring) <= max_frames
        assert ring.nbytes <= max_bytes or len(ring) == 1
        assert times[-1] - times[0] <= max_seconds


def test_frame_ring_keeps_copies() -> None:
    ring = FrameRing()
    frame = np.zeros((100, 200, 3), np.uint8)
    ring.push(0.0, 0, frame)
    frame[:] = 255  # a decoder reusing its buffer must not change the past
    assert int(ring.frames()[0][1].max()) == 0


def make_record(alert_id: str, evidence: list[EvidenceItem]) -> AlertRecord:
    started = datetime(2026, 11, 27, 9, 14, 3, tzinfo=TZ)
    return AlertRecord.model_validate(
        {
            "id": alert_id,
            "event": "violation.opened",
            "camera_id": "cam-jfdl-01",
            "category": "street_vending",
            "object_class": "stall",
            "zone": "sidewalk-north",
            "started_at": started,
            "alerted_at": started + timedelta(seconds=180),
            "video_offset_s": {"start": 12.0, "alert": 192.0, "end": None},
            "confidence": 0.87,
            "bbox": BOX,
            "location": {"type": "Point", "coordinates": [118.79702, 32.06013]},
            "location_error_m": 1.8,
            "evidence": [item.model_dump() for item in evidence],
            "model": {"name": "streetwatch-v1", "sha256": "0" * 64},
            "source": {"uri": "clip.mp4", "frame": 4800},
        }
    )


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    """An audit directory with two alerts whose evidence the real writer produced."""
    writer = EvidenceWriter(tmp_path, clip_before_s=1.0, clip_after_s=1.0)
    lines = []
    for _ in range(2):
        alert_id = str(uuid.uuid4())
        items = writer.snapshot(alert_id, street_frame(), bbox=BOX, label="street_vending", zone_polygon_px=ZONE)
        writer.start_clip(alert_id, [(t / 5, street_frame()) for t in range(6)])
        clip = writer.finish_clip(alert_id)
        assert clip is not None
        lines.append(make_record(alert_id, [*items, clip]).to_json_line())
    (tmp_path / "alerts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def first_evidence(audit_dir: Path, kind: str) -> tuple[str, Path]:
    record = json.loads((audit_dir / "alerts.jsonl").read_text().splitlines()[0])
    item = next(i for i in record["evidence"] if i["kind"] == kind)
    return record["id"], audit_dir / item["path"]


def tamper_append(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\0")


def tamper_pixel(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("kind", "damage", "expected"),
    [
        ("snapshot", tamper_append, "SHA-256 mismatch"),
        ("clip", tamper_pixel, "SHA-256 mismatch"),
        ("snapshot_clean", Path.unlink, "file missing"),
        ("clip", Path.unlink, "file missing"),
    ],
)
def test_verify_evidence_finds_tampered_and_missing_files(
    audit_dir: Path, kind: str, damage: object, expected: str
) -> None:
    assert verify_evidence(audit_dir) == []
    alert_id, path = first_evidence(audit_dir, kind)
    damage(path)  # type: ignore[operator]
    problems = verify_evidence(audit_dir)
    assert len(problems) == 1
    assert expected in problems[0]
    assert alert_id in problems[0] and path.name in problems[0]


@pytest.mark.parametrize(
    ("alerts_text", "expected"),
    [
        (None, "missing"),
        ("{not json\n", "not a valid alert record"),
        ('{"id": "x"}\n', "not a valid alert record: id"),
    ],
)
def test_verify_evidence_reports_unusable_alert_files(tmp_path: Path, alerts_text: str | None, expected: str) -> None:
    if alerts_text is not None:
        (tmp_path / "alerts.jsonl").write_text(alerts_text, encoding="utf-8")
    problems = verify_evidence(tmp_path)
    assert len(problems) == 1 and expected in problems[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("../outside.jpg", "outside the audit directory"),
        ("/etc/hostname", "outside the audit directory"),
        ("https://cdn.example.org/x.jpg", None),  # remote evidence cannot be checked offline: skipped
    ],
)
def test_verify_evidence_refuses_paths_outside_the_audit(tmp_path: Path, path: str, expected: str | None) -> None:
    (tmp_path.parent / "outside.jpg").write_bytes(b"x")
    record = make_record(str(uuid.uuid4()), [EvidenceItem(kind="snapshot", path=path, sha256="0" * 64)])
    (tmp_path / "alerts.jsonl").write_text(record.to_json_line() + "\n", encoding="utf-8")
    problems = verify_evidence(tmp_path)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]
