"""Live cameras across restarts and over time: engine state restored (no duplicate alert), the gap
rule across an outage, records and state stored together, and no per-frame growth."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.live.analysers import AnalysisItem
from detector.live.camera import CameraRuntime
from detector.live.runner import LiveRunner
from detector.live.spool import Spool
from detector.video.capture import CapturedFrame
from zones.alert import AlertRecord, GeoPoint, ModelRef, SourceRef
from zones.config import CameraConfig
from zones.detections import Detections

T0 = datetime(2026, 11, 27, 1, 0, 0, tzinfo=UTC)  # 09:00 in Shanghai
MODEL = ModelRef(name="test", sha256="")
STALL = (40.0, 60.0, 80.0, 100.0)


def sample_record() -> AlertRecord:
    return AlertRecord(
        id=uuid.UUID("7d0c0000-0000-4000-8000-000000000001"),
        event="violation.opened",
        camera_id="cam-a",
        category="street_vending",
        object_class="stall",
        zone="walk",
        started_at=T0,
        alerted_at=T0 + timedelta(seconds=180),
        confidence=0.9,
        bbox=(1, 2, 3, 4),
        location=GeoPoint(type="Point", coordinates=(118.79, 32.06)),
        location_error_m=50,
        model=MODEL,
        source=SourceRef(uri="rtsp://cam", frame=1),
    )


def camera_config(max_gap_s: float = 30.0, dwell_s: float = 5.0) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam-a",
            "name": "A",
            "source": "rtsp://127.0.0.1:9/cam",
            "timezone": "Asia/Shanghai",
            "location": {"lon": 118.7969, "lat": 32.0603},
            "max_gap_s": max_gap_s,
            "zones": [
                {
                    "name": "walk",
                    "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                    "categories": ["street_vending"],
                    "dwell_s": dwell_s,
                }
            ],
        }
    )


def stall(box: tuple[float, float, float, float] = STALL, track: int = 1) -> Detections:
    return Detections(
        xyxy=np.array([box]), confidence=np.array([0.9]), class_id=np.array([0]), tracker_id=np.array([track])
    )


class WallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def runtime(
    tmp_path: Path,
    saved: str | None = None,
    *,
    evidence: bool = False,
    wall: Any = None,
    config: CameraConfig | None = None,
) -> CameraRuntime:
    return CameraRuntime(
        config or camera_config(),
        model=MODEL,
        state_dir=tmp_path,
        analysis_fps=2.0,
        saved_state=saved,
        evidence=evidence,
        wall_clock=wall or (lambda: T0),
    )


def feed(
    camera: CameraRuntime,
    start_s: float,
    end_s: float,
    detections: Detections | None,
    step: float = 0.5,
    size: tuple[int, int] = (160, 120),
) -> list[AlertRecord]:
    records: list[AlertRecord] = []
    image = np.zeros((size[1], size[0], 3), np.uint8)
    for k in range(round((end_s - start_s) / step)):
        at = T0 + timedelta(seconds=start_s + k * step)
        frame = CapturedFrame(int((start_s + k * step) * 10), at, 0.0, image)
        t, early = camera.prepare(frame)
        records += early
        records += camera.process(frame, t, detections if detections is not None else Detections.empty())
    return records


def events(records: list[AlertRecord]) -> list[tuple[str, str]]:
    return [(r.event, str(r.id)) for r in records]


def test_restart_within_max_gap_continues_the_incident_without_a_second_alert(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    opened = feed(first, 0, 10, stall())
    assert [r.event for r in opened] == ["violation.opened"]
    incident = str(opened[0].id)
    assert opened[0].started_at == T0 and opened[0].alerted_at == T0 + timedelta(seconds=5)
    assert opened[0].started_at.utcoffset() == timedelta(hours=8), "times in the camera's timezone"
    state = first.state_json()
    assert state is not None

    # The process restarts; the stall is still there 10 s later (max_gap_s is 30).
    second = runtime(tmp_path, state)
    again = feed(second, 20, 40, stall(track=7))  # a new tracker id after the restart: same place
    assert again == [], "the incident already reported is not reported again"
    closed = feed(second, 40, 80, None)
    assert events(closed) == [("violation.closed", incident)]
    assert closed[0].ended_at == T0 + timedelta(seconds=39.5)


def test_restart_after_a_long_outage_ends_the_old_incident_at_its_last_sighting(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    old = str(feed(first, 0, 10, stall())[0].id)
    second = runtime(tmp_path, first.state_json())
    records = feed(second, 100, 110, stall())  # 90.5 s away: longer than max_gap_s
    assert [r.event for r in records] == ["violation.closed", "violation.opened"]
    assert str(records[0].id) == old and records[0].ended_at == T0 + timedelta(seconds=9.5)
    assert str(records[1].id) != old
    assert records[1].started_at == T0 + timedelta(seconds=100), "nothing fires from the gap"


def test_outage_longer_than_max_gap_closes_incidents_without_waiting_for_the_camera(tmp_path: Path) -> None:
    wall = WallClock()
    camera = runtime(tmp_path, wall=wall)
    incident = str(feed(camera, 0, 10, stall())[0].id)
    wall.now = T0 + timedelta(seconds=9.5 + 29)
    assert camera.expire_gap() == []  # within max_gap_s: the stall may still come back
    wall.now = T0 + timedelta(seconds=9.5 + 31)
    closed = camera.expire_gap()
    assert events(closed) == [("violation.closed", incident)]
    assert closed[0].ended_at == T0 + timedelta(seconds=9.5)
    assert camera.expire_gap() == []
    # Frames captured before the expiry but analysed after it still move time forward only.
    assert feed(camera, 35, 36, None) == []


def test_restored_camera_that_never_returns_still_closes(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    incident = str(feed(first, 0, 10, stall())[0].id)
    wall = WallClock()
    wall.now = T0 + timedelta(seconds=60)
    restored = runtime(tmp_path, first.state_json(), wall=wall)
    assert events(restored.expire_gap()) == [("violation.closed", incident)]


@pytest.mark.parametrize(
    "state",
    [
        pytest.param("not json", id="corrupt"),
        pytest.param(json.dumps({"version": 99, "camera_id": "cam-a", "epoch": T0.isoformat()}), id="other version"),
        pytest.param(json.dumps({"version": 1, "camera_id": "cam-b", "epoch": T0.isoformat()}), id="other camera"),
    ],
)
def test_unusable_state_starts_fresh(tmp_path: Path, state: str) -> None:
    camera = runtime(tmp_path, state)
    assert [r.event for r in feed(camera, 0, 10, stall())] == ["violation.opened"]


def test_frame_size_change_after_restart_ends_old_incidents(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    incident = str(feed(first, 0, 10, stall())[0].id)
    second = runtime(tmp_path, first.state_json())
    records = feed(second, 12, 13, None, size=(320, 240))
    assert events(records) == [("violation.closed", incident)]


class StallAnalyser:
    model = MODEL

    def __init__(self) -> None:
        self.present = True

    def analyse(self, items: list[AnalysisItem]) -> list[Detections]:
        return [stall() if self.present else Detections.empty() for _ in items]


class MonoClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_runner_stores_records_with_the_state_and_a_restart_does_not_duplicate(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    mono = MonoClock()
    image = np.zeros((120, 160, 3), np.uint8)

    def run_for(runner: LiveRunner, camera: CameraRuntime, start_s: float, seconds: float) -> None:
        for k in range(int(seconds * 2)):
            at = start_s + k * 0.5
            mono.now = at
            camera.capture.stats.last_grab_mono = at
            camera.queue.put(CapturedFrame(k, T0 + timedelta(seconds=at), at, image))
            runner.step()

    camera = CameraRuntime(
        camera_config(), model=MODEL, state_dir=tmp_path, analysis_fps=2.0, evidence=False, mono_clock=mono
    )
    runner = LiveRunner([camera], StallAnalyser(), spool, state_dir=tmp_path, mono_clock=mono)
    run_for(runner, camera, 0, 8)
    kinds = [(e.kind, e.key.split(":")[-1]) for e in spool.entries()]
    assert kinds == [("status", "cam-a"), ("alert", "violation.opened")]
    saved = spool.load_state("cam-a")
    assert saved is not None and json.loads(saved)["engine"]["incidents"][0]["alerted_t"] == 5.0

    # Restart: new runtime from the stored state, the stall still there.
    restarted = CameraRuntime(
        camera_config(),
        model=MODEL,
        state_dir=tmp_path,
        analysis_fps=2.0,
        evidence=False,
        saved_state=spool.load_state("cam-a"),
        mono_clock=mono,
    )
    runner2 = LiveRunner([restarted], StallAnalyser(), spool, state_dir=tmp_path, mono_clock=mono)
    run_for(runner2, restarted, 12, 20)
    alerts = [e for e in spool.entries() if e.kind == "alert"]
    assert len(alerts) == 1, "no duplicate alert after the restart"
    spool.close()


def test_no_growth_per_frame(tmp_path: Path) -> None:
    """Thousands of frames and dozens of incidents: the pipeline keeps only what open incidents need."""
    camera = runtime(tmp_path, evidence=True, config=camera_config(max_gap_s=3, dwell_s=2))
    sizes = []
    emitted = 0
    for cycle in range(30):  # 30 incidents, 20 s each: 10 s present, 10 s absent
        x = 10.0 + (cycle % 5) * 25
        emitted += len(feed(camera, cycle * 20, cycle * 20 + 10, stall((x, 60, x + 20, 100), track=cycle)))
        emitted += len(feed(camera, cycle * 20 + 10, cycle * 20 + 20, None))
        assert camera.pipeline is not None
        sizes.append(
            (len(camera.pipeline._frame_of_t), len(camera.pipeline.records), len(camera.pipeline._evidence_of))
        )
    assert emitted == 60  # opened + closed for each
    assert max(s[0] for s in sizes) <= 513
    assert sizes[-1][1] <= 1 and sizes[-1][2] <= 1, "closed incidents are forgotten once sent"
    assert camera.evidence is not None and not camera.evidence.open_clips
    assert len(list((tmp_path / "evidence").iterdir())) == 30
