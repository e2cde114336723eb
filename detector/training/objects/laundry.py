"""Laundry builders (class ``laundry``): clothes on lines, poles out of windows, drying racks, draped rails
and rotary hangers, from a small catalogue of garment outlines."""

from __future__ import annotations

import math

import cv2
import numpy as np

from detector.training import textures as tx
from detector.training.geometry import F64, Obj, Part, disc, line, poly, textured
from detector.training.objects.common import (
    LAUNDRY,
    Colour,
    Frame,
    Rng,
    any_colour,
    bright,
    cloth_texture,
    sagging_line,
    tex_size,
)

# Item outlines in (s, t) of their bounding rectangle (t grows downwards from the line).
_SHAPES: dict[str, tuple[tuple[float, float], tuple[float, float], list[tuple[float, float]]]] = {
    # name: ((width range m), (height range m), outline)
    "tshirt": (
        (0.45, 0.6),
        (0.55, 0.72),
        [
            (0.3, 0),
            (0.7, 0),
            (1, 0.12),
            (0.95, 0.35),
            (0.78, 0.3),
            (0.78, 1),
            (0.22, 1),
            (0.22, 0.3),
            (0.05, 0.35),
            (0, 0.12),
        ],
    ),
    "shirt": (
        (0.5, 0.65),
        (0.65, 0.8),
        [
            (0.3, 0),
            (0.7, 0),
            (0.95, 0.1),
            (1, 0.75),
            (0.86, 0.76),
            (0.8, 0.25),
            (0.8, 1),
            (0.2, 1),
            (0.2, 0.25),
            (0.14, 0.76),
            (0, 0.75),
            (0.05, 0.1),
        ],
    ),
    "trousers": ((0.35, 0.45), (0.8, 1.05), [(0, 0), (1, 0), (1, 1), (0.58, 1), (0.5, 0.3), (0.42, 1), (0, 1)]),
    "shorts": ((0.35, 0.45), (0.35, 0.5), [(0, 0), (1, 0), (1, 1), (0.56, 1), (0.5, 0.45), (0.44, 1), (0, 1)]),
    "towel": ((0.3, 0.6), (0.5, 0.9), [(0, 0), (1, 0), (1, 1), (0, 1)]),
    "sheet": ((1.0, 2.0), (0.9, 1.7), [(0, 0), (1, 0), (1, 0.97), (0.75, 1), (0.5, 0.96), (0.25, 1), (0, 0.98)]),
    "dress": ((0.4, 0.55), (0.8, 1.1), [(0.3, 0), (0.7, 0), (0.75, 0.3), (1, 1), (0, 1), (0.25, 0.3)]),
    "small": ((0.15, 0.3), (0.2, 0.35), [(0, 0), (1, 0), (0.9, 1), (0.1, 1)]),
}
_SHAPE_WEIGHTS = {
    "tshirt": 3,
    "shirt": 2,
    "trousers": 2,
    "shorts": 1,
    "towel": 2,
    "sheet": 1.5,
    "dress": 0.7,
    "small": 1.5,
}


def _pick_shape(rng: Rng, allow_sheet: bool = True) -> str:
    names = [n for n in _SHAPES if allow_sheet or n != "sheet"]
    w = np.array([_SHAPE_WEIGHTS[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def hang_items(
    rng: Rng,
    p0: F64,
    p1: F64,
    sag: float,
    fill: float = 0.8,
    allow_sheet: bool = True,
    max_items: int = 12,
    start: float = 0.0,
    stop: float = 1.0,
    palette: list[Colour] | None = None,
) -> tuple[list[Part], F64, F64]:
    """Hang cloth items from the line p0->p1 (sagging by ``sag``); returns parts and the used span."""
    d = p1 - p0
    length = float(np.linalg.norm(d))
    a = d / max(length, 1e-9)
    parts: list[Part] = []
    pos = start * length + rng.uniform(0.0, 0.3)
    used0, used1 = None, None
    n = 0
    while pos < stop * length and n < max_items:
        name = _pick_shape(rng, allow_sheet)
        (w0, w1), (h0, h1), shape = _SHAPES[name]
        w, h = rng.uniform(w0, w1), rng.uniform(h0, h1)
        if pos + w > stop * length:
            break
        t = (pos + w / 2) / max(length, 1e-9)
        sag_here = sag * 4 * t * (1 - t)
        top = p0 + a * pos - np.array([0, 0, sag_here])
        img = cloth_texture(rng, *tex_size(w, h, 70, 96))
        if palette and rng.random() < 0.5:
            img = tx.tint(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), palette[int(rng.integers(len(palette)))], 0.6)
        # Items twist a little out of the line's plane.
        twist = rng.normal(0, 0.12)
        side = np.cross(a, [0, 0, 1.0])
        aa = (a + side * twist) * w
        bb = np.array([0, 0, -h]) + side * rng.normal(0, 0.05) * h
        parts.append(textured(top, aa, bb, img, shape))
        if rng.random() < 0.5:  # clothes pegs
            parts.append(disc(top + a * w * 0.15, 0.02, bright(rng)))
            parts.append(disc(top + a * w * 0.85, 0.02, bright(rng)))
        lo, hi = pos, pos + w
        used0 = lo if used0 is None else used0
        used1 = hi
        pos += w + (rng.uniform(0.02, 0.5) if rng.random() < fill else rng.uniform(0.5, 1.2))
        n += 1
    if used0 is None or used1 is None:
        return parts, p0, p0
    return parts, p0 + a * used0, p0 + a * used1


def laundry_line(
    rng: Rng,
    p0: F64,
    p1: F64,
    *,
    sag: float | None = None,
    poles: bool = False,
    allow_sheet: bool = True,
    palette: list[Colour] | None = None,
    single: bool = False,
) -> Obj:
    """Clothes on a line strung between two points (poles, trees, buildings, balcony posts)."""
    length = float(np.linalg.norm(p1 - p0))
    sag = sag if sag is not None else rng.uniform(0.02, 0.08) * length
    if single:
        start = rng.uniform(0.1, 0.7)
        parts, _, _ = hang_items(
            rng, p0, p1, sag, allow_sheet=allow_sheet, max_items=int(rng.integers(1, 3)), start=start, palette=palette
        )
    else:
        parts, _, _ = hang_items(
            rng,
            p0,
            p1,
            sag,
            fill=rng.uniform(0.5, 1.0),
            allow_sheet=allow_sheet,
            start=rng.uniform(0, 0.2),
            stop=rng.uniform(0.7, 1.0),
            palette=palette,
            max_items=int(rng.integers(2, 14)),
        )
    support = [sagging_line(p0, p1, sag, (rng.uniform(30, 200),) * 3)]  # type: ignore[arg-type]
    if poles:
        pc = (90, 90, 90) if rng.random() < 0.5 else (70, 110, 150)
        for p in (p0, p1):
            support.append(line([np.array([p[0], p[1], 0.0]), p + np.array([0, 0, 0.1])], 0.04, pc))
    obj = Obj(LAUNDRY, parts, (p0 + p1) / 2 - [0, 0, 0.5], kind="laundry_line", shadow=p0[2] < 3.5)
    obj.support = support
    return obj


def laundry_pole(rng: Rng, base: F64, direction: F64, length: float) -> Obj:
    """A bamboo/steel pole pushed out of a window, clothes on hangers along it (晾衣杆)."""
    tip = base + direction * length + np.array([0, 0, rng.uniform(-0.1, 0.15)])
    parts, _, _ = hang_items(
        rng,
        base + direction * 0.15,
        tip,
        0.02,
        fill=0.9,
        allow_sheet=rng.random() < 0.3,
        max_items=int(rng.integers(1, 8)),
    )
    pole_c = (100, 170, 190) if rng.random() < 0.5 else (180, 180, 180)
    obj = Obj(LAUNDRY, parts, (base + tip) / 2 - [0, 0, 0.4], kind="laundry_pole", shadow=False)
    obj.support = [line([base, tip], 0.03, pole_c)]
    return obj


def drying_rack(rng: Rng, fr: Frame) -> Obj:
    """A free-standing drying rack on the pavement or roof with clothes and sheets."""
    length = rng.uniform(1.2, 2.5)
    h = rng.uniform(1.4, 1.9)
    p0, p1 = fr.p(-length / 2, 0, h), fr.p(length / 2, 0, h)
    parts, _, _ = hang_items(rng, p0, p1, 0.0, fill=0.9, max_items=8)
    support = [line([p0, p1], 0.03, (170, 170, 170))]
    for su in (-1, 1):
        support.append(
            line(
                [fr.p(su * length / 2, -0.35, 0), fr.p(su * length / 2, 0, h), fr.p(su * length / 2, 0.35, 0)],
                0.03,
                (170, 170, 170),
            )
        )
    obj = Obj(LAUNDRY, parts, fr.p(0, 0, 1.0), kind="drying_rack")
    obj.support = support
    return obj


def draped_rail(rng: Rng, p0: F64, p1: F64) -> Obj:
    """Quilts, sheets and clothes draped over a railing (balcony rail, fence, window cage)."""
    d = p1 - p0
    length = float(np.linalg.norm(d))
    a = d / max(length, 1e-9)
    side = np.cross(a, [0, 0, 1.0])
    parts: list[Part] = []
    pos = rng.uniform(0, 0.3 * length)
    while pos < length - 0.3:
        w = min(rng.uniform(0.5, 2.0), length - pos)
        h = rng.uniform(0.5, 1.4)
        img = cloth_texture(rng, *tex_size(w, h, 60, 128))
        top = p0 + a * pos
        shape = [(0, 0), (1, 0), (1, 1), (0.5, rng.uniform(0.9, 1.0)), (0, rng.uniform(0.85, 1))]
        parts.append(textured(top - side * 0.03, a * w, np.array([0, 0, -h]) - side * 0.05, img, shape))
        pos += w + (rng.uniform(0.02, 0.3) if rng.random() < 0.7 else rng.uniform(0.5, 1.5))
        if rng.random() < 0.25:
            break
    return Obj(LAUNDRY, parts, (p0 + p1) / 2 - [0, 0, 0.5], kind="draped", shadow=False)


def rotary_hanger(rng: Rng, hook: F64) -> Obj:
    """The round multi-peg hanger full of socks and underwear, hung from a window or balcony."""
    r = rng.uniform(0.2, 0.3)
    parts: list[Part] = []
    n = int(rng.integers(5, 12))
    for k in range(n):
        ang = 2 * math.pi * k / n
        c = hook + np.array([r * math.cos(ang), r * math.sin(ang), -0.25])
        w, h = rng.uniform(0.1, 0.2), rng.uniform(0.15, 0.3)
        col = any_colour(rng)
        tang = np.array([-math.sin(ang), math.cos(ang), 0.0])
        parts.append(
            poly([c - tang * w / 2, c + tang * w / 2, c + tang * w / 2 - [0, 0, h], c - tang * w / 2 - [0, 0, h]], col)
        )
    obj = Obj(LAUNDRY, parts, hook - [0, 0, 0.4], kind="rotary", shadow=False)
    obj.support = [line([hook, hook - [0, 0, 0.25]], 0.01, (200, 200, 200))]
    return obj
