"""``streetwatch demo``: the whole flow on the sample clips.

Starts the service on SQLite (as its own process, through the ``streetwatch`` CLI, so this room
never imports ``service``), audits every sample clip pushing the alerts into it, and prints the
dashboard URL with a token to log in with.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

from detector.audit.runner import AuditRequest, run_audit
from zones.errors import InputError

SAMPLES = Path(__file__).resolve().parent.parent / "sample_videos"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "detector", *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"streetwatch {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the service exited with code {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the service did not become healthy at {url} within {timeout_s:.0f} s")


def run_demo(workdir: Path, *, port: int | None, keep_serving: bool) -> int:
    clips = sorted(SAMPLES.glob("*.camera.yaml"))
    if not clips:
        raise InputError("no sample clips (*.camera.yaml) found", file=str(SAMPLES))
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    db = f"sqlite:///{(workdir / 'streetwatch.db').resolve()}"
    env = dict(os.environ, STREETWATCH_WEBHOOK_ALLOW_PRIVATE="1", STREETWATCH_EVIDENCE_DIR=str(workdir.resolve()))
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    camera_token = _cli("token", "create", "--role", "camera", "--name", "demo-camera", "--db", db, env=env)
    admin_token = _cli("token", "create", "--role", "admin", "--name", "demo-admin", "--db", db, env=env)
    server = subprocess.Popen(
        [sys.executable, "-m", "detector", "serve", "--port", str(port), "--db", db],
        env=env,
        stdout=(workdir / "service.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(url, server)
        print(f"service running at {url} (log: {workdir / 'service.log'})")
        total = 0
        for camera in clips:
            clip = camera.with_name(camera.name.replace(".camera.yaml", ".mp4"))
            truth = json.loads(camera.with_name(camera.name.replace(".camera.yaml", ".truth.json")).read_text())
            out = workdir / clip.stem
            summary = run_audit(
                AuditRequest(
                    videos=[clip],
                    camera=camera,
                    out=out,
                    start_time=datetime.fromisoformat(truth["start_time"]),
                    push=url,
                    token=camera_token,
                )
            )
            found = sum(summary["alerts"].values())
            total += found
            print(
                f"  {clip.name}: {found} violation(s) {summary['alerts']} in {summary['duration_s']:.0f} s "
                f"at {summary['realtime_factor']}x real time; report {out / 'report.html'}"
            )
        cases = httpx.get(
            f"{url}/api/v1/cases", headers={"Authorization": f"Bearer {admin_token}"}, timeout=10
        ).json()
        print(f"{total} alert(s) pushed; the service holds {cases['total']} case(s).")
        print(f"dashboard: {url}/   log in with the admin token: {admin_token}")
        if keep_serving:
            print("serving until Ctrl-C …")
            server.wait()
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
