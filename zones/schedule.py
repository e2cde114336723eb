"""Allowed windows (疏导点, night markets): when a zone's categories are legal (DESIGN §3.2, §3.4a).

A window names the days it *starts* on and local wall-clock times ``from``/``to``. When ``to`` is
not after ``from`` the window crosses midnight and ends on the next day (``fri 22:00 → 02:00``
covers Friday night into Saturday morning). Local times become instants through ``zoneinfo``, so
windows stay right across DST changes; a wall time that does not exist (spring-forward gap) is read
with the offset in force before the change, as ``datetime`` does with ``fold=0``.

Windows are half-open ``[from, to)`` and windows that touch or overlap are merged, so a chain like
``mon 18:00 → 24:00`` + ``tue 00:00 → 02:00`` acts as one window starting Monday 18:00.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final, Literal
from zoneinfo import ZoneInfo

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: Final[tuple[Day, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names in ``date.weekday()`` order."""

_HHMM: Final = re.compile(r"^(?P<h>[01]\d|2[0-4]):(?P<m>[0-5]\d)$")
MINUTES_PER_DAY: Final = 24 * 60


def parse_hhmm(text: str, *, allow_24: bool = False) -> int:
    """Minutes after midnight of an ``HH:MM`` string; ``24:00`` only where ``allow_24`` (a window's end)."""
    match = _HHMM.match(text)
    if match is None:
        raise ValueError(f'{text!r} is not a time of day in HH:MM form (e.g. "18:00")')
    minutes = int(match["h"]) * 60 + int(match["m"])
    if minutes > MINUTES_PER_DAY or (minutes == MINUTES_PER_DAY and not allow_24):
        detail = "24:00 is only allowed as a window's end" if minutes == MINUTES_PER_DAY else "hour out of range"
        raise ValueError(f"{text!r} is not a time of day in HH:MM form ({detail})")
    return minutes


@dataclass(frozen=True)
class Window:
    """One allowed window: the weekdays (0 = Monday) it starts on, start and end in local minutes."""

    weekdays: frozenset[int]
    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        if not self.weekdays or not all(0 <= d <= 6 for d in self.weekdays):
            raise ValueError("a window needs at least one weekday in 0..6")
        if not 0 <= self.start_min < MINUTES_PER_DAY or not 0 <= self.end_min <= MINUTES_PER_DAY:
            raise ValueError("window times must lie within the day")
        if self.start_min == self.end_min:
            raise ValueError("a window needs from != to")

    @property
    def crosses_midnight(self) -> bool:
        return self.end_min <= self.start_min

    def interval_on(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The [start, end) UTC instants of this window when it starts on ``day``, or None."""
        if day.weekday() not in self.weekdays:
            return None
        end_day = day + timedelta(days=1) if self.crosses_midnight else day
        end_min = self.end_min
        if end_min == MINUTES_PER_DAY:  # "24:00" is midnight at the end of the day
            end_day, end_min = day + timedelta(days=1), 0
        start = _local_instant(day, self.start_min, tz)
        end = _local_instant(end_day, end_min, tz)
        return start, end


def _local_instant(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    return local.astimezone(UTC)


class Schedule:
    """The allowed windows of one zone, evaluated in the camera's timezone."""

    def __init__(self, windows: Iterable[Window], tz: ZoneInfo) -> None:
        self.windows: tuple[Window, ...] = tuple(windows)
        self.tz = tz

    def __bool__(self) -> bool:
        return bool(self.windows)

    def _active_span(self, when: datetime) -> tuple[datetime, datetime] | None:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("schedule times must be timezone-aware datetimes")
        if not self.windows:
            return None
        instant = when.astimezone(UTC)
        local_day = instant.astimezone(self.tz).date()
        # A window may start up to a day before `when` (crossing midnight) and touching windows chain
        # across days; a week back covers any chain that does not run all week.
        intervals = sorted(
            interval
            for offset in range(-7, 1)
            for window in self.windows
            if (interval := window.interval_on(local_day + timedelta(days=offset), self.tz)) is not None
        )
        merged: list[tuple[datetime, datetime]] = []
        for start, end in intervals:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        for start, end in merged:
            if start <= instant < end:
                return start, end
        return None

    def allowed_at(self, when: datetime) -> bool:
        """Whether ``when`` (aware) falls inside an allowed window."""
        return self._active_span(when) is not None

    def window_start(self, when: datetime) -> datetime | None:
        """Start instant of the allowed window containing ``when`` (local time, fixed offset), else None.

        Touching or overlapping windows count as one, so this is where the legal stretch began.
        """
        span = self._active_span(when)
        if span is None:
            return None
        local = span[0].astimezone(self.tz)
        # A fixed offset, not the zone: Python never equates a zone's ambiguous (DST fall-back)
        # wall time with any instant of another timezone (PEP 495), which would break comparisons.
        return local.replace(tzinfo=timezone(local.utcoffset() or timedelta(0)))
