"""Alert records in: store each once and apply it to its case (new case, repeat detection, cleared)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.core.db import Database
from service.core.errors import Conflict, Invalid
from service.core.security import Principal, same_digest
from service.crud.cases import _enqueue, _log, _merge_evidence, _touch
from service.crud.common import canonical_json
from service.models import AlertRecordRow, Case
from zones.alert import AlertRecord

EARTH_RADIUS_M = 6_371_008.8


# ---- ingest -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestOutcome:
    created: bool
    payload: str  # the stored record, canonical JSON
    case_id: str
    queued: bool  # webhook deliveries were written


def _evidence_items(record: AlertRecord, stage: str) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "path": e.path, "sha256": e.sha256, "stage": stage} for e in record.evidence]


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _find_repeat(session: Session, case: Case, settings: Settings) -> str | None:
    """The latest earlier case of the same category within the repeat radius and window."""
    radius = settings.repeat_radius_m
    if radius <= 0:
        return None
    dlat = math.degrees(radius / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(case.lat)), 1e-6)
    candidates = session.scalars(
        select(Case)
        .where(
            Case.category == case.category,
            Case.id != case.id,
            Case.status != "rejected",  # a false report is no offence to repeat
            Case.alerted_at <= case.alerted_at,
            Case.alerted_at >= case.alerted_at - timedelta(seconds=settings.repeat_window_s),
            Case.lat.between(case.lat - dlat, case.lat + dlat),
            Case.lon.between(case.lon - dlon, case.lon + dlon),
        )
        .order_by(Case.alerted_at.desc(), Case.id)
        .limit(50)
    ).all()
    for candidate in candidates:
        if distance_m(case.lon, case.lat, candidate.lon, candidate.lat) <= radius:
            return candidate.id
    return None


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
        session.add(case)
        session.flush()
        change = _log(
            session, case, kind="created", actor=actor, now=now, note=f"{record.event} from {record.camera_id}"
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
        _touch(case, now)
        change = _log(session, case, kind="cleared", actor=actor, now=now, note="violation.closed: object gone")
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
