"""Clean-ups between the model and the incident engine that apply to live and replayed detections alike."""

from __future__ import annotations

import numpy as np

from zones.detections import Detections

NESTED_FRACTION = 0.8
"""A box lying at least this much inside a larger box of the same class is a part of that object."""
CONTAINER_MIN_RELATIVE_CONFIDENCE = 0.5
"""The larger box must be at least half as confident, so a faint spurious box cannot swallow a sure one."""


def drop_nested(detections: Detections) -> Detections:
    """Drop boxes that are parts of a larger same-class box (a shirt inside the detected laundry line).

    YOLO's NMS keeps such pairs because their IoU is low; left in, each part would become an
    incident of its own at the same place.
    """
    n = len(detections)
    if n < 2:
        return detections
    boxes = detections.xyxy
    top_left = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area = detections.area
    inside = overlap / np.maximum(area[:, None], 1e-9)  # inside[i, j]: share of box i within box j
    same_class = detections.class_id[:, None] == detections.class_id[None, :]
    larger = area[None, :] > area[:, None]
    confident = detections.confidence[None, :] >= CONTAINER_MIN_RELATIVE_CONFIDENCE * detections.confidence[:, None]
    nested = ((inside >= NESTED_FRACTION) & same_class & larger & confident).any(axis=1)
    return detections if not nested.any() else detections[~nested]
