"""Shared pieces of the object builders: the local frame, class ids, colours, cloth/goods/sign textures,
and primitives several families draw (umbrella canopies, wheels, sagging lines)."""

from __future__ import annotations

import colorsys
import math
from functools import lru_cache

import cv2
import numpy as np

from detector.training import textures as tx
from detector.training.geometry import F64, Image, Part, Pts, Vec, box, line, poly, textured

STALL, LAUNDRY, STRUCTURE, NONE = 0, 1, 2, -1
Colour = tuple[float, float, float]
Rng = np.random.Generator


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


def wheel(fr: Frame, u: float, v: float, r: float, colour: Colour = (25, 25, 25), n: int = 10) -> Part:
    pts = [(u + r * math.cos(2 * math.pi * k / n), v, r + r * math.sin(2 * math.pi * k / n)) for k in range(n)]
    return fr.quad(pts, colour)


def sagging_line(p0: F64, p1: F64, sag: float, colour: Colour = (60, 60, 60), width: float = 0.012, n: int = 8) -> Part:
    ts = np.linspace(0, 1, n + 1)
    pts = p0[None, :] + ts[:, None] * (p1 - p0)[None, :] - np.outer(sag * 4 * ts * (1 - ts), [0, 0, 1])
    return line(pts, width, colour)
