"""The access log's retention job: inside the serve process, purge rows older than
``STREETWATCH_ACCESS_LOG_DAYS`` at start and every ``access_log_purge_every_s`` after. Replicas may all
run it: a purge is one idempotent DELETE."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from service import crud
from service.core.clock import Clock
from service.core.db import Database

log = logging.getLogger("streetwatch.retention")


class AccessLogRetention:
    def __init__(self, db: Database, *, days: int, every_s: float, clock: Clock) -> None:
        self.db = db
        self.keep = timedelta(days=days)
        self.every_s = every_s
        self.clock = clock
        self.purged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-log-retention", daemon=True)

    def purge_once(self) -> int:
        with self.db.writing() as session:
            count = crud.purge_access_log(session, before=self.clock() - self.keep)
        self.purged += count
        if count:
            log.info("access log: purged %d row(s) older than %d days", count, self.keep.days)
        return count

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.purge_once()
            except Exception:  # a database hiccup must not end the job; the next round tries again
                log.exception("access log purge failed")
            self._stop.wait(self.every_s)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
