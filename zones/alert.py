"""The alert record (DESIGN §3.4): one JSON object per incident event.

It is the line format of ``alerts.jsonl`` and the body pushed to ``POST /api/v1/alerts``; the
detector builds it and the service validates it with this same schema.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from zones.categories import Category, ObjectClass

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must carry a UTC offset, e.g. 2026-11-27T09:14:03+08:00")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


CameraHealth = Literal["offline", "view_moved", "obstructed", "blurred"]
"""A camera status other than ``online`` (DESIGN §3.6): what an incident that opened then is marked with."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class VideoOffsets(_Strict):
    start: float = Field(ge=0, description="Seconds from the start of the video when the object was first seen.")
    alert: float | None = Field(default=None, ge=0, description="Seconds from the start when the rule fired.")
    end: float | None = Field(
        default=None, ge=0, description="Seconds from the start when it was last seen, once closed."
    )


class GeoPoint(_Strict):
    type: Literal["Point"] = Field(description="GeoJSON geometry type.")
    coordinates: tuple[
        Annotated[float, Field(ge=-180, le=180)],
        Annotated[float, Field(ge=-90, le=90)],
    ] = Field(description="[longitude, latitude] in WGS84 (GeoJSON order).")


class GridRef(_Strict):
    code: str = Field(min_length=1, max_length=64, description="单元网格 code of the grid cell.")
    team: str = Field(min_length=1, max_length=64, description="Team responsible for the cell.")


# A phone number is personal data of the shopkeeper and no id a notifier should key on (DESIGN §3.2):
# mainland mobiles (1[3-9] + 9 digits), landlines with an area code (0xx(x)-xxxxxxx(x)), either with
# +86 / 0086 in front, and any other "+" international number. Digits around the match must not be
# digits, so a 12-digit grid code such as 320102001001 is not taken for a phone number.
_PHONE = re.compile(
    r"(?<![0-9])(?:(?:\+|00)86[ -]?)?(?:1[3-9][0-9](?:[ -]?[0-9]{4}){2}|0[0-9]{2,3}[ -]?[0-9]{7,8})(?![0-9])"
    r"|\+[0-9][0-9 ()-]{6,}[0-9]"
)


def _unit_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if _PHONE.search(value):
        raise ValueError("looks like a phone number; give the unit's id that the notifier knows, never a phone number")
    return value


class ResponsibleUnit(_Strict):
    """The 门前三包 unit answerable for a zone (DESIGN §3.2, §3.7): who gets the reminder."""

    unit: Annotated[str, AfterValidator(_unit_text)] = Field(
        min_length=1, max_length=64, description="Id of the unit that the city's notifier knows, e.g. shop-0127."
    )
    name: Annotated[str, AfterValidator(_unit_text)] = Field(
        min_length=1, max_length=128, description="Display name, e.g. 张记水果店."
    )


def _is_none(value: object) -> bool:
    return value is None


REMIND_FIRST_MAX_S = 86400
"""The longest a unit may be given to clear a violation itself: one day."""


class EvidenceItem(_Strict):
    kind: str = Field(
        min_length=1,
        max_length=32,
        description="snapshot | snapshot_clean | clip | snapshot_after (after-evidence on close).",
    )
    path: str = Field(min_length=1, max_length=512, description="Path relative to the audit directory, or a URL.")
    sha256: str = Field(pattern=_SHA256.pattern, description="Lower-case hex SHA-256 of the file.")


class ModelRef(_Strict):
    name: str = Field(min_length=1, max_length=128, description="Model name, e.g. streetwatch-v1.")
    sha256: str = Field(max_length=64, description="SHA-256 of the weights file ('' when replayed without one).")


class SourceRef(_Strict):
    uri: str = Field(max_length=2048, description="Video file or stream the frame came from.")
    frame: int = Field(ge=0, description="Frame index of the best (evidence) frame.")


class AlertRecord(_Strict):
    """One violation event; ``id`` is stable for the incident and with ``event`` forms the idempotency key."""

    id: UUID = Field(description="UUID of the incident, the same for its opened and closed events.")
    event: Literal["violation.opened", "violation.closed"] = Field(description="Which transition this record reports.")
    camera_id: str = Field(pattern=r"^[a-z0-9-]{1,64}$", description="Camera id from its config.")
    category: Category = Field(description="Violation category.")
    object_class: ObjectClass = Field(description="Detected object class.")
    zone: str = Field(min_length=1, max_length=128, description="Zone name within the camera.")
    started_at: AwareDatetime = Field(description="First seen in the zone.")
    alerted_at: AwareDatetime = Field(description="When the rule fired (started_at + dwell).")
    ended_at: AwareDatetime | None = Field(default=None, description="Last seen, once closed.")
    video_offset_s: VideoOffsets | None = Field(default=None, description="Offsets into the video (audits only).")
    confidence: float = Field(ge=0, le=1, description="Detector confidence on the best frame.")
    bbox: tuple[int, int, int, int] = Field(description="[x1, y1, x2, y2] in pixels on the best frame.")
    location: GeoPoint = Field(description="Where the object stands, GeoJSON point [lon, lat].")
    location_error_m: float = Field(ge=0, le=100_000, description="Honest bound of the location error in metres.")
    grid: GridRef | None = Field(default=None, description="Grid cell and responsible team.")
    # Optional fields added after the first release stay out of the JSON when unset, so that a record
    # without them serialises byte for byte as before (the service's idempotency digest, alerts.jsonl).
    responsible: ResponsibleUnit | None = Field(
        default=None,
        exclude_if=_is_none,
        description="The zone's responsibility unit (§3.7), copied from the camera config.",
    )
    remind_first_s: int | None = Field(
        default=None,
        ge=1,
        le=REMIND_FIRST_MAX_S,
        exclude_if=_is_none,
        description="The zone's remind-first time (§3.7): live records remind the unit and wait this long.",
    )
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=16, description="Evidence files.")
    model: ModelRef = Field(description="Model that produced the detections.")
    source: SourceRef = Field(description="Video and frame of the best detection.")
    # Unset, it stays out of the JSON, so that a record without it serialises byte for byte as before.
    camera_health: CameraHealth | None = Field(
        default=None,
        exclude_if=_is_none,
        description="The camera's status when the incident opened, only when it was not online (DESIGN §3.6).",
    )

    def to_json_line(self) -> str:
        return self.model_dump_json()
