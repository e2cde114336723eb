"""What looks at the frames in live mode: the one model instance (``ModelAnalyser``), or a detections file
replayed instead of it (``ReplayAnalyser``, for tests and demos); either analyses every camera's ready
frame as one batch."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from zones.alert import ModelRef
from zones.detections import Detections


@dataclass(frozen=True)
class AnalysisItem:
    camera_id: str
    t: float
    image: npt.NDArray[np.uint8]


class Analyser(Protocol):
    model: ModelRef
    track_thresholds: dict[str, float] | None
    """Per-class track thresholds of the detections (``detector.incidents.track_score``); None: each counts."""
    crop_model: Any
    """What judges the stationary-object finder's regions on crops (``detector.model.obstructions``), if any."""

    def analyse(self, items: Sequence[AnalysisItem]) -> list[Detections]: ...


class ModelAnalyser:
    """The one model instance, run on every camera's ready frame as one batch."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.crop_model = detector
        self.model = ModelRef(name=detector.name, sha256=detector.sha256)
        self.track_thresholds: dict[str, float] | None = detector.track_thresholds

    def analyse(self, items: Sequence[AnalysisItem]) -> list[Detections]:
        result: list[Detections] = self.detector.predict([item.image for item in items])
        return result


class ReplayAnalyser:
    """Detections from a file (§3.3) instead of the model, keyed by the camera's engine seconds.

    At time ``t`` the detections of the last line with ``line.t <= t`` are in effect (a step
    function: a file lists an empty line where an object goes away). The same file serves every
    camera of the run. For tests and demos without weights; the rest of the path is the real one.
    """

    crop_model = None  # a replay has no model: every region that keeps still is an ``object``

    def __init__(self, path: Path) -> None:
        from detector.model.detections_file import DetectionsFile

        replay = DetectionsFile(path)
        self.times: list[float] = []
        self.detections: list[Detections] = []
        for entry in replay.frames():
            self.times.append(entry.t)
            self.detections.append(entry.detections)
        meta_model = replay.meta.model or {}
        self.track_thresholds = replay.meta.thresholds
        self.model = ModelRef(
            name=str(meta_model.get("name") or "replay"), sha256=str(meta_model.get("sha256") or "")[:64]
        )

    def at(self, t: float) -> Detections:
        index = bisect.bisect_right(self.times, t + 1e-9) - 1
        return self.detections[index] if index >= 0 else Detections.empty()

    def analyse(self, items: Sequence[AnalysisItem]) -> list[Detections]:
        return [self.at(item.t) for item in items]
