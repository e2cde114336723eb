"""Alert records in: store each once and apply it to its case (new case, repeat detection, cleared)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.core.db import Database
from service.core.errors import Conflict, Invalid
from service.core.security import Principal, same_digest
from service.crud.cases import _enqueue, _log, _merge_evidence, _touch
from service.crud.common import canonical_json
from service.crud.places import nearest_earlier
from service.crud.reminders import begin_reminder, enqueue_reminder, settle_on_close
from service.models import AlertRecordRow, Case
from zones.alert import AlertRecord

# ---- ingest -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestOutcome:
    created: bool
    payload: str  # the stored record, canonical JSON
    case_id: str
    queued: bool  # webhook deliveries were written


def _evidence_items(record: AlertRecord, stage: str) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "path": e.path, "sha256": e.sha256, "stage": stage} for e in record.evidence]


def _find_repeat(session: Session, case: Case, settings: Settings) -> str | None:
    """The latest earlier case of the same category within the repeat radius and window."""
    earlier = nearest_earlier(
        session,
        case,
        radius_m=settings.repeat_radius_m,
        conditions=[
            Case.status != "rejected",  # a false report is no offence to repeat
            Case.alerted_at <= case.alerted_at,
            Case.alerted_at >= case.alerted_at - timedelta(seconds=settings.repeat_window_s),
        ],
        newest_first=Case.alerted_at.desc(),
    )
    return None if earlier is None else earlier.id


def _new_case(record: AlertRecord, *, now: datetime, settings: Settings) -> Case:
    lon, lat = record.location.coordinates
    return Case(
        id=str(record.id),
        status="reported",
        category=record.category,
        object_class=record.object_class,
        zone=record.zone,
        camera_id=record.camera_id,
        grid_code=record.grid.code if record.grid else None,
        grid_team=record.grid.team if record.grid else None,
        team=None,
        lon=lon,
        lat=lat,
        location_error_m=record.location_error_m,
        confidence=record.confidence,
        bbox=list(record.bbox),
        evidence=[],
        model=record.model.model_dump(mode="json"),
        source=record.source.model_dump(mode="json"),
        video_offset_s=record.video_offset_s.model_dump(mode="json") if record.video_offset_s else None,
        started_at=record.started_at,
        alerted_at=record.alerted_at,
        ended_at=None,
        due_at=record.alerted_at + timedelta(seconds=settings.deadlines_s[record.category]),
        created_at=now,
        updated_at=now,
        version=1,
        responsible_unit=record.responsible.unit if record.responsible else None,
        responsible_name=record.responsible.name if record.responsible else None,
        remind_first_s=record.remind_first_s,
        camera_health=record.camera_health,
    )


def _apply_record(
    session: Session, record: AlertRecord, *, actor: Principal, now: datetime, settings: Settings
) -> bool:
    case = session.get(Case, str(record.id), with_for_update=True)
    created = case is None
    if case is None:
        case = _new_case(record, now=now, settings=settings)
        case.repeat_of = _find_repeat(session, case, settings)
        reminding = begin_reminder(session, case, record, now=now, settings=settings)
        session.add(case)
        session.flush()
        change = _log(
            session,
            case,
            kind="created",
            actor=actor,
            now=now,
            note=f"{record.event} from {record.camera_id}{reminding}",
        )
    if record.event == "violation.opened":
        _merge_evidence(case, _evidence_items(record, "opened"))
        if not created:
            _touch(case, now)
            change = _log(session, case, kind="reported", actor=actor, now=now, note="violation.opened")
    else:
        _merge_evidence(case, _evidence_items(record, "closed"))
        case.ended_at = record.ended_at
        case.cleared_at = now
        if record.video_offset_s is not None:
            case.video_offset_s = record.video_offset_s.model_dump(mode="json")
        before = case.status
        settled = settle_on_close(case, ended_at=record.ended_at or now, now=now)
        _touch(case, now)
        change = _log(
            session,
            case,
            kind="cleared",
            actor=actor,
            now=now,
            from_status=before if case.status != before else None,
            note=f"violation.closed: object gone{settled}",
        )
    if created and case.status == "reminded":
        # After the evidence is merged: the reminder links the snapshot.
        return enqueue_reminder(session, case, zone=record.alerted_at.tzinfo, now=now, settings=settings)
    if case.dispatched_at is not None and not created:
        return _enqueue(session, case, change, type_="case.updated", now=now)
    return False


def ingest_alert(
    *, db: Database, record: AlertRecord, actor: Principal, now: datetime, settings: Settings
) -> IngestOutcome:
    """Store the record and apply it to its case, exactly once per (id, event)."""
    try:
        payload = canonical_json(record.model_dump(mode="json"))
    except ValueError:
        raise Invalid("alert record contains a non-finite number (NaN or Infinity)") from None
    digest = hashlib.sha256(payload.encode()).hexdigest()
    key = (str(record.id), record.event)
    for _ in range(8):
        try:
            with db.writing() as session:
                stored = session.get(AlertRecordRow, key)
                if stored is not None:
                    if not same_digest(stored.payload_sha256, digest):
                        raise Conflict(f"alert {key[0]} {key[1]} was already received with a different payload")
                    return IngestOutcome(created=False, payload=stored.payload, case_id=key[0], queued=False)
                session.add(
                    AlertRecordRow(
                        alert_id=key[0],
                        event=key[1],
                        payload=payload,
                        payload_sha256=digest,
                        received_at=now,
                        received_by=actor.token_id,
                    )
                )
                session.flush()
                queued = _apply_record(session, record, actor=actor, now=now, settings=settings)
            return IngestOutcome(created=True, payload=payload, case_id=key[0], queued=queued)
        except IntegrityError:
            # A concurrent request stored the same record or created the same case first; the
            # next round sees its committed row.
            continue
    raise Conflict(f"alert {key[0]} {key[1]}: too much contention, retry")
