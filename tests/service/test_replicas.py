"""Two real ``streetwatch serve`` replicas on one PostgreSQL, the outbox relay running in both, one real
webhook receiver on loopback that verifies every Standard Webhooks signature with the reference
``standardwebhooks`` package and notes which replica (process) sent each request.

- Both relays deliver at once and each webhook-id reaches the receiver exactly once.
- ``kill -9`` of one replica while deliveries are in flight loses nothing: the other one delivers every
  message, repeating at most the batch the dead one had in flight (see that test's docstring).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from service import crud
from service.core.db import Database, open_database
from service.core.security import Principal
from service.models import OutboxMessage, WebhookDelivery
from service.relay import Relay
from service.schemas import ActionRequest
from tests.conftest import free_port, streetwatch_command
from tests.service.helpers import PgCluster, alert, settings_for
from zones.alert import AlertRecord

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="tells senders apart through Linux /proc"),
]

CASES = 40
TEAM = "team-a"  # the grid team of helpers.alert()


# ---- replicas -------------------------------------------------------------------------------------------


def _env(**settings: float) -> dict[str, str]:
    env = {**os.environ, "STREETWATCH_LOG_LEVEL": "warning", "STREETWATCH_WEBHOOK_ALLOW_PRIVATE": "1"}
    env.pop("STREETWATCH_DATABASE_URL", None)
    env.update({f"STREETWATCH_{key.upper()}": str(value) for key, value in settings.items()})
    return env


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextmanager
def replicas(
    db_url: str, tmp_path: Path, env: dict[str, str], names: tuple[str, ...] = ("A", "B")
) -> Iterator[list[Replica]]:
    """Start every replica at once on the same database (they migrate it together), wait for /healthz."""
    started: list[Replica] = []
    try:
        for name in names:
            port = free_port()
            log = tmp_path / f"serve-{name}.log"
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [*streetwatch_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db_url],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            started.append(Replica(name, f"http://127.0.0.1:{port}", process, log))
        deadline = time.monotonic() + 60
        for replica in started:
            while True:
                try:
                    if httpx.get(f"{replica.url}/healthz", timeout=1, verify=False).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if not replica.alive or time.monotonic() > deadline:
                    raise AssertionError(f"replica {replica.name} did not start:\n{replica.log_text()}")
                time.sleep(0.1)
        yield started
    finally:
        for replica in started:
            replica.stop()


def add_webhook(db_url: str, url: str, env: dict[str, str], *events: str) -> str:
    """``streetwatch webhook add [--events E …]``, as an admin would run it; returns the whsec_… secret."""
    extra = [arg for event in events for arg in ("--events", event)]
    done = subprocess.run(
        [*streetwatch_command(), "webhook", "add", "--team", TEAM, "--url", url, "--db", db_url, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_tokens(db: Database) -> dict[str, str]:
    now = datetime.now(UTC)
    with db.writing() as session:
        _, camera = crud.create_token(session, role="camera", name="cam", team=None, now=now)
        _, operator = crud.create_token(session, role="operator", name="op", team=None, now=now)
    return {"camera": camera, "operator": operator}


# ---- receiver -------------------------------------------------------------------------------------------


def _sender_pid(peer_port: int, own_port: int, pids: dict[int, str]) -> str | None:
    """Which replica holds the client end (127.0.0.1:peer_port -> own_port) of a connection: its socket
    inode from /proc/net/tcp, then the process whose file descriptors include it."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        local, remote = parts[1], parts[2]
        if int(local.split(":")[1], 16) == peer_port and int(remote.split(":")[1], 16) == own_port:
            inode = parts[9]
            break
    if inode is not None:
        target = f"socket:[{inode}]"
        for pid, name in pids.items():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                            return name
                    except OSError:
                        continue
            except OSError:
                continue
    # A live sender keeps its end open until we answer, so it is always found above; a request whose
    # sender has gone was sent by the replica that died (killed while this request was on its way).
    dead = [name for pid, name in pids.items() if not _running(pid)]
    return dead[0] if len(dead) == 1 else None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@dataclass
class Delivery:
    """One request as the receiver saw it."""

    webhook_id: str
    sender: str | None
    payload: dict[str, Any] | None  # None: the signature did not verify
    answered: bool = False


@dataclass
class Receiver:
    """A team's dispatch system: a threaded HTTP server on loopback that verifies every request."""

    delay_s: float = 0.0
    secret: str = ""
    senders: dict[int, str] = field(default_factory=dict)  # pid -> replica name
    on_arrival: Callable[[Delivery], None] | None = None
    answer: Callable[[Delivery], int] | None = None  # status code for a verified request (default 200)
    requests: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                sender = _sender_pid(self.client_address[1], receiver.port, receiver.senders)
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                except Exception:
                    payload = None
                seen = Delivery(headers.get("webhook-id", ""), sender, payload)
                with receiver.lock:
                    receiver.requests.append(seen)
                if receiver.on_arrival is not None:
                    receiver.on_arrival(seen)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                try:
                    if payload is None:
                        self.send_response(400)
                    else:
                        self.send_response(receiver.answer(seen) if receiver.answer is not None else 200)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    return  # the sender died while we worked
                seen.answered = True

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64  # both relays connect at once; the default backlog of 5 drops SYNs

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def seen(self) -> Counter[str]:
        with self.lock:
            return Counter(request.webhook_id for request in self.requests)

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- driving the replicas -------------------------------------------------------------------------------


def act(replicas: list[Replica], first: int, token: str, path: str, json: dict[str, Any]) -> int:
    """POST through replica ``first``; through the next live one when that one is (or goes) down, as a
    load balancer would. Returns the status code of the answer that came back."""
    failed_over = False
    for replica in replicas[first:] + replicas[:first]:
        if not replica.alive:
            failed_over = True
            continue
        try:
            response = httpx.post(
                # verify=False: plain http; skips loading the CA bundle (~60 ms a call)
                f"{replica.url}{path}",
                json=json,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
                verify=False,
            )
        except httpx.TransportError:
            failed_over = True  # it may have committed before it died: the retry then finds it done
            continue
        if failed_over and response.status_code == 409:
            return 200  # "cannot dispatch a case that is dispatched": the dead replica did commit it
        return response.status_code
    raise AssertionError(f"no replica answered POST {path}")


def make_cases(replicas: list[Replica], tokens: dict[str, str], count: int) -> list[str]:
    """Ingest ``count`` alerts, alternating replicas, and file each one (through the other replica)."""
    records = [alert(camera_id=f"cam-{i % 8:02d}") for i in range(count)]

    def one(i: int) -> None:
        record = records[i]
        code = act(replicas, i % 2, tokens["camera"], "/api/v1/alerts", record)
        assert code in (200, 201), code
        code = act(replicas, (i + 1) % 2, tokens["operator"], f"/api/v1/cases/{record['id']}/actions",
                   {"action": "file", "note": "seen"})  # fmt: skip
        assert code == 200, code

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(count)))
    return [str(record["id"]) for record in records]


def dispatch(replicas: list[Replica], tokens: dict[str, str], case_ids: list[str], workers: int) -> None:
    """Dispatch every case, alternating replicas: one case.dispatched message each."""

    def one(i: int) -> None:
        code = act(replicas, i % 2, tokens["operator"], f"/api/v1/cases/{case_ids[i]}/actions",
                   {"action": "dispatch", "note": "go"})  # fmt: skip
        assert code == 200, code

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(case_ids))))


def poll_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.05)


def dispatched_messages(db: Database) -> dict[str, str]:
    """webhook-id -> case id of every case.dispatched message in the outbox."""
    with db.reading() as session:
        rows = session.execute(select(OutboxMessage.id, OutboxMessage.case_id, OutboxMessage.type)).all()
    assert {row.type for row in rows} <= {"case.dispatched"}
    return {row.id: row.case_id for row in rows}


def delivery_rows(db: Database) -> list[WebhookDelivery]:
    with db.reading() as session:
        return list(session.scalars(select(WebhookDelivery)))


def all_delivered(db: Database, count: int) -> bool:
    rows = delivery_rows(db)
    return len(rows) == count and all(row.status == "delivered" for row in rows)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh database on the session's PostgreSQL (skips when its binaries are missing)."""
    return pg_cluster.new_database()


# ---- tests ----------------------------------------------------------------------------------------------


def test_two_replicas_deliver_every_webhook_exactly_once(pg_url: str, tmp_path: Path) -> None:
    """Both relays lease from one outbox at once (FOR UPDATE SKIP LOCKED); the lease (30 s) never runs out
    here, so any webhook-id seen twice would be a real double send."""
    env = _env(relay_poll_s=0.1, relay_batch=4, relay_lease_s=30, relay_timeout_s=10, retry_base_s=0.2,
               retry_cap_s=1)  # fmt: skip
    receiver = Receiver(delay_s=0.02)
    db: Database | None = None
    try:
        with replicas(pg_url, tmp_path, env) as both:
            receiver.senders = {replica.process.pid: replica.name for replica in both}
            receiver.secret = add_webhook(pg_url, receiver.url, env)
            db = open_database(settings_for(pg_url).database_url)
            tokens = make_tokens(db)
            case_ids = make_cases(both, tokens, CASES)
            dispatch(both, tokens, case_ids, workers=4)

            expected = dispatched_messages(db)
            assert sorted(expected.values()) == sorted(case_ids)
            poll_until(lambda: all_delivered(db, CASES), 30, f"all {CASES} deliveries marked delivered")
            # Delivered in the database means the receiver answered 200 to it: nothing is still on its way.
            requests = receiver.snapshot()
            seen = Counter(request.webhook_id for request in requests)
            assert set(seen) == set(expected)
            assert [webhook_id for webhook_id, n in seen.items() if n > 1] == [], "a webhook was sent twice"
            assert all(request.payload is not None for request in requests), "a signature did not verify"
            for request in requests:
                assert request.payload is not None
                assert request.payload["type"] == "case.dispatched"
                assert request.payload["data"]["case"]["id"] == expected[request.webhook_id]
            senders = Counter(request.sender for request in requests)
            assert set(senders) == {"A", "B"}, f"both relays should have sent some: {senders}"
            rows = delivery_rows(db)
            assert all(row.attempts == 1 and row.failures == 0 and row.lease_owner is None for row in rows)
            for replica in both:
                assert "Traceback" not in replica.log_text(), replica.log_text()
                assert "lost lease" not in replica.log_text(), replica.log_text()
    finally:
        receiver.close()
        if db is not None:
            db.dispose()


def test_kill_9_of_one_replica_mid_send_loses_no_webhook(pg_url: str, tmp_path: Path) -> None:
    """Replica A is killed with SIGKILL at the moment the receiver holds one of its requests (the receiver
    answers after 200 ms, so A's relay is mid-send); dispatching goes on through B.

    B must deliver everything: every webhook-id arrives at least once and every delivery row ends up
    ``delivered``. Duplicates are allowed only for what A had in flight: A records a batch's outcomes
    after all of its sends return, so every delivery of the batch it was sending when it died stays
    leased to it although the receiver already has some of them; once that lease (4 s here) runs out, B
    sends them again with the same webhook-id (at-least-once; receivers dedupe on it). Hence: at least
    one duplicate (the request held during the kill), all duplicates first sent by A and re-sent by B,
    identical bodies, and no more of them than A's lease batch (STREETWATCH_RELAY_BATCH = 4)."""
    batch = 4
    env = _env(relay_poll_s=0.1, relay_batch=batch, relay_lease_s=4, relay_timeout_s=2, retry_base_s=0.2,
               retry_cap_s=1)  # fmt: skip
    receiver = Receiver(delay_s=0.2)
    db: Database | None = None
    kill_lock = threading.Lock()
    killed: dict[str, Any] = {}
    try:
        with replicas(pg_url, tmp_path, env) as both:
            a, b = both
            receiver.senders = {replica.process.pid: replica.name for replica in both}
            receiver.secret = add_webhook(pg_url, receiver.url, env)
            db = open_database(settings_for(pg_url).database_url)
            tokens = make_tokens(db)
            case_ids = make_cases(both, tokens, CASES)

            def kill_a_mid_send(request: Delivery) -> None:
                if request.sender != "A":
                    return
                with kill_lock:
                    if killed or len(receiver.snapshot()) < CASES // 4:
                        return
                    os.kill(a.process.pid, signal.SIGKILL)
                    killed.update(held=request.webhook_id, seen=set(receiver.seen()))

            receiver.on_arrival = kill_a_mid_send
            dispatch(both, tokens, case_ids, workers=2)
            # Dispatching may finish before the receiver has seen a quarter of the messages (a slow
            # machine): the relays keep sending after it, so the kill is awaited, not expected already.
            poll_until(lambda: bool(killed), 40, "replica A killed while sending")
            assert a.process.wait(10) == -signal.SIGKILL
            assert b.alive

            expected = dispatched_messages(db)
            assert sorted(expected.values()) == sorted(case_ids), "a dispatch was lost with replica A"
            assert len(killed["seen"]) < CASES, "the kill should land while messages were still undelivered"
            poll_until(lambda: all_delivered(db, CASES), 40, f"replica B delivers all {CASES} messages")

            requests = receiver.snapshot()
            seen = Counter(request.webhook_id for request in requests)
            assert set(seen) == set(expected), "a webhook was lost"
            assert all(request.payload is not None for request in requests), "a signature did not verify"
            duplicates = {webhook_id for webhook_id, n in seen.items() if n > 1}
            assert killed["held"] in duplicates, "the request A died sending must be sent again by B"
            assert len(duplicates) <= batch, f"{len(duplicates)} duplicates > A's lease batch of {batch}"
            assert max(seen.values()) == 2
            for webhook_id in duplicates:
                copies = [request for request in requests if request.webhook_id == webhook_id]
                assert [request.sender for request in copies] == ["A", "B"], copies
                assert copies[0].payload == copies[1].payload

            rows = delivery_rows(db)
            assert all(row.status == "delivered" and row.lease_owner is None for row in rows)
            assert "Traceback" not in b.log_text(), b.log_text()
    finally:
        receiver.close()
        if db is not None:
            db.dispose()


def test_a_long_host_name_still_leases_on_postgresql(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kubernetes pod names reach 63 characters; the lease token (host name, process and lease ids) once
    overflowed ``lease_owner VARCHAR(64)`` and every lease of such a replica failed on PostgreSQL."""
    monkeypatch.setattr(socket, "gethostname", lambda: "streetwatch-serve-" + "x" * 45)
    settings = settings_for(pg_url)
    db = open_database(settings.database_url)
    now = datetime.now(UTC)
    try:
        with db.writing() as session:
            crud.add_webhook(session, team=TEAM, url="http://127.0.0.1:9/hook", now=now, allow_private=True)
        admin = Principal(token_id="t", name="admin", role="admin", team=None, token_sha256="0" * 64)
        record = AlertRecord.model_validate(alert())
        crud.ingest_alert(db=db, record=record, actor=admin, now=now, settings=settings)
        for action in ("file", "dispatch"):
            with db.writing() as session:
                crud.apply_action(session, case_id=str(record.id), request=ActionRequest(action=action),
                                  actor=admin, now=now)  # fmt: skip
        for relay in (Relay(db, settings), Relay(db, settings, owner="o" * 80 + uuid.uuid4().hex)):
            try:
                leases = relay.lease()
                assert len(leases) == 1 and len(leases[0].token) <= 64
                with db.writing() as session:  # give the delivery back for the next relay
                    row = session.get(WebhookDelivery, leases[0].delivery_id)
                    assert row is not None
                    row.lease_owner = row.lease_until = None
            finally:
                relay.close()
    finally:
        db.dispose()
