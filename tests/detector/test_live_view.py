"""Live end to end (issue #26): a real ``serve`` and a real ``run`` on a file source whose second half is
shifted by 8 % of its width. The service's camera list shows ``view_moved``; an incident that opens after the
move is marked ``camera_health`` on its case, one that opened before it is not.

Detections are replayed (``--detections-from``, keyed by the camera's seconds since its first frame), so the
test does not depend on trained weights; capture, the view check, incidents, spool and HTTP are the real ones.

After a change of view (the runner driven step by step, no service, no browser; shift 8 %, turn 3°, 70 % cover,
blur σ = 3): the runner uploads the new view as the camera's snapshot in the very step its status changes, not
at the next periodic snapshot (the setup page draws the old zones over it). After a move, the config version
the operator saves with the zones re-drawn makes that view the reference: the old one is deleted, the new one
learnt, ``online`` on the moved frames. A cover removed (focus restored) is uploaded again, once.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import httpx
import numpy as np
import pytest

from detector.live.analysers import AnalysisItem
from detector.live.camera import VIEW_DIR, CameraRuntime
from detector.live.configs import RemoteConfig
from detector.live.push import Delivery, Outcome
from detector.live.runner import LiveRunner
from detector.live.snapshots import SnapshotUploader
from detector.live.spool import Spool
from detector.video.capture import CapturedFrame
from detector.video.view_check import gray_view
from tests.conftest import REPO, STREETWATCH, free_port
from tests.detector import view_clips
from tests.detector.test_live_rtsp import Process, Service, camera_yaml, wait_for
from zones.alert import ModelRef
from zones.config import CameraConfig
from zones.detections import Detections

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


def _moved_snapshot(service: Service) -> bool:
    """Whether the service's snapshot of cam-v is the moved view (its left strip black, as the clip pads it)."""
    headers = {"Authorization": f"Bearer {service.reader_token}"}
    response = httpx.get(service.url + "/api/v1/cameras/cam-v/snapshot", headers=headers, timeout=5)
    if response.status_code != 200:
        return False
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    return image is not None and float(image[:, :70].mean()) < 16


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
        # The runner uploads the moved view at once (its periodic snapshot is 300 s away): the setup page has it.
        wait_for("the moved view as the snapshot", lambda: _moved_snapshot(service), 10, interval=0.5)
        cases = wait_for("both cases", lambda: _at_least(service.cases("cam-v"), 2), 60)
    finally:
        run.stop()
        service.process.stop()
    by_start = sorted(cases, key=lambda c: c["started_at"])
    assert [c["camera_health"] for c in by_start] == [None, "view_moved"], by_start
    assert "camera.view camera=cam-v status=view_moved" in run.text()
    assert "snapshot.view_changed camera=cam-v status=view_moved" in run.text()
    opened = re.search(r"^(\S+) INFO capture\.connecting camera=cam-v", run.text(), re.M)
    noticed = re.search(r"^(\S+) WARNING camera\.view camera=cam-v status=view_moved", run.text(), re.M)
    assert opened is not None and noticed is not None
    seconds = (datetime.fromisoformat(noticed[1]) - datetime.fromisoformat(opened[1])).total_seconds()
    # The file plays at its own pace from the capture's open: the move is at HALF_S of it.
    assert seconds - HALF_S <= 30, f"view_moved {seconds - HALF_S:.0f} s after the move"
    print(f"view_moved logged {seconds - HALF_S:.0f} s after the move (at the service {found_after:.0f} s after start)")


# ---- after a move: the new view to the setup page at once, the operator's new version its reference ---------

STEP_S = 2.0  # live mode analyses a frame every 2 s
CHANGE_S = 60.0  # the clip once as it was, then changed
SNAPSHOT_EVERY_S = 50.0
T0 = datetime(2026, 11, 27, 1, 0, 0, tzinfo=UTC)
KERB = [[0.05, 0.6], [0.6, 0.6], [0.6, 0.95], [0.05, 0.95]]
WIDTH, HEIGHT = 960, 540


def _rotated(polygon: list[list[float]], degrees: float) -> list[list[float]]:
    """``polygon`` (fractions of the view) where ``view_clips.rotate(degrees)`` puts it in the frame."""
    matrix = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), degrees, 1.0)
    turned = [matrix @ np.array([x * WIDTH, y * HEIGHT, 1.0]) for x, y in polygon]
    return [[round(float(x) / WIDTH, 5), round(float(y) / HEIGHT, 5)] for x, y in turned]


# (change from CHANGE_S on, the status it brings, the zones re-drawn on the new view; None: the change is
# undone 30 s after the status instead: the lens cleaned, the focus restored)
VIEW_CHANGES: list[tuple[str, view_clips.Alteration, str, list[list[float]] | None]] = [
    ("shift 8 %", view_clips.shift(0.08), "view_moved", [[x + 0.08, y] for x, y in KERB]),
    # A small move the zones still fit: the operator saves them as they are (the view fields unchanged).
    ("shift 3 %, zones kept", view_clips.shift(0.03), "view_moved", KERB),
    ("rotation 3°", view_clips.rotate(3.0), "view_moved", _rotated(KERB, 3.0)),
    ("70 % covered", view_clips.cover(0.70), "obstructed", None),
    ("blur σ 3", view_clips.blur(3.0), "blurred", None),
]


def _config(polygon: list[list[float]]) -> CameraConfig:
    return CameraConfig.model_validate(
        {"id": "cam-v", "name": "V", "source": str(CLIP), "timezone": "Asia/Shanghai",
         "location": {"lon": 118.7969, "lat": 32.0603},
         "zones": [{"name": "kerb", "polygon": polygon, "categories": ["street_vending"]}]}
    )  # fmt: skip


class Nothing:
    """The model sees nothing: only the view check and the snapshots matter here."""

    model = ModelRef(name="test", sha256="")

    def analyse(self, items: list[AnalysisItem]) -> list[Detections]:
        return [Detections.empty() for _ in items]


class Feed:
    def __init__(self) -> None:
        self.waiting: list[RemoteConfig] = []

    def take(self) -> list[RemoteConfig]:
        taken, self.waiting = self.waiting, []
        return taken


class Uploads:
    """The service end of the real ``SnapshotUploader``: what it PUTs, and when (monotonic)."""

    def __init__(self) -> None:
        self.puts: list[tuple[float, str, bytes]] = []
        self.arrived = threading.Condition()

    def put_bytes(self, path: str, data: bytes, content_type: str) -> Delivery:
        assert content_type == "image/jpeg"
        with self.arrived:
            self.puts.append((time.monotonic(), path, data))
            self.arrived.notify_all()
        return Delivery(Outcome.DELIVERED, 200)

    def wait_for(self, count: int, timeout_s: float) -> None:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.puts) >= count, timeout_s)


def _mean_difference(jpeg: bytes, image: view_clips.Image) -> float:
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return float(np.mean(np.abs(decoded.astype(np.float32) - image.astype(np.float32))))


@cache
def _images() -> list[view_clips.Image]:
    return view_clips.frames(CLIP, STEP_S)


@pytest.mark.skipif(not CLIP.exists(), reason=f"{CLIP} missing")
@pytest.mark.parametrize(("name", "change", "expected", "redrawn"), VIEW_CHANGES, ids=[row[0] for row in VIEW_CHANGES])
def test_a_changed_view_is_uploaded_at_once_and_a_new_version_becomes_the_reference(
    tmp_path: Path, name: str, change: view_clips.Alteration, expected: str, redrawn: list[list[float]] | None
) -> None:
    images = _images()
    clock = {"mono": 0.0}
    camera = CameraRuntime(_config(KERB), model=Nothing.model, state_dir=tmp_path, analysis_fps=1 / STEP_S,
                           evidence=False, mono_clock=lambda: clock["mono"], wall_clock=lambda: T0)  # fmt: skip
    camera.config_version = 1  # from the service, so a new version applies
    uploads = Uploads()
    uploader = SnapshotUploader(uploads, min_backoff_s=0.05)  # type: ignore[arg-type]  # put_bytes is all it uses
    feed = Feed()
    spool = Spool(tmp_path / "spool.sqlite3")
    runner = LiveRunner([camera], Nothing(), spool, state_dir=tmp_path, mono_clock=lambda: clock["mono"],
                        config_feed=feed,  # type: ignore[arg-type]  # take() is all the runner uses
                        snapshots=uploader, snapshot_every_s=SNAPSHOT_EVERY_S)  # fmt: skip
    reference = tmp_path / VIEW_DIR / f"cam-v-{WIDTH}x{HEIGHT}.png"
    undo_s = float("inf")
    pushed: list[tuple[float, str]] = []  # (t, status) each time the status pushed to the service changes
    offered: list[tuple[float, float]] = []  # (t, monotonic) of each step that offered a snapshot
    shown: dict[float, view_clips.Image] = {}

    def step(i: int) -> None:
        t = i * STEP_S
        image = images[i % len(images)]
        shown[t] = change(image) if CHANGE_S <= t < undo_s else image
        clock["mono"] = t
        camera.capture.stats.last_grab_mono = t
        camera.queue.put(CapturedFrame(i, T0 + timedelta(seconds=t), t, shown[t]))
        offered_at = time.monotonic()
        runner.step()
        if camera.last_snapshot == t:  # the runner's monotonic clock is the frame time here
            offered.append((t, offered_at))
        [status] = [json.loads(e.body)["status"] for e in spool.entries() if e.kind == "status"] or ["starting"]
        if not pushed or pushed[-1][1] != status:
            pushed.append((t, status))

    def steps(seconds: float) -> None:
        nonlocal i
        end = i + round(seconds / STEP_S)
        while i < end:
            step(i)
            i += 1

    uploader.start()
    try:
        i = 0
        while camera.health() != expected:
            assert i * STEP_S < CHANGE_S + 30, f"{name}: no {expected} within 30 s of the change: {pushed}"
            step(i)
            i += 1
        turned_s = pushed[-1][0]
        assert pushed == [(0.0, "online"), (turned_s, expected)]
        assert reference.exists(), "the old view's reference was kept"
        old_reference = cv2.imread(str(reference), cv2.IMREAD_GRAYSCALE)
        uploads.wait_for(len(offered), 5.0)

        # The uploads: the first frame, the periodic one, and the new view in the very step that changed the status.
        assert [t for t, _ in offered] == [0.0, SNAPSHOT_EVERY_S, turned_s]
        assert len(uploads.puts) == 3
        put_at, path, jpeg = uploads.puts[-1]
        [captured_at] = parse_qs(urlsplit(path).query)["captured_at"]
        assert datetime.fromisoformat(captured_at) == T0 + timedelta(seconds=turned_s)
        assert put_at - offered[-1][1] < 5.0, "uploaded within seconds, not at the next periodic snapshot"
        unchanged = images[int(turned_s / STEP_S) % len(images)]
        assert _mean_difference(jpeg, shown[turned_s]) < 3 < _mean_difference(jpeg, unchanged), "the new view"

        if redrawn is None:
            # The cover removed (the focus restored): back online, and that view uploaded too, once.
            undo_s = i * STEP_S
            steps(30)
            assert [status for _, status in pushed] == ["online", expected, "online"], pushed
            back_s = pushed[-1][0]
            uploads.wait_for(len(offered), 5.0)
            assert [t for t, _ in offered] == [0.0, SNAPSHOT_EVERY_S, turned_s, back_s]
            assert _mean_difference(uploads.puts[-1][2], shown[back_s]) < 3
            print(
                f"\n{name}: {expected} {turned_s - CHANGE_S:.0f} s after the change, uploaded "
                f"{put_at - offered[2][1]:.3f} s after that step; online {back_s - undo_s:.0f} s after the undo"
            )
            return

        # The operator re-draws the zones on the new view and saves version 2.
        feed.waiting = [RemoteConfig("cam-v", 2, _config(redrawn))]
        steps(STEP_S)
        assert camera.config_version == 2
        assert not reference.exists(), "the old reference is deleted with version 2"
        assert pushed[-1] == ((i - 1) * STEP_S, "online")
        readings = camera.view.readings if camera.view is not None else 0
        steps(60)
        uploads.wait_for(len(offered), 5.0)
    finally:
        uploader.stop()
        spool.close()
    assert reference.exists(), "the new view learnt and kept"
    learnt = cv2.imread(str(reference), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    new_view = gray_view(change(images[0])).astype(np.float32)
    assert float(np.mean(np.abs(learnt - new_view))) < float(np.mean(np.abs(old_reference - new_view)))
    assert camera.view is not None and camera.view.readings - readings >= 5, "checked against it, not idle"
    assert [status for _, status in pushed] == ["online", expected, "online"], pushed
    assert camera.health() == "online"
    # No upload for the version (its view is the one just uploaded); the periodic wait restarted at the change.
    assert [t for t, _ in offered][3:] == [turned_s + SNAPSHOT_EVERY_S]
    assert len(uploads.puts) == len(offered)
    print(f"\n{name}: {expected} {turned_s - CHANGE_S:.0f} s after the change, uploaded "
          f"{put_at - offered[2][1]:.3f} s after that step; with version 2 online over "
          f"{camera.view.readings - readings} checks")  # fmt: skip
