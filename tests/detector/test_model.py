"""The model wrapper: class mapping, refusals, no downloads, the detect command's file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from detector.model.adapters import class_lookup
from detector.model.backends import ENV_BACKEND, ENV_CACHE
from detector.model.wrapper import Detector, default_card, load_detector, read_card
from tests.conftest import build_untrained_model, make_test_video, run_cli
from zones.detections import MODEL_CLASSES as CLASSES
from zones.errors import ModelError


@pytest.mark.parametrize(
    ("names", "class_map", "expected", "error"),
    [
        ({0: "stall", 1: "laundry", 2: "structure"}, None, [0, 1, 2], None),
        ({0: "person", 1: "structure", 2: "stall", 3: "laundry"}, None, [-1, 2, 0, 1], None),
        (
            {0: "cart", 1: "clothes", 2: "shed"},
            {"cart": "stall", "clothes": "laundry", "shed": "structure"},
            [0, 1, 2],
            None,
        ),
        ({0: "stall", 1: "laundry"}, None, None, r"no class for \['structure'\]"),
        ({0: "cart"}, {"cart": "kiosk"}, None, "unknown classes"),
    ],
)
def test_class_lookup(
    names: dict[int, str], class_map: dict[str, str] | None, expected: list[int] | None, error: str | None
) -> None:
    if error:
        with pytest.raises(ModelError, match=error):
            class_lookup(names, class_map)
    else:
        np.testing.assert_array_equal(class_lookup(names, class_map), expected)


def test_missing_weights_exit_2_naming_the_path(tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", seconds=2)
    done = run_cli("detect", video, "--out", tmp_path / "d.jsonl", "--model", tmp_path / "nope.pt")
    assert done.returncode == 2
    assert "nope.pt: model weights not found" in done.stderr


def test_detect_refuses_an_unusable_video_before_the_model(tmp_path: Path) -> None:
    done = run_cli("detect", tmp_path / "gone.mp4", "--out", tmp_path / "d.jsonl", "--model", tmp_path / "nope.pt")
    assert done.returncode == 2
    assert "gone.mp4: file not found" in done.stderr and "nope.pt" not in done.stderr


def test_model_without_our_classes_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = build_untrained_model(tmp_path / "coco.pt", {0: "person", 1: "car", 2: "dog"})
    video = make_test_video(tmp_path / "clip.mp4", seconds=2)
    monkeypatch.setenv(ENV_BACKEND, "auto")
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    done = run_cli("detect", video, "--out", tmp_path / "d.jsonl", "--model", foreign)
    assert done.returncode == 2
    assert "class_map" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cache").exists()  # refused before any export was spent on it


def test_unknown_backend_in_the_environment_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untrained_model: Path
) -> None:
    video = make_test_video(tmp_path / "clip.mp4", seconds=1)
    monkeypatch.setenv(ENV_BACKEND, "tensorrt")
    done = run_cli("detect", video, "--out", tmp_path / "d.jsonl", "--model", untrained_model)
    assert done.returncode == 2
    expected = "STREETWATCH_BACKEND: unknown inference backend 'tensorrt'; choose one of auto, pytorch, onnx, openvino"
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_detect_writes_a_line_per_analysed_frame(
    tmp_path: Path, untrained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_BACKEND, "pytorch")  # a throw-away model: not worth an export
    video = make_test_video(tmp_path / "clip.mp4", seconds=4)
    out = tmp_path / "d.jsonl"
    done = run_cli("detect", video, "--out", out, "--model", untrained_model, "--sample-fps", "2")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    meta = lines[0]["meta"]
    assert (meta["width"], meta["height"], meta["classes"]) == (640, 360, ["stall", "laundry", "structure"])
    assert len(meta["model"]["sha256"]) == 64
    # 25 fps sampled at 2 fps: the first frame at or after each half second
    assert [line["frame"] for line in lines[1:]] == [0, 13, 25, 38, 50, 63, 75, 88]
    assert [line["t"] for line in lines[1:]] == pytest.approx([f / 25 for f in [0, 13, 25, 38, 50, 63, 75, 88]])


def test_default_card_is_the_newest(tmp_path: Path) -> None:
    for name, created in [("old", "2026-01-01"), ("new", "2026-11-01")]:
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\nweights: {name}.pt\ncreated: {created}\n")
    (tmp_path / "dataset.yaml").write_text("names: {0: stall}\n")  # not a card
    assert default_card(tmp_path).name == "new"
    assert read_card(tmp_path / "old.yaml").weights == (tmp_path / "old.pt").resolve()


def test_detector_predicts_our_detections_type(untrained_model: Path) -> None:
    detector = Detector(untrained_model, confidence=0.0001, imgsz=160, backend="pytorch")
    [detections] = detector.predict([np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)])
    assert detections.xyxy.shape[1] == 4
    assert set(detections.class_id.tolist()) <= {0, 1, 2}


@pytest.mark.parametrize(
    ("argument", "env", "expected_reason"),
    [
        ("pytorch", None, "requested by the backend option"),
        (None, "pytorch", "requested by STREETWATCH_BACKEND"),
        (None, "PyTorch", "requested by STREETWATCH_BACKEND"),
    ],
)
def test_load_detector_reports_its_backend(
    untrained_model: Path, monkeypatch: pytest.MonkeyPatch, argument: str | None, env: str | None, expected_reason: str
) -> None:
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    if env is not None:
        monkeypatch.setenv(ENV_BACKEND, env)
    detector = load_detector(untrained_model, backend=argument)
    assert detector.backend == "pytorch"
    assert detector.backend_info["reason"] == expected_reason
    assert detector.backend_info["requested"] == "pytorch"
    assert detector.runtime_path == untrained_model


@pytest.mark.parametrize(
    ("confidence_line", "expected", "error"),
    [
        ("", 0.35, None),
        ("confidence: 0.65", 0.65, None),
        (
            "confidence: {stall: 0.5, laundry: 0.4, structure: 0.6}",
            {"stall": 0.5, "laundry": 0.4, "structure": 0.6},
            None,
        ),
        ("confidence: {stall: 0.5, laundry: 0.4}", None, "confidence.structure: Field required"),
        (
            "confidence: {stall: 0.5, laundry: 0.4, structure: 0.6, car: 0.3}",
            None,
            "confidence.car: Extra inputs are not permitted",
        ),
        (
            "confidence: {stall: x, laundry: 0.4, structure: 0.6}",
            None,
            "confidence.stall: Input should be a valid number",
        ),
        ("confidence: 1.5", None, "confidence: Input should be less than or equal to 1"),
        ("confidence: 0", None, "confidence: Input should be greater than 0"),
        ("confidence: high", None, "confidence: Input should be a valid number"),
        ("imgsz: big", None, "imgsz: Input should be a valid integer"),
    ],
)
def test_model_card_confidence(
    tmp_path: Path, confidence_line: str, expected: float | dict[str, float] | None, error: str | None
) -> None:
    check_card_field(tmp_path, confidence_line, "confidence", expected, error)


def check_card_field(tmp_path: Path, lines: str, field: str, expected: object, error: str | None) -> None:
    card = tmp_path / "card.yaml"
    card.write_text(f"name: m\nweights: m.pt\ncreated: 2026-11-27\n{lines}\n")
    if error:
        with pytest.raises(ModelError, match=f"^{re.escape(str(card))}: {re.escape(error)}"):
            read_card(card)
    else:
        assert getattr(read_card(card), field) == expected


def test_per_class_thresholds_keep_what_each_class_threshold_keeps() -> None:
    """A per-class card finds, class by class, exactly what a single threshold of that class's value finds."""
    from detector.training.scenes import render_scene

    card = default_card()
    per_class = {"stall": 0.5, "laundry": 0.25, "structure": 0.7}
    images = [render_scene(seed, 960, 540)[0] for seed in (1_500_001, 1_500_002, 1_500_008, 1_500_010)]
    detector = Detector.from_card(card, confidence=per_class, backend="pytorch")
    assert (detector.confidence, detector.min_confidence) == (per_class, 0.25)
    got = detector.predict(images)
    for class_id, name in enumerate(CLASSES):
        alone = Detector.from_card(card, confidence=per_class[name], backend="pytorch").predict(images)
        for mine, theirs in zip(got, alone, strict=True):
            kept, wanted = mine[mine.class_id == class_id], theirs[theirs.class_id == class_id]
            np.testing.assert_allclose(kept.xyxy, wanted.xyxy, atol=0.01)
            np.testing.assert_allclose(kept.confidence, wanted.confidence, atol=1e-4)
    lowest = Detector.from_card(card, confidence=0.25, backend="pytorch").predict(images)
    # Not vacuous: the lowest threshold alone finds more, i.e. the per-class thresholds dropped something.
    assert sum(map(len, got)) < sum(map(len, lowest))
    assert {int(c) for d in got for c in d.class_id} == {0, 1, 2}


@pytest.mark.parametrize(
    ("confidence", "error"),
    [
        ({"stall": 0.5, "laundry": 0.4}, r"missing \['structure'\]"),
        ({"stall": 0.5, "laundry": 0.4, "structure": 0.6, "car": 0.2}, r"unknown \['car'\]"),
        (0.0, r"must lie in \(0, 1\]"),
        ({"stall": 0.5, "laundry": 1.2, "structure": 0.6}, r"must lie in \(0, 1\]"),
    ],
)
def test_detector_refuses_bad_thresholds(
    untrained_model: Path, confidence: float | dict[str, float], error: str
) -> None:
    with pytest.raises(ModelError, match=f"confidence: .*{error}"):
        Detector(untrained_model, confidence=confidence, backend="pytorch")


@pytest.mark.parametrize(
    ("card_text", "expected_confidence", "expected_imgsz"),
    [
        (
            "name: mine\nweights: mine.pt\nimgsz: 320\nconfidence: {stall: 0.6, laundry: 0.5, structure: 0.7}\n",
            {"stall": 0.6, "laundry": 0.5, "structure": 0.7},
            320,
        ),
        ("name: other\nweights: other.pt\nconfidence: 0.9\n", {"stall": 0.35, "laundry": 0.35, "structure": 0.35}, 640),
        (None, {"stall": 0.35, "laundry": 0.35, "structure": 0.35}, 640),
    ],
    ids=["its-card", "a-card-of-other-weights", "no-card"],
)
def test_weights_given_run_with_the_card_beside_them(
    tmp_path: Path,
    untrained_model: Path,
    card_text: str | None,
    expected_confidence: dict[str, float],
    expected_imgsz: int,
) -> None:
    weights = tmp_path / "mine.pt"
    weights.write_bytes(untrained_model.read_bytes())
    if card_text is not None:
        (tmp_path / "card.yaml").write_text(card_text)
    (tmp_path / "camera.yaml").write_text("id: cam\n")  # not a card: no weights
    detector = load_detector(weights, backend="pytorch")
    assert (detector.confidence, detector.imgsz) == (expected_confidence, expected_imgsz)


@pytest.mark.parametrize(
    ("lines", "expected", "error"),
    [
        ("confidence: 0.65", None, None),
        ("confidence: 0.65\nmin_score: 0.4", 0.4, None),
        (
            "confidence: 0.65\nmin_score: {stall: 0.4, laundry: 0.3, structure: 0.45}",
            {"stall": 0.4, "laundry": 0.3, "structure": 0.45},
            None,
        ),
        ("confidence: 0.65\nmin_score: 0", None, "min_score: Input should be greater than 0"),
        ("confidence: 0.65\nmin_score: {stall: 0.4}", None, "min_score.laundry: Field required"),
    ],
)
def test_model_card_min_score(tmp_path: Path, lines: str, expected: object, error: str | None) -> None:
    check_card_field(tmp_path, lines, "min_score", expected, error)


def test_detector_refuses_a_min_score_above_its_threshold(untrained_model: Path) -> None:
    with pytest.raises(ModelError, match=r"min_score: .*must not exceed"):
        Detector(untrained_model, confidence=0.5, min_score={"stall": 0.6, "laundry": 0.3, "structure": 0.3})


def test_min_score_asks_the_model_for_more_and_confident_keeps_the_thresholds() -> None:
    """Boxes come down to min_score (a track starts or continues on them); ``confident`` is the per-image
    view at the track thresholds, exactly what a detector without a min_score returns."""
    from detector.training.scenes import render_scene

    card = default_card()
    images = [render_scene(seed, 960, 540)[0] for seed in (1_500_001, 1_500_002, 1_500_008, 1_500_010)]
    low = Detector.from_card(card, confidence=0.6, min_score=0.3, backend="pytorch")
    plain = Detector.from_card(card, confidence=0.6, backend="pytorch")
    assert (low.min_confidence, low.track_thresholds["stall"], low.min_score["stall"]) == (0.3, 0.6, 0.3)
    got, wanted = low.predict(images), plain.predict(images)
    assert sum(map(len, got)) > sum(map(len, wanted))  # not vacuous: min_score lets more boxes through
    for mine, theirs in zip(got, wanted, strict=True):
        assert mine.confidence.min(initial=1.0) >= 0.3
        kept = low.confident(mine)
        np.testing.assert_allclose(kept.xyxy, theirs.xyxy, atol=0.01)
