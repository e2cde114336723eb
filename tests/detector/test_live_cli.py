"""``streetwatch run`` as a user starts it: bad input exits 2 with file and field; SIGINT stops it
cleanly and keeps what the unreachable service did not get."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import STREETWATCH, make_test_video

CAMERA = {
    "id": "cam-a",
    "name": "A",
    "source": "clip.mp4",
    "timezone": "Asia/Shanghai",
    "location": {"lon": 118.7969, "lat": 32.0603},
    "zones": [
        {"name": "walk", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "categories": ["street_vending"], "dwell_s": 1}
    ],
}


def write_camera(path: Path, **changes: object) -> Path:
    path.write_text(json.dumps({**CAMERA, **changes}), encoding="utf-8")
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        pytest.param(
            lambda d: [write_camera(d / "a.yaml", timezone="Mars/Olympus")],
            [],
            "a.yaml: timezone: unknown IANA timezone",
            id="bad config names file and field",
        ),
        pytest.param(
            lambda d: [write_camera(d / "a.yaml"), write_camera(d / "b.yaml")],
            [],
            "b.yaml: id: camera id 'cam-a' is also used by",
            id="duplicate camera ids",
        ),
        pytest.param(
            lambda d: [write_camera(d / "a.yaml", source="missing.mp4")],
            [],
            "a.yaml: source: source file",
            id="missing source file",
        ),
        pytest.param(
            lambda d: [write_camera(d / "a.yaml")],
            ["--push", "ftp://x"],
            "must be an http:// or https:// URL",
            id="push URL",
        ),
        pytest.param(
            lambda d: [write_camera(d / "a.yaml")],
            ["--model", "nowhere.pt"],
            "nowhere.pt: model weights not found",
            id="missing model",
        ),
        pytest.param(
            lambda d: [write_camera(d / "a.yaml")],
            ["--detections-from", "nothing.jsonl"],
            "nothing.jsonl: file not found",
            id="missing detections file",
        ),
        pytest.param(
            lambda d: [write_camera(d / "a.yaml")],
            ["--reuse-threshold", "300"],
            "less than or equal to 255",
            id="reuse threshold out of range",
        ),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess[str]],
    setup: Callable[[Path], list[Path]],
    extra: list[str],
    message: str,
) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"")
    cameras = [arg for path in setup(tmp_path) for arg in ("--camera", str(path))]
    push = [] if "--push" in extra else ["--push", "http://127.0.0.1:9"]
    result = cli("run", *cameras, *push, *extra, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_push_is_required(cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    result = cli("run", "--camera", str(write_camera(tmp_path / "a.yaml")), cwd=tmp_path)
    assert result.returncode == 2 and "--push" in result.stderr


def test_sigint_stops_cleanly_and_keeps_undelivered_records(tmp_path: Path) -> None:
    make_test_video(tmp_path / "clip.mp4", seconds=2, size="160x120", fps=10)
    camera = write_camera(tmp_path / "a.yaml")
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        "\n".join(
            json.dumps(
                {
                    "frame": i,
                    "t": i / 2,
                    "detections": [{"xyxy": [40, 40, 80, 100], "class": "stall", "conf": 0.9, "track_id": 1}],
                }
            )
            for i in range(200)
        )
        + "\n"
    )
    log = tmp_path / "run.log"
    process = subprocess.Popen(
        [
            STREETWATCH,
            "run",
            "--camera",
            str(camera),
            "--push",
            f"http://127.0.0.1:{closed_port()}",
            "--detections-from",
            str(replay),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=dict(os.environ, STREETWATCH_TOKEN="t"),
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while "alert.opened camera=cam-a" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "alert.opened camera=cam-a" in log.read_text()
        second = subprocess.run(
            [
                STREETWATCH,
                "run",
                "--camera",
                str(camera),
                "--push",
                "http://127.0.0.1:9",
                "--detections-from",
                str(replay),
                "--state-dir",
                str(tmp_path / "state"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2 and "another streetwatch run is using this --state-dir" in second.stderr
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text()
    assert "live.stopping signal=SIGINT" in text and "spool.kept" in text and "Traceback" not in text
    with sqlite3.connect(tmp_path / "state" / "spool.sqlite3") as db:
        kinds = [row[0] for row in db.execute("SELECT kind FROM outbox ORDER BY seq")]
        states = db.execute("SELECT camera_id FROM camera_state").fetchall()
    assert "alert" in kinds and "evidence" in kinds, kinds
    assert states == [("cam-a",)]


def test_cli_default_analysis_rate_is_the_live_default() -> None:
    import inspect

    from detector import cli
    from detector.live.runner import DEFAULT_ANALYSIS_FPS

    assert inspect.signature(cli.run).parameters["analysis_fps"].default == DEFAULT_ANALYSIS_FPS == 0.5
