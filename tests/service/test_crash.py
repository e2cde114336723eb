"""Durability: ``kill -9`` of a real ``streetwatch serve`` process in the middle of concurrent ingests.
Every alert the server acknowledged with 2xx must be there after a restart; the rest can be re-sent."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from service import crud
from service.core.db import open_database
from tests.conftest import free_port, streetwatch_command
from tests.service.helpers import alert

WORKERS = 40
PER_WORKER = 3


def _serve(db_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "STREETWATCH_LOG_LEVEL": "warning"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*streetwatch_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db_url],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"server did not start:\n{log.read_text()}")
        time.sleep(0.1)


def test_kill_9_during_concurrent_ingest_loses_no_acknowledged_alert(database_url: str, tmp_path: Path) -> None:
    db = open_database(database_url)
    with db.writing() as session:
        _, token = crud.create_token(session, role="camera", name="cam", team=None, now=datetime.now(UTC))
        _, reader = crud.create_token(session, role="operator", name="op", team=None, now=datetime.now(UTC))
    db.dispose()
    port = free_port()
    log = tmp_path / "serve.log"
    server = _serve(database_url, port, log)
    records = [[alert() for _ in range(PER_WORKER)] for _ in range(WORKERS)]
    acked: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()
    headers = {"Authorization": f"Bearer {token}"}

    def worker(batch: list[dict[str, object]]) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10, verify=False) as client:
            for record in batch:
                try:
                    response = client.post("/api/v1/alerts", json=record)
                except httpx.TransportError:
                    return  # the server died under us
                if response.status_code in (200, 201):
                    with lock:
                        acked.append(str(record["id"]))
                        if len(acked) >= WORKERS and not killed.is_set():
                            killed.set()
                            os.kill(server.pid, signal.SIGKILL)

    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(worker, records))
        assert killed.is_set(), "the server was never killed"
        assert server.wait(10) == -signal.SIGKILL
        total = WORKERS * PER_WORKER
        assert WORKERS <= len(acked) < total, "the kill should land mid-way"

        server = _serve(database_url, port, log)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, verify=False) as client:
            missing = [
                case_id
                for case_id in acked
                if client.get(f"/api/v1/cases/{case_id}", headers={"Authorization": f"Bearer {reader}"}).status_code
                != 200
            ]
            assert missing == [], f"{len(missing)} acknowledged alerts lost"

            # Clients re-send everything (they cannot know what was stored): idempotency makes that safe.
            def resend(record: dict[str, object]) -> int:
                return client.post("/api/v1/alerts", json=record, headers=headers).status_code

            with ThreadPoolExecutor(8) as pool:
                codes = dict(zip((str(r["id"]) for b in records for r in b),
                                 pool.map(resend, [r for b in records for r in b]), strict=True))  # fmt: skip
            assert all(codes[case_id] == 200 for case_id in acked)
            assert set(codes.values()) <= {200, 201}  # 200 also where the ack died with the process
            listed = client.get("/api/v1/cases", params={"limit": 500}, headers={"Authorization": f"Bearer {reader}"})
            assert listed.json()["total"] == total
        # A plain SIGTERM, by contrast, shuts down gracefully; uvicorn then re-raises the signal so
        # that the exit status reports it.
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) in (0, -signal.SIGTERM)
        assert "Traceback" not in log.read_text()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
