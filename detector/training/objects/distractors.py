"""Look-alike distractors, drawn but never labelled: people, vehicles, street furniture, trees and lamps,
and facade decorations (awnings, AC units, banners, pennants)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from detector.training import textures as tx
from detector.training.geometry import Image, Obj, Part, disc, line, textured
from detector.training.objects.common import (
    NONE,
    Frame,
    Rng,
    any_colour,
    bright,
    cloth_texture,
    dull,
    hsv,
    jitter,
    sagging_line,
    sign_texture,
    umbrella_canopy,
    wheel,
)


def person(
    rng: Rng,
    fr: Frame,
    *,
    umbrella: bool | None = None,
    bag: bool | None = None,
    stride: float | None = None,
    sitting: bool = False,
) -> Obj:
    """A pedestrian in patterned clothes (a laundry look-alike); some carry umbrellas or bags."""
    h = rng.uniform(1.5, 1.85) * (0.6 if sitting else 1.0)
    top = any_colour(rng)
    bottom = any_colour(rng) if rng.random() < 0.7 else hsv(0.6, 0.5, 0.35)
    skin = hsv(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.55), rng.uniform(0.45, 0.9))
    hair = hsv(0.08, 0.3, rng.uniform(0.05, 0.3))
    sw, sd = rng.uniform(0.36, 0.5), rng.uniform(0.2, 0.28)
    s = stride if stride is not None else rng.uniform(-0.25, 0.25)
    parts: list[Part] = []
    leg_top = h * 0.48
    for side, off in ((-1, s), (1, -s)):
        u0 = side * sw * 0.22
        for v in (-0.06, 0.06):
            parts.append(
                fr.quad(
                    [
                        (u0 - 0.07, v, leg_top),
                        (u0 + 0.07, v, leg_top),
                        (u0 + 0.06 + off * 0.5, v, 0.0),
                        (u0 - 0.06 + off * 0.5, v, 0.0),
                    ],
                    bottom,
                )
            )
        parts.append(
            fr.quad(
                [
                    (u0 + 0.07, -0.06, leg_top),
                    (u0 + 0.07, 0.06, leg_top),
                    (u0 + 0.06 + off * 0.5, 0.06, 0.0),
                    (u0 + 0.06 + off * 0.5, -0.06, 0.0),
                ],
                jitter(bottom, rng, 8),
            )
        )
    dress = rng.random() < 0.15
    torso_bottom = h * (0.3 if dress else 0.46)
    flare = 1.3 if dress else 0.95
    shirt = cloth_texture(rng, 32, 24, folds=False) if rng.random() < 0.6 else None
    outline = [(0, 0), (1, 0), (0.5 + flare / 2, 1), (0.5 - flare / 2, 1)]
    th = h * 0.82 - torso_bottom
    for v in (-sd / 2, sd / 2):
        if shirt is not None:
            parts.append(fr.tex((-sw / 2, v, h * 0.82), (sw, 0, 0), (0, 0, -th), shirt, outline))
        else:
            parts.append(
                fr.quad(
                    [
                        (-sw / 2, v, h * 0.82),
                        (sw / 2, v, h * 0.82),
                        (sw / 2 * flare, v, torso_bottom),
                        (-sw / 2 * flare, v, torso_bottom),
                    ],
                    top,
                )
            )
    for u in (-sw / 2, sw / 2):
        parts.append(
            fr.quad(
                [
                    (u, -sd / 2, h * 0.82),
                    (u, sd / 2, h * 0.82),
                    (u * flare, sd / 2, torso_bottom),
                    (u * flare, -sd / 2, torso_bottom),
                ],
                jitter(top, rng, 12),
            )
        )
    sleeve = top if rng.random() < 0.6 else skin
    parts.append(line([fr.p(-sw / 2 - 0.03, 0, h * 0.8), fr.p(-sw / 2 - 0.06 + s * 0.3, 0.02, h * 0.5)], 0.08, sleeve))
    parts.append(line([fr.p(sw / 2 + 0.03, 0, h * 0.8), fr.p(sw / 2 + 0.06 - s * 0.3, 0.02, h * 0.5)], 0.08, sleeve))
    parts.append(disc(fr.p(0, 0.0, h * 0.9), 0.1, skin))
    parts.append(disc(fr.p(0, 0.03, h * 0.93), 0.1, hair))
    if bag if bag is not None else rng.random() < 0.3:
        bc = any_colour(rng)
        bw, bh = rng.uniform(0.2, 0.4), rng.uniform(0.2, 0.4)
        parts += fr.box(sw / 2 + 0.1, -0.02, h * 0.35, (0.08, bw, bh), bc)
    if umbrella if umbrella is not None else rng.random() < 0.12:
        parts += umbrella_canopy(
            rng,
            fr.p(0.05, 0, h + 0.25),
            rng.uniform(0.45, 0.6),
            0.22,
            bright(rng) if rng.random() < 0.7 else (30, 30, 30),
            ribs=8,
        )
        parts.append(line([fr.p(0.05, 0, h * 0.7), fr.p(0.05, 0, h + 0.25)], 0.02, (40, 40, 40)))
    return Obj(NONE, parts, fr.p(0, 0, h / 2), kind="person")


def car(rng: Rng, fr: Frame) -> Obj:
    """Sedan, SUV, van or box truck (the box truck is a shed look-alike)."""
    kind = rng.choice(["sedan", "sedan", "suv", "van", "truck"], p=[0.35, 0.15, 0.25, 0.15, 0.1])
    col = any_colour(rng) if rng.random() < 0.5 else (rng.choice([(240, 240, 240), (30, 30, 30), (160, 160, 165)]))
    col = tuple(float(c) for c in col)  # type: ignore[assignment]
    glass = (70, 55, 45)
    parts: list[Part] = []
    if kind == "truck":
        L, W = rng.uniform(5.0, 7.0), 2.2
        parts += fr.box(L / 2 - 0.9, 0, 0.4, (1.8, W, 1.9), col)
        parts += fr.box(L / 2 - 0.4, 0, 1.3, (0.05, W * 0.9, 0.8), glass)
        bc = (230, 230, 230) if rng.random() < 0.6 else bright(rng)
        bimg = tx.modulate(
            np.full((64, 128, 3), np.asarray(bc, np.uint8), np.uint8), tx.random_noise_detail(rng, 64, 128), 0.1
        )
        if rng.random() < 0.5:
            bimg[16:48, 20:108] = sign_texture(rng, 32, 88)
        for vv in (-W / 2, W / 2):
            parts.append(fr.tex((-L / 2, vv, 0.7), (L - 1.9, 0, 0), (0, 0, 2.2), bimg))
        parts.append(fr.tex((-L / 2, -W / 2, 2.9), (L - 1.9, 0, 0), (0, W, 0), bimg))
        parts.append(fr.tex((-L / 2, -W / 2, 0.7), (0, W, 0), (0, 0, 2.2), bimg))
        wheel_u = (-L / 2 + 1.0, L / 2 - 1.0)
    else:
        L = {"sedan": 4.6, "suv": 4.7, "van": 4.9}[str(kind)] * rng.uniform(0.92, 1.05)
        W = rng.uniform(1.75, 1.9)
        body_h = 0.75 if kind == "sedan" else 0.85
        parts += fr.box(0, 0, 0.3, (L, W, body_h), col)
        cab_h = {"sedan": 0.5, "suv": 0.7, "van": 1.0}[str(kind)]
        cl = L * (0.5 if kind == "sedan" else (0.62 if kind == "suv" else 0.85))
        cu = -L * 0.05 if kind != "van" else L * 0.05
        z0, z1 = 0.3 + body_h, 0.3 + body_h + cab_h
        for vv in (-W / 2 + 0.05, W / 2 - 0.05):
            parts.append(
                fr.quad(
                    [
                        (cu - cl / 2, vv, z0),
                        (cu + cl / 2, vv, z0),
                        (cu + cl / 2 - 0.3, vv, z1),
                        (cu - cl / 2 + 0.2, vv, z1),
                    ],
                    glass,
                )
            )
        parts.append(
            fr.quad(
                [
                    (cu - cl / 2 + 0.2, -W / 2 + 0.05, z1),
                    (cu + cl / 2 - 0.3, -W / 2 + 0.05, z1),
                    (cu + cl / 2 - 0.3, W / 2 - 0.05, z1),
                    (cu - cl / 2 + 0.2, W / 2 - 0.05, z1),
                ],
                col,
            )
        )
        for uu, du in ((cu + cl / 2, -0.3), (cu - cl / 2, 0.2)):
            parts.append(
                fr.quad(
                    [
                        (uu, -W / 2 + 0.05, z0),
                        (uu, W / 2 - 0.05, z0),
                        (uu + du, W / 2 - 0.05, z1),
                        (uu + du, -W / 2 + 0.05, z1),
                    ],
                    glass,
                )
            )
        wheel_u = (-L / 2 + 0.8, L / 2 - 0.8)
    if kind != "truck":
        # Glossy body sides: a vertical reflection gradient with grime, a lighter shoulder line.
        grad = np.linspace(1.25, 0.7, 24, dtype=np.float32)[:, None, None]
        side = np.clip(np.full((24, 64, 3), col, np.float32) * grad, 0, 255).astype(np.uint8)
        side = tx.modulate(side, tx.random_noise_detail(rng, 24, 64, 0.6), 0.15)
        for vv in (-W / 2 - 0.005, W / 2 + 0.005):
            parts.append(fr.tex((-L / 2, vv, 0.3 + body_h), (L, 0, 0), (0, 0, -body_h), side))
        lamp_c = (200, 230, 255)
        for uu, c in ((L / 2 + 0.005, lamp_c), (-L / 2 - 0.005, (40, 40, 210))):
            for vv in (-W / 2 + 0.25, W / 2 - 0.25):
                parts.append(
                    fr.quad(
                        [(uu, vv - 0.15, 0.75), (uu, vv + 0.15, 0.75), (uu, vv + 0.15, 0.9), (uu, vv - 0.15, 0.9)], c
                    )
                )
            parts.append(
                fr.quad(
                    [(uu, -0.22, 0.45), (uu, 0.22, 0.45), (uu, 0.22, 0.58), (uu, -0.22, 0.58)],
                    (200, 120, 30) if rng.random() < 0.7 else (40, 200, 230),
                )
            )
    for uu in wheel_u:
        for vv in (-W / 2 - 0.01, W / 2 + 0.01):
            parts.append(wheel(fr, uu, vv, 0.32, (20, 20, 20)))
    return Obj(NONE, parts, fr.p(0, 0, 0.8), kind="car")


def scooter(rng: Rng, fr: Frame, bicycle: bool = False) -> Obj:
    col = bright(rng) if rng.random() < 0.6 else (rng.uniform(20, 230),) * 3
    parts: list[Part] = []
    wr = 0.33 if bicycle else 0.22
    parts.append(wheel(fr, -0.6, 0, wr, (25, 25, 25), 12))
    parts.append(wheel(fr, 0.6, 0, wr, (25, 25, 25), 12))
    if bicycle:
        parts.append(line([fr.p(-0.6, 0, wr), fr.p(-0.1, 0, 0.85), fr.p(0.5, 0, 0.9), fr.p(0.6, 0, wr)], 0.03, col))
        parts.append(line([fr.p(-0.1, 0, 0.85), fr.p(0.0, 0, wr), fr.p(-0.6, 0, wr)], 0.03, col))
        parts.append(line([fr.p(0.5, -0.25, 1.0), fr.p(0.5, 0.25, 1.0)], 0.03, (30, 30, 30)))
    else:
        parts += fr.box(-0.2, 0, wr, (0.9, 0.3, 0.35), col)
        parts += fr.box(-0.3, 0, wr + 0.35, (0.6, 0.28, 0.12), (30, 30, 30))
        parts.append(line([fr.p(0.5, 0, wr), fr.p(0.45, 0, 1.05)], 0.05, col))
        parts.append(line([fr.p(0.45, -0.3, 1.05), fr.p(0.45, 0.3, 1.05)], 0.03, (30, 30, 30)))
        if rng.random() < 0.3:  # windproof quilt / rain cover
            parts.append(
                fr.quad([(0.4, -0.25, 1.0), (0.4, 0.25, 1.0), (0.1, 0.25, 0.4), (0.1, -0.25, 0.4)], any_colour(rng))
            )
        if rng.random() < 0.3:  # delivery box on the back
            parts += fr.box(-0.65, 0, wr + 0.45, (0.4, 0.4, 0.4), hsv(rng.choice([0.13, 0.58]), 0.8, 0.9))
    return Obj(NONE, parts, fr.p(0, 0, 0.5), kind="scooter")


def bench(rng: Rng, fr: Frame) -> Obj:
    length = rng.uniform(1.2, 2.0)
    c = hsv(0.08, 0.5, rng.uniform(0.3, 0.6)) if rng.random() < 0.6 else (120, 120, 120)
    parts = fr.box(0, 0, 0.42, (length, 0.45, 0.05), c)
    parts.append(
        fr.quad(
            [(-length / 2, 0.22, 0.5), (length / 2, 0.22, 0.5), (length / 2, 0.25, 0.85), (-length / 2, 0.25, 0.85)], c
        )
    )
    for su in (-1, 1):
        parts += fr.box(su * (length / 2 - 0.1), 0, 0, (0.06, 0.4, 0.42), (50, 50, 50))
    return Obj(NONE, parts, fr.p(0, 0, 0.4), kind="bench")


def bus_shelter(rng: Rng, fr: Frame) -> Obj:
    """Bus shelter: roof on posts, glass back, advert panel (a structure look-alike)."""
    length, depth, h = rng.uniform(3.0, 6.0), rng.uniform(1.2, 1.8), rng.uniform(2.4, 2.8)
    c = (60, 60, 60) if rng.random() < 0.5 else hsv(rng.random(), 0.4, 0.6)
    parts: list[Part] = fr.box(0, 0, h, (length + 0.3, depth + 0.3, 0.15), c)
    for su in (-1, 1):
        for sv in (-1, 1):
            parts.append(
                line([fr.p(su * length / 2, sv * depth / 2, 0), fr.p(su * length / 2, sv * depth / 2, h)], 0.06, c)
            )
    parts.append(
        fr.quad(
            [
                (-length / 2, depth / 2, 0.3),
                (length / 2, depth / 2, 0.3),
                (length / 2, depth / 2, h - 0.1),
                (-length / 2, depth / 2, h - 0.1),
            ],
            (150, 140, 120),
        )
    )
    ad = tx.random_photo_patch(rng, 96, 64)
    parts.append(
        fr.tex((length / 2 - 1.3, depth / 2 - 0.02, 0.3), (1.2, 0, 0), (0, 0, 1.8), ad, colour=(255, 255, 255))
    )
    parts += fr.box(0, depth / 4, 0.45, (length * 0.6, 0.35, 0.05), (150, 150, 150))
    if rng.random() < 0.5:
        parts += (fr.tex((-length / 2 - 0.4, 0, 0), (0.4, 0, 0), (0, 0, 2.8), sign_texture(rng, 96, 24)),)
    return Obj(NONE, parts, fr.p(0, 0, 1.2), kind="bus_shelter")


def street_sign(rng: Rng, fr: Frame) -> Obj:
    h = rng.uniform(2.2, 3.5)
    parts: list[Part] = [line([fr.p(0, 0, 0), fr.p(0, 0, h)], 0.05, (140, 140, 140))]
    w, hh = rng.uniform(0.5, 1.6), rng.uniform(0.4, 0.9)
    bg = rng.choice([0, 1, 2, 3])
    bgc = [(160, 80, 20), (40, 120, 30), (240, 240, 240), (30, 30, 200)][bg]
    img = sign_texture(rng, 48, int(48 * w / hh), bg=bgc)
    parts.append(fr.tex((-w / 2, -0.03, h), (w, 0, 0), (0, 0, -hh), img))
    return Obj(NONE, parts, fr.p(0, 0, h / 2), kind="sign")


def a_frame_sign(rng: Rng, fr: Frame) -> Obj:
    img = sign_texture(rng, 64, 40) if rng.random() < 0.6 else tx.random_photo_patch(rng, 64, 40)
    parts = [
        fr.tex((-0.3, -0.2, 0), (0.6, 0, 0), (0.0, 0.2, 1.0), img),
        fr.quad([(-0.3, 0.2, 0), (0.3, 0.2, 0), (0.3, 0.0, 1.0), (-0.3, 0.0, 1.0)], (60, 60, 60)),
    ]
    return Obj(NONE, parts, fr.p(0, 0, 0.5), kind="aframe")


def cone(rng: Rng, fr: Frame) -> Obj:
    h = rng.uniform(0.5, 0.8)
    r = h * 0.22
    orange = hsv(0.06, 0.9, 0.95)
    parts = [
        fr.quad([(-r, 0, 0), (r, 0, 0), (0.02, 0, h), (-0.02, 0, h)], orange),
        fr.quad(
            [
                (-r * 0.62, -0.01, h * 0.45),
                (r * 0.62, -0.01, h * 0.45),
                (r * 0.5, -0.01, h * 0.6),
                (-r * 0.5, -0.01, h * 0.6),
            ],
            (240, 240, 240),
        ),
        fr.quad(
            [(-r * 1.3, -r * 1.3, 0), (r * 1.3, -r * 1.3, 0), (r * 1.3, r * 1.3, 0.03), (-r * 1.3, r * 1.3, 0.03)],
            orange,
        ),
    ]
    return Obj(NONE, parts, fr.p(0, 0, 0.3), kind="cone")


def bollard_row(rng: Rng, fr: Frame, n: int) -> Obj:
    parts: list[Part] = []
    c = rng.choice([(200, 200, 200), (40, 40, 40), (30, 160, 220)])
    c = tuple(float(x) for x in c)  # type: ignore[assignment]
    for k in range(n):
        parts += fr.box(k * 1.2, 0, 0, (0.15, 0.15, 0.8), c)
    return Obj(NONE, parts, fr.p(n * 0.6, 0, 0.4), kind="bollards")


def bin_box(rng: Rng, fr: Frame) -> Obj:
    c = hsv(rng.choice([0.33, 0.6, 0.0, 0.1]), 0.6, 0.5) if rng.random() < 0.7 else (120, 120, 120)
    n = int(rng.integers(1, 3))
    parts: list[Part] = []
    for k in range(n):
        parts += fr.box(k * 0.6, 0, 0, (0.55, 0.5, rng.uniform(0.8, 1.1)), jitter(c, rng, 10))
    return Obj(NONE, parts, fr.p(0, 0, 0.5), kind="bin")


def cabinet(rng: Rng, fr: Frame) -> Obj:
    c = hsv(rng.choice([0.35, 0.0, 0.6]), 0.2, 0.6) if rng.random() < 0.5 else (180, 180, 175)
    return Obj(
        NONE, fr.box(0, 0, 0, (rng.uniform(0.6, 1.5), 0.5, rng.uniform(1.0, 1.7)), c), fr.p(0, 0, 0.6), kind="cabinet"
    )


def planter(rng: Rng, fr: Frame) -> Obj:
    length = rng.uniform(0.8, 2.5)
    parts = fr.box(0, 0, 0, (length, 0.8, 0.5), dull(rng))
    for _ in range(int(rng.integers(3, 9))):
        parts.append(
            disc(
                fr.p(rng.uniform(-length / 2, length / 2), rng.uniform(-0.3, 0.3), 0.7),
                rng.uniform(0.15, 0.35),
                hsv(rng.uniform(0.2, 0.38), 0.6, rng.uniform(0.2, 0.5)),
            )
        )
    return Obj(NONE, parts, fr.p(0, 0, 0.5), kind="planter")


@lru_cache(maxsize=1)
def _foliage_bank() -> tuple[Image, ...]:
    rng = np.random.default_rng(2026)
    out = []
    for _ in range(24):
        detail = tx.random_grey_detail(rng, 96, 96, ("grass.png",), scale=rng.uniform(0.3, 1.0))
        leaf = hsv(rng.uniform(0.2, 0.36), rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.55))
        img = tx.tint(detail, leaf, 1.6)
        img = tx.modulate(img, tx.random_noise_detail(rng, 96, 96, 1.0), 0.5)
        out.append(img)
    return tuple(out)


def _blob(rng: Rng, n: int = 14) -> list[tuple[float, float]]:
    """An irregular roundish outline in (s, t) 0..1."""
    ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = 0.5 * (1 + rng.normal(0, 0.12, n)).clip(0.6, 1.2) / 1.2
    return [(0.5 + float(rr * math.cos(a)), 0.5 + float(rr * math.sin(a))) for a, rr in zip(ang, r, strict=True)]


def tree(rng: Rng, fr: Frame) -> Obj:
    """A street tree: trunk and a crown of crossed, leaf-textured irregular billboards."""
    h = rng.uniform(4.0, 9.0)
    trunk_c = hsv(0.08, 0.4, rng.uniform(0.2, 0.4))
    parts: list[Part] = [line([fr.p(0, 0, 0), fr.p(0, 0, h * 0.6)], rng.uniform(0.12, 0.25), trunk_c)]
    r = rng.uniform(1.2, 2.8)
    bank = _foliage_bank()
    zc = h * 0.68
    for _ in range(int(rng.integers(3, 6))):
        ang = rng.uniform(0, math.pi)
        d = np.array([math.cos(ang), math.sin(ang), 0.0])
        off = fr.p(*rng.normal(0, r * 0.3, 3)) - fr.o
        c = fr.p(0, 0, zc) + off
        rr = r * rng.uniform(0.6, 1.0)
        hh = rr * rng.uniform(0.8, 1.3)
        img = bank[int(rng.integers(len(bank)))]
        parts.append(
            textured(
                c - d * rr + np.array([0, 0, hh]),
                d * 2 * rr,
                np.array([0, 0, -2 * hh]),
                img,
                _blob(rng),
                colour=jitter((255, 255, 255), rng, 25),
            )
        )
    return Obj(NONE, parts, fr.p(0, 0, h * 0.5), kind="tree")


def street_lamp(rng: Rng, fr: Frame, lit: bool = False) -> Obj:
    h = rng.uniform(6.0, 9.0)
    c = (110, 110, 110) if rng.random() < 0.6 else (40, 40, 40)
    arm = rng.uniform(1.0, 2.0)
    parts = [line([fr.p(0, 0, 0), fr.p(0, 0, h)], 0.1, c), line([fr.p(0, 0, h), fr.p(0, -arm, h + 0.2)], 0.06, c)]
    head = fr.box(0, -arm, h + 0.05, (0.25, 0.6, 0.15), (240, 240, 220) if lit else (90, 90, 90))
    for p in head:
        p.emissive = lit
    parts += head
    if rng.random() < 0.25:  # vertical banner on the pole (laundry look-alike)
        img = sign_texture(rng, 96, 32, bg=hsv(0.0, 0.85, 0.75) if rng.random() < 0.6 else bright(rng))
        parts.append(fr.tex((0.05, -0.05, h * 0.75), (0.6, 0, 0), (0, 0, -1.6), img))
    return Obj(NONE, parts, fr.p(0, 0, h / 2), kind="lamp", meta={"light": fr.p(0, -arm, h)})


def legal_awning(rng: Rng, fr: Frame, length: float) -> Obj:
    """A shop's retractable awning, flush with the facade and without posts (legal; not a structure)."""
    depth = rng.uniform(0.5, 1.3)
    h = rng.uniform(2.5, 3.3)
    c1 = bright(rng)
    img = (
        tx.stripes(48, 128, c1, (235, 235, 235), 16)
        if rng.random() < 0.5
        else np.full((48, 128, 3), np.asarray(c1, np.uint8), np.uint8)
    )
    parts = [
        fr.tex((-length / 2, 0, h), (length, 0, 0), (0, -depth, -0.5), img),
        fr.tex((-length / 2, -depth, h - 0.5), (length, 0, 0), (0, 0, -0.2), img),
    ]
    return Obj(NONE, parts, fr.p(0, -depth / 2, h), kind="awning", shadow=True)


def ac_unit(rng: Rng, fr: Frame) -> Obj:
    w = rng.uniform(0.7, 0.9)
    c = (rng.uniform(200, 235),) * 3
    parts = fr.box(0, -0.2, 0, (w, 0.3, 0.55), c)  # type: ignore[arg-type]
    parts.append(disc(fr.p(0.1, -0.36, 0.27), 0.18, (90, 90, 90)))
    return Obj(NONE, parts, fr.p(0, -0.2, 0.3), kind="ac", shadow=False)


def banner(rng: Rng, fr: Frame, length: float, h: float) -> Obj:
    """A red cloth banner on a facade or between poles (a laundry/sheet look-alike)."""
    img = sign_texture(rng, 32, int(32 * length / h), bg=hsv(0.0, 0.85, rng.uniform(0.6, 0.85)), fg=(200, 240, 250))
    return Obj(
        NONE,
        [fr.tex((-length / 2, -0.03, h), (length, 0, 0), (0, 0, -0.7), img)],
        fr.p(0, 0, h),
        kind="banner",
        shadow=False,
    )


def flags(rng: Rng, fr: Frame, length: float, h: float) -> Obj:
    """Strings of small pennants or lanterns (festival decoration; look-alike of clothes lines)."""
    parts: list[Part] = [sagging_line(fr.p(-length / 2, 0, h), fr.p(length / 2, 0, h), 0.2, (60, 60, 60), 0.01)]
    n = int(length / 0.45)
    lantern = rng.random() < 0.5
    for k in range(n):
        uu = -length / 2 + (k + 0.5) * length / n
        t = (uu + length / 2) / length
        z = h - 0.2 * 4 * t * (1 - t)
        c = hsv(0.0, 0.9, 0.85) if lantern else bright(rng)
        if lantern:
            parts.append(disc(fr.p(uu, 0, z - 0.2), 0.15, c))
        else:
            parts.append(fr.quad([(uu - 0.12, 0, z), (uu + 0.12, 0, z), (uu, 0, z - 0.3)], c))
    return Obj(NONE, parts, fr.p(0, 0, h), kind="flags", shadow=False)
