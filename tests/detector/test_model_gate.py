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

import pytest

from detector.model.wrapper import Detector, default_card
from detector.training.calibrate import collect
from detector.training.dataset import NEGATIVES_SEED0, TEST_SEED0, write_dataset, write_negatives
from zones.detections import MODEL_CLASSES as CLASSES

GOLDEN = Path(__file__).parent / "golden" / "model_gate.json"
TEST_IMAGES = 60
NEGATIVE_IMAGES = 40
# One box either way per class: another CPU or inference backend may round a borderline box differently.
SLACK_BOXES = 1

pytestmark = pytest.mark.slow


def measure(workdir: Path) -> dict[str, Any]:
    """Render the gate's images into ``workdir`` and count the default model's hits and misses."""
    workers = min(2, os.cpu_count() or 1)
    data = write_dataset(
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
    detector = Detector.from_card(card)  # as users run it: the card's thresholds, the default backend
    seen = collect(detector, data, split="test", negatives=negatives)
    assert seen.on_negatives is not None
    return {
        "model": card.name,
        "thresholds": detector.confidence,
        "test_seeds": [TEST_SEED0, TEST_SEED0 + TEST_IMAGES],
        "negative_seeds": [NEGATIVES_SEED0, NEGATIVES_SEED0 + NEGATIVE_IMAGES],
        "per_class": {
            name: {
                "true_positives": int(seen.hit[i].sum()),
                "false_positives": int((~seen.hit[i]).sum()),
                "missed": seen.instances[i] - int(seen.hit[i].sum()),
                "false_on_negatives": len(seen.on_negatives[i]),
            }
            for i, name in enumerate(CLASSES)
        },
    }


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
