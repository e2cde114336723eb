"""Delivery under faults: the transactional outbox and the webhook relay as a hypothesis state machine.

The machine creates case events (camera ingest, review actions), runs relay rounds, takes receivers down
(connection refused, 503 with or without Retry-After, reply lost after processing), crashes the relay mid-batch
and builds a new one on the same database, crashes ingest transactions before commit, and moves a fake clock by
seconds up to several days (past the 3-day retry horizon). After every step it checks:

- nothing is lost: every outbox message has a delivery per endpoint that is delivered, still pending with a
  bounded wait, or failed, and failed only after the relay retried it for the contracted 3 days;
- no message id is ever sent (or stored) with two different payloads, and every request is correctly signed
  (checked with the reference ``standardwebhooks`` package);
- once the receivers stay up and time moves on, every message reaches every receiver, once by webhook-id.

The two crash windows of the outbox are also tested explicitly below the machine.
``STREETWATCH_FUZZ_EXAMPLES`` scales the machine (the ``make fuzz`` campaign).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx
import pytest
import standardwebhooks.webhooks
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select
from standardwebhooks import Webhook

from service import crud
from service.core.config import THREE_DAYS_S, Settings
from service.core.db import Database, open_database
from service.core.errors import Conflict
from service.core.lifecycle import Action, next_status
from service.core.security import Principal
from service.crud import ingest as crud_ingest  # the module whose _log/_enqueue the crash tests replace
from service.models import AlertRecordRow, Base, Case, OutboxMessage, WebhookDelivery, WebhookEndpoint
from service.relay import Relay
from service.schemas import ActionRequest
from tests.conftest import report_count
from tests.service.helpers import FakeClock, alert, closed, settings_for
from zones.alert import AlertRecord

FUZZ_EXAMPLES = int(os.environ.get("STREETWATCH_FUZZ_EXAMPLES", "0") or 0)


def machine_settings(backend: str) -> settings:
    # A PostgreSQL round trip costs several times SQLite's in-process call, so PostgreSQL gets a fifth of the
    # runs (each run is a whole sequence of up to 50 steps: STREETWATCH_FUZZ_EXAMPLES=2000 means 2000 sequences
    # on SQLite, 400 on PostgreSQL).
    examples = FUZZ_EXAMPLES or 20
    return settings(
        max_examples=examples if backend == "sqlite" else max(6, examples // 5),
        stateful_step_count=50 if FUZZ_EXAMPLES else 30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
TEAM = "team-a"
ADMIN = Principal(token_id="t-admin", name="admin-test", role="admin", team=None, token_sha256="0" * 64)
CAMERA = Principal(token_id="t-cam", name="cam-test", role="camera", team=None, token_sha256="1" * 64)
DAY = 24 * 3600.0
TICK = timedelta(microseconds=1)
OUTAGE_POLL = timedelta(hours=1)
MAX_OUTAGES = 4 if FUZZ_EXAMPLES else 2


class Crash(BaseException):
    """A process dying: a BaseException, so no ``except Exception`` on the way can swallow it."""


# ---- receiver -------------------------------------------------------------------------------------------

Mode = Literal["up", "refuse", "503", "ack_lost"]


class Receiver:
    """A team's dispatch endpoint on loopback that fails the way real ones do.

    ``up``: verifies, processes once per webhook-id (later copies are dropped as duplicates), answers 200.
    ``refuse``: nothing listens (a bound, non-listening socket keeps the port: connects get RST).
    ``503``: verifies, answers 503 (optionally with Retry-After), processes nothing.
    ``ack_lost``: processes, then closes the connection without answering (the relay cannot know).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secret = ""
        self.mode: Mode = "up"
        self.retry_after: str | None = None
        self.wire: list[tuple[str, bytes, bool]] = []  # (webhook-id, body, signature valid), arrival order
        self.processed: dict[str, bytes] = {}
        self.duplicates = 0
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._placeholder: socket.socket | None = None
        self.port = 0
        self._listen()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                msg_id = headers.get("webhook-id", "")
                try:
                    Webhook(receiver.secret).verify(body, headers, json_parse=False)
                    valid = True
                except Exception:  # WebhookVerificationError, or headers too broken to even parse
                    valid = False
                with receiver.lock:
                    receiver.wire.append((msg_id, body, valid))
                    mode, retry_after = receiver.mode, receiver.retry_after
                    if not valid:
                        receiver.bad_signatures += 1
                    elif mode != "503":
                        if msg_id in receiver.processed:
                            receiver.duplicates += 1
                        else:
                            receiver.processed[msg_id] = body
                if mode == "ack_lost" and valid:
                    self.close_connection = True  # processed, but the answer never leaves
                    return
                status = 400 if not valid else 503 if mode == "503" else 200
                self.send_response(status)
                if status == 503 and retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def _listen(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def _stop_listening(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None
        placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        placeholder.bind(("127.0.0.1", self.port))  # held, never listened on: connections are refused
        self._placeholder = placeholder

    def set_mode(self, mode: Mode, retry_after: str | None = None) -> None:
        if mode == "refuse":
            self._stop_listening()
        elif self._server is None:
            self._listen()
        with self.lock:
            self.mode, self.retry_after = mode, retry_after

    def reset(self, secret: str) -> None:
        self.set_mode("up")
        with self.lock:
            self.secret = secret
            self.wire.clear()
            self.processed.clear()
            self.duplicates = self.bad_signatures = 0

    def close(self) -> None:
        self._stop_listening()
        if self._placeholder is not None:
            self._placeholder.close()


def receiver_clock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """The receivers live in the test's world: standardwebhooks' 5-minute timestamp check uses the fake clock.

    Without this a message re-sent days later (fake time) would look stale against the real clock; with it, the
    check still proves that every (re)send is signed with the relay's current time, not the first attempt's.
    """

    class WorldTime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return clock().astimezone(tz) if tz is not None else clock()

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", WorldTime)


# ---- world: one database and two receivers per test, reset for every example ------------------------------


@dataclass
class World:
    db: Database
    settings: Settings
    clock: FakeClock
    receivers: list[Receiver]
    counts: Counter[str] = field(default_factory=Counter)


def relay_settings(url: str) -> Settings:
    # Retry timing stays at the contracted defaults (base 5 s, cap 6 h, 3 days, Retry-After cap 24 h).
    return settings_for(url, relay_enabled=False, relay_batch=8, relay_lease_s=60.0, relay_timeout_s=5.0)


def new_relay(world: World, name: str) -> tuple[Relay, httpx.Client]:
    # verify=False: plain http on loopback; skips loading the CA bundle (~60 ms per client).
    client = httpx.Client(timeout=world.settings.relay_timeout_s, follow_redirects=False, verify=False)
    relay = Relay(world.db, world.settings, clock=world.clock, client=client, rng=random.Random(name), owner=name)
    return relay, client


def clear(db: Database) -> None:
    with db.writing() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))


def add_endpoints(world: World) -> None:
    for receiver in world.receivers:
        with world.db.writing() as session:
            _, secret = crud.add_webhook(session, team=TEAM, url=receiver.url, now=world.clock(), allow_private=True)
        receiver.reset(secret)


def ingest(world: World, record: dict[str, Any]) -> crud.IngestOutcome:
    return crud.ingest_alert(
        db=world.db, record=AlertRecord.model_validate(record), actor=CAMERA, now=world.clock(), settings=world.settings
    )


def act(world: World, case_id: str, action: Action) -> None:
    with world.db.writing() as session:
        crud.apply_action(
            session, case_id=case_id, request=ActionRequest(action=action, note="n"), actor=ADMIN, now=world.clock()
        )


def outbox(db: Database) -> dict[str, str]:
    with db.reading() as session:
        return {msg_id: payload for msg_id, payload in session.execute(select(OutboxMessage.id, OutboxMessage.payload))}


def all_deliveries(db: Database) -> list[WebhookDelivery]:
    with db.reading() as session:
        return list(session.scalars(select(WebhookDelivery)))


def snapshot(db: Database) -> tuple[dict[str, str], list[WebhookDelivery]]:
    """Outbox and deliveries in one session (fewer round trips; nothing else writes while the checks run)."""
    with db.reading() as session:
        messages = {
            msg_id: payload for msg_id, payload in session.execute(select(OutboxMessage.id, OutboxMessage.payload))
        }
        return messages, list(session.scalars(select(WebhookDelivery)))


@pytest.fixture
def world(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    db = open_database(database_url)
    clock = FakeClock(START)
    receiver_clock(monkeypatch, clock)
    receivers = [Receiver(), Receiver()]
    try:
        yield World(db=db, settings=relay_settings(database_url), clock=clock, receivers=receivers)
    finally:
        for receiver in receivers:
            receiver.close()
        db.dispose()


# ---- the state machine ------------------------------------------------------------------------------------


@dataclass
class CaseModel:
    id: str
    record: dict[str, Any]
    status: str = "reported"
    dispatched: bool = False
    gone_reported: bool = False


# Per status, the actions a reviewer/officer can take (the first is the "progress" one).
NEXT_ACTIONS: dict[str, list[Action]] = {
    "reported": ["file", "reject"],
    "filed": ["dispatch"],
    "dispatched": ["handle"],
    "handled": ["close", "reopen"],
    "closed": [],
    "rejected": [],
}
RETRY_AFTER = [None, "0", "30", "3600", str(int(2 * DAY))]  # the last beyond the 24 h cap
ADVANCE_S = [1.0, 30.0, 61.0, 600.0, 3600.0, 6 * 3600.0, DAY, THREE_DAYS_S + 1, 4 * DAY]


def outbox_machine(world: World) -> type[RuleBasedStateMachine]:
    class OutboxMachine(RuleBasedStateMachine):
        cases = Bundle("cases")

        def __init__(self) -> None:
            super().__init__()
            self.w = world
            clear(world.db)
            world.clock.now = START
            add_endpoints(world)
            with world.db.reading() as session:
                self.endpoints = {e.id: r for e, r in zip(
                    session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.url)),
                    sorted(world.receivers, key=lambda r: r.url), strict=True)}  # fmt: skip
            self.relays = 0
            self.outages = 0
            self.relay, self.client = self._new_relay()
            self.expected: dict[str, str] = {}  # message id -> payload, as committed
            self.seen_failures: dict[str, int] = {}
            self.first_failure: dict[str, datetime] = {}  # delivery -> first failed attempt of its retry window
            self.healthy = True  # False while a step runs; the final drain only runs after a clean sequence
            world.counts["examples"] += 1

        def _new_relay(self) -> tuple[Relay, httpx.Client]:
            self.relays += 1
            return new_relay(self.w, f"relay-{self.relays}")

        def _begin(self, name: str) -> None:
            self.healthy = False
            self.w.counts["steps"] += 1
            self.w.counts[f"step {name}"] += 1

        def _expect_new(self, before: dict[str, str], count: int) -> None:
            after = outbox(self.w.db)
            new = {k: v for k, v in after.items() if k not in before}
            assert len(new) == count, (len(new), count)
            assert set(before) <= set(after)
            self.expected.update(new)
            self.w.counts["messages"] += count

        def observe(self) -> tuple[list[WebhookDelivery], dict[str, datetime | None]]:
            """Track each delivery's first failed attempt in its retry window (independently of the relay);
            returns the deliveries and each endpoint's paused_until."""
            with self.w.db.reading() as session:
                rows = list(session.scalars(select(WebhookDelivery)))
                paused = {e.id: e.paused_until for e in session.scalars(select(WebhookEndpoint))}
            for d in rows:
                if d.failures > self.seen_failures.get(d.id, 0):
                    self.first_failure.setdefault(d.id, d.last_attempt_at)  # type: ignore[arg-type]
                    self.seen_failures[d.id] = d.failures
            return rows, paused

        def relay_until_idle(self) -> datetime | None:
            """Relay rounds until nothing is due; returns when the next pending delivery falls due (None: none
            pending). That moment must lie in the future, or the relay skipped a due delivery."""
            while True:
                busy = self.relay.run_once()
                rows, paused = self.observe()
                if not busy:
                    break
            pending = [d for d in rows if d.status == "pending"]
            if not pending:
                return None
            # A lease holds through lease_until (the relay takes rows whose lease_until < now).
            wake = min(
                max(d.next_attempt_at, (d.lease_until or START) + TICK, paused[d.endpoint_id] or START) for d in pending
            )
            assert wake > self.w.clock(), "a due delivery was not leased"
            return wake

        # ---- case events (each a real database transaction) ----

        @rule(target=cases)
        def camera_reports(self) -> CaseModel:
            self._begin("camera reports")
            before = outbox(self.w.db)
            record = alert(grid={"code": "g-1", "team": TEAM})
            outcome = ingest(self.w, record)
            assert outcome.created and not outcome.queued
            self._expect_new(before, 0)
            return CaseModel(id=str(record["id"]), record=record)

        @initialize(target=cases)
        def first_dispatched_case(self) -> MultipleResults[CaseModel]:
            """Every run starts with a message on its way (later rules may add more)."""
            return self.dispatched_cases(1)

        @rule(target=cases, count=st.integers(1, 2))
        def dispatched_cases(self, count: int) -> MultipleResults[CaseModel]:
            self._begin("dispatched cases")
            made = []
            for _ in range(count):
                case = CaseModel(id="", record=alert(grid={"code": "g-1", "team": TEAM}))
                case.id = str(case.record["id"])
                ingest(self.w, case.record)
                before = outbox(self.w.db)
                act(self.w, case.id, "file")
                act(self.w, case.id, "dispatch")
                case.status, case.dispatched = "dispatched", True
                self._expect_new(before, 1)
                made.append(case)
            return multiple(*made)

        @rule(case=cases, choice=st.integers(0, 3))
        def review_action(self, case: CaseModel, choice: int) -> None:
            self._begin("review action")
            options = NEXT_ACTIONS[case.status]
            action: Action = options[choice % len(options)] if options else "handle"
            before = outbox(self.w.db)
            target = next_status(case.status, action)  # type: ignore[arg-type]
            if target is None:
                with pytest.raises(Conflict):
                    act(self.w, case.id, action)
                self._expect_new(before, 0)
                return
            act(self.w, case.id, action)
            case.status = target
            case.dispatched = case.dispatched or action == "dispatch"
            self._expect_new(before, 1 if case.dispatched else 0)

        @rule(case=cases)
        def camera_reports_gone(self, case: CaseModel) -> None:
            self._begin("camera reports gone")
            before = outbox(self.w.db)
            outcome = ingest(self.w, closed(case.record))
            assert outcome.created == (not case.gone_reported)  # a repeat is idempotent
            self._expect_new(before, 1 if outcome.created and case.dispatched else 0)
            case.gone_reported = True

        @rule(case=cases, point=st.sampled_from(["_log", "_enqueue"]))
        def ingest_crashes_before_commit(self, case: CaseModel, point: str) -> None:
            """The camera's 'gone' report dies inside its transaction, after the case change (and outbox row)."""
            self._begin("ingest crash")
            if case.gone_reported:
                return
            if not case.dispatched:
                point = "_log"  # no outbox row is written for an undispatched case
            before = outbox(self.w.db)
            real = getattr(crud_ingest, point)

            def crash_after(*args: Any, **kwargs: Any) -> None:
                real(*args, **kwargs)
                args[0].flush()  # the rows really are in the transaction when it dies
                raise Crash(point)

            setattr(crud_ingest, point, crash_after)
            try:
                with pytest.raises(Crash):
                    ingest(self.w, closed(case.record))
            finally:
                setattr(crud_ingest, point, real)
            self.w.counts["faults: ingest crash"] += 1
            self._expect_new(before, 0)
            with self.w.db.reading() as session:
                assert session.get(AlertRecordRow, (case.id, "violation.closed")) is None
                assert session.get(Case, case.id).cleared_at is None  # type: ignore[union-attr]

        # ---- relay and receivers ----

        @rule(rounds=st.integers(1, 3))
        def relay_round(self, rounds: int) -> None:
            self._begin("relay round")
            for _ in range(rounds):
                busy = self.relay.run_once()
                self.observe()
                if not busy:
                    break

        @rule(stage=st.sampled_from(["before send", "after send"]), recorded=st.integers(0, 3))
        def relay_crashes(self, stage: str, recorded: int) -> None:
            """The relay process dies mid-batch; a new one starts on the same database."""
            self._begin("relay crash")
            calls = 0

            def send(lease: Any) -> Any:
                raise Crash("send")

            real_record = self.relay.record

            def record(lease: Any, outcome: Any) -> None:
                nonlocal calls
                if calls >= recorded:
                    raise Crash("record")
                calls += 1
                real_record(lease, outcome)

            if stage == "before send":
                setattr(self.relay, "send", send)  # noqa: B010 - shadowing the bound method is the point
            else:
                setattr(self.relay, "record", record)  # noqa: B010
            try:
                self.relay.run_once()
            except Crash:
                self.w.counts["faults: relay crash"] += 1
            finally:
                self.observe()
                self.relay.close()  # its threads and sockets die with it; the database knows nothing
                self.client.close()
            self.relay, self.client = self._new_relay()

        @rule(which=st.integers(0, 1), mode=st.sampled_from(["up", "up", "refuse", "503", "ack_lost"]),
              retry_after=st.sampled_from(RETRY_AFTER))  # fmt: skip
        def receiver_changes(self, which: int, mode: Mode, retry_after: str | None) -> None:
            self._begin("receiver change")
            self.w.receivers[which].set_mode(mode, retry_after if mode == "503" else None)
            if mode != "up":
                self.w.counts[f"faults: receiver {mode}"] += 1

        # The costliest rule (every pending delivery is retried through days of schedule): a few per run.
        @precondition(lambda self: self.outages < MAX_OUTAGES)
        @rule(which=st.integers(0, 1), mode=st.sampled_from(["refuse", "503"]), days=st.sampled_from([0.5, 2.0, 3.5]),
              recovers=st.booleans())  # fmt: skip
        def long_outage(self, which: int, mode: Mode, days: float, recovers: bool) -> None:
            """A receiver stays down for days while the relay keeps working through its retry schedule."""
            self._begin("long outage")
            self.outages += 1
            self.w.receivers[which].set_mode(mode)
            self.w.counts[f"faults: receiver {mode} for days"] += 1
            end = self.w.clock() + timedelta(days=days)
            while True:
                wake = self.relay_until_idle()
                if wake is None or wake > end:
                    break
                # The relay polls at most hourly here: retries due within the hour bunch up (the exact
                # schedule is test_relay's business), the multi-day tail keeps its shape, and a run stays cheap.
                self.w.clock.now = max(wake, self.w.clock() + OUTAGE_POLL)
                self.w.counts["outage polls"] += 1
            self.w.clock.now = max(self.w.clock(), end)
            if recovers:
                self.w.receivers[which].set_mode("up")

        @rule(seconds=st.sampled_from(ADVANCE_S))
        def time_passes(self, seconds: float) -> None:
            self._begin("time passes")
            self.w.clock.advance(seconds)

        @rule()
        def operator_requeues_failed(self) -> None:
            self._begin("operator requeue")
            self._requeue_failed()

        @rule()
        def receivers_recover(self) -> None:
            """Liveness mid-run: with receivers up and time moving, everything not failed arrives."""
            self._begin("recover and drain")
            self.drain()

        def _requeue_failed(self) -> int:
            failed = [d for d in all_deliveries(self.w.db) if d.status == "failed"]
            for d in failed:
                with self.w.db.writing() as session:
                    crud.retry_delivery(session, delivery_id=d.id, now=self.w.clock())
                self.first_failure.pop(d.id, None)  # a fresh window
            self.w.counts["requeued after failing"] += len(failed)
            return len(failed)

        def drain(self) -> None:
            for receiver in self.w.receivers:
                receiver.set_mode("up")
            failed_before = {d.id for d in all_deliveries(self.w.db) if d.status == "failed"}
            for _ in range(100):
                wake = self.relay_until_idle()
                if wake is None:
                    break
                self.w.clock.now = wake
            else:
                raise AssertionError("deliveries still pending after 100 rounds with every receiver up")
            rows = all_deliveries(self.w.db)
            assert {d.id for d in rows if d.status == "failed"} == failed_before, "failed while receivers were up"
            for d in rows:
                if d.status == "delivered":
                    assert d.message_id in self.endpoints[d.endpoint_id].processed

        # ---- invariants ----

        @invariant()
        def check(self) -> None:
            self.nothing_lost_nothing_changed()
            self.one_payload_per_id_and_valid_signatures()
            self.healthy = True

        def nothing_lost_nothing_changed(self) -> None:
            w = self.w
            messages, rows = snapshot(w.db)
            assert messages == self.expected, "outbox messages appeared, vanished or changed payload"
            now = w.clock()
            per_message: Counter[str] = Counter()
            for d in rows:
                per_message[d.message_id] += 1
                if d.status == "delivered":
                    assert d.message_id in self.endpoints[d.endpoint_id].processed
                elif d.status == "failed":
                    # Dead only after retrying for the contracted horizon, counted from the first failure.
                    first = self.first_failure.get(d.id)
                    assert first is not None and d.last_attempt_at is not None
                    assert (d.last_attempt_at - first).total_seconds() >= THREE_DAYS_S, (first, d.last_attempt_at)
                else:
                    assert d.status == "pending", d.status
                    assert d.lease_until is None or d.lease_until <= now + timedelta(seconds=w.settings.relay_lease_s)
                    longest = max(w.settings.retry_cap_s, w.settings.retry_after_cap_s)
                    since = max(d.last_attempt_at or d.created_at, d.retry_from)  # retry_from: an operator's requeue
                    assert d.next_attempt_at <= since + timedelta(seconds=longest)
            assert set(per_message) == set(self.expected)
            assert set(per_message.values()) <= {len(self.endpoints)}

        def one_payload_per_id_and_valid_signatures(self) -> None:
            for receiver in self.w.receivers:
                with receiver.lock:
                    assert receiver.bad_signatures == 0
                    for msg_id, body, valid in receiver.wire:
                        assert valid
                        assert body == self.expected[msg_id].encode(), f"{msg_id} sent with another payload"
                    for msg_id, body in receiver.processed.items():
                        assert body == self.expected[msg_id].encode()

        def teardown(self) -> None:
            try:
                if self.healthy:
                    # The end of every run: receivers up for good, time moves on, the operator requeues what
                    # died; then every message has reached every receiver, once by webhook-id.
                    self.drain()
                    if self._requeue_failed():
                        self.drain()
                    for receiver in self.w.receivers:
                        assert set(receiver.processed) == set(self.expected)
                    assert all(d.status == "delivered" for d in all_deliveries(self.w.db))
                    for receiver in self.w.receivers:
                        self.w.counts["delivered"] += len(receiver.processed)
                        self.w.counts["duplicates dropped"] += receiver.duplicates
                        self.w.counts["requests"] += len(receiver.wire)
            finally:
                self.relay.close()
                self.client.close()

    return OutboxMachine


def report(world: World, backend: str, seconds: float) -> None:
    c = world.counts
    faults = {k.removeprefix("faults: "): v for k, v in sorted(c.items()) if k.startswith("faults: ")}
    report_count(
        f"outbox state machine ({backend}): {c['examples']} runs, {c['steps']} steps, {c['messages']} messages; "
        f"faults injected: {sum(faults.values())} ({', '.join(f'{k} {v}' for k, v in faults.items())}); "
        f"{c['delivered']} delivered (message x receiver), {c['duplicates dropped']} duplicates dropped, "
        f"{c['requests']} requests, {c['requeued after failing']} requeued after 3 days; {seconds:.0f} s"
    )


def test_fuzz_outbox_state_machine(world: World) -> None:
    backend = world.db.dialect
    started = time.monotonic()
    run_state_machine_as_test(outbox_machine(world), settings=machine_settings(backend))
    report(world, backend, time.monotonic() - started)
    assert world.counts["delivered"] > 0


# ---- the crash windows, one by one ------------------------------------------------------------------------


def dispatched(world: World) -> tuple[str, dict[str, Any]]:
    record = alert(grid={"code": "g-1", "team": TEAM})
    ingest(world, record)
    for action in ("file", "dispatch"):
        act(world, str(record["id"]), action)
    return str(record["id"]), record


def crash_on_record(relay: Relay) -> None:
    def record(lease: Any, outcome: Any) -> None:
        assert outcome.kind == "delivered"  # the receiver's 2xx is in hand...
        raise Crash("relay died before marking the delivery sent")  # ... and never written down

    setattr(relay, "record", record)  # noqa: B010 - shadowing the bound method is the point


@pytest.mark.parametrize(
    ("fault", "wait_s", "attempts_then"),
    [
        # The relay dies after the receiver answered 2xx, before it marked the row sent: the lease runs out
        # and the next relay sends again. The dead relay recorded nothing, so the re-send is attempt 1.
        ("relay dies after the 2xx", 60.0 + 1, 1),
        # The receiver processed the message but its answer never arrived: a failure to the relay, which
        # retries after its backoff (at most retry_base_s = 5 s for the first retry).
        ("the 2xx is lost on the wire", 5.0, 2),
    ],
)
def test_sent_but_not_marked_is_resent_with_the_same_id_and_payload(
    world: World, fault: str, wait_s: float, attempts_then: int
) -> None:
    world.receivers = world.receivers[:1]
    add_endpoints(world)
    receiver = world.receivers[0]
    dispatched(world)
    (msg_id, payload), *rest = outbox(world.db).items()
    assert rest == []
    first, first_client = new_relay(world, "first")
    try:
        if fault == "relay dies after the 2xx":
            crash_on_record(first)
            with pytest.raises(Crash):
                first.run_once()
        else:
            receiver.set_mode("ack_lost")
            assert first.run_once() == 1
            receiver.set_mode("up")
    finally:
        first.close()
        first_client.close()
    assert list(receiver.processed) == [msg_id]  # the receiver has acted on it once already
    (before,) = all_deliveries(world.db)
    assert before.status == "pending"
    second, second_client = new_relay(world, "second")  # a restart: a new relay on the same database
    try:
        assert second.run_once() == 0  # not yet: the dead relay's lease, or the backoff, still holds
        world.clock.advance(wait_s)
        assert second.run_once() == 1
        assert second.run_once() == 0
    finally:
        second.close()
        second_client.close()
    (after,) = all_deliveries(world.db)
    assert after.status == "delivered" and after.attempts == attempts_then
    with receiver.lock:
        assert [(i, body) for i, body, _ in receiver.wire] == [(msg_id, payload.encode())] * 2  # identical bytes
        assert all(valid for _, _, valid in receiver.wire)  # each copy signed with its own send time
        assert receiver.duplicates == 1 and list(receiver.processed) == [msg_id]  # dropped by webhook-id
    report_count(f"outbox crash window ({world.db.dialect}, {fault}): 1 message sent twice, 1 duplicate dropped")


@pytest.mark.parametrize(
    ("event", "point", "tables"),
    [
        # A new case: its row, its change log and the stored record die together.
        ("violation.opened", "_log", {"cases": 0, "case_changes": 0, "alert_records": 0}),
        # The camera's 'gone' report on a dispatched case dies right after the outbox insert: neither the case
        # change nor the outbox message nor its delivery survive.
        ("violation.closed", "_enqueue", {"case_changes": 3, "alert_records": 1, "outbox_messages": 1,
                                          "webhook_deliveries": 2}),
    ],
)  # fmt: skip
def test_ingest_crash_before_commit_leaves_neither_case_change_nor_outbox_row(
    world: World, monkeypatch: pytest.MonkeyPatch, event: str, point: str, tables: dict[str, int]
) -> None:
    add_endpoints(world)
    if event == "violation.opened":
        record = alert(grid={"code": "g-1", "team": TEAM})
    else:
        case_id, opened = dispatched(world)  # case.dispatched: one message, one delivery per endpoint
        record = closed(opened)
    real = getattr(crud_ingest, point)
    reached: list[int] = []

    def crash_after(session: Any, *args: Any, **kwargs: Any) -> None:
        real(session, *args, **kwargs)
        session.flush()
        # The rows are in the transaction when the process dies.
        reached.append(session.scalar(select(func.count()).select_from(OutboxMessage)))
        raise Crash(point)

    with monkeypatch.context() as patch:
        patch.setattr(crud_ingest, point, crash_after)
        with pytest.raises(Crash):
            ingest(world, record)
    assert reached, f"{point} was never called"
    if point == "_enqueue":
        assert reached == [2]  # the new outbox row existed inside the transaction
    assert row_counts(world.db, tables) == tables
    if event == "violation.closed":
        with world.db.reading() as session:
            case = session.get(Case, case_id)
            assert case is not None and case.cleared_at is None and case.version == 3
    # The camera re-sends (it got no answer): the record is new to the store, and exactly one message follows.
    outcome = ingest(world, record)
    assert outcome.created
    after = row_counts(world.db, tables)
    if event == "violation.opened":
        assert after == {"cases": 1, "case_changes": 1, "alert_records": 1}
    else:
        assert after == {"case_changes": 4, "alert_records": 2, "outbox_messages": 2, "webhook_deliveries": 4}
        relay, client = new_relay(world, "after-crash")
        try:
            while relay.run_once():
                pass
        finally:
            relay.close()
            client.close()
        for receiver in world.receivers:
            assert set(receiver.processed) == set(outbox(world.db)) and receiver.duplicates == 0


def row_counts(db: Database, tables: dict[str, int]) -> dict[str, int]:
    with db.reading() as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(Base.metadata.tables[name])) or 0)
            for name in tables
        }
