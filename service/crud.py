"""Store operations. Keyword-only; each takes a Session whose transaction the caller owns, except
``ingest_alert`` which owns its transactions because it retries them on unique-key races."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Select, Subquery, and_, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.core.config import Settings
from service.core.db import Database
from service.core.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from service.core.lifecycle import (
    ACTION_ROLES,
    NOTE_OR_REASON_REQUIRED,
    NOTE_REQUIRED,
    OPEN_STATUSES,
    Status,
    next_status,
)
from service.core.security import (
    Principal,
    Role,
    hash_token,
    new_token,
    new_webhook_secret,
    same_digest,
)
from service.core.ssrf import check_webhook_url
from service.models import (
    AlertRecordRow,
    ApiToken,
    Camera,
    CameraConfigVersion,
    CameraSnapshot,
    Case,
    CaseChange,
    EvidenceBlob,
    OutboxMessage,
    WebhookDelivery,
    WebhookEndpoint,
)
from service.schemas import (
    MAX_URL_LENGTH,
    ActionRequest,
    CameraConfigPublic,
    CameraStatusIn,
    CaseChangePublic,
    CaseDetail,
    CasePublic,
    DeliveryPublic,
    EvidenceLink,
    PrecisionRow,
    SourceOut,
    VideoOffsetsOut,
    WebhookPublic,
)
from zones.alert import AlertRecord, GeoPoint, GridRef

EARTH_RADIUS_M = 6_371_008.8
CLEAN_SNAPSHOT = "snapshot_clean"
"""Evidence kind of the untouched frame: review labels are in its pixels."""
EVIDENCE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "video/mp4"})


def canonical_json(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON; storing them would break every reader later.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _new_id() -> str:
    return str(uuid.uuid4())


# ---- tokens ---------------------------------------------------------------------------------------


def create_token(session: Session, *, role: Role, name: str, team: str | None, now: datetime) -> tuple[ApiToken, str]:
    if role == "officer" and not team:
        raise Invalid("officer tokens need a team (--team)")
    token = new_token()
    row = ApiToken(id=_new_id(), name=name, role=role, team=team, token_sha256=hash_token(token), created_at=now)
    session.add(row)
    session.flush()
    return row, token


def principal_for_token(session: Session, *, token: str) -> Principal | None:
    digest = hash_token(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest))
    if row is None or row.revoked_at is not None or not same_digest(row.token_sha256, digest):
        return None
    return Principal(
        token_id=row.id,
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        team=row.team,
        token_sha256=row.token_sha256,
    )


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)).all()


def revoke_token(session: Session, *, token_id: str, now: datetime) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def revoke_tokens_named(session: Session, *, name: str, now: datetime) -> int:
    rows = session.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = now
    return len(rows)


# ---- webhooks -------------------------------------------------------------------------------------


def add_webhook(
    session: Session, *, team: str, url: str, now: datetime, allow_private: bool
) -> tuple[WebhookEndpoint, str]:
    if len(url) > MAX_URL_LENGTH:
        # Normalising (IDNA, percent-encoding) can lengthen a URL past the column that stores it.
        raise Invalid(f"webhook URL is longer than {MAX_URL_LENGTH} characters once normalised")
    check_webhook_url(url, allow_private=allow_private)
    secret = new_webhook_secret()
    row = WebhookEndpoint(id=_new_id(), team=team, url=url, secret=secret, created_at=now)
    session.add(row)
    session.flush()
    return row, secret


def _endpoint_counts(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count()).group_by(
            WebhookDelivery.endpoint_id, WebhookDelivery.status
        )
    ).all()
    return {(endpoint_id, status): count for endpoint_id, status, count in rows}


def webhook_public(endpoint: WebhookEndpoint, counts: dict[tuple[str, str], int]) -> WebhookPublic:
    return WebhookPublic(
        id=endpoint.id,
        team=endpoint.team,
        url=endpoint.url,
        created_at=endpoint.created_at,
        disabled_at=endpoint.disabled_at,
        disabled_reason=endpoint.disabled_reason,
        paused_until=endpoint.paused_until,
        pending=counts.get((endpoint.id, "pending"), 0),
        failed=counts.get((endpoint.id, "failed"), 0),
        delivered=counts.get((endpoint.id, "delivered"), 0),
    )


def list_webhooks(session: Session) -> list[WebhookPublic]:
    counts = _endpoint_counts(session)
    endpoints = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.team, WebhookEndpoint.created_at))
    return [webhook_public(endpoint, counts) for endpoint in endpoints]


def set_webhook_enabled(
    session: Session, *, endpoint_id: str, enabled: bool, now: datetime, reason: str | None = None
) -> WebhookPublic:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    if enabled:
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
        endpoint.paused_until = None
    elif endpoint.disabled_at is None:
        endpoint.disabled_at = now
        endpoint.disabled_reason = reason or "disabled by an operator"
    session.flush()
    return webhook_public(endpoint, _endpoint_counts(session))


def list_deliveries(
    session: Session,
    *,
    status: Literal["pending", "delivered", "failed"] | None,
    endpoint_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[DeliveryPublic], int]:
    conditions = []
    if status is not None:
        conditions.append(WebhookDelivery.status == status)
    if endpoint_id is not None:
        conditions.append(WebhookDelivery.endpoint_id == endpoint_id)
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(*conditions)) or 0
    rows = session.execute(
        select(WebhookDelivery, OutboxMessage, WebhookEndpoint)
        .join(OutboxMessage, OutboxMessage.id == WebhookDelivery.message_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(*conditions)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    ).all()
    items = [
        DeliveryPublic(
            id=delivery.id,
            message_id=message.id,
            type=message.type,
            case_id=message.case_id,
            endpoint_id=endpoint.id,
            team=endpoint.team,
            url=endpoint.url,
            status=delivery.status,  # type: ignore[arg-type]
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_attempt_at=delivery.last_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )
        for delivery, message, endpoint in rows
    ]
    return items, total


def retry_delivery(session: Session, *, delivery_id: str, now: datetime) -> None:
    """Requeue an exhausted delivery with a fresh retry window."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    if delivery.status != "failed":
        raise Conflict(f"delivery is {delivery.status}; only failed deliveries can be retried")
    delivery.status = "pending"
    delivery.retry_from = now
    delivery.next_attempt_at = now
    delivery.lease_owner = None
    delivery.lease_until = None


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
    )


def change_public(change: CaseChange) -> CaseChangePublic:
    return CaseChangePublic.model_validate(change)


def case_detail(session: Session, *, case: Case, now: datetime) -> CaseDetail:
    history = session.scalars(select(CaseChange).where(CaseChange.case_id == case.id).order_by(CaseChange.seq)).all()
    return CaseDetail(**case_public(case, now=now).model_dump(), history=[change_public(change) for change in history])


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


def _log(
    session: Session,
    case: Case,
    *,
    kind: str,
    actor: Principal,
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


def _enqueue(session: Session, case: Case, change: CaseChange, *, type_: str, now: datetime) -> bool:
    """Outbox: the message and one delivery per live endpoint of the case's team, in this transaction."""
    if case.team is None:
        return False
    message_id = f"msg_{uuid.uuid4().hex}"
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
    session.add(OutboxMessage(id=message_id, type=type_, team=case.team, case_id=case.id, payload=body, created_at=now))
    session.flush()  # PostgreSQL checks the deliveries' foreign key per statement
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.team == case.team, WebhookEndpoint.disabled_at.is_(None))
    ).all()
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                id=_new_id(),
                message_id=message_id,
                endpoint_id=endpoint.id,
                status="pending",
                attempts=0,
                failures=0,
                retry_from=now,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return bool(endpoints)


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


# ---- ingest -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestOutcome:
    created: bool
    payload: str  # the stored record, canonical JSON
    case_id: str
    queued: bool  # webhook deliveries were written


def _evidence_items(record: AlertRecord, stage: str) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "path": e.path, "sha256": e.sha256, "stage": stage} for e in record.evidence]


def _merge_evidence(case: Case, items: list[dict[str, Any]]) -> None:
    known = {(item["kind"], item["sha256"]) for item in case.evidence}
    fresh = [item for item in items if (item["kind"], item["sha256"]) not in known]
    if fresh:
        case.evidence = [*case.evidence, *fresh]  # reassign: JSON columns do not track in-place edits


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


# ---- evidence and photos ---------------------------------------------------------------------


def store_blob(
    session: Session, *, data: bytes, content_type: str, now: datetime, expected_sha256: str | None = None
) -> EvidenceBlob:
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type not in EVIDENCE_TYPES:
        raise Invalid(f"evidence must be one of {sorted(EVIDENCE_TYPES)}, not {content_type!r}")
    if not data:
        raise Invalid("empty upload")
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise Invalid(f"body has SHA-256 {digest}, not {expected_sha256}")
    blob = session.get(EvidenceBlob, digest)
    if blob is None:
        blob = EvidenceBlob(sha256=digest, content_type=content_type, size=len(data), data=data, created_at=now)
        session.add(blob)
        session.flush()
    return blob


def add_case_photo(
    session: Session, *, case_id: str, data: bytes, content_type: str, actor: Principal, now: datetime
) -> Case:
    case = get_case(session, case_id=case_id, actor=actor, for_update=True)
    if actor.role not in ACTION_ROLES["handle"]:
        raise Forbidden(f"role {actor.role} may not add handling photos")
    if case.status not in ("dispatched", "handled"):
        raise Conflict(f"photos are for dispatched or handled cases; this one is {case.status}")
    blob = store_blob(session, data=data, content_type=content_type, now=now)
    _merge_evidence(case, [{"kind": "handling_photo", "path": None, "sha256": blob.sha256, "stage": "handling"}])
    _touch(case, now)
    _log(session, case, kind="photo", actor=actor, now=now, note=f"photo {blob.sha256[:12]}")
    return case


@dataclass(frozen=True)
class EvidenceFile:
    content_type: str
    data: bytes | None = None
    path: Path | None = None


_SUFFIX_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
}


def evidence_file(session: Session, *, case: Case, index: int, evidence_dir: Path | None) -> EvidenceFile:
    """Uploaded blob first; else the file under the evidence root (never outside it)."""
    if not 0 <= index < len(case.evidence):
        raise NotFound(f"case {case.id} has no evidence #{index}")
    item = case.evidence[index]
    blob = session.get(EvidenceBlob, item["sha256"])
    if blob is not None:
        return EvidenceFile(content_type=blob.content_type, data=blob.data)
    path = item.get("path")
    if evidence_dir is not None and path:
        root = evidence_dir.resolve()
        candidate = (root / path).resolve()
        content_type = _SUFFIX_TYPES.get(candidate.suffix.lower())
        if candidate.is_relative_to(root) and candidate.is_file() and content_type:
            return EvidenceFile(content_type=content_type, path=candidate)
    raise NotFound(f"evidence #{index} of case {case.id} has not been uploaded")


# ---- cameras --------------------------------------------------------------------------------------


def record_camera_status(session: Session, *, camera_id: str, status: CameraStatusIn, now: datetime) -> Camera:
    camera = session.get(Camera, camera_id, with_for_update=True)
    if camera is None:
        camera = Camera(id=camera_id, status=status.status, frames_dropped=0, updated_at=now)
        session.add(camera)
    camera.status = status.status
    camera.last_frame_at = status.last_frame_at
    camera.frames_dropped = status.frames_dropped
    camera.analysis_fps = status.analysis_fps
    camera.updated_at = now
    session.flush()
    return camera


def list_cameras(session: Session) -> Sequence[Camera]:
    return session.scalars(select(Camera).order_by(Camera.id)).all()


# ---- camera configs (versions) and snapshots ------------------------------------------------------


class PreconditionFailed(ServiceError):
    """``If-Match`` names a version that is no longer the current one (optimistic concurrency)."""

    status_code = 412


class UnsupportedMediaType(ServiceError):
    status_code = 415


def _latest_config(session: Session, camera_id: str, *, for_update: bool = False) -> CameraConfigVersion | None:
    query = (
        select(CameraConfigVersion)
        .where(CameraConfigVersion.camera_id == camera_id)
        .order_by(CameraConfigVersion.version.desc())
        .limit(1)
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def _lock_camera_config(session: Session, camera_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"camera-config:{camera_id}"}
        )


def get_camera_config(session: Session, *, camera_id: str, version: int | None = None) -> CameraConfigVersion:
    """The current config of a camera, or the given version of it."""
    if version is None:
        row = _latest_config(session, camera_id)
        if row is None:
            raise NotFound(f"camera {camera_id} has no config stored")
        return row
    found = session.get(CameraConfigVersion, (camera_id, version))
    if found is None:
        raise NotFound(f"camera {camera_id} has no config version {version}")
    return found


def put_camera_config(
    session: Session,
    *,
    camera_id: str,
    config: dict[str, Any],
    if_match: int | Literal["*"] | None,
    actor: Principal,
    now: datetime,
) -> tuple[CameraConfigVersion, bool]:
    """Store ``config`` (validated already) as the camera's next version; True when a version was added.

    An unchanged config (same canonical JSON) adds none and returns the current version. ``if_match``:
    the version the client last read (412 when the current one is another), ``*`` any existing one.
    Concurrent PUTs of one camera queue on a per-camera lock (PostgreSQL: a transaction advisory lock, since
    ``FOR UPDATE`` locks no row before the first version and, under READ COMMITTED, re-reads the old latest
    row after the wait; SQLite: writers are serialised already). Should two still race for one version
    number, the loser's flush raises IntegrityError and the caller retries the transaction.
    """
    _lock_camera_config(session, camera_id)
    current = _latest_config(session, camera_id, for_update=True)
    if if_match is not None:
        if current is None:
            raise PreconditionFailed(f"camera {camera_id} has no config yet; send the first one without If-Match")
        if if_match != "*" and if_match != current.version:
            raise PreconditionFailed(
                f"camera {camera_id}'s config is at version {current.version}, not {if_match}: "
                "someone changed it meanwhile; reload it and apply your change again"
            )
    digest = hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()
    if current is not None and current.config_sha256 == digest:
        return current, False
    row = CameraConfigVersion(
        camera_id=camera_id,
        version=1 if current is None else current.version + 1,
        # Schema order (not sorted) so that the YAML served reads like the §3.2 example.
        config=json.dumps(config, ensure_ascii=False, separators=(",", ":"), allow_nan=False),
        config_sha256=digest,
        updated_at=now,
        updated_by=actor.name,
        updated_by_role=actor.role,
    )
    session.add(row)
    session.flush()
    return row, True


def camera_config_public(row: CameraConfigVersion) -> CameraConfigPublic:
    return CameraConfigPublic(
        camera_id=row.camera_id,
        version=row.version,
        config=json.loads(row.config),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def camera_config_history(
    session: Session, *, camera_id: str, limit: int, offset: int
) -> Sequence[CameraConfigVersion]:
    """Versions of a camera's config, newest first (NotFound when it has none)."""
    if _latest_config(session, camera_id) is None:
        raise NotFound(f"camera {camera_id} has no config stored")
    query = (
        select(CameraConfigVersion)
        .where(CameraConfigVersion.camera_id == camera_id)
        .order_by(CameraConfigVersion.version.desc())
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(query).all()


def list_camera_configs(session: Session) -> Sequence[CameraConfigVersion]:
    """The current version of every camera's config, by camera id."""
    latest = (
        select(CameraConfigVersion.camera_id, func.max(CameraConfigVersion.version).label("version"))
        .group_by(CameraConfigVersion.camera_id)
        .subquery()
    )
    query = (
        select(CameraConfigVersion)
        .join(
            latest,
            and_(CameraConfigVersion.camera_id == latest.c.camera_id, CameraConfigVersion.version == latest.c.version),
        )
        .order_by(CameraConfigVersion.camera_id)
    )
    return session.scalars(query).all()


SNAPSHOT_TYPES: Final[dict[str, bytes]] = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
}
"""Media types a camera snapshot may have, and the magic bytes every such file starts with."""


def snapshot_image_type(data: bytes) -> str | None:
    """The image type the bytes announce themselves as (magic bytes; nothing is decoded)."""
    return next((kind for kind, magic in SNAPSHOT_TYPES.items() if data.startswith(magic)), None)


def store_camera_snapshot(
    session: Session,
    *,
    camera_id: str,
    data: bytes,
    content_type: str,
    captured_at: datetime | None,
    actor: Principal,
    now: datetime,
) -> CameraSnapshot:
    """Keep ``data`` as the camera's latest frame (replacing the one before)."""
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type not in SNAPSHOT_TYPES:
        raise UnsupportedMediaType(f"a snapshot is image/jpeg or image/png, not {content_type!r}")
    if not data:
        raise Invalid("empty upload")
    found = snapshot_image_type(data)
    if found != content_type:
        what = f"a {found} file" if found else "neither a JPEG nor a PNG file"
        raise Invalid(f"the body is {what}, but Content-Type says {content_type}")
    snapshot = session.get(CameraSnapshot, camera_id, with_for_update=True)
    if snapshot is None:
        snapshot = CameraSnapshot(camera_id=camera_id)
        session.add(snapshot)
    snapshot.content_type = content_type
    snapshot.size = len(data)
    snapshot.sha256 = hashlib.sha256(data).hexdigest()
    snapshot.data = data
    snapshot.captured_at = captured_at or now
    snapshot.uploaded_at = now
    snapshot.uploaded_by = actor.name
    session.flush()
    return snapshot


def get_camera_snapshot(session: Session, *, camera_id: str) -> CameraSnapshot:
    snapshot = session.get(CameraSnapshot, camera_id)
    if snapshot is None:
        raise NotFound(f"camera {camera_id} has no snapshot yet")
    return snapshot


# ---- change log (SSE) -------------------------------------------------------------------------


def last_change_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(CaseChange.seq))) or 0)


def changes_after(session: Session, *, after: int, actor: Principal, limit: int = 200) -> Sequence[CaseChange]:
    query = select(CaseChange).where(CaseChange.seq > after)
    if actor.role == "officer":
        query = query.where(CaseChange.team == actor.team)
    return session.scalars(query.order_by(CaseChange.seq).limit(limit)).all()


# ---- review verdicts and precision ----------------------------------------------------------------

VERDICTS: Final[dict[str, Literal["filed", "rejected"]]] = {"file": "filed", "reject": "rejected"}
"""Actions that are a review verdict on an AI report, and the verdict each gives."""


def iso_week(value: datetime) -> str:
    """ISO 8601 week of ``value`` in UTC, e.g. ``2026-W48``."""
    year, week, _ = value.astimezone(UTC).isocalendar()
    return f"{year:04d}-W{week:02d}"


def _latest_verdicts() -> Subquery:
    """(case_id, seq) of each case's verdict: its latest change of kind action that files or rejects it."""
    return (
        select(CaseChange.case_id, func.max(CaseChange.seq).label("seq"))
        .where(CaseChange.kind == "action", CaseChange.action.in_(list(VERDICTS)))
        .group_by(CaseChange.case_id)
        .subquery()
    )


@dataclass(frozen=True)
class PrecisionFilter:
    camera_id: str | None = None
    category: Sequence[str] = ()
    since: datetime | None = None  # verdict time (pending reports: alerted_at) >= since
    until: datetime | None = None  # … < until


def precision_by_week(session: Session, *, filters: PrecisionFilter) -> list[PrecisionRow]:
    """Filed / rejected verdicts per camera, category and ISO week of the verdict (UTC), with the reports
    still awaiting review counted in the week they were alerted; ordered by camera, category, week."""
    latest = _latest_verdicts()
    conditions: list[Any] = []
    if filters.camera_id is not None:
        conditions.append(Case.camera_id == filters.camera_id)
    if filters.category:
        conditions.append(Case.category.in_(list(filters.category)))
    verdict_time = [
        *([CaseChange.at >= filters.since] if filters.since else []),
        *([CaseChange.at < filters.until] if filters.until else []),
    ]
    alert_time = [
        *([Case.alerted_at >= filters.since] if filters.since else []),
        *([Case.alerted_at < filters.until] if filters.until else []),
    ]
    verdicts = session.execute(
        select(Case.camera_id, Case.category, CaseChange.action, CaseChange.at)
        .join(latest, latest.c.seq == CaseChange.seq)
        .join(Case, Case.id == CaseChange.case_id)
        .where(*conditions, *verdict_time)
    )
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for camera_id, category, action, at in verdicts:
        key = (camera_id, category, iso_week(at))
        bucket = counts.setdefault(key, {"filed": 0, "rejected": 0, "pending": 0})
        bucket[VERDICTS[str(action)]] += 1
    # Only reported cases can still await review: no transition leads back to reported.
    pending = session.execute(
        select(Case.camera_id, Case.category, Case.alerted_at).where(
            Case.status == "reported", *conditions, *alert_time
        )
    )
    for camera_id, category, alerted_at in pending:
        key = (camera_id, category, iso_week(alerted_at))
        counts.setdefault(key, {"filed": 0, "rejected": 0, "pending": 0})["pending"] += 1
    rows = []
    for (camera_id, category, week), bucket in sorted(counts.items()):
        decided = bucket["filed"] + bucket["rejected"]
        rows.append(
            PrecisionRow(
                camera_id=camera_id,
                category=category,  # type: ignore[arg-type]
                week=week,
                filed=bucket["filed"],
                rejected=bucket["rejected"],
                pending=bucket["pending"],
                precision=bucket["filed"] / decided if decided else None,
            )
        )
    return rows


def verdict_counts(session: Session) -> dict[tuple[str, str, str], int]:
    """All-time verdicts: (camera_id, category, "filed" | "rejected") → cases."""
    latest = _latest_verdicts()
    rows = session.execute(
        select(Case.camera_id, Case.category, CaseChange.action, func.count())
        .join(latest, latest.c.seq == CaseChange.seq)
        .join(Case, Case.id == CaseChange.case_id)
        .group_by(Case.camera_id, Case.category, CaseChange.action)
    ).all()
    return {(camera_id, category, VERDICTS[str(action)]): int(n) for camera_id, category, action, n in rows}


# ---- metrics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreMetrics:
    alerts: dict[str, int]
    cases: dict[str, int]
    overdue: int
    deliveries: dict[str, int]
    delivery_failures: int
    endpoints_disabled: int
    cameras: dict[str, int]
    verdicts: dict[tuple[str, str, str], int]  # (camera, category, "filed" | "rejected") → cases


def store_metrics(session: Session, *, now: datetime) -> StoreMetrics:
    alerts = dict(session.execute(select(AlertRecordRow.event, func.count()).group_by(AlertRecordRow.event)).all())
    cases = dict(session.execute(select(Case.status, func.count()).group_by(Case.status)).all())
    overdue = session.scalar(
        select(func.count()).select_from(Case).where(Case.status.in_(list(OPEN_STATUSES)), Case.due_at < now)
    )
    deliveries = dict(
        session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
    )
    failures = session.scalar(select(func.coalesce(func.sum(WebhookDelivery.failures), 0)))
    disabled = session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_not(None))
    )
    cameras = dict(session.execute(select(Camera.status, func.count()).group_by(Camera.status)).all())
    return StoreMetrics(
        alerts={str(k): int(v) for k, v in alerts.items()},
        cases={str(k): int(v) for k, v in cases.items()},
        overdue=int(overdue or 0),
        deliveries={str(k): int(v) for k, v in deliveries.items()},
        delivery_failures=int(failures or 0),
        endpoints_disabled=int(disabled or 0),
        cameras={str(k): int(v) for k, v in cameras.items()},
        verdicts=verdict_counts(session),
    )


def ping(session: Session) -> None:
    session.execute(select(1))


__all__ = [
    "CaseFilter",
    "IngestOutcome",
    "PreconditionFailed",
    "UnsupportedMediaType",
    "add_case_photo",
    "add_webhook",
    "apply_action",
    "camera_config_history",
    "camera_config_public",
    "case_detail",
    "case_public",
    "changes_after",
    "create_token",
    "evidence_file",
    "get_camera_config",
    "get_camera_snapshot",
    "get_case",
    "ingest_alert",
    "last_change_seq",
    "list_camera_configs",
    "list_cameras",
    "list_cases",
    "list_deliveries",
    "list_tokens",
    "list_webhooks",
    "precision_by_week",
    "principal_for_token",
    "put_camera_config",
    "record_camera_status",
    "retry_delivery",
    "revoke_token",
    "revoke_tokens_named",
    "set_webhook_enabled",
    "snapshot_image_type",
    "store_blob",
    "store_camera_snapshot",
    "store_metrics",
    "verdict_counts",
]

_ = or_  # kept for filters that combine alternatives
