"""Live end to end (issue #26): a real ``serve`` and a real ``run`` on a file source whose second half is
shifted by 8 % of its width. The service's camera list shows ``view_moved``; an incident that opens after the
move is marked ``camera_health`` on its case, one that opened before it is not.

Detections are replayed (``--detections-from``, keyed by the camera's seconds since its first frame), so the
test does not depend on trained weights; capture, the view check, incidents, spool and HTTP are the real ones.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, STREETWATCH, free_port
from tests.detector import view_clips
from tests.detector.test_live_rtsp import Process, Service, camera_yaml, wait_for

CLIP = REPO / "sample_videos" / "street_day.mp4"
HALF_S = 30.0
BEFORE = (10.0, 18.0)  # a stall seen before the move (opens at 12 s)
AFTER = (50.0, 58.0)  # a stall seen after it (opens at 52 s; the move is found by ~45 s)


def _replay(path: Path) -> Path:
    lines = [json.dumps({"meta": {"width": 960, "height": 540, "model": {"name": "replay"}}})]
    for i in range(0, 400):
        t = i / 2
        detections = []
        for k, (start, end) in enumerate((BEFORE, AFTER)):
            if start <= t < end:
                x = 100 + k * 400
                detections.append({"xyxy": [x, 380, x + 120, 500], "class": "stall", "conf": 0.9, "track_id": k + 1})
        lines.append(json.dumps({"frame": i, "t": t, "detections": detections}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _at_least(items: list[dict[str, Any]], count: int) -> list[dict[str, Any]] | None:
    return items if len(items) >= count else None


@pytest.mark.slow
@pytest.mark.skipif(not CLIP.exists(), reason=f"{CLIP} missing")
def test_a_camera_whose_view_moved_is_shown_and_its_new_incident_marked(tmp_path: Path) -> None:
    moved = view_clips.shift_second_half(CLIP, tmp_path / "moved.mp4", half_s=HALF_S, shift_px=78)
    service = Service(tmp_path)
    config = camera_yaml(tmp_path / "cam.yaml", "cam-v", str(moved), [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], 30)
    run = Process(
        "run",
        [
            STREETWATCH, "run", "--camera", str(config), "--push", service.url, "--state-dir", str(tmp_path / "state"),
            "--health-port", str(free_port()), "--detections-from", str(_replay(tmp_path / "r.jsonl")),
        ],
        tmp_path / "run.log",
        env={**os.environ, "STREETWATCH_TOKEN": service.camera_token, "YOLO_OFFLINE": "1"},
    )  # fmt: skip
    try:
        service.start()
        run.start()
        started = time.monotonic()
        wait_for("cam-v online", lambda: service.cameras().get("cam-v", {}).get("status") == "online", 60)
        wait_for(
            "cam-v view_moved", lambda: service.cameras()["cam-v"]["status"] == "view_moved", HALF_S + 60, interval=1
        )
        found_after = time.monotonic() - started
        cases = wait_for("both cases", lambda: _at_least(service.cases("cam-v"), 2), 60)
    finally:
        run.stop()
        service.process.stop()
    by_start = sorted(cases, key=lambda c: c["started_at"])
    assert [c["camera_health"] for c in by_start] == [None, "view_moved"], by_start
    assert "camera.view camera=cam-v status=view_moved" in run.text()
    opened = re.search(r"^(\S+) INFO capture\.connecting camera=cam-v", run.text(), re.M)
    noticed = re.search(r"^(\S+) WARNING camera\.view camera=cam-v status=view_moved", run.text(), re.M)
    assert opened is not None and noticed is not None
    seconds = (datetime.fromisoformat(noticed[1]) - datetime.fromisoformat(opened[1])).total_seconds()
    # The file plays at its own pace from the capture's open: the move is at HALF_S of it.
    assert seconds - HALF_S <= 30, f"view_moved {seconds - HALF_S:.0f} s after the move"
    print(f"view_moved logged {seconds - HALF_S:.0f} s after the move (at the service {found_after:.0f} s after start)")
