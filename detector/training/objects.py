"""3-D builders for scene objects: the three positive classes and their look-alike distractors.

Each builder takes a random generator and a local frame (where the object stands and which way it
faces) and returns an :class:`~detector.training.geometry.Obj` made of flat-shaded or textured
primitives. Every class comes in structurally different forms (an umbrella stall and a tricycle cart
share little but their label), because the model is later judged on real photographs.

Local frame convention: ``u`` runs along the object's length, ``v`` points away from the viewer side
(the object's front faces ``-v``), ``z`` is up.
"""

from __future__ import annotations

import colorsys
import math
from functools import lru_cache

import cv2
import numpy as np

from detector.training import textures as tx
from detector.training.geometry import F64, Image, Obj, Part, Pts, Vec, box, disc, line, poly, textured

STALL, LAUNDRY, STRUCTURE, NONE = 0, 1, 2, -1
Colour = tuple[float, float, float]
Rng = np.random.Generator


# --- helpers ------------------------------------------------------------------------------------------
class Frame:
    """Local object frame: origin on the ground, yaw of the ``u`` axis about Z."""

    def __init__(self, origin: Vec, yaw: float) -> None:
        self.o = np.asarray(origin, np.float64)
        self.yaw = yaw
        self.u = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        self.v = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        self.z = np.array([0.0, 0.0, 1.0])

    def p(self, u: float, v: float, z: float) -> F64:
        return self.o + u * self.u + v * self.v + z * self.z

    def pts(self, local: Pts) -> F64:
        a = np.asarray(local, np.float64)
        return self.o[None, :] + a[:, :1] * self.u + a[:, 1:2] * self.v + a[:, 2:3] * self.z

    def box(self, u: float, v: float, z: float, size: Vec, colour: Colour, top: Colour | None = None) -> list[Part]:
        return box(self.p(u, v, z), size, colour, yaw=self.yaw, top=top)

    def quad(self, local: Pts, colour: Colour) -> Part:
        return poly(self.pts(local), colour)

    def tex(
        self,
        o: Vec,
        a: Vec,
        b: Vec,
        img: Image,
        shape: Pts | None = None,
        colour: Colour = (255, 255, 255),
    ) -> Part:
        """Texture on the local plane o + s*a + t*b (a, b local vectors)."""
        wo = self.p(*o)
        wa = a[0] * self.u + a[1] * self.v + a[2] * self.z
        wb = b[0] * self.u + b[1] * self.v + b[2] * self.z
        return textured(wo, wa, wb, img, shape, colour)


def hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return (b * 255, g * 255, r * 255)


def bright(rng: Rng) -> Colour:
    return hsv(rng.random(), rng.uniform(0.55, 0.95), rng.uniform(0.6, 0.95))


def any_colour(rng: Rng) -> Colour:
    r = rng.random()
    if r < 0.25:
        g = rng.uniform(30, 235)
        return (g, g, g * rng.uniform(0.95, 1.05))
    if r < 0.4:
        return hsv(rng.uniform(0.55, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.6))  # navy/denim
    return hsv(rng.random(), rng.uniform(0.2, 0.95), rng.uniform(0.3, 0.95))


def dull(rng: Rng) -> Colour:
    return hsv(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.85))


def jitter(c: Colour, rng: Rng, amt: float = 18) -> Colour:
    return tuple(float(np.clip(x + rng.normal(0, amt), 0, 255)) for x in c)  # type: ignore[return-value]


def tex_size(metres_w: float, metres_h: float, ppm: float = 60.0, cap: int = 192) -> tuple[int, int]:
    w = int(np.clip(metres_w * ppm, 8, cap))
    h = int(np.clip(metres_h * ppm, 8, cap))
    return h, w


def _make_cloth(rng: Rng, h: int, w: int) -> Image:
    r = rng.random()
    c1 = any_colour(rng)
    img: Image
    if r < 0.4:
        img = np.empty((h, w, 3), np.uint8)
        img[:] = np.asarray(c1, np.uint8)
    elif r < 0.6:
        img = tx.stripes(h, w, c1, any_colour(rng), int(rng.integers(4, 20)), vertical=rng.random() < 0.5)
    elif r < 0.78:
        img = tx.checks(h, w, c1, any_colour(rng), int(rng.integers(6, 24)))
    else:
        img = tx.random_photo_patch(rng, h, w)
        if rng.random() < 0.5:
            img = cv2.addWeighted(img, 0.6, np.full_like(img, np.asarray(c1, np.uint8)), 0.4, 0)
    return tx.modulate(img, tx.random_noise_detail(rng, h, w, 0.6), 0.25)


@lru_cache(maxsize=1)
def _cloth_bank() -> tuple[Image, ...]:
    rng = np.random.default_rng(2024)
    return tuple(_make_cloth(rng, 128, 128) for _ in range(96))


@lru_cache(maxsize=1)
def _goods_bank() -> tuple[Image, ...]:
    rng = np.random.default_rng(2025)
    return tuple(_make_goods(rng, 96, 128) for _ in range(64))


_PERMS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def _from_bank(rng: Rng, bank: tuple[Image, ...], h: int, w: int) -> Image:
    src = bank[int(rng.integers(len(bank)))]
    sh, sw = src.shape[:2]
    ch = int(rng.integers(max(8, sh // 3), sh + 1))
    cw = int(rng.integers(max(8, sw // 3), sw + 1))
    y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    img = cv2.resize(src[y : y + ch, x : x + cw], (max(1, w), max(1, h)), interpolation=cv2.INTER_LINEAR)
    perm = _PERMS[int(rng.integers(len(_PERMS)))]
    if perm != (0, 1, 2):
        img = np.ascontiguousarray(img[:, :, list(perm)])
    return cv2.convertScaleAbs(img, alpha=float(rng.uniform(0.7, 1.2)), beta=float(rng.uniform(-15, 15)))


def cloth_texture(rng: Rng, h: int, w: int, folds: bool = True) -> Image:
    """Cloth: plain, striped, plaid or printed, with wrinkles and fold shading."""
    img = _from_bank(rng, _cloth_bank(), h, w)
    if folds:
        xs = np.arange(w, dtype=np.float32)
        shade = np.ones(w, np.float32)
        for _ in range(int(rng.integers(1, 4))):
            shade += 0.12 * np.sin(xs / max(w, 1) * math.pi * rng.uniform(2, 8) + rng.uniform(0, 6))
        img = np.clip(img.astype(np.float32) * shade[None, :, None], 0, 255).astype(np.uint8)
    return img


def _make_goods(rng: Rng, h: int, w: int) -> Image:
    if rng.random() < 0.4:
        return tx.random_photo_patch(rng, h, w)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.asarray(dull(rng), np.uint8)
    n = int(rng.integers(10, 60))
    for _ in range(n):
        c = bright(rng) if rng.random() < 0.7 else dull(rng)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(3, max(4, min(h, w) // 3)))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), s // 2 + 1, c, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + s, y + int(s * rng.uniform(0.5, 1.5))), c, -1)
    return tx.modulate(img, tx.random_noise_detail(rng, h, w, 0.5), 0.2)


def goods_texture(rng: Rng, h: int, w: int) -> Image:
    """Goods seen from afar: packed colourful items, product photos, produce."""
    return _from_bank(rng, _goods_bank(), h, w)


def sign_texture(rng: Rng, h: int, w: int, bg: Colour | None = None, fg: Colour | None = None) -> Image:
    """A shop or street sign: a plain board with glyph-like strokes (CJK-ish blocks or Latin text)."""
    bg = bg or bright(rng)
    fg = fg or ((255, 255, 255) if sum(bg) < 420 else (20, 20, 30))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.asarray(bg, np.uint8)
    n = int(rng.integers(2, 7))
    gh = max(3, int(h * rng.uniform(0.45, 0.75)))
    gw = gh
    total = n * gw * 1.2
    x = int(max(1, (w - total) / 2))
    y = (h - gh) // 2
    for _ in range(n):
        if x + gw >= w:
            break
        for _ in range(int(rng.integers(3, 7))):
            if rng.random() < 0.5:
                yy = y + int(rng.integers(0, gh))
                cv2.line(img, (x, yy), (x + gw, yy), fg, max(1, gh // 8))
            else:
                xx = x + int(rng.integers(0, gw))
                cv2.line(img, (xx, y), (xx, y + gh), fg, max(1, gh // 8))
        x += int(gw * 1.2)
    if rng.random() < 0.3:
        cv2.rectangle(img, (1, 1), (w - 2, h - 2), fg, max(1, h // 12))
    return img


# --- people, the commonest distractor -----------------------------------------------------------------
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


def umbrella_canopy(
    rng: Rng,
    apex: F64,
    radius: float,
    drop: float,
    colour: Colour,
    ribs: int = 8,
    alt: Colour | None = None,
    tilt: F64 | None = None,
) -> list[Part]:
    """A cone of triangular panels (umbrella or parasol), optionally with alternating colours."""
    parts = []
    ang0 = rng.uniform(0, 2 * math.pi)
    rim = []
    for k in range(ribs):
        a = ang0 + 2 * math.pi * k / ribs
        p = apex + np.array([radius * math.cos(a), radius * math.sin(a), -drop])
        if tilt is not None:
            p = p + tilt * (p[2] - apex[2])
        rim.append(p)
    for k in range(ribs):
        c = alt if (alt is not None and k % 2) else colour
        parts.append(poly([apex, rim[k], rim[(k + 1) % ribs]], c))
    return parts


# --- stalls -------------------------------------------------------------------------------------------
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


def _wheel(fr: Frame, u: float, v: float, r: float, colour: Colour = (25, 25, 25), n: int = 10) -> Part:
    pts = [(u + r * math.cos(2 * math.pi * k / n), v, r + r * math.sin(2 * math.pi * k / n)) for k in range(n)]
    return fr.quad(pts, colour)


def vendor_cart(rng: Rng, fr: Frame) -> Obj:
    length, depth, h = rng.uniform(1.1, 1.9), rng.uniform(0.6, 0.9), rng.uniform(0.75, 0.95)
    body_c = (220, 220, 225) if rng.random() < 0.4 else (bright(rng) if rng.random() < 0.6 else (170, 170, 175))
    wr = rng.uniform(0.15, 0.3)
    parts: list[Part] = []
    for su in (-0.35, 0.35):
        parts.append(_wheel(fr, su * length, -depth / 2 - 0.01, wr))
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
    parts.append(_wheel(fr, cargo_l / 2 + 0.9, -0.02, wr))
    parts.append(_wheel(fr, 0.0, -cargo_d / 2 - 0.02, wr))
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


# --- laundry ------------------------------------------------------------------------------------------
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


def sagging_line(p0: F64, p1: F64, sag: float, colour: Colour = (60, 60, 60), width: float = 0.012, n: int = 8) -> Part:
    ts = np.linspace(0, 1, n + 1)
    pts = p0[None, :] + ts[:, None] * (p1 - p0)[None, :] - np.outer(sag * 4 * ts * (1 - ts), [0, 0, 1])
    return line(pts, width, colour)


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


# --- structures ---------------------------------------------------------------------------------------
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


# --- distractors --------------------------------------------------------------------------------------
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
            parts.append(_wheel(fr, uu, vv, 0.32, (20, 20, 20)))
    return Obj(NONE, parts, fr.p(0, 0, 0.8), kind="car")


def scooter(rng: Rng, fr: Frame, bicycle: bool = False) -> Obj:
    col = bright(rng) if rng.random() < 0.6 else (rng.uniform(20, 230),) * 3
    parts: list[Part] = []
    wr = 0.33 if bicycle else 0.22
    parts.append(_wheel(fr, -0.6, 0, wr, (25, 25, 25), 12))
    parts.append(_wheel(fr, 0.6, 0, wr, (25, 25, 25), 12))
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
