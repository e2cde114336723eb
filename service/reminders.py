"""Remind first (DESIGN §3.7): the job that escalates reminders whose deadline passed.

A reminded case waits for its unit until ``remind_deadline``; the camera's ``violation.closed`` in time
makes it ``self_rectified`` (at ingest). This job moves the rest to ``reported`` marked
``reminder_ignored``, for an operator. The deadline lives in the case row, so it survives restarts; with
several replicas each escalation happens once, because it is one transaction that changes a row only
while it is still ``reminded``, and PostgreSQL hands each due row to one replica (``FOR UPDATE SKIP
LOCKED``, the relay's lease) while SQLite serialises writers. A replica killed mid-transaction rolls back
and the next round (of any replica) does it. The escalation sends no message, so nothing can be sent
twice; the reminder itself went through the outbox when the case opened.
"""

from __future__ import annotations

import logging
import threading

from service import crud
from service.core.clock import Clock, utc_now
from service.core.config import Settings
from service.core.db import Database

log = logging.getLogger("streetwatch.reminders")


class ReminderJob:
    def __init__(self, db: Database, settings: Settings, *, clock: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Escalate one batch of reminders that ran out; returns how many."""
        now = self.clock()
        with self.db.reading() as session:
            # Cheap read first: an idle job should not take SQLite's write lock every poll.
            if not crud.reminders_due(session, now=now):
                return 0
        with self.db.writing() as session:
            escalated = crud.escalate_due_reminders(session, now=now, limit=self.settings.remind_batch)
        if escalated:
            log.info("reminders ran out, cases reported: %s", ", ".join(escalated))
        return len(escalated)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() >= self.settings.remind_batch
            except Exception:  # a database hiccup must not end the job
                log.exception("reminder round failed")
                busy = False
            if not busy:
                self._stop.wait(self.settings.remind_poll_s)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="remind-first", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
