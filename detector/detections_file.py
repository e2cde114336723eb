"""Reading and writing the detections file (DESIGN §3.3, JSON Lines)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.adapters import from_records, to_records
from zones.detections import CLASSES, Detections
from zones.errors import DetectionsFileError


class _DetectionEntry(BaseModel):
    # Unknown keys are tolerated so files from other tools replay; the keys we read are strict.
    model_config = ConfigDict(extra="ignore")

    xyxy: tuple[float, float, float, float] = Field(description="Box corners in pixels.")
    class_: str = Field(alias="class", description="One of stall, laundry, structure.")
    conf: float = Field(ge=0, le=1, description="Detector confidence.")
    track_id: int | None = Field(default=None, description="Tracker id, or null to let the pipeline track.")

    @field_validator("class_")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in CLASSES:
            raise ValueError(f"unknown class {value!r}; expected one of {list(CLASSES)}")
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

    frame: int = Field(ge=0, description="Frame index in the video.")
    t: float = Field(ge=0, allow_inf_nan=False, description="Seconds from the start of the video.")
    detections: list[_DetectionEntry] = Field(description="Detections of this frame (may be empty).")


class DetectionsMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    video: str | None = None
    fps: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    width: int | None = Field(default=None, gt=0, le=16384)
    height: int | None = Field(default=None, gt=0, le=16384)
    classes: list[str] | None = None
    model: dict[str, Any] | None = None


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
            with self.path.open(encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, start=1):
                    if line.strip():
                        yield line_no, line
        except UnicodeDecodeError as error:
            raise DetectionsFileError(f"not UTF-8 text ({error.reason})", file=str(self.path)) from None
        except OSError as error:
            raise DetectionsFileError(f"cannot read: {error.strerror}", file=str(self.path)) from None

    def _parse(self, line_no: int, line: str) -> dict[str, Any]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DetectionsFileError(f"line {line_no}: invalid JSON ({error.msg})", file=str(self.path)) from None
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
                raise DetectionsFileError(
                    f"line {line_no}: {_pydantic_reason(error)}", file=str(self.path)
                ) from None
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
