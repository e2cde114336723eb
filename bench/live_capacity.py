"""Live capacity: how many 1080p25 camera streams one machine sustains with ``streetwatch run``.

Cameras: a relay in this process plays each sample clip (default street_day and residential_day),
upscaled to 1920x1080 and encoded once like an IP camera's main stream (H.264, 25 fps, GOP 50, no
B-frames, ``--bitrate`` CBR-like; cached in ``--cache``), as a live HTTP stream per camera
(``http://127.0.0.1:<port>/<clip>/<camera>.h264``, raw Annex B): one access unit every 40 ms, from a
fixed phase of the GOP after the camera connects (cameras are not in step), looping for ever, never
re-encoded (so the bench spends no CPU on encoding). The relay knows how far each camera is behind
real time: frames it could not send yet plus the bytes waiting unread in the camera's socket
(``/proc/net/tcp``), in seconds of video.

For N = 1, 2, 4, 8, 16 cameras (``--levels``) it starts one ``streetwatch run`` with N cameras at the
default analysis rate, the default model (``--analyser replay``: detections replayed from a file,
no inference, to see what capture alone allows) and pushes into one real ``streetwatch serve``
(SQLite) on loopback. After every camera is online and ``--warmup`` seconds, it measures for
``--seconds``: analysed frames per camera, dropped frames, stream backlog, CPU of the run process
(and of its capture threads, which read and decode the streams), and alert latency:
``created_at`` of the case in the service minus ``alerted_at`` of the record (the frame time at
which the dwell completed), for alerts due inside the window. It stops after a level that is
clearly saturated.

Sustains (see ``verdict``): every camera analyses ≥ 90 % of the configured rate over the window,
the alert latency p95 is < 2 s (with at least one alert measured), no camera is more than 1 s of
video behind its stream at the end of the window, every camera is online, and nothing is left in
the spool after a 10 s drain.

Before the ladder, the per-stream costs are measured alone in this process ("components"): CPU to
decode the 1080p stream as the capture does at the default rate (key frames only, PyAV
``skip_frame=NONKEY``), to decode every frame of it (what the capture does when a camera's key
frames are sparser than the analysis needs), to decode every frame of a 640x360 sub-stream of the
same clip, and the model's CPU per analysed 1080p frame; from them, the bounds that decode and
inference each put on the number of streams.

    .venv/bin/python -m bench.live_capacity                         # the recorded run (≈ 10 min)
    .venv/bin/python -m bench.live_capacity --levels 1,2 --warmup 8 --seconds 20 --clip-seconds 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from bench.common import (
    STREETWATCH,
    cpu_seconds,
    create_token,
    latency_summary,
    machine_busy,
    start_serve,
    stop_process,
    tail,
    thread_cpu_seconds,
)
from bench.live_memory import camera_yaml, free_port, replay, wait_until

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_videos"
DEFAULT_CLIPS = ("street_day", "residential_day")
DEFAULT_LEVELS = (1, 2, 4, 8, 16)
SOURCE_FPS = 25
GOP = 50
WIDTH, HEIGHT = 1920, 1080
SUB_WIDTH, SUB_HEIGHT = 640, 360

# "Sustains": the thresholds of ``verdict``.
MIN_FPS_RATIO = 0.9
MAX_P95_S = 2.0
MAX_BACKLOG_S = 1.0
# "Clearly saturated": worse than these, larger levels are not run.
SATURATED_FPS_RATIO = 0.75
SATURATED_BACKLOG_S = 5.0


# ---- the verdict -----------------------------------------------------------------------------------


@dataclass
class LevelMeasure:
    """What one level measured, as far as the verdict needs it."""

    configured_fps: float
    camera_fps: dict[str, float]
    alert_latencies_s: list[float]
    backlog_s: dict[str, float]
    offline: list[str] = field(default_factory=list)
    spool_pending: int = 0


def verdict(m: LevelMeasure) -> tuple[bool, bool, list[str]]:
    """(sustained, clearly saturated, reasons it is not sustained)."""
    reasons: list[str] = []
    floor = MIN_FPS_RATIO * m.configured_fps
    slow = {camera: fps for camera, fps in m.camera_fps.items() if fps < floor}
    if slow:
        worst = min(slow, key=lambda camera: slow[camera])
        reasons.append(
            f"{len(slow)} of {len(m.camera_fps)} cameras analysed < {floor:g} fps "
            f"({MIN_FPS_RATIO:.0%} of {m.configured_fps:g}); slowest {worst} {slow[worst]:.2f}"
        )
    if not m.alert_latencies_s:
        reasons.append("no alert fell due in the window: latency not measured")
    else:
        p95 = float(np.percentile(m.alert_latencies_s, 95))
        if p95 >= MAX_P95_S:
            reasons.append(f"alert latency p95 {p95:.2f} s ≥ {MAX_P95_S:g} s")
    behind = {camera: s for camera, s in m.backlog_s.items() if s > MAX_BACKLOG_S}
    if behind:
        worst = max(behind, key=lambda camera: behind[camera])
        reasons.append(
            f"{len(behind)} cameras > {MAX_BACKLOG_S:g} s behind their stream (decoding slower than "
            f"{SOURCE_FPS} fps); worst {worst} {behind[worst]:.1f} s"
        )
    if m.offline:
        reasons.append(f"offline: {', '.join(m.offline)}")
    if m.spool_pending:
        reasons.append(f"{m.spool_pending} records still in the spool after the drain")
    min_ratio = min(m.camera_fps.values(), default=0.0) / m.configured_fps
    saturated = bool(
        min_ratio < SATURATED_FPS_RATIO
        or max(m.backlog_s.values(), default=0.0) > SATURATED_BACKLOG_S
        or len(m.offline) > 0
        or (m.alert_latencies_s and float(np.percentile(m.alert_latencies_s, 95)) >= 2 * MAX_P95_S)
    )
    return not reasons, saturated, reasons


# ---- streams -----------------------------------------------------------------------------------------


def encode(
    clip: Path, out: Path, *, seconds: float, width: int, height: int, bitrate: str, container: str = "h264"
) -> Path:
    """The clip looped to ``seconds``, scaled, as an IP camera encodes it (cached by name)."""
    if out.exists():
        return out
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed to make the benchmark streams")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial" + out.suffix)
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-stream_loop", "-1", "-i", str(clip), "-t", f"{seconds:g}"]
    args += ["-vf", f"scale={width}:{height}", "-r", str(SOURCE_FPS), "-an", "-c:v", "libx264", "-preset", "veryfast"]
    args += ["-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate, "-g", str(GOP), "-bf", "0"]
    # An access-unit delimiter before every frame lets the relay cut the stream into frames; headers
    # repeat at every key frame like a camera's.
    args += ["-x264-params", "aud=1:repeat-headers=1", "-pix_fmt", "yuv420p", "-f", container, "-y", str(partial)]
    subprocess.run(args, check=True, timeout=1800)
    partial.rename(out)
    return out


def access_units(data: bytes) -> list[bytes]:
    """An Annex B H.264 stream cut before each access-unit delimiter (NAL type 9)."""
    starts: list[int] = []
    at = data.find(b"\x00\x00\x01\x09")
    while at >= 0:
        starts.append(at - 1 if at > 0 and data[at - 1] == 0 else at)
        at = data.find(b"\x00\x00\x01\x09", at + 4)
    if not starts or starts[0] != 0:
        raise ValueError("stream does not start with an access-unit delimiter")
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


@dataclass
class Connection:
    started: float
    client_port: int
    sent: int = 0
    alive: bool = True


class StreamRelay:
    """Live HTTP cameras on loopback: each connection gets the clip from its first frame at 25 fps."""

    def __init__(self, streams: dict[str, list[bytes]], fps: int = SOURCE_FPS) -> None:
        self.streams = streams
        self.fps = fps
        self.bytes_per_frame = {name: sum(map(len, units)) / len(units) for name, units in streams.items()}
        self.connections: dict[str, list[Connection]] = {}
        self.clip_of: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[0] not in relay.streams or not parts[1].endswith(".h264"):
                    self.send_error(404)
                    return
                relay.serve(self, parts[0], parts[1].removesuffix(".h264"))

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, name="relay", daemon=True).start()

    def phase_s(self, camera: str) -> float:
        """The camera's fixed offset within one GOP (from its name: the same on every reconnect)."""
        return (zlib.crc32(camera.encode()) % GOP) / self.fps

    def url(self, clip: str, camera: str) -> str:
        return f"http://127.0.0.1:{self.port}/{clip}/{camera}.h264"

    def serve(self, handler: BaseHTTPRequestHandler, clip: str, camera: str) -> None:
        sock: socket.socket = handler.connection
        # A small send buffer: a camera that reads too slowly shows up as frames not sent yet.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        units = self.streams[clip]
        connection = Connection(started=time.monotonic(), client_port=int(handler.client_address[1]))
        with self._lock:
            self.connections.setdefault(camera, []).append(connection)
            self.clip_of[camera] = clip
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "video/h264")
            handler.send_header("Cache-Control", "no-store")
            handler.end_headers()
            handler.wfile.flush()
            # Independent cameras are not in step: each stream starts at its own phase of the GOP, so
            # key frames (what the capture decodes) reach the analysis spread out, as from real cameras.
            connection.started = time.monotonic() + self.phase_s(camera)
            while not self._stop.is_set():
                wait = connection.started + connection.sent / self.fps - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                sock.sendall(units[connection.sent % len(units)])
                connection.sent += 1
        except OSError:  # the camera hung up (its probe, a reconnect, the end of a level)
            pass
        finally:
            connection.alive = False

    def current(self, camera: str) -> Connection | None:
        """The camera's newest connection that is still open (its liveness probe comes and goes first)."""
        with self._lock:
            alive = [c for c in self.connections.get(camera, []) if c.alive]
        return max(alive, key=lambda c: c.started) if alive else None

    def backlog_s(self, camera: str, unread: dict[int, int]) -> float | None:
        """Seconds of video the camera is behind real time: frames due but not sent, plus bytes
        sent but not read yet by the camera process (its socket's receive queue)."""
        connection = self.current(camera)
        if connection is None:
            return None
        due = (time.monotonic() - connection.started) * self.fps
        queued = unread.get(connection.client_port, 0) / self.bytes_per_frame[self.clip_of[camera]]
        return max(0.0, due - connection.sent + queued) / self.fps

    def unread_bytes(self) -> dict[int, int]:
        """Receive-queue bytes of loopback TCP sockets connected to the relay, by their local port."""
        unread: dict[int, int] = {}
        relay_port = f"{self.port:04X}"
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if remote.endswith(":" + relay_port):
                unread[int(local.split(":")[1], 16)] = int(queues.split(":")[1], 16)
        return unread

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


# ---- components: the per-stream costs alone ----------------------------------------------------------


def _cpu_wall(function: Any) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    function()
    return time.process_time() - cpu, time.perf_counter() - wall


def decode_capture(path: Path, frames: int, analysis_fps: float, *, keyframes: bool) -> int:
    """What the capture thread does (detector.video.capture.PacketStream): read every packet, decode key
    frames only (``keyframes``) or every frame, convert the pictures due at the analysis rate."""
    from detector.video.capture import KEYFRAME_GAP_TOLERANCE, PacketStream

    # Decoded faster than real time, the stream's clock is its own frame count.
    ticks = iter(range(10**9))
    stream = PacketStream(
        str(path),
        max_keyframe_gap_s=KEYFRAME_GAP_TOLERANCE / analysis_fps if keyframes else None,
        mono_clock=lambda: next(ticks) / SOURCE_FPS,
    )
    every = max(1, round(SOURCE_FPS / analysis_fps))
    done = 0
    while done < frames and stream.grab():
        if stream.has_picture and (keyframes or done % every == 0):
            stream.retrieve()
        done += 1
    stream.release()
    return done


def components(streams: dict[str, Path], sub_stream: Path, analysis_fps: float, model: Path | None) -> dict[str, Any]:
    """CPU cores one camera costs for each stage, measured alone (10 s of video each)."""
    path = next(iter(streams.values()))
    frames = 10 * SOURCE_FPS
    video_s = frames / SOURCE_FPS
    figures: dict[str, Any] = {}
    for name, run in (
        ("decode_1080p_every_frame", lambda: decode_capture(path, frames, analysis_fps, keyframes=False)),
        ("decode_1080p_keyframes_only", lambda: decode_capture(path, frames, analysis_fps, keyframes=True)),
        ("decode_360p_substream_every_frame", lambda: decode_capture(sub_stream, frames, analysis_fps, keyframes=False)),  # noqa: E501
    ):
        run()  # warm caches, not timed
        cpu, wall = _cpu_wall(run)
        figures[name] = {"cores_per_stream": round(cpu / video_s, 3), "realtime_factor": round(video_s / wall, 1)}

    import cv2

    from detector.model.wrapper import load_detector

    detector = load_detector(model)
    # The inference backend (PyTorch, OpenVINO, ONNX Runtime) is chosen the same way in `run`.
    figures["model"] = f"{detector.name} on {getattr(detector, 'backend', 'pytorch')}"
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    images: list[npt.NDArray[np.uint8]] = []
    for index in range(frames):
        ok, image = capture.read()
        if not ok:
            break
        if index % 12 == 0:
            images.append(np.asarray(image, dtype=np.uint8))
    capture.release()
    detector.predict(images[:2])  # warm-up, not timed
    per_batch: dict[str, float] = {}
    for batch in (1, 4):
        chunks = [images[i : i + batch] for i in range(0, len(images) - batch + 1, batch)]
        cpu, wall = _cpu_wall(lambda chunks=chunks: [detector.predict(chunk) for chunk in chunks])
        count = sum(len(chunk) for chunk in chunks)
        per_batch[str(batch)] = cpu / count
        figures[f"inference_1080p_batch_{batch}"] = {
            "cpu_ms_per_frame": round(1000 * cpu / count, 1),
            "wall_ms_per_frame": round(1000 * wall / count, 1),
        }
    cores = os.cpu_count() or 1
    # The capture decodes key frames only at the default rate on a GOP-50 stream.
    decode = figures["decode_1080p_keyframes_only"]["cores_per_stream"]
    every = figures["decode_1080p_every_frame"]["cores_per_stream"]
    sub = figures["decode_360p_substream_every_frame"]["cores_per_stream"]
    infer = min(per_batch.values()) * analysis_fps
    figures["inference_cores_per_stream_at_analysis_fps"] = round(infer, 3)
    figures["bound_streams_decode_alone"] = round(cores / decode, 1)
    figures["bound_streams_inference_alone"] = round(cores / infer, 1)
    figures["bound_streams_decode_and_inference"] = round(cores / (decode + infer), 1)
    figures["bound_streams_every_frame_and_inference"] = round(cores / (every + infer), 1)
    figures["bound_streams_substream_and_inference"] = round(cores / (sub + infer), 1)
    return figures


# ---- one level ---------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    mono: float
    wall: datetime
    health: dict[str, Any]
    run_cpu: float
    threads: dict[str, float]
    busy: tuple[float, float]
    serve_cpu: float
    bench_cpu: float
    backlog: dict[str, float | None]


def snapshot(run_pid: int, serve_pid: int, health_url: str, relay: StreamRelay, cameras: Sequence[str]) -> Snapshot:
    import httpx

    unread = relay.unread_bytes()
    return Snapshot(
        mono=time.monotonic(),
        wall=datetime.now(UTC),
        health=httpx.get(health_url, timeout=10).json(),
        run_cpu=cpu_seconds(run_pid),
        threads=thread_cpu_seconds(run_pid),
        busy=machine_busy(),
        serve_cpu=cpu_seconds(serve_pid),
        bench_cpu=time.process_time(),
        backlog={camera: relay.backlog_s(camera, unread) for camera in cameras},
    )


def _by_camera(health: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in health.get("cameras", [])}


def case_latencies(url: str, token: str, cameras: Sequence[str], start: datetime, end: datetime) -> list[float]:
    """created_at − alerted_at of the cases whose alert fell due within [start, end]."""
    import httpx

    latencies = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30, verify=False) as client:
        for camera in cameras:
            response = client.get("/api/v1/cases", params={"camera": camera, "limit": 500})
            response.raise_for_status()
            for case in response.json()["items"]:
                alerted = datetime.fromisoformat(case["alerted_at"])
                if start <= alerted <= end:
                    latencies.append((datetime.fromisoformat(case["created_at"]) - alerted).total_seconds())
    return latencies


@dataclass
class Setup:
    work: Path
    relay: StreamRelay
    clips: list[str]
    serve_url: str
    serve_pid: int
    camera_token: str
    admin_token: str
    analyser: str
    model: Path | None
    dwell_s: float
    max_gap_s: float
    warmup_s: float
    measure_s: float
    configured_fps: float


def camera_config(setup: Setup, level: int, index: int) -> tuple[str, Path]:
    camera = f"lc-n{level}-c{index}"
    clip = setup.clips[index % len(setup.clips)]
    path = setup.work / f"{camera}.yaml"
    if setup.analyser == "replay":
        camera_yaml(path, camera, setup.relay.url(clip, camera))
        return camera, path
    config = yaml.safe_load((SAMPLES / f"{clip}.camera.yaml").read_text(encoding="utf-8"))
    config.update(id=camera, name=camera, source=setup.relay.url(clip, camera), max_gap_s=setup.max_gap_s)
    for zone in config["zones"]:
        zone["dwell_s"] = setup.dwell_s
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return camera, path


def run_level(setup: Setup, level: int) -> dict[str, Any]:
    import httpx

    configs = [camera_config(setup, level, i) for i in range(level)]
    cameras = [camera for camera, _ in configs]
    health_port = free_port()
    health_url = f"http://127.0.0.1:{health_port}/healthz"
    command = [STREETWATCH, "run", "--push", setup.serve_url, "--state-dir", str(setup.work / f"state-{level}")]
    command += ["--health-port", str(health_port)]
    command += [arg for _, path in configs for arg in ("--camera", str(path))]
    if setup.analyser == "replay":
        total_s = setup.warmup_s + setup.measure_s + 600
        command += ["--detections-from", str(replay(setup.work / "replay.jsonl", total_s))]
    elif setup.model is not None:
        command += ["--model", str(setup.model)]
    log = setup.work / f"run-{level}.log"
    env = dict(os.environ, STREETWATCH_TOKEN=setup.camera_token, YOLO_OFFLINE="1")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:

        def online() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"streetwatch run exited with {process.returncode}:\n{tail(log)}")
            health = httpx.get(health_url, timeout=5).json()
            return all(c["status"] == "online" for c in health["cameras"])

        started = time.monotonic()
        try:
            wait_until(online, 90 + 5 * level)
        except SystemExit as error:
            if process.poll() is not None:
                raise
            print(f"level {level}: not every camera came online ({error}); measuring anyway", file=sys.stderr)
        print(f"level {level}: online after {time.monotonic() - started:.0f} s, measuring", file=sys.stderr, flush=True)
        time.sleep(setup.warmup_s)
        a = snapshot(process.pid, setup.serve_pid, health_url, setup.relay, cameras)
        time.sleep(setup.measure_s)
        b = snapshot(process.pid, setup.serve_pid, health_url, setup.relay, cameras)
        drained = b.health
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            drained = httpx.get(health_url, timeout=5).json()
            if drained["spool"]["pending"] == 0:
                break
            time.sleep(0.5)
    finally:
        stop_process(process, timeout_s=30)
    latencies = case_latencies(setup.serve_url, setup.admin_token, cameras, a.wall, b.wall)
    return summarise(setup, level, cameras, a, b, drained, latencies)


def summarise(
    setup: Setup,
    level: int,
    cameras: Sequence[str],
    a: Snapshot,
    b: Snapshot,
    drained: dict[str, Any],
    latencies: list[float],
) -> dict[str, Any]:
    seconds = b.mono - a.mono
    before, after = _by_camera(a.health), _by_camera(b.health)
    fps = {c: (after[c]["frames_analysed"] - before[c]["frames_analysed"]) / seconds for c in cameras}
    dropped = {c: after[c]["frames_dropped"] - before[c]["frames_dropped"] for c in cameras}
    # A camera with no open connection at the end is as far behind as it can be.
    backlog: dict[str, float] = {c: math.inf if (s := b.backlog[c]) is None else s for c in cameras}
    growth = [end - start for c in cameras if (start := a.backlog[c]) is not None and (end := b.backlog[c]) is not None]
    offline = [c for c in cameras if after[c]["status"] != "online"]
    measure = LevelMeasure(
        configured_fps=setup.configured_fps,
        camera_fps=fps,
        alert_latencies_s=latencies,
        backlog_s=backlog,
        offline=offline,
        spool_pending=int(drained["spool"]["pending"]),
    )
    sustained, saturated, reasons = verdict(measure)
    # Capture threads (named after their camera) demux and decode; FFmpeg's own threads are "av:*".
    decode_cpu = sum(v - a.threads.get(k, 0.0) for k, v in b.threads.items() if k.startswith(("av:", "capture-")))
    busy = (b.busy[0] - a.busy[0]) / max(b.busy[1] - a.busy[1], 1.0)
    lat = latency_summary(latencies)
    return {
        "cameras": level,
        "seconds": round(seconds, 1),
        "analysis_fps_configured": setup.configured_fps,
        "analysis_fps_min": round(min(fps.values()), 2),
        "analysis_fps_mean": round(sum(fps.values()) / level, 2),
        "frames_dropped": sum(dropped.values()),
        "backlog_s_max": round(max(backlog.values()), 2),
        "backlog_growth_s_max": round(max(growth), 2) if growth else None,
        "reconnects": sum(int(after[c]["reconnects"]) for c in cameras),
        "cpu_run_cores": round((b.run_cpu - a.run_cpu) / seconds, 2),
        "cpu_run_capture_threads_cores": round(decode_cpu / seconds, 2),
        "cpu_serve_cores": round((b.serve_cpu - a.serve_cpu) / seconds, 2),
        "cpu_bench_cores": round((b.bench_cpu - a.bench_cpu) / seconds, 2),
        "machine_busy_pct": round(100 * busy, 1),
        "alerts": lat["n"],
        "alert_latency_s": {
            k.removesuffix("_ms"): (round(v / 1000, 2) if v is not None else None) for k, v in lat.items() if k != "n"
        },
        "spool_pending_after_drain": measure.spool_pending,
        "offline": offline,
        "sustained": sustained,
        "saturated": saturated,
        "why_not": reasons,
    }


# ---- the ladder ----------------------------------------------------------------------------------------


def run(
    *,
    levels: Sequence[int] = DEFAULT_LEVELS,
    clips: Sequence[str] = DEFAULT_CLIPS,
    clip_seconds: float = 20.0,
    bitrate: str = "4M",
    analyser: str = "model",
    model: Path | None = None,
    dwell_s: float = 5.0,
    max_gap_s: float = 8.0,
    warmup_s: float = 15.0,
    measure_s: float = 60.0,
    with_components: bool = True,
    stop_early: bool = True,
    cache: Path | None = None,
) -> dict[str, Any]:
    from detector.live.runner import DEFAULT_ANALYSIS_FPS

    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streetwatch-bench"
    tag = f"{clip_seconds:g}s-{bitrate}"
    streams = {
        clip: encode(
            SAMPLES / f"{clip}.mp4",
            cache / f"{clip}-{WIDTH}x{HEIGHT}-{tag}.h264",
            seconds=clip_seconds,
            width=WIDTH,
            height=HEIGHT,
            bitrate=bitrate,
        )
        for clip in clips
    }
    if analyser == "replay":
        described = "replayed detections, no inference"
    else:
        described = "the default model" if model is None else f"model {model}"
    figures: dict[str, Any] = {
        "streams": f"{WIDTH}x{HEIGHT} {SOURCE_FPS} fps H.264 veryfast, {bitrate}bit/s, GOP {GOP}, no B-frames, "
        f"{clip_seconds:g} s loop of {', '.join(clips)} over HTTP (raw Annex B)",
        "analyser": described,
        "analysis_fps": DEFAULT_ANALYSIS_FPS,
        "dwell_s": 3.0 if analyser == "replay" else dwell_s,
        "warmup_s": warmup_s,
        "measure_s": measure_s,
    }
    if with_components:
        sub = encode(
            SAMPLES / f"{clips[0]}.mp4",
            cache / f"{clips[0]}-{SUB_WIDTH}x{SUB_HEIGHT}-{clip_seconds:g}s-1M.h264",
            seconds=clip_seconds,
            width=SUB_WIDTH,
            height=SUB_HEIGHT,
            bitrate="1M",
        )
        figures["components"] = components(streams, sub, DEFAULT_ANALYSIS_FPS, model)
    relay = StreamRelay({clip: access_units(path.read_bytes()) for clip, path in streams.items()})
    work = Path(tempfile.mkdtemp(prefix="sw-bench-live-"))
    serve = None
    try:
        db = f"sqlite:///{work / 'service.db'}"
        camera_token = create_token(db, "camera", "bench-cameras")
        admin_token = create_token(db, "admin", "bench-admin")
        serve = start_serve(db, work / "serve.log")
        setup = Setup(
            work=work,
            relay=relay,
            clips=list(clips),
            serve_url=serve.url,
            serve_pid=serve.pid,
            camera_token=camera_token,
            admin_token=admin_token,
            analyser=analyser,
            model=model,
            dwell_s=dwell_s,
            max_gap_s=max_gap_s,
            warmup_s=warmup_s,
            measure_s=measure_s,
            configured_fps=DEFAULT_ANALYSIS_FPS,
        )
        results: list[dict[str, Any]] = []
        for level in levels:
            result = run_level(setup, level)
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            if stop_early and result["saturated"]:
                break
        figures["levels"] = results
        sustained = [r["cameras"] for r in results if r["sustained"]]
        figures["max_sustained_cameras"] = max(sustained) if sustained else 0
    finally:
        if serve is not None:
            serve.stop()
        relay.stop()
        shutil.rmtree(work, ignore_errors=True)
    return figures


def markdown(figures: dict[str, Any], command: str) -> str:
    from bench.__main__ import section_heading

    fps = figures["analysis_fps"]
    lines = [
        *section_heading("live capacity (bench/live_capacity.py)"),
        f"`{command}`: one `streetwatch run` with N cameras ({figures['analyser']}, default analysis rate "
        f"{fps:g} fps, dwell {figures['dwell_s']:g} s) pushing into `streetwatch serve` (SQLite) on loopback; "
        f"each camera a live stream from a relay in the bench process: {figures['streams']}. "
        f"Measured for {figures['measure_s']:g} s after every camera was online and {figures['warmup_s']:g} s "
        "of warm-up. Alert latency: the case's `created_at` in the service minus the record's `alerted_at` "
        "(the frame time at which the dwell completed; the rule fires on the next analysed frame that sees "
        "the object, so the figure includes the wait for that frame: up to one frame interval, here about "
        f"{(-figures['dwell_s']) % (1 / fps):g} s, since the dwell is "
        f"{figures['dwell_s']:g} s and frames come every {1 / fps:g} s). Backlog: seconds of video a camera "
        "is behind its live stream at the end.",
        "",
        f"**Sustains** = every camera analyses ≥ {MIN_FPS_RATIO:.0%} of {fps:g} fps, alert latency p95 "
        f"< {MAX_P95_S:g} s (≥ 1 alert measured), backlog ≤ {MAX_BACKLOG_S:g} s, all cameras online, "
        "spool empty after a 10 s drain.",
        "",
    ]
    parts = figures.get("components")
    if parts:
        lines += [
            "Per-stream costs measured alone (CPU cores one camera needs; 10 s of the stream):",
            "",
            "| stage | cores per camera |",
            "|---|---|",
            f"| decode 1080p25, key frames only (GOP {GOP}: what the capture does at the default rate) | "
            f"{parts['decode_1080p_keyframes_only']['cores_per_stream']} |",
            f"| decode 1080p25, every frame (the capture on streams with sparser key frames) | "
            f"{parts['decode_1080p_every_frame']['cores_per_stream']} |",
            f"| decode 640x360 sub-stream, every frame | "
            f"{parts['decode_360p_substream_every_frame']['cores_per_stream']} |",
            f"| inference at {fps:g} fps ({parts.get('model', 'model')}, 1080p frame; "
            f"{parts['inference_1080p_batch_1']['cpu_ms_per_frame']} ms CPU "
            f"per frame alone, {parts['inference_1080p_batch_4']['cpu_ms_per_frame']} in batches of 4) | "
            f"{parts['inference_cores_per_stream_at_analysis_fps']} |",
            "",
            f"Bounds on {os.cpu_count()} cores: decode alone {parts['bound_streams_decode_alone']} cameras, "
            f"inference alone {parts['bound_streams_inference_alone']}, both "
            f"{parts['bound_streams_decode_and_inference']}; decoding every frame "
            f"{parts['bound_streams_every_frame_and_inference']}; every frame of 360p sub-streams "
            f"{parts['bound_streams_substream_and_inference']}.",
            "",
        ]
    lines += [
        "| cameras | analysed fps per camera, min / mean | dropped | backlog max (s) | CPU run / of it capture "
        "threads / serve (cores) | machine busy | alerts | latency p50 / p95 / max (s) | sustains |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in figures["levels"]:
        lat = r["alert_latency_s"]
        verdict_text = "yes" if r["sustained"] else "no: " + "; ".join(r["why_not"])
        lines.append(
            f"| {r['cameras']} | {r['analysis_fps_min']} / {r['analysis_fps_mean']} | {r['frames_dropped']} "
            f"| {r['backlog_s_max']} | {r['cpu_run_cores']} / {r['cpu_run_capture_threads_cores']} / "
            f"{r['cpu_serve_cores']} | {r['machine_busy_pct']} % | {r['alerts']} "
            f"| {lat['p50']} / {lat['p95']} / {lat['max']} | {verdict_text} |"
        )
    lines += ["", f"Sustained: **{figures['max_sustained_cameras']} cameras** of 1080p25 at {fps:g} fps analysis."]
    return "\n".join(lines) + "\n"


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of counts: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("levels must be counts ≥ 1")
    return levels


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=_levels, default=list(DEFAULT_LEVELS), help="camera counts, e.g. 1,2,4")
    parser.add_argument("--clips", default=",".join(DEFAULT_CLIPS), help="sample_videos clips, comma-separated")
    parser.add_argument("--clip-seconds", type=float, default=20.0, help="length of the looped stream")
    parser.add_argument("--bitrate", default="4M", help="stream bitrate (ffmpeg syntax)")
    parser.add_argument("--analyser", choices=["model", "replay"], default="model")
    parser.add_argument("--model", type=Path, help="weights (default: the newest model card)")
    parser.add_argument("--dwell-s", type=float, default=5.0, help="dwell of every zone (model analyser)")
    parser.add_argument("--max-gap-s", type=float, default=8.0, help="camera max_gap_s (model analyser)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds after all cameras are online")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per level")
    parser.add_argument("--no-components", action="store_true", help="skip the per-stream cost measurements")
    parser.add_argument("--all-levels", action="store_true", help="do not stop after a saturated level")
    parser.add_argument("--cache", type=Path, help="where the encoded streams are kept")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    clips = [c for c in args.clips.split(",") if c]
    missing = [c for c in clips if not (SAMPLES / f"{c}.mp4").is_file()]
    if missing or not clips:
        parser.error(f"no such clip in sample_videos: {', '.join(missing) or '(none given)'}")
    if args.seconds <= 0 or args.warmup < 0 or args.clip_seconds <= 0:
        parser.error("--seconds and --clip-seconds must be > 0, --warmup ≥ 0")
    figures = run(
        levels=args.levels,
        clips=clips,
        clip_seconds=args.clip_seconds,
        bitrate=args.bitrate,
        analyser=args.analyser,
        model=args.model,
        dwell_s=args.dwell_s,
        max_gap_s=args.max_gap_s,
        warmup_s=args.warmup,
        measure_s=args.seconds,
        with_components=not args.no_components,
        stop_early=not args.all_levels,
        cache=args.cache,
    )
    command = ".venv/bin/python -m bench.live_capacity " + " ".join(argv if argv is not None else sys.argv[1:])
    print(markdown(figures, command.strip()))
    if args.json:
        print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
