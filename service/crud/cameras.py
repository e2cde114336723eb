"""Cameras: status reports, config versions and snapshots."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import and_, func, select, text
from sqlalchemy.orm import Session

from service.core.errors import Invalid, NotFound, ServiceError
from service.core.security import Principal
from service.crud.common import canonical_json
from service.crud.webhooks import queue_message
from service.models import Camera, CameraConfigVersion, CameraSnapshot, CaseChange
from service.schemas import CameraConfigPublic, CameraHealthEvent, CameraStatusIn

# ---- cameras --------------------------------------------------------------------------------------


def record_camera_status(
    session: Session,
    *,
    camera_id: str,
    status: CameraStatusIn,
    now: datetime,
    actor: Principal | None = None,
    health_team: str | None = None,
) -> tuple[Camera, bool]:
    """Store a camera's status. A change of status (a first report only when it is not ``online``) goes
    into the change log (SSE ``camera.health``) and, with ``health_team``, to that team's webhook endpoints
    as a ``camera.health`` message, in this transaction. Returns the camera and whether a webhook delivery
    was queued."""
    camera = session.get(Camera, camera_id, with_for_update=True)
    previous = camera.status if camera is not None else None
    if camera is None:
        camera = Camera(id=camera_id, status=status.status, frames_dropped=0, updated_at=now)
        session.add(camera)
    camera.status = status.status
    camera.last_frame_at = status.last_frame_at
    camera.frames_dropped = status.frames_dropped
    camera.analysis_fps = status.analysis_fps
    camera.last_error = status.last_error
    camera.updated_at = now
    session.flush()
    queued = False
    if status.status != previous and (previous is not None or status.status != "online"):
        queued = _health_changed(session, camera, previous, now=now, actor=actor, health_team=health_team)
    return camera, queued


def camera_health_event(change: CaseChange) -> CameraHealthEvent:
    assert change.camera_id is not None
    return CameraHealthEvent(
        camera_id=change.camera_id,
        status=change.to_status,  # type: ignore[arg-type]
        previous=change.from_status,  # type: ignore[arg-type]
        at=change.at,
        last_error=change.note,
    )


def _health_changed(
    session: Session,
    camera: Camera,
    previous: str | None,
    *,
    now: datetime,
    actor: Principal | None,
    health_team: str | None,
) -> bool:
    change = CaseChange(
        case_id=None,
        camera_id=camera.id,
        at=now,
        kind="camera_health",
        from_status=previous,
        to_status=camera.status,
        actor=actor.name if actor is not None else "camera",
        actor_role=actor.role if actor is not None else "camera",
        note=camera.last_error,
        team=None,  # no team's case: officers' feeds never carry it
    )
    session.add(change)
    session.flush()
    if health_team is None:
        return False
    body = canonical_json(
        {
            "type": "camera.health",
            "timestamp": now.isoformat(),
            "data": camera_health_event(change).model_dump(mode="json"),
        }
    )
    return queue_message(
        session,
        message_id=f"msg_{uuid.uuid4().hex}",
        type_="camera.health",
        team=health_team,
        case_id=None,
        body=body,
        now=now,
    )


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
