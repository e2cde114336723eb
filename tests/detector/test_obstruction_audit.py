"""``streetwatch audit`` with the stationary-object finder (issue #16): an object left on a pavement zone
that opts in to ``sidewalk_obstruction`` becomes one alert; elsewhere, or when it is a person or a parked car,
nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from detector.audit.runner import DEFAULT_KEYFRAME_INTERVAL_S
from tests.conftest import run_cli
from tests.detector.putdown_clips import PutDown, write_video
from tests.zones.conftest import CAMERA

START = "2026-11-27T09:00:00+08:00"
PAVEMENT = [[0.30, 0.30], [0.75, 0.30], [0.75, 0.70], [0.30, 0.70]]  # the far pavement of the rendered street


def _camera(tmp_path: Path, categories: list[str]) -> Path:
    config: dict[str, Any] = {
        "id": "cam-obstruction-01",
        "name": "obstruction test",
        "source": "clip.mp4",
        "timezone": "Asia/Shanghai",
        "location": {"lon": CAMERA.lon, "lat": CAMERA.lat},
        "grid": {"code": "320102001001", "team": "team-a"},
        "zones": [{"name": "pavement", "polygon": PAVEMENT, "relative": True, "categories": categories, "dwell_s": 20}],
    }
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _audit(tmp_path: Path, case: PutDown, categories: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    video = write_video(case, tmp_path / "clip.mp4")
    out = tmp_path / "out"
    done = run_cli("audit", video, "--camera", _camera(tmp_path, categories), "--out", out, "--start-time", START)
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    return alerts, json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "categories", "expected"),
    [
        pytest.param(PutDown(thing="cabinet", duration_s=60.0, step_s=1.0), ["sidewalk_obstruction"], 1, id="left"),
        pytest.param(
            PutDown(thing="cabinet", duration_s=60.0, step_s=1.0), ["street_vending"], 0, id="zone-not-opted-in"
        ),
        pytest.param(
            PutDown(thing=None, standing_person=True, duration_s=60.0, step_s=1.0),
            ["sidewalk_obstruction"],
            0,
            id="person-waiting",
        ),
        pytest.param(
            PutDown(thing="car", duration_s=60.0, step_s=1.0), ["sidewalk_obstruction"], 0, id="car-parked-on-it"
        ),
    ],
)
def test_audit_reports_what_stays(tmp_path: Path, case: PutDown, categories: list[str], expected: int) -> None:
    alerts, summary = _audit(tmp_path, case, categories)
    assert [a["category"] for a in alerts] == ["sidewalk_obstruction"] * expected
    assert summary["alerts"]["sidewalk_obstruction"] == expected and summary["warnings"] == []
    # The parked car is held (it stays) and then found to be a vehicle; a cabinet is never taken for one.
    assert (summary["people_vehicles_dismissed"] >= 1) is (case.thing == "car")
    if not expected:
        return
    [alert] = alerts
    assert alert["object_class"] == "object" and alert["zone"] == "pavement"
    start = alert["video_offset_s"]["start"]
    # Held once it has stayed min_stay_s, but started when the finder first saw it: at the first analysed
    # frame that shows it (the audit analyses a key frame every DEFAULT_KEYFRAME_INTERVAL_S).
    assert DEFAULT_KEYFRAME_INTERVAL_S is not None
    assert case.t0 <= start <= case.t0 + DEFAULT_KEYFRAME_INTERVAL_S
    assert alert["video_offset_s"]["alert"] == pytest.approx(start + 20.0)  # the dwell counts from then
    assert alert["event"] == "violation.opened" and alert["ended_at"] is None  # still there at the end
    assert summary["crops_inferred"] >= 1  # the model looked at the region on a crop, and found none of its classes


def test_audit_warns_when_frames_are_too_small_for_the_finder(tmp_path: Path) -> None:
    import av

    video = tmp_path / "tiny.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(video), mode="w") as container:
        stream: Any = container.add_stream("libx264", rate=2)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for _ in range(20):
            image = np.clip(rng.normal(120, 3, (96, 160, 3)), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    out = tmp_path / "out"
    camera = _camera(tmp_path, ["sidewalk_obstruction", "street_vending"])
    done = run_cli("audit", video, "--camera", camera, "--out", out, "--start-time", START)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    [warning] = summary["warnings"]
    assert warning["video"] == str(video) and warning["warning"] == "sidewalk_obstruction"
    assert "160x96" in warning["detail"] and "too small" in warning["detail"]
