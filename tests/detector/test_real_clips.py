"""Real footage as regression clips (issue #25): ``streetwatch audit`` on a real camera's video, checked
against the ground truth that ships beside it in ``../shared/realdata``.

``corridor_backpack.mp4``: a real indoor CCTV view (ABODA video 1, re-encoded); a person carries a backpack
in, stands beside it, walks off; it stays to the end (and tips over a few seconds after it is put down). A
floor zone that opts in to ``sidewalk_obstruction`` must give exactly one alert, on the bag, started within
5 s of its placement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import REPO, run_cli
from zones.detections import iou_matrix

REALDATA = REPO.parent / "shared" / "realdata" / "abandoned-objects"
CORRIDOR = REALDATA / "corridor_backpack.mp4"
START = "2026-11-27T09:00:00+08:00"
PLACED_WITHIN_S = 5.0
# The corridor floor below the walls, inside the letterbox bars (relative to the 640x480 frame).
FLOOR = [[0.0, 0.50], [1.0, 0.40], [1.0, 0.87], [0.0, 0.87]]


def _camera(tmp_path: Path) -> Path:
    config: dict[str, Any] = {
        "id": "cam-corridor-01",
        "name": "ABODA corridor",
        "source": CORRIDOR.name,
        "timezone": "Asia/Shanghai",
        "location": {"lon": 118.7969, "lat": 32.0603},
        "grid": {"code": "320102001001", "team": "team-a"},
        # dwell 10 s: the bag stays 27 s to the end of the 41 s clip.
        "zones": [
            {"name": "floor", "polygon": FLOOR, "relative": True, "categories": ["sidewalk_obstruction"], "dwell_s": 10}
        ],
    }
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.skipif(not CORRIDOR.is_file(), reason=f"real clip not present at {CORRIDOR} (../shared absent)")
def test_real_corridor_clip_a_backpack_left_is_one_obstruction(tmp_path: Path) -> None:
    truth = json.loads((REALDATA / "corridor_backpack.truth.json").read_text(encoding="utf-8"))
    [left] = [event for event in truth["events"] if event["type"] == "object_left"]
    out = tmp_path / "out"
    done = run_cli("audit", CORRIDOR, "--camera", _camera(tmp_path), "--out", out, "--start-time", START)
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [(a["category"], a["zone"]) for a in alerts] == [("sidewalk_obstruction", "floor")], alerts
    assert summary["warnings"] == []
    [alert] = alerts
    iou = float(iou_matrix(np.array([alert["bbox"]], dtype=np.float64), np.array([left["bbox_xyxy"]]))[0, 0])
    assert iou >= 0.5, f"bbox {alert['bbox']} against the truth {left['bbox_xyxy']}: IoU {iou:.2f}"
    start = alert["video_offset_s"]["start"]
    assert abs(start - left["placed_t_s"]) <= PLACED_WITHIN_S, f"started at {start} s, placed at {left['placed_t_s']} s"
    # It stays to the last frame: the incident is still open when the video ends.
    assert alert["event"] == "violation.opened" and alert["ended_at"] is None
