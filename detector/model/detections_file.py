"""Reading and writing the detections file (DESIGN §3.3, JSON Lines)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.model.adapters import from_records, to_records
from zones.config import brief
from zones.detections import CLASSES, Detections
from zones.errors import DetectionsFileError

# Bounds keep replayed values inside what the rest of the pipeline can represent: int64 arrays, wall-clock
# datetimes (start + t), pixel geometry. They are far beyond any real video.
MAX_FRAME: Final = 2**53  # also the largest integer a JSON reader in JavaScript keeps exactly
MAX_T_S: Final = 1e9  # about 31 years of video
MAX_PX: Final = 1e6
MAX_FPS: Final = 1000.0
Coordinate = Annotated[float, Field(strict=True, ge=-MAX_PX, le=MAX_PX)]


class _DetectionEntry(BaseModel):
    # Unknown keys are tolerated so files from other tools replay; the keys we read are strict: JSON
    # types as the contract writes them (no "0.9" for a number, no true for 1).
    model_config = ConfigDict(extra="ignore")

    xyxy: tuple[Coordinate, Coordinate, Coordinate, Coordinate] = Field(description="Box corners in pixels.")
    class_: str = Field(alias="class", strict=True, description="One of stall, laundry, structure.")
    conf: float = Field(ge=0, le=1, strict=True, description="Detector confidence.")
    track_id: int | None = Field(
        default=None, ge=0, le=MAX_FRAME, strict=True, description="Tracker id, or null to let the pipeline track."
    )

    @field_validator("class_")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in CLASSES:
            raise ValueError(f"unknown class {brief(value)}; expected one of {list(CLASSES)}")
        return value

    @model_validator(mode="after")
    def _ordered_box(self) -> _DetectionEntry:
        x1, y1, x2, y2 = self.xyxy
        if not all(math.isfinite(v) for v in self.xyxy):
            raise ValueError("xyxy must be finite numbers")
        if x2 < x1 or y2 < y1:
            raise ValueError(f"xyxy {list(self.xyxy)} must satisfy x1 <= x2 and y1 <= y2")
        return self


class _FrameLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    frame: int = Field(ge=0, le=MAX_FRAME, strict=True, description="Frame index in the video.")
    t: float = Field(
        ge=0, le=MAX_T_S, allow_inf_nan=False, strict=True, description="Seconds from the start of the video."
    )
    detections: list[_DetectionEntry] = Field(description="Detections of this frame (may be empty).")


class DetectionsMeta(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    video: str | None = Field(default=None, max_length=2048)
    fps: float | None = Field(default=None, gt=0, le=MAX_FPS, allow_inf_nan=False)
    width: int | None = Field(default=None, gt=0, le=16384)
    height: int | None = Field(default=None, gt=0, le=16384)
    classes: list[str] | None = None
    model: dict[str, Any] | None = None
    thresholds: dict[str, Annotated[float, Field(gt=0, le=1, strict=False)]] | None = Field(
        default=None,
        description="Per-class track thresholds the boxes are to be judged by (their model card's confidence): "
        "the file holds every box above min_score, and an incident fires only once the median of its recent "
        "scores reaches its class's threshold. Absent: every box counts (a file filtered per frame).",
    )
    min_score: dict[str, Annotated[float, Field(gt=0, le=1, strict=False)]] | None = Field(
        default=None, description="Per-class lowest score written (informational)."
    )

    @field_validator("thresholds", "min_score")
    @classmethod
    def _class_names(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            unknown = sorted(set(value) - set(CLASSES))
            if unknown:
                raise ValueError(f"unknown class {brief(unknown[0])}; expected one of {list(CLASSES)}")
        return value

    @field_validator("model")
    @classmethod
    def _model_ref(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # These become the alert records' model reference (name up to 128 characters, SHA-256 hex).
        if value is not None:
            name, sha256 = value.get("name"), value.get("sha256")
            if name is not None and not (isinstance(name, str) and 0 < len(name) <= 128):
                raise ValueError("model.name must be a string of 1 to 128 characters")
            if sha256 is not None and not (isinstance(sha256, str) and len(sha256) <= 64):
                raise ValueError("model.sha256 must be a string of at most 64 characters")
        return value


@dataclass(frozen=True)
class FrameDetections:
    frame: int
    t: float
    detections: Detections


def _pydantic_reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]).replace("class_", "class")
    return f"{where}: {first['msg']}" if where else str(first["msg"])


class DetectionsFile:
    """A validated, streaming reader: ``meta`` up front, then frames in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise DetectionsFileError("file not found", file=str(path))
        self.meta = DetectionsMeta()
        first = self._first_object()
        if first is not None and "meta" in first:
            try:
                self.meta = DetectionsMeta.model_validate(first["meta"])
            except ValidationError as error:
                raise DetectionsFileError(f"line 1: meta.{_pydantic_reason(error)}", file=str(path)) from None

    def _first_object(self) -> dict[str, Any] | None:
        for line_no, line in self._lines():
            return self._parse(line_no, line)
        return None

    def _lines(self) -> Iterator[tuple[int, str]]:
        try:
            with self.path.open("rb") as handle:
                for line_no, raw in enumerate(handle, start=1):
                    try:
                        # utf-8-sig: a byte order mark (written by some Windows tools) is not part of line 1.
                        line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                    except UnicodeDecodeError as error:
                        raise DetectionsFileError(
                            f"line {line_no}: not UTF-8 text ({error.reason} at byte {error.start})",
                            file=str(self.path),
                        ) from None
                    if line.strip():
                        yield line_no, line
        except OSError as error:
            raise DetectionsFileError(f"cannot read: {error.strerror}", file=str(self.path)) from None

    def _parse(self, line_no: int, line: str) -> dict[str, Any]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DetectionsFileError(f"line {line_no}: invalid JSON ({error.msg})", file=str(self.path)) from None
        except ValueError as error:  # e.g. an integer of more than 4300 digits
            raise DetectionsFileError(f"line {line_no}: invalid JSON ({error})", file=str(self.path)) from None
        except RecursionError:
            raise DetectionsFileError(f"line {line_no}: JSON nested too deeply", file=str(self.path)) from None
        if not isinstance(value, dict):
            raise DetectionsFileError(f"line {line_no}: expected a JSON object", file=str(self.path))
        return value

    def frames(self) -> Iterator[FrameDetections]:
        last_t = -math.inf
        for line_no, line in self._lines():
            value = self._parse(line_no, line)
            if "meta" in value:
                if line_no != 1 and last_t != -math.inf:
                    raise DetectionsFileError(f"line {line_no}: meta must be the first line", file=str(self.path))
                continue
            try:
                parsed = _FrameLine.model_validate(value)
            except ValidationError as error:
                raise DetectionsFileError(f"line {line_no}: {_pydantic_reason(error)}", file=str(self.path)) from None
            if parsed.t < last_t:
                raise DetectionsFileError(
                    f"line {line_no}: t {parsed.t} goes back in time (previous {last_t})", file=str(self.path)
                )
            last_t = parsed.t
            records = [entry.model_dump(by_alias=True) for entry in parsed.detections]
            yield FrameDetections(frame=parsed.frame, t=parsed.t, detections=from_records(records))


class DetectionsWriter:
    """Writes §3.3 lines as frames are analysed, flushing so a crash loses at most the current line."""

    def __init__(self, handle: IO[str], meta: dict[str, Any]) -> None:
        self._handle = handle
        handle.write(json.dumps({"meta": meta}, ensure_ascii=False) + "\n")

    def write(self, frame: int, t: float, detections: Detections) -> None:
        line = {"frame": frame, "t": round(t, 4), "detections": to_records(detections)}
        self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._handle.flush()
