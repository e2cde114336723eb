"""Skip inference on frames where nothing that matters changed, reusing the last inferred detections.

On a fixed street camera most analysed frames show the same scene as the frame before: a stall that
stands for an hour looks the same in every one of them. Running the model again on such a frame
can only repeat what it said last time, so the audit compares a tiny grey thumbnail of each frame
with the thumbnail of the last frame the model actually saw, and when no part of the watched area
changed by more than ``change_threshold`` grey levels, it hands the pipeline that frame's detections
again, stamped with the new frame's time. The comparison costs well under a millisecond; the model
costs about a hundred on two CPU cores. Busy scenes gain nothing (someone walks on the sidewalk in
every frame of the sample clips, so the model runs on every frame there), quiet ones most of it.

Why the largest cell difference and not the mean: an object that appears covers a few cells of the
thumbnail; the mean over the whole frame dilutes that below the noise. Each cell is the average of
a block of pixels (about 30 x 30 at 1080p), which already removes sensor grain and compression noise,
so one changed cell means something moved there. On the sample clips and their 1080p re-encodes the
cells of an unchanged scene differ by at most 2 grey levels between key frames; the default threshold
of 12 still catches an object 40 pixels across at 1080p (20 at 540p) that differs from the ground by
30 grey levels wherever it stands, since it covers at least 4/9 of some cell
(tests/detector/test_frame_skip.py).

Why only inside the zones (when a camera's zones are given): only detections anchored in a zone can
raise an incident, and an object anchored in a zone covers pixels of that zone (its anchor is its
own bottom-centre or centre, or part of its box for ``overlap``), so it cannot appear, leave or move
without changing a zone cell. Cars on the carriageway and the camera's clock overlay then do not
force inference. The mask is widened by one cell so that rounding to the coarse grid loses nothing.
A camera without zones can raise nothing, so there only the bound makes the model run.

Why a bound: a change too faint for the thumbnail (a small grey cart on grey pavement) would
otherwise be missed for as long as nothing else changes. The model runs at least every
``max_reuse_s`` seconds of video, and the audit caps that bound at a fraction of the camera's
shortest dwell (``DWELL_FRACTION``), so a missed appearance delays an incident's start by at most
that much and never costs a whole dwell (default dwells 180 s and more: the bound stays 10 s; the
demo cameras' 20 s dwell: 5 s).

The decision depends only on thumbnails and timestamps, never on detections, so it is the same
however the inferred frames are batched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from zones.detections import Detections
from zones.errors import InputError
from zones.geometry import CameraZones

THUMB_SIZE: Final[tuple[int, int]] = (64, 36)
"""Thumbnail (width, height): 16:9 cells, about 30 x 30 pixels each at 1080p."""

DEFAULT_CHANGE_THRESHOLD: Final[float] = 12.0
"""Grey levels (0-255) a thumbnail cell must change by to count as a change."""

DEFAULT_MAX_REUSE_S: Final[float] = 10.0
"""Video seconds the model may go without running, at most."""

DWELL_FRACTION: Final[float] = 0.25
"""The reuse bound never exceeds this fraction of the camera's shortest dwell."""

GreyThumb = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]


def thumbnail(image: npt.NDArray[np.uint8]) -> GreyThumb:
    """The grey ``THUMB_SIZE`` thumbnail of a BGR frame; each cell averages its block of pixels."""
    small = cv2.resize(image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    return np.asarray(grey, dtype=np.uint8)


def polygons_mask(polygons: Iterable[npt.ArrayLike], width: int, height: int) -> Mask:
    """Thumbnail cells covered by any of ``polygons`` (pixel coordinates of a ``width`` x ``height`` frame),
    widened by one cell."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    cols, rows = THUMB_SIZE
    scale = np.array([cols / width, rows / height], dtype=np.float64)
    canvas = np.zeros((rows, cols), dtype=np.uint8)
    for polygon in polygons:
        points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) * scale
        # Cell (i, j) spans [j, j+1) x [i, i+1) in thumbnail units; shift by half a cell so that
        # fillPoly's pixel centres line up, then the dilation covers what rounding cut off.
        cv2.fillPoly(canvas, [np.round(points - 0.5).astype(np.int32)], 1)
    widened = cv2.dilate(canvas, np.ones((3, 3), dtype=np.uint8))
    return np.asarray(widened, dtype=bool)


def change_score(reference: GreyThumb, current: GreyThumb, mask: Mask | None = None) -> float:
    """Largest absolute grey-level change of any (masked) thumbnail cell."""
    if reference.shape != current.shape:
        return math.inf  # a different frame size is a different scene
    diff = cv2.absdiff(reference, current)
    if mask is not None:
        if not mask.any():
            return 0.0
        diff = diff[mask]
    return float(diff.max()) if diff.size else 0.0


@dataclass(frozen=True)
class ReusePolicy:
    """When the audit may reuse detections instead of running the model (see the module docstring).

    ``change_threshold``: grey levels (0-255) any watched thumbnail cell must change by, against the
    last inferred frame, for the model to run again; 0 runs the model on every analysed frame.
    ``max_reuse_s``: video seconds after which the model runs again whatever the thumbnails say;
    0 disables reuse.
    """

    change_threshold: float = DEFAULT_CHANGE_THRESHOLD
    max_reuse_s: float = DEFAULT_MAX_REUSE_S

    def __post_init__(self) -> None:
        if not (math.isfinite(self.change_threshold) and 0 <= self.change_threshold <= 255):
            raise ValueError(f"change_threshold must be within 0..255, got {self.change_threshold}")
        if not (math.isfinite(self.max_reuse_s) and self.max_reuse_s >= 0):
            raise ValueError(f"max_reuse_s must be a finite number >= 0, got {self.max_reuse_s}")

    @classmethod
    def from_options(cls, change_threshold: float | None, max_reuse_s: float | None) -> ReusePolicy:
        """The policy of ``--reuse-threshold`` / ``--max-reuse-s`` (None: the default); ``InputError`` when
        a value is out of range."""
        try:
            return cls(
                DEFAULT_CHANGE_THRESHOLD if change_threshold is None else change_threshold,
                DEFAULT_MAX_REUSE_S if max_reuse_s is None else max_reuse_s,
            )
        except ValueError as error:
            raise InputError(str(error)) from None

    @property
    def enabled(self) -> bool:
        return self.change_threshold > 0 and self.max_reuse_s > 0

    def bounded(self, shortest_dwell_s: float | None) -> ReusePolicy:
        """This policy with ``max_reuse_s`` capped at ``DWELL_FRACTION`` of the shortest dwell."""
        if shortest_dwell_s is None:
            return self
        cap = DWELL_FRACTION * shortest_dwell_s
        return ReusePolicy(self.change_threshold, min(self.max_reuse_s, cap))


NO_REUSE: Final = ReusePolicy(change_threshold=0.0, max_reuse_s=0.0)


class ChangeGate:
    """Per analysed frame, in time order: run the model (``True``) or reuse the last inferred detections.

    Inferred: the first frame; any frame whose watched cells changed by at least the threshold since
    the last inferred frame; and any frame after which waiting for the next one would leave the model
    idle for more than ``max_reuse_s`` (the next frame is expected one spacing later, the spacing of
    the last two frames), so consecutive inferences are at most ``max_reuse_s`` apart whenever frames
    come at a steady rate, and never more than ``max_reuse_s`` plus one spacing.
    """

    def __init__(self, policy: ReusePolicy, *, mask: Mask | None = None) -> None:
        self.policy = policy
        self.mask = mask
        self._reference: GreyThumb | None = None
        self._reference_t = -math.inf
        self._last_t: float | None = None
        self.inferred = 0
        self.reused = 0

    def needs_inference(self, t: float, thumb: GreyThumb | None, *, force: bool = False) -> bool:
        """Whether the model must run on the frame at ``t``; ``force`` makes it run (e.g. after damage)."""
        spacing = max(0.0, t - self._last_t) if self._last_t is not None else 0.0
        self._last_t = t
        # A small slack so that timestamps like 9.999999 (from pts arithmetic) count as 10.
        idle_by_next = t - self._reference_t + spacing
        infer = (
            force
            or not self.policy.enabled
            or thumb is None
            or self._reference is None
            or idle_by_next > self.policy.max_reuse_s + 1e-6
            or change_score(self._reference, thumb, self.mask) >= self.policy.change_threshold
        )
        if infer:
            self._reference = thumb
            self._reference_t = t
            self.inferred += 1
        else:
            self.reused += 1
        return infer


def camera_gate(policy: ReusePolicy, zones: CameraZones) -> ChangeGate:
    """One camera's gate: ``policy`` with its bound capped by the camera's shortest dwell, watching the
    camera's zones only (audit and live alike)."""
    policy = policy.bounded(min((z.dwell_s(c) for z in zones.zones for c in z.categories), default=None))
    if not policy.enabled:
        return ChangeGate(NO_REUSE)
    polygons = (np.asarray(zone.polygon.exterior.coords) for zone in zones.zones)
    return ChangeGate(policy, mask=polygons_mask(polygons, zones.width, zones.height))


class _HasImage(Protocol):
    @property
    def image(self) -> npt.NDArray[np.uint8]: ...


class _Predictor(Protocol):
    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]: ...


FrameT = TypeVar("FrameT", bound=_HasImage)


@dataclass(frozen=True)
class Analysed(Generic[FrameT]):
    """One analysed frame, its detections and whether the model ran on it (``False``: reused)."""

    frame: FrameT
    detections: Detections
    inferred: bool


def analyse(
    frames: Iterable[tuple[FrameT, float, GreyThumb | None]],
    detector: _Predictor,
    gate: ChangeGate,
    *,
    batch: int = 1,
    max_pending: int = 16,
) -> Iterator[Analysed[FrameT]]:
    """Detections for each ``(frame, t, thumbnail)`` in order, inferring in batches of ``batch`` frames.

    A frame whose ``after_damage`` attribute is true (the source lost data just before it) is always
    inferred: detections are never carried across damaged data. Frames waiting for their batch are
    held at most ``max_pending`` deep (the images are large).
    """
    if batch < 1 or max_pending < batch:
        raise ValueError("need 1 <= batch <= max_pending")
    pending: list[tuple[FrameT, bool]] = []
    to_infer: list[FrameT] = []
    last: Detections | None = None

    def flush() -> Iterator[Analysed[FrameT]]:
        nonlocal last
        results = iter(detector.predict([frame.image for frame in to_infer]) if to_infer else [])
        for frame, infer in pending:
            if infer:
                last = next(results)
            assert last is not None  # the first frame is always inferred
            yield Analysed(frame, last, infer)
        pending.clear()
        to_infer.clear()

    for frame, t, thumb in frames:
        infer = gate.needs_inference(t, thumb, force=bool(getattr(frame, "after_damage", False)))
        pending.append((frame, infer))
        if infer:
            to_infer.append(frame)
        if len(to_infer) >= batch or len(pending) >= max_pending:
            yield from flush()
    yield from flush()
