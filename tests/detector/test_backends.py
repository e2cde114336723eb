"""Inference backends: ONNX Runtime and OpenVINO give PyTorch's detections; choice, fallbacks, cache repair.

Runs the real shipped model (whatever ``models/`` holds; its hash is never assumed). The exports are
made once per module into a temporary cache, through the same code path a first audit takes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from scipy.optimize import linear_sum_assignment

from detector.model.backends import (
    CPU_ORDER,
    ENV_BACKEND,
    ENV_CACHE,
    MANIFEST,
    MAX_CACHED_MODELS,
    cache_entry,
    cached_export,
    candidates,
    default_cache_dir,
    ensure_export,
    prepare,
    runtime_missing,
)
from detector.model.wrapper import Detector, ModelCard, default_card
from detector.training.dataset import TEST_SEED0
from detector.training.scenes import render_scene
from zones.detections import Detections
from zones.errors import ModelError

REPO = Path(__file__).resolve().parents[2]
EXPORTED = ("onnx", "openvino")
MIN_IOU = 0.95
# A box this close to the threshold may exist on one backend only: float rounding decides its side.
BORDERLINE = 0.05
MAX_CONF_DIFF = 0.02

# (name, seed, width, height): held-out renders in the shapes cameras send (16:9, 4:3, portrait)
SCENES = [
    ("hd-16x9", TEST_SEED0, 1280, 720),
    ("vga-4x3", TEST_SEED0 + 2, 640, 480),
    ("portrait", TEST_SEED0 + 3, 480, 640),
]
# The demo clips (960x540): four consecutive frames each, predicted as one batch like the video path does.
CLIPS = ["street_day", "residential_day", "night_market"]


@pytest.fixture(autouse=True)
def _no_env_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    # A suite-wide default (conftest) must not decide what these tests check.
    monkeypatch.delenv(ENV_BACKEND, raising=False)


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return default_card()  # the shipped model, whichever it is


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backend-cache")


@pytest.fixture(scope="module")
def detectors(card: ModelCard, cache: Path) -> dict[str, Detector]:
    """One detector per available backend; the exports made here, once, side by side."""
    made = {"pytorch": Detector.from_card(card, backend="pytorch")}
    available = [b for b in EXPORTED if runtime_missing(b) is None]
    exported = prepare(card.weights, available, sha256=made["pytorch"].sha256, cache_dir=cache)
    assert all(isinstance(path, Path) for path in exported.values()), exported
    for backend in available:
        made[backend] = Detector.from_card(card, backend=backend, cache_dir=cache)
    return made


@pytest.fixture(scope="module")
def inputs() -> dict[str, list[npt.NDArray[np.uint8]]]:
    """Each case's images: one rendered scene, or a batch of four frames from the middle of a demo clip."""
    cases = {name: [render_scene(seed, w, h)[0]] for name, seed, w, h in SCENES}
    for clip in CLIPS:
        capture = cv2.VideoCapture(str(REPO / "sample_videos" / f"{clip}.mp4"))
        capture.set(cv2.CAP_PROP_POS_FRAMES, capture.get(cv2.CAP_PROP_FRAME_COUNT) // 2)
        batch = []
        while len(batch) < 4:
            ok, image = capture.read()
            assert ok, f"{clip}: cannot read frames"
            batch.append(image)
        capture.release()
        cases[clip] = batch
    return cases


@pytest.fixture(scope="module")
def reference(
    detectors: dict[str, Detector], inputs: dict[str, list[npt.NDArray[np.uint8]]]
) -> dict[str, list[Detections]]:
    """PyTorch's detections for every case: the yardstick."""
    return {name: detectors["pytorch"].predict(images) for name, images in inputs.items()}


def _need(detectors: dict[str, Detector], backend: str) -> Detector:
    if backend not in detectors:
        pytest.skip(f"{backend} runtime is not installed: {runtime_missing(backend)}")
    return detectors[backend]


def _iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import torch
    from torchvision.ops import box_iou

    return np.asarray(box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(), dtype=np.float64)


def differences(reference: Detections, other: Detections, thresholds: npt.NDArray[np.float64]) -> list[str]:
    """What differs beyond tolerance: per class, boxes paired by IoU (Hungarian) must overlap ≥ MIN_IOU with
    confidences within MAX_CONF_DIFF; an unpaired box is allowed only when it is borderline (near the class's
    entry of ``thresholds``, indexed by class id)."""
    problems: list[str] = []
    for cls in sorted(set(reference.class_id.tolist()) | set(other.class_id.tolist())):
        ref, got = reference.class_id == cls, other.class_id == cls
        ref_boxes, got_boxes = reference.xyxy[ref], other.xyxy[got]
        ref_conf, got_conf = reference.confidence[ref], other.confidence[got]
        pairs: list[tuple[int, int]] = []
        if len(ref_boxes) and len(got_boxes):
            iou = _iou(ref_boxes, got_boxes)
            rows, cols = linear_sum_assignment(-iou)
            pairs = [(r, c) for r, c in zip(rows.tolist(), cols.tolist(), strict=True) if iou[r, c] >= MIN_IOU]
            for r, c in pairs:
                if abs(ref_conf[r] - got_conf[c]) > MAX_CONF_DIFF:
                    problems.append(f"class {cls}: conf {ref_conf[r]:.3f} vs {got_conf[c]:.3f}")
        sides = (("pytorch", ref_conf, {r for r, _ in pairs}), ("other", got_conf, {c for _, c in pairs}))
        for side, confs, used in sides:
            for i, conf in enumerate(confs.tolist()):
                if i not in used and conf >= thresholds[cls] + BORDERLINE:
                    problems.append(f"class {cls}: unmatched {side} box with conf {conf:.3f}")
    return problems


@pytest.mark.parametrize(
    ("reference", "other", "expected"),
    [
        # (pytorch boxes, other boxes) as (x1, y1, x2, y2, conf, class) -> differences found
        ([(0, 0, 100, 100, 0.9, 0)], [(0, 0, 100, 100, 0.9, 0)], 0),
        ([(0, 0, 100, 100, 0.9, 0)], [(0, 0, 100, 101, 0.905, 0)], 0),
        ([(0, 0, 100, 100, 0.9, 0)], [(0, 0, 100, 110, 0.9, 0)], 2),  # IoU 0.91: both boxes unmatched
        ([(0, 0, 100, 100, 0.9, 0)], [(0, 0, 100, 100, 0.9, 1)], 2),  # another class
        ([(0, 0, 100, 100, 0.9, 0)], [(0, 0, 100, 100, 0.8, 0)], 1),  # confidence moved
        ([(0, 0, 100, 100, 0.37, 0)], [], 0),  # borderline box on one side only
        ([(0, 0, 100, 100, 0.6, 0)], [], 1),
    ],
)
def test_the_tolerance_itself(
    reference: list[tuple[float, ...]], other: list[tuple[float, ...]], expected: int
) -> None:
    def make(rows: list[tuple[float, ...]]) -> Detections:
        if not rows:
            return Detections.empty()
        array = np.array(rows, dtype=np.float64)
        return Detections(xyxy=array[:, :4], confidence=array[:, 4], class_id=array[:, 5].astype(np.int64))

    assert len(differences(make(reference), make(other), np.full(3, 0.35))) == expected


@pytest.mark.parametrize("backend", EXPORTED)
@pytest.mark.parametrize("case", [name for name, *_ in SCENES] + CLIPS)
def test_exported_backend_detects_what_pytorch_detects(
    detectors: dict[str, Detector],
    inputs: dict[str, list[npt.NDArray[np.uint8]]],
    reference: dict[str, list[Detections]],
    backend: str,
    case: str,
) -> None:
    exported = _need(detectors, backend)
    assert exported.backend == backend
    got = exported.predict(inputs[case])
    threshold = detectors["pytorch"].thresholds
    assert [differences(want, have, threshold) for want, have in zip(reference[case], got, strict=True)] == [
        [] for _ in got
    ]


def test_the_comparison_is_not_vacuous(reference: dict[str, list[Detections]]) -> None:
    found = sum(len(detections) for frames in reference.values() for detections in frames)
    # Any model worth shipping finds something in three street scenes and twelve demo-clip frames.
    assert found >= 3


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        (None, None, CPU_ORDER[0]),  # auto: the fastest (all runtimes are installed here)
        ("onnx", None, "onnx"),
        (" OpenVINO ", None, "openvino"),
        ("pytorch", None, "pytorch"),
        ("onnx", "openvino", "openvino"),  # the explicit option wins over the environment
        ("openvino", "pytorch", "pytorch"),
    ],
)
def test_forced_backend_is_honoured(
    detectors: dict[str, Detector],
    card: ModelCard,
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: str | None,
    argument: str | None,
    expected: str,
) -> None:
    _need(detectors, expected)
    if env is not None:
        monkeypatch.setenv(ENV_BACKEND, env)
    detector = Detector.from_card(card, backend=argument, cache_dir=cache)
    assert detector.backend == expected
    assert detector.backend_info["backend"] == expected
    assert detector.sha256 == detectors["pytorch"].sha256  # the model's identity does not change with the backend


@pytest.mark.parametrize(
    ("env", "argument", "field"),
    [("tensorrt", None, ENV_BACKEND), (None, "torch", "backend"), ("", "gpu", "backend")],
)
def test_unknown_backend_is_an_input_error(
    card: ModelCard, monkeypatch: pytest.MonkeyPatch, env: str | None, argument: str | None, field: str
) -> None:
    if env is not None:
        monkeypatch.setenv(ENV_BACKEND, env)
    with pytest.raises(ModelError, match="unknown inference backend") as raised:
        Detector.from_card(card, backend=argument)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("cpu", ("openvino", "onnx", "pytorch")),
        ("CPU", ("openvino", "onnx", "pytorch")),
        ("0", ("pytorch",)),
        ("cuda:1", ("pytorch",)),
    ],
)
def test_auto_order(device: str, expected: tuple[str, ...]) -> None:
    assert candidates("auto", device) == expected


@pytest.mark.parametrize(
    ("blocked", "requested", "expected", "skipped"),
    [
        (["openvino"], "auto", "onnx", ["openvino"]),
        (["openvino", "onnxruntime"], "auto", "pytorch", ["openvino", "onnx"]),
        (["onnxruntime"], "onnx", "pytorch", ["onnx"]),
        (["openvino"], "openvino", "pytorch", ["openvino"]),
    ],
)
def test_missing_runtime_falls_back_with_a_reason(
    detectors: dict[str, Detector],
    card: ModelCard,
    cache: Path,
    inputs: dict[str, list[npt.NDArray[np.uint8]]],
    reference: dict[str, list[Detections]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    blocked: list[str],
    requested: str,
    expected: str,
    skipped: list[str],
) -> None:
    _need(detectors, expected)
    for module in blocked:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with caplog.at_level(logging.WARNING, logger="streetwatch.backends"):
        detector = Detector.from_card(card, backend=requested, cache_dir=cache)
    assert detector.backend == expected
    assert sorted(detector.backend_info["skipped"]) == sorted(skipped)
    for module in blocked:
        assert module in " ".join(detector.backend_info["skipped"].values())
        assert module in caplog.text
    [got] = detector.predict(inputs["hd-16x9"])
    assert differences(reference["hd-16x9"][0], got, detector.thresholds) == []


def test_unwritable_cache_falls_back_to_pytorch(card: ModelCard, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    detector = Detector.from_card(card, backend="auto", cache_dir=blocker / "cache")
    assert detector.backend == "pytorch"
    assert "cannot write the export cache" in detector.backend_info["reason"]


def _truncate_onnx(entry: Path) -> None:
    model = entry / "model.onnx"
    model.write_bytes(model.read_bytes()[:1000])


def _garbage_xml_with_matching_manifest(entry: Path) -> None:
    # Files that verify against their manifest yet do not load (say, written by an incompatible runtime).
    xml = entry / "model_openvino_model" / "model.xml"
    xml.write_text("<net><broken")
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["files"]["model_openvino_model/model.xml"] = hashlib.sha256(xml.read_bytes()).hexdigest()
    (entry / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("backend", "damage"),
    [("onnx", _truncate_onnx), ("openvino", _garbage_xml_with_matching_manifest)],
    ids=["truncated-onnx", "openvino-that-does-not-load"],
)
def test_damaged_cache_is_exported_again(
    detectors: dict[str, Detector],
    card: ModelCard,
    cache: Path,
    tmp_path: Path,
    inputs: dict[str, list[npt.NDArray[np.uint8]]],
    reference: dict[str, list[Detections]],
    caplog: pytest.LogCaptureFixture,
    backend: str,
    damage: object,
) -> None:
    _need(detectors, backend)
    own = tmp_path / "cache"
    shutil.copytree(cache, own)  # the module's cache stays intact for the other tests
    sha = detectors["pytorch"].sha256
    entry = cache_entry(own, sha, backend)
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="streetwatch.backends"):
        detector = Detector.from_card(card, backend=backend, cache_dir=own)
    assert detector.backend == backend
    assert "exporting again" in caplog.text
    assert cached_export(entry, backend, sha) is not None
    [got] = detector.predict(inputs["hd-16x9"])
    assert differences(reference["hd-16x9"][0], got, detector.thresholds) == []


@pytest.mark.parametrize("backend", EXPORTED)
def test_an_exported_model_given_directly_runs_as_it_is(
    detectors: dict[str, Detector], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    exported = _need(detectors, backend)
    monkeypatch.setenv(ENV_BACKEND, "pytorch")  # does not apply to a file that is already exported
    detector = Detector(exported.runtime_path, confidence=exported.confidence)
    assert detector.backend == backend
    assert detector.runtime_path == exported.runtime_path


@pytest.mark.parametrize("backend", ["pytorch", *EXPORTED])
def test_runtime_threads_stay_within_the_physical_cores(detectors: dict[str, Detector], backend: str) -> None:
    import psutil

    # One compute thread per physical core at most: SMT siblings or extra threads only contend on a small box.
    detector = _need(detectors, backend)
    assert 1 <= detector.backend_info["threads"] <= (psutil.cpu_count(logical=False) or 1)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({ENV_CACHE: "/srv/sw-cache", "XDG_CACHE_HOME": "/x"}, Path("/srv/sw-cache")),
        ({"XDG_CACHE_HOME": "/x"}, Path("/x/streetwatch")),
        ({}, Path.home() / ".cache" / "streetwatch"),
    ],
)
def test_cache_location(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: Path) -> None:
    for name in (ENV_CACHE, "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert default_cache_dir() == expected


@pytest.mark.parametrize(("others", "kept_others"), [(3, 3), (MAX_CACHED_MODELS + 2, MAX_CACHED_MODELS - 1)])
def test_cache_keeps_the_most_recently_used_models(
    detectors: dict[str, Detector], card: ModelCard, cache: Path, tmp_path: Path, others: int, kept_others: int
) -> None:
    _need(detectors, "onnx")
    sha = detectors["pytorch"].sha256
    own = tmp_path / "cache"
    ours = cache_entry(own, sha, "onnx").parent
    shutil.copytree(cache_entry(cache, sha, "onnx").parent, ours)
    stale = []
    for i in range(others):  # older exports of other weights, oldest first
        folder = ours.parent / f"{i:064x}-r1"
        (folder / "onnx").mkdir(parents=True)
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
        stale.append(folder)
    os.utime(ours, (1, 1))  # ours is the oldest until it is used
    ensure_export(card.weights, "onnx", sha256=sha, cache_dir=own)
    assert ours.is_dir()
    assert [folder.is_dir() for folder in stale] == [False] * (others - kept_others) + [True] * kept_others


@pytest.mark.parametrize(
    ("command", "value", "code", "message"),
    [
        ("detect", "tpu", 2, "--backend 'tpu' is not one of auto, pytorch, onnx, openvino"),
        ("audit", "", 2, "--backend '' is not one of"),
        ("run", "cuda", 2, "--backend 'cuda' is not one of"),
    ],
)
def test_backend_option_rejects_unknown_runtimes(
    tmp_path: Path, command: str, value: str, code: int, message: str
) -> None:
    from tests.conftest import run_cli

    camera = REPO / "sample_videos" / "street_day.camera.yaml"
    video = REPO / "sample_videos" / "street_day.mp4"
    args: dict[str, list[str | Path]] = {
        "detect": [video, "--out", tmp_path / "d.jsonl"],
        "audit": [video, "--camera", camera, "--out", tmp_path / "out"],
        "run": ["--camera", camera, "--push", "http://127.0.0.1:9"],
    }
    done = run_cli(command, *args[command], "--backend", value, timeout=60)
    assert done.returncode == code
    assert message in done.stderr and "Traceback" not in done.stderr
