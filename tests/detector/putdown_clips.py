"""Rendered street clips in which one object is put down at ``t0`` and taken away at ``t1``, with people
walking past, for the stationary-object finder's table tests (issue #16).

Frames come from the training renderer (the demo clips' street, camera and light), each with the
object's true box read from the renderer's id buffer. Light ramps and a shadow band sweeping over the
street are applied on the rendered frame, as a camera would see them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from detector.training import clips
from detector.training.geometry import Obj, line
from detector.training.objects import distractors, stalls
from detector.training.objects.common import NONE, Frame, hsv

Box = tuple[float, float, float, float]
Image = np.ndarray


@dataclass(frozen=True)
class PutDown:
    """One case: what is put down (None: nothing), when, and what else happens in the view."""

    thing: str | None = "cabinet"
    on: str = "pavement"
    """Where it is put down: ``pavement`` (light paving, near the kerb) or ``road`` (the grey asphalt by the kerb)."""
    t0: float = 10.0
    t1: float | None = None
    duration_s: float = 90.0
    step_s: float = 2.0
    walkers: int = 8
    standing_person: bool = False
    gain: Callable[[float], float] = field(default=lambda t: 1.0)
    shadow_x: Callable[[float], float | None] = field(default=lambda t: None)
    """Left edge (pixels) of a dark band 240 px wide at time t, or None for no band."""


@cache
def _scene() -> tuple[clips.Clip, float]:
    clip = clips.clip_street_day()
    return clip, clip.scene.lay.road_w / 2 + 1.0


def _thing(name: str, x: float, y: float) -> Obj:
    rng = np.random.default_rng(41)
    frame = Frame((x, y, 0.0), 0.0)
    made: dict[str, Callable[[], object]] = {
        "cabinet": lambda: distractors.cabinet(rng, frame),
        "goods": lambda: stalls.shop_goods(rng, frame),
        "planter": lambda: distractors.planter(rng, frame),
        "car": lambda: distractors.car(np.random.default_rng(2), frame),  # parked on the pavement
        "person": lambda: distractors.person(rng, frame),  # standing quite still
        "scooter": lambda: distractors.scooter(np.random.default_rng(4), frame),  # parked on the pavement
        "black-bag": lambda: _black_bag(frame),
        "dark-goods": lambda: _dark_goods(frame),
        "dark-tarp": lambda: _dark_tarp(frame),
    }
    return made[name]()  # type: ignore[return-value]


# Dark things (issue #25): to MOG2 a darker copy of the ground, i.e. a shadow; the finder's hard case on real
# cameras. Their colours are as a camera shows them: black cloth in daylight comes out at about half the
# grey level of light paving once gamma-encoded (reflectance 0.05 against 0.3: (1/6) ** (1/2.2) = 0.44),
# not near 0 as the renderer's linear shading would make it.
def _black_bag(frame: Frame) -> Obj:
    parts = frame.box(0, 0, 0, (0.55, 0.35, 0.45), (66, 68, 70), top=(76, 78, 80))
    parts.append(line([frame.p(-0.12, 0, 0.45), frame.p(0, 0, 0.58), frame.p(0.12, 0, 0.45)], 0.03, (50, 50, 52)))
    return Obj(NONE, parts, frame.p(0, 0, 0.25), kind="bag")


def _dark_goods(frame: Frame) -> Obj:
    """Dark cartons and a black crate stacked by the kerb."""
    parts = []
    for k, (height, colour) in enumerate([(0.6, (40, 42, 48)), (0.3, (30, 30, 30)), (0.9, (52, 48, 44))]):
        parts += frame.box(-0.55 + k * 0.55, 0, 0, (0.5, 0.45, height), colour, top=(60, 60, 62))
    return Obj(NONE, parts, frame.p(0, 0, 0.3), kind="goods")


def _dark_tarp(frame: Frame) -> Obj:
    """A dark grey-blue tarp thrown over a low pile of goods."""
    navy = hsv(0.6, 0.2, 0.3)
    parts = frame.box(0, 0, 0, (1.8, 1.0, 0.3), navy, top=hsv(0.6, 0.2, 0.34))
    return Obj(NONE, parts, frame.p(0, 0, 0.15), kind="tarp")


def frames(case: PutDown) -> Iterator[tuple[float, Image, Box | None]]:
    """(t, BGR frame, the object's true box while it is there) every ``step_s`` seconds."""
    clip, kerb_y = _scene()
    lay = clip.scene.lay
    rng = np.random.default_rng(5)
    spot_y = kerb_y + 1.2 if case.on == "pavement" else lay.road_w / 2 - 1.2
    thing = _thing(case.thing, 12.0, spot_y) if case.thing else None
    movers = [
        clips.walker(
            rng,
            (-8.0, lay.y_far - 1.8) if k % 2 else (34.0, lay.y_far - 1.6),
            (34.0, lay.y_far - 1.7) if k % 2 else (-8.0, lay.y_far - 1.9),
            float(k * case.duration_s / max(case.walkers, 1) - 10.0),
            1.2,
        )
        for k in range(case.walkers)
    ]
    standing = (
        distractors.person(np.random.default_rng(9), Frame((17.0, kerb_y + 1.5, 0.0), math.pi))
        if case.standing_person
        else None
    )
    grade = clips._grade(clip)
    noise = np.random.default_rng(3)
    t = 0.0
    while t < case.duration_s:
        objs: list[Obj] = []
        present = thing is not None and case.t0 <= t and (case.t1 is None or t < case.t1)
        if present and thing is not None:
            objs.append(thing)
        for mover in movers:
            at = mover.at(t)
            if at is not None:
                objs.append(at)
        if standing is not None and case.t0 <= t:
            # Someone waiting: turned a little and shifted on the spot from frame to frame.
            sway = 0.12 * math.sin(t * 1.3)
            objs.append(clips.moved(standing, np.array([sway, 0.05 * math.cos(t * 0.9), 0.0])))
        image, _, ids = clip.scene.render_objects(objs)
        truth = _box(ids == 2) if present else None  # the renderer numbers objects from 2, in list order
        image = grade(image).astype(np.float32)
        image += noise.standard_normal(image.shape, dtype=np.float32) * 1.5
        band = case.shadow_x(t)
        if band is not None:
            left = max(0, int(band))
            image[:, left : max(left, int(band) + 240)] *= 0.62
        image *= case.gain(t)
        yield t, np.clip(image, 0, 255).astype(np.uint8), truth
        t = round(t + case.step_s, 6)


def _box(mask: np.ndarray) -> Box | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def write_video(case: PutDown, path: Path) -> Path:
    """The case as an H.264 file, one frame per ``step_s`` (a key frame every other frame)."""
    import av

    fps = round(1 / case.step_s) if case.step_s < 1 else 1
    if not math.isclose(case.step_s * fps, 1.0):
        raise ValueError("write_video needs step_s of 1 s or 1/n s")
    with av.open(str(path), mode="w") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.options = {"g": "2", "keyint_min": "2", "sc_threshold": "0", "preset": "ultrafast", "crf": "23"}
        for index, (_, image, _) in enumerate(frames(case)):
            if index == 0:
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
