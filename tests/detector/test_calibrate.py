"""Per-class thresholds: the matcher, the choice within the limits, and `streetwatch calibrate` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from detector.training.calibrate import Sightings, choose_thresholds, match
from detector.training.dataset import NEGATIVES_SEED0, VAL_SEED0, write_dataset, write_negatives
from tests.conftest import run_cli
from zones.detections import Detections
from zones.errors import InputError


@pytest.mark.parametrize(
    ("found", "truth_class", "truth_xyxy", "expected_hits"),
    [
        # one hit; a second box on the same object is false
        (([[0, 0, 10, 10], [1, 1, 10, 10]], [0.9, 0.8], [0, 0]), [0, 0], [[0, 0, 10, 10], [50, 50, 60, 60]], [1, 0]),
        # the right place but the wrong class
        (([[0, 0, 10, 10]], [0.9], [1]), [0], [[0, 0, 10, 10]], [0]),
        # IoU 1/3 is not a hit, IoU 0.5 is
        (([[0, 0, 10, 10]], [0.9], [2]), [2], [[5, 0, 15, 10]], [0]),
        (([[0, 0, 10, 10]], [0.9], [2]), [2], [[0, 0, 10, 5]], [1]),
        # the more confident box takes the object, whatever the order
        (([[0, 0, 10, 10], [0, 0, 10, 9]], [0.6, 0.9], [0, 0]), [0], [[0, 0, 10, 10]], [0, 1]),
        # nothing labelled: every detection is false; nothing found: nothing to mark
        (([[0, 0, 10, 10]], [0.9], [0]), [], [], [0]),
        (([], [], []), [1], [[0, 0, 10, 10]], []),
    ],
)
def test_match(
    found: tuple[list[list[float]], list[float], list[int]],
    truth_class: list[int],
    truth_xyxy: list[list[float]],
    expected_hits: list[int],
) -> None:
    xyxy, confidence, class_id = found
    detections = Detections(
        xyxy=np.array(xyxy, float).reshape(-1, 4), confidence=np.array(confidence), class_id=np.array(class_id, int)
    )
    hits = match(detections, np.array(truth_class, int), np.array(truth_xyxy, float).reshape(-1, 4))
    assert hits.tolist() == [bool(h) for h in expected_hits]


def _sightings(
    per_class: list[list[tuple[float, bool]]], instances: list[int], negatives: list[list[float]] | None
) -> Sightings:
    return Sightings(
        confidence=tuple(np.array([c for c, _ in rows], float) for rows in per_class),
        hit=tuple(np.array([h for _, h in rows], bool) for rows in per_class),
        instances=tuple(instances),
        images=10,
        on_negatives=None if negatives is None else tuple(np.array(n, float) for n in negatives),
        negative_images=10,
    )


# Stall: 4 objects, hits at 0.9/0.7/0.5, a false box at 0.6. Laundry: 2 objects, hits at 0.8/0.3, false at 0.4
# and 0.35. Structure: 1 object, hit at 0.6.
SCENE = [
    [(0.9, True), (0.7, True), (0.6, False), (0.5, True)],
    [(0.8, True), (0.4, False), (0.35, False), (0.3, True)],
    [(0.6, True)],
]


@pytest.mark.parametrize(
    ("instances", "negatives", "max_false", "min_precision", "expected", "error"),
    [
        # counted on the split: 0.1 false per image allows one false box in all
        ([4, 2, 1], None, 0.1, 0.5, (0.5, 0.8, 0.6), None),
        # two false boxes allowed: laundry may drop to 0.3, but precision 2/4 < 0.6 forbids it
        ([4, 2, 1], None, 0.2, 0.6, (0.5, 0.8, 0.6), None),
        ([4, 2, 1], None, 0.3, 0.5, (0.5, 0.3, 0.6), None),
        # no false box at all: stall stays above its false box (the highest threshold of equal recall)
        ([4, 2, 1], None, 0.0, 0.5, (0.7, 0.8, 0.6), None),
        # counted on negatives instead: laundry's false boxes on the split no longer count, stall's one there does
        ([4, 2, 1], [[0.55], [], []], 0.0, 0.5, (0.7, 0.3, 0.6), None),
        # a class nobody labelled keeps its fallback threshold
        ([4, 0, 1], None, 0.1, 0.5, (0.5, 0.45, 0.6), None),
        # impossible limits are an input error, not a silent pick
        ([4, 2, 1], [[0.99], [], []], 0.0, 0.5, None, "no thresholds between 0.05 and 0.95"),
    ],
)
def test_choose_thresholds(
    instances: list[int],
    negatives: list[list[float]] | None,
    max_false: float,
    min_precision: float,
    expected: tuple[float, ...] | None,
    error: str | None,
) -> None:
    sightings = _sightings(SCENE, instances, negatives)
    if error:
        with pytest.raises(InputError, match=error):
            choose_thresholds(
                sightings, max_false_per_image=max_false, min_precision=min_precision, fallback=(0.45,) * 3
            )
        return
    chosen = choose_thresholds(
        sightings, max_false_per_image=max_false, min_precision=min_precision, fallback=(0.45,) * 3
    )
    assert chosen == pytest.approx(expected)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calibration")
    write_dataset(root, train_seeds=range(0), val_seeds=range(VAL_SEED0, VAL_SEED0 + 12), workers=2)
    write_negatives(root / "negatives", range(NEGATIVES_SEED0, NEGATIVES_SEED0 + 6), workers=2)
    return root


@pytest.mark.slow
def test_calibrate_command_reports_thresholds_it_can_back(small_set: Path) -> None:
    done = run_cli(
        "calibrate", "--data", small_set / "data.yaml", "--negatives", small_set / "negatives" / "images", "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["confidence"]) == {"stall", "laundry", "structure"}
    limits = report["limits"]
    assert report["false_per_image"] <= limits["max_false_per_image"] + 1e-9
    for name, row in report["per_class"].items():
        assert row["threshold"] == report["confidence"][name]
        assert row["min_score"] == report["min_score"][name]
        assert 0.25 <= row["min_score"] <= row["threshold"], (name, row)
        if row["instances"]:
            assert row["precision"] >= limits["min_precision"] or math.isclose(row["recall"], 0.0)
            # Boxes that start or continue a track: at least half of them right, and they find no less.
            assert row["min_score_precision"] >= 0.5 or row["min_score"] == row["threshold"], (name, row)
            assert row["min_score_recall"] >= row["recall"], (name, row)
    assert (report["images"], report["negative_images"], report["false_counted_on"]) == (12, 6, "negatives")
    # Not vacuous: the shipped model finds labelled objects on these renders.
    assert round(sum(row["recall"] * row["instances"] for row in report["per_class"].values() if row["instances"])) >= 3
    text = run_cli("calibrate", "--data", small_set / "data.yaml", "--negatives", small_set / "negatives" / "images")
    assert text.returncode == 0, text.stderr
    expected_lines = [
        f"{key}: {{" + ", ".join(f"{k}: {v}" for k, v in report[key].items()) + "}"
        for key in ("confidence", "min_score")
    ]
    assert text.stdout.strip().splitlines()[-2:] == expected_lines


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda root: root / "missing.yaml", "missing.yaml: dataset yaml not found"),
        (lambda root: root / "data.yaml", "no 'test' split"),
        (lambda root: (root / "labels" / "val" / "01000000.txt").write_text("0 0.5 0.5\n"), "a label row needs 5"),
        (lambda root: (root / "labels" / "val" / "01000003.txt").write_text("stall 0.5 0.5 0.1 0.1\n"), "01000003.txt"),
        (lambda root: (root / "images" / "val" / "01000001.jpg").write_bytes(b"not a jpeg"), "cannot read image"),
        (lambda root: (root / "data.yaml").write_text("path: [unclosed\n"), "data.yaml"),
        (
            lambda root: (root / "data.yaml").write_text("path: .\nval: images/val\nnames: {0: car}\n"),
            "names: none of our classes",
        ),
    ],
    ids=["no-yaml", "no-split", "short-label-row", "label-not-numbers", "unreadable-image", "broken-yaml", "no-ours"],
)
def test_calibrate_bad_input_exits_2_naming_the_file(
    tmp_path: Path, small_set: Path, untrained_model: Path, break_it: object, expected: str
) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(small_set, root)
    config = (root / "data.yaml").read_text().replace(str(small_set), str(root))
    (root / "data.yaml").write_text(config)  # the copy's own folders, not the shared set's
    result = break_it(root)  # type: ignore[operator]
    data = result if isinstance(result, Path) else root / "data.yaml"
    split = "test" if expected.startswith("no 'test'") else "val"
    # A throw-away model on PyTorch: loads in a moment, and the input is refused before anything is measured.
    done = run_cli("calibrate", "--data", data, "--split", split, "--model", untrained_model, "--backend", "pytorch")
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
