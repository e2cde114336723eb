"""Nested same-class boxes are parts of one object; neighbours and other classes are kept."""

from __future__ import annotations

import numpy as np
import pytest

from detector.model.postprocess import drop_nested
from zones.detections import Detections


@pytest.mark.parametrize(
    ("boxes", "classes", "confidences", "kept"),
    [
        # a laundry line and two garments inside it (the sample clip's case)
        ([[206, 291, 362, 409], [292, 290, 363, 352], [213, 307, 291, 414]], [1, 1, 1], [0.85, 0.55, 0.38], [0]),
        # two stalls side by side, touching: both stay
        ([[100, 100, 200, 200], [200, 100, 300, 200]], [0, 0], [0.9, 0.9], [0, 1]),
        # a small stall in front of a big structure: other class, both stay
        ([[0, 0, 400, 400], [100, 100, 150, 150]], [2, 0], [0.9, 0.9], [0, 1]),
        # a faint big box does not swallow a sure small one
        ([[0, 0, 400, 400], [100, 100, 150, 150]], [0, 0], [0.3, 0.9], [0, 1]),
        # only 60 % inside: a neighbour overlapping, not a part
        ([[0, 0, 100, 100], [60, 0, 160, 100]], [0, 0], [0.9, 0.8], [0, 1]),
        ([], [], [], []),
    ],
)
def test_drop_nested(boxes: list[list[float]], classes: list[int], confidences: list[float], kept: list[int]) -> None:
    detections = Detections(
        xyxy=np.array(boxes, dtype=float).reshape(-1, 4),
        confidence=np.array(confidences, dtype=float),
        class_id=np.array(classes),
        tracker_id=np.arange(len(boxes)),
    )
    result = drop_nested(detections)
    assert result.tracker_id is not None
    assert result.tracker_id.tolist() == kept
