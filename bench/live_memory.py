"""Memory of ``streetwatch run`` over time on a looping stream (a benchmark, not a test).

Starts the service (SQLite in a temporary folder), a looping RTSP stream (GStreamer's RTSP server
driven by Debian's /usr/bin/python3; ``--source file`` loops the clip as a file source instead),
and ``streetwatch run`` on it, with detections replayed from a file in which a stall appears every
20 s for 10 s at changing places (so incidents open, close, write evidence and get pushed all the
time) or with a real model (``--model``). It samples the resident set size (RSS) of the ``run``
process and prints, as JSON, RSS after 1 minute and at the end, and the growth between them.

    .venv/bin/python bench/live_memory.py --minutes 10          # the acceptance figure
    .venv/bin/python bench/live_memory.py --minutes 2 --cameras 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STREETWATCH = str(BIN / "streetwatch")
RTSP_SERVER = REPO / "tests" / "detector" / "rtsp_server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def make_clip(path: Path) -> Path:
    samples = sorted((REPO / "sample_videos").glob("*.mp4"))
    if samples:
        return samples[0]
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=10",
            "-t",
            "10",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-y",
            str(path),
        ],
        check=True,
    )
    return path


def replay(path: Path, seconds: float) -> Path:
    lines = [json.dumps({"meta": {"model": {"name": "replay"}}})]
    for i in range(int(seconds * 2) + 1):
        t = i / 2
        cycle = int(t // 20)
        detections = []
        if t % 20 < 10:
            x = 40 + (cycle % 6) * 90
            detections.append({"xyxy": [x, 200, x + 60, 300], "class": "stall", "conf": 0.9, "track_id": cycle + 1})
        lines.append(json.dumps({"frame": i, "t": t, "detections": detections}))
    path.write_text("\n".join(lines) + "\n")
    return path


def camera_yaml(path: Path, camera_id: str, source: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "id": camera_id,
                "name": camera_id,
                "source": source,
                "timezone": "Asia/Shanghai",
                "location": {"lon": 118.7969, "lat": 32.0603},
                "max_gap_s": 3,
                "zones": [
                    {
                        "name": "walk",
                        "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                        "categories": ["street_vending"],
                        "dwell_s": 3,
                    }
                ],
            }
        )
    )
    return path


def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # not up yet: connection refused, file not there yet
            pass
        time.sleep(0.3)
    raise SystemExit("timed out while starting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--source", choices=["rtsp", "file"], default="rtsp")
    parser.add_argument("--model", type=Path, help="real weights instead of replayed detections")
    parser.add_argument("--analysis-fps", type=float, default=2.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    args = parser.parse_args()

    import httpx

    work = Path(tempfile.mkdtemp(prefix="sw-live-memory-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        db = f"sqlite:///{work / 'service.db'}"
        token = (
            subprocess.run(
                [STREETWATCH, "token", "create", "--role", "camera", "--name", "bench", "--db", db],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        port = free_port()
        env = dict(os.environ, STREETWATCH_LOG_LEVEL="warning", YOLO_OFFLINE="1")
        processes.append(
            subprocess.Popen(
                [STREETWATCH, "serve", "--port", str(port), "--db", db],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(work / "serve.log").open("wb"),
            )
        )
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200, 60)
        clip = make_clip(work / "clip.mp4")
        if args.source == "rtsp":
            rtsp_port = free_port()
            log = work / "rtsp.log"
            processes.append(
                subprocess.Popen(
                    [
                        "/usr/bin/python3",
                        str(RTSP_SERVER),
                        "--port",
                        str(rtsp_port),
                        "--clip",
                        str(clip),
                        "--width",
                        "640",
                        "--height",
                        "360",
                        "--fps",
                        "10",
                    ],
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            wait_until(lambda: "READY" in log.read_text(), 120)
            source = f"rtsp://127.0.0.1:{rtsp_port}/cam"
        else:
            source = str(clip)
        cameras = [camera_yaml(work / f"cam{i}.yaml", f"cam-{i}", source) for i in range(args.cameras)]
        health_port = free_port()
        command = [
            STREETWATCH,
            "run",
            "--push",
            f"http://127.0.0.1:{port}",
            "--state-dir",
            str(work / "state"),
            "--health-port",
            str(health_port),
            "--analysis-fps",
            str(args.analysis_fps),
        ]
        command += [a for c in cameras for a in ("--camera", str(c))]
        if args.model is not None:
            command += ["--model", str(args.model)]
        else:
            command += ["--detections-from", str(replay(work / "replay.jsonl", args.minutes * 60 + 120))]
        run = subprocess.Popen(
            command,
            env=dict(env, STREETWATCH_TOKEN=token),
            stdout=subprocess.DEVNULL,
            stderr=(work / "run.log").open("wb"),
        )
        processes.append(run)
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            if run.poll() is not None:
                raise SystemExit(f"run exited with {run.returncode}; see {work / 'run.log'}")
            samples.append((elapsed, rss_mib(run.pid)))
            time.sleep(args.sample_s)
        health = httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=5).json()
        at_1 = next((rss for t, rss in samples if t >= 60), samples[-1][1])
        final = samples[-1][1]
        report = {
            "minutes": args.minutes,
            "cameras": args.cameras,
            "source": args.source,
            "detections": "model" if args.model else "replay",
            "rss_mib_at_1_min": round(at_1, 1),
            "rss_mib_at_end": round(final, 1),
            "rss_mib_max_after_1_min": round(max(rss for t, rss in samples if t >= 60) if elapsed >= 60 else final, 1),
            "growth_after_1_min_pct": round(100 * (final - at_1) / at_1, 2),
            "records_emitted": health.get("records_emitted"),
            "frames_analysed": [c["frames_analysed"] for c in health["cameras"]],
            "frames_dropped": [c["frames_dropped"] for c in health["cameras"]],
            "spool": health["spool"],
            "samples_s_mib": " ".join(f"{t:.0f}:{rss:.0f}" for t, rss in samples[:: max(1, len(samples) // 40)]),
        }
        print(json.dumps(report, indent=1))
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
