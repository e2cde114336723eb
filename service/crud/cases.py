"""Cases: public views, listing, the change log (history and SSE feed), lifecycle actions and the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from service.core.errors import Conflict, Forbidden, Invalid, NotFound
from service.core.lifecycle import (
    ACTION_ROLES,
    NOTE_OR_REASON_REQUIRED,
    NOTE_REQUIRED,
    OPEN_STATUSES,
    Mark,
    Status,
    next_status,
)
from service.core.security import Principal
from service.crud.common import canonical_json
from service.crud.webhooks import queue_message
from service.models import Case, CaseChange
from service.schemas import (
    ActionRequest,
    CaseChangePublic,
    CaseDetail,
    CasePublic,
    EvidenceLink,
    SourceOut,
    UnitCaseRef,
    UnitRecord,
    VideoOffsetsOut,
    WebhookEvent,
)
from zones.alert import GeoPoint, GridRef, ResponsibleUnit

CLEAN_SNAPSHOT = "snapshot_clean"
"""Evidence kind of the untouched frame: review labels are in its pixels."""


# ---- cases: public views ------------------------------------------------------------------------


def _public_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def is_overdue(case: Case, now: datetime) -> bool:
    return case.status in OPEN_STATUSES and now > case.due_at


def case_public(case: Case, *, now: datetime) -> CasePublic:
    evidence = [
        EvidenceLink(
            kind=item["kind"],
            stage=item["stage"],
            sha256=item["sha256"],
            url=f"/api/v1/cases/{case.id}/evidence/{index}",
        )
        for index, item in enumerate(case.evidence)
    ]
    grid = GridRef(code=case.grid_code, team=case.grid_team) if case.grid_code and case.grid_team else None
    return CasePublic(
        id=case.id,
        status=case.status,  # type: ignore[arg-type]
        category=case.category,  # type: ignore[arg-type]
        object_class=case.object_class,  # type: ignore[arg-type]
        zone=case.zone,
        camera_id=case.camera_id,
        grid=grid,
        team=case.team,
        location=GeoPoint(type="Point", coordinates=(case.lon, case.lat)),
        location_error_m=case.location_error_m,
        confidence=case.confidence,
        bbox=tuple(case.bbox),  # type: ignore[arg-type]
        evidence=evidence,
        model=str(case.model.get("name", "")),
        source=SourceOut(uri=_public_uri(str(case.source.get("uri", ""))), frame=int(case.source.get("frame", 0))),
        video_offset_s=VideoOffsetsOut(**case.video_offset_s) if case.video_offset_s else None,
        started_at=case.started_at,
        alerted_at=case.alerted_at,
        ended_at=case.ended_at,
        cleared_at=case.cleared_at,
        due_at=case.due_at,
        overdue=is_overdue(case, now),
        filed_at=case.filed_at,
        dispatched_at=case.dispatched_at,
        handled_at=case.handled_at,
        closed_at=case.closed_at,
        created_at=case.created_at,
        updated_at=case.updated_at,
        repeat_of=case.repeat_of,
        responsible=(
            ResponsibleUnit(unit=case.responsible_unit, name=case.responsible_name or case.responsible_unit)
            if case.responsible_unit
            else None
        ),
        remind_first_s=case.remind_first_s,
        reminded_at=case.reminded_at,
        remind_deadline=case.remind_deadline,
        mark=case.mark,  # type: ignore[arg-type]
        camera_health=case.camera_health,  # type: ignore[arg-type]
    )


def change_public(change: CaseChange) -> CaseChangePublic:
    return CaseChangePublic.model_validate(change)


def case_detail(session: Session, *, case: Case, now: datetime, unit_days: float | None = None) -> CaseDetail:
    """The case with its history; with ``unit_days``, also its responsibility unit's record over those days."""
    history = session.scalars(select(CaseChange).where(CaseChange.case_id == case.id).order_by(CaseChange.seq)).all()
    record = None
    if unit_days is not None and case.responsible_unit:
        record = unit_record(session, unit=case.responsible_unit, now=now, days=unit_days)
    return CaseDetail(
        **case_public(case, now=now).model_dump(),
        history=[change_public(change) for change in history],
        unit_record=record,
    )


UNIT_CASES_SHOWN = 50


def reminder_tally(session: Session, *conditions: Any) -> dict[str, int]:
    """Remind-first outcomes of the cases meeting ``conditions``: reminders sent, self-rectified, ignored,
    and not sent because the place had one (repeat)."""
    sent, rectified, ignored, repeat = session.execute(
        select(
            func.count(Case.reminded_at),
            func.count().filter(Case.status == "self_rectified"),
            func.count().filter(Case.mark == "reminder_ignored"),
            func.count().filter(Case.mark == "repeat"),
        ).where(*conditions)
    ).one()
    return {"sent": sent, "self_rectified": rectified, "reminder_ignored": ignored, "repeat": repeat}


def unit_record(session: Session, *, unit: str, now: datetime, days: float) -> UnitRecord:
    """A responsibility unit's cases alerted in the last ``days``: how it answered its reminders."""
    where = (Case.responsible_unit == unit, Case.alerted_at >= now - timedelta(days=days))
    tally = reminder_tally(session, *where)
    rows = session.scalars(
        select(Case).where(*where).order_by(Case.alerted_at.desc(), Case.id).limit(UNIT_CASES_SHOWN)
    ).all()
    return UnitRecord(
        unit=unit,
        name=next((row.responsible_name for row in rows if row.responsible_name), unit),
        days=days,
        reminded=tally["sent"],
        self_rectified=tally["self_rectified"],
        reminder_ignored=tally["reminder_ignored"],
        repeat=tally["repeat"],
        cases=[
            UnitCaseRef(id=row.id, status=row.status, category=row.category, alerted_at=row.alerted_at, mark=row.mark)  # type: ignore[arg-type]
            for row in rows
        ],
    )


def _visible(actor: Principal) -> list[Any]:
    """Row filter for the caller: officers see only cases dispatched to their team."""
    if actor.role == "officer":
        return [Case.team == actor.team]
    if actor.role == "camera":
        return [Case.id.is_(None)]  # cameras never read cases; routes refuse them earlier
    return []


def get_case(session: Session, *, case_id: str, actor: Principal, for_update: bool = False) -> Case:
    query = select(Case).where(Case.id == case_id, *_visible(actor))
    if for_update:
        query = query.with_for_update()
    case = session.scalar(query)
    if case is None:
        # Also for cases outside an officer's team: their existence is none of his business.
        raise NotFound(f"no case {case_id}")
    return case


@dataclass(frozen=True)
class CaseFilter:
    status: Sequence[Status] = ()
    category: Sequence[str] = ()
    camera_id: str | None = None
    grid_code: str | None = None
    team: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    overdue: bool | None = None
    mark: Sequence[Mark] = ()


def _filtered(query: Select[Any], *, filters: CaseFilter, actor: Principal, now: datetime) -> Select[Any]:
    conditions = _visible(actor)
    if filters.status:
        conditions.append(Case.status.in_(list(filters.status)))
    if filters.category:
        conditions.append(Case.category.in_(list(filters.category)))
    if filters.camera_id:
        conditions.append(Case.camera_id == filters.camera_id)
    if filters.grid_code:
        conditions.append(Case.grid_code == filters.grid_code)
    if filters.team:
        conditions.append(Case.team == filters.team)
    if filters.since:
        conditions.append(Case.alerted_at >= filters.since)
    if filters.until:
        conditions.append(Case.alerted_at < filters.until)
    if filters.mark:
        conditions.append(Case.mark.in_(list(filters.mark)))
    if filters.overdue is not None:
        late = and_(Case.status.in_(list(OPEN_STATUSES)), Case.due_at < now)
        conditions.append(late if filters.overdue else ~late)
    return query.where(*conditions)


def list_cases(
    session: Session, *, filters: CaseFilter, actor: Principal, now: datetime, limit: int, offset: int
) -> tuple[list[Case], int]:
    total = session.scalar(_filtered(select(func.count()).select_from(Case), filters=filters, actor=actor, now=now))
    rows = session.scalars(
        _filtered(select(Case), filters=filters, actor=actor, now=now)
        .order_by(Case.alerted_at.desc(), Case.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total or 0)


# ---- cases: changes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemActor:
    """The service itself as the author of a change (the reminder job), in the audit trail."""

    name: str
    role: str = "system"


def _log(
    session: Session,
    case: Case,
    *,
    kind: str,
    actor: Principal | SystemActor,
    now: datetime,
    action: str | None = None,
    from_status: str | None = None,
    note: str | None = None,
    label: dict[str, Any] | None = None,
    reason: str | None = None,
) -> CaseChange:
    change = CaseChange(
        case_id=case.id,
        at=now,
        kind=kind,
        action=action,
        from_status=from_status,
        to_status=case.status,
        actor=actor.name,
        actor_role=actor.role,
        note=note,
        team=case.team,
        label=label,
        reason=reason,
    )
    session.add(change)
    session.flush()
    return change


def write_message(session: Session, *, case_id: str, team: str, type_: WebhookEvent, body: str, now: datetime) -> bool:
    """Outbox: the message and one delivery per live endpoint of ``team`` that subscribes to ``type_``, in
    this transaction; True when some endpoint will get it."""
    return queue_message(
        session, message_id=f"msg_{uuid.uuid4().hex}", type_=type_, team=team, case_id=case_id, body=body, now=now
    )


def _enqueue(session: Session, case: Case, change: CaseChange, *, type_: WebhookEvent, now: datetime) -> bool:
    """A change of a dispatched case for its team: case.dispatched or case.updated."""
    if case.team is None:
        return False
    body = canonical_json(
        {
            "type": type_,
            "timestamp": now.isoformat(),
            "data": {
                "case": case_public(case, now=now).model_dump(mode="json"),
                "change": change_public(change).model_dump(mode="json"),
            },
        }
    )
    return write_message(session, case_id=case.id, team=case.team, type_=type_, body=body, now=now)


def _touch(case: Case, now: datetime) -> None:
    case.updated_at = now
    case.version += 1


def apply_action(
    session: Session, *, case_id: str, request: ActionRequest, actor: Principal, now: datetime
) -> tuple[Case, bool]:
    """One lifecycle step; returns the case and whether webhook deliveries were queued."""
    case = get_case(session, case_id=case_id, actor=actor, for_update=True)
    action = request.action
    if actor.role not in ACTION_ROLES[action]:
        raise Forbidden(f"role {actor.role} may not {action} cases")
    current: Status = case.status  # type: ignore[assignment]
    target = next_status(current, action)
    if target is None:
        raise Conflict(f"cannot {action} a case that is {current}")
    note = (request.note or "").strip() or None
    if action in NOTE_OR_REASON_REQUIRED and note is None and request.reason is None:
        raise Invalid(f"{action} needs a note or a reason")
    if action in NOTE_REQUIRED and note is None:
        raise Invalid(f"{action} needs a note giving the reason")
    label: dict[str, Any] | None = None
    if request.label is not None:
        if not any(item["kind"] == CLEAN_SNAPSHOT for item in case.evidence):
            raise Invalid(f"the case has no {CLEAN_SNAPSHOT} evidence for the label's box to refer to")
        label = {"bbox": [float(v) for v in request.label.bbox], "object_class": request.label.object_class}
    if request.team is not None and action != "dispatch":
        raise Invalid("team is only accepted with the dispatch action")
    if action == "dispatch":
        team = request.team or case.grid_team
        if not team:
            raise Invalid("the case has no grid team; give team")
        case.team = team
        case.dispatched_at = now
    elif action == "file":
        case.filed_at = now
    elif action == "handle":
        case.handled_at = now
    elif action == "close":
        case.closed_at = now
    elif action == "reopen":
        case.handled_at = None
    case.status = target
    _touch(case, now)
    change = _log(
        session,
        case,
        kind="action",
        action=action,
        from_status=current,
        actor=actor,
        note=note,
        label=label,
        reason=request.reason,
        now=now,
    )
    queued = False
    if case.dispatched_at is not None:
        queued = _enqueue(
            session, case, change, type_="case.dispatched" if action == "dispatch" else "case.updated", now=now
        )
    return case, queued


def _merge_evidence(case: Case, items: list[dict[str, Any]]) -> None:
    known = {(item["kind"], item["sha256"]) for item in case.evidence}
    fresh = [item for item in items if (item["kind"], item["sha256"]) not in known]
    if fresh:
        case.evidence = [*case.evidence, *fresh]  # reassign: JSON columns do not track in-place edits


# ---- change log (SSE) -------------------------------------------------------------------------


def last_change_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(CaseChange.seq))) or 0)


def changes_after(session: Session, *, after: int, actor: Principal, limit: int = 200) -> Sequence[CaseChange]:
    query = select(CaseChange).where(CaseChange.seq > after)
    if actor.role == "officer":
        query = query.where(CaseChange.team == actor.team)
    return session.scalars(query.order_by(CaseChange.seq).limit(limit)).all()
