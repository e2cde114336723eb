"""The ground plane: surface materials and the chunked road/pavement texture with markings, joints,
manholes, puddles, cast shadows and street-light pools."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detector.training import textures as tx
from detector.training.geometry import F64, Image
from detector.training.objects.common import Rng, dull, hsv
from detector.training.scenes.layout import Layout
from detector.training.scenes.light import Look


@dataclass
class Materials:
    asphalt: tuple[float, float, float]
    walk: tuple[float, float, float]
    walk_tile: float
    walk_pattern: str
    kerb: tuple[float, float, float]
    lot: tuple[float, float, float]
    marking: tuple[float, float, float]
    centre_yellow: bool
    wet: bool


def make_materials(rng: Rng, look: Look) -> Materials:
    g = rng.uniform(55, 110)
    walk_c = dull(rng) if rng.random() < 0.4 else (rng.uniform(120, 190),) * 3
    if rng.random() < 0.3:
        walk_c = hsv(rng.uniform(0.0, 0.08), rng.uniform(0.25, 0.5), rng.uniform(0.45, 0.7))
    return Materials(
        asphalt=(g, g, g * rng.uniform(0.95, 1.05)),
        walk=walk_c,  # type: ignore[arg-type]
        walk_tile=float(rng.choice([0.3, 0.4, 0.5, 0.6, 0.8])),
        walk_pattern=str(rng.choice(["grid", "brick", "plain"])),
        kerb=(rng.uniform(150, 200),) * 3,  # type: ignore[arg-type]
        lot=hsv(rng.uniform(0.06, 0.12), rng.uniform(0.1, 0.35), rng.uniform(0.35, 0.6)),
        marking=(235, 235, 235),
        centre_yellow=rng.random() < 0.6,
        wet=look.rain,
    )


def _world_to_tex(x: float, y: float, x0: float, y0: float, ppm: float) -> tuple[int, int]:
    return round((x - x0) * ppm * 16), round((y - y0) * ppm * 16)


class Ground:
    """Draws the ground plane in chunks along the street, each textured at a resolution fit to its distance."""

    def __init__(self, rng: Rng, lay: Layout, mat: Materials, look: Look) -> None:
        self.lay, self.mat, self.look = lay, mat, look
        self.seed = int(rng.integers(2**31))
        self.y0 = lay.y_near - 25.0
        self.y1 = lay.y_far + 35.0
        # Road furniture in world coordinates, shared by all chunks.
        self.dash = float(rng.uniform(2, 6))
        self.lanes = 1 if lay.road_w < 7 else (2 if lay.road_w < 13 else 3)
        self.crosswalk = float(rng.uniform(5, 60)) if (not lay.lane and rng.random() < 0.35) else None
        self.manholes = [
            (float(rng.uniform(lay.x_min, lay.x_max)), float(rng.uniform(-lay.road_w / 2, lay.road_w / 2)))
            for _ in range(int(rng.integers(0, 12)))
        ]
        self.tactile = rng.random() < 0.5 and not lay.lane
        self.shadows: list[F64] = []  # ground polygons (world xy) in shade
        self.pools: list[tuple[float, float, float]] = []  # lamp light pools: x, y, radius
        self.puddles = (
            [
                (float(rng.uniform(0, 80)), float(rng.uniform(lay.y_near, lay.y_far)), float(rng.uniform(0.5, 2.5)))
                for _ in range(int(rng.integers(0, 10)))
            ]
            if look.rain
            else []
        )

    def chunk_texture(self, rng: Rng, x0: float, x1: float, ppm: float) -> Image:
        lay, mat = self.lay, self.mat
        w = max(4, int((x1 - x0) * ppm))
        h = max(4, int((self.y1 - self.y0) * ppm))
        y0 = self.y0

        def ty(y: float) -> int:
            return round((y - y0) * ppm)

        img = np.empty((h, w, 3), np.uint8)
        base_detail = tx.random_grey_detail(rng, h, w, ("gravel.png",), scale=max(ppm / 40.0, 0.05))
        noise = tx.random_noise_detail(rng, h, w, 0.8)
        road_a, road_b = ty(-lay.road_w / 2), ty(lay.road_w / 2)
        img[:] = np.asarray(mat.lot, np.uint8)
        img[road_a:road_b] = np.asarray(mat.asphalt, np.uint8)
        kerb_w = 0.0 if lay.lane else 0.25
        walk_f0, walk_f1 = ty(lay.road_w / 2 + kerb_w), ty(lay.y_far)
        walk_n0, walk_n1 = ty(lay.y_near), ty(-lay.road_w / 2 - kerb_w)
        walk_c = np.asarray(mat.walk, np.uint8)
        img[walk_f0:walk_f1] = walk_c
        img[walk_n0:walk_n1] = walk_c
        if kerb_w:
            img[ty(lay.road_w / 2) : walk_f0] = np.asarray(mat.kerb, np.uint8)
            img[walk_n1 : ty(-lay.road_w / 2)] = np.asarray(mat.kerb, np.uint8)
        img = tx.modulate(img, base_detail, 0.35)
        img = tx.modulate(img, noise, 0.25)
        # Pavement joints.
        step = mat.walk_tile * ppm
        if mat.walk_pattern != "plain" and step >= 3:
            jc = tuple(float(c) * 0.7 for c in mat.walk)
            for a, b in ((walk_f0, walk_f1), (walk_n0, walk_n1)):
                if b - a < 2:
                    continue
                sub = img[a:b]
                k0 = math.ceil(x0 / mat.walk_tile)
                for k in range(k0, int(x1 / mat.walk_tile) + 1):
                    xx = round((k * mat.walk_tile - x0) * ppm)
                    cv2.line(sub, (xx, 0), (xx, b - a), jc, 1)
                nrows = int((b - a) / step) + 1
                for r in range(nrows):
                    yrow = int(r * step)
                    cv2.line(sub, (0, yrow), (w, yrow), jc, 1)
            if self.tactile:
                tc = (40, 190, 230)
                for a, b in ((walk_f0, walk_f1), (walk_n0, walk_n1)):
                    mid = (a + b) // 2
                    cv2.rectangle(img, (0, mid), (w, mid + max(1, int(0.3 * ppm))), tc, -1)
        # Road markings.
        if not lay.lane:
            mk = mat.marking
            lw = max(1, round(0.15 * ppm))
            for yy in (-lay.road_w / 2 + 0.4, lay.road_w / 2 - 0.4):
                cv2.line(img, (0, ty(yy)), (w, ty(yy)), mk, lw)
            if mat.centre_yellow and self.lanes > 1:
                yc = (40, 190, 230)
                cv2.line(img, (0, ty(-0.12)), (w, ty(-0.12)), yc, lw)
                cv2.line(img, (0, ty(0.12)), (w, ty(0.12)), yc, lw)
            for ln in range(1, self.lanes if not mat.centre_yellow else 1):
                yy = -lay.road_w / 2 + ln * lay.road_w / self.lanes
                k0 = math.floor(x0 / (self.dash * 2))
                for k in range(k0, int(x1 / (self.dash * 2)) + 2):
                    xa = int((k * self.dash * 2 - x0) * ppm)
                    cv2.line(img, (xa, ty(yy)), (xa + int(self.dash * ppm), ty(yy)), mk, lw)
            if mat.centre_yellow and self.lanes > 1:
                for side in (-1, 1):
                    for ln in range(1, self.lanes):
                        yy = side * ln * lay.road_w / 2 / self.lanes
                        k0 = math.floor(x0 / (self.dash * 2))
                        for k in range(k0, int(x1 / (self.dash * 2)) + 2):
                            xa = int((k * self.dash * 2 - x0) * ppm)
                            cv2.line(img, (xa, ty(yy)), (xa + int(self.dash * ppm), ty(yy)), mk, lw)
            if self.crosswalk is not None and x0 - 5 < self.crosswalk < x1 + 5:
                xa = int((self.crosswalk - x0) * ppm)
                bw = max(1, int(0.45 * ppm))
                for k in range(int(lay.road_w / 0.9)):
                    yy = ty(-lay.road_w / 2 + 0.3 + k * 0.9)
                    cv2.rectangle(img, (xa, yy), (xa + int(4 * ppm), yy + bw), mk, -1)
        for mx, my in self.manholes:
            if x0 - 1 < mx < x1 + 1:
                cv2.circle(img, (int((mx - x0) * ppm), ty(my)), max(1, int(0.35 * ppm)), (45, 45, 50), -1)
        # Dirt and wear on top of the markings.
        img = tx.modulate(img, tx.random_noise_detail(rng, h, w, 0.6), 0.2)
        if self.look.rain:
            img = (img.astype(np.float32) * 0.7).astype(np.uint8)
            for px, py, pr in self.puddles:
                if x0 - pr < px < x1 + pr:
                    cv2.ellipse(
                        img,
                        (int((px - x0) * ppm), ty(py)),
                        (max(1, int(pr * ppm)), max(1, int(pr * 0.5 * ppm))),
                        0,
                        0,
                        360,
                        tuple(c * 0.8 for c in self.look.sky_horizon),
                        -1,
                        cv2.LINE_AA,
                    )
        # Shadows and light pools.
        if self.shadows and self.look.sun > 0.05:
            mask: npt.NDArray[Any] = np.zeros((h, w), np.uint8)
            for poly_xy in self.shadows:
                if poly_xy[:, 0].max() < x0 or poly_xy[:, 0].min() > x1:
                    continue
                pts = np.round((poly_xy - [x0, y0]) * ppm * 16).astype(np.int32)
                cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, 4)
            k = max(1, int(0.2 * ppm)) | 1
            mask = cv2.GaussianBlur(mask, (k, k), 0)
            amb = self.look.ambient
            shade = amb / (amb + self.look.sun)
            f = 1.0 - (1.0 - shade) * mask.astype(np.float32) / 255.0
            img = (img.astype(np.float32) * f[..., None]).astype(np.uint8)
        return img

    def light_map(
        self,
        x0: float,
        x1: float,
        h: int,
        w: int,
        look: Look,
        lamps: list[tuple[F64, tuple[float, float, float], float]],
    ) -> np.ndarray:
        """Per-texel light multiplier for the ground (sun/ambient plus lamp pools at night)."""
        base = look.ambient + look.sun * max(look.sun_dir[2], 0.0)
        gh, gw = max(2, h // 8), max(2, w // 8)
        xs = np.linspace(x0, x1, gw)
        ys = np.linspace(self.y0, self.y1, gh)
        X, Y = np.meshgrid(xs, ys)
        lm = np.ones((gh, gw, 3), np.float32) * base
        for pos, col, power in lamps:
            d2 = (X - pos[0]) ** 2 + (Y - pos[1]) ** 2 + pos[2] ** 2
            lm += (np.asarray(col, np.float32)[None, None, :] * power * (1.0 / (1.0 + d2 / 16.0))[..., None]).astype(
                np.float32
            )
        return cv2.resize(lm, (w, h), interpolation=cv2.INTER_LINEAR)
