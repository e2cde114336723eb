"""Is a camera still looking at its street? (``ViewCheck``: moved, covered or out of focus.)

A camera knocked a few degrees, a PTZ camera left off its preset, a lens covered by a bag or sprayed,
or one out of focus: its zones no longer mean their street. Every few seconds (``check_every_s``) one
analysed frame is compared with the camera's *reference view*, a grey image ``WIDTH`` pixels wide: the
per-pixel median of its first ``REFERENCE_FRAMES`` analysed frames at least ``REFERENCE_SPACING_S``
apart (people passing through are not in a median), or a reference saved by an earlier run (``seed``).

* **Moved**: ORB features of the frame matched to the reference's, then a similarity transform (shift,
  rotation, scale) fitted with RANSAC (``cv2.estimateAffinePartial2D``), as in image registration:
  people and cars moving are outliers. The view moved when the transform carries the frame's points
  ``shift_fraction`` of the width or more, or turns it ``rotation_deg`` or more; also when the frame,
  rich in features, matches the reference nowhere (it shows another place), but only for a reference that
  frames of the same view do match (one learnt from a plain or noisy view does not: no match means nothing
  there; a reference kept by an earlier run earns that trust at its first match).
* **Obstructed**: on a grid of cells, contrast (standard deviation over mean) and edges (mean gradient
  over mean) both collapse against the reference's in at least ``covered_fraction`` of the cells that had
  texture in the reference: most of the view is covered by something flat and close to the lens.
* **Blurred**: the variance of the Laplacian (fine detail) falls below ``focus_ratio`` of the
  reference's while contrast stays: out of focus, fogged or smeared.

All measures are divided by the image's brightness, so dusk, clouds and auto-exposure change none.
A finding becomes the camera's status only after it held for ``enter_s`` over at least two checks, and
``online`` comes back after ``leave_s`` of clean checks: a bus passing or a crowd never trips it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from detector.video.resample import shrink

ViewStatus = Literal["online", "view_moved", "obstructed", "blurred"]
VIEW_PROBLEMS: tuple[ViewStatus, ...] = ("view_moved", "obstructed", "blurred")

WIDTH = 320
"""Width of the grey images compared (3 % of a view's width is ~10 pixels here: ample for registration)."""
REFERENCE_FRAMES = 5
REFERENCE_SPACING_S = 2.0
GRID = (8, 8)
ORB_FEATURES = 500
_MATCH_RATIO = 0.8
_RANSAC_PX = 3.0
_MIN_KEYPOINTS = 60
"""A frame (or reference) with fewer features than this is too plain or too dark to register: no
judgement of movement from it."""
_CONTRAST_FLOOR = 0.08
_TEXTURE_FLOOR = 0.04
"""Reference cells with less contrast or edge texture than these (sky, a plain wall, a black border) cannot
show a cover."""
_FLAT_CONTRAST = 0.05
_FLAT_TEXTURE = 0.025
"""A cell with less contrast and edges than these is flat, whatever the reference had."""


@dataclass(frozen=True)
class ViewSettings:
    check_every_s: float = 8.0
    """Seconds of video between two checks: a check costs ~9 ms of CPU on a 1080p frame (bench/view_check.py),
    under 5 % of a camera's analysis at 0.5 fps even where the frame-skip gate spares the model half its
    frames; a change is still believed within 24 s (three checks)."""
    shift_fraction: float = 0.015
    """A shift of the view by this fraction of its width (or more) is a move."""
    rotation_deg: float = 1.5
    """A turn of the view by this many degrees (or more) is a move."""
    min_inliers: int = 15
    """Matches that must agree on one transform before it is believed."""
    covered_fraction: float = 0.5
    """Share of the textured cells whose contrast and edges collapsed that makes the view obstructed."""
    collapse: float = 0.3
    """A cell collapsed when its contrast and its edges both fell below this share of the reference's."""
    focus_ratio: float = 0.35
    """Fine detail (variance of the Laplacian) below this share of the reference's is a view out of focus."""
    enter_s: float = 10.0
    """A finding must hold this long (over at least two checks) before it becomes the status."""
    leave_s: float = 6.0
    """Clean checks for this long bring the status back to online."""

    def __post_init__(self) -> None:
        if not (self.check_every_s > 0 and self.enter_s >= 0 and self.leave_s >= 0):
            raise ValueError("check_every_s must be positive; enter_s and leave_s must not be negative")


DEFAULT_SETTINGS = ViewSettings()


@dataclass(frozen=True)
class ViewReading:
    """What one check measured, and what it found (``online`` or a problem)."""

    t: float
    finding: ViewStatus
    shift: float | None
    """How far the view moved, as a fraction of its width (None: not registered)."""
    rotation_deg: float | None
    inliers: int
    covered: float
    """Share of the reference's textured cells that collapsed."""
    focus: float
    """Fine detail against the reference's (1: the same)."""


@dataclass
class _Reference:
    gray: npt.NDArray[np.uint8]
    keypoints: Sequence[cv2.KeyPoint]
    descriptors: npt.NDArray[np.uint8] | None
    cells: npt.NDArray[np.float64]
    """Per cell: contrast and edges, shape (rows, cols, 2)."""
    focus: float


def gray_view(image: npt.NDArray[np.uint8], width: int = WIDTH) -> npt.NDArray[np.uint8]:
    """The frame as a grey image ``width`` pixels wide (area-averaged; made small before it is made grey,
    which on a 1080p frame is the cheaper order)."""
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    small = shrink(image, (width, height))
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.uint8) if small.ndim == 3 else small


def _normalised(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    # Divided by the mean brightness: a gain change (dusk, auto-exposure) changes no measure.
    image = gray.astype(np.float32)
    return image / max(float(image.mean()), 4.0)


def _cells(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    image = gray.astype(np.float32)
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    rows, cols = GRID

    def cell_means(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        return np.asarray(cv2.resize(values, (cols, rows), interpolation=cv2.INTER_AREA), dtype=np.float64)

    mean = cell_means(image)
    spread = np.sqrt(np.maximum(cell_means(image * image) - mean * mean, 0.0))
    edges = cell_means(np.abs(gx) + np.abs(gy))
    # Divided by each cell's brightness (at least 8: a black border is not made textured by its noise).
    floor = np.maximum(mean, 8.0)
    return np.stack([spread / floor, edges / floor / 8.0], axis=-1)


def _focus(gray: npt.NDArray[np.uint8]) -> float:
    return float(cv2.Laplacian(_normalised(gray), cv2.CV_32F).var())


class ViewCheck:
    """One camera's view against its reference; ``observe`` every analysed frame, ``status`` the verdict."""

    def __init__(self, settings: ViewSettings = DEFAULT_SETTINGS) -> None:
        self.settings = settings
        self.status: ViewStatus = "online"
        self.since: float | None = None
        """Time of the last status change (None: online from the start)."""
        self.readings = 0
        self.last: ViewReading | None = None
        self._orb = cv2.ORB_create(nfeatures=ORB_FEATURES)  # type: ignore[attr-defined]
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self._learning: list[npt.NDArray[np.uint8]] = []
        self._learnt_at: float | None = None
        self._reference: _Reference | None = None
        self._registrable = False
        """Frames of the reference's own view match it: a frame that matches nowhere shows another place."""
        self._next_check: float | None = None
        self._candidate: ViewStatus | None = None
        self._candidate_since = 0.0
        self._candidate_count = 0

    # ------------------------------------------------------------------ reference

    @property
    def reference(self) -> npt.NDArray[np.uint8] | None:
        """The reference view (grey, ``WIDTH`` wide) once learnt: what a later run may ``seed`` with."""
        return None if self._reference is None else self._reference.gray

    def seed(self, gray: npt.NDArray[np.uint8]) -> bool:
        """Start from a reference kept by an earlier run; False (and nothing changes) when unusable."""
        if gray.ndim != 2 or gray.shape[1] != WIDTH or gray.shape[0] < 16 or gray.dtype != np.uint8:
            return False
        self._reference = self._describe(gray)
        self._registrable = False  # until a frame matches it
        return True

    def _describe(self, gray: npt.NDArray[np.uint8]) -> _Reference:
        keypoints, descriptors = self._orb.detectAndCompute(_equalised(gray), None)
        return _Reference(gray, keypoints, descriptors, _cells(gray), _focus(gray))

    def _learn(self, gray: npt.NDArray[np.uint8], t: float) -> None:
        if self._learnt_at is not None and t - self._learnt_at < REFERENCE_SPACING_S:
            return
        if self._learning and self._learning[0].shape != gray.shape:
            self._learning.clear()
        self._learning.append(gray)
        self._learnt_at = t
        if len(self._learning) >= REFERENCE_FRAMES:
            median = np.median(np.stack(self._learning), axis=0).astype(np.uint8)
            self._reference = self._describe(median)
            # Does a frame of this very view register against it? (Not on a plain or noisy view.)
            self._registrable = self._register(self._learning[-1])[0] is not None
            self._learning.clear()

    # ------------------------------------------------------------------ checks

    def due(self, t: float) -> bool:
        """Whether ``observe`` at ``t`` would check (or learn) rather than return at once."""
        return self._reference is None or self._next_check is None or t >= self._next_check

    def observe(self, image: npt.NDArray[np.uint8], t: float) -> ViewStatus:
        """Feed an analysed frame (BGR or grey) at video/engine second ``t``; returns the status."""
        if not self.due(t):
            return self.status
        gray = gray_view(image)
        if self._reference is None:
            self._learn(gray, t)
            return self.status
        if gray.shape != self._reference.gray.shape:
            return self.status  # another frame size: the caller starts a new check for it
        self._next_check = t + self.settings.check_every_s * 0.999
        reading = self.measure(image, t, gray)
        self.last = reading
        self.readings += 1
        self._settle(reading.finding, t)
        return self.status

    def measure(self, image: npt.NDArray[np.uint8], t: float, gray: npt.NDArray[np.uint8] | None = None) -> ViewReading:
        """One comparison with the reference (which must be learnt or seeded)."""
        reference = self._reference
        assert reference is not None, "measure needs a reference view"
        settings = self.settings
        gray = gray_view(image) if gray is None else gray
        cells = _cells(gray)
        textured = (reference.cells[..., 0] >= _CONTRAST_FLOOR) & (reference.cells[..., 1] >= _TEXTURE_FLOOR)
        # Against the reference's, or flat outright (a cover's own faint texture may exceed a share of
        # a cell that was only a little textured).
        collapsed = (cells[..., 0] < np.maximum(settings.collapse * reference.cells[..., 0], _FLAT_CONTRAST)) & (
            cells[..., 1] < np.maximum(settings.collapse * reference.cells[..., 1], _FLAT_TEXTURE)
        )
        covered = float(collapsed[textured].mean()) if textured.any() else 0.0
        focus = _focus(gray) / max(reference.focus, 1e-9)
        shift, rotation, inliers, rich = self._register(gray)
        if shift is not None and shift < settings.shift_fraction:
            self._registrable = True
        finding: ViewStatus = "online"
        if covered >= settings.covered_fraction:
            finding = "obstructed"
        elif focus < settings.focus_ratio:
            finding = "blurred"
        elif shift is not None and rotation is not None:
            if shift >= settings.shift_fraction or abs(rotation) >= settings.rotation_deg:
                finding = "view_moved"
        elif rich and self._registrable:
            finding = "view_moved"  # plenty of features, none where the reference has them
        return ViewReading(
            t=t, finding=finding, shift=shift, rotation_deg=rotation, inliers=inliers, covered=covered, focus=focus
        )

    def _register(self, gray: npt.NDArray[np.uint8]) -> tuple[float | None, float | None, int, bool]:
        """(shift as a fraction of the width, rotation in degrees, inliers, whether both images are rich
        enough in features to judge); shift and rotation None when no transform was found."""
        reference = self._reference
        assert reference is not None
        keypoints, descriptors = self._orb.detectAndCompute(_equalised(gray), None)
        rich = len(keypoints) >= _MIN_KEYPOINTS and len(reference.keypoints) >= _MIN_KEYPOINTS
        if descriptors is None or reference.descriptors is None or len(keypoints) < 2:
            return None, None, 0, rich
        pairs = self._matcher.knnMatch(descriptors, reference.descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < _MATCH_RATIO * p[1].distance]
        if len(good) < self.settings.min_inliers:
            return None, None, len(good), rich
        src = np.array([keypoints[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
        dst = np.array([reference.keypoints[m.trainIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
        matrix, mask = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=_RANSAC_PX, maxIters=2000, confidence=0.99
        )
        inliers = int(mask.sum()) if mask is not None else 0
        if matrix is None or inliers < self.settings.min_inliers:
            return None, None, inliers, rich
        h, w = gray.shape
        # How far the transform carries a spread of the frame's points (corners, edge middles, centre):
        # a shift, a turn about any point, or a zoom all show here, in one figure.
        xs, ys = np.meshgrid([0.0, w / 2, w - 1.0], [0.0, h / 2, h - 1.0])
        points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
        moved = matrix @ points - points[:2]
        shift = float(np.median(np.hypot(moved[0], moved[1]))) / w
        rotation = math.degrees(math.atan2(float(matrix[1, 0]), float(matrix[0, 0])))
        return shift, rotation, inliers, rich

    def _settle(self, finding: ViewStatus, t: float) -> None:
        if finding == self.status:
            self._candidate = None
            return
        if finding != self._candidate:
            self._candidate, self._candidate_since, self._candidate_count = finding, t, 1
            return
        self._candidate_count += 1
        hold = self.settings.leave_s if finding == "online" else self.settings.enter_s
        if self._candidate_count >= 2 and t - self._candidate_since >= hold:
            self.status = finding
            self.since = self._candidate_since  # when it was first seen, not when it was believed
            self._candidate = None


def _equalised(gray: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    # Features are found on a stretched image, so a dim view yields as many as a bright one.
    return np.asarray(cv2.equalizeHist(gray), dtype=np.uint8)


_WORDS: dict[ViewStatus, str] = {
    "online": "sound",
    "view_moved": "moved (shifted or turned against the reference view)",
    "obstructed": "covered over most of the view",
    "blurred": "out of focus",
}


@dataclass
class ViewStretch:
    """A stretch of video whose view was not ``online``."""

    status: ViewStatus
    start_s: float
    end_s: float | None = None


@dataclass
class ViewLog:
    """The stretches of a ``ViewCheck``'s statuses over a video (for the audit's ``summary.json`` warnings)."""

    stretches: list[ViewStretch] = field(default_factory=list)

    def note(self, check: ViewCheck, t: float) -> None:
        """After ``check.observe`` at ``t``."""
        open_stretch = self.stretches[-1] if self.stretches and self.stretches[-1].end_s is None else None
        if open_stretch is not None and open_stretch.status == check.status:
            return
        if open_stretch is None and check.status == "online":
            return
        at = check.since if check.since is not None else t
        if open_stretch is not None:
            open_stretch.end_s = at
        if check.status != "online":
            self.stretches.append(ViewStretch(check.status, at))

    def warnings(self, video: str) -> list[dict[str, object]]:
        """One ``summary.json`` warning per stretch; ``to_s`` null when it lasted to the end."""
        found: list[dict[str, object]] = []
        for stretch in self.stretches:
            until = "the end" if stretch.end_s is None else f"{stretch.end_s:.0f} s"
            found.append(
                {
                    "video": video,
                    "warning": stretch.status,
                    "from_s": round(stretch.start_s, 1),
                    "to_s": None if stretch.end_s is None else round(stretch.end_s, 1),
                    "detail": f"the camera's view was {_WORDS[stretch.status]} from {stretch.start_s:.0f} s to "
                    f"{until}: alerts of that stretch are marked camera_health and may be wrong or missing",
                }
            )
        return found
