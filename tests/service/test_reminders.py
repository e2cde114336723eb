"""Remind first (DESIGN §3.7) case by case, on one in-process server whose clock the test moves and whose
reminder job runs when the test says (``ReminderJob.run_once``); SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from service.models import OutboxMessage
from service.reminders import ReminderJob
from tests.service.helpers import FakeClock, LiveServer, alert, closed, ingest, settings_for, start_server

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
REMIND_S = 600


@pytest.fixture
def world(database_url: str) -> Iterator[tuple[LiveServer, FakeClock, ReminderJob]]:
    clock = FakeClock(START)
    settings = settings_for(database_url, reminders_enabled=False)
    server = start_server(settings, clock=clock)
    yield server, clock, ReminderJob(server.db, settings, clock=clock)
    server.stop()
    server.db.dispose()


_places = iter(range(1, 10**6))


def live(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    """A live record alerted now, at a place of its own, reminding first."""
    where = {"type": "Point", "coordinates": [118.0 + next(_places) * 0.001, 32.06]}
    fields: dict[str, Any] = {
        "alerted_at": clock.now.isoformat(),
        "started_at": (clock.now - timedelta(seconds=180)).isoformat(),
        "video_offset_s": None,
        "location": where,
        "remind_first_s": REMIND_S,
    }
    return alert(**{**fields, **overrides})


def gone(record: dict[str, Any], at: datetime) -> dict[str, Any]:
    return closed(record, video_offset_s=None, ended_at=at.isoformat())


def case_of(server: LiveServer, record: dict[str, Any]) -> dict[str, Any]:
    with server.client("operator") as operator:
        return dict(operator.get(f"/api/v1/cases/{record['id']}").json())


def reminders(server: LiveServer) -> list[str]:
    with server.db.reading() as session:
        return [m.case_id for m in session.scalars(select(OutboxMessage).where(OutboxMessage.type == "case.reminder"))]


# (seconds after the reminder: job runs at, camera's ended_at, filed before the close?) → status, mark
CLOSES = [
    pytest.param(None, REMIND_S - 1, False, "self_rectified", None, id="gone-before-deadline"),
    pytest.param(None, REMIND_S, False, "self_rectified", None, id="gone-at-deadline"),
    pytest.param(None, REMIND_S + 1, False, "reported", "reminder_ignored", id="gone-after-deadline-job-not-yet-run"),
    pytest.param(REMIND_S, REMIND_S - 5, False, "self_rectified", None, id="closing-record-late-but-gone-in-time"),
    pytest.param(REMIND_S, REMIND_S + 5, False, "reported", "reminder_ignored", id="escalated-gone-late"),
    pytest.param(REMIND_S, REMIND_S - 5, True, "filed", "reminder_ignored", id="escalated-filed-then-record"),
]


@pytest.mark.parametrize(("job_at", "ended_after", "filed", "status", "mark"), CLOSES)
def test_closing_records_of_a_reminded_case(
    world: tuple[LiveServer, FakeClock, ReminderJob],
    job_at: int | None,
    ended_after: int,
    filed: bool,
    status: str,
    mark: str | None,
) -> None:
    server, clock, job = world
    record = live(clock)
    with server.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
    opened = case_of(server, record)
    assert opened["status"] == "reminded"
    assert datetime.fromisoformat(opened["remind_deadline"]) == START + timedelta(seconds=REMIND_S)
    assert opened["overdue"] is False and datetime.fromisoformat(opened["due_at"]) > START + timedelta(seconds=REMIND_S)
    if job_at is not None:
        clock.advance(job_at)
        assert job.run_once() == 1
        assert job.run_once() == 0  # once
    if filed:
        with server.client("operator") as operator:
            assert operator.post(f"/api/v1/cases/{record['id']}/actions", json={"action": "file"}).status_code == 200
    clock.now = max(clock.now, START + timedelta(seconds=ended_after + 30))  # the camera closes after max_gap_s
    with server.client("camera") as camera:
        assert ingest(camera, gone(record, START + timedelta(seconds=ended_after))).status_code == 201
    case = case_of(server, record)
    assert (case["status"], case["mark"]) == (status, mark)
    assert case["cleared_at"] is not None and {e["stage"] for e in case["evidence"]} == {"opened", "closed"}
    assert (case["closed_at"] is not None) == (status == "self_rectified")
    assert reminders(server) == [record["id"]]


def test_the_job_escalates_only_what_ran_out(world: tuple[LiveServer, FakeClock, ReminderJob]) -> None:
    server, clock, job = world
    early, late = live(clock, remind_first_s=60), live(clock, remind_first_s=120)
    with server.client("camera") as camera:
        for record in (early, late):
            assert ingest(camera, record).status_code == 201
    clock.advance(59.999)
    assert job.run_once() == 0
    clock.advance(0.001)
    assert job.run_once() == 1
    assert (case_of(server, early)["status"], case_of(server, late)["status"]) == ("reported", "reminded")
    [escalated] = [h for h in case_of(server, early)["history"] if h["kind"] == "escalated"]
    assert (escalated["from_status"], escalated["to_status"], escalated["actor_role"]) == (
        "reminded",
        "reported",
        "system",
    )


@pytest.mark.parametrize(
    ("second", "days_later", "expected"),
    [
        pytest.param({"responsible": {"unit": "shop-1", "name": "一号店"}}, 29, "repeat", id="same-unit-29-days"),
        pytest.param({"responsible": {"unit": "shop-1", "name": "一号店"}}, 31, "reminded", id="same-unit-31-days"),
        pytest.param({"responsible": {"unit": "shop-2", "name": "二号店"}}, 1, "reminded", id="other-unit-elsewhere"),
        pytest.param({"same_place": True}, 1, "repeat", id="same-place-no-unit"),
        pytest.param(
            {"same_place": True, "category": "hanging_laundry", "object_class": "laundry"},
            1,
            "reminded",
            id="same-place-other-category",
        ),
    ],
)
def test_a_place_reminded_recently_gets_no_second_reminder(
    world: tuple[LiveServer, FakeClock, ReminderJob], second: dict[str, Any], days_later: int, expected: str
) -> None:
    server, clock, _ = world
    first = live(clock, responsible={"unit": "shop-1", "name": "一号店"})
    with server.client("camera") as camera:
        assert ingest(camera, first).status_code == 201
    clock.advance(days_later * 86400)
    fields = dict(second)
    if fields.pop("same_place", False):
        fields["location"] = first["location"]
    record = live(clock, **fields)
    with server.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
    case = case_of(server, record)
    if expected == "repeat":
        assert (case["status"], case["mark"], case["reminded_at"]) == ("reported", "repeat", None)
        assert "no reminder" in case["history"][0]["note"]
        assert reminders(server) == [first["id"]]
    else:
        assert (case["status"], case["mark"]) == ("reminded", None)
        assert reminders(server) == [first["id"], record["id"]]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param({"video_offset_s": {"start": 12.0, "alert": 192.0, "end": None}}, id="audit-record"),
        pytest.param({"grid": None}, id="no-grid-team-to-remind"),
        pytest.param({"remind_first_s": None}, id="zone-without-remind-first"),
    ],
)
def test_no_reminder(world: tuple[LiveServer, FakeClock, ReminderJob], record: dict[str, Any]) -> None:
    server, clock, _ = world
    sent = live(clock, **record)
    if sent["remind_first_s"] is None:
        del sent["remind_first_s"]
    with server.client("camera") as camera:
        assert ingest(camera, sent).status_code == 201
    case = case_of(server, sent)
    assert (case["status"], case["mark"], case["reminded_at"]) == ("reported", None, None)
    assert reminders(server) == []


def test_reminded_cases_take_no_operator_action(world: tuple[LiveServer, FakeClock, ReminderJob]) -> None:
    server, clock, _ = world
    record = live(clock)
    with server.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
    with server.client("operator") as operator:
        for action in ("file", "reject", "dispatch"):
            answer = operator.post(f"/api/v1/cases/{record['id']}/actions", json={"action": action, "note": "x"})
            assert answer.status_code == 409, action
