"""SQLAlchemy 2 ORM tables. The schema itself is created by the Alembic migrations.

Conventions: ids are UUID strings (no process-local sequences that replicas could clash on, except
the change log's ordering key); timestamps are stored in UTC and always come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for a long-lived log.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware (UTC) datetimes out, also on SQLite which stores no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class AlertRecordRow(Base):
    """Every accepted alert record, verbatim; (id, event) is the idempotency key."""

    __tablename__ = "alert_records"

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event: Mapped[str] = mapped_column(String(32), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON of the validated record
    payload_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    received_by: Mapped[str | None] = mapped_column(String(36))


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_due", "status", "due_at"),
        Index("ix_cases_category_lat_lon", "category", "lat", "lon"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the alert record's id
    status: Mapped[str] = mapped_column(String(16), index=True)
    category: Mapped[str] = mapped_column(String(32))
    object_class: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(128))
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    grid_code: Mapped[str | None] = mapped_column(String(64), index=True)
    grid_team: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(64), index=True)  # set by dispatch
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    location_error_m: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    bbox: Mapped[list[Any]]
    evidence: Mapped[list[Any]]  # [{"kind", "path", "sha256", "stage"}]
    model: Mapped[dict[str, Any]]
    source: Mapped[dict[str, Any]]
    video_offset_s: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime]
    alerted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]
    due_at: Mapped[datetime]
    filed_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    repeat_of: Mapped[str | None] = mapped_column(String(36), ForeignKey("cases.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Remind first (DESIGN §3.7), from the opening record: the zone's unit and the unit's time to clear it.
    responsible_unit: Mapped[str | None] = mapped_column(String(64), index=True)
    responsible_name: Mapped[str | None] = mapped_column(String(128))
    remind_first_s: Mapped[int | None] = mapped_column(Integer)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)  # the reminder was written
    remind_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)  # reminded_at + remind_first_s
    mark: Mapped[str | None] = mapped_column(String(16), index=True)  # reminder_ignored | repeat
    # The camera's status when the incident opened, when it was not online (the record's camera_health).
    camera_health: Mapped[str | None] = mapped_column(String(16))


class CaseChange(Base):
    """Audit trail and change log: one row per transition or update of a case, and one per change of a
    camera's status (``kind`` ``camera_health``, no case, ``camera_id`` set).

    ``seq`` orders the log for the SSE stream (clients resume with Last-Event-ID).
    """

    __tablename__ = "case_changes"

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    case_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("cases.id"), index=True)
    camera_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))  # created | action | cleared | reported | photo
    action: Mapped[str | None] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    actor_role: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(64))  # the case's team after the change
    # Review verdicts (file / reject) teach the next model: the operator's corrected box in pixels of
    # the case's clean snapshot, {"bbox": [x1, y1, x2, y2] (floats), "object_class": str}; file only.
    label: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Why a reject was a false alarm (legal_awning | parked_vehicle | person | shadow | other).
    reason: Mapped[str | None] = mapped_column(String(32))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    last_frame_at: Mapped[datetime | None]
    frames_dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    analysis_fps: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(500))


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))  # whsec_…; needed in clear to sign
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(256))
    # Set from a Retry-After answer: no delivery to this endpoint before then.
    paused_until: Mapped[datetime | None]
    # Message types the endpoint gets; None: case.dispatched and case.updated (as before §3.7).
    events: Mapped[list[Any] | None] = mapped_column(JSON)


class OutboxMessage(Base):
    """A message for a team, written in the same transaction as the case change it reports."""

    __tablename__ = "outbox_messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # msg_… = webhook-id
    type: Mapped[str] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(64))
    # None for a camera.health message (to the camera-health team's endpoints).
    case_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("cases.id"), index=True)
    payload: Mapped[str] = mapped_column(Text)  # exact body bytes (UTF-8) that get signed
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One message to one endpoint; the relay leases, sends, retries and finally marks it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id", name="uq_delivery_message_endpoint"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), ForeignKey("outbox_messages.id"))
    endpoint_id: Mapped[str] = mapped_column(String(36), ForeignKey("webhook_endpoints.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # Start of the retry window: the first failed attempt after creation, an operator's requeue or a 410.
    retry_from: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(512))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class EvidenceBlob(Base):
    """Uploaded evidence (snapshots, officers' photos), content-addressed by SHA-256."""

    __tablename__ = "evidence_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class CameraConfigVersion(Base):
    """One version of a camera's config (DESIGN §3.2), set up in the browser or through the API.

    Versions count 1, 2, … per camera; a PUT of an unchanged config adds none. ``config`` is the
    validated config as JSON text (field order of the schema), ``config_sha256`` the SHA-256 of its
    canonical form (sorted keys), which is what "unchanged" compares.
    """

    __tablename__ = "camera_config_versions"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    config: Mapped[str] = mapped_column(Text)
    config_sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(128))  # the token's name
    updated_by_role: Mapped[str] = mapped_column(String(16))


class CameraSnapshot(Base):
    """The latest frame a live runner uploaded for a camera (what the setup page draws zones on)."""

    __tablename__ = "camera_snapshots"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    captured_at: Mapped[datetime]
    uploaded_at: Mapped[datetime]
    uploaded_by: Mapped[str] = mapped_column(String(128))


class AccessLogEntry(Base):
    """Who read or changed what (evidence reads, bundle exports, config changes, token creations, logins).

    Append-only: the service adds rows and never changes one; only the retention job deletes rows older
    than ``STREETWATCH_ACCESS_LOG_DAYS``.
    """

    __tablename__ = "access_log"

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128))  # the token's name ("" for a failed login)
    role: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(256))  # what was read or changed: case/<id>/evidence/0, …
    client: Mapped[str] = mapped_column(String(64))  # the client's address
    detail: Mapped[str | None] = mapped_column(String(512))


class ServiceKey(Base):
    """A key the service made for itself on PostgreSQL, where no file lies beside the database and every
    replica must sign with the same key (SQLite keeps it in a file beside the database instead)."""

    __tablename__ = "service_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # "bundle-signing"
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
