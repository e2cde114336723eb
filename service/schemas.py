"""API schemas. Inputs (…Create, …Request, …In) forbid unknown fields; outputs (…Public) carry only
what a client may see: no token hashes, leases, payload hashes, row versions or stream credentials."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, BeforeValidator, ConfigDict, Field, UrlConstraints
from pydantic_core import PydanticCustomError

from service.core.lifecycle import Action, Status
from service.core.security import Role
from zones.alert import AwareDatetime, GeoPoint, GridRef
from zones.categories import Category, ObjectClass

TEAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_COUNT: Final = 2**53 - 1
"""Bound for counters: fits the BIGINT columns (a larger one was a 500) and is read exactly by
every JSON parser, including schemathesis' own (it rounds 2**63 - 1 up through a float)."""
MAX_URL_LENGTH: Final = 2048
_ISO_8601 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _iso_8601_only(value: object) -> object:
    # pydantic's lax datetime also reads numbers and numeric strings as Unix times: "until=0.5" meant
    # 1970-01-01T00:00:00.5Z instead of an error (found by schemathesis).
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_8601.match(value)):
        return value
    raise PydanticCustomError(
        "datetime_iso8601", "expected an ISO 8601 date-time with offset, e.g. 2026-11-27T09:14:03+08:00"
    )


EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)


def time_out_of_range(value: datetime) -> str | None:
    """Why a timestamp cannot be stored and computed with, or None. ``0001-01-01T00:00+14:00`` has no
    UTC equivalent and ``9999-12-31`` plus a handling deadline overflows: both were 500s."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        return f"time must lie between {EARLIEST.date()} and {LATEST.date()} (UTC)"
    return None


def _storable_time(value: datetime) -> datetime:
    if (problem := time_out_of_range(value)) is not None:
        raise PydanticCustomError("datetime_out_of_range", problem)
    return value


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only), AfterValidator(_storable_time)]
"""A timezone-aware datetime given as ISO 8601 text (never a number)."""


def _json_integer(value: object) -> object:
    # FastAPI validates bodies in pydantic's lax mode, where false is 0 and "7" is 7 (found by
    # schemathesis); JSON Schema's integer is any integral number, 7.0 included.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a JSON integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
"""An integer as JSON Schema means it: a number with no fraction, never a bool or a string."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(_Out):
    detail: Any = Field(description="What went wrong.")


# ---- cases ---------------------------------------------------------------------------------------


class EvidenceLink(_Out):
    kind: str = Field(description="snapshot | snapshot_clean | clip | snapshot_after | handling_photo")
    stage: Literal["opened", "closed", "handling"] = Field(description="Which event brought it.")
    sha256: str = Field(description="SHA-256 of the file.")
    url: str = Field(description="Where to fetch it (same auth as the case).")


class VideoOffsetsOut(_Out):
    start: float
    alert: float | None = None
    end: float | None = None


class SourceOut(_Out):
    uri: str = Field(description="Video or stream, with any user:password@ removed.")
    frame: int


class CasePublic(_Out):
    id: str = Field(description="The alert record's id (UUID).")
    status: Status
    category: Category
    object_class: ObjectClass
    zone: str
    camera_id: str
    grid: GridRef | None = Field(description="Grid cell and its responsible team, from the alert.")
    team: str | None = Field(description="Team the case was dispatched to.")
    location: GeoPoint
    location_error_m: float
    confidence: float
    bbox: tuple[int, int, int, int] = Field(description="Pixels on the evidence snapshot.")
    evidence: list[EvidenceLink]
    model: str = Field(description="Model name.")
    source: SourceOut
    video_offset_s: VideoOffsetsOut | None
    started_at: datetime
    alerted_at: datetime
    ended_at: datetime | None
    cleared_at: datetime | None = Field(description="When the camera reported the violation gone.")
    due_at: datetime = Field(description="Handling deadline (处置时限).")
    overdue: bool
    filed_at: datetime | None
    dispatched_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    repeat_of: str | None = Field(description="Earlier case of the same category nearby (repeat offence).")


class CaseChangePublic(_Out):
    seq: int = Field(description="Position in the change log (SSE event id).")
    case_id: str
    at: datetime
    kind: Literal["created", "action", "cleared", "reported", "photo"]
    action: Action | None
    from_status: Status | None
    to_status: Status
    actor: str = Field(description="Name of the token that made the change.")
    actor_role: Role
    note: str | None
    team: str | None


class CaseDetail(CasePublic):
    history: list[CaseChangePublic] = Field(description="Audit trail, oldest first.")


class CaseList(_Out):
    items: list[CasePublic]
    total: int = Field(description="Matches before limit/offset.")


class ActionRequest(_In):
    action: Action
    note: str | None = Field(
        default=None, max_length=2000, description="Reason or report; required for reject, reopen."
    )
    team: str | None = Field(
        default=None, pattern=TEAM_PATTERN, description="dispatch only: target team (default: the grid's team)."
    )


# ---- cameras -------------------------------------------------------------------------------------


class CameraStatusIn(_In):
    status: Literal["online", "offline"]
    last_frame_at: IsoDatetime | None = Field(default=None, description="Capture time of the newest frame.")
    frames_dropped: JsonInt = Field(
        default=0, ge=0, le=MAX_COUNT, description="Frames dropped since the worker started."
    )
    # strict: no bool or string for a number (JSON's integers are numbers too).
    analysis_fps: float | None = Field(
        default=None, ge=0, le=1000, strict=True, description="Frames analysed per second."
    )


class CameraPublic(_Out):
    id: str
    status: Literal["online", "offline"]
    last_frame_at: datetime | None
    frames_dropped: int
    analysis_fps: float | None
    updated_at: datetime


class CameraList(_Out):
    items: list[CameraPublic]


# ---- tokens --------------------------------------------------------------------------------------


class TokenCreate(_In):
    role: Role
    name: str = Field(min_length=1, max_length=128)
    team: str | None = Field(default=None, pattern=TEAM_PATTERN, description="Required for officers.")


class TokenPublic(_Out):
    id: str
    name: str
    role: Role
    team: str | None
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The bearer token. Shown once; only its hash is stored.")


class TokenList(_Out):
    items: list[TokenPublic]


class WhoAmI(_Out):
    name: str
    role: Role
    team: str | None


# ---- webhooks ------------------------------------------------------------------------------------


class WebhookCreate(_In):
    team: str = Field(pattern=TEAM_PATTERN)
    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH)]


class WebhookPublic(_Out):
    id: str
    team: str
    url: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    paused_until: datetime | None
    pending: int = Field(description="Deliveries waiting (backlog).")
    failed: int = Field(description="Deliveries that exhausted their retries.")
    delivered: int


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="whsec_… signing secret (Standard Webhooks). Shown once.")


class WebhookList(_Out):
    items: list[WebhookPublic]


class DeliveryPublic(_Out):
    id: str
    message_id: str = Field(description="webhook-id header value.")
    type: str
    case_id: str
    endpoint_id: str
    team: str
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryList(_Out):
    items: list[DeliveryPublic]
    total: int


# ---- exports -------------------------------------------------------------------------------------


class Feature(_Out):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: GeoPoint
    properties: dict[str, Any]


class FeatureCollection(_Out):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]


class Health(_Out):
    status: Literal["ok"]
    database: str


class UploadedEvidence(_Out):
    sha256: str
    size: int
    content_type: str
