"""A durable, ordered outbox for live mode: nothing is sent that was not first written to disk.

Every alert record and camera status is stored in a SQLite database (WAL, ``synchronous=FULL``)
before any attempt to send it, and deleted only after the service answered 2xx. A sender thread
delivers the oldest entry first and does not move on until it is delivered (or refused for good),
so the service sees events in the order they happened, also after an outage or a restart of
``streetwatch run``. Delivery is at-least-once; the alert id plus event is the idempotency key on
the service, and also here: the same key is never queued twice.

The same database keeps each camera's incident-engine state. Records and the state that produced
them are written in one transaction, so after a crash either both exist or neither: an incident
that was reported is never reported again as new, and one that fired is never lost.

Camera statuses are coalesced: a newer status of a camera replaces its older undelivered one
(the service only keeps the latest), which also keeps the spool small during a long outage.
Entries the service refuses for good (4xx other than auth) move to a ``dead`` table and are
logged; they never block the ones behind them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from detector.live.push import AUTH_STATUSES, Delivery, Outcome, ServiceClient

log = logging.getLogger("streetwatch.spool")

Kind = Literal["alert", "status", "evidence"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_unique_key ON outbox(key) WHERE kind IN ('alert', 'evidence');
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    buried REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS camera_state (
    camera_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    saved REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Outgoing:
    """Something to deliver: ``path`` on the service, a JSON ``body``, an idempotency ``key``.

    ``evidence`` entries are uploads (PUT): their body is ``{"file": …, "content_type": …}`` and the
    file is read when it is sent.
    """

    kind: Kind
    key: str
    path: str
    body: str


@dataclass(frozen=True)
class SpoolEntry:
    seq: int
    kind: Kind
    key: str
    path: str
    body: str
    attempts: int


class Spool:
    """The SQLite file behind the outbox and the camera states. Thread-safe (one connection, a lock)."""

    def __init__(self, path: Path, *, wall_time: Callable[[], float] = time.time) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wall_time = wall_time
        self._lock = threading.Lock()
        # Autocommit mode; transactions are explicit (BEGIN IMMEDIATE) where several rows go together.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed record survives a power cut, not only a crash of this process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # ------------------------------------------------------------------ writing

    def put(self, items: Iterable[Outgoing], *, states: Mapping[str, str] | None = None) -> int:
        """Store ``items`` (in order) and camera ``states`` in one transaction; returns rows added.

        An alert whose key is already queued is not queued again; a status replaces the undelivered
        status of the same key.
        """
        now = self._wall_time()
        added = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    if item.kind == "status":
                        self._db.execute("DELETE FROM outbox WHERE kind = 'status' AND key = ?", (item.key,))
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO outbox (kind, key, path, body, created) VALUES (?, ?, ?, ?, ?)",
                        (item.kind, item.key, item.path, item.body, now),
                    )
                    added += cursor.rowcount
                for camera_id, state in (states or {}).items():
                    self._db.execute(
                        "INSERT INTO camera_state (camera_id, state, saved) VALUES (?, ?, ?) "
                        "ON CONFLICT(camera_id) DO UPDATE SET state = excluded.state, saved = excluded.saved",
                        (camera_id, state, now),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def save_states(self, states: Mapping[str, str]) -> None:
        self.put((), states=states)

    def load_state(self, camera_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM camera_state WHERE camera_id = ?", (camera_id,)).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ reading and delivery

    def head(self) -> SpoolEntry | None:
        """The oldest undelivered entry."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, kind, key, path, body, attempts FROM outbox ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else SpoolEntry(*row)

    def entries(self) -> list[SpoolEntry]:
        with self._lock:
            rows = self._db.execute("SELECT seq, kind, key, path, body, attempts FROM outbox ORDER BY seq").fetchall()
        return [SpoolEntry(*row) for row in rows]

    def delivered(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def failed(self, seq: int, problem: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?", (problem[:500], seq)
            )

    def bury(self, seq: int, reason: str) -> None:
        """Move an entry the service refuses for good to ``dead`` (kept for an operator, never resent)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO dead (seq, kind, key, path, body, created, buried, reason) "
                    "SELECT seq, kind, key, path, body, created, ?, ? FROM outbox WHERE seq = ?",
                    (self._wall_time(), reason[:500], seq),
                )
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def dead(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SpoolSender:
    """Delivers the spool's entries in order in a background thread.

    The head entry blocks the ones behind it until it is delivered: that is what keeps the order.
    Failures back off exponentially from ``min_backoff_s`` to ``max_backoff_s`` (or the service's
    ``Retry-After``); auth failures (401/403) are retried at the slow end and logged as errors,
    since only an operator can fix them.
    """

    def __init__(
        self,
        spool: Spool,
        client: ServiceClient,
        *,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 5.0,
        on_delivered: Callable[[SpoolEntry], None] | None = None,
    ) -> None:
        self.spool = spool
        self.client = client
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_delivered = on_delivered
        self.delivered = 0
        self.buried = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._retry_now = threading.Event()
        self.failing = False
        self.failures = 0
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """New entries were stored: send now instead of after the idle poll."""
        self._wake.set()

    def flush(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (True), or ``timeout_s`` passed, or the service stayed
        unreachable (one more failed attempt if it already was, else two): False."""
        deadline = time.monotonic() + timeout_s
        failures_before = self.failures
        was_failing = self.failing
        self.notify()
        self._retry_now.set()
        while self.spool.pending():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._thread.is_alive():
                return False
            if self.failures >= failures_before + (1 if was_failing else 2):
                return False
            self._idle.wait(min(remaining, 0.1))
        return True

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._deliver_all()
            except Exception:  # a broken disk or database must not silently end delivery
                log.exception("spool.sender_error (retrying in %g s)", self.max_backoff_s)
                self._stop.wait(self.max_backoff_s)
        self._idle.set()

    def _deliver_all(self) -> None:
        backoff = self.min_backoff_s
        was_failing = False
        while not self._stop.is_set():
            entry = self.spool.head()
            if entry is None:
                self._idle.set()
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._idle.clear()
            delivery = self._deliver(entry)
            if delivery.outcome is Outcome.DELIVERED:
                self.spool.delivered(entry.seq)
                self.delivered += 1
                self.failing = False
                log.info("spool.delivered kind=%s key=%s status=%s", entry.kind, entry.key, delivery.status)
                if was_failing:
                    log.info("service.reachable pending=%d", self.spool.pending())
                    was_failing = False
                if self.on_delivered is not None:
                    self.on_delivered(entry)
                backoff = self.min_backoff_s
                continue
            if delivery.outcome is Outcome.REJECTED and delivery.status not in AUTH_STATUSES:
                self.spool.bury(entry.seq, delivery.problem)
                self.buried += 1
                level = logging.WARNING if delivery.status == 409 else logging.ERROR
                log.log(level, "spool.rejected kind=%s key=%s problem=%r", entry.kind, entry.key, delivery.problem)
                continue
            self.spool.failed(entry.seq, delivery.problem)
            self.last_error = delivery.problem
            self.failures += 1
            self.failing = True
            if delivery.status in AUTH_STATUSES:
                backoff = self.max_backoff_s
                log.error("service.auth_failed status=%s problem=%r (check --token)", delivery.status, delivery.problem)
            elif not was_failing:
                log.warning("service.unreachable pending=%d problem=%r", self.spool.pending(), delivery.problem)
            was_failing = True
            wait = delivery.retry_after_s if delivery.retry_after_s is not None else backoff
            # Wait out the backoff, unless stopping or a flush wants one more try now.
            deadline = time.monotonic() + min(wait, self.max_backoff_s * 6)
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self._retry_now.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
                    self._retry_now.clear()
                    break
            backoff = min(self.max_backoff_s, backoff * 2)

    def _deliver(self, entry: SpoolEntry) -> Delivery:
        if entry.kind != "evidence":
            return self.client.post_json(entry.path, entry.body)
        try:
            spec = json.loads(entry.body)
            data = Path(spec["file"]).read_bytes()
        except (OSError, ValueError, KeyError, TypeError) as error:
            return Delivery(Outcome.REJECTED, None, f"evidence file unreadable: {error}")
        return self.client.put_bytes(entry.path, data, str(spec.get("content_type", "application/octet-stream")))
