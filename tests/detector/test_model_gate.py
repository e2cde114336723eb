"""The detection metric gate: the shipped default model, at its card's thresholds, on a fixed slice of the
held-out renders must not find less (recall) or raise more false boxes (precision, distractor-only scenes)
than recorded in ``golden/model_gate.json``.

After a deliberate change of the model or its thresholds, re-record with
``python -m tests.detector.test_model_gate`` and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from detector.model import Detector, default_card
from detector.training.dataset import NEGATIVES_SEED0, TEST_SEED0, write_dataset, write_negatives
from zones.detections import CLASSES, Detections

GOLDEN = Path(__file__).parent / "golden" / "model_gate.json"
TEST_IMAGES = 60
NEGATIVE_IMAGES = 40
MIN_IOU = 0.5
# One box either way per class: another CPU or inference backend may round a borderline box differently.
SLACK_BOXES = 1

pytestmark = pytest.mark.slow


def _iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter), dtype=np.float64)


def _truth(label_file: Path, width: int, height: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    rows = np.loadtxt(label_file, ndmin=2) if label_file.stat().st_size else np.zeros((0, 5))
    centre, size = rows[:, 1:3] * (width, height), rows[:, 3:5] * (width, height)
    return rows[:, 0].astype(np.int64), np.hstack([centre - size / 2, centre + size / 2])


def match_counts(found: Detections, truth_class: npt.NDArray[np.int64], truth_xyxy: npt.NDArray[np.float64]) -> Any:
    """(true positives, false positives, missed) per class: greedy by confidence at IoU ≥ MIN_IOU."""
    counts = np.zeros((len(CLASSES), 3), dtype=np.int64)
    for class_id in range(len(CLASSES)):
        mine = found[found.class_id == class_id]
        mine = mine[np.argsort(-mine.confidence, kind="stable")]
        theirs = truth_xyxy[truth_class == class_id]
        taken = np.zeros(len(theirs), dtype=bool)
        overlaps = _iou(mine.xyxy, theirs) if len(mine) and len(theirs) else np.zeros((len(mine), len(theirs)))
        for row in overlaps:
            free = np.where(~taken & (row >= MIN_IOU))[0]
            if len(free):
                taken[free[np.argmax(row[free])]] = True
                counts[class_id, 0] += 1
            else:
                counts[class_id, 1] += 1
        counts[class_id, 2] += int((~taken).sum())
    return counts


def measure(workdir: Path) -> dict[str, Any]:
    """Render the gate's images into ``workdir`` and count the default model's hits and misses."""
    workers = min(2, os.cpu_count() or 1)
    write_dataset(
        workdir,
        train_seeds=range(0),
        val_seeds=range(0),
        test_seeds=range(TEST_SEED0, TEST_SEED0 + TEST_IMAGES),
        workers=workers,
    )
    negatives = write_negatives(
        workdir / "negatives", range(NEGATIVES_SEED0, NEGATIVES_SEED0 + NEGATIVE_IMAGES), workers=workers
    )
    card = default_card()
    detector = Detector.from_card(card)
    counts = np.zeros((len(CLASSES), 3), dtype=np.int64)
    for image_path in sorted((workdir / "images" / "test").glob("*.jpg")):
        image = cv2.imread(str(image_path))
        [found] = detector.predict([image])
        truth = _truth(workdir / "labels" / "test" / f"{image_path.stem}.txt", image.shape[1], image.shape[0])
        counts += match_counts(found, *truth)
    false_on_negatives = [0] * len(CLASSES)
    for image_path in sorted(negatives.glob("*.jpg")):
        [found] = detector.predict([cv2.imread(str(image_path))])
        for class_id in found.class_id.tolist():
            false_on_negatives[class_id] += 1
    return {
        "model": card.name,
        "thresholds": detector.confidence,
        "test_seeds": [TEST_SEED0, TEST_SEED0 + TEST_IMAGES],
        "negative_seeds": [NEGATIVES_SEED0, NEGATIVES_SEED0 + NEGATIVE_IMAGES],
        "per_class": {
            name: {
                "true_positives": int(tp),
                "false_positives": int(fp),
                "missed": int(fn),
                "false_on_negatives": false_on_negatives[i],
            }
            for i, (name, (tp, fp, fn)) in enumerate(zip(CLASSES, counts, strict=True))
        },
    }


@pytest.mark.parametrize(
    ("found", "truth_class", "truth_xyxy", "expected"),
    [
        # one hit, one duplicate (a second box on the same object is a false positive), one miss
        (
            ([[0, 0, 10, 10], [1, 1, 10, 10]], [0.9, 0.8], [0, 0]),
            [0, 0],
            [[0, 0, 10, 10], [50, 50, 60, 60]],
            [[1, 1, 1], [0, 0, 0], [0, 0, 0]],
        ),
        # the right place but the wrong class: a false positive and a miss
        (([[0, 0, 10, 10]], [0.9], [1]), [0], [[0, 0, 10, 10]], [[0, 0, 1], [0, 1, 0], [0, 0, 0]]),
        # IoU 0.25 is not a hit
        (([[0, 0, 10, 10]], [0.9], [2]), [2], [[5, 0, 15, 10]], [[0, 0, 0], [0, 0, 0], [0, 1, 1]]),
        # the more confident box takes the object
        (
            ([[0, 0, 10, 10], [0, 0, 10, 9]], [0.6, 0.9], [0, 0]),
            [0],
            [[0, 0, 10, 10]],
            [[1, 1, 0], [0, 0, 0], [0, 0, 0]],
        ),
    ],
)
def test_match_counts(
    found: tuple[list[list[float]], list[float], list[int]],
    truth_class: list[int],
    truth_xyxy: list[list[float]],
    expected: list[list[int]],
) -> None:
    xyxy, confidence, class_id = found
    detections = Detections(xyxy=np.array(xyxy, float), confidence=np.array(confidence), class_id=np.array(class_id))
    counts = match_counts(detections, np.array(truth_class), np.array(truth_xyxy, float).reshape(-1, 4))
    np.testing.assert_array_equal(counts, expected)


def test_default_model_does_not_find_less_or_worse(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = measure(tmp_path)
    assert (got["model"], got["thresholds"]) == (golden["model"], golden["thresholds"]), "re-record the gate"
    for name in CLASSES:
        want, have = golden["per_class"][name], got["per_class"][name]
        assert have["true_positives"] >= want["true_positives"] - SLACK_BOXES, (name, have, want)
        assert have["false_positives"] <= want["false_positives"] + SLACK_BOXES, (name, have, want)
        assert have["false_on_negatives"] <= want["false_on_negatives"] + SLACK_BOXES, (name, have, want)
    # Not vacuous: the slice holds objects of every class and the model finds some of each.
    assert all(golden["per_class"][name]["true_positives"] >= 5 for name in CLASSES)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        measured = measure(Path(scratch))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(measured, indent=2))
