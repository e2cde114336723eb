"""Frame skip: the model runs where the watched scene changed, and at least every ``max_reuse_s``."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.audit.runner import AuditRequest, run_audit
from detector.video.frame_skip import (
    DEFAULT_CHANGE_THRESHOLD,
    NO_REUSE,
    THUMB_SIZE,
    ChangeGate,
    ReusePolicy,
    analyse,
    change_score,
    polygons_mask,
    thumbnail,
)
from detector.video.sources import VideoFile
from tests.detector.scene_video import LOWER_HALF, Thing, background, camera_yaml, scene_video
from zones.detections import Detections
from zones.errors import InputError

COLS, ROWS = THUMB_SIZE
LOWER = np.zeros((ROWS, COLS), dtype=bool)
LOWER[ROWS // 2 :, :] = True
ZONE_CELL = (30, 10)  # row, column inside the lower half
ROAD_CELL = (3, 10)  # upper half: outside the zone
BASE = np.random.default_rng(3).integers(40, 200, size=(ROWS, COLS), dtype=np.uint8)
BASE[ZONE_CELL] = BASE[ROAD_CELL] = 100  # room for drifts both ways


def _thumbs(times: Sequence[float], changes: dict[float, tuple[tuple[int, int], int]]) -> list[np.ndarray]:
    """One thumbnail per time; ``changes[t] = (cell, delta)`` holds from ``t`` on (cumulative)."""
    thumbs = []
    current = BASE.astype(np.int16)
    for t in times:
        if t in changes:
            (row, col), delta = changes[t]
            current = current.copy()
            current[row, col] += delta
        thumbs.append(np.clip(current, 0, 255).astype(np.uint8))
    return thumbs


def _inferred_times(policy: ReusePolicy, times: Sequence[float], thumbs: Sequence[np.ndarray]) -> list[float]:
    gate = ChangeGate(policy, mask=LOWER)
    return [t for t, thumb in zip(times, thumbs, strict=True) if gate.needs_inference(t, thumb)]


EVERY_2S = [float(t) for t in range(0, 31, 2)]
EVERY_4S = [float(t) for t in range(0, 41, 4)]
DEFAULT = ReusePolicy(change_threshold=12, max_reuse_s=10)


@pytest.mark.parametrize(
    ("times", "changes", "policy", "expected"),
    [
        pytest.param(EVERY_2S, {}, DEFAULT, [0, 10, 20, 30], id="static: the bound alone"),
        # The next frame would be 12 s after the last inference, so the frame at 8 s is inferred.
        pytest.param(EVERY_4S, {}, DEFAULT, [0, 8, 16, 24, 32, 40], id="static, 4 s apart: never over the bound"),
        pytest.param(EVERY_2S, {6.0: (ZONE_CELL, 40)}, DEFAULT, [0, 6, 16, 26], id="object appears in the zone"),
        pytest.param(EVERY_2S, {6.0: (ROAD_CELL, 120)}, DEFAULT, [0, 10, 20, 30], id="traffic outside the zone"),
        pytest.param(EVERY_2S, {6.0: (ZONE_CELL, 11)}, DEFAULT, [0, 10, 20, 30], id="below the threshold"),
        pytest.param(EVERY_2S, {6.0: (ZONE_CELL, 12)}, DEFAULT, [0, 6, 16, 26], id="at the threshold"),
        pytest.param(EVERY_2S, {6.0: (ZONE_CELL, -40)}, DEFAULT, [0, 6, 16, 26], id="darker counts as well"),
        pytest.param(
            EVERY_2S,
            {6.0: (ZONE_CELL, 40), 8.0: (ZONE_CELL, -40)},
            DEFAULT,
            [0, 6, 8, 18, 28],
            id="object there for one frame: seen, and seen leaving",
        ),
        pytest.param(
            EVERY_2S,
            {t: (ZONE_CELL, 5) for t in EVERY_2S[1:]},
            DEFAULT,
            [0, 6, 12, 18, 24, 30],
            id="slow drift adds up against the last inferred frame",
        ),
        pytest.param(EVERY_2S, {}, ReusePolicy(change_threshold=0, max_reuse_s=10), EVERY_2S, id="threshold 0"),
        pytest.param(EVERY_2S, {}, ReusePolicy(change_threshold=12, max_reuse_s=0), EVERY_2S, id="bound 0"),
        pytest.param(EVERY_2S, {}, NO_REUSE, EVERY_2S, id="no reuse"),
        pytest.param(
            [0.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0],
            {},
            DEFAULT,
            [0, 10],
            id="denser frames: the bound still holds",
        ),
    ],
)
def test_gate_infers_on_change_and_within_the_bound(
    times: list[float], changes: dict[float, tuple[tuple[int, int], int]], policy: ReusePolicy, expected: list[float]
) -> None:
    assert _inferred_times(policy, times, _thumbs(times, changes)) == expected


@settings(max_examples=150, deadline=None)
@given(
    spacing=st.floats(0.2, 5.0),
    bound=st.floats(0.0, 30.0),
    threshold=st.integers(0, 60),
    deltas=st.lists(st.tuples(st.booleans(), st.integers(-60, 60)), min_size=1, max_size=60),
)
def test_gate_properties(spacing: float, bound: float, threshold: int, deltas: list[tuple[bool, int]]) -> None:
    """Whatever the scene does: the first frame is inferred; consecutive inferences are never more than
    the bound apart (or one frame apart where the bound is shorter than the spacing); every frame that
    differs from the last inferred one by the threshold or more in the zone is inferred."""
    times = [i * spacing for i in range(len(deltas))]
    changes = {
        t: (ZONE_CELL if in_zone else ROAD_CELL, delta) for t, (in_zone, delta) in zip(times, deltas, strict=True)
    }
    thumbs = _thumbs(times, changes)
    policy = ReusePolicy(change_threshold=threshold, max_reuse_s=bound)
    inferred = _inferred_times(policy, times, thumbs)
    assert inferred[0] == 0.0
    for a, b in itertools.pairwise(inferred):
        assert b - a <= max(bound, spacing) + 1e-6
    reference = thumbs[0]
    for t, thumb in zip(times, thumbs, strict=True):
        changed = change_score(reference, thumb, LOWER) >= threshold
        assert t in inferred or not changed
        if t in inferred:
            reference = thumb


@pytest.mark.parametrize(
    ("polygon", "size", "inside", "outside"),
    [
        ([[0, 540], [1920, 540], [1920, 1080], [0, 1080]], (1920, 1080), [(18, 0), (35, 63)], [(0, 0), (15, 30)]),
        # a thin strip still marks its cells, widened by one cell
        ([[0, 300], [960, 300], [960, 306], [0, 306]], (960, 540), [(20, 5), (19, 5), (21, 5)], [(10, 5), (30, 5)]),
        # a small square in a corner of a 640x360 frame
        ([[600, 0], [640, 0], [640, 40], [600, 40]], (640, 360), [(0, 63), (3, 60)], [(10, 50), (35, 0)]),
    ],
)
def test_polygons_mask_marks_the_zone_cells(
    polygon: list[list[int]], size: tuple[int, int], inside: list[tuple[int, int]], outside: list[tuple[int, int]]
) -> None:
    mask = polygons_mask([polygon], *size)
    assert mask.shape == (ROWS, COLS)
    assert all(mask[cell] for cell in inside)
    assert not any(mask[cell] for cell in outside)


def _noisy(image: npt.NDArray[np.uint8], sigma: float, seed: int) -> npt.NDArray[np.uint8]:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("size", "box", "contrast"),
    [
        # The smallest objects the default threshold always notices (see frame_skip's docstring):
        # 40 px at 1080p, 20 px at 540p, differing by 30 grey levels, centred on a cell corner.
        ((1920, 1080), (880, 580, 920, 620), 30),
        ((960, 540), (440, 290, 460, 310), 30),
        ((1920, 1080), (300, 700, 420, 900), 30),
        # An object standing on the zone's edge: only its feet are in the zone.
        ((1920, 1080), (1000, 380, 1060, 560), 30),
    ],
)
def test_a_small_object_in_the_zone_is_noticed_and_sensor_noise_is_not(
    size: tuple[int, int], box: tuple[int, int, int, int], contrast: int
) -> None:
    width, height = size
    scene = background(width, height, seed=5)
    zone = polygons_mask([np.array(LOWER_HALF) * [width, height]], width, height)
    before = _noisy(scene, 3.0, seed=1)
    after_noise = _noisy(scene, 3.0, seed=2)
    x1, y1, x2, y2 = box
    with_object = scene.copy()
    patch = with_object[y1:y2, x1:x2].astype(np.int16)
    with_object[y1:y2, x1:x2] = np.clip(patch + np.where(patch.mean() < 128, contrast, -contrast), 0, 255)
    with_object = _noisy(with_object, 3.0, seed=2)
    assert change_score(thumbnail(before), thumbnail(after_noise), zone) < DEFAULT_CHANGE_THRESHOLD / 3
    assert change_score(thumbnail(before), thumbnail(with_object), zone) >= DEFAULT_CHANGE_THRESHOLD


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"change_threshold": -1.0}, "change_threshold"),
        ({"change_threshold": 256.0}, "change_threshold"),
        ({"change_threshold": math.nan}, "change_threshold"),
        ({"max_reuse_s": -0.5}, "max_reuse_s"),
        ({"max_reuse_s": math.inf}, "max_reuse_s"),
    ],
)
def test_policy_refuses_impossible_settings(kwargs: dict[str, float], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ReusePolicy(**kwargs)


@pytest.mark.parametrize(
    ("max_reuse_s", "shortest_dwell_s", "expected"),
    [(10.0, 180.0, 10.0), (10.0, 20.0, 5.0), (3.0, 20.0, 3.0), (10.0, None, 10.0)],
)
def test_bound_is_capped_by_the_shortest_dwell(
    max_reuse_s: float, shortest_dwell_s: float | None, expected: float
) -> None:
    assert ReusePolicy(max_reuse_s=max_reuse_s).bounded(shortest_dwell_s).max_reuse_s == expected


class _Frame:
    def __init__(self, t: float, image: npt.NDArray[np.uint8]) -> None:
        self.t = t
        self.image = image
        self.after_damage = False


class _MeanBoxModel:
    """A deterministic model: one box per image, placed by the image's mean grey; records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[float]] = []

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        means = [float(image.mean()) for image in images]
        self.calls.append(means)
        return [Detections(np.array([[m, m, m + 10, m + 10]]), np.array([0.9]), np.array([0])) for m in means]


def _frames(levels: Sequence[int]) -> list[tuple[_Frame, float, np.ndarray]]:
    frames = []
    for i, level in enumerate(levels):
        image = np.full((36, 64, 3), level, dtype=np.uint8)
        frames.append((_Frame(2.0 * i, image), 2.0 * i, thumbnail(image)))
    return frames


@pytest.mark.parametrize(
    ("levels", "batch", "max_pending", "expected_calls"),
    [
        ([50, 50, 90, 90, 90, 20], 1, 16, [[50], [90], [20]]),
        ([50, 50, 90, 90, 90, 20], 2, 16, [[50, 90], [20]]),
        ([50, 50, 90, 90, 90, 20], 4, 16, [[50, 90, 20]]),
        # a long unchanged stretch is handed on before the batch fills (images are large)
        ([50, 50, 50, 50, 90], 2, 3, [[50], [], [90]]),
    ],
)
def test_analyse_reuses_the_last_inferred_detections_in_order(
    levels: list[int], batch: int, max_pending: int, expected_calls: list[list[float]]
) -> None:
    model = _MeanBoxModel()
    gate = ChangeGate(ReusePolicy(change_threshold=12, max_reuse_s=100))
    results = list(analyse(_frames(levels), model, gate, batch=batch, max_pending=max_pending))
    assert [r.frame.t for r in results] == [2.0 * i for i in range(len(levels))]
    # every frame carries the detections of the last inferred frame at or before it: its own level
    assert [r.detections.xyxy[0, 0] for r in results] == levels
    assert [r.inferred for r in results] == [i == 0 or levels[i] != levels[i - 1] for i in range(len(levels))]
    assert model.calls == [call for call in expected_calls if call]
    inferred = sum(len(call) for call in expected_calls)
    assert (gate.inferred, gate.reused) == (inferred, len(levels) - inferred)


def test_batching_never_changes_what_is_reported() -> None:
    levels = [10, 10, 10, 200, 200, 30, 30, 30, 30, 90]
    outputs = []
    for batch in (1, 2, 3, 4):
        gate = ChangeGate(ReusePolicy(change_threshold=12, max_reuse_s=5))
        outputs.append(
            [
                (r.frame.t, r.inferred, r.detections.xyxy.tolist())
                for r in analyse(_frames(levels), _MeanBoxModel(), gate, batch=batch)
            ]
        )
    assert all(output == outputs[0] for output in outputs)


def test_the_first_frame_after_damage_is_always_inferred() -> None:
    """Detections are never carried across damaged data (sources mark such frames ``after_damage``)."""
    frames = _frames([50, 50, 50, 50, 50])
    frames[2][0].after_damage = True
    model = _MeanBoxModel()
    gate = ChangeGate(ReusePolicy(change_threshold=12, max_reuse_s=100))
    assert [r.inferred for r in analyse(frames, model, gate)] == [True, False, True, False, False]
    assert len(model.calls) == 2


# --- on real decoded video -------------------------------------------------------------------

SEEN_AT_13 = Thing((300, 250, 360, 300), start=13.0)
PASSING_CARS = Thing(lambda t: (int(40 * t) % 560, 40, int(40 * t) % 560 + 80, 90))  # upper half: the road
WALKER = Thing(lambda t: (int(30 * t) % 560, 230, int(30 * t) % 560 + 30, 330))  # lower half: the sidewalk


@pytest.mark.parametrize(
    ("things", "expected"),
    [
        pytest.param((), [0, 10, 20, 30, 40], id="static street"),
        pytest.param((SEEN_AT_13,), [0, 10, 14, 24, 34], id="stall appears at 13 s"),
        pytest.param((PASSING_CARS,), [0, 10, 20, 30, 40], id="traffic on the road only"),
        pytest.param((WALKER,), [float(t) for t in range(0, 41, 2)], id="someone walking on the sidewalk"),
    ],
)
def test_decisions_on_real_video(tmp_path: Path, things: tuple[Thing, ...], expected: list[float]) -> None:
    video = VideoFile(scene_video(tmp_path / "scene.mp4", seconds=41, things=things), sample_fps=None)
    video.keyframes_only = True  # every key frame (2 s apart), as the default audit path decodes them
    mask = polygons_mask([np.array(LOWER_HALF) * [video.width, video.height]], video.width, video.height)
    gate = ChangeGate(ReusePolicy(change_threshold=DEFAULT_CHANGE_THRESHOLD, max_reuse_s=10), mask=mask)
    inferred = [round(frame.t, 3) for frame in video.frames() if gate.needs_inference(frame.t, thumbnail(frame.image))]
    assert inferred == expected


@pytest.mark.parametrize(
    ("camera", "request_kwargs", "things", "expected"),
    [
        # 40 s, key frames every 2 s, analysed every 4 s: 10 frames; bound 10 s (default dwell 180 s)
        pytest.param({}, {}, (), (10, 5, 5), id="static, defaults"),
        pytest.param({"dwell_s": 20.0}, {}, (), (10, 10, 0), id="dwell 20 s caps the bound at 5 s"),
        pytest.param({}, {"keyframe_interval_s": None}, (), (20, 4, 16), id="every key frame"),
        # the interval never exceeds half the gap rule's span, or incidents would end between frames
        pytest.param({"max_gap_s": 4.0}, {}, (), (20, 4, 16), id="max_gap_s 4 s: every key frame"),
        pytest.param({}, {"sample_fps": 0.5}, (), (20, 20, 0), id="explicit sample rate: exact, no reuse"),
        pytest.param({}, {"sample_fps": 0.5, "max_reuse_s": 10.0}, (), (20, 4, 16), id="rate with reuse"),
        pytest.param({}, {}, (WALKER,), (10, 10, 0), id="busy sidewalk"),
    ],
)
def test_audit_summary_counts_inferred_and_reused_frames(
    tmp_path: Path,
    untrained_model: Path,
    camera: dict[str, float],
    request_kwargs: dict[str, float | None],
    things: tuple[Thing, ...],
    expected: tuple[int, int, int],
) -> None:
    video = scene_video(tmp_path / "clip.mp4", seconds=40, things=things)
    request = AuditRequest(
        videos=[video],
        camera=camera_yaml(tmp_path / "camera.yaml", **camera),  # type: ignore[arg-type]
        out=tmp_path / "out",
        model=untrained_model,
        progress=False,
        **request_kwargs,  # type: ignore[arg-type]
    )
    summary = run_audit(request)
    assert (summary["frames_analysed"], summary["frames_inferred"], summary["frames_reused"]) == expected
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames_reused"] == expected[2]


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"change_threshold": 300.0}, "change_threshold"),
        ({"max_reuse_s": -1.0}, "max_reuse_s"),
        ({"keyframe_interval_s": 0.0}, "key-frame interval"),
        ({"keyframe_interval_s": -4.0}, "key-frame interval"),
        ({"batch": 0}, "batch"),
    ],
)
def test_audit_refuses_bad_fast_path_settings(tmp_path: Path, request_kwargs: dict[str, float], message: str) -> None:
    request = AuditRequest(
        videos=[tmp_path / "never-read.mp4"],
        camera=camera_yaml(tmp_path / "camera.yaml"),
        out=tmp_path / "out",
        progress=False,
        **request_kwargs,  # type: ignore[arg-type]
    )
    with pytest.raises(InputError, match=message):
        run_audit(request)
