"""When a live camera counts as offline, and when to try it again.

Both classes take an injectable monotonic clock, so the rules are tested with a fake clock:

* ``Watchdog``: a camera with no good frame for ``offline_after_s`` (20 s) is ``offline``; the first
  good frame after that makes it ``online``. Before its first frame a camera is ``starting``; it goes
  ``offline`` when no frame came ``offline_after_s`` after start (a stream that hangs on open).
* ``ReconnectPolicy``: attempts to open a stream start at least ``min_interval_s`` (10 s) apart. A
  camera that keeps failing for ``escalate_after_s`` (120 s, and at least ``escalate_after`` (5) failures)
  is dead: the policy escalates, the interval grows (60 s, doubling, at most ``max_interval_s``) and the
  caller logs an error once, so a dead camera neither hammers its server nor floods the log. A camera
  away for a minute is not dead: it is retried every 10 s and is back within seconds of its return.
  A failure that says the server is there but not ready (an RTSP/HTTP 5xx: a server that just came back
  prepares its media on the first request) is retried after ``retry_soon_s`` (2 s) and counts toward
  nothing, up to ``retry_soon_max`` (5) such retries in a row; waiting longer would let the server drop
  the media it prepared, so that every later attempt met a cold server again and the camera never came
  back (issue #26). A success resets everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Clock = Callable[[], float]
CameraStatus = Literal["starting", "online", "offline"]

OFFLINE_AFTER_S = 20.0
RECONNECT_MIN_INTERVAL_S = 10.0
RETRY_SOON_S = 2.0
RETRY_SOON_MAX = 5
ESCALATE_AFTER = 5
ESCALATE_AFTER_S = 120.0
ESCALATED_INTERVAL_S = 60.0
MAX_INTERVAL_S = 300.0


@dataclass(frozen=True)
class Transition:
    status: CameraStatus
    previous: CameraStatus
    at: float


class Watchdog:
    def __init__(self, *, offline_after_s: float = OFFLINE_AFTER_S, clock: Clock = time.monotonic) -> None:
        self.offline_after_s = offline_after_s
        self._clock = clock
        self.status: CameraStatus = "starting"
        self.started = clock()
        self.last_frame: float | None = None
        self.went_offline: float | None = None

    def frame(self, at: float | None = None) -> Transition | None:
        """A good frame arrived (at monotonic time ``at``, default now)."""
        at = self._clock() if at is None else at
        if self.last_frame is None or at > self.last_frame:
            self.last_frame = at
        return self.check()

    def check(self) -> Transition | None:
        """Re-evaluate now; returns the transition when the status changed."""
        now = self._clock()
        reference = self.last_frame if self.last_frame is not None else self.started
        fresh = self.last_frame is not None and now - self.last_frame <= self.offline_after_s
        if fresh and self.status != "online":
            return self._move("online", now)
        if not fresh and now - reference > self.offline_after_s and self.status != "offline":
            self.went_offline = now
            return self._move("offline", now)
        return None

    def silent_for(self) -> float:
        """Seconds since the last good frame (since start when there was none)."""
        reference = self.last_frame if self.last_frame is not None else self.started
        return self._clock() - reference

    def _move(self, status: CameraStatus, now: float) -> Transition:
        transition = Transition(status=status, previous=self.status, at=now)
        self.status = status
        return transition


class ReconnectPolicy:
    def __init__(
        self,
        *,
        min_interval_s: float = RECONNECT_MIN_INTERVAL_S,
        escalate_after: int = ESCALATE_AFTER,
        escalate_after_s: float = ESCALATE_AFTER_S,
        escalated_interval_s: float = ESCALATED_INTERVAL_S,
        max_interval_s: float = MAX_INTERVAL_S,
        retry_soon_s: float = RETRY_SOON_S,
        retry_soon_max: int = RETRY_SOON_MAX,
        clock: Clock = time.monotonic,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.escalate_after = escalate_after
        self.escalate_after_s = escalate_after_s
        self.escalated_interval_s = escalated_interval_s
        self.max_interval_s = max_interval_s
        self.retry_soon_s = retry_soon_s
        self.retry_soon_max = retry_soon_max
        self._clock = clock
        self.failures = 0
        """Failures since the last success (quick retries not counted)."""
        self.failing_since: float | None = None
        self.last_attempt: float | None = None
        self.escalation = 0
        """0: normal; n >= 1: escalated n times in a row (interval 60 s x 2^(n-1))."""
        self.total_failures = 0
        self._soon = 0
        """Quick retries in a row (a server that answers 5xx)."""

    @property
    def interval_s(self) -> float:
        if self._soon:
            return self.retry_soon_s
        if self.escalation == 0:
            return self.min_interval_s
        return min(self.max_interval_s, self.escalated_interval_s * 2 ** (self.escalation - 1))

    def delay(self) -> float:
        """Seconds to wait before the next attempt may start (0: now)."""
        if self.last_attempt is None:
            return 0.0
        return max(0.0, self.last_attempt + self.interval_s - self._clock())

    def attempt(self) -> None:
        """An attempt to open the stream starts now."""
        self.last_attempt = self._clock()

    def failure(self, *, retry_soon: bool = False) -> bool:
        """The attempt (or the stream it opened) failed; ``retry_soon``: the server answered but was not
        ready (5xx). Returns True when this failure escalates."""
        now = self._clock()
        self.total_failures += 1
        if retry_soon and self._soon < self.retry_soon_max:
            self._soon += 1
            return False
        self._soon = 0
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = now
        if self.escalation:
            # Already escalated: every further failure stretches the interval (up to the cap).
            self.escalation += 1
            return False
        if self.failures >= self.escalate_after and now - self.failing_since >= self.escalate_after_s:
            self.escalation = 1
            return True
        return False

    def success(self) -> None:
        """A good frame came through: back to the normal rules."""
        self.failures = 0
        self.failing_since = None
        self.escalation = 0
        self._soon = 0
