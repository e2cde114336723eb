"""Street layout: road, pavements and kerbs, and the rows of building blocks (with open lots between them)
along both sides of the street and behind it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from detector.training.geometry import F64
from detector.training.objects.common import Frame, Rng


@dataclass
class Block:
    """A building block on one side of the street; its facade faces the street."""

    side: int  # +1: far side (facade at y = y_face, faces -y); -1: near side (faces +y)
    x0: float
    x1: float
    height: float
    depth: float
    y_face: float
    ground_floor: float
    floor_h: float
    shop: bool
    windows: list[tuple[float, float, float, float]] = field(default_factory=list)  # s, z_sill, w, h
    balconies: list[tuple[float, float, float]] = field(default_factory=list)  # s, z_floor, w
    shops: list[tuple[float, float]] = field(default_factory=list)  # s0, s1
    back: bool = False

    def facade_point(self, s: float, z: float, out: float = 0.0) -> F64:
        """World point on (or ``out`` metres in front of) the facade at (s along, z up)."""
        return np.array([self.x0 + s, self.y_face - self.side * out, z])

    def frame(self, s: float, out: float = 0.0, z: float = 0.0) -> Frame:
        """Frame on the facade whose -v axis points into the street."""
        return Frame(self.facade_point(s, z, out), 0.0 if self.side > 0 else math.pi)


@dataclass
class Layout:
    road_w: float
    walk_far: float
    walk_near: float
    kerb_h: float
    lane: bool  # a narrow lane without kerbs or markings
    blocks: list[Block]
    x_min: float
    x_max: float
    gaps: list[tuple[int, float, float, float]]  # side, x0, x1, depth of open lots between blocks

    @property
    def y_far(self) -> float:
        return self.road_w / 2 + self.walk_far

    @property
    def y_near(self) -> float:
        return -(self.road_w / 2 + self.walk_near)


def make_blocks(
    rng: Rng, side: int, y_face: float, x_min: float, x_max: float, lane: bool, tall: float
) -> tuple[list[Block], list[tuple[int, float, float, float]]]:
    blocks: list[Block] = []
    gaps: list[tuple[int, float, float, float]] = []
    x = x_min
    floors_hi = 4 if lane else 8
    shop_street = rng.random() < 0.75
    while x < x_max:
        if rng.random() < 0.12 and x > x_min + 5:
            gw = rng.uniform(3.0, 14.0)
            gaps.append((side, x, x + gw, rng.uniform(8, 20)))
            x += gw
            continue
        w = rng.uniform(6.0, 24.0)
        floors = int(rng.integers(1, floors_hi + 1))
        if rng.random() < tall:
            floors = int(rng.integers(8, 20))
        gf = rng.uniform(3.4, 4.8) if shop_street else rng.uniform(2.8, 3.3)
        fh = rng.uniform(2.8, 3.3)
        height = gf + (floors - 1) * fh + rng.uniform(0.2, 1.2)
        blocks.append(
            Block(side, x, x + w, height, rng.uniform(8, 16), y_face, gf, fh, shop_street and rng.random() < 0.85)
        )
        x += w + (rng.uniform(0.0, 0.4) if rng.random() < 0.3 else 0.0)
    return blocks, gaps


def make_layout(rng: Rng) -> Layout:
    lane = rng.random() < 0.18
    if lane:
        road_w, walk_far, walk_near, kerb = rng.uniform(2.5, 5.5), rng.uniform(0.0, 1.2), rng.uniform(0.0, 1.2), 0.0
    else:
        road_w = rng.choice([rng.uniform(5.5, 8.0), rng.uniform(8.0, 16.0), rng.uniform(16.0, 24.0)])
        walk_far, walk_near = rng.uniform(2.5, 8.0), rng.uniform(2.0, 7.0)
        kerb = rng.uniform(0.1, 0.2)
    x_min, x_max = -70.0, float(rng.uniform(140, 260))
    lay = Layout(float(road_w), float(walk_far), float(walk_near), float(kerb), lane, [], x_min, x_max, [])
    tall = 0.0 if lane else rng.uniform(0.0, 0.25)
    far, gaps_f = make_blocks(rng, +1, lay.y_far, x_min, x_max, lane, tall)
    near, gaps_n = make_blocks(rng, -1, lay.y_near, x_min, x_max, lane, tall)
    lay.blocks = far + near
    lay.gaps = gaps_f + gaps_n
    # A back row seen through the gaps and over low buildings.
    back_y = lay.y_far + rng.uniform(16, 30)
    back, _ = make_blocks(rng, +1, back_y, x_min, x_max, False, 0.3)
    for b in back:
        b.back = True
        b.shop = False
        b.height += rng.uniform(0, 12)
    lay.blocks += back
    return lay
