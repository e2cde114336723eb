"""The durable spool: stored before sending, survives a crash, delivered in order over real HTTP
on loopback, deleted only after a 2xx, idempotent resends, coalesced camera status."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from detector.live.push import Outcome, Pusher, ServiceClient, classify
from detector.live.spool import Outgoing, Spool, SpoolSender


class RecordingService:
    """A real HTTP server on loopback that records what it receives and answers as scripted.

    ``answers`` maps a key (``alert`` body's ``id:event``, else the path) to a list of status codes
    used in turn (the last one repeats); ``down`` makes it refuse with 503 (as a restarting proxy would).
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes]] = []
        self.answers: dict[str, list[int]] = {}
        self.down = False
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                key = self.path
                if self.path == "/api/v1/alerts":
                    data = json.loads(body)
                    key = f"{data['id']}:{data['event']}"
                with service.lock:
                    if service.down:
                        status = 503
                    else:
                        script = service.answers.get(key, [201])
                        status = script.pop(0) if len(script) > 1 else script[0]
                    service.received.append((self.command, key, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = _handle
            do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def delivered(self, status: int = 201) -> list[str]:
        with self.lock:
            return [key for _, key, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[RecordingService]:
    server = RecordingService()
    yield server
    server.close()


def alert(n: int, event: str = "opened") -> Outgoing:
    record_id = f"00000000-0000-0000-0000-{n:012d}"
    body = json.dumps({"id": record_id, "event": f"violation.{event}", "n": n})
    return Outgoing(kind="alert", key=f"{record_id}:violation.{event}", path="/api/v1/alerts", body=body)


def status(camera: str, value: str) -> Outgoing:
    return Outgoing(
        kind="status", key=f"status:{camera}", path=f"/api/v1/cameras/{camera}/status", body=json.dumps({"s": value})
    )


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize(
    ("status_code", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (201, Outcome.DELIVERED),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (429, Outcome.RETRY),
        (408, Outcome.RETRY),
        (409, Outcome.REJECTED),
        (422, Outcome.REJECTED),
        (401, Outcome.REJECTED),
        (404, Outcome.REJECTED),
    ],
)
def test_classify(status_code: int, outcome: Outcome) -> None:
    assert classify(status_code) is outcome


_CRASHING_WRITER = """
import os, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from tests.detector.test_live_spool import alert
from detector.live.spool import Spool
spool = Spool(Path({path!r}))
spool.put([alert(i) for i in range(5)], states={{"cam-a": '{{"engine": 1}}'}})
spool.put([alert(5), alert(5, "closed")])
os._exit(9)  # a crash: no close, no checkpoint
"""


def test_spool_survives_a_crash_and_delivers_in_order(tmp_path: Path, service: RecordingService) -> None:
    path = tmp_path / "spool.sqlite3"
    repo = str(Path(__file__).resolve().parents[2])
    crashed = subprocess.run([sys.executable, "-c", _CRASHING_WRITER.format(repo=repo, path=str(path))], check=False)
    assert crashed.returncode == 9
    spool = Spool(path)
    assert spool.pending() == 7
    assert spool.load_state("cam-a") == '{"engine": 1}'
    sender = SpoolSender(spool, ServiceClient(service.url))
    sender.start()
    assert sender.flush(10)
    sender.stop()
    expected = [alert(i).key for i in range(6)] + [alert(5, "closed").key]
    assert service.delivered() == expected
    assert spool.pending() == 0
    spool.close()


def test_outage_keeps_everything_and_order(tmp_path: Path, service: RecordingService) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    sender = SpoolSender(spool, ServiceClient(service.url), min_backoff_s=0.05, max_backoff_s=0.2)
    service.down = True
    sender.start()
    for i in range(10):
        spool.put([alert(i)])
        sender.notify()
    wait_until(lambda: len(service.received) >= 3)  # it kept trying the head entry
    assert {key for _, key, _ in service.received} == {alert(0).key}, "nothing jumps the queue during an outage"
    assert spool.pending() == 10
    service.down = False
    assert sender.flush(10)
    sender.stop()
    accepted = [key for key in service.delivered() if key != alert(0).key]
    assert accepted == [alert(i).key for i in range(1, 10)]
    spool.close()


def test_idempotent_resend_and_status_coalescing(tmp_path: Path, service: RecordingService) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    assert spool.put([alert(1), alert(1)]) == 1, "the same id+event is queued once"
    assert spool.put([alert(1)]) == 0
    spool.put([status("cam-a", "online"), alert(2), status("cam-a", "offline"), status("cam-b", "online")])
    keys = [(e.kind, e.key, json.loads(e.body).get("s")) for e in spool.entries()]
    assert keys == [
        ("alert", alert(1).key, None),
        ("alert", alert(2).key, None),
        ("status", "status:cam-a", "offline"),
        ("status", "status:cam-b", "online"),
    ]
    # A redelivery after a crash between send and delete is answered 200 by the service: done.
    service.answers[alert(1).key] = [200]
    sender = SpoolSender(spool, ServiceClient(service.url))
    sender.start()
    assert sender.flush(10)
    sender.stop()
    assert service.delivered() == [
        alert(1).key,
        alert(2).key,
        "/api/v1/cameras/cam-a/status",
        "/api/v1/cameras/cam-b/status",
    ]
    spool.close()


@pytest.mark.parametrize(
    ("script", "buried", "sends"),
    [
        pytest.param([422], 1, 1, id="refused for good: moved to dead, the next one goes on"),
        pytest.param([409], 1, 1, id="conflict: the service holds another payload for this key"),
        pytest.param([503, 500, 201], 0, 3, id="server errors are retried"),
        pytest.param([401, 201], 0, 2, id="auth failure is retried, never dropped"),
    ],
)
def test_refusals_and_retries(
    tmp_path: Path, service: RecordingService, script: list[int], buried: int, sends: int
) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    service.answers[alert(1).key] = list(script)
    spool.put([alert(1), alert(2)])
    sender = SpoolSender(spool, ServiceClient(service.url), min_backoff_s=0.01, max_backoff_s=0.05)
    sender.start()
    assert sender.flush(10)
    sender.stop()
    assert spool.dead() == buried
    assert service.delivered().count(alert(1).key) == sends
    assert service.delivered()[-1] == alert(2).key
    spool.close()


def test_evidence_upload_reads_the_file_when_sent(tmp_path: Path, service: RecordingService) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    picture = tmp_path / "snapshot.jpg"
    picture.write_bytes(b"\xff\xd8jpeg")
    good = Outgoing(
        "evidence",
        "evidence:aa",
        "/api/v1/evidence/aa",
        json.dumps({"file": str(picture), "content_type": "image/jpeg"}),
    )
    missing = Outgoing(
        "evidence",
        "evidence:bb",
        "/api/v1/evidence/bb",
        json.dumps({"file": str(tmp_path / "gone.jpg"), "content_type": "image/jpeg"}),
    )
    spool.put([good, missing, alert(1)])
    sender = SpoolSender(spool, ServiceClient(service.url))
    sender.start()
    assert sender.flush(10)
    sender.stop()
    assert [(m, k, b) for m, k, b in service.received][:1] == [("PUT", "/api/v1/evidence/aa", b"\xff\xd8jpeg")]
    assert spool.dead() == 1  # the missing file, logged and kept aside
    assert service.delivered()[-1] == alert(1).key
    spool.close()


def test_audit_pusher_shares_the_client(tmp_path: Path, service: RecordingService) -> None:
    from tests.detector.test_live_restore import sample_record

    record = sample_record()
    service.answers[f"{record.id}:{record.event}"] = [422]
    pusher = Pusher(service.url, "t0k", spool=tmp_path / "failed.jsonl", backoff_s=0.01)
    assert pusher.send(record) is False
    assert len(service.received) == 1, "a refused record is not retried"
    assert json.loads((tmp_path / "failed.jsonl").read_text())["id"] == str(record.id)
    service.answers[f"{record.id}:{record.event}"] = [503, 201]
    assert pusher.send(record) is True and pusher.sent == 1
    pusher.close()


def test_flush_gives_up_quickly_when_the_service_stays_down(tmp_path: Path, service: RecordingService) -> None:
    spool = Spool(tmp_path / "spool.sqlite3")
    service.down = True
    sender = SpoolSender(spool, ServiceClient(service.url), min_backoff_s=1.0, max_backoff_s=5.0)
    sender.start()
    spool.put([alert(1)])
    started = time.monotonic()
    assert sender.flush(10) is False
    assert time.monotonic() - started < 4, "a shutdown must not wait the whole flush timeout for a dead service"
    sender.stop()
    assert spool.pending() == 1, "kept for the next start"
    spool.close()
