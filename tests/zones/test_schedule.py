"""Allowed windows: days, local times, midnight crossing, camera timezone, DST."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.zones.conftest import valid_config
from zones.config import AllowedWindow, CameraConfig
from zones.geometry import CameraZones
from zones.schedule import Schedule, parse_hhmm

# 2026-11-27 is a Friday.
NIGHT_MARKET = [
    {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "18:00", "to": "22:00"},
    {"days": ["fri", "sat"], "from": "22:00", "to": "02:00"},  # crosses midnight: named day is the start
]


def zones_with(windows: list[dict[str, Any]], timezone: str) -> CameraZones:
    data = valid_config()
    data["timezone"] = timezone
    data["zones"][0]["allowed"] = windows
    return CameraZones(CameraConfig.model_validate(data), 1280, 720)


@pytest.mark.parametrize(
    ("timezone", "when", "allowed", "window_start"),
    [
        # Asia/Shanghai (UTC+8): local times of the config are Shanghai times.
        ("Asia/Shanghai", "2026-11-27T19:00:00+08:00", True, "2026-11-27T18:00:00+08:00"),
        ("Asia/Shanghai", "2026-11-27T11:00:00+00:00", True, "2026-11-27T18:00:00+08:00"),  # same instant in UTC
        ("Asia/Shanghai", "2026-11-27T09:59:00+00:00", False, None),  # 17:59 Shanghai
        ("Asia/Shanghai", "2026-11-27T18:00:00+08:00", True, "2026-11-27T18:00:00+08:00"),  # from is inclusive
        ("Asia/Shanghai", "2026-11-27T23:30:00+08:00", True, "2026-11-27T18:00:00+08:00"),  # chained into 22→02
        ("Asia/Shanghai", "2026-11-28T01:59:00+08:00", True, "2026-11-27T18:00:00+08:00"),  # Sat morning, Fri window
        ("Asia/Shanghai", "2026-11-28T02:00:00+08:00", False, None),  # to is exclusive
        ("Asia/Shanghai", "2026-11-28T12:00:00+08:00", False, None),  # Saturday noon
        ("Asia/Shanghai", "2026-11-28T22:30:00+08:00", True, "2026-11-28T22:00:00+08:00"),  # Sat night window
        ("Asia/Shanghai", "2026-11-29T01:00:00+08:00", True, "2026-11-28T22:00:00+08:00"),  # into Sunday
        ("Asia/Shanghai", "2026-11-29T22:30:00+08:00", False, None),  # no Sunday window
        ("Asia/Shanghai", "2026-11-30T00:30:00+08:00", False, None),  # Sunday night does not continue
        ("Asia/Shanghai", "2026-11-26T23:00:00+08:00", False, None),  # Thursday: 18-22 only
        ("Asia/Shanghai", "2026-11-26T15:00:00+00:00", False, None),  # Thu 23:00 Shanghai, 15:00 UTC
        # The same windows in UTC: 11:00Z on Friday is before 18:00 there.
        ("UTC", "2026-11-27T11:00:00+00:00", False, None),
        ("UTC", "2026-11-27T19:00:00+08:00", False, None),
        ("UTC", "2026-11-27T18:30:00+00:00", True, "2026-11-27T18:00:00+00:00"),
        ("UTC", "2026-11-28T02:30:00+08:00", True, "2026-11-27T18:00:00+00:00"),  # Fri 18:30 UTC
    ],
)
def test_night_market(timezone: str, when: str, allowed: bool, window_start: str | None) -> None:
    zone = zones_with(NIGHT_MARKET, timezone).zone("sidewalk-north")
    instant = datetime.fromisoformat(when)
    assert zone.allowed_at(instant) is allowed
    start = zone.allowed_window_start(instant)
    if window_start is None:
        assert start is None
    else:
        assert start == datetime.fromisoformat(window_start)
        assert start is not None and start.utcoffset() is not None


@pytest.mark.parametrize(
    ("windows", "when", "allowed", "window_start"),
    [
        # Spring forward in New York, Sun 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        (
            [{"days": ["sun"], "from": "01:30", "to": "03:00"}],
            "2026-03-08T06:45:00+00:00",
            True,
            "2026-03-08T06:30:00+00:00",
        ),
        ([{"days": ["sun"], "from": "01:30", "to": "03:00"}], "2026-03-08T07:05:00+00:00", False, None),  # 03:05 EDT
        # A start inside the gap (02:30 does not exist) is read with the old offset: 07:30Z = 03:30 EDT.
        ([{"days": ["sun"], "from": "02:30", "to": "04:00"}], "2026-03-08T07:20:00+00:00", False, None),
        (
            [{"days": ["sun"], "from": "02:30", "to": "04:00"}],
            "2026-03-08T07:40:00+00:00",
            True,
            "2026-03-08T07:30:00+00:00",
        ),
        # Fall back, Sun 2026-11-01: 01:00-02:00 local happens twice; the window spans both (05:00Z-07:00Z).
        (
            [{"days": ["sun"], "from": "01:00", "to": "02:00"}],
            "2026-11-01T05:30:00+00:00",
            True,
            "2026-11-01T05:00:00+00:00",
        ),
        (
            [{"days": ["sun"], "from": "01:00", "to": "02:00"}],
            "2026-11-01T06:30:00+00:00",
            True,
            "2026-11-01T05:00:00+00:00",
        ),
        ([{"days": ["sun"], "from": "01:00", "to": "02:00"}], "2026-11-01T07:00:00+00:00", False, None),
        # Saturday night across the DST change: 22:00 EDT Sat to 03:00 EST Sun.
        (
            [{"days": ["sat"], "from": "22:00", "to": "03:00"}],
            "2026-11-01T07:59:00+00:00",
            True,
            "2026-11-01T02:00:00+00:00",
        ),
        ([{"days": ["sat"], "from": "22:00", "to": "03:00"}], "2026-11-01T08:00:00+00:00", False, None),
        # Whole days, written 00:00-24:00, chain across consecutive days.
        (
            [{"days": ["sat", "sun"], "from": "00:00", "to": "24:00"}],
            "2026-11-01T12:00:00-05:00",
            True,
            "2026-10-31T00:00:00-04:00",
        ),
        ([{"days": ["sat", "sun"], "from": "00:00", "to": "24:00"}], "2026-11-02T00:00:00-05:00", False, None),
    ],
)
def test_dst_new_york(windows: list[dict[str, Any]], when: str, allowed: bool, window_start: str | None) -> None:
    zone = zones_with(windows, "America/New_York").zone("sidewalk-north")
    instant = datetime.fromisoformat(when)
    assert zone.allowed_at(instant) is allowed
    start = zone.allowed_window_start(instant)
    assert start == (None if window_start is None else datetime.fromisoformat(window_start))


def test_no_windows_never_allowed() -> None:
    zone = zones_with([], "Asia/Shanghai").zone("sidewalk-north")
    assert not zone.allowed_at(datetime.fromisoformat("2026-11-27T19:00:00+08:00"))
    assert zone.allowed_window_start(datetime.fromisoformat("2026-11-27T19:00:00+08:00")) is None


def test_naive_datetime_is_a_programming_error() -> None:
    zone = zones_with(NIGHT_MARKET, "Asia/Shanghai").zone("sidewalk-north")
    with pytest.raises(ValueError, match="timezone-aware"):
        zone.allowed_at(datetime(2026, 11, 27, 19, 0))


@pytest.mark.parametrize(
    ("text", "allow_24", "minutes"),
    [("00:00", False, 0), ("18:05", False, 1085), ("23:59", False, 1439), ("24:00", True, 1440)],
)
def test_parse_hhmm(text: str, allow_24: bool, minutes: int) -> None:
    assert parse_hhmm(text, allow_24=allow_24) == minutes


@pytest.mark.parametrize("text", ["24:00", "24:01", "7:00", "18:60", "1800", "18:00:00", ""])
def test_parse_hhmm_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)


def test_schedule_from_windows_directly() -> None:
    windows = [AllowedWindow.model_validate(w).window() for w in NIGHT_MARKET]
    from zoneinfo import ZoneInfo

    schedule = Schedule(windows, ZoneInfo("Asia/Shanghai"))
    assert schedule.allowed_at(datetime.fromisoformat("2026-11-28T01:00:00+08:00"))
    assert not schedule.allowed_at(datetime.fromisoformat("2026-11-28T03:00:00+08:00"))
