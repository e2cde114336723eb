"""Throttling of failed authentication, per client address: a sliding window of failure times.

After ``max_failures`` failed logins or invalid tokens within ``window_s`` seconds, the client's next
authentication attempts are answered 429 with ``Retry-After`` until the oldest failure that counts leaves
the window. While blocked the client's tokens are not even looked up, so the limit really bounds how
fast one address can guess; other clients are not affected, and successes are never counted.

Hand-written rather than a library: ``limits`` reads ``time.time()`` itself, so it cannot follow the
service clock that tests move (they would need sleeps); ``pyrate-limiter`` takes a clock, but its per-key
factory runs a background leak thread, its API changed with every major version, and what is needed
here is one sliding window per address.

The state lives in this process's memory: a restart forgets it (harmless: it only ever delays), and
each replica counts on its own, so N replicas allow N times the failures. The address is the TCP peer as
uvicorn reports it: behind a reverse proxy configure forwarded headers, or every client shares one window.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import datetime, timedelta

from service.core.clock import Clock

MAX_CLIENTS = 100_000
"""Addresses tracked at once; past this the oldest are forgotten (bounded memory under a spray attack)."""


class AuthThrottle:
    def __init__(self, *, max_failures: int, window_s: float, clock: Clock, max_clients: int = MAX_CLIENTS) -> None:
        """``max_failures`` 0 turns throttling off."""
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_s)
        self.clock = clock
        self.max_clients = max_clients
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: datetime) -> deque[datetime] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def retry_after_s(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again, or None when it is not blocked."""
        if self.max_failures <= 0:
            return None
        now = self.clock()
        with self._lock:
            failures = self._recent(client, now)
            if failures is None or len(failures) < self.max_failures:
                return None
            # Allowed again once fewer than max_failures remain in the window.
            free_at = failures[-self.max_failures] + self.window
        return max(1, math.ceil((free_at - now).total_seconds()))

    def record_failure(self, client: str) -> None:
        if self.max_failures <= 0:
            return
        now = self.clock()
        with self._lock:
            failures = self._recent(client, now)
            if failures is None:
                while len(self._failures) >= self.max_clients:
                    del self._failures[next(iter(self._failures))]  # the longest-known address
                failures = self._failures[client] = deque(maxlen=self.max_failures)
            failures.append(now)

    def tracked_clients(self) -> int:
        with self._lock:
            return len(self._failures)
