"""Find what stays: regions of a fixed camera's view where something new appeared and has not moved since.

Every violation streetwatch looks for is stationary (a stall set up, goods put out, laundry hung, a shed
built), and a fixed camera sees its street without them most of the time. So, besides the model, each
camera keeps two OpenCV background models of its analysed frames (the dual background of Porikli et al.
2008): a long-term one that learns over many minutes and a short-term one that learns in seconds.

    long-term foreground  and  short-term background   ⇒   something new that stopped moving

A person walking by is foreground in both (moving), a parked cart is foreground only in the long-term
model once the short-term one has absorbed it. Such pixels that stay so for ``min_stay_s`` form a
*region*; a region is then *held*: its look is remembered beside the background it hides, and it lasts
while the frame there looks more like the object than like that background (so it survives the long-term
model absorbing it after many minutes, and people walking in front of it), and ends when the background
shows again. Knowing nothing of how a stall looks, this works on real cameras from the first day.

Why these rules:
- Time comes from frame timestamps only: each model's learning rate is ``1 - exp(-dt / tau)``, so the
  same clip analysed every 1 s or every 4 s learns about the same per second of video (the short-term
  rate is capped so that one sighting never becomes background, see ``_models``).
- Lighting: every frame is scaled to the long-term background's exposure before either model sees it
  (the median ratio of frame to background), so a global ramp (dusk, a cloud) changes nothing. A change
  that is more than exposure (lights on, the day/night switch of an IR camera) turns most of the frame
  into foreground at once, which no object does: both models relearn the frame, held regions are kept
  (their look is taken anew) and the caller is told (``scene_changed``).
- People who stand still for a while are found like objects; their regions keep stirring (``restless``)
  where a thing put down does not, which lets the caller leave them out.
- Shadows: MOG2 marks pixels that are a darker copy of the background as shadow (127). They count as
  shadow only where the ground's texture shows through them (``_foreground``): a shadow sweeping over the
  pavement raises nothing, while a black bag on light paving (to MOG2 a darker copy of it too) is found.
- A held region whose look changed once and then keeps still (the person who stood beside a bag walked
  off, the bag tipped over) is found again as it is now (``_settled``): its old look would keep it restless.
- Small or thin blobs (rain streaks, compression noise) are removed by an opening and a minimum area.
- The models run on a small copy of the frame (``width`` pixels wide): a few milliseconds per frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from detector.video.resample import shrink
from zones.errors import InputError

Image = npt.NDArray[Any]  # uint8 frames; int16 copies where looks are compared
BoolMap = npt.NDArray[np.bool_]

_FOREGROUND: Final = 255  # MOG2's label for foreground
_SHADOW: Final = 127  # and for shadow: a darker copy of the background (see _foreground)
_TEXTURE_WINDOW: Final = 7  # analysis pixels: the window in which a shadow's texture is compared
_SHADOW_NCC: Final = 0.5  # correlation of frame and background above which a darker pixel is shadow
_PLAIN_STD: Final = 2.0  # grey levels of texture (standard deviation in the window) below which ground is plain
_BACKGROUND_RATIO: Final = 0.7
_MAX_SHORT_RATE: Final = 0.25  # < 1 - _BACKGROUND_RATIO would never absorb; at 0.25 two sightings do
MIN_STIR_FRAMES: Final = 2  # looks compared before a region's restlessness is given
_STIR_FRAMES: Final = 9  # frames over which a held region's restlessness is judged (median: passers-by drop out)
_RIM: Final = 2  # analysis pixels on either side of a region's outline where the ghost test reads edges
_RELOOK_DIFF: Final = 10.0  # mean grey levels from its look and its background beyond which a region changed
_STILL_DIFF: Final = 3.0  # mean grey levels frame to frame within which a region keeps still (camera noise)
_SETTLE_FRAMES: Final = 3  # consecutive still frame pairs after which a changed region is taken as it is now
_GAIN_DEADBAND: Final = 0.03  # exposure differences this small are left to the models' own tolerance
_PICTURE_REFRESH: Final = 0.01  # share of the long-term time constant a fetched background picture is kept


class FinderSettings(BaseModel):
    """How the stationary-object finder of one camera behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(default=320, ge=64, le=1920, description="Analysis width in pixels (height keeps the aspect).")
    short_tau_s: float = Field(
        default=6.0,
        gt=0,
        le=600,
        description="Time constant of the short-term model: a still object is absorbed in ~1 tau.",
    )
    long_tau_s: float = Field(
        default=3600.0, gt=0, le=86400 * 7, description="Time constant of the long-term model (the empty street)."
    )
    min_stay_s: float = Field(
        default=8.0, ge=0, le=3600, description="Seconds a region must have stayed before it is reported."
    )
    grace_s: float = Field(
        default=12.0, ge=0, le=600, description="Unseen seconds (occlusion, flicker) a pixel or region survives."
    )
    min_area: float = Field(
        default=0.0015, gt=0, lt=1, description="Smallest region reported, as a fraction of the frame's area."
    )
    join: float = Field(
        default=0.02,
        ge=0,
        le=0.2,
        description="Still parts closer than this share of the frame's width are one object (goods on a rack).",
    )
    scene_change_fraction: float = Field(
        default=0.45,
        gt=0,
        le=1,
        description="Share of the frame turning foreground at once that counts as a scene change.",
    )
    var_threshold: float = Field(default=25.0, gt=0, le=255, description="MOG2 varThreshold of both models.")
    min_median: float = Field(
        default=12.0,
        ge=0,
        le=255,
        description="A frame darker than this median grey level is too dark to find objects in.",
    )
    min_height: int = Field(
        default=120, ge=16, le=4320, description="A frame lower than this is too small to find objects in."
    )


@dataclass(frozen=True)
class StationaryRegion:
    """A region that appeared and stayed, in pixels of the full frame."""

    region_id: int
    xyxy: tuple[float, float, float, float]
    first_seen_t: float
    last_seen_t: float
    fill: float
    """Share of the box's pixels that were found new and still: a rough confidence."""
    restless: float | None
    """How much the region's look keeps changing: the median over its last frames of the mean grey-level
    difference from its look when first held (None until ``MIN_STIR_FRAMES`` frames are in). A thing put
    down stays at the camera's noise (about 3 on the rendered clips), a person standing or sitting there
    moves head, arms and weight (about 15)."""


@dataclass
class _Held:
    region_id: int
    box: tuple[int, int, int, int]  # small-frame pixels, x2/y2 exclusive
    first_seen_t: float
    last_seen_t: float
    fill: float
    look: Image
    background: Image
    ghost: bool
    held_t: float
    """When it (or the region it was found again from, see ``_settled``) was held: its pixels had stayed
    ``min_stay_s`` by then."""
    stirs: list[float] = field(default_factory=list)
    """What stays here is the bare street where something stood when the models started or that the
    long-term model had absorbed before it left: followed like an object (so it is not found again
    and again), never reported."""


@dataclass
class FinderStep:
    """What one frame changed: the regions held now, and whether the scene as a whole changed."""

    regions: list[StationaryRegion]
    scene_changed: bool
    too_dark: bool = False


@dataclass
class StationaryFinder:
    """One camera's finder; ``update(image, t)`` per analysed frame, in time order."""

    frame_width: int
    frame_height: int
    settings: FinderSettings = field(default_factory=FinderSettings)
    _long: cv2.BackgroundSubtractorMOG2 | None = None
    _short: cv2.BackgroundSubtractorMOG2 | None = None
    _last_t: float | None = None
    _long_since: npt.NDArray[np.float64] | None = None
    _static_since: npt.NDArray[np.float64] | None = None
    _static_last: npt.NDArray[np.float64] | None = None
    _held: list[_Held] = field(default_factory=list)
    _released: list[tuple[tuple[int, int, int, int], float]] = field(default_factory=list)  # (box, held_t)
    _recent: list[tuple[float, Image]] = field(default_factory=list)  # the last analysed small frames
    _next_id: int = 1
    _picture: tuple[float, Image, Image] | None = None  # (when fetched, BGR, grey): see _long_picture
    _seed: Image | None = None
    frames_seen: int = 0
    frames_too_dark: int = 0

    def __post_init__(self) -> None:
        if self.frame_width <= 0 or self.frame_height <= 0:
            raise InputError(f"frame size must be positive, got {self.frame_width}x{self.frame_height}")
        width = min(self.settings.width, self.frame_width)
        self.small_size = (width, max(8, round(self.frame_height * width / self.frame_width)))
        self.scale = (self.frame_width / self.small_size[0], self.frame_height / self.small_size[1])
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._join_px = max(1, round(self.settings.join * self.small_size[0]))
        self._join_kernel = np.ones((2 * self._join_px + 1, 2 * self._join_px + 1), np.uint8)

    def background(self) -> Image | None:
        """The long-term model's picture of the empty street (analysis size, BGR), once it has one: what a
        restart hands to ``seed`` so that what stands there now is not taken for the street."""
        return None if self._long is None else np.asarray(self._long.getBackgroundImage(), dtype=np.uint8)

    def seed(self, background: Image) -> bool:
        """Start the long-term model from ``background`` (a ``background()`` of an earlier run of this
        camera) instead of the first frame. Refused (False) when it is not of this finder's analysis size
        or the finder has started already."""
        expected = (self.small_size[1], self.small_size[0], 3)
        if self._long is not None or background.shape != expected or background.dtype != np.uint8:
            return False
        self._seed = background
        return True

    @property
    def usable(self) -> bool:
        """False when frames are too small to find objects in (a warning for the audit summary)."""
        return self.frame_height >= self.settings.min_height

    def update(self, image: Image, t: float) -> FinderStep:
        if self._last_t is not None and t <= self._last_t:
            return FinderStep(self.regions(), scene_changed=False)  # a repeated or late frame teaches nothing
        self.frames_seen += 1
        small = shrink(image, self.small_size)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        if _median_grey(grey) < self.settings.min_median:
            self.frames_too_dark += 1
            self._last_t = t
            return FinderStep(self.regions(), scene_changed=False, too_dark=True)
        if self._long is None or self._short is None or self._last_t is None:
            self._start(small, t)
            return FinderStep([], scene_changed=False)
        long_background_bgr, long_background = self._long_picture(t)
        small, grey = self._match_exposure(small, grey, long_background)
        dt = t - self._last_t
        self._last_t = t
        long_fg = _foreground(
            self._long.apply(small, learningRate=_rate(dt, self.settings.long_tau_s)), grey, long_background
        )
        # Capped so that one sighting never outweighs the background (see _models): at sparse sampling a
        # passer-by seen in one frame must not become short-term background.
        short_rate = min(_rate(dt, self.settings.short_tau_s), _MAX_SHORT_RATE)
        short = self._short
        # Only where the long-term model sees something new does the short-term one's verdict count (a
        # pixel is still where it is new to the first and old to the second): its shadow pixels elsewhere
        # need no texture test, and on most frames there are none left, nor a background to fetch.
        short_fg = _foreground(
            short.apply(small, learningRate=short_rate),
            grey,
            lambda: cv2.cvtColor(short.getBackgroundImage(), cv2.COLOR_BGR2GRAY),
            where=long_fg,
        )
        if float(long_fg.mean()) >= self.settings.scene_change_fraction:
            self._relearn(small, t)
            return FinderStep(self.regions(), scene_changed=True)
        self._track_pixels(long_fg, short_fg, t)
        self._follow_held(small, t)
        self._hold_new(small, t, long_background_bgr)
        self._recent = [*self._recent[-(_STIR_FRAMES - 1) :], (t, small)]
        return FinderStep(self.regions(), scene_changed=False)

    def _long_picture(self, t: float) -> tuple[Image, Image]:
        """The long-term model's background (BGR, grey), fetched again once it may have moved by 1 %.

        Each fetch costs a third of a model's apply, and the long-term model moves by ``1 - exp(-dt / tau)``:
        within ``_PICTURE_REFRESH`` of its time constant (36 s at the default hour) the picture is the same
        to within a percent, which neither the exposure match nor a region's remembered background feels.
        """
        assert self._long is not None
        picture = self._picture
        if picture is None or t - picture[0] >= _PICTURE_REFRESH * self.settings.long_tau_s:
            bgr = np.asarray(self._long.getBackgroundImage(), dtype=np.uint8)
            picture = self._picture = (t, bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        return picture[1], picture[2]

    def regions(self) -> list[StationaryRegion]:
        sx, sy = self.scale
        return [
            StationaryRegion(
                region_id=held.region_id,
                xyxy=(held.box[0] * sx, held.box[1] * sy, held.box[2] * sx, held.box[3] * sy),
                first_seen_t=held.first_seen_t,
                last_seen_t=held.last_seen_t,
                fill=held.fill,
                restless=float(np.median(held.stirs)) if len(held.stirs) >= MIN_STIR_FRAMES else None,
            )
            for held in self._held
            if not held.ghost
        ]

    @staticmethod
    def _match_exposure(small: Image, grey: Image, background: Image) -> tuple[Image, Image]:
        """The frame (and its grey copy) scaled to the long-term background's exposure (``background``, grey).

        The gain is the median of frame / background over all pixels: a global change of light (dusk, a
        cloud, auto-exposure) moves every pixel by the same factor, while a shadow or an object moves
        only the pixels it covers, which the median ignores as long as they are fewer than half.
        """
        # Every other pixel each way: the median of 14 400 ratios is as good, at a quarter of the cost.
        sample, sample_background = grey[::2, ::2], background[::2, ::2]
        gain = float(np.median(sample.astype(np.float32) / np.maximum(sample_background.astype(np.float32), 8.0)))
        if abs(gain - 1.0) < _GAIN_DEADBAND or gain <= 0:
            return small, grey
        return cv2.convertScaleAbs(small, alpha=1.0 / gain), cv2.convertScaleAbs(grey, alpha=1.0 / gain)

    def _models(self) -> tuple[cv2.BackgroundSubtractorMOG2, cv2.BackgroundSubtractorMOG2]:
        made = []
        for _ in range(2):
            model = cv2.createBackgroundSubtractorMOG2(
                history=500, varThreshold=self.settings.var_threshold, detectShadows=True
            )
            # A mode joins the background only once the old background's weight falls below this. OpenCV's
            # 0.9 lets one frame of a passer-by (weight = the learning rate, 0.15 at 1 s / 6 s) count as
            # background in the short-term model the next time someone passes, which made busy pavements
            # look still; at 0.7 a mode must be seen for about tau / 3 of video first.
            model.setBackgroundRatio(_BACKGROUND_RATIO)
            made.append(model)
        return made[0], made[1]

    def _start(self, small: Image, t: float) -> None:
        self._long, self._short = self._models()
        self._picture = None
        # Seeded (a restart): what differs from the street the last run knew is long-term foreground
        # and, absorbed at once by the short-term model, still: it is held after min_stay_s like anything
        # put down. A seed from other light makes most of the frame foreground: a scene change, relearnt.
        seed, self._seed = self._seed, None
        self._long.apply(seed if seed is not None else small, learningRate=1.0)
        self._short.apply(small, learningRate=1.0)
        shape = small.shape[:2]
        self._long_since = np.full(shape, np.nan)
        self._static_since = np.full(shape, np.nan)
        self._static_last = np.full(shape, np.nan)
        self._last_t = t

    def _relearn(self, small: Image, t: float) -> None:
        held = self._held
        self._recent = []  # other light: looks before the change say nothing about stillness
        self._start(small, t)
        for region in held:  # the same objects under new light: keep them, with their new look
            x1, y1, x2, y2 = region.box
            region.look = small[y1:y2, x1:x2].copy()
        self._held = held

    def _track_pixels(self, long_fg: BoolMap, short_fg: BoolMap, t: float) -> None:
        assert self._long_since is not None and self._static_since is not None and self._static_last is not None
        kernel = self._kernel
        long_fg = cv2.morphologyEx(long_fg.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
        static = long_fg & ~short_fg
        static = cv2.morphologyEx(static.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
        self._long_since[long_fg & np.isnan(self._long_since)] = t
        self._long_since[~long_fg] = np.nan
        self._static_since[static & np.isnan(self._static_since)] = t
        self._static_last[static] = t
        # Someone walking in front of a still object makes its pixels short-term foreground for a moment:
        # such a pixel stays "static since" through the occlusion up to grace_s. A pixel back to the
        # long-term background has nothing in front of it: nothing stands there (any more).
        occluded_too_long = ~(self._static_last >= t - self.settings.grace_s)  # NaN (never static) too
        expired = ~long_fg | (~static & occluded_too_long)
        self._static_since[expired] = np.nan
        self._static_last[expired] = np.nan

    def _follow_held(self, small: Image, t: float) -> None:
        kept = []
        for held in self._held:
            x1, y1, x2, y2 = held.box
            now = small[y1:y2, x1:x2].astype(np.int16)
            like_object = float(np.abs(now - held.look).mean())
            like_background = float(np.abs(now - held.background).mean())
            # Neither its look nor the street behind it: what is there changed (and, once settled, is taken anew).
            changed = min(like_object, like_background) > _RELOOK_DIFF
            if not held.ghost and changed and self._settled(held.box, now):
                self._released.append((held.box, held.held_t))
                continue  # found again, as it is now, by _hold_new on this frame
            if like_object <= like_background:
                held.last_seen_t = t
                held.stirs = [*held.stirs[-(_STIR_FRAMES - 1) :], like_object]
            elif t - held.last_seen_t > self.settings.grace_s:
                self._forget_pixels(held.box)
                continue  # the background shows again: the object has gone
            kept.append(held)
        self._held = kept

    def _settled(self, box: tuple[int, int, int, int], now: Image) -> bool:
        """Whether a held region has kept still over its last frames (while no longer looking as when held).

        A region's look is taken when it is held; when what is there changes once and then keeps still (the
        person who stood beside a bag walks off, the bag tips over), the old look no longer fits and the
        region would stay restless, never reported. Such a region is released without forgetting its
        pixels: ``_hold_new`` finds at once what still stays there, with its box and look as they are now
        (and the incident goes on: incidents are keyed by place). A person standing there keeps stirring
        from frame to frame, and is not released.
        """
        x1, y1, x2, y2 = box
        frames = [before[y1:y2, x1:x2].astype(np.int16) for _, before in self._recent[-_SETTLE_FRAMES:]] + [now]
        if len(frames) <= _SETTLE_FRAMES:
            return False
        return all(float(np.abs(b - a).mean()) <= _STILL_DIFF for a, b in pairwise(frames))

    def _hold_new(self, small: Image, t: float, background: Image) -> None:
        """Hold the regions whose pixels stayed ``min_stay_s``; ``background``: the long-term model's (BGR)."""
        assert self._static_since is not None and self._long_since is not None
        released, self._released = self._released, []
        stayed = self._static_since <= t - self.settings.min_stay_s  # NaN (not static) is False
        for held in self._held:
            x1, y1, x2, y2 = held.box
            stayed[y1:y2, x1:x2] = False
        if not stayed.any():
            return
        # Parts of one object (items on a rack, or halves split by someone passing in front) are joined.
        joined = cv2.dilate(stayed.astype(np.uint8), self._join_kernel)
        count, labels = cv2.connectedComponents(joined, connectivity=8)
        min_pixels = self.settings.min_area * small.shape[0] * small.shape[1]
        for label in range(1, count):
            part = (labels == label) & stayed  # the joining dilation is not part of the object
            if part.sum() < min_pixels:
                continue
            ys, xs = np.nonzero(part)
            x, y, w, h = (
                int(xs.min()),
                int(ys.min()),
                int(xs.max()) + 1 - int(xs.min()),
                int(ys.max()) + 1 - int(ys.min()),
            )
            box = (x, y, x + w, y + h)
            inside = part[y : y + h, x : x + w]
            ghost = _is_ghost(small, background, box, inside)
            first_seen, held_t = self._first_seen(box, inside, t), t
            for released_box, released_held_t in released:
                if _overlap(box, released_box):
                    # What stays of a released region stood there when that region was held; before that,
                    # what stood there was something else as well (the person who brought the bag). A
                    # region released again keeps that time.
                    first_seen = max(first_seen, released_held_t)
                    held_t = min(held_t, released_held_t)
            neighbour = None if ghost else self._touching(box)
            if neighbour is not None:
                # The rest of an object already held (someone stood in front of this part until now).
                box = _union(neighbour.box, box)
                neighbour.first_seen_t = min(neighbour.first_seen_t, first_seen)
                while (other := self._touching(box, besides=neighbour)) is not None:
                    box = _union(box, other.box)
                    neighbour.first_seen_t = min(neighbour.first_seen_t, other.first_seen_t)
                    self._held.remove(other)
                x1, y1, x2, y2 = neighbour.box = box
                neighbour.look = small[y1:y2, x1:x2].astype(np.int16)
                neighbour.background = background[y1:y2, x1:x2].astype(np.int16)
                continue
            held = _Held(
                region_id=self._next_id,
                box=box,
                first_seen_t=first_seen,
                last_seen_t=t,
                fill=round(float(inside.mean()), 3),
                look=small[y : y + h, x : x + w].astype(np.int16),
                background=background[y : y + h, x : x + w].astype(np.int16),
                ghost=ghost,
                held_t=held_t,
            )
            # How still it kept while it stayed, from the frames already seen: known as soon as it is held.
            held.stirs = [
                float(np.abs(before[y : y + h, x : x + w].astype(np.int16) - held.look).mean())
                for seen_t, before in self._recent
                if seen_t >= t - self.settings.min_stay_s
            ]
            self._held.append(held)
            self._next_id += 1

    def _touching(self, box: tuple[int, int, int, int], besides: _Held | None = None) -> _Held | None:
        x1, y1, x2, y2 = box
        for held in self._held:
            hx1, hy1, hx2, hy2 = held.box
            if (
                held is not besides
                and not held.ghost
                and x1 <= hx2 + self._join_px
                and hx1 <= x2 + self._join_px
                and y1 <= hy2 + self._join_px
                and hy1 <= y2 + self._join_px
            ):
                return held
        return None

    def _first_seen(self, box: tuple[int, int, int, int], inside: BoolMap, t: float) -> float:
        assert self._long_since is not None
        x1, y1, x2, y2 = box
        since = self._long_since[y1:y2, x1:x2][inside]
        since = since[~np.isnan(since)]
        return float(np.median(since)) if len(since) else t

    def _forget_pixels(self, box: tuple[int, int, int, int]) -> None:
        assert self._static_since is not None and self._static_last is not None and self._long_since is not None
        x1, y1, x2, y2 = box
        for plane in (self._static_since, self._static_last, self._long_since):
            plane[y1:y2, x1:x2] = np.nan


def _boundary_edges(grey: Image, box: tuple[int, int, int, int], inside: BoolMap) -> float:
    """Mean gradient magnitude of ``grey`` along the rim of the region (``inside`` within ``box``)."""
    x1, y1, x2, y2 = box
    height, width = grey.shape[:2]
    # The rim reaches _RIM px outside the box, where the object's outline meets the street.
    left, top = min(_RIM, x1), min(_RIM, y1)
    right, bottom = min(_RIM, width - x2), min(_RIM, height - y2)
    patch = grey[y1 - top : y2 + bottom, x1 - left : x2 + right].astype(np.float32)
    mask = cv2.copyMakeBorder(inside.astype(np.uint8), top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
    magnitude = np.hypot(cv2.Sobel(patch, cv2.CV_32F, 1, 0), cv2.Sobel(patch, cv2.CV_32F, 0, 1))
    kernel = np.ones((3, 3), np.uint8)
    rim = (cv2.dilate(mask, kernel) - cv2.erode(mask, kernel)).astype(bool)
    return float(magnitude[rim].mean()) if rim.any() else 0.0


def _median_grey(grey: Image) -> float:
    """The median grey level of a uint8 image, from its histogram (np.median sorts the image)."""
    counts = np.bincount(grey.ravel(), minlength=256)
    return float(np.searchsorted(np.cumsum(counts), (grey.size + 1) / 2))


def _is_ghost(small: Image, background: Image, box: tuple[int, int, int, int], inside: BoolMap) -> bool:
    """Whether a new still region is the street uncovered rather than an object put down.

    An object put down brings its outline with it: along the region's rim the frame has stronger edges
    than the background model there. Where something has left, it is the other way round (the outline
    is in the model, not in the frame); the classic abandoned-versus-removed test.
    """
    grey_now = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    grey_model = cv2.cvtColor(background, cv2.COLOR_BGR2GRAY)
    return _boundary_edges(grey_now, box, inside) < _boundary_edges(grey_model, box, inside)


def _foreground(
    labels: Image, grey: Image, background: Image | Callable[[], Image], where: BoolMap | None = None
) -> BoolMap:
    """MOG2's foreground, plus its shadow pixels where the background's texture does not show through.

    MOG2 calls a pixel shadow when it is a darker copy of the background (same colour, 0.5-1 times as
    bright). A dark object on light ground is that too: a black bag on paving (gamma-encoded, black cloth
    comes out at about half the paving's grey) was 83-93 % shadow on a real pavement clip, and never found.
    A shadow darkens, it does not replace: the ground's texture (joints, grain, stains) shows through it.
    So a shadow pixel stays shadow only where frame and background correlate over a small window
    (normalised cross-correlation, as in the texture-based shadow tests of Sanin et al. 2012), or, where
    the background there is plain, where the frame is plain too. Shadow pixels outside ``where`` (when
    given) stay shadow untested: the caller does not look there.
    """
    foreground = labels == _FOREGROUND
    shadow = labels == _SHADOW
    if where is not None:
        shadow &= where
    if not shadow.any():
        return foreground
    model = background() if callable(background) else background
    # Only around the shadow pixels (a person's shadow is a small part of the frame): the window's margin more.
    x, y, w, h = cv2.boundingRect(shadow.astype(np.uint8))
    margin = _TEXTURE_WINDOW // 2
    height, width = grey.shape[:2]
    x1, y1 = max(0, x - margin), max(0, y - margin)
    x2, y2 = min(width, x + w + margin), min(height, y + h + margin)
    through = _texture_shows_through(grey[y1:y2, x1:x2], model[y1:y2, x1:x2])
    foreground[y1:y2, x1:x2] |= shadow[y1:y2, x1:x2] & ~through
    return foreground


def _texture_shows_through(grey: Image, background: Image) -> BoolMap:
    """Per pixel: whether ``grey`` there is the background's texture (correlated with it, or as plain as it)."""
    frame, model = grey.astype(np.float32), background.astype(np.float32)
    window = (_TEXTURE_WINDOW, _TEXTURE_WINDOW)
    mean_f, mean_b = cv2.blur(frame, window), cv2.blur(model, window)
    var_f = cv2.blur(frame * frame, window) - mean_f * mean_f
    var_b = cv2.blur(model * model, window) - mean_b * mean_b
    covariance = cv2.blur(frame * model, window) - mean_f * mean_b
    plain = _PLAIN_STD * _PLAIN_STD
    correlated = covariance >= _SHADOW_NCC * np.sqrt(np.maximum(var_f * var_b, 1e-6))
    return np.where(var_b >= plain, correlated, var_f < plain)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _rate(dt: float, tau: float) -> float:
    return 1.0 - math.exp(-max(dt, 0.0) / tau)
