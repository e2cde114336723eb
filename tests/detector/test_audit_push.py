"""``audit --push`` into a real ``streetwatch serve`` on loopback: cases with their evidence, idempotent re-push."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import STREETWATCH, free_port, make_test_video, run_cli
from tests.detector.test_audit import START, _camera, _detections


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    db = f"sqlite:///{tmp_path / 'service.db'}"
    camera = run_cli("token", "create", "--role", "camera", "--name", "cam", "--db", db).stdout.strip()
    admin = run_cli("token", "create", "--role", "admin", "--name", "root", "--db", db).stdout.strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([STREETWATCH, "serve", "--port", str(port), "--db", db], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "the service did not start"
            time.sleep(0.2)
        yield url, camera, admin
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_pushed_audit_becomes_cases_with_evidence_and_repushing_adds_none(
    tmp_path: Path, service: tuple[str, str, str]
) -> None:
    url, camera_token, admin_token = service
    video = make_test_video(tmp_path / "clip.mp4", seconds=30)
    replay = _detections(
        tmp_path / "d.jsonl", {s: [[200.0, 200.0, 300.0, 330.0]] for s in range(2, 25)}, seconds=30, size=(640, 360)
    )
    args = ["audit", video, "--detections-from", replay, "--camera", _camera(tmp_path), "--start-time", START]
    for run in ("first", "again"):
        done = run_cli(*args, "--out", tmp_path / run, "--push", url, "--token", camera_token)
        assert done.returncode == 0, done.stderr
        assert json.loads((tmp_path / run / "summary.json").read_text())["errors"] == []
    admin = {"Authorization": f"Bearer {admin_token}"}
    cases = httpx.get(f"{url}/api/v1/cases", headers=admin, timeout=10).json()
    assert cases["total"] == 1
    [alert] = [json.loads(line) for line in (tmp_path / "first" / "alerts.jsonl").read_text().splitlines()]
    [case] = cases["items"]
    assert case["id"] == alert["id"] and case["status"] == "reported"
    snapshot = (tmp_path / "first" / alert["evidence"][0]["path"]).read_bytes()
    served = httpx.get(f"{url}/api/v1/cases/{case['id']}/evidence/0", headers=admin, timeout=10)
    assert served.status_code == 200 and served.content == snapshot
