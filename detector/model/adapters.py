"""The only ways model output and replayed files become ``Detections`` (DESIGN §2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from zones.detections import CLASS_IDS, CLASSES, MODEL_CLASSES, Detections
from zones.errors import ModelError

UNMAPPED = -1
XYXY_DECIMALS = 1
CONFIDENCE_DECIMALS = 4


def class_lookup(model_names: Mapping[int, str], class_map: Mapping[str, str] | None = None) -> npt.NDArray[np.int64]:
    """Map a model's class indices to ours (``-1`` for classes we ignore).

    Names match ours directly; ``class_map`` (from the camera config) maps foreign names, e.g.
    ``{"vendor_cart": "stall"}``. A model that cannot supply all three of our classes is refused.
    """
    class_map = dict(class_map or {})
    unknown_targets = sorted(set(class_map.values()) - set(MODEL_CLASSES))
    if unknown_targets:
        raise ModelError(f"class_map maps to unknown classes {unknown_targets}; ours are {list(MODEL_CLASSES)}")
    size = max(model_names, default=-1) + 1
    lookup = np.full(size, UNMAPPED, dtype=np.int64)
    for index, name in model_names.items():
        ours = class_map.get(name, name)
        if ours in MODEL_CLASSES:
            lookup[index] = CLASS_IDS[ours]
    missing = [name for name in MODEL_CLASSES if CLASS_IDS[name] not in set(lookup.tolist())]
    if missing:
        raise ModelError(
            f"the model has no class for {missing} (its classes: {sorted(model_names.values())}); "
            "add a class_map to the camera config saying which model class is which"
        )
    return lookup


def from_ultralytics(result: Any, lookup: npt.NDArray[np.int64]) -> Detections:
    """Convert one ``ultralytics.engine.results.Results`` into our classes, dropping foreign classes."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty()
    # Quantised exactly as the detections file stores them, so replaying `streetwatch detect`'s
    # file reproduces what the live path decided, to the pixel.
    xyxy = np.round(boxes.xyxy.cpu().numpy().astype(np.float64), XYXY_DECIMALS)
    confidence = np.round(boxes.conf.cpu().numpy().astype(np.float64), CONFIDENCE_DECIMALS)
    model_class = boxes.cls.cpu().numpy().astype(np.int64)
    ours = lookup[np.clip(model_class, 0, len(lookup) - 1)]
    keep = ours != UNMAPPED
    tracker_id = None
    if getattr(boxes, "is_track", False) and boxes.id is not None:
        tracker_id = boxes.id.cpu().numpy().astype(np.int64)[keep]
    return Detections(xyxy=xyxy[keep], confidence=confidence[keep], class_id=ours[keep], tracker_id=tracker_id)


def from_records(records: Sequence[Mapping[str, Any]]) -> Detections:
    """Build detections from already-validated §3.3 detection entries (``xyxy``, ``class``, ``conf``, ``track_id``)."""
    if not records:
        return Detections.empty()
    track_ids = [record.get("track_id") for record in records]
    tracked = all(track_id is not None for track_id in track_ids)
    return Detections(
        xyxy=np.array([record["xyxy"] for record in records], dtype=np.float64),
        confidence=np.array([record["conf"] for record in records], dtype=np.float64),
        class_id=np.array([CLASS_IDS[record["class"]] for record in records], dtype=np.int64),
        tracker_id=np.array(track_ids, dtype=np.int64) if tracked else None,
    )


def to_records(detections: Detections) -> list[dict[str, Any]]:
    """The §3.3 ``detections`` list of one frame."""
    track_ids = detections.tracker_id
    return [
        {
            "xyxy": [round(float(v), XYXY_DECIMALS) for v in detections.xyxy[i]],
            "class": CLASSES[int(detections.class_id[i])],
            "conf": round(float(detections.confidence[i]), CONFIDENCE_DECIMALS),
            "track_id": None if track_ids is None or track_ids[i] < 0 else int(track_ids[i]),
        }
        for i in range(len(detections))
    ]
