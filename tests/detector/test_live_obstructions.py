"""Live mode runs the stationary-object finder on the same path as the audit (issue #16): a camera whose
zone opts in to ``sidewalk_obstruction`` raises one alert for an object left there; a camera whose
zones do not never runs the finder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from detector.live.camera import CameraRuntime
from detector.live.runner import LiveRunner
from detector.live.spool import Spool
from detector.video.capture import CapturedFrame
from tests.detector.putdown_clips import PutDown, frames
from tests.detector.test_live_restore import MODEL, T0
from zones.alert import AlertRecord
from zones.config import CameraConfig
from zones.detections import Detections


def _config(categories: list[str]) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam-live-obstruction",
            "name": "live obstruction",
            "source": "rtsp://127.0.0.1:9/cam",
            "timezone": "Asia/Shanghai",
            "location": {"lon": 118.7969, "lat": 32.0603},
            "zones": [
                {
                    "name": "pavement",
                    "polygon": [[0.30, 0.30], [0.75, 0.30], [0.75, 0.70], [0.30, 0.70]],
                    "categories": categories,
                    "dwell_s": 20,
                }
            ],
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("categories", "finder", "expected"),
    [
        (["sidewalk_obstruction"], True, [("violation.opened", "sidewalk_obstruction")]),
        (["street_vending"], False, []),
    ],
)
def test_live_camera_finds_what_stays(
    tmp_path: object, categories: list[str], finder: bool, expected: list[tuple[str, str]]
) -> None:
    camera = CameraRuntime(
        _config(categories), model=MODEL, crop_model=None, state_dir=tmp_path, analysis_fps=0.5, evidence=False,
        wall_clock=lambda: T0,
    )  # fmt: skip
    records: list[AlertRecord] = []
    for index, (seconds, image, _) in enumerate(frames(PutDown(thing="cabinet", duration_s=50.0))):
        frame = CapturedFrame(index, T0 + timedelta(seconds=seconds), 0.0, image)
        t, early = camera.prepare(frame)
        records += early + camera.process(frame, t, Detections.empty())
    assert camera.pipeline is not None and (camera.pipeline.obstructions is not None) == finder
    assert [(r.event, r.category) for r in records] == expected
    for record in records:
        assert record.object_class == "object" and record.zone == "pavement"
        assert record.video_offset_s is None  # live records carry wall-clock times only
        assert T0 + timedelta(seconds=10) <= record.started_at <= T0 + timedelta(seconds=25)


class _NoModel:
    """The analyser of a camera whose model sees nothing: only the finder can raise anything."""

    model = MODEL

    def analyse(self, items: list[object]) -> list[Detections]:
        return [Detections.empty() for _ in items]


@pytest.mark.slow
@pytest.mark.parametrize("keep_background", [True, False], ids=["background-kept", "background-lost"])
def test_a_restart_keeps_what_the_finder_learnt_of_the_street(tmp_path: Path, keep_background: bool) -> None:
    """``streetwatch run`` restarted 6 s after a cabinet was put down (before the finder held it): the
    next run starts its finder from the background the first one saved at shutdown and still raises the
    obstruction; without that file the cabinet is part of the street from the new run's first frame."""
    config = _config(["sidewalk_obstruction"])
    spool = Spool(tmp_path / "spool.sqlite3")
    clock = [0.0]
    rendered = list(frames(PutDown(thing="cabinet", t0=10.0, duration_s=76.0)))
    restart_at = 16.0

    def run(ts: tuple[float, float]) -> list[AlertRecord]:
        camera = CameraRuntime(
            config, model=MODEL, state_dir=tmp_path, analysis_fps=0.5, evidence=False,
            saved_state=spool.load_state(config.id), mono_clock=lambda: clock[0], wall_clock=lambda: T0,
        )  # fmt: skip
        runner = LiveRunner([camera], _NoModel(), spool, state_dir=tmp_path, mono_clock=lambda: clock[0])
        records = []
        for index, (seconds, image, _) in enumerate(frames_between(rendered, *ts)):
            clock[0] = seconds
            camera.capture.stats.last_grab_mono = seconds
            camera.queue.put(CapturedFrame(index, T0 + timedelta(seconds=seconds), seconds, image))
            records += runner.step()
        runner.shutdown(flush_timeout_s=0.0)
        return records

    assert run((0.0, restart_at)) == []
    saved = tmp_path / "finder" / f"{config.id}-{rendered[0][1].shape[1]}x{rendered[0][1].shape[0]}.png"
    assert saved.exists(), "shutdown keeps the finder's background"
    if not keep_background:
        saved.unlink()
    records = run((restart_at, 76.0))
    spool.close()
    found = [(r.event, r.category) for r in records]
    assert found == ([("violation.opened", "sidewalk_obstruction")] if keep_background else [])


def frames_between(
    rendered: list[tuple[float, np.ndarray, object]], start: float, end: float
) -> list[tuple[float, np.ndarray, object]]:
    return [item for item in rendered if start <= item[0] < end]
