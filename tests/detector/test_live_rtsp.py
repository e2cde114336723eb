"""``streetwatch run`` end to end: a real RTSP server (GStreamer, Debian packages), the real service
(``streetwatch serve`` on SQLite), a camera that hangs, outages of the service and of the stream,
and a restart of ``run`` itself.

Detections are replayed from a file keyed by each camera's seconds since its first frame
(``--detections-from``), so the test does not depend on trained weights; frames, capture,
watchdog, incidents, evidence, spool and HTTP are the real ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from detector.live.runner import DEFAULT_ANALYSIS_FPS
from tests.conftest import REPO, STREETWATCH, free_port, make_test_video

GST_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")


def _gst_rtsp_available() -> bool:
    if not Path(GST_PYTHON).exists():
        return False
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('avdec_h264')"
    )
    return subprocess.run([GST_PYTHON, "-c", probe], capture_output=True, timeout=60, check=False).returncode == 0


pytestmark = pytest.mark.skipif(
    not _gst_rtsp_available(),
    reason="needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,ugly}, "
    "gstreamer1.0-libav (installed by .ci/run)",
)


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            last_error = error
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_error!r})")


class Process:
    """A child process with its output in a file; stopped by its own pid only."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.args, stdout=handle, stderr=subprocess.STDOUT, env=self.env, cwd=self.log.parent
        )
        handle.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class HangingServer:
    """Accepts TCP connections and never sends a byte (a camera that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def camera_yaml(path: Path, camera_id: str, source: str, polygon: list[list[float]], max_gap_s: float) -> Path:
    path.write_text(
        json.dumps(
            {
                "id": camera_id,
                "name": f"Test {camera_id}",
                "source": source,
                "timezone": "Asia/Shanghai",
                "location": {"lon": 118.7969, "lat": 32.0603},
                "max_gap_s": max_gap_s,
                "zones": [{"name": "walk", "polygon": polygon, "categories": ["street_vending"], "dwell_s": 2}],
            }
        ),
        encoding="utf-8",
    )
    return path


def replay_file(path: Path, seconds: float = 1200.0) -> Path:
    """A stall that never leaves on the left; on the right a stall every 10 s, present for 5 s, each
    at another place (so each is its own incident)."""
    lines = [json.dumps({"meta": {"width": 320, "height": 240, "model": {"name": "replay"}}})]
    steps = int(seconds * 2)
    for i in range(steps):
        t = i / 2
        detections = [{"xyxy": [20, 100, 70, 150], "class": "stall", "conf": 0.9, "track_id": 1}]
        cycle = int(t // 10)
        if t % 10 < 5:
            x = 170 + (cycle % 4) * 30
            detections.append({"xyxy": [x, 100, x + 25, 140], "class": "stall", "conf": 0.8, "track_id": 100 + cycle})
        lines.append(json.dumps({"frame": i, "t": t, "detections": detections}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Service:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = f"sqlite:///{workdir / 'service.db'}"
        env = dict(os.environ, STREETWATCH_LOG_LEVEL="warning")
        self.process = Process(
            "serve", [STREETWATCH, "serve", "--port", str(self.port), "--db", self.db], workdir / "serve.log", env
        )
        self.camera_token = self._token("camera", "live-test")
        self.reader_token = self._token("admin", "test-reader")

    def _token(self, role: str, name: str) -> str:
        done = subprocess.run(
            [STREETWATCH, "token", "create", "--role", role, "--name", name, "--db", self.db],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        self.process.start()
        wait_for("the service", lambda: httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200, 60)

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.reader_token}"}, timeout=5)
        response.raise_for_status()
        return response.json()

    def cameras(self) -> dict[str, dict[str, Any]]:
        return {item["id"]: item for item in self.get("/api/v1/cameras")["items"]}

    def cases(self, camera: str) -> list[dict[str, Any]]:
        return list(self.get(f"/api/v1/cases?camera={camera}&limit=500")["items"])


class Rtsp:
    def __init__(
        self, workdir: Path, clip: Path, size: tuple[int, int] = (320, 240), extra: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.process = Process(
            "rtsp",
            [
                GST_PYTHON,
                str(RTSP_SERVER),
                "--port",
                str(self.port),
                "--clip",
                str(clip),
                "--fps",
                "10",
                "--width",
                str(size[0]),
                "--height",
                str(size[1]),
                *extra,
            ],
            workdir / "rtsp.log",
        )

    def start(self) -> None:
        before = self.process.text().count("READY") if self.process.log.exists() else 0

        def ready() -> bool:
            proc = self.process.proc
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the RTSP server exited: {self.process.text()[-2000:]}")
            return self.process.text().count("READY") > before

        self.process.start()
        wait_for("the RTSP server", ready, 60)


class LiveSystem:
    """Service, RTSP server, a hanging camera and ``run`` processes; everything stopped at the end."""

    def __init__(
        self, workdir: Path, clip: Path, size: tuple[int, int] = (320, 240), rtsp_extra: tuple[str, ...] = ()
    ) -> None:
        self.workdir = workdir
        self.service = Service(workdir)
        self.rtsp = Rtsp(workdir, clip, size, rtsp_extra)
        self.hang = HangingServer()
        self.health_port = free_port()
        self.started: list[Process] = []

    def __enter__(self) -> LiveSystem:
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in [*self.started, self.rtsp.process, self.service.process]:
            process.stop(signal.SIGKILL)
        self.hang.close()

    def runner(self, cameras: list[Path], log: str, *extra: str) -> Process:
        args = [
            STREETWATCH,
            "run",
            "--push",
            self.service.url,
            "--state-dir",
            str(self.workdir / "state"),
            "--health-port",
            str(self.health_port),
            *extra,
        ]
        args += [arg for path in cameras for arg in ("--camera", str(path))]
        env = dict(os.environ, STREETWATCH_TOKEN=self.service.camera_token, YOLO_OFFLINE="1")
        process = Process("run", args, self.workdir / log, env)
        self.started.append(process)
        return process

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).json()
        data["by_id"] = {c["id"]: c for c in data["cameras"]}
        return data


@pytest.fixture
def system(tmp_path: Path) -> Iterator[dict[str, Any]]:
    # A small generated clip: with replayed detections the picture does not matter, and it keeps
    # the server quick to (re)start. The sample clip is streamed by the model test below.
    clip = make_test_video(tmp_path / "clip.mp4", seconds=4, size="320x240", fps=10)
    with LiveSystem(tmp_path, clip) as live:
        live.service.start()
        live.rtsp.start()
        left = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
        right = [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]
        configs = [
            camera_yaml(tmp_path / "a.yaml", "cam-a", live.rtsp.url, left, max_gap_s=120),
            camera_yaml(tmp_path / "b.yaml", "cam-b", live.rtsp.url, right, max_gap_s=3),
            camera_yaml(tmp_path / "h.yaml", "cam-h", f"rtsp://127.0.0.1:{live.hang.port}/hangs", left, max_gap_s=3),
        ]
        replay = ("--detections-from", str(replay_file(tmp_path / "r.jsonl")))
        yield {
            "service": live.service,
            "rtsp": live.rtsp,
            "hang": live.hang,
            "configs": configs,
            "runner": lambda cameras, log: live.runner(cameras, log, *replay),
            "health": live.health,
        }


ALERT_LINE = re.compile(r"alert\.(opened|closed) camera=(\S+) id=(\S+)")
DELIVERED_LINE = re.compile(r"spool\.delivered kind=alert key=(\S+)")


def test_live_cameras_through_outages_and_restart(system: dict[str, Any]) -> None:
    service: Service = system["service"]
    rtsp: Rtsp = system["rtsp"]
    health: Callable[[], dict[str, Any]] = system["health"]
    run = system["runner"](system["configs"], "run.log")
    run.start()
    t_start = time.monotonic()

    # 1. Both RTSP cameras go online and their violations arrive at the service.
    wait_for(
        "cam-a and cam-b online at the service",
        lambda: (
            {c: s["status"] for c, s in service.cameras().items() if c != "cam-h"}
            == {"cam-a": "online", "cam-b": "online"}
        ),
        40,
    )
    persistent = wait_for("the persistent stall's case", lambda: service.cases("cam-a"), 20)
    assert len(persistent) == 1 and persistent[0]["status"] == "reported"
    wait_for("a cam-b case", lambda: service.cases("cam-b"), 20)
    first_case = persistent[0]
    assert first_case["evidence"], "snapshots were uploaded with the record"

    # 2. The service is down for 30 s while alerts are produced: all arrive afterwards, once each.
    #    Meanwhile the hanging camera goes offline 20 s after start without slowing the others.
    alerts_before = len(ALERT_LINE.findall(run.text()))
    frames_before = {c: s["frames_analysed"] for c, s in health()["by_id"].items()}
    assert service.process.stop() is not None
    down = time.monotonic()
    wait_for(
        "cam-h offline",
        lambda: health()["by_id"]["cam-h"]["status"] == "offline",
        max(1.0, 30 - (time.monotonic() - t_start)),
    )
    time.sleep(max(0.0, 24 - (time.monotonic() - t_start)))
    now = health()["by_id"]
    assert now["cam-h"]["frames_analysed"] == 0 and system["hang"].accepted >= 1
    for camera in ("cam-a", "cam-b"):
        assert now[camera]["status"] == "online"
        slowest_ok = 0.75 * DEFAULT_ANALYSIS_FPS
        assert now[camera]["analysis_fps"] >= slowest_ok, f"{camera} slowed by the hanging camera: {now[camera]}"
        assert now[camera]["frames_analysed"] > frames_before[camera]
    time.sleep(max(0.0, 30 - (time.monotonic() - down)))
    produced = ALERT_LINE.findall(run.text())[alerts_before:]
    assert sum(1 for event, camera, _ in produced if event == "opened" and camera == "cam-b") >= 2, produced
    assert health()["spool"]["pending"] >= len(produced)
    service.start()
    wait_for("the spool to drain", lambda: health()["spool"]["pending"] == 0, 40)
    delivered = DELIVERED_LINE.findall(run.text())
    logged = ALERT_LINE.findall(run.text())
    for event, _camera, alert_id in logged:
        key = f"{alert_id}:violation.{event}"
        assert delivered.count(key) == 1, f"{key} delivered {delivered.count(key)} times"
    cases_b = {case["id"]: case for case in service.cases("cam-b")}
    for event, camera, alert_id in logged:
        if camera == "cam-b":
            assert alert_id in cases_b, f"{event} of {alert_id} lost"
            if event == "closed":
                assert cases_b[alert_id]["ended_at"] is not None
    assert len(cases_b) == len({alert_id for _, camera, alert_id in logged if camera == "cam-b"})
    assert health()["spool"]["dead"] == 0
    assert service.cameras()["cam-h"]["status"] == "offline", "the spooled status arrived too"

    # 3. The RTSP server dies: offline within 30 s; it comes back: online, analysis resumes.
    rtsp.process.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_for("cam-a offline", lambda: service.cameras()["cam-a"]["status"] == "offline", 30)
    assert time.monotonic() - killed <= 30
    assert service.cameras()["cam-b"]["status"] == "offline"
    rtsp.start()
    wait_for("cam-a online again", lambda: service.cameras()["cam-a"]["status"] == "online", 40)
    analysed = health()["by_id"]["cam-a"]["frames_analysed"]
    wait_for("analysis to resume", lambda: health()["by_id"]["cam-a"]["frames_analysed"] >= analysed + 4, 10)
    assert len(service.cases("cam-a")) == 1, "the stall outlasted the 40 s outage (max_gap_s 120): same incident"

    # 4. SIGTERM: clean exit, nothing left in the spool.
    assert run.stop() == 0
    assert "live.stopped pending=0" in run.text()
    assert service.cameras()["cam-a"]["status"] == "offline"

    # 5. Restart: the engine state comes back; the reported stall is not reported again.
    again = system["runner"](system["configs"][:2], "run2.log")
    again.start()
    wait_for("cam-a online after the restart", lambda: service.cameras()["cam-a"]["status"] == "online", 40)
    wait_for("state restored", lambda: "state.restored camera=cam-a open_incidents=1" in again.text(), 10)
    time.sleep(5)  # far beyond the 2 s dwell: a fresh engine would have fired by now
    assert [case["id"] for case in service.cases("cam-a")] == [first_case["id"]]
    assert "alert.opened camera=cam-a" not in again.text()
    assert again.stop() == 0


def _model_available() -> bool:
    from detector.model.wrapper import default_card
    from zones.errors import ModelError

    try:
        return default_card().weights.exists()
    except ModelError:
        return False


SAMPLE = REPO / "sample_videos" / "street_day"


@pytest.mark.slow
@pytest.mark.skipif(not _model_available(), reason="no trained model in models/ yet")
@pytest.mark.skipif(not SAMPLE.with_suffix(".mp4").exists(), reason="sample clip street_day.mp4 missing")
def test_sample_clip_violation_arrives_from_the_model(tmp_path: Path) -> None:
    """The sample clip looped over RTSP, the default model, the clip's own camera config (shorter
    dwell): a violation the clip shows reaches the service as a case."""
    config = yaml.safe_load(SAMPLE.with_suffix(".camera.yaml").read_text(encoding="utf-8"))
    truth = json.loads(SAMPLE.with_suffix(".truth.json").read_text(encoding="utf-8"))
    size = tuple(config.get("frame_size") or (960, 540))
    with LiveSystem(tmp_path, SAMPLE.with_suffix(".mp4"), (int(size[0]), int(size[1]))) as live:
        live.service.start()
        live.rtsp.start()
        config["source"] = live.rtsp.url
        for zone in config["zones"]:
            zone["dwell_s"] = 5
        camera = tmp_path / "camera.yaml"
        camera.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        run = live.runner([camera], "run.log")
        run.start()
        wanted = {incident["category"] for incident in truth["incidents"]}
        cases = wait_for(
            "a case of the clip's violations",
            lambda: [c for c in live.service.cases(config["id"]) if c["category"] in wanted],
            150,
            interval=1.0,
        )
        assert cases[0]["camera_id"] == config["id"] and cases[0]["evidence"]
        assert run.stop() == 0
