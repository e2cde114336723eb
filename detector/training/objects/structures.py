"""Structure builders (class ``structure``): steel-roof sheds and shacks, lean-to canopies on posts,
hoarding enclosures and scaffold frames, all clad in corrugated panels."""

from __future__ import annotations

import cv2
import numpy as np

from detector.training import textures as tx
from detector.training.geometry import Image, Obj, Part, line
from detector.training.objects.common import STRUCTURE, Colour, Frame, Rng, dull, hsv, jitter, sign_texture


def _panel_texture(rng: Rng, h: int, w: int, colour: Colour, vertical: bool = True) -> Image:
    img = tx.corrugated(h, w, colour, int(rng.integers(4, 10)), vertical)
    img = tx.modulate(img, tx.random_noise_detail(rng, h, w, 0.7), rng.uniform(0.1, 0.35))
    if rng.random() < 0.3:  # rust/dirt streaks
        streak = tx.random_noise_detail(rng, h, w, 1.0)
        img = tx.modulate(img, cv2.resize(streak[:, :4], (w, h)), 0.3)
    return img


def _roof_colour(rng: Rng) -> Colour:
    r = rng.random()
    if r < 0.55:
        return hsv(rng.uniform(0.55, 0.62), rng.uniform(0.55, 0.9), rng.uniform(0.55, 0.9))  # the blue steel roof
    if r < 0.75:
        return (225, 225, 228)
    if r < 0.85:
        return hsv(0.0, 0.6, 0.6)
    return hsv(rng.uniform(0.05, 0.1), 0.5, rng.uniform(0.35, 0.6))  # rust


def shed(rng: Rng, fr: Frame, *, against_wall: bool = False, on_roof: bool = False) -> Obj:
    """Steel-roof shed / prefab / shack: walls of corrugated or sandwich panels and a steel roof."""
    length, depth = rng.uniform(2.0, 6.0), rng.uniform(1.8, 4.0)
    h = rng.uniform(2.2, 3.0)
    roof_c = _roof_colour(rng)
    wall_style = rng.random()
    wall_c: Colour
    if wall_style < 0.4:
        wall_c = (225, 225, 225)
    elif wall_style < 0.7:
        wall_c = roof_c
    else:
        wall_c = hsv(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.7))
    parts: list[Part] = []
    wimg = _panel_texture(rng, 64, 128, wall_c)
    hl, hd = length / 2, depth / 2
    mono = rng.random() < 0.6
    h_front = h
    h_back = h + (rng.uniform(0.2, 0.6) if mono else 0.0)
    # Walls (front, two sides, back); the back hidden against walls is harmless to draw.
    parts.append(fr.tex((-hl, -hd, 0), (length, 0, 0), (0, 0, h_front), wimg))
    parts.append(
        fr.tex(
            (hl, -hd, 0), (0, depth, 0), (0, 0, h_front), wimg, shape=[(0, 0), (1, 0), (1, h_back / h_front), (0, 1)]
        )
    )
    parts.append(
        fr.tex(
            (-hl, -hd, 0), (0, depth, 0), (0, 0, h_front), wimg, shape=[(0, 0), (1, 0), (1, h_back / h_front), (0, 1)]
        )
    )
    if not against_wall:
        parts.append(fr.tex((-hl, hd, 0), (length, 0, 0), (0, 0, h_back), wimg))
    # Door and window on the front.
    dw = rng.uniform(0.8, 1.2)
    du = rng.uniform(-hl + dw, hl - dw) if length > 2 * dw + 0.2 else 0.0
    door_c = (60, 60, 60) if rng.random() < 0.5 else jitter(wall_c, rng, 40)
    parts.append(
        fr.quad(
            [
                (du - dw / 2, -hd - 0.01, 0),
                (du + dw / 2, -hd - 0.01, 0),
                (du + dw / 2, -hd - 0.01, 2.0),
                (du - dw / 2, -hd - 0.01, 2.0),
            ],
            door_c,
        )
    )
    if rng.random() < 0.6 and length > 2.5:
        wu = du + (1.2 if du < 0 else -1.2)
        parts.append(
            fr.quad(
                [
                    (wu - 0.4, -hd - 0.01, 1.0),
                    (wu + 0.4, -hd - 0.01, 1.0),
                    (wu + 0.4, -hd - 0.01, 1.8),
                    (wu - 0.4, -hd - 0.01, 1.8),
                ],
                (90, 80, 70),
            )
        )
    # Roof with overhang.
    ov = rng.uniform(0.1, 0.5)
    rimg = _panel_texture(rng, 96, 128, roof_c, vertical=False)
    if mono:
        parts.append(
            fr.tex(
                (-hl - ov, -hd - ov, h_front - 0.05),
                (length + 2 * ov, 0, 0),
                (0, depth + 2 * ov, h_back - h_front + 0.1),
                rimg,
            )
        )
    else:
        ridge = h + rng.uniform(0.3, 0.9)
        parts.append(fr.tex((-hl - ov, -hd - ov, h - 0.05), (length + 2 * ov, 0, 0), (0, hd + ov, ridge - h), rimg))
        parts.append(fr.tex((-hl - ov, 0, ridge), (length + 2 * ov, 0, 0), (0, hd + ov, h - ridge - 0.05), rimg))
        tri = [(0, 0), (1, 0), (0.5, 1)]
        parts.append(fr.tex((-hl, -hd, h), (0, depth, 0), (0, 0, ridge - h), wimg, shape=tri))
        parts.append(fr.tex((hl, -hd, h), (0, depth, 0), (0, 0, ridge - h), wimg, shape=tri))
    kind = "roof_shed" if on_roof else "shed"
    return Obj(STRUCTURE, parts, fr.p(0, 0, h / 2), kind=kind)


def canopy_addon(rng: Rng, fr: Frame, length: float | None = None) -> Obj:
    """A lean-to canopy built onto a facade over the pavement on posts (搭建雨棚), sometimes walled in.

    ``fr`` stands at the facade foot; -v points into the street.
    """
    length = length or rng.uniform(3.0, 8.0)
    depth = rng.uniform(2.0, 4.0)
    h_wall, h_post = rng.uniform(2.8, 3.6), rng.uniform(2.3, 2.7)
    roof_c = _roof_colour(rng) if rng.random() < 0.8 else (200, 215, 215)
    rimg = _panel_texture(rng, 96, 160, roof_c, vertical=False)
    hl = length / 2
    parts: list[Part] = [fr.tex((-hl, 0, h_wall), (length, 0, 0), (0, -depth, h_post - h_wall), rimg)]
    parts.append(fr.tex((-hl, -depth, h_post), (length, 0, 0), (0, 0, -0.15), rimg))
    post_c = (150, 150, 150) if rng.random() < 0.6 else (40, 40, 40)
    nposts = max(2, int(length / 2.5) + 1)
    for k in range(nposts):
        uu = -hl + 0.1 + k * (length - 0.2) / (nposts - 1)
        parts.append(line([fr.p(uu, -depth + 0.1, 0), fr.p(uu, -depth + 0.1, h_post)], 0.06, post_c))
    enclosed = rng.random()
    if enclosed < 0.45:  # walls / glass / panels close it in
        wall_c = (220, 220, 220) if rng.random() < 0.5 else roof_c
        wimg = _panel_texture(rng, 64, 128, wall_c)
        parts.append(fr.tex((-hl, -depth + 0.1, 0), (length, 0, 0), (0, 0, h_post), wimg))
        parts.append(
            fr.tex(
                (-hl, -depth + 0.1, 0),
                (0, depth - 0.1, 0),
                (0, 0, h_post),
                wimg,
                shape=[(0, 0), (1, 0), (1, h_wall / h_post), (0, 1)],
            )
        )
        parts.append(
            fr.tex(
                (hl, -depth + 0.1, 0),
                (0, depth - 0.1, 0),
                (0, 0, h_post),
                wimg,
                shape=[(0, 0), (1, 0), (1, h_wall / h_post), (0, 1)],
            )
        )
        parts.append(
            fr.quad(
                [
                    (-0.5, -depth + 0.09, 0),
                    (0.5, -depth + 0.09, 0),
                    (0.5, -depth + 0.09, 2.0),
                    (-0.5, -depth + 0.09, 2.0),
                ],
                (70, 70, 70),
            )
        )
    elif enclosed < 0.65:  # clutter stored underneath
        for _ in range(int(rng.integers(1, 5))):
            parts += fr.box(
                rng.uniform(-hl + 0.3, hl - 0.3),
                rng.uniform(-depth + 0.5, -0.3),
                0,
                (rng.uniform(0.4, 1.0), rng.uniform(0.4, 0.8), rng.uniform(0.4, 1.2)),
                dull(rng),
            )
    return Obj(STRUCTURE, parts, fr.p(0, -depth / 2, 1.5), kind="canopy")


def enclosure(rng: Rng, fr: Frame) -> Obj:
    """Hoarding panels fencing off an area, sometimes roofed (围挡 / 圈占)."""
    length, depth = rng.uniform(3.0, 8.0), rng.uniform(2.0, 5.0)
    h = rng.uniform(1.8, 2.6)
    c = (
        hsv(rng.choice([0.6, 0.35, 0.58]), rng.uniform(0.4, 0.8), rng.uniform(0.5, 0.8))
        if rng.random() < 0.7
        else (225, 225, 225)
    )
    img = _panel_texture(rng, 64, 192, c)
    if rng.random() < 0.4:  # printed banner on the hoarding
        ph, pw = 24, 64
        img[20 : 20 + ph, 60 : 60 + pw] = sign_texture(rng, ph, pw)
    hl, hd = length / 2, depth / 2
    parts: list[Part] = [
        fr.tex((-hl, -hd, 0), (length, 0, 0), (0, 0, h), img),
        fr.tex((-hl, -hd, 0), (0, depth, 0), (0, 0, h), img),
        fr.tex((hl, -hd, 0), (0, depth, 0), (0, 0, h), img),
        fr.tex((-hl, hd, 0), (length, 0, 0), (0, 0, h), img),
    ]
    if rng.random() < 0.5:
        rimg = _panel_texture(rng, 96, 128, _roof_colour(rng), vertical=False)
        parts.append(fr.tex((-hl - 0.2, -hd - 0.2, h), (length + 0.4, 0, 0), (0, depth + 0.4, 0.3), rimg))
    else:  # stuff piled inside, visible over the wall
        for _ in range(int(rng.integers(1, 4))):
            parts += fr.box(
                rng.uniform(-hl + 0.5, hl - 0.5),
                rng.uniform(-hd + 0.5, hd - 0.5),
                0,
                (rng.uniform(0.8, 2), rng.uniform(0.8, 2), rng.uniform(h * 0.8, h * 1.3)),
                dull(rng),
            )
    return Obj(STRUCTURE, parts, fr.p(0, 0, h / 2), kind="enclosure")


def scaffold_frame(rng: Rng, fr: Frame) -> Obj:
    """Steel-pipe frame of an add-on under construction, partly sheeted."""
    length, depth, h = rng.uniform(3.0, 7.0), rng.uniform(1.5, 3.5), rng.uniform(2.5, 4.0)
    pipe = (140, 140, 140) if rng.random() < 0.5 else hsv(0.1, 0.6, 0.7)
    nu = int(max(2, length // 1.5 + 1))
    parts: list[Part] = []
    levels = [h * k / int(rng.integers(2, 4)) for k in range(1, 4)]
    for i in range(nu):
        uu = -length / 2 + i * length / (nu - 1)
        for vv in (-depth / 2, depth / 2):
            parts.append(line([fr.p(uu, vv, 0), fr.p(uu, vv, h)], 0.05, pipe))
    for z in [*levels, h]:
        if z > h:
            continue
        for vv in (-depth / 2, depth / 2):
            parts.append(line([fr.p(-length / 2, vv, z), fr.p(length / 2, vv, z)], 0.05, pipe))
        parts.append(line([fr.p(-length / 2, -depth / 2, z), fr.p(-length / 2, depth / 2, z)], 0.05, pipe))
        parts.append(line([fr.p(length / 2, -depth / 2, z), fr.p(length / 2, depth / 2, z)], 0.05, pipe))
    if rng.random() < 0.7:  # partial roof sheets
        rimg = _panel_texture(rng, 64, 128, _roof_colour(rng), vertical=False)
        frac = rng.uniform(0.4, 1.0)
        parts.append(fr.tex((-length / 2, -depth / 2, h), (length * frac, 0, 0), (0, depth, 0.2), rimg))
    if rng.random() < 0.6:  # green safety mesh / tarp on one side
        mesh = tx.modulate(
            np.full((64, 128, 3), np.asarray(hsv(0.35, 0.6, 0.45), np.uint8), np.uint8),
            tx.random_noise_detail(rng, 64, 128),
            0.4,
        )
        parts.append(
            fr.tex((-length / 2, -depth / 2 - 0.02, 0), (length * rng.uniform(0.3, 1.0), 0, 0), (0, 0, h), mesh)
        )
    return Obj(STRUCTURE, parts, fr.p(0, 0, h / 2), kind="scaffold")
