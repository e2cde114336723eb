"""The one frame-level detection type that travels through the pipeline (DESIGN §2).

Parallel numpy arrays validated at construction, in the spirit of supervision's ``Detections``.
Model outputs enter through adapters in ``detector.model.adapters``; everything downstream (zones,
incidents, service) works on this type only, so it can be tested on replayed detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

MODEL_CLASSES: Final[tuple[str, ...]] = ("stall", "laundry", "structure")
"""The classes the detector model is trained on and outputs."""

CLASSES: Final[tuple[str, ...]] = (*MODEL_CLASSES, "object")
"""Our object classes; ``class_id`` indexes this tuple. ``object`` (class id 3) is what the stationary-object
finder reports: something new that stays and that the model does not call one of ``MODEL_CLASSES``."""

CLASS_IDS: Final[dict[str, int]] = {name: i for i, name in enumerate(CLASSES)}

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one frame as parallel arrays.

    xyxy: (N, 4) pixel boxes, x1 <= x2 and y1 <= y2.
    confidence: (N,) in [0, 1].
    class_id: (N,) indices into ``CLASSES``.
    tracker_id: (N,) track ids, or None when the detections are untracked.
    since: (N,) frame time from which each object has stood where it is, where something knows it (the
        stationary-object finder, which sees an object put down before it can tell that it stays); NaN
        where nothing does, None when nothing does for any of them.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    tracker_id: IntArray | None = None
    since: FloatArray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float64).reshape(-1, 4)
        confidence = np.asarray(self.confidence, dtype=np.float64).reshape(-1)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        n = len(xyxy)
        if len(confidence) != n or len(class_id) != n:
            raise ValueError(
                f"parallel arrays differ in length: xyxy {n}, confidence {len(confidence)}, class_id {len(class_id)}"
            )
        if not np.all(np.isfinite(xyxy)):
            raise ValueError("xyxy holds non-finite coordinates")
        if np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1]):
            raise ValueError("xyxy boxes must have x1 <= x2 and y1 <= y2")
        if np.any(~np.isfinite(confidence)) or np.any((confidence < 0) | (confidence > 1)):
            raise ValueError("confidence must lie in [0, 1]")
        if np.any((class_id < 0) | (class_id >= len(CLASSES))):
            raise ValueError(f"class_id must index {CLASSES}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "class_id", class_id)
        if self.tracker_id is not None:
            tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
            if len(tracker_id) != n:
                raise ValueError(f"tracker_id has {len(tracker_id)} entries for {n} boxes")
            object.__setattr__(self, "tracker_id", tracker_id)
        if self.since is not None:
            since = np.asarray(self.since, dtype=np.float64).reshape(-1)
            if len(since) != n:
                raise ValueError(f"since has {len(since)} entries for {n} boxes")
            if np.any(np.isinf(since)):
                raise ValueError("since must be a frame time or NaN (unknown)")
            object.__setattr__(self, "since", since)

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4)),
            confidence=np.zeros(0),
            class_id=np.zeros(0, dtype=np.int64),
            tracker_id=None,
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Detections]) -> Detections:
        """One frame's detections from several sources; tracked only when every part is."""
        if not parts:
            return cls.empty()
        tracked = all(p.tracker_id is not None for p in parts)
        timed = any(p.since is not None for p in parts)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            tracker_id=np.concatenate([p.tracker_id for p in parts if p.tracker_id is not None]) if tracked else None,
            since=np.concatenate([p.since if p.since is not None else np.full(len(p), np.nan) for p in parts])
            if timed
            else None,
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice) -> Detections:
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            since=None if self.since is None else self.since[index],
        )

    @property
    def class_names(self) -> list[str]:
        return [CLASSES[i] for i in self.class_id]

    def anchors(self, anchor: str) -> FloatArray:
        """(N, 2) anchor points: ``bottom_center`` or ``center`` of each box."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        if anchor == "bottom_center":
            y = self.xyxy[:, 3]
        elif anchor == "center":
            y = (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2
        else:
            raise ValueError(f"unknown anchor {anchor!r}")
        return np.stack([x, y], axis=1)

    @property
    def area(self) -> FloatArray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """(M, K) IoU of boxes ``a`` (M, 4) against ``b`` (K, 4)."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou
