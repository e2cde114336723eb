"""Remind first (DESIGN §3.7): a live violation in a zone with ``remind_first_s`` reminds its unit before
any officer is involved.

- A new case from a live ``violation.opened`` with ``remind_first_s`` becomes ``reminded`` and a
  ``case.reminder`` message goes through the outbox to the grid team's endpoints that subscribe to it;
  ``remind_deadline`` = the reminder's time + ``remind_first_s``.
- Unless the place had a reminder within STREETWATCH_REMIND_REPEAT_DAYS (the same unit, or the same
  place by the repeat rule: same category within ``repeat_radius_m``): then ``reported`` at once, marked
  ``repeat``.
- ``violation.closed`` with ``ended_at`` ≤ the deadline → ``self_rectified`` (closed, no officer); also
  when it arrives after the job escalated the case but before anyone acted on it, because the camera
  closes an incident only ``max_gap_s`` after it last saw the object.
- The deadline passed and still open → ``reported`` marked ``reminder_ignored`` (service/reminders.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Final

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.crud.cases import SystemActor, _log, _touch, write_message
from service.crud.common import canonical_json
from service.crud.places import nearest_earlier
from service.models import Case
from zones.alert import AlertRecord
from zones.categories import CATEGORY_ZH

REMINDER: Final = "case.reminder"
REMINDER_JOB: Final = SystemActor(name="remind-first deadline")
SNAPSHOT_KINDS: Final = ("snapshot", "snapshot_clean")


def _lock_unit(session: Session, unit: str) -> None:
    # Two records of one unit at once must not both find "no reminder yet" (SQLite serialises writers).
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"remind:{unit}"})


def _earlier_reminder(session: Session, case: Case, *, now: datetime, settings: Settings) -> Case | None:
    """A case of the same unit, or of the same place, reminded within the repeat window."""
    since = now - timedelta(days=settings.remind_repeat_days)
    reminded = [Case.reminded_at.is_not(None), Case.reminded_at >= since, Case.id != case.id]
    if case.responsible_unit:
        same_unit = session.scalars(
            select(Case)
            .where(*reminded, Case.responsible_unit == case.responsible_unit)
            .order_by(Case.reminded_at.desc(), Case.id)
            .limit(1)
        ).first()
        if same_unit is not None:
            return same_unit
    return nearest_earlier(
        session, case, radius_m=settings.repeat_radius_m, conditions=reminded, newest_first=Case.reminded_at.desc()
    )


def begin_reminder(session: Session, case: Case, record: AlertRecord, *, now: datetime, settings: Settings) -> str:
    """Decide a new case's start: ``reminded`` or ``reported`` marked ``repeat`` (a note for its history),
    or '' when remind-first does not apply (no remind_first_s, an audit record, a record that closes)."""
    # A camera that was not sound when the incident opened gets nothing automatic: an operator judges (#26).
    if (
        record.remind_first_s is None
        or record.video_offset_s is not None
        or record.event != "violation.opened"
        or record.camera_health is not None
    ):
        return ""
    if case.grid_team is None:
        return "; no reminder: the record names no grid team whose notifier could send it"
    if case.responsible_unit:
        _lock_unit(session, case.responsible_unit)
    earlier = _earlier_reminder(session, case, now=now, settings=settings)
    if earlier is not None:
        case.mark = "repeat"
        return (
            f"; no reminder: {case.responsible_unit or 'this place'} was reminded on "
            f"{earlier.reminded_at.isoformat() if earlier.reminded_at else '?'} (case {earlier.id})"
        )
    case.status = "reminded"
    case.reminded_at = now
    case.remind_deadline = now + timedelta(seconds=record.remind_first_s)
    # The handling deadline (处置时限) starts when the case can reach an officer, after the reminder.
    case.due_at = case.remind_deadline + timedelta(seconds=settings.deadlines_s[record.category])  # type: ignore[index]
    return f"; reminded {case.responsible_unit or 'the grid team'}, deadline {case.remind_deadline.isoformat()}"


def _local(value: datetime, zone: tzinfo | None) -> datetime:
    return value.astimezone(zone) if zone is not None else value


def notice_text(case: Case, *, zone: tzinfo | None) -> str:
    """The short Chinese notice a notifier can pass on as it is (SMS, app message, loudspeaker)."""
    assert case.remind_deadline is not None
    deadline = _local(case.remind_deadline, zone)
    who = case.responsible_name or case.responsible_unit or "商户"
    what = CATEGORY_ZH.get(case.category, case.category)  # type: ignore[call-overload]
    return (
        f"【城市管理提醒】{who}：监控发现您门前（{case.zone}）存在{what}，"
        f"请于{deadline.month}月{deadline.day}日 {deadline:%H:%M} 前自行整改。"
        "逾期未整改的，将转交城管处理。感谢配合！"
    )


def _snapshot_url(case: Case, settings: Settings) -> str | None:
    for kind in SNAPSHOT_KINDS:
        for index, item in enumerate(case.evidence):
            if item["kind"] == kind:
                path = f"/api/v1/cases/{case.id}/evidence/{index}"
                return (settings.public_url.rstrip("/") + path) if settings.public_url else path
    return None


def enqueue_reminder(session: Session, case: Case, *, zone: tzinfo | None, now: datetime, settings: Settings) -> bool:
    """The ``case.reminder`` message, through the outbox, to the grid team's subscribed endpoints."""
    assert case.grid_team is not None and case.remind_deadline is not None and case.reminded_at is not None
    body = canonical_json(
        {
            "type": REMINDER,
            "timestamp": now.isoformat(),
            "data": {
                "case_id": case.id,
                "responsible": (
                    {"unit": case.responsible_unit, "name": case.responsible_name} if case.responsible_unit else None
                ),
                "category": case.category,
                "zone": case.zone,
                "camera_id": case.camera_id,
                "grid": {"code": case.grid_code, "team": case.grid_team},
                "location": {"type": "Point", "coordinates": [case.lon, case.lat]},
                "notice": notice_text(case, zone=zone),
                "snapshot_url": _snapshot_url(case, settings),
                "reminded_at": _local(case.reminded_at, zone).isoformat(),
                "remind_first_s": case.remind_first_s,
                "deadline": _local(case.remind_deadline, zone).isoformat(),
            },
        }
    )
    return write_message(session, case_id=case.id, team=case.grid_team, type_=REMINDER, body=body, now=now)


def settle_on_close(case: Case, *, ended_at: datetime, now: datetime) -> str:
    """A ``violation.closed`` of a reminded case: self-rectified when it ended by the deadline; a note."""
    if case.remind_deadline is None:
        return ""
    in_time = ended_at <= case.remind_deadline
    late_close = case.status == "reported" and case.mark == "reminder_ignored"
    if case.status == "reminded" or (late_close and in_time):
        if in_time:
            case.status = "self_rectified"
            case.mark = None
            case.closed_at = now
            return "; cleared by the unit before the reminder's deadline: self-rectified"
        case.status = "reported"
        case.mark = "reminder_ignored"
        return "; gone only after the reminder's deadline: reported"
    return ""


def reminders_due(session: Session, *, now: datetime) -> bool:
    query = select(Case.id).where(Case.status == "reminded", Case.remind_deadline <= now).limit(1)
    return session.execute(query).first() is not None


def escalate_due_reminders(session: Session, *, now: datetime, limit: int) -> list[str]:
    """Reminded cases past their deadline → ``reported`` marked ``reminder_ignored``; their ids.

    On PostgreSQL each row is taken with ``FOR UPDATE SKIP LOCKED``: replicas running this at once
    take disjoint cases, and a case that ingest holds (its closing record) is left to the next round.
    """
    query = (
        select(Case)
        .where(Case.status == "reminded", Case.remind_deadline <= now)
        .order_by(Case.remind_deadline, Case.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    escalated = []
    for case in session.scalars(query).all():
        assert case.remind_deadline is not None
        case.status = "reported"
        case.mark = "reminder_ignored"
        _touch(case, now)
        _log(
            session,
            case,
            kind="escalated",
            actor=REMINDER_JOB,
            from_status="reminded",
            note=f"reminder to {case.responsible_unit or 'the grid team'} ran out at "
            f"{case.remind_deadline.isoformat()}: for an operator",
            now=now,
        )
        escalated.append(case.id)
    return escalated
