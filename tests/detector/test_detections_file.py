"""The detections file (DESIGN §3.3): valid files replay, malformed ones exit 2 naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detector.model.detections_file import DetectionsFile
from tests.conftest import run_cli
from zones.errors import DetectionsFileError

CAMERA_YAML = """
id: cam-test-01
name: test camera
source: clip.mp4
timezone: Asia/Shanghai
location: {lon: 118.7969, lat: 32.0603}
grid: {code: "320102001001", team: team-a}
zones:
  - name: sidewalk
    polygon: [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
    relative: true
    categories: [street_vending]
    dwell_s: 20
"""

META = {"meta": {"video": "clip.mp4", "fps": 25.0, "width": 1280, "height": 720, "classes": ["stall"]}}
GOOD_FRAME = {"frame": 0, "t": 0.0, "detections": [{"xyxy": [10, 400, 60, 500], "class": "stall", "conf": 0.9}]}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([json.dumps(META), "{not json"], "line 2: invalid JSON"),
        ([json.dumps(META), "[1, 2]"], "line 2: expected a JSON object"),
        ([json.dumps(META), json.dumps({"t": 0.0, "detections": []})], "line 2: frame: Field required"),
        ([json.dumps(META), json.dumps({"frame": 0, "t": -1, "detections": []})], "line 2: t: Input should be greater"),
        (
            [json.dumps(META), json.dumps({"frame": 0, "t": 0, "detections": [{"xyxy": [1, 2, 3], "class": "stall"}]})],
            "line 2: detections.0.xyxy",
        ),
        (
            [
                json.dumps(META),
                json.dumps({"frame": 0, "t": 0, "detections": [{"xyxy": [5, 5, 1, 1], "class": "stall", "conf": 1}]}),
            ],
            "x1 <= x2",
        ),
        (
            [
                json.dumps(META),
                json.dumps({"frame": 0, "t": 0, "detections": [{"xyxy": [1, 1, 5, 5], "class": "car", "conf": 1}]}),
            ],
            "unknown class 'car'",
        ),
        (
            [
                json.dumps(META),
                json.dumps({"frame": 0, "t": 0, "detections": [{"xyxy": [1, 1, 5, 5], "class": "stall", "conf": 2}]}),
            ],
            "detections.0.conf",
        ),
        (
            [
                json.dumps(META),
                json.dumps({"frame": 5, "t": 5.0, "detections": []}),
                json.dumps({"frame": 4, "t": 4.0, "detections": []}),
            ],
            "line 3: t 4.0 goes back in time",
        ),
        ([json.dumps({"meta": {"fps": -3}})], "line 1: meta.fps"),
    ],
)
def test_malformed_file_exits_2_naming_the_line(tmp_path: Path, lines: list[str], expected: str) -> None:
    camera = tmp_path / "camera.yaml"
    camera.write_text(CAMERA_YAML, encoding="utf-8")
    detections = _write(tmp_path / "bad.jsonl", lines)
    done = run_cli("audit", "--detections-from", detections, "--camera", camera, "--out", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert "bad.jsonl" in done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_reader_yields_frames_with_meta_and_optional_track_ids(tmp_path: Path) -> None:
    second = {
        "frame": 25,
        "t": 1.0,
        "detections": [
            {"xyxy": [1, 2, 3, 4], "class": "laundry", "conf": 0.5, "track_id": 7},
            {"xyxy": [10, 20, 30, 40], "class": "structure", "conf": 0.6, "track_id": 8, "extra": "ignored"},
        ],
    }
    path = _write(tmp_path / "ok.jsonl", [json.dumps(META), json.dumps(GOOD_FRAME), "", json.dumps(second)])
    file = DetectionsFile(path)
    assert file.meta.width == 1280 and file.meta.fps == 25.0
    frames = list(file.frames())
    assert [f.frame for f in frames] == [0, 25]
    assert frames[0].detections.tracker_id is None  # untracked: the pipeline runs its own tracker
    np.testing.assert_array_equal(frames[1].detections.tracker_id, [7, 8])
    np.testing.assert_array_equal(frames[1].detections.class_id, [1, 2])


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(DetectionsFileError, match="file not found"):
        DetectionsFile(tmp_path / "nope.jsonl")


def test_replay_without_frame_size_says_how_to_fix(tmp_path: Path) -> None:
    camera = tmp_path / "camera.yaml"
    camera.write_text(CAMERA_YAML, encoding="utf-8")
    detections = _write(tmp_path / "nosize.jsonl", [json.dumps(GOOD_FRAME)])
    done = run_cli("audit", "--detections-from", detections, "--camera", camera, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert "frame size is unknown" in done.stderr
