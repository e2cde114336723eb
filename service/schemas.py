"""API schemas. Inputs (…Create, …Request, …In) forbid unknown fields; outputs (…Public) carry only
what a client may see: no token hashes, leases, payload hashes, row versions or stream credentials."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    UrlConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from service.core.lifecycle import Action, Mark, Status
from service.core.security import Role
from zones.alert import AwareDatetime, GeoPoint, GridRef, ResponsibleUnit
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


CameraHealthStatus = Literal["online", "offline", "view_moved", "obstructed", "blurred"]
"""DESIGN §3.6: ``view_moved`` (shifted or turned against the reference view), ``obstructed`` (most of the
view covered), ``blurred`` (out of focus)."""


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
    responsible: ResponsibleUnit | None = Field(
        default=None, description="Remind first (§3.7): the zone's responsibility unit, from the alert record."
    )
    remind_first_s: int | None = Field(default=None, description="The zone's remind-first time, from the record.")
    reminded_at: datetime | None = Field(
        default=None, description="When the reminder was sent (written to the outbox)."
    )
    remind_deadline: datetime | None = Field(
        default=None, description="reminded_at + remind_first_s: until then the unit may clear it itself."
    )
    mark: Mark | None = Field(
        default=None,
        description="reminder_ignored: still there at the deadline; repeat: the place had a reminder within "
        "STREETWATCH_REMIND_REPEAT_DAYS, so none was sent.",
    )
    camera_health: CameraHealthStatus | None = Field(
        default=None,
        description="The camera's status when the incident opened, when it was not online: judge the case with care.",
    )


def integral_floats_as_ints(value: Any) -> Any:
    """JSON with every integral float as an int: JSON Schema counts 361.0 as an integer, pydantic's strict
    mode would not, so bodies are normalised before strict validation."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_floats_as_ints(item) for item in value]
    return value


RejectReason = Literal["legal_awning", "parked_vehicle", "person", "shadow", "other"]
"""Why an operator rejected an AI report as a false alarm (误报原因)."""
REJECT_REASONS: Final[tuple[RejectReason, ...]] = get_args(RejectReason)
MAX_LABEL_PX: Final = 100_000
"""Largest pixel coordinate a review label may carry: far beyond any camera frame."""

LabelPx = Annotated[
    float,
    Field(ge=0, le=MAX_LABEL_PX, allow_inf_nan=False, strict=True, description="Pixels, 0 … 100000."),
]
"""One coordinate of a review label: a finite JSON number (never a bool or a string)."""


class ReviewLabel(_In):
    """The operator's corrected box and class, in pixels of the case's clean snapshot (``snapshot_clean``)."""

    bbox: tuple[LabelPx, LabelPx, LabelPx, LabelPx] = Field(
        description="[x1, y1, x2, y2] in pixels of the clean snapshot; 0 <= x1 < x2, 0 <= y1 < y2, at most 100000."
    )
    object_class: ObjectClass = Field(description="What the box holds.")

    @model_validator(mode="after")
    def _box_has_area(self) -> ReviewLabel:
        x1, y1, x2, y2 = self.bbox
        if not (x1 < x2 and y1 < y2):
            raise PydanticCustomError("bbox_empty", "bbox must satisfy x1 < x2 and y1 < y2")
        return self


class ReviewLabelPublic(_Out):
    bbox: tuple[float, float, float, float] = Field(description="[x1, y1, x2, y2] in pixels of the clean snapshot.")
    object_class: ObjectClass = Field(description="What the box holds.")


class CaseChangePublic(_Out):
    seq: int = Field(description="Position in the change log (SSE event id).")
    case_id: str
    at: datetime
    kind: Literal["created", "action", "cleared", "reported", "photo", "escalated"] = Field(
        description="escalated: the reminder job reported a case whose reminder ran out (§3.7)."
    )
    action: Action | None
    from_status: Status | None
    to_status: Status
    actor: str = Field(description="Name of the token that made the change (or of the service's job).")
    actor_role: Role | Literal["system"] = Field(description="The token's role; system for the service's own jobs.")
    note: str | None
    team: str | None
    label: ReviewLabelPublic | None = Field(
        default=None, description="file only: the operator's corrected box and class (pixels of snapshot_clean)."
    )
    reason: RejectReason | None = Field(default=None, description="reject only: why the report was a false alarm.")


class UnitCaseRef(_Out):
    id: str
    status: Status
    category: Category
    alerted_at: datetime
    mark: Mark | None


class UnitRecord(_Out):
    """What a responsibility unit did over the last days: shown beside a case of that unit."""

    unit: str
    name: str = Field(description="The unit's display name (the latest case's).")
    days: float = Field(description="The window: STREETWATCH_REMIND_REPEAT_DAYS before now.")
    reminded: int = Field(description="Cases in the window that got a reminder.")
    self_rectified: int = Field(description="… that the unit cleared in time.")
    reminder_ignored: int = Field(description="… still there at the deadline.")
    repeat: int = Field(description="Cases not reminded because the place had a reminder already.")
    cases: list[UnitCaseRef] = Field(description="The unit's cases in the window, newest first (at most 50).")


class CaseDetail(CasePublic):
    history: list[CaseChangePublic] = Field(description="Audit trail, oldest first.")
    unit_record: UnitRecord | None = Field(
        default=None, description="The responsibility unit's last days (cases with a responsible unit only)."
    )


class CaseList(_Out):
    items: list[CasePublic]
    total: int = Field(description="Matches before limit/offset.")


class ActionRequest(_In):
    action: Action = Field(description="The lifecycle step to take.")
    note: str | None = Field(
        default=None,
        max_length=2000,
        description="Reason or report; required for reopen, and for reject unless a reason is given.",
    )
    team: str | None = Field(
        default=None, pattern=TEAM_PATTERN, description="dispatch only: target team (default: the grid's team)."
    )
    label: ReviewLabel | None = Field(
        default=None,
        description="file only: the corrected box (pixels of the case's snapshot_clean) and class, for training.",
    )
    reason: RejectReason | None = Field(default=None, description="reject only: why the report is a false alarm.")

    @model_validator(mode="after")
    def _review_fields_fit_the_action(self) -> ActionRequest:
        if self.label is not None and self.action != "file":
            raise PydanticCustomError("label_not_allowed", "label is only accepted with the file action")
        if self.reason is not None and self.action != "reject":
            raise PydanticCustomError("reason_not_allowed", "reason is only accepted with the reject action")
        return self


# ---- stats ---------------------------------------------------------------------------------------


class PrecisionRow(_Out):
    camera_id: str = Field(description="Camera that raised the reports.")
    category: Category = Field(description="Violation category.")
    week: str = Field(
        pattern=r"^[0-9]{4}-W[0-9]{2}$",
        description="ISO 8601 week (UTC) of the verdicts, e.g. 2026-W48; pending reports count in the week "
        "they were alerted.",
    )
    filed: int = Field(ge=0, description="Cases whose verdict (latest file/reject) was file (立案) that week.")
    rejected: int = Field(ge=0, description="Cases whose verdict was reject (误报) that week.")
    pending: int = Field(ge=0, description="Reports alerted that week and still awaiting review (reported).")
    precision: float | None = Field(
        ge=0, le=1, description="filed / (filed + rejected); null when nothing was reviewed."
    )


class PrecisionList(_Out):
    items: list[PrecisionRow] = Field(description="Ordered by camera, category, week.")


# ---- cameras -------------------------------------------------------------------------------------


class CameraStatusIn(_In):
    status: CameraHealthStatus
    last_error: str | None = Field(default=None, max_length=500, description="Why the stream last failed, if it did.")
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
    status: CameraHealthStatus
    last_error: str | None = Field(default=None, description="Why the stream last failed, if it did.")
    last_frame_at: datetime | None
    frames_dropped: int
    analysis_fps: float | None
    updated_at: datetime


class CameraList(_Out):
    items: list[CameraPublic]


class CameraHealthEvent(_Out):
    """A camera's status changed: the ``camera.health`` SSE event and webhook data."""

    camera_id: str
    status: CameraHealthStatus
    previous: CameraHealthStatus | None = Field(description="The status before (None: first report).")
    at: datetime
    last_error: str | None


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


WebhookEvent = Literal["case.dispatched", "case.updated", "case.reminder"]
"""Message types of the outbox (DESIGN §3.6, §3.7)."""
WEBHOOK_EVENTS: Final[tuple[WebhookEvent, ...]] = get_args(WebhookEvent)
DEFAULT_WEBHOOK_EVENTS: Final[tuple[WebhookEvent, ...]] = ("case.dispatched", "case.updated")
"""What an endpoint registered without ``events`` gets: an officers' dispatch system, as before reminders."""


def _unique_events(events: list[WebhookEvent] | None) -> list[WebhookEvent] | None:
    return None if events is None else list(dict.fromkeys(events))


class WebhookCreate(_In):
    team: str = Field(pattern=TEAM_PATTERN)
    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_LENGTH)]
    events: Annotated[list[WebhookEvent] | None, AfterValidator(_unique_events)] = Field(
        default=None,
        min_length=1,
        max_length=len(WEBHOOK_EVENTS),
        description="Message types this endpoint gets (case.dispatched, case.updated, case.reminder); "
        "default: case.dispatched and case.updated.",
    )


class WebhookPublic(_Out):
    id: str
    team: str
    url: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    paused_until: datetime | None
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS), description="Message types this endpoint gets."
    )
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
    case_id: str | None = Field(description="The case the message is about (None: a camera.health message).")
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


# ---- camera configs and snapshots ----------------------------------------------------------------

CAMERA_ID_PATTERN: Final = r"^[a-z0-9-]{1,64}$"
MAX_CONFIG_VERSION: Final = 2**31 - 1
"""Versions are INTEGER columns; a larger one in a query or If-Match could never match (and not bind)."""


class CameraConfigPublic(_Out):
    """One stored version of a camera's config."""

    camera_id: str = Field(description="The camera's id (equals `config.id`).")
    version: int = Field(ge=1, description="1 for the first config stored, then one more per change.")
    config: dict[str, Any] = Field(
        description="The camera config (DESIGN §3.2) as JSON, validated and normalised: every field the schema "
        "knows, defaults included, in the schema's order; absent optional fields are left out."
    )
    updated_at: datetime = Field(description="When this version was stored.")
    updated_by: str = Field(description="Name of the token that stored it.")


class CameraConfigVersionPublic(_Out):
    version: int = Field(ge=1)
    updated_at: datetime
    updated_by: str = Field(description="Name of the token that stored it.")


class CameraConfigHistory(_Out):
    items: list[CameraConfigVersionPublic] = Field(description="Newest first.")


class CameraConfigRef(_Out):
    camera_id: str
    version: int = Field(ge=1, description="The current version.")
    updated_at: datetime = Field(description="When the current version was stored.")


class CameraConfigRefList(_Out):
    items: list[CameraConfigRef] = Field(description="Every camera with a stored config, by camera id.")


class CameraSnapshotPublic(_Out):
    camera_id: str
    content_type: Literal["image/jpeg", "image/png"]
    size: int = Field(description="Bytes.")
    sha256: str
    captured_at: datetime = Field(description="When the frame was captured (the uploader's clock).")


# ---- camera setup: preview of a camera config drawn on a snapshot, cameras on the map -------------

LonLat = tuple[float, float]
"""[lon, lat], WGS84 degrees (GeoJSON order)."""


class ConfigPreviewRequest(_In):
    config: dict[str, Any] = Field(
        description="A camera config (DESIGN §3.2) as JSON; it may be unfinished: its problems are reported, "
        "not refused, and whatever can be computed is."
    )
    width: JsonInt = Field(ge=1, le=100_000, description="Width (pixels) of the snapshot the config is drawn on.")
    height: JsonInt = Field(ge=1, le=100_000, description="Height (pixels) of that snapshot.")


class ConfigProblem(_Out):
    loc: list[str | int] = Field(description='Path of the offending field in the config, e.g. ["zones", 0, "polygon"].')
    field: str = Field(description="The same path written as in the CLI's messages: zones[0].polygon.")
    msg: str


class PreviewPoint(_Out):
    index: int = Field(description="Index in calibration.points.")
    lonlat: LonLat = Field(description="Where the point was placed (typed or picked on the map).")
    projected: LonLat | None = Field(
        description="Where the homography fitted on all points places the point's pixel; null without a fit."
    )
    residual_m: float | None = Field(description="Metres between lonlat and projected (0 with exactly 4 points).")
    reprojection_error_m: float | None = Field(
        description="Leave-one-out error: metres between lonlat and where the homography fitted on the other "
        "points places the pixel (what calibration.max_reprojection_error_m limits); null with fewer than 5 points."
    )
    location_error_m: float | None = Field(description="Location error bound of an alert at this pixel (metres).")


class PreviewOutline(_Out):
    index: int
    name: str | None = Field(description="Zone name (null for exclude masks).")
    outline: list[LonLat] | None = Field(
        description="The outline on the ground, [lon, lat] vertices in order; null when it cannot be placed "
        "(no calibration, invalid polygon, wholly beyond the horizon)."
    )
    clipped: bool = Field(description="Part of the polygon lies at or beyond the horizon and was cut off.")
    location_error_m: float | None = Field(description="Location error of an alert inside the zone (metres).")
    max_location_error_m: float | None = Field(description="Largest location error along the outline (metres).")


class PreviewCamera(_Out):
    location: LonLat | None = Field(description="config.location, when valid.")
    bearing_deg: float | None = Field(
        description="View direction, degrees clockwise from north, derived from the calibration; null without one."
    )


class ConfigPreview(_Out):
    calibrated: bool = Field(description="The calibration holds (it would be accepted) and was used.")
    problems: list[ConfigProblem] = Field(description="What saving this config would refuse, field by field.")
    camera: PreviewCamera
    points: list[PreviewPoint]
    zones: list[PreviewOutline]
    exclude: list[PreviewOutline]
    noise_px: float | None = Field(description="Estimated pixel noise of the calibration points.")
    location_error_m: float | None = Field(
        description="The resulting location error: the largest over the zones (an alert inside each), else the "
        "median over the calibration points."
    )
    grid: list[list[tuple[float, float]]] = Field(
        description="Ground grid lines (every grid_step_m metres east and north) mapped back into the snapshot: "
        "polylines of [x, y] snapshot pixels, for checking the calibration by eye."
    )
    grid_step_m: float | None = Field(description="Spacing of those grid lines in metres.")


class MapFeature(_Out):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] = Field(description="GeoJSON Point (camera) or Polygon (zone), [lon, lat].")
    properties: dict[str, Any]


class MapFeatureCollection(_Out):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[MapFeature]
