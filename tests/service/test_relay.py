"""Dispatch: transactional outbox and the relay, against a real receiver HTTP server on loopback.

Signatures are checked with the reference ``standardwebhooks`` package, not with our own code.
"""

from __future__ import annotations

import itertools
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from service import crud
from service.core.config import THREE_DAYS_S, Settings
from service.core.db import Database, open_database
from service.core.errors import Invalid
from service.core.lifecycle import Action
from service.core.security import Principal, sign_webhook, webhook_headers
from service.core.ssrf import check_webhook_url
from service.models import AlertRecordRow, Case, OutboxMessage, WebhookDelivery, WebhookEndpoint
from service.relay import Relay, parse_retry_after
from service.schemas import ActionRequest
from tests.conftest import free_port
from tests.service.helpers import FakeClock, alert, closed, new_case, settings_for, start_server
from zones.alert import AlertRecord

ADMIN = Principal(token_id="t", name="admin-test", role="admin", team=None, token_sha256="0" * 64)

# ---- receiver ---------------------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver as a team's dispatch system would run it: verifies, dedupes on webhook-id.

    ``answer(n)`` decides the reply to the n-th request: (status, headers).
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        port: int = 0,
        answer: Callable[[int], tuple[int, dict[str, str]]] = lambda n: (200, {}),
        verify: bool = True,
        delay_s: float = 0.0,
    ) -> None:
        self.secret = secret
        self.answer = answer
        self.verify = verify
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request, in arrival order
        self.processed: Counter[str] = Counter()  # webhook-id -> times processed (must stay 1)
        self.payloads: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    number = len(receiver.requests)
                    receiver.requests.append({"headers": headers, "body": body, "at": time.monotonic()})
                status, extra = receiver.answer(number)
                if status == 200:
                    try:
                        payload = (
                            Webhook(receiver.secret or "").verify(body, headers)
                            if receiver.verify
                            else json.loads(body)
                        )
                    except Exception:
                        with receiver.lock:
                            receiver.bad_signatures += 1
                        status = 400
                    else:
                        if receiver.delay_s:
                            time.sleep(receiver.delay_s)
                        with receiver.lock:
                            msg_id = headers["webhook-id"]
                            if msg_id not in receiver.processed:  # dedupe: process once
                                receiver.processed[msg_id] += 1
                                receiver.payloads[msg_id] = payload
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids_sent(self) -> Counter[str]:
        with self.lock:
            return Counter(r["headers"]["webhook-id"] for r in self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(step)


# ---- store-level helpers ------------------------------------------------------------------------------


def relay_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "retry_base_s": 0.05,
        "retry_cap_s": 0.4,
        "relay_poll_s": 0.05,
        "relay_timeout_s": 5.0,
        "relay_lease_s": 30.0,
        "relay_enabled": True,
    }
    values.update(overrides)
    return settings_for(url, **values)


def add_endpoint(db: Database, url: str, team: str = "team-a") -> str:
    with db.writing() as session:
        _, secret = crud.add_webhook(session, team=team, url=url, now=datetime.now(UTC), allow_private=True)
    return secret


def dispatched_cases(db: Database, settings: Settings, count: int, team: str = "team-a") -> list[str]:
    """Create ``count`` cases through ingest and dispatch them: ``count`` case.dispatched messages."""
    ids = []
    now = datetime.now(UTC)
    for _ in range(count):
        record = AlertRecord.model_validate(alert(grid={"code": "g-1", "team": team}))
        crud.ingest_alert(db=db, record=record, actor=ADMIN, now=now, settings=settings)
        for action in ("file", "dispatch"):
            with db.writing() as session:
                crud.apply_action(
                    session, case_id=str(record.id), request=ActionRequest(action=action), actor=ADMIN, now=now
                )
        ids.append(str(record.id))
    return ids


def message_ids(db: Database) -> set[str]:
    with db.reading() as session:
        return set(session.scalars(select(OutboxMessage.id)))


def deliveries(db: Database) -> list[WebhookDelivery]:
    with db.reading() as session:
        return list(session.scalars(select(WebhookDelivery)))


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Database, str]]:
    db = open_database(database_url)
    yield db, database_url
    db.dispose()


# ---- signing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body"),
    [
        ("msg_1", 1_700_000_000, "{}"),
        ("msg_2fa1", 1_800_000_123, '{"type":"case.dispatched","zone":"解放东路"}'),
        ("msg_x", 0, ""),
        ("msg_" + "a" * 60, 2_000_000_000, json.dumps({"k": ["v"] * 100})),
    ],
)
def test_signature_matches_the_standardwebhooks_reference(msg_id: str, timestamp: int, body: str) -> None:
    from service.core.security import new_webhook_secret

    secret = new_webhook_secret()
    reference = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body)
    assert sign_webhook(secret, msg_id, timestamp, body) == reference
    headers = webhook_headers(secret, msg_id, int(time.time()), body)
    Webhook(secret).verify(body, headers, json_parse=False)  # raises if wrong
    with pytest.raises(Exception, match="signature"):
        Webhook(new_webhook_secret()).verify(body, headers, json_parse=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Wed, 27 Nov 2026 09:02:00 GMT", 120.0),  # now is 09:00:00
        ("Wed, 27 Nov 2026 08:00:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_retry_after_parsing(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, datetime(2026, 11, 27, 9, 0, tzinfo=UTC)) == expected


# ---- outbox atomicity and message types ------------------------------------------------------------------


def test_outbox_rows_share_the_transaction_of_the_case_change(store: tuple[Database, str]) -> None:
    db, url = store
    settings = relay_settings(url)
    add_endpoint(db, "http://127.0.0.1:9/hook")
    record = AlertRecord.model_validate(alert())
    case_id = str(record.id)
    crud.ingest_alert(db=db, record=record, actor=ADMIN, now=datetime.now(UTC), settings=settings)
    with db.writing() as session:
        crud.apply_action(
            session, case_id=case_id, request=ActionRequest(action="file"), actor=ADMIN, now=datetime.now(UTC)
        )

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.writing() as session:
        _, queued = crud.apply_action(
            session, case_id=case_id, request=ActionRequest(action="dispatch"), actor=ADMIN, now=datetime.now(UTC)
        )
        assert queued
        raise Boom  # anything failing later in the same transaction
    with db.reading() as session:
        assert session.get(Case, case_id).status == "filed"  # type: ignore[union-attr]
    assert message_ids(db) == set() and deliveries(db) == []


def test_dispatch_then_later_changes_send_updated_messages(store: tuple[Database, str]) -> None:
    db, url = store
    settings = relay_settings(url)
    add_endpoint(db, "http://127.0.0.1:9/a")
    add_endpoint(db, "http://127.0.0.1:9/b")
    add_endpoint(db, "http://127.0.0.1:9/other", team="team-b")
    (case_id,) = dispatched_cases(db, settings, 1)
    with db.reading() as session:
        opened = json.loads(session.get(AlertRecordRow, (case_id, "violation.opened")).payload)  # type: ignore[union-attr]
    # The camera reports the violation gone: the team hears about it too.
    crud.ingest_alert(db=db, record=AlertRecord.model_validate(closed(opened)), actor=ADMIN, now=datetime.now(UTC),
                      settings=settings)  # fmt: skip
    steps: list[tuple[Action, str | None]] = [("handle", "done"), ("reopen", "not done"), ("handle", "done now"),
                                              ("close", None)]  # fmt: skip
    for action, note in steps:
        with db.writing() as session:
            crud.apply_action(
                session, case_id=case_id, request=ActionRequest(action=action, note=note), actor=ADMIN,
                now=datetime.now(UTC),
            )  # fmt: skip
    with db.reading() as session:
        messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)).all()
        per_message = Counter(d.message_id for d in session.scalars(select(WebhookDelivery)))
    assert [m.type for m in messages] == ["case.dispatched"] + ["case.updated"] * 5
    assert json.loads(messages[1].payload)["data"]["change"]["kind"] == "cleared"
    assert all(m.team == "team-a" for m in messages)
    assert set(per_message.values()) == {2}  # both team-a endpoints, not team-b's
    body = json.loads(messages[0].payload)
    assert body["type"] == "case.dispatched"
    assert body["data"]["case"]["id"] == case_id and body["data"]["case"]["status"] == "dispatched"
    assert body["data"]["change"]["action"] == "dispatch"


# ---- delivery through an outage ----------------------------------------------------------------------------


def test_outage_then_recovery_delivers_every_message_once(tmp_path: Path) -> None:
    port = free_port()
    settings = relay_settings(f"sqlite:///{tmp_path / 'o.db'}")
    live = start_server(settings)
    receiver: Receiver | None = None
    try:
        url = f"http://127.0.0.1:{port}/hook"
        with live.client("admin") as admin:
            created = admin.post("/api/v1/webhooks", json={"team": "team-a", "url": url})
            assert created.status_code == 201
            secret = created.json()["secret"]
            assert secret.startswith("whsec_")
        case_ids = [new_case(live, "dispatched") for _ in range(6)]
        with live.client("officer") as officer:
            for case_id in case_ids[:3]:
                officer.post(f"/api/v1/cases/{case_id}/actions", json={"action": "handle", "note": "ok"})
        expected = message_ids(live.db)
        assert len(expected) == 9
        # Phase 1: nothing listens (connection refused) — let the relay fail for a while.
        wait_for(lambda: sum(d.failures for d in deliveries(live.db)) >= 9, timeout=20)
        # Phase 2: the receiver is back but overloaded: 503 with Retry-After for its first answers.
        receiver = Receiver(secret, port=port, answer=lambda n: (503, {"Retry-After": "1"}) if n < 3 else (200, {}))
        wait_for(lambda: set(receiver.processed) == expected, timeout=30)  # type: ignore[union-attr]
        assert receiver.bad_signatures == 0
        assert set(receiver.processed.values()) == {1}
        wait_for(lambda: all(d.status == "delivered" for d in deliveries(live.db)), timeout=10)
        # After the 503s the endpoint paused for Retry-After (1 s; the backoff alone is capped at 0.4 s).
        times = [r["at"] for r in receiver.requests]
        assert max(b - a for a, b in itertools.pairwise(times)) >= 0.9
        with live.client("supervisor") as supervisor:
            listed = supervisor.get("/api/v1/webhooks").json()["items"]
            metrics = supervisor.get("/metrics").text
        assert listed[0]["delivered"] == 9 and listed[0]["pending"] == 0 and listed[0]["failed"] == 0
        assert "streetwatch_outbox_backlog 0" in metrics.splitlines()
        failures = [
            line for line in metrics.splitlines() if line.startswith("streetwatch_webhook_delivery_failures_total")
        ]
        assert int(failures[0].split()[1]) >= 12
        types = Counter(p["type"] for p in receiver.payloads.values())
        assert types == {"case.dispatched": 6, "case.updated": 3}
    finally:
        live.stop()
        live.db.dispose()
        if receiver is not None:
            receiver.close()


# ---- several relays, restarts, crashes ------------------------------------------------------------------


def test_relay_restart_mid_backlog_loses_and_repeats_nothing(store: tuple[Database, str]) -> None:
    db, url = store
    settings = relay_settings(url, relay_batch=2)
    receiver = Receiver(delay_s=0.03)
    receiver.secret = add_endpoint(db, receiver.url)
    try:
        dispatched_cases(db, settings, 24)
        expected = message_ids(db)
        first = Relay(db, settings, owner="relay-a")
        first.start()
        wait_for(lambda: len(receiver.processed) >= 6)
        first.close()  # graceful stop while the backlog is still there
        done_by_first = len(receiver.processed)
        assert done_by_first < len(expected)
        assert all(d.lease_owner is None for d in deliveries(db))  # nothing left leased
        second = Relay(db, settings, owner="relay-b")
        second.start()
        wait_for(lambda: set(receiver.processed) == expected)
        second.close()
        assert set(receiver.ids_sent().values()) == {1}  # not even a duplicate send
        assert receiver.bad_signatures == 0
    finally:
        receiver.close()


def test_crashed_relays_leases_expire_and_messages_arrive_once(store: tuple[Database, str]) -> None:
    db, url = store
    settings = relay_settings(url, relay_batch=4, relay_lease_s=60)
    receiver = Receiver()
    receiver.secret = add_endpoint(db, receiver.url)
    try:
        dispatched_cases(db, settings, 6)
        clock = FakeClock(datetime.now(UTC))
        expected = message_ids(db)
        crashed = Relay(db, settings, clock=clock, owner="crashed")
        leased = crashed.lease()  # ... and the process dies before sending
        assert len(leased) == 4
        survivor = Relay(db, settings, clock=clock, owner="survivor")
        while survivor.run_once():
            pass
        assert len(receiver.processed) == 2  # the leased four wait for their lease to expire
        clock.advance(61)
        while survivor.run_once():
            pass
        assert set(receiver.processed) == expected
        assert set(receiver.ids_sent().values()) == {1}
        crashed.record(leased[0], crashed.send(leased[0]))  # a zombie reporting late changes nothing
        assert set(receiver.processed.values()) == {1}
        assert all(d.status == "delivered" and d.attempts == 1 for d in deliveries(db))
        crashed.close()
        survivor.close()
    finally:
        receiver.close()


def test_two_relays_on_one_database_send_each_message_once(store: tuple[Database, str]) -> None:
    db, url = store
    settings = relay_settings(url, relay_batch=3)
    receiver = Receiver(delay_s=0.005)
    receiver.secret = add_endpoint(db, receiver.url)
    try:
        dispatched_cases(db, settings, 30)
        expected = message_ids(db)
        # Separate engines, as separate serve processes would have.
        other_db = open_database(url)
        relays = [Relay(db, settings, owner="one"), Relay(other_db, settings, owner="two")]
        for relay in relays:
            relay.start()
        wait_for(lambda: set(receiver.processed) == expected)
        for relay in relays:
            relay.close()
        other_db.dispose()
        assert set(receiver.ids_sent().values()) == {1}
        assert receiver.bad_signatures == 0
    finally:
        receiver.close()


# ---- retries, Retry-After, 410 ----------------------------------------------------------------------------


def test_retries_back_off_for_three_days_then_show_as_failed(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    settings = settings_for(f"sqlite:///{tmp_path / 'r.db'}", relay_enabled=False)
    receiver = Receiver(answer=lambda n: (500, {}), verify=False)
    live = start_server(settings, clock=clock)
    try:
        add_endpoint(live.db, receiver.url)
        dispatched_cases(live.db, settings, 1)
        relay = Relay(live.db, settings, clock=clock)
        with live.db.writing() as session:  # the message was written "now" on the fake clock
            session.execute(update(WebhookDelivery).values(retry_from=clock.now, next_attempt_at=clock.now))
        start = clock.now
        attempts: list[datetime] = []
        while True:
            assert relay.run_once() == 1
            attempts.append(clock.now)
            (delivery,) = deliveries(live.db)
            if delivery.status == "failed":
                break
            assert relay.run_once() == 0  # nothing is due before next_attempt_at
            clock.now = delivery.next_attempt_at
        relay.close()
        assert attempts[-1] - start >= timedelta(days=3)
        assert attempts[-2] - start < timedelta(days=3)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(attempts)]
        for n, gap in enumerate(gaps, start=1):
            nominal = min(settings.retry_cap_s, settings.retry_base_s * 2 ** (n - 1))
            assert nominal / 2 <= gap <= nominal, (n, gap)
        assert len(receiver.requests) == len(attempts) and delivery.attempts == len(attempts)
        with live.client("supervisor") as supervisor:
            failed = supervisor.get("/api/v1/webhooks/deliveries", params={"status": "failed"}).json()
            assert failed["total"] == 1
            item = failed["items"][0]
            assert item["last_status_code"] == 500 and item["attempts"] == len(attempts)
            assert 'streetwatch_webhook_deliveries{status="failed"} 1' in supervisor.get("/metrics").text
            # An operator requeues it with a fresh window.
            assert supervisor.post(f"/api/v1/webhooks/deliveries/{item['id']}/retry").status_code == 204
            assert supervisor.post(f"/api/v1/webhooks/deliveries/{item['id']}/retry").status_code == 409
        (delivery,) = deliveries(live.db)
        assert delivery.status == "pending" and delivery.retry_from == clock.now
    finally:
        live.stop()
        live.db.dispose()
        receiver.close()


def test_retry_after_pauses_the_endpoint(store: tuple[Database, str]) -> None:
    db, url = store
    settings = relay_settings(url, relay_batch=1)
    receiver = Receiver(answer=lambda n: (429, {"Retry-After": "120"}) if n == 0 else (200, {}))
    receiver.secret = add_endpoint(db, receiver.url)
    try:
        dispatched_cases(db, settings, 2)
        clock = FakeClock(datetime.now(UTC))
        relay = Relay(db, settings, clock=clock)
        assert relay.run_once() == 1
        assert relay.run_once() == 0  # the other message waits too: the whole endpoint is paused
        clock.advance(119)
        assert relay.run_once() == 0
        clock.advance(2)
        while relay.run_once():
            pass
        relay.close()
        assert len(receiver.processed) == 2
    finally:
        receiver.close()


def test_410_disables_the_endpoint_until_re_enabled(tmp_path: Path) -> None:
    settings = relay_settings(f"sqlite:///{tmp_path / 'g.db'}", relay_enabled=False, relay_batch=1)
    receiver = Receiver(answer=lambda n: (410, {}) if n == 0 else (200, {}))
    live = start_server(settings)
    try:
        receiver.secret = add_endpoint(live.db, receiver.url)
        dispatched_cases(live.db, settings, 3)
        relay = Relay(live.db, settings)
        assert relay.run_once() == 1
        assert relay.run_once() == 0  # disabled: nothing more is sent
        with live.client("admin") as admin:
            (endpoint,) = admin.get("/api/v1/webhooks").json()["items"]
            assert endpoint["disabled_reason"] == "receiver answered 410 Gone" and endpoint["pending"] == 3
            assert admin.post(f"/api/v1/webhooks/{endpoint['id']}/enable").status_code == 200
        while relay.run_once():
            pass
        relay.close()
        assert len(receiver.processed) == 3  # nothing was lost while disabled
    finally:
        live.stop()
        live.db.dispose()
        receiver.close()


DAY_S = 24 * 3600.0


def _walk_retries(db: Database, relay: Relay, clock: FakeClock) -> list[datetime]:
    """Attempt whenever the delivery is due until it fails for good; returns the attempt times."""
    attempts: list[datetime] = []
    while True:
        assert relay.run_once() == 1
        attempts.append(clock.now)
        (delivery,) = deliveries(db)
        if delivery.status == "failed":
            return attempts
        assert delivery.status == "pending" and len(attempts) < 200
        clock.now = delivery.next_attempt_at


# No outage at all is test_retries_back_off_for_three_days_then_show_as_failed.
@pytest.mark.parametrize("relay_down_s", [1 * DAY_S, 4 * DAY_S])
def test_retry_window_runs_from_the_first_failed_attempt(store: tuple[Database, str], relay_down_s: float) -> None:
    """Regression (found by the outbox state machine): the 3 days counted from when the message was written,
    so after a relay outage of 3+ days one failed attempt killed the message, and after a shorter one the
    receiver got less than its 3 days."""
    db, url = store
    settings = settings_for(url, relay_enabled=False)  # contracted defaults: 5 s doubling to 6 h, 3 days
    receiver = Receiver(answer=lambda n: (500, {}), verify=False)
    add_endpoint(db, receiver.url)
    clock = FakeClock(datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    try:
        dispatched_cases(db, settings, 1)
        with db.writing() as session:  # the message was written "now" on the fake clock
            session.execute(update(WebhookDelivery).values(retry_from=clock.now, next_attempt_at=clock.now))
        clock.advance(relay_down_s)  # ... and no relay ran for this long
        relay = Relay(db, settings, clock=clock)
        attempts = _walk_retries(db, relay, clock)
        relay.close()
        assert attempts[-1] - attempts[0] >= timedelta(seconds=THREE_DAYS_S)
        assert attempts[-2] - attempts[0] < timedelta(seconds=THREE_DAYS_S)
        assert len(attempts) == len(receiver.requests) >= 15
    finally:
        receiver.close()


def test_endpoint_re_enabled_days_after_410_gets_a_fresh_retry_window(store: tuple[Database, str]) -> None:
    """The days an endpoint spent disabled (after its own 410) are not days of the receiver failing."""
    db, url = store
    settings = settings_for(url, relay_enabled=False)
    receiver = Receiver(answer=lambda n: (410, {}) if n == 0 else (503, {}), verify=False)
    add_endpoint(db, receiver.url)
    try:
        dispatched_cases(db, settings, 1)
        clock = FakeClock(datetime.now(UTC))
        relay = Relay(db, settings, clock=clock)
        assert relay.run_once() == 1  # 410: the endpoint disables itself
        clock.advance(5 * DAY_S)
        with db.writing() as session:
            (endpoint,) = session.scalars(select(WebhookEndpoint))
            crud.set_webhook_enabled(session, endpoint_id=endpoint.id, enabled=True, now=clock.now)
        first_failure = clock.now
        assert relay.run_once() == 1  # 503
        (delivery,) = deliveries(db)
        assert delivery.status == "pending" and delivery.retry_from == first_failure
        clock.now = delivery.next_attempt_at
        attempts = [first_failure, *_walk_retries(db, relay, clock)]
        relay.close()
        assert attempts[-1] - first_failure >= timedelta(seconds=THREE_DAYS_S)
        assert attempts[-2] - first_failure < timedelta(seconds=THREE_DAYS_S)
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (1, 2.5, 5.0),
        (2, 5.0, 10.0),
        (13, 3 * 3600.0, 6 * 3600.0),  # 5 s * 2^12 = 5.7 h, under the cap
        (60, 3 * 3600.0, 6 * 3600.0),
        # Regression: attempts keeps counting across operator requeues, and 5.0 * 2**1024 raised
        # OverflowError in record(), so such a delivery was re-sent every lease period and never recorded.
        (1025, 3 * 3600.0, 6 * 3600.0),
        (10**6, 3 * 3600.0, 6 * 3600.0),
    ],
)
def test_backoff_is_capped_for_any_attempt_count(attempts: int, low: float, high: float) -> None:
    relay = Relay.__new__(Relay)  # only the backoff arithmetic, no database or threads
    relay.settings = Settings()
    relay.rng = random.Random(attempts)
    assert low <= relay.backoff_s(attempts) <= high


# ---- SSRF ----------------------------------------------------------------------------------------------


def _resolver(*addresses: str) -> Callable[..., list[tuple[Any, ...]]]:
    def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return resolve


@pytest.mark.parametrize(
    ("url", "addresses", "refused"),
    [
        ("http://127.0.0.1/hook", (), "non-public"),
        ("http://[::1]:8080/hook", (), "non-public"),
        ("http://10.1.2.3/", (), "non-public"),
        ("http://172.16.0.1/", (), "non-public"),
        ("http://192.168.1.10/", (), "non-public"),
        ("http://169.254.169.254/latest/meta-data", (), "non-public"),  # cloud metadata
        ("http://100.64.0.1/", (), "non-public"),  # carrier-grade NAT
        ("http://0.0.0.0/", (), "non-public"),
        ("http://[::ffff:127.0.0.1]/", (), "non-public"),
        ("http://[fd00::1]/", (), "non-public"),
        ("http://224.0.0.1/", (), "non-public"),
        ("http://dispatch.example/", ("93.184.216.34", "10.0.0.5"), "non-public"),  # one private answer is enough
        ("http://localhost/", ("127.0.0.1",), "non-public"),
        ("ftp://93.184.216.34/", (), "http or https"),
        ("http://user:pw@93.184.216.34/", (), "credentials"),
        ("http://93.184.216.34/hook", (), None),
        ("https://[2606:4700::1111]/hook", (), None),
        ("https://dispatch.example/hook", ("93.184.216.34",), None),
    ],
)
def test_ssrf_policy(url: str, addresses: tuple[str, ...], refused: str | None) -> None:
    resolve = _resolver(*addresses)
    if refused is None:
        check_webhook_url(url, allow_private=False, resolve=resolve)
    else:
        with pytest.raises(Invalid, match=refused):
            check_webhook_url(url, allow_private=False, resolve=resolve)
    if refused == "non-public":
        check_webhook_url(url, allow_private=True, resolve=resolve)  # the demo/test escape hatch


def test_api_refuses_private_endpoints_unless_allowed(tmp_path: Path) -> None:
    live = start_server(settings_for(f"sqlite:///{tmp_path / 's.db'}", webhook_allow_private=False))
    try:
        with live.client("admin") as admin:
            response = admin.post("/api/v1/webhooks", json={"team": "team-a", "url": "http://127.0.0.1:9/x"})
            assert response.status_code == 422 and "STREETWATCH_WEBHOOK_ALLOW_PRIVATE" in response.text
            ok = admin.post("/api/v1/webhooks", json={"team": "team-a", "url": "http://93.184.216.34/x"})
            assert ok.status_code == 201
    finally:
        live.stop()
        live.db.dispose()


def test_relay_rechecks_addresses_at_send_time(store: tuple[Database, str]) -> None:
    db, url = store
    settings = relay_settings(url, webhook_allow_private=False)
    with db.writing() as session:  # registered while the name resolved to a public address
        session.add(
            WebhookEndpoint(id="e1", team="team-a", url="http://rebind.example/hook", secret="whsec_AAAA",
                            created_at=datetime.now(UTC))
        )  # fmt: skip
    dispatched_cases(db, settings, 1)
    relay = Relay(db, settings, resolve=_resolver("127.0.0.1"))  # ... and now points inside
    assert relay.run_once() == 1
    relay.close()
    (delivery,) = deliveries(db)
    assert delivery.status == "pending" and delivery.last_error is not None
    assert delivery.last_error.startswith("refused:")
