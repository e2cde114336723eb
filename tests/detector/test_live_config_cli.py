"""``streetwatch run --config-from URL`` as a user starts it, against a real ``streetwatch serve`` on loopback:
started before the service (it waits and says so), it runs the service's camera beside a ``--camera`` file,
picks up a PUT of a new config version without a restart, and uploads snapshot frames. Bad input exits 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import STREETWATCH, free_port, run_cli, run_cli_in_process
from tests.detector.scene_video import scene_video

WHOLE = [[0, 0], [1, 0], [1, 1], [0, 1]]


def _camera(camera_id: str, source: str, zone: str) -> dict[str, Any]:
    return {
        "id": camera_id,
        "name": camera_id,
        "source": source,
        "timezone": "Asia/Shanghai",
        "location": {"lon": 118.7969, "lat": 32.0603},
        "grid": {"code": "320102001001", "team": "team-a"},
        "zones": [{"name": zone, "polygon": WHOLE, "categories": ["street_vending"], "dwell_s": 1}],
    }


def _wait(what: str, predicate: Callable[[], Any], processes: list[subprocess.Popen[bytes]], log: Path,
          timeout_s: float = 90) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"{process.args[1]} ended while waiting for {what}:\n{log.read_text()}"
        try:
            found = predicate()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-5000:]}")


def test_run_takes_configs_from_the_service_and_picks_up_a_new_version(tmp_path: Path) -> None:
    clip = scene_video(tmp_path / "clip.mp4", seconds=4, fps=10, gop=5, size=(160, 120))  # loops
    replay = tmp_path / "replay.jsonl"
    stall = [{"xyxy": [40, 40, 80, 100], "class": "stall", "conf": 0.9, "track_id": 1}]
    replay.write_text("".join(json.dumps({"frame": i, "t": i / 2, "detections": stall}) + "\n" for i in range(2400)))
    yaml_camera = tmp_path / "file.camera.yaml"
    yaml_camera.write_text(json.dumps(_camera("cam-file", "clip.mp4", "walk")), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'service.db'}"
    camera_token = run_cli("token", "create", "--role", "camera", "--name", "runner", "--db", db).stdout.strip()
    operator_token = run_cli("token", "create", "--role", "operator", "--name", "setup", "--db", db).stdout.strip()
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "run.log"
    runner = subprocess.Popen(
        [STREETWATCH, "run", "--config-from", url, "--camera", str(yaml_camera), "--detections-from", str(replay),
         "--state-dir", str(tmp_path / "state"), "--analysis-fps", "2", "--config-poll-s", "0.5",
         "--snapshot-every-s", "1", "--no-evidence"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=tmp_path,
        env={**os.environ, "STREETWATCH_TOKEN": camera_token},
    )  # fmt: skip
    server: subprocess.Popen[bytes] | None = None
    try:
        # Started before the service: it says so and runs its --camera file meanwhile.
        _wait("the unreachable message", lambda: "config.unreachable" in log.read_text(), [runner], log)
        server = subprocess.Popen([STREETWATCH, "serve", "--port", url.rsplit(":", 1)[1], "--db", db],
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        both = [runner, server]
        _wait("the service", lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, both, log)
        operator = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {operator_token}"}, timeout=10)

        def cases(camera: str) -> dict[str, dict[str, Any]]:
            items = operator.get("/api/v1/cases", params={"camera": camera}).json()["items"]
            return {item["zone"]: item for item in items}

        first = operator.put("/api/v1/cameras/cam-live/config", json=_camera("cam-live", str(clip), "walk-a"))
        assert first.status_code == 200 and first.json()["version"] == 1, first.text
        _wait("the first version's alert", lambda: "walk-a" in cases("cam-live"), both, log)
        assert "walk" in _wait("the --camera file's alert", lambda: cases("cam-file"), both, log)

        second = operator.put("/api/v1/cameras/cam-live/config", json=_camera("cam-live", str(clip), "walk-b"),
                              headers={"If-Match": first.headers["etag"]})  # fmt: skip
        assert second.status_code == 200 and second.json()["version"] == 2, second.text
        now = _wait("the second version's alert", lambda: "walk-b" in cases("cam-live") and cases("cam-live"), both,
                    log)  # fmt: skip
        assert now["walk-a"]["cleared_at"] is not None, "the old zone's incident was closed at the change"
        assert now["walk-b"]["status"] == "reported" and now["walk-b"]["cleared_at"] is None
        text = log.read_text()
        assert "config.applied camera=cam-live version=1 (new camera)" in text
        assert "config.applied camera=cam-live version=2 previous=1 closed_incidents=1" in text
        assert runner.poll() is None and "Traceback" not in text, "the same process, no restart"

        snapshot = _wait("a snapshot", lambda: operator.get("/api/v1/cameras/cam-live/snapshot").status_code == 200
                         and operator.get("/api/v1/cameras/cam-live/snapshot"), both, log)  # fmt: skip
        assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.content.startswith(b"\xff\xd8\xff")
        assert datetime.fromisoformat(snapshot.headers["x-captured-at"]).tzinfo is not None
        assert operator.get("/api/v1/cameras/cam-file/snapshot").status_code == 200
        cached = json.loads((tmp_path / "state" / "configs" / "cam-live.json").read_text())
        assert cached["version"] == 2
        operator.close()

        runner.send_signal(signal.SIGINT)
        assert runner.wait(30) == 0
    finally:
        for process in (runner, server):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(20)


# (arguments after `run`, text of the one-paragraph error): exit 2 before anything starts.
BAD_RUNS: list[tuple[list[str], str]] = [
    ([], "run needs --camera CAMERA.yaml (one or more) or --config-from URL"),
    (["--config-from", "ftp://example.org"], "--config-from 'ftp://example.org' must be an http:// or https:// URL"),
    (["--config-from", "http://127.0.0.1:9", "--camera-id", "Cam_A"], "--camera-id: 'Cam_A' is not a camera id"),
    (["--push", "http://127.0.0.1:9", "--camera", "{yaml}", "--camera-id", "cam-a"], "give --config-from too"),
    (["--config-from", "http://127.0.0.1:9", "--snapshot-every-s", "0.5"], "--snapshot-every-s 0.5 must be 0 (off)"),
    (["--config-from", "http://127.0.0.1:9", "--model", "nowhere.pt"], "nowhere.pt: model weights not found"),
]


@pytest.mark.parametrize(("args", "message"), BAD_RUNS, ids=[row[1] for row in BAD_RUNS])
def test_bad_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    yaml_camera = tmp_path / "a.yaml"
    yaml_camera.write_text(json.dumps(_camera("cam-a", "rtsp://127.0.0.1:9/a", "walk")), encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        code, _, err, _ = run_cli_in_process(["run", *(a.replace("{yaml}", str(yaml_camera)) for a in args)])
    finally:
        os.chdir(cwd)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "streetwatch-state").exists(), "refused before anything was written"
