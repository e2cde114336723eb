"""Live mode runs the stationary-object finder on the same path as the audit (issue #16): a camera whose
zone opts in to ``sidewalk_obstruction`` raises one alert for an object left there; a camera whose
zones do not never runs the finder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detector.live.camera import CameraRuntime
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
