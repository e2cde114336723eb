"""Stall builders (class ``stall``): awning and umbrella stalls, vendor and tricycle carts, ground-mat stalls
and storefront overflow, with the tables, goods and stools they share."""

from __future__ import annotations

import numpy as np

from detector.training import textures as tx
from detector.training.geometry import Image, Obj, Part, disc, line
from detector.training.objects.common import (
    STALL,
    Frame,
    Rng,
    any_colour,
    bright,
    cloth_texture,
    dull,
    goods_texture,
    hsv,
    jitter,
    sign_texture,
    tex_size,
    umbrella_canopy,
    wheel,
)
from detector.training.objects.distractors import person


def _goods_on_surface(
    rng: Rng, fr: Frame, u0: float, u1: float, v0: float, v1: float, z: float, dense: float = 1.0
) -> list[Part]:
    """Goods piled on a table top: produce, boxes, packs; coarse shapes that read as clutter."""
    parts: list[Part] = []
    style = rng.random()
    length, depth = u1 - u0, v1 - v0
    if style < 0.35:  # produce piles: many small discs in a few colours
        cols = [bright(rng) for _ in range(int(rng.integers(1, 4)))]
        n = int(rng.integers(8, 26) * dense)
        for _ in range(n):
            r = rng.uniform(0.04, 0.1)
            parts.append(
                disc(
                    fr.p(rng.uniform(u0 + r, u1 - r), rng.uniform(v0, v1), z + r),
                    r,
                    jitter(cols[int(rng.integers(len(cols)))], rng),
                )
            )
    elif style < 0.7:  # boxed/packed goods
        n = int(rng.integers(3, 10) * dense)
        for _ in range(n):
            bl, bd, bh = rng.uniform(0.12, 0.35), rng.uniform(0.12, 0.3), rng.uniform(0.06, 0.3)
            uu = rng.uniform(u0 + bl / 2, max(u0 + bl / 2, u1 - bl / 2))
            vv = rng.uniform(v0 + bd / 2, max(v0 + bd / 2, v1 - bd / 2))
            c = bright(rng) if rng.random() < 0.6 else dull(rng)
            parts += fr.box(uu, vv, z, (bl, bd, bh), c, top=jitter(c, rng))
    else:  # flat display of goods: a textured layer plus a few standing items
        img = goods_texture(rng, *tex_size(length, depth, 80))
        parts.append(fr.tex((u0, v0, z + 0.02), (length, 0, 0), (0, depth, 0), img))
        for _ in range(int(rng.integers(2, 7))):
            bl, bh = rng.uniform(0.08, 0.25), rng.uniform(0.1, 0.35)
            parts += fr.box(rng.uniform(u0 + 0.1, u1 - 0.1), rng.uniform(v0, v1), z, (bl, bl, bh), bright(rng))
    return parts


def _table(rng: Rng, fr: Frame, length: float, depth: float, height: float, cloth: bool) -> list[Part]:
    parts: list[Part] = []
    top_c = dull(rng) if rng.random() < 0.5 else (200, 200, 200)
    hl, hd = length / 2, depth / 2
    parts.append(fr.quad([(-hl, -hd, height), (hl, -hd, height), (hl, hd, height), (-hl, hd, height)], top_c))
    if cloth:
        img = cloth_texture(rng, *tex_size(length, height, 50), folds=False)
        parts.append(fr.tex((-hl, -hd, height), (length, 0, 0), (0, 0, -height * rng.uniform(0.6, 1.0)), img))
        parts.append(fr.tex((hl, -hd, height), (0, depth, 0), (0, 0, -height * 0.8), img))
        parts.append(fr.tex((-hl, -hd, height), (0, depth, 0), (0, 0, -height * 0.8), img))
    else:
        leg = (120, 120, 120) if rng.random() < 0.5 else (60, 60, 60)
        for su in (-1, 1):
            for sv in (-1, 1):
                parts.append(
                    line(
                        [fr.p(su * (hl - 0.05), sv * (hd - 0.05), 0), fr.p(su * (hl - 0.05), sv * (hd - 0.05), height)],
                        0.035,
                        leg,
                    )
                )
        parts.append(
            fr.quad(
                [(-hl, -hd, height), (hl, -hd, height), (hl, -hd, height - 0.05), (-hl, -hd, height - 0.05)],
                jitter(top_c, rng, 10),
            )
        )
    return parts


def _stools_and_crates(rng: Rng, fr: Frame, length: float, front: float) -> list[Part]:
    parts: list[Part] = []
    for _ in range(int(rng.integers(0, 4))):
        c = hsv(rng.choice([0.0, 0.6, 0.33, 0.12]), 0.8, rng.uniform(0.5, 0.9))
        h = rng.uniform(0.25, 0.4)
        parts += fr.box(
            rng.uniform(-length / 2, length / 2),
            front + rng.uniform(-0.3, 0.3),
            0,
            (rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.4), h),
            c,
        )
        if rng.random() < 0.6:
            parts += _goods_on_surface(rng, fr, -0.2, 0.2, front - 0.15, front + 0.15, h, 0.4)
    return parts


def awning_stall(rng: Rng, fr: Frame) -> Obj:
    length, depth = rng.uniform(1.2, 2.6), rng.uniform(0.6, 1.1)
    th = rng.uniform(0.7, 0.9)
    parts = _table(rng, fr, length, depth, th, cloth=rng.random() < 0.5)
    parts += _goods_on_surface(rng, fr, -length / 2, length / 2, -depth / 2, depth / 2, th)
    ph = rng.uniform(1.9, 2.4)
    pole_c = (150, 150, 150) if rng.random() < 0.6 else (40, 40, 40)
    hl, hd = length / 2 + 0.1, depth / 2 + rng.uniform(0.1, 0.5)
    for su in (-1, 1):
        for sv in (-1, 1):
            parts.append(
                line([fr.p(su * hl, sv * hd, 0), fr.p(su * hl, sv * hd, ph + (0.2 if sv > 0 else 0))], 0.04, pole_c)
            )
    c1 = bright(rng)
    img: Image
    if rng.random() < 0.5:
        img = tx.stripes(64, 96, c1, (235, 235, 235) if rng.random() < 0.6 else bright(rng), 16)
    else:
        img = np.full((64, 96, 3), np.asarray(c1, np.uint8), np.uint8)
    img = tx.modulate(img, tx.random_noise_detail(rng, 64, 96, 0.5), 0.2)
    ov = rng.uniform(0.1, 0.4)
    if rng.random() < 0.6:  # mono-pitch canopy, high at the back
        parts.append(fr.tex((-hl - ov, -hd - ov, ph), (2 * (hl + ov), 0, 0), (0, 2 * (hd + ov), 0.3), img))
    else:  # ridge canopy
        parts.append(fr.tex((-hl - ov, -hd - ov, ph), (2 * (hl + ov), 0, 0), (0, hd + ov, 0.35), img))
        parts.append(fr.tex((-hl - ov, 0, ph + 0.35), (2 * (hl + ov), 0, 0), (0, hd + ov, -0.35), img))
    if rng.random() < 0.6:  # valance strip along the front edge
        parts.append(fr.tex((-hl - ov, -hd - ov, ph), (2 * (hl + ov), 0, 0), (0, 0, -0.2), img))
    if rng.random() < 0.3:  # hanging goods from the canopy frame
        for k in range(int(rng.integers(2, 6))):
            uu = -hl + (k + 0.5) * 2 * hl / 5
            parts += fr.box(uu, -hd, ph - 0.55, (0.15, 0.05, rng.uniform(0.25, 0.45)), bright(rng))
    parts += _stools_and_crates(rng, fr, length, -depth / 2 - 0.3)
    return Obj(STALL, parts, fr.p(0, 0, 1.0), kind="awning_stall")


def umbrella_stall(rng: Rng, fr: Frame) -> Obj:
    length, depth = rng.uniform(0.9, 1.8), rng.uniform(0.5, 0.9)
    th = rng.uniform(0.6, 0.85)
    parts: list[Part] = []
    if rng.random() < 0.7:
        parts += _table(rng, fr, length, depth, th, cloth=rng.random() < 0.4)
        parts += _goods_on_surface(rng, fr, -length / 2, length / 2, -depth / 2, depth / 2, th)
    else:  # tubs and baskets on the ground
        for k in range(int(rng.integers(2, 5))):
            r = rng.uniform(0.2, 0.35)
            uu = -length / 2 + (k + 0.5) * length / 4
            c = hsv(rng.choice([0.0, 0.6, 0.1]), 0.7, 0.7)
            parts += fr.box(uu, 0, 0, (2 * r, 2 * r, 0.3), c)
            parts += _goods_on_surface(rng, fr, uu - r, uu + r, -r, r, 0.3, 0.5)
    pole_h = rng.uniform(2.0, 2.5)
    radius = rng.uniform(0.9, 1.5)
    pu = rng.uniform(-0.2, 0.2) * length
    parts.append(line([fr.p(pu, depth / 2 + 0.1, 0), fr.p(pu, depth / 2 + 0.1, pole_h)], 0.04, (90, 90, 90)))
    c1 = bright(rng) if rng.random() < 0.8 else (235, 235, 235)
    alt = bright(rng) if rng.random() < 0.4 else ((235, 235, 235) if rng.random() < 0.4 else None)
    square = rng.random() < 0.35
    apex = fr.p(pu, depth / 2 * 0.3, pole_h + radius * 0.25)
    tilt = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 0.0])
    parts += umbrella_canopy(
        rng,
        apex,
        radius,
        radius * rng.uniform(0.2, 0.35),
        c1,
        ribs=4 if square else int(rng.choice([6, 8, 10, 12])),
        alt=alt,
        tilt=tilt,
    )
    parts += _stools_and_crates(rng, fr, length, -depth / 2 - 0.3)
    if rng.random() < 0.4:
        parts += umbrella_canopy(rng, apex + fr.u * radius * 1.6, radius * 0.9, radius * 0.25, bright(rng), ribs=8)
    return Obj(STALL, parts, fr.p(0, 0, 1.0), kind="umbrella_stall")


def vendor_cart(rng: Rng, fr: Frame) -> Obj:
    length, depth, h = rng.uniform(1.1, 1.9), rng.uniform(0.6, 0.9), rng.uniform(0.75, 0.95)
    body_c = (220, 220, 225) if rng.random() < 0.4 else (bright(rng) if rng.random() < 0.6 else (170, 170, 175))
    wr = rng.uniform(0.15, 0.3)
    parts: list[Part] = []
    for su in (-0.35, 0.35):
        parts.append(wheel(fr, su * length, -depth / 2 - 0.01, wr))
    parts += fr.box(0, 0, wr * 0.8, (length, depth, h - wr * 0.8), body_c, top=jitter(body_c, rng))
    if rng.random() < 0.6:  # printed front panel
        img = sign_texture(rng, 48, 128) if rng.random() < 0.5 else goods_texture(rng, 48, 128)
        parts.append(
            fr.tex(
                (-length / 2 + 0.05, -depth / 2 - 0.01, h - 0.05), (length - 0.1, 0, 0), (0, 0, -(h - wr) * 0.7), img
            )
        )
    style = rng.random()
    if style < 0.45:  # glass display case with goods
        gh = rng.uniform(0.35, 0.6)
        parts += _goods_on_surface(
            rng, fr, -length / 2 + 0.05, length / 2 - 0.05, -depth / 2 + 0.05, depth / 2 - 0.05, h, 1.2
        )
        glass = (210, 190, 160)
        parts.append(
            fr.quad(
                [
                    (-length / 2, -depth / 2, h),
                    (length / 2, -depth / 2, h),
                    (length / 2, -depth / 2 + 0.1, h + gh),
                    (-length / 2, -depth / 2 + 0.1, h + gh),
                ],
                glass,
            )
        )
        parts.append(
            fr.quad(
                [
                    (-length / 2, -depth / 2 + 0.1, h + gh),
                    (length / 2, -depth / 2 + 0.1, h + gh),
                    (length / 2, depth / 2, h + gh),
                    (-length / 2, depth / 2, h + gh),
                ],
                jitter(body_c, rng),
            )
        )
    elif style < 0.75:  # food cart: pots, steamers, a gas bottle
        for _ in range(int(rng.integers(1, 4))):
            r = rng.uniform(0.15, 0.28)
            uu = rng.uniform(-length / 2 + r, length / 2 - r)
            c = (190, 190, 195) if rng.random() < 0.6 else (60, 60, 60)
            for k in range(int(rng.integers(1, 4))):
                parts += fr.box(uu, 0, h + k * 0.12, (2 * r, 2 * r, 0.12), jitter(c, rng, 8))
        parts += _goods_on_surface(rng, fr, -length / 2, length / 2, -depth / 2, -depth / 2 + 0.2, h, 0.5)
        parts += fr.box(length / 2 + 0.2, 0, 0, (0.3, 0.3, 0.6), hsv(0.6, 0.6, 0.6))
    else:
        parts += _goods_on_surface(rng, fr, -length / 2, length / 2, -depth / 2, depth / 2, h, 1.3)
    parts.append(line([fr.p(-length / 2, 0, h), fr.p(-length / 2 - 0.5, 0, h + 0.1)], 0.03, (60, 60, 60)))
    if rng.random() < 0.55:
        ph = rng.uniform(1.9, 2.3)
        parts.append(line([fr.p(0, depth / 2, h), fr.p(0, depth / 2, ph)], 0.035, (80, 80, 80)))
        parts += umbrella_canopy(
            rng,
            fr.p(0, 0, ph + 0.3),
            rng.uniform(0.8, 1.2),
            0.3,
            bright(rng),
            ribs=int(rng.choice([4, 8])),
            alt=(235, 235, 235) if rng.random() < 0.5 else None,
        )
    return Obj(STALL, parts, fr.p(0, 0, 0.8), kind="vendor_cart")


def tricycle_cart(rng: Rng, fr: Frame, rider: bool | None = None) -> Obj:
    """Tricycle with a cargo box of goods (the commonest mobile stall)."""
    cargo_l, cargo_d = rng.uniform(1.0, 1.5), rng.uniform(0.8, 1.1)
    wr = rng.uniform(0.25, 0.33)
    frame_c = hsv(rng.choice([0.0, 0.6, 0.33, 0.1, 0.75]), 0.6, rng.uniform(0.4, 0.8))
    parts: list[Part] = []
    parts.append(wheel(fr, cargo_l / 2 + 0.9, -0.02, wr))
    parts.append(wheel(fr, 0.0, -cargo_d / 2 - 0.02, wr))
    parts.append(
        line(
            [fr.p(cargo_l / 2, 0, wr + 0.2), fr.p(cargo_l / 2 + 0.9, 0, wr), fr.p(cargo_l / 2 + 0.8, 0, 1.0)],
            0.04,
            frame_c,
        )
    )
    parts.append(line([fr.p(cargo_l / 2 + 0.75, -0.25, 1.0), fr.p(cargo_l / 2 + 0.75, 0.25, 1.0)], 0.03, (30, 30, 30)))
    parts += fr.box(cargo_l / 2 + 0.35, 0, 0.75, (0.25, 0.2, 0.08), (30, 30, 30))
    floor_h = wr + 0.15
    side_h = rng.uniform(0.25, 0.5)
    box_c = frame_c if rng.random() < 0.5 else (200, 200, 200)
    parts += fr.box(0, 0, floor_h, (cargo_l, cargo_d, side_h), box_c, top=dull(rng))
    top_h = floor_h + side_h
    parts += _goods_on_surface(
        rng, fr, -cargo_l / 2 + 0.05, cargo_l / 2 - 0.05, -cargo_d / 2 + 0.05, cargo_d / 2 - 0.05, top_h, 1.5
    )
    if rng.random() < 0.5:  # sacks/crates stacked higher
        for _ in range(int(rng.integers(1, 4))):
            parts += fr.box(
                rng.uniform(-0.3, 0.3) * cargo_l,
                rng.uniform(-0.2, 0.2),
                top_h,
                (0.4, 0.35, rng.uniform(0.2, 0.4)),
                dull(rng),
            )
    if rng.random() < 0.45:  # canopy frame with tarp roof
        ch = top_h + rng.uniform(0.9, 1.3)
        img = cloth_texture(rng, 48, 64, folds=False)
        for su in (-1, 1):
            for sv in (-1, 1):
                parts.append(
                    line(
                        [fr.p(su * cargo_l / 2, sv * cargo_d / 2, top_h), fr.p(su * cargo_l / 2, sv * cargo_d / 2, ch)],
                        0.03,
                        (90, 90, 90),
                    )
                )
        parts.append(
            fr.tex((-cargo_l / 2 - 0.15, -cargo_d / 2 - 0.15, ch), (cargo_l + 0.3, 0, 0), (0, cargo_d + 0.3, 0.1), img)
        )
    obj = Obj(STALL, parts, fr.p(0, 0, 0.8), kind="tricycle_cart")
    if rider if rider is not None else rng.random() < 0.3:
        obj.support += person(rng, Frame(fr.p(cargo_l / 2 + 0.5, 0, 0.2), fr.yaw), sitting=True).parts
    return obj


def ground_mat_stall(rng: Rng, fr: Frame) -> Obj:
    """地摊: a tarp or mat on the pavement with goods spread on it."""
    length, depth = rng.uniform(1.2, 2.5), rng.uniform(0.8, 1.5)
    c = hsv(rng.choice([0.6, 0.0, 0.33, 0.1]), 0.7, 0.7) if rng.random() < 0.6 else any_colour(rng)
    img = tx.modulate(np.full((48, 64, 3), np.asarray(c, np.uint8), np.uint8), tx.random_noise_detail(rng, 48, 64), 0.3)
    parts: list[Part] = [fr.tex((-length / 2, -depth / 2, 0.01), (length, 0, 0), (0, depth, 0), img)]
    parts += _goods_on_surface(
        rng, fr, -length / 2 + 0.05, length / 2 - 0.05, -depth / 2 + 0.05, depth / 2 - 0.05, 0.02, 1.6
    )
    for _ in range(int(rng.integers(1, 4))):
        bl = rng.uniform(0.3, 0.5)
        parts += fr.box(
            rng.uniform(-length / 2, length / 2),
            rng.uniform(-depth / 2, depth / 2),
            0,
            (bl, bl * 0.8, rng.uniform(0.2, 0.45)),
            dull(rng) if rng.random() < 0.5 else (60, 120, 170),
        )
    if rng.random() < 0.3:
        parts += umbrella_canopy(rng, fr.p(0, 0, 1.4), rng.uniform(0.8, 1.1), 0.25, bright(rng), ribs=8)
        parts.append(line([fr.p(0, 0, 0), fr.p(0, 0, 1.4)], 0.03, (80, 80, 80)))
    return Obj(STALL, parts, fr.p(0, 0, 0.2), kind="ground_stall")


def shop_goods(rng: Rng, fr: Frame) -> Obj:
    """Storefront overflow: racks, shelves, crates and fruit displays put out in front of a shop."""
    parts: list[Part] = []
    style = rng.random()
    length = rng.uniform(1.0, 3.0)
    if style < 0.3:  # shelf rack
        h, d = rng.uniform(1.0, 1.8), rng.uniform(0.35, 0.6)
        n = int(rng.integers(3, 5))
        rack_c = (150, 150, 150) if rng.random() < 0.5 else bright(rng)
        for k in range(n + 1):
            z = h * k / n
            parts.append(
                fr.quad(
                    [
                        (-length / 2, -d / 2, z),
                        (length / 2, -d / 2, z),
                        (length / 2, d / 2, z),
                        (-length / 2, d / 2, z),
                    ],
                    rack_c,
                )
            )
            if k < n:
                img = goods_texture(rng, *tex_size(length, h / n, 60))
                parts.append(
                    fr.tex((-length / 2, -d / 2 + 0.05, z + h / n * 0.85), (length, 0, 0), (0, 0, -h / n * 0.8), img)
                )
        for su in (-1, 1):
            parts.append(line([fr.p(su * length / 2, -d / 2, 0), fr.p(su * length / 2, -d / 2, h)], 0.03, rack_c))
    elif style < 0.6:  # stacked crates / cartons
        cw = rng.uniform(0.4, 0.6)
        cols = int(max(1, length // cw))
        crate = hsv(rng.choice([0.0, 0.6, 0.33, 0.13]), 0.75, 0.75)
        carton = (110, 150, 190)
        for i in range(cols):
            for j in range(int(rng.integers(1, 5))):
                c = crate if rng.random() < 0.6 else jitter(carton, rng, 12)
                parts += fr.box(
                    -length / 2 + (i + 0.5) * cw,
                    rng.uniform(-0.05, 0.05),
                    j * 0.3,
                    (cw * 0.95, 0.45, 0.29),
                    c,
                    top=jitter(c, rng, 15),
                )
            if rng.random() < 0.6:
                parts += _goods_on_surface(
                    rng, fr, -length / 2 + i * cw, -length / 2 + (i + 1) * cw, -0.2, 0.2, (j + 1) * 0.3, 0.5
                )
    else:  # fruit/vegetable display: stepped sloping stand covered in produce
        h, d = rng.uniform(0.6, 1.1), rng.uniform(0.8, 1.4)
        steps = int(rng.integers(2, 4))
        stand_c = dull(rng)
        for k in range(steps):
            v0 = -d / 2 + k * d / steps
            z = h * (k + 1) / steps
            parts += fr.box(0, v0 + d / steps / 2, 0, (length, d / steps, z), stand_c, top=stand_c)
            produce = [bright(rng) for _ in range(int(rng.integers(1, 4)))]
            nseg = int(rng.integers(2, 5))
            for sidx in range(nseg):
                col = produce[sidx % len(produce)]
                u0 = -length / 2 + sidx * length / nseg
                for _ in range(int(rng.integers(6, 14))):
                    r = rng.uniform(0.04, 0.09)
                    parts.append(
                        disc(
                            fr.p(rng.uniform(u0 + r, u0 + length / nseg - r), rng.uniform(v0, v0 + d / steps), z + r),
                            r,
                            jitter(col, rng, 20),
                        )
                    )
        if rng.random() < 0.5:
            parts += umbrella_canopy(rng, fr.p(0, 0, 2.3), rng.uniform(1.0, 1.4), 0.3, bright(rng), ribs=8)
            parts.append(line([fr.p(0, d / 2, 0), fr.p(0, d / 2, 2.3)], 0.03, (80, 80, 80)))
    return Obj(STALL, parts, fr.p(0, 0, 0.6), kind="shop_goods")


STALL_BUILDERS = (awning_stall, umbrella_stall, vendor_cart, tricycle_cart, ground_mat_stall, shop_goods)
