"""``streetwatch demo``: the whole flow on the sample clips.

Starts the service on SQLite (as its own process, through the ``streetwatch`` CLI, so this room
never imports ``service``), registers each sample camera's config and a snapshot (its clip's first
frame) so that its setup page opens on the real scene with its zones, audits every sample clip pushing
the alerts into it, and prints the dashboard URL with a token to log in with.

The clips are audited as if they had been filmed shortly before the demo starts (the truth files' dates
lie in the past, and every case would be overdue the moment the dashboard opens): clip k of n started
``30 + 75·(n-1-k)`` minutes ago, so its cases are minutes to a few hours old, within most handling deadlines.
A camera whose zones allow vending at set hours (the night market) keeps its clip's local time of day,
which those hours judge, on the latest day that puts the whole clip before now.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import yaml

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


def first_frame_jpeg(clip: Path) -> bytes:
    """The clip's first frame as JPEG (what a live runner would upload as the camera's snapshot)."""
    import cv2

    from detector.live.snapshots import encode_snapshot

    capture = cv2.VideoCapture(str(clip))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    jpeg = encode_snapshot(np.asarray(frame, dtype=np.uint8)) if ok else None
    if jpeg is None:
        raise InputError("cannot read a first frame", file=str(clip))
    return jpeg


def register_camera(url: str, camera_yaml: Path, *, admin_token: str, camera_token: str, captured_at: datetime) -> str:
    """Store the sample camera's config (a first version) and its clip's first frame in the service; returns
    the camera id. The setup page at ``/setup/cameras/<id>`` then opens on that frame with the zones."""
    config: dict[str, Any] = yaml.safe_load(camera_yaml.read_text(encoding="utf-8"))
    camera_id = str(config["id"])
    clip = camera_yaml.with_name(str(config["source"]))
    with httpx.Client(base_url=url, timeout=30) as client:
        stored = client.put(
            f"/api/v1/cameras/{camera_id}/config", json=config, headers={"Authorization": f"Bearer {admin_token}"}
        )
        if stored.status_code != 200:
            raise RuntimeError(f"the service refused {camera_yaml.name}: {stored.status_code} {stored.text}")
        snapshot = client.put(
            f"/api/v1/cameras/{camera_id}/snapshot?captured_at={quote(captured_at.isoformat())}",
            content=first_frame_jpeg(clip),
            headers={"Authorization": f"Bearer {camera_token}", "Content-Type": "image/jpeg"},
        )
        if snapshot.status_code != 200:
            raise RuntimeError(f"the service refused {clip.name}'s snapshot: {snapshot.status_code} {snapshot.text}")
    return camera_id


def demo_start_times(clips: list[Path], now: datetime, durations_s: dict[Path, float]) -> dict[Path, datetime]:
    """When each clip is taken to have started (see the module docstring), in its camera's time zone."""
    starts = {}
    for k, camera in enumerate(clips):
        truth = json.loads(camera.with_name(camera.name.replace(".camera.yaml", ".truth.json")).read_text())
        filmed = datetime.fromisoformat(truth["start_time"])
        zones = (yaml.safe_load(camera.read_text(encoding="utf-8")) or {}).get("zones") or []
        if any(zone.get("allowed") for zone in zones):
            latest = now - timedelta(seconds=durations_s[camera])
            days = (latest - filmed) // timedelta(days=1)
            starts[camera] = filmed + timedelta(days=days)
        else:
            ago = timedelta(minutes=30 + 75 * (len(clips) - 1 - k))
            starts[camera] = (now - ago).astimezone(filmed.tzinfo).replace(microsecond=0)
    return starts


def clip_duration_s(clip: Path) -> float:
    import cv2

    capture = cv2.VideoCapture(str(clip))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
    finally:
        capture.release()
    return frames / fps if fps > 0 else 0.0


def _clip_of(camera: Path) -> Path:
    return camera.with_name(camera.name.replace(".camera.yaml", ".mp4"))


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
        durations = {camera: clip_duration_s(_clip_of(camera)) for camera in clips}
        starts = demo_start_times(clips, datetime.now().astimezone(), durations)
        for camera in clips:
            camera_id = register_camera(
                url, camera, admin_token=admin_token, camera_token=camera_token, captured_at=starts[camera]
            )
            print(f"  camera {camera_id}: config and snapshot stored; set it up at {url}/setup/cameras/{camera_id}")
        total = 0
        for camera in clips:
            clip = _clip_of(camera)
            out = workdir / clip.stem
            summary = run_audit(
                AuditRequest(
                    videos=[clip],
                    camera=camera,
                    out=out,
                    start_time=starts[camera],
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
        cases = httpx.get(f"{url}/api/v1/cases", headers={"Authorization": f"Bearer {admin_token}"}, timeout=10).json()
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
