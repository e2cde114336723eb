"""Procedural CCTV street scenes for training streetwatch's default model (DESIGN §4).

``render_scene(seed, width, height)`` draws one elevated camera view of a street: a ground plane in
perspective (road, kerbs, pavements, lots), rows of building facades with windows, balconies and shop
fronts, roofs, trees and street furniture, and then places the three object classes where they occur
in real streets (structured domain randomisation, Prakash et al. 2019):

* ``stall`` (0): awning and umbrella stalls, vendor and tricycle carts, ground-mat stalls on pavements
  and kerbs, racks, crates and produce displays at shop doors;
* ``laundry`` (1): clothes and sheets on lines between poles, trees and buildings, on poles pushed out
  of windows, over balcony rails and on drying racks;
* ``structure`` (2): steel-roof sheds and shacks against walls, in lots and on roofs, lean-to canopies
  on posts, hoardings and scaffold frames.

Around that structure everything real cameras vary is randomised: viewpoint, lens, light (day, dusk,
night with street lights, rain, haze), shadows, colour balance, textures (real photographs from
scikit-image plus fractal noise), clutter and occlusion by look-alike distractors that are never
labelled (people with umbrellas and bags, cars, vans and box trucks, scooters, bicycles, benches, bus
shelters, signs, banners, pennants, cones, flush shop awnings, clothes behind shop windows, curtains),
blur, sensor noise, compression and on-screen timestamps.

Labels come from an object-id buffer drawn alongside the image, so boxes are tight around the visible
pixels; an object less than ``MIN_VISIBLE`` visible (occluded or cut by the frame), smaller than
``MIN_SIDE_640`` pixels (at a 640-pixel long side), or seen as a sliver (aspect over ``MAX_ASPECT``,
or filling under ``MIN_FILL`` of its box) is drawn but left unlabelled.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detector.training import objects as ob
from detector.training import textures as tx
from detector.training.geometry import F64, Camera, Image, Obj, Painter, Part, line, textured
from detector.training.objects import Frame, Rng

CLASS_NAMES = ("stall", "laundry", "structure")
MIN_VISIBLE = 0.35
MIN_SIDE_640 = 10.0
MAX_ASPECT = 10.0
MIN_FILL = 0.08
Label = tuple[int, float, float, float, float]


# --- layout -------------------------------------------------------------------------------------------
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


def _make_blocks(
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
    far, gaps_f = _make_blocks(rng, +1, lay.y_far, x_min, x_max, lane, tall)
    near, gaps_n = _make_blocks(rng, -1, lay.y_near, x_min, x_max, lane, tall)
    lay.blocks = far + near
    lay.gaps = gaps_f + gaps_n
    # A back row seen through the gaps and over low buildings.
    back_y = lay.y_far + rng.uniform(16, 30)
    back, _ = _make_blocks(rng, +1, back_y, x_min, x_max, False, 0.3)
    for b in back:
        b.back = True
        b.shop = False
        b.height += rng.uniform(0, 12)
    lay.blocks += back
    return lay


# --- lighting and weather -----------------------------------------------------------------------------
@dataclass
class Look:
    time: str  # day | overcast | dusk | night
    rain: bool
    haze: float
    sun_dir: F64
    sun: float
    ambient: float
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    haze_colour: tuple[float, float, float]
    tint: tuple[float, float, float]
    ir: bool

    @property
    def night(self) -> bool:
        return self.time == "night"


def make_look(rng: Rng) -> Look:
    r = rng.random()
    time = "day" if r < 0.45 else ("overcast" if r < 0.65 else ("dusk" if r < 0.78 else "night"))
    rain = rng.random() < (0.18 if time != "day" else 0.05)
    az = rng.uniform(0, 2 * math.pi)
    el = rng.uniform(math.radians(20), math.radians(70)) if time == "day" else rng.uniform(0.05, 0.35)
    sun_dir = np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])
    top: tuple[float, float, float]
    hor: tuple[float, float, float]
    if time == "day":
        sun, ambient = rng.uniform(0.5, 0.75), rng.uniform(0.45, 0.6)
        top, hor = (rng.uniform(200, 240), rng.uniform(150, 190), rng.uniform(90, 130)), (235, 225, 215)
        tint = (1.0, 1.0, 1.0)
    elif time == "overcast":
        sun, ambient = rng.uniform(0.05, 0.2), rng.uniform(0.75, 0.95)
        g = rng.uniform(170, 225)
        top, hor = (g, g, g * 0.97), (g + 15, g + 15, g + 12)
        tint = (1.0, 1.0, 1.0)
    elif time == "dusk":
        sun, ambient = rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.45)
        top, hor = (rng.uniform(120, 170), rng.uniform(80, 110), rng.uniform(60, 90)), (120, 160, 230)
        tint = (0.85, 0.95, 1.12)
    else:
        sun, ambient = 0.0, rng.uniform(0.16, 0.3)
        top, hor = (40, 25, 15), (70, 60, 55)
        tint = (0.9, 1.0, 1.1) if rng.random() < 0.5 else (1.1, 1.0, 0.9)
    if rain:
        sun *= 0.2
        ambient *= 0.85
        g = rng.uniform(120, 180) if time != "night" else 50
        top, hor = (g, g, g), (g + 15, g + 15, g + 15)
    haze = rng.choice([0.0, rng.uniform(0.002, 0.01), rng.uniform(0.01, 0.04)], p=[0.45, 0.4, 0.15])
    if rain:
        haze = max(haze, rng.uniform(0.008, 0.03))
    hc = np.asarray(hor, np.float64) * (0.9 if time != "night" else 0.6)
    ir = time == "night" and rng.random() < 0.35
    return Look(
        time,
        bool(rain),
        float(haze),
        sun_dir,
        float(sun),
        float(ambient),
        top,
        hor,
        (float(hc[0]), float(hc[1]), float(hc[2])),
        tint,
        ir,
    )


# --- camera -------------------------------------------------------------------------------------------
def make_camera(rng: Rng, lay: Layout, width: int, height: int) -> Camera:
    """An elevated CCTV view: pole or wall mount, looking along, across or down onto the street."""
    view = rng.choice(["along", "across", "diag", "high", "close", "up"], p=[0.2, 0.2, 0.18, 0.12, 0.18, 0.12])
    if lay.lane:
        view = rng.choice(["along", "diag", "up"])
    y_cam = rng.uniform(lay.y_near + 0.8, max(lay.y_near + 1.0, min(lay.y_near + lay.walk_near, -lay.road_w / 4)))
    if view == "close":  # a phone or low camera a few metres from the far pavement: objects fill the frame
        y_cam = rng.uniform(-lay.road_w / 2, min(lay.road_w / 2, lay.y_far - 6.0))
        z_cam = rng.uniform(1.6, 5.0)
    elif view == "up":  # from the pavement looking up at balconies and windows
        y_cam = rng.uniform(lay.y_near + 0.5, min(lay.y_near + max(lay.walk_near, 0.6), 0.0))
        z_cam = rng.uniform(1.5, 4.0)
    elif view == "high":
        z_cam = rng.uniform(14, 35)
    elif lay.lane:
        z_cam = rng.uniform(3.0, 9.0)
    else:
        z_cam = rng.uniform(3.5, 14.0)
    x_cam = rng.uniform(-5, 5)
    if view == "along":
        target = np.array([x_cam + rng.uniform(18, 60), rng.uniform(lay.y_near, lay.y_far), rng.uniform(0, 4)])
    elif view == "across":
        target = np.array([x_cam + rng.uniform(-4, 8), lay.y_far - rng.uniform(0, 3), rng.uniform(0, 6)])
    elif view == "diag":
        target = np.array([x_cam + rng.uniform(8, 25), lay.y_far - rng.uniform(0, 4), rng.uniform(0, 5)])
    elif view == "close":
        target = np.array([x_cam + rng.uniform(-3, 6), lay.y_far - rng.uniform(0.5, 3.5), rng.uniform(0.3, 2.5)])
    elif view == "up":
        target = np.array([x_cam + rng.uniform(-2, 14), lay.y_far, rng.uniform(4, 14)])
    else:
        target = np.array([x_cam + rng.uniform(10, 40), lay.y_far + rng.uniform(-4, 10), 0.0])
    d = target - np.array([x_cam, y_cam, z_cam])
    yaw = math.atan2(d[1], d[0]) + rng.normal(0, 0.05)
    pitch = math.atan2(-d[2], math.hypot(d[0], d[1])) + rng.normal(0, 0.04)
    pitch = float(np.clip(pitch, math.radians(-35 if view == "up" else 4), math.radians(70)))
    hfov = {"high": rng.uniform(40, 75), "close": rng.uniform(35, 65), "up": rng.uniform(40, 75)}.get(
        str(view), rng.uniform(45, 95)
    )
    roll = rng.normal(0, 0.015)
    return Camera((x_cam, y_cam, z_cam), yaw, pitch, roll, hfov, width, height)


# --- textures for the static background ---------------------------------------------------------------
def _ppm_for(cam: Camera, nearest: float, cap: float = 40.0) -> float:
    return float(np.clip(cam.f / max(nearest, 1.0) * 0.9, 1.0, cap))


def _dist_to_box(cam: Camera, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> float:
    p = cam.pos
    dx = max(x0 - p[0], 0.0, p[0] - x1)
    dy = max(y0 - p[1], 0.0, p[1] - y1)
    dz = max(z0 - p[2], 0.0, p[2] - z1)
    return math.sqrt(dx * dx + dy * dy + dz * dz)


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
    walk_c = ob.dull(rng) if rng.random() < 0.4 else (rng.uniform(120, 190),) * 3
    if rng.random() < 0.3:
        walk_c = ob.hsv(rng.uniform(0.0, 0.08), rng.uniform(0.25, 0.5), rng.uniform(0.45, 0.7))
    return Materials(
        asphalt=(g, g, g * rng.uniform(0.95, 1.05)),
        walk=walk_c,  # type: ignore[arg-type]
        walk_tile=float(rng.choice([0.3, 0.4, 0.5, 0.6, 0.8])),
        walk_pattern=str(rng.choice(["grid", "brick", "plain"])),
        kerb=(rng.uniform(150, 200),) * 3,  # type: ignore[arg-type]
        lot=ob.hsv(rng.uniform(0.06, 0.12), rng.uniform(0.1, 0.35), rng.uniform(0.35, 0.6)),
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


def _facade_texture(rng: Rng, b: Block, ppm: float, look: Look, lit_frac: float) -> Image:
    """Facade image (top row = roof line): wall material, windows with curtains, shop fronts and signs."""
    W, H = b.x1 - b.x0, b.height
    w, h = max(4, round(W * ppm)), max(4, round(H * ppm))
    r = rng.random()
    if r < 0.3:  # ceramic tiles, the commonest Chinese facade
        c = ob.hsv(rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.2), rng.uniform(0.7, 0.95))
        img = tx.solid(h, w, c)
        step = rng.uniform(0.1, 0.3) * ppm
        if step >= 3:
            jc = tuple(x * 0.85 for x in c)
            for k in range(int(w / step) + 1):
                cv2.line(img, (int(k * step), 0), (int(k * step), h), jc, 1)
            for k in range(int(h / step) + 1):
                cv2.line(img, (0, int(k * step)), (w, int(k * step)), jc, 1)
    elif r < 0.55:  # brick
        c = (
            ob.hsv(rng.uniform(0.0, 0.07), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.7))
            if rng.random() < 0.7
            else (rng.uniform(110, 170),) * 3
        )
        detail = tx.random_grey_detail(rng, h, w, ("brick.png",), scale=max(ppm / 130.0, 0.03))
        img = tx.tint(detail, c, 0.9)  # type: ignore[arg-type]
    elif r < 0.85:  # paint / plaster
        c = ob.hsv(rng.random(), rng.uniform(0.05, 0.45), rng.uniform(0.5, 0.9))
        img = tx.solid(h, w, c)
    else:  # bare concrete
        g = rng.uniform(100, 170)
        img = tx.tint(tx.random_grey_detail(rng, h, w, ("moon.png", "gravel.png"), scale=0.5), (g, g, g), 0.5)
    img = tx.modulate(img, tx.random_noise_detail(rng, h, w, 0.8), rng.uniform(0.1, 0.3))
    # Grime streaks running down.
    if rng.random() < 0.6:
        streak = tx.random_noise_detail(rng, 8, w, 1.0)
        streak = cv2.resize(streak, (w, h), interpolation=cv2.INTER_LINEAR)
        img = tx.modulate(img, streak, rng.uniform(0.1, 0.3))

    def S(s: float) -> int:
        return min(max(round(s * ppm), 0), w)

    def Z(z: float) -> int:
        return min(max(round((H - z) * ppm), 0), h)

    # Upper floors: a grid of windows in bays, drawn with whole-array operations (one per facade, not
    # per window) because a street view holds hundreds of windows.
    bay = rng.uniform(2.8, 4.5)
    nbays = max(1, int(W / bay))
    bay = W / nbays
    win_w = rng.uniform(0.35, 0.7) * bay
    win_h = rng.uniform(1.2, 1.9)
    sill = rng.uniform(0.8, 1.0)
    frame_c = np.asarray(
        (235, 235, 235) if rng.random() < 0.5 else ((60, 60, 60) if rng.random() < 0.5 else (150, 150, 150)), np.float32
    )
    frame_t = (float(frame_c[0]), float(frame_c[1]), float(frame_c[2]))
    glass_day = np.asarray(look.sky_horizon, np.float32) * rng.uniform(0.35, 0.75)
    curtain_p = rng.uniform(0.1, 0.6)
    floors = max(0, int((H - b.ground_floor - 0.5) / b.floor_h))
    top_ok = floors and b.ground_floor + floors * b.floor_h <= H + 0.01
    if top_ok and sill + win_h < b.floor_h - 0.2:
        nf, nb = floors, nbays
        # The window grid is built per cell with broadcasting at <= 10 texels/m, then scaled into place:
        # a street view holds hundreds of windows, and a loop per window is far too slow.
        wp = min(ppm, 10.0)
        bay_px, floor_px = max(3, round(bay * wp)), max(4, round(b.floor_h * wp))
        u0 = max(0, round((bay - win_w) / 2 * wp))
        u1 = min(bay_px, max(u0 + 2, round((bay + win_w) / 2 * wp)))
        v0 = max(0, floor_px - round((sill + win_h) * wp))
        v1 = min(floor_px, max(v0 + 2, floor_px - round(sill * wp)))
        th, tw = v1 - v0, u1 - u0
        lit = (rng.random((nf, nb)) < lit_frac) if look.night else np.zeros((nf, nb), bool)
        glass = (glass_day[None, None, :] * rng.uniform(0.6, 1.2, (nf, nb, 1))).astype(np.float32)
        warm = np.array([rng.uniform(120, 200), rng.uniform(190, 235), rng.uniform(220, 255)], np.float32)
        glass = np.where(lit[..., None], warm[None, None, :] * rng.uniform(0.7, 1.0, (nf, nb, 1)), glass)
        grad = np.linspace(1.2, 0.8, th, dtype=np.float32)
        tile = glass[:, :, None, None, :] * grad[None, None, :, None, None]
        tile = np.broadcast_to(tile, (nf, nb, th, tw, 3)).copy()
        # Curtains: cloth behind the glass, one side of the pane (a laundry look-alike).
        rel = (np.arange(tw, dtype=np.float32) + 0.5) / tw
        curtain = rng.random((nf, nb)) < curtain_p
        cfrac = rng.uniform(0.3, 0.55, (nf, nb)).astype(np.float32)
        cleft = rng.random((nf, nb)) < 0.5
        incur = curtain[..., None] & np.where(
            cleft[..., None], rel[None, None, :] < cfrac[..., None], rel[None, None, :] > 1 - cfrac[..., None]
        )
        hues = rng.random(nf * nb)
        ccol = np.array([ob.hsv(hh, 0.5, 0.7) for hh in hues], np.float32).reshape(nf, nb, 3)
        ccol *= rng.uniform(0.5, 1.3, (nf, nb, 1)).astype(np.float32)
        ccol = np.where(lit[..., None], ccol * 0.5 + 100, ccol)
        fold = 0.85 + 0.15 * np.sin(np.arange(tw, dtype=np.float32) * 1.7)
        cur_img = ccol[:, :, None, :] * fold[None, None, :, None]  # (nf, nb, tw, 3)
        tile = np.where(incur[:, :, None, :, None], cur_img[:, :, None, :, :], tile)
        bars = rng.random((nf, nb)) < 0.2
        barcol = (np.arange(tw) % max(2, tw // 5)) == 0
        tile = np.where((bars[:, :, None, None] & barcol[None, None, None, :])[..., None], np.float32(110), tile)
        # Frame and mullion.
        fr_m = np.zeros((th, tw), bool)
        fr_m[0, :] = fr_m[-1, :] = True
        fr_m[:, 0] = fr_m[:, -1] = True
        fr_m[:, tw // 2] = True
        tile[:, :, fr_m] = frame_c
        layer: npt.NDArray[Any] = np.zeros((nf, floor_px, nb, bay_px, 3), np.uint8)
        layer[:, v0:v1, :, u0:u1, :] = np.clip(tile, 0, 255).astype(np.uint8).transpose(0, 2, 1, 3, 4)
        mask: npt.NDArray[Any] = np.zeros((nf, floor_px, nb, bay_px), np.uint8)
        mask[:, v0:v1, :, u0:u1] = 1
        layer = layer[::-1].reshape(nf * floor_px, nb * bay_px, 3)
        mask = mask[::-1].reshape(nf * floor_px, nb * bay_px)
        ya, yb = Z(b.ground_floor + nf * b.floor_h), Z(b.ground_floor)
        if yb - ya >= 2:
            layer = cv2.resize(layer, (w, yb - ya), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask, (w, yb - ya), interpolation=cv2.INTER_NEAREST)
            np.copyto(img[ya:yb], layer, where=mask[..., None] > 0)
        for f in range(nf):
            zf = b.ground_floor + f * b.floor_h
            for k in range(nbays):
                b.windows.append(((k + 0.5) * bay, zf + sill, win_w, win_h))
            # Balconies are 3-D; remember where they go.
            if rng.random() < 0.35:
                for k in range(nbays):
                    if rng.random() < 0.5:
                        b.balconies.append(((k + 0.5) * bay, zf, bay * rng.uniform(0.6, 0.95)))
    # Ground floor.
    gf = b.ground_floor
    if b.shop and not b.back:
        s = 0.0
        while s < W - 1.5:
            sw = min(rng.uniform(3.0, 8.0), W - s)
            b.shops.append((s, s + sw))
            x0, x1 = S(s + 0.15), S(s + sw - 0.15)
            sign_h = rng.uniform(0.7, 1.4)
            sy0, sy1 = Z(gf), Z(gf - sign_h)
            if x1 - x0 > 4 and sy1 - sy0 > 2:
                sign = ob.sign_texture(rng, sy1 - sy0, x1 - x0)
                if look.night:
                    sign = cv2.convertScaleAbs(sign, alpha=1.3, beta=30)
                img[sy0:sy1, x0:x1] = sign
            oy0, oy1 = Z(gf - sign_h), Z(0)
            if x1 - x0 > 4 and oy1 - oy0 > 2:
                kind = rng.random()
                ow, oh = x1 - x0, oy1 - oy0
                if kind < 0.25:  # roller shutter
                    img[oy0:oy1, x0:x1] = tx.corrugated(
                        oh, ow, (rng.uniform(120, 190),) * 3, max(2, int(0.08 * ppm)), vertical=False
                    )
                else:
                    pick = rng.random()
                    if pick < 0.5:  # shelves of goods
                        interior = ob.goods_texture(rng, oh, ow)
                        for k in range(1, int(rng.integers(2, 5))):
                            yy = int(oh * k / 4)
                            cv2.line(interior, (0, yy), (ow, yy), (60, 60, 60), max(1, int(0.05 * ppm)))
                    elif pick < 0.75:  # a photograph (posters, displays, the room behind)
                        interior = tx.random_photo_patch(rng, oh, ow)
                    else:  # a dim room
                        interior = tx.tint(tx.random_noise_detail(rng, oh, ow, 0.8), ob.dull(rng), 0.6)
                    interior = cv2.convertScaleAbs(
                        interior, alpha=0.45 if not look.night else 0.9, beta=10 if not look.night else 40
                    )
                    if kind > 0.75 and ow > 10:  # clothes on display behind the glass (laundry look-alike)
                        n = int(rng.integers(2, 6))
                        for k in range(n):
                            iw = max(2, ow // (n + 1))
                            ih = max(2, int(oh * rng.uniform(0.35, 0.6)))
                            ix = int((k + 0.5) * ow / n - iw / 2)
                            iy = int(oh * rng.uniform(0.1, 0.3))
                            if ix >= 0 and iy + ih <= oh and ix + iw <= ow:
                                interior[iy : iy + ih, ix : ix + iw] = ob.cloth_texture(rng, ih, iw, folds=False)
                    img[oy0:oy1, x0:x1] = interior
                    # Glass glare, door and mullions.
                    cv2.rectangle(img, (x0, oy0), (x1, oy1), frame_t, max(1, int(0.08 * ppm)))
                    dx = x0 + int(ow * rng.uniform(0.2, 0.7))
                    cv2.line(img, (dx, oy0), (dx, oy1), frame_t, max(1, int(0.06 * ppm)))
            s += sw
    else:
        # Residential ground floor: wall with a few barred windows and a gate.
        for k in range(nbays):
            if rng.random() < 0.6:
                s = (k + 0.5) * bay
                x0, x1 = S(s - win_w / 3), S(s + win_w / 3)
                y0, y1 = Z(gf - 0.6), Z(1.0)
                if x1 > x0 and y1 > y0:
                    cv2.rectangle(img, (x0, y0), (x1, y1), tuple(float(x) * 0.5 for x in glass_day), -1)
                    cv2.rectangle(img, (x0, y0), (x1, y1), frame_t, 1)
    # Cornice / roof edge.
    cv2.rectangle(
        img, (0, 0), (w, max(1, int(0.25 * ppm))), tuple(float(x) * 0.8 for x in img[min(h - 1, 2), w // 2]), -1
    )
    return img


def _roof_texture(rng: Rng, w: int, h: int) -> Image:
    g = rng.uniform(90, 170)
    c = (g, g, g * rng.uniform(0.95, 1.05)) if rng.random() < 0.7 else ob.hsv(rng.uniform(0.0, 0.1), 0.3, g / 255)
    img = tx.tint(tx.random_grey_detail(rng, h, w, ("gravel.png", "moon.png"), scale=0.5), c, 0.6)
    return tx.modulate(img, tx.random_noise_detail(rng, h, w, 0.8), 0.3)


# --- the scene ----------------------------------------------------------------------------------------
Lamp = tuple[F64, tuple[float, float, float], float]


@dataclass
class Scene:
    """A static street view: layout, camera, light, materials and the objects in it."""

    seed: int
    width: int
    height: int
    lay: Layout
    look: Look
    mat: Materials
    cam: Camera
    ground: Ground
    objects: list[Obj] = field(default_factory=list)
    lamps: list[Lamp] = field(default_factory=list)
    lit_frac: float = 0.3
    bg: Image | None = None
    ground_mask: np.ndarray | None = None

    @property
    def scale(self) -> float:
        """Pixels at this resolution per pixel at a 640-pixel long side."""
        return max(self.width, self.height) / 640.0

    def painter(self, img: Image) -> Painter:
        lk = self.look
        sky_light = (1.0 / lk.tint[0], 1.0 / lk.tint[1], 1.0 / lk.tint[2])
        return Painter(
            self.cam, img, lk.sun_dir, lk.sun, lk.ambient, lk.haze_colour, lk.haze, self.lamps, sky_light=sky_light
        )  # type: ignore[arg-type]

    # --- static background ----------------------------------------------------------------------------
    def render_background(self) -> Image:
        rng = np.random.default_rng(self.seed + 7919)
        cam, lay, look = self.cam, self.lay, self.look
        W, H = self.width, self.height
        img = self._sky(rng)
        pt = self.painter(img)
        self._backdrop(rng, pt)
        # Building shadows on the ground (sun side).
        if look.sun > 0.05:
            L = look.sun_dir
            for b in lay.blocks:
                if b.back:
                    continue
                y_back = b.y_face + b.side * b.depth
                corners = np.array(
                    [
                        [b.x0, b.y_face, b.height],
                        [b.x1, b.y_face, b.height],
                        [b.x1, y_back, b.height],
                        [b.x0, y_back, b.height],
                        [b.x0, b.y_face, 0],
                        [b.x1, b.y_face, 0],
                        [b.x1, y_back, 0],
                        [b.x0, y_back, 0],
                    ]
                )
                proj = corners[:, :2] - corners[:, 2:3] / max(L[2], 0.05) * L[None, :2]
                hull = cv2.convexHull(proj.astype(np.float32)).reshape(-1, 2).astype(np.float64)
                self.ground.shadows.append(hull)
        # Ground in chunks along the street, near chunks finer.
        gm = np.zeros((H, W), np.uint16)
        pt.ids = gm
        xs = self._ground_chunks()
        for x0, x1 in xs:
            quad = np.array(
                [[x0, self.ground.y0, 0], [x1, self.ground.y0, 0], [x1, self.ground.y1, 0], [x0, self.ground.y1, 0]]
            )
            ext = cam.screen_extent(quad)
            if ext is None:
                continue
            nearest = _dist_to_box(cam, x0, x1, self.ground.y0, self.ground.y1, 0, 0)
            ppm = _ppm_for(cam, nearest, 30.0)
            texels = max(min(ext[2], W) - max(ext[0], 0), 8) * max(min(ext[3], H) - max(ext[1], 0), 8) * 1.2
            ppm = min(ppm, math.sqrt(texels / ((x1 - x0) * (self.ground.y1 - self.ground.y0))))
            ppm = max(ppm, 1.0)
            tex = self.ground.chunk_texture(rng, x0, x1, ppm)
            if self.lamps:
                lm = self.ground.light_map(x0, x1, tex.shape[0], tex.shape[1], look, self.lamps)
                lm = lm * np.asarray([1 / t for t in look.tint], np.float32)
                tex = np.clip(tex.astype(np.float32) * lm, 0, 255).astype(np.uint8)
            else:
                base = look.ambient + look.sun * max(look.sun_dir[2], 0.0)
                tex = cv2.multiply(tex, (*[base / t for t in look.tint], 0.0))  # type: ignore[call-overload]
            tex = self._haze_plane(
                tex,
                np.array([x0, self.ground.y0, 0.0]),
                np.array([x1 - x0, 0, 0]),
                np.array([0, self.ground.y1 - self.ground.y0, 0]),
            )
            part = textured(
                (x0, self.ground.y0, 0.0),
                (x1 - x0, 0, 0),
                (0, self.ground.y1 - self.ground.y0, 0),
                tex.astype(np.uint8),
            )
            part.emissive = True  # light already applied per texel
            pt.draw_part(part, 1)
        # Kerb faces.
        if lay.kerb_h > 0:
            for side in (-1, 1):
                y = side * lay.road_w / 2
                kc = tuple(c * 0.8 for c in self.mat.kerb)
                for x0, x1 in xs:
                    pt.draw_part(
                        textured(
                            (x0, y, 0),
                            (x1 - x0, 0, 0),
                            (0, 0, lay.kerb_h),
                            np.full((2, 2, 3), np.asarray(kc, np.uint8), np.uint8),
                        ),
                        1,
                    )
        # Buildings far to near.
        order = sorted(
            lay.blocks,
            key=lambda b: (
                -_dist_to_box(
                    cam,
                    b.x0,
                    b.x1,
                    min(b.y_face, b.y_face + b.side * b.depth),
                    max(b.y_face, b.y_face + b.side * b.depth),
                    0,
                    b.height,
                )
            ),
        )
        for b in order:
            self._draw_block(rng, pt, b)
        self.ground_mask = gm == 1
        self.bg = img
        return img

    def _ground_chunks(self) -> list[tuple[float, float]]:
        cx = float(self.cam.pos[0])
        edges = sorted(
            {
                self.lay.x_min,
                self.lay.x_max,
                *[min(max(cx + d, self.lay.x_min), self.lay.x_max) for d in (-60, -25, -10, 0, 10, 25, 55, 110)],
            }
        )
        return [(a, b) for a, b in itertools.pairwise(edges) if b - a > 0.5]

    def _haze_plane(self, tex: np.ndarray, o: F64, a: F64, b: F64) -> np.ndarray:
        """Blend a plane's texture towards the haze colour by each texel's distance (uint8 in, uint8 out)."""
        tex = np.clip(tex, 0, 255).astype(np.uint8) if tex.dtype != np.uint8 else tex
        if self.look.haze <= 0:
            return tex
        gh, gw = 8, 8
        s = np.linspace(0, 1, gw)
        t = np.linspace(0, 1, gh)
        S, T = np.meshgrid(s, t)
        P = o[None, None, :] + S[..., None] * a[None, None, :] + T[..., None] * b[None, None, :]
        d = np.linalg.norm(P - self.cam.pos[None, None, :], axis=2)
        hz = (1 - np.exp(-d * self.look.haze)).astype(np.float32)
        hz = cv2.resize(hz, (tex.shape[1], tex.shape[0]), interpolation=cv2.INTER_LINEAR)
        const = np.empty_like(tex)
        const[:] = np.asarray(np.clip(self.look.haze_colour, 0, 255), np.uint8)
        return cv2.blendLinear(tex, const, 1.0 - hz, hz)

    def _sky(self, rng: Rng) -> Image:
        W, H = self.width, self.height
        top = np.asarray(self.look.sky_top, np.float32)
        hor = np.asarray(self.look.sky_horizon, np.float32)
        hy = self.cam.horizon_y(W / 2)
        ys = np.arange(H, dtype=np.float32)
        t = np.clip((hy - ys) / max(H * 0.8, 1), 0, 1)[:, None]
        col = hor[None, :] * (1 - t) + top[None, :] * t
        img = np.broadcast_to(col[:, None, :], (H, W, 3)).astype(np.float32)
        if self.look.time in ("day", "overcast", "dusk") and rng.random() < 0.7:
            clouds = tx.random_noise_detail(rng, H, W, 1.0).astype(np.float32) / 255.0
            amt = rng.uniform(0.1, 0.5)
            img = img * (1 - amt * clouds[..., None]) + 240 * amt * clouds[..., None]
        return np.clip(img, 0, 255).astype(np.uint8)

    def _backdrop(self, rng: Rng, pt: Painter) -> None:
        """Distant skyline closing the street's end (hazy silhouettes)."""
        lay = self.lay
        x = lay.x_max
        ys = np.linspace(lay.y_near - 60, lay.y_far + 80, 14)
        g = np.asarray(self.look.haze_colour, np.float64) * 0.8 + 20
        for y0, y1 in itertools.pairwise(ys):
            h = rng.uniform(8, 70)
            c = tuple(float(v) for v in np.clip(g * rng.uniform(0.6, 0.9), 0, 255))
            part = textured(
                (x, y1, 0), (0, y0 - y1, 0), (0, 0, h), np.full((2, 2, 3), np.asarray(c, np.uint8), np.uint8)
            )
            part.emissive = True
            pt.draw_part(part, 0)
        # Ground beyond the end of the street.
        part = textured(
            (x, lay.y_near - 60, 0),
            (0, lay.y_far - lay.y_near + 140, 0),
            (300, 0, 0),
            np.full((2, 2, 3), np.asarray(np.clip(g * 0.7, 0, 255), np.uint8), np.uint8),
        )
        part.emissive = True
        pt.draw_part(part, 0)

    def _draw_block(self, rng: Rng, pt: Painter, b: Block) -> None:
        cam, look = self.cam, self.look
        y_back = b.y_face + b.side * b.depth
        box8 = np.array([[x, y, z] for x in (b.x0, b.x1) for y in (b.y_face, y_back) for z in (0.0, b.height)])
        pc = cam.to_cam(box8)
        if (pc[:, 2] < 0.15).all():
            return
        if (pc[:, 2] > 0.15).all():  # quick reject of blocks wholly off one side of the frame
            u = cam.f * pc[:, 0] / pc[:, 2] + cam.width / 2
            v = cam.f * pc[:, 1] / pc[:, 2] + cam.height / 2
            if u.max() < 0 or u.min() > cam.width or v.max() < 0 or v.min() > cam.height:
                return
        faces = [box8[[0, 1, 5, 4]], box8[[4, 5, 7, 6]], box8[[0, 2, 3, 1]], box8[[4, 6, 7, 5]]]
        ext = [e for e in (cam.screen_extent(f) for f in faces) if e is not None]
        if not ext:
            return
        sw = min(max(e[2] for e in ext), self.width) - max(min(e[0] for e in ext), 0)
        sh = min(max(e[3] for e in ext), self.height) - max(min(e[1] for e in ext), 0)
        nearest = _dist_to_box(cam, b.x0, b.x1, min(b.y_face, y_back), max(b.y_face, y_back), 0, b.height)
        ppm = _ppm_for(cam, nearest, 36.0)
        # About one texel per screen pixel: more is wasted, less blurs.
        cap_w = max(sw, 1.0) * 1.1 / max(b.x1 - b.x0, 1)
        cap_h = max(sh, 1.0) * 1.1 / max(b.height, 1)
        ppm = max(1.0, min(ppm, max(cap_w, cap_h, 4.0)))
        facade = _facade_texture(rng, b, ppm, look, self.lit_frac)
        normal = np.array([0.0, -b.side, 0.0])
        wall_c = tuple(float(v) for v in facade[facade.shape[0] // 2, 1])

        def lit_tex(tex: Image, n: F64, o: F64, a: F64, bb: F64) -> Image:
            ndl = max(0.0, float(np.dot(n, look.sun_dir)))
            base = look.ambient + look.sun * (0.15 + 0.85 * ndl)
            lm = [float(base / t) for t in look.tint]
            if not self.lamps:
                out8 = cv2.multiply(tex, (lm[0], lm[1], lm[2], 0.0))  # type: ignore[call-overload]
                return self._haze_plane(out8, o, a, bb)
            out = tex.astype(np.float32) * np.asarray(lm, np.float32)
            if self.lamps:  # street lights wash the lower walls at night
                gh, gw = 6, 6
                S, T = np.meshgrid(np.linspace(0, 1, gw), np.linspace(0, 1, gh))
                P = o[None, None, :] + S[..., None] * a + T[..., None] * bb
                add: npt.NDArray[Any] = np.zeros((gh, gw, 3), np.float32)
                for pos, col, power in self.lamps:
                    d2 = np.sum((P - pos[None, None, :]) ** 2, axis=2)
                    add += np.asarray(col, np.float32) * power / (1 + d2 / 16.0)[..., None]
                add = cv2.resize(add, (tex.shape[1], tex.shape[0]))
                out = out + tex.astype(np.float32) * add
            if look.night:  # lit windows and signs keep their own brightness
                bright_px = tex.max(axis=2) > 200
                out[bright_px] = np.maximum(out[bright_px], tex[bright_px].astype(np.float32) * 0.9)
            out = self._haze_plane(out, o, a, bb)
            return np.clip(out, 0, 255).astype(np.uint8)

        # Roof (visible from above).
        if cam.pos[2] > b.height + 0.3:
            rw, rh = max(4, int((b.x1 - b.x0) * ppm / 2)), max(4, int(b.depth * ppm / 2))
            roof = _roof_texture(rng, rw, rh)
            o = np.array([b.x0, b.y_face, b.height])
            a = np.array([b.x1 - b.x0, 0, 0])
            bb = np.array([0, b.side * b.depth, 0])
            part = textured(o, a, bb, lit_tex(roof, np.array([0, 0, 1.0]), o, a, bb))
            part.emissive = True
            pt.draw_part(part, 0)
        # Side walls (ends of the block).
        for xe, nx in ((b.x0, -1.0), (b.x1, 1.0)):
            if (cam.pos[0] - xe) * nx <= 0:
                continue
            o = np.array([xe, b.y_face, b.height])
            a = np.array([0, b.side * b.depth, 0])
            bb = np.array([0, 0, -b.height])
            side_tex = tx.solid(16, 16, wall_c)
            side_tex = tx.modulate(side_tex, tx.random_noise_detail(rng, 16, 16), 0.2)
            part = textured(o, a, bb, lit_tex(side_tex, np.array([nx, 0, 0]), o, a, bb))
            part.emissive = True
            pt.draw_part(part, 0)
        # Facade (faces the street).
        if (cam.pos[1] - b.y_face) * (-b.side) > 0:
            o = np.array([b.x0, b.y_face, b.height])
            a = np.array([b.x1 - b.x0, 0, 0])
            bb = np.array([0, 0, -b.height])
            part = textured(o, a, bb, lit_tex(facade, normal, o, a, bb))
            part.emissive = True
            pt.draw_part(part, 0)

    # --- objects --------------------------------------------------------------------------------------
    def visible_px(self, p: F64, margin: float = 0.05) -> tuple[bool, float]:
        """Whether a world point projects into the frame (with margin), and its depth."""
        uv, z = self.cam.project(p.reshape(1, 3))
        if z[0] < 1.0:
            return False, float(z[0])
        u, v = uv[0]
        m = margin * self.width
        return (-m <= u <= self.width + m and -m <= v <= self.height + m), float(z[0])

    def px_per_m(self, depth: float) -> float:
        return self.cam.f / max(depth, 1e-3)

    def render_objects(self, objs: list[Obj], bg: Image | None = None) -> tuple[Image, list[Label], np.ndarray]:
        """Draw objects over the background (with their shadows) and return image, labels and id buffer."""
        if bg is None:
            bg = self.bg if self.bg is not None else self.render_background()
        img = bg.copy()
        pt = self.painter(img)
        self._shadows(img, objs)
        depth = [self.cam.depth(o.anchor) for o in objs]
        order = sorted(range(len(objs)), key=lambda i: -depth[i])
        drawn: dict[int, int] = {}
        for i in order:
            o = objs[i]
            oid = i + 2
            if depth[i] < 0.3:
                continue
            pt.shadow_factor = 1.0
            items: list[tuple[Part, int]] = [(p, 1) for p in o.support] + [(p, oid) for p in o.parts]
            pt.draw_parts(items)
            if o.cls >= 0:
                drawn[oid] = int(np.count_nonzero(pt.ids == oid))
        labels = self.labels(objs, pt.ids, drawn)
        return img, labels, pt.ids

    def _shadows(self, img: Image, objs: list[Obj]) -> None:
        """Soft cast shadows on the ground plus contact shadows under objects."""
        if self.ground_mask is None:
            return
        mask: npt.NDArray[Any] = np.zeros(img.shape[:2], np.uint8)
        L = self.look.sun_dir
        sun = self.look.sun > 0.1
        for o in objs:
            if not o.shadow or not o.parts:
                continue
            pts = np.concatenate([p.pts for p in o.parts], axis=0)
            if pts[:, 2].min() > 4.0:
                continue
            polys = []
            if sun:
                polys.append(pts[:, :2] - pts[:, 2:3] / max(L[2], 0.1) * L[None, :2])
            polys.append(pts[:, :2])
            for xy in polys:
                hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
                p3 = np.concatenate([hull, np.zeros((len(hull), 1))], axis=1)
                pc = self.cam.to_cam(p3)
                if (pc[:, 2] < 0.5).any():
                    continue
                uv = self.cam.project(p3)[0]
                cv2.fillPoly(mask, [np.round(uv * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
        if not mask.any():
            return
        k = max(3, int(3 * self.scale)) | 1
        mask = cv2.GaussianBlur(mask, (k, k), 0)
        mask[~self.ground_mask] = 0
        amb = self.look.ambient
        strength = (1.0 - amb / (amb + self.look.sun)) if sun else 0.25
        f = 1.0 - strength * 0.85 * mask.astype(np.float32) / 255.0
        img[:] = np.clip(img.astype(np.float32) * f[..., None], 0, 255).astype(np.uint8)

    def labels(self, objs: list[Obj], ids: np.ndarray, drawn: dict[int, int]) -> list[Label]:
        out: list[Label] = []
        W, H = self.width, self.height
        min_side = MIN_SIDE_640 * self.scale
        for oid, n_drawn in drawn.items():
            o = objs[oid - 2]
            if n_drawn == 0:
                continue
            ys, xs = np.nonzero(ids == oid)
            if len(xs) == 0:
                continue
            visible = len(xs) / n_drawn
            # Cut by the frame: compare with the projected extent of the whole object.
            pts = np.concatenate([p.pts for p in o.parts], axis=0)
            uv, z = self.cam.project(pts)
            if (z > 0.2).all():
                fx0, fy0 = uv.min(axis=0)
                fx1, fy1 = uv.max(axis=0)
                full = max((fx1 - fx0) * (fy1 - fy0), 1e-6)
                inside = max(0.0, min(fx1, W) - max(fx0, 0)) * max(0.0, min(fy1, H) - max(fy0, 0))
                visible *= min(1.0, inside / full)
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            if visible < MIN_VISIBLE or min(x1 - x0, y1 - y0) < min_side:
                continue
            # Slivers (cloth seen edge-on, a frame cut to a strip) are not recognisable objects.
            bw, bh = x1 - x0, y1 - y0
            if max(bw / bh, bh / bw) > MAX_ASPECT or len(xs) < MIN_FILL * bw * bh:
                continue
            out.append((o.cls, (x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H))
        return out


# --- placing objects where they occur -----------------------------------------------------------------
class Placer:
    """Samples positions in the visible part of the street and keeps ground footprints apart."""

    def __init__(self, scene: Scene, rng: Rng) -> None:
        self.s, self.rng = scene, rng
        self.taken: list[tuple[float, float, float, float]] = []
        lay = scene.lay
        # Visible ground: cast a grid of pixels below the horizon onto the ground.
        W, H = scene.width, scene.height
        us, vs = np.meshgrid(np.linspace(0, W, 9), np.linspace(0, H, 9))
        uv = np.stack([us.ravel(), vs.ravel()], axis=1)
        hz = np.array([scene.cam.horizon_y(u) for u in uv[:, 0]])
        uv = uv[uv[:, 1] > hz + 0.02 * H]
        g = scene.cam.pixel_to_ground(uv) if len(uv) else np.zeros((0, 2))
        d = np.linalg.norm(g - scene.cam.pos[None, :2], axis=1) if len(g) else np.zeros(0)
        g = g[d < 120]
        if len(g):
            self.vx0, self.vx1 = float(max(g[:, 0].min(), lay.x_min + 2)), float(min(g[:, 0].max(), lay.x_max - 5))
        else:
            self.vx0, self.vx1 = float(scene.cam.pos[0] + 3), float(scene.cam.pos[0] + 40)
        if self.vx1 - self.vx0 < 4:
            self.vx1 = self.vx0 + 4

    def free(self, x0: float, x1: float, y0: float, y1: float) -> bool:
        return not any(x0 < a1 and a0 < x1 and y0 < b1 and b0 < y1 for a0, a1, b0, b1 in self.taken)

    def take(self, x0: float, x1: float, y0: float, y1: float) -> None:
        self.taken.append((x0, x1, y0, y1))

    def x(self) -> float:
        # Bias towards the camera: far positions are many but small on screen.
        t = self.rng.random() ** 1.6
        return self.vx0 + t * (self.vx1 - self.vx0)

    def ok_on_screen(self, p: F64, size_m: float, min_px: float) -> bool:
        vis, depth = self.s.visible_px(p)
        return vis and size_m * self.s.px_per_m(depth) >= min_px * self.s.scale

    def walk_spot(self, side: int, length: float, depth: float, where: str) -> tuple[float, float] | None:
        """A free (x, y) on a pavement: ``kerb`` side, ``wall`` side or ``any``."""
        lay = self.s.lay
        if side > 0:
            ya, yb = lay.road_w / 2 + 0.3, lay.y_far
        else:
            ya, yb = lay.y_near, -lay.road_w / 2 - 0.3
        span = yb - ya
        if span < depth * 0.6:
            return None
        for _ in range(6):
            x = self.x()
            if where == "kerb":
                y = (ya + depth / 2 + 0.1) if side > 0 else (yb - depth / 2 - 0.1)
            elif where == "wall":
                y = (yb - depth / 2 - 0.15) if side > 0 else (ya + depth / 2 + 0.15)
            else:
                y = self.rng.uniform(ya + depth / 2, max(ya + depth / 2, yb - depth / 2))
            if self.free(x - length / 2, x + length / 2, y - depth / 2, y + depth / 2):
                return x, y
        return None


def _facing(side: int, rng: Rng, jitter: float = 0.15) -> float:
    """Yaw of an object on a pavement of ``side`` whose front faces the street."""
    return (0.0 if side > 0 else math.pi) + rng.normal(0, jitter)


def _visible_blocks(scene: Scene, pl: Placer) -> list[Block]:
    out = []
    for b in scene.lay.blocks:
        if b.back:
            continue
        if (scene.cam.pos[1] - b.y_face) * (-b.side) <= 0:
            continue
        if b.x1 < pl.vx0 - 10 or b.x0 > pl.vx1 + 10:
            continue
        out.append(b)
    return out


def _side_choice(scene: Scene, rng: Rng) -> int:
    """Pavement to use: mostly the far one (facing the camera), the near one when looking along."""
    along = abs(math.cos(scene.cam.yaw)) > 0.8
    return -1 if (along and rng.random() < 0.35) else 1


def place_stall(scene: Scene, pl: Placer, rng: Rng) -> Obj | None:
    side = _side_choice(scene, rng)
    lay = scene.lay
    r = rng.random()
    builder = ob.STALL_BUILDERS[int(rng.integers(len(ob.STALL_BUILDERS)))]
    if builder is ob.shop_goods or (r < 0.25 and builder is not ob.vendor_cart):
        where = "wall"
    elif r < 0.7:
        where = "kerb"
    else:
        where = "any"
    if lay.lane:
        where = "any"
    length, depth = 2.5, 1.6
    if (builder in (ob.vendor_cart, ob.tricycle_cart)) and rng.random() < 0.3 and not lay.lane:
        # Carts also stop on the road edge against the kerb.
        x = pl.x()
        y = side * (lay.road_w / 2 - 0.8)
        spot: tuple[float, float] | None = (x, y) if pl.free(x - 1.5, x + 1.5, y - 0.8, y + 0.8) else None
    else:
        spot = pl.walk_spot(side, length, depth, where)
    if spot is None:
        return None
    x, y = spot
    yaw = (
        _facing(side, rng)
        if builder not in (ob.vendor_cart, ob.tricycle_cart) or rng.random() < 0.5
        else rng.uniform(-0.4, 0.4) + (math.pi if rng.random() < 0.5 else 0.0)
    )
    if not pl.ok_on_screen(np.array([x, y, 1.0]), 2.0, 18):
        return None
    o = builder(rng, Frame((x, y, 0.0), yaw))
    pl.take(x - length / 2, x + length / 2, y - depth / 2, y + depth / 2)
    # A vendor tends the stall.
    if rng.random() < 0.6:
        vf = Frame((x + rng.uniform(-1, 1), y + side * rng.uniform(0.7, 1.2), 0.0), yaw + math.pi + rng.normal(0, 0.4))
        o.meta["vendor"] = ob.person(rng, vf, umbrella=False, sitting=rng.random() < 0.4)
    return o


def place_laundry(scene: Scene, pl: Placer, rng: Rng, blocks: list[Block]) -> Obj | None:
    lay = scene.lay
    r = rng.random()
    wins = [(b, w) for b in blocks for w in b.windows]
    bals = [(b, bl) for b in blocks for bl in b.balconies]
    if r < 0.3 and wins:  # pole pushed out of a window, or a short line across the window frame
        b, (s, sill, ww, wh) = wins[int(rng.integers(len(wins)))]
        base = b.facade_point(s - ww / 2 * rng.uniform(0, 1), sill + wh * rng.uniform(0.7, 1.1), 0.05)
        if not pl.ok_on_screen(base, 1.0, 14):
            return None
        if rng.random() < 0.6:
            direction = np.array([rng.normal(0, 0.3), -b.side, 0.0])
            direction /= np.linalg.norm(direction)
            return ob.laundry_pole(rng, base, direction, rng.uniform(1.2, 2.5))
        p0 = b.facade_point(s - ww / 2 - 0.2, sill + wh + 0.1, rng.uniform(0.25, 0.5))
        p1 = b.facade_point(s + ww / 2 + 0.2 + rng.uniform(0, 1.0), sill + wh + 0.1, rng.uniform(0.25, 0.5))
        return ob.laundry_line(rng, p0, p1, sag=0.02, allow_sheet=rng.random() < 0.3)
    if r < 0.55 and bals:  # balcony: over the rail or on a line inside above it
        b, (s, zf, bw) = bals[int(rng.integers(len(bals)))]
        p0 = b.facade_point(s - bw / 2 + 0.1, zf + 1.05, 1.1)
        p1 = b.facade_point(s + bw / 2 - 0.1, zf + 1.05, 1.1)
        if not pl.ok_on_screen((p0 + p1) / 2, 1.0, 14):
            return None
        if rng.random() < 0.5:
            return ob.draped_rail(rng, p0, p1)
        z = zf + rng.uniform(1.9, 2.4)
        return ob.laundry_line(
            rng,
            b.facade_point(s - bw / 2 + 0.1, z, rng.uniform(0.6, 1.0)),
            b.facade_point(s + bw / 2 - 0.1, z, rng.uniform(0.6, 1.0)),
            sag=0.03,
        )
    if r < 0.7 and lay.lane:  # line across the lane between facing buildings
        x = pl.x()
        z = rng.uniform(2.5, 7.0)
        p0 = np.array([x, lay.y_near + 0.2, z])
        p1 = np.array([x + rng.normal(0, 1.0), lay.y_far - 0.2, z + rng.normal(0, 0.3)])
        if not pl.ok_on_screen((p0 + p1) / 2, 1.0, 14):
            return None
        return ob.laundry_line(rng, p0, p1)
    if r < 0.8 and lay.gaps:  # across an alley/lot between two blocks
        side, gx0, gx1, gd = lay.gaps[int(rng.integers(len(lay.gaps)))]
        y = (lay.y_far if side > 0 else lay.y_near) + side * rng.uniform(0.5, min(gd, 6))
        z = rng.uniform(2.0, 5.0)
        p0, p1 = np.array([gx0, y, z]), np.array([gx1, y + rng.normal(0, 0.5), z + rng.normal(0, 0.2)])
        if not pl.ok_on_screen((p0 + p1) / 2, 1.0, 14):
            return None
        return ob.laundry_line(rng, p0, p1)
    if r < 0.87:  # roof-top line
        roofs = [b for b in blocks if scene.cam.pos[2] > b.height + 1.0]
        if roofs:
            b = roofs[int(rng.integers(len(roofs)))]
            s = rng.uniform(0.5, max(0.6, b.x1 - b.x0 - 4))
            z = b.height + rng.uniform(1.5, 1.9)
            p0 = b.facade_point(s, z, -rng.uniform(1, b.depth - 1))
            p1 = p0 + np.array([rng.uniform(2.0, 5.0), rng.normal(0, 0.5), 0])
            if not pl.ok_on_screen((p0 + p1) / 2, 1.0, 14):
                return None
            o = ob.laundry_line(rng, p0, p1, poles=False)
            o.support.append(line([p0 - [0, 0, 1.7], p0], 0.04, (120, 120, 120)))
            o.support.append(line([p1 - [0, 0, 1.7], p1], 0.04, (120, 120, 120)))
            return o
    # Pavement: line between trees/poles, drying rack, or a railing.
    side = _side_choice(scene, rng)
    spot = pl.walk_spot(side, 4.0, 0.8, "any" if rng.random() < 0.5 else "wall")
    if spot is None:
        return None
    x, y = spot
    if not pl.ok_on_screen(np.array([x, y, 1.2]), 1.5, 16):
        return None
    pl.take(x - 2, x + 2, y - 0.4, y + 0.4)
    kind = rng.random()
    if kind < 0.4:
        return ob.drying_rack(rng, Frame((x, y, 0), rng.normal(0, 0.3)))
    if kind < 0.75:
        length = rng.uniform(2.5, 6.0)
        z = rng.uniform(1.6, 2.1)
        ang = rng.normal(0, 0.2)
        d = np.array([math.cos(ang), math.sin(ang), 0.0]) * length / 2
        c = np.array([x, y, z])
        return ob.laundry_line(rng, c - d, c + d, poles=True)
    # Fence/railing along the kerb with quilts draped over it.
    length = rng.uniform(2.0, 5.0)
    yk = side * (lay.road_w / 2 + 0.4)
    p0, p1 = np.array([x - length / 2, yk, 1.0]), np.array([x + length / 2, yk, 1.0])
    o = ob.draped_rail(rng, p0, p1)
    rail_c = (200, 200, 200) if rng.random() < 0.5 else (60, 100, 60)
    o.support += [line([p0 - np.array([1, 0, 0]), p1 + np.array([1, 0, 0])], 0.04, rail_c)]
    for k in range(int(length + 3)):
        xx = x - length / 2 - 1 + k
        o.support.append(line([(xx, yk, 0), (xx, yk, 1.0)], 0.03, rail_c))
    return o


def place_structure(scene: Scene, pl: Placer, rng: Rng, blocks: list[Block]) -> Obj | None:
    lay = scene.lay
    r = rng.random()
    if r < 0.3 and lay.gaps:  # shed or shack in an open lot
        side, gx0, gx1, gd = lay.gaps[int(rng.integers(len(lay.gaps)))]
        x = rng.uniform(gx0 + 1.5, max(gx0 + 1.6, gx1 - 1.5))
        y = (lay.y_far if side > 0 else lay.y_near) + side * rng.uniform(2.0, max(2.1, gd - 2))
        if not pl.ok_on_screen(np.array([x, y, 1.5]), 3.0, 16):
            return None
        builder = ob.shed if rng.random() < 0.6 else (ob.enclosure if rng.random() < 0.5 else ob.scaffold_frame)
        return builder(rng, Frame((x, y, 0), (0.0 if side > 0 else math.pi) + rng.normal(0, 0.2)))
    if r < 0.5:  # rooftop addition
        roofs = [b for b in blocks if scene.cam.pos[2] > b.height + 1.0]
        if roofs:
            b = roofs[int(rng.integers(len(roofs)))]
            s = rng.uniform(2.0, max(2.1, b.x1 - b.x0 - 2))
            p = b.facade_point(s, b.height, -rng.uniform(2.0, max(2.1, b.depth - 2)))
            if not pl.ok_on_screen(p + np.array([0, 0, 1.5]), 3.0, 16):
                return None
            if rng.random() < 0.8:
                return ob.shed(rng, Frame(p, 0.0 if b.side > 0 else math.pi), on_roof=True)
            return ob.scaffold_frame(rng, Frame(p, 0.0 if b.side > 0 else math.pi))
    shops = [(b, sh) for b in blocks for sh in b.shops]
    side = _side_choice(scene, rng)
    walk = lay.walk_far if side > 0 else lay.walk_near
    if r < 0.75 and shops and walk > 2.2:  # lean-to canopy on posts over the pavement
        cand = [(b, sh) for b, sh in shops if b.side == side] or shops
        b, (s0, s1) = cand[int(rng.integers(len(cand)))]
        walk = lay.walk_far if b.side > 0 else lay.walk_near
        length = min(s1 - s0, rng.uniform(3, 8))
        s = (s0 + s1) / 2
        fr = b.frame(s)
        p = b.facade_point(s, 1.5, 1.5)
        x = float(p[0])
        y_lo, y_hi = sorted((b.y_face, b.y_face - b.side * walk))
        if not pl.free(x - length / 2, x + length / 2, y_lo, y_hi) or not pl.ok_on_screen(p, 3.0, 16):
            return None
        o = ob.canopy_addon(rng, fr, length)
        # Keep within the pavement.
        pl.take(x - length / 2, x + length / 2, y_lo, y_hi)
        return o
    # Shed against a wall on a wide pavement, or a hoarding enclosure.
    if walk < 3.0:
        return None
    spot = pl.walk_spot(side, 5.0, 2.5, "wall")
    if spot is None:
        return None
    x, y = spot
    if not pl.ok_on_screen(np.array([x, y, 1.5]), 3.0, 16):
        return None
    pl.take(x - 3, x + 3, y - 1.5, y + 1.5)
    fr = Frame((x, y + side * 0.3, 0), _facing(side, rng, 0.05))
    k = rng.random()
    if k < 0.6:
        o = ob.shed(rng, fr, against_wall=True)
    elif k < 0.8:
        o = ob.enclosure(rng, fr)
    else:
        o = ob.scaffold_frame(rng, fr)
    # Squash into the pavement depth.
    return o


def place_distractors(scene: Scene, pl: Placer, rng: Rng, blocks: list[Block], negatives_only: bool) -> list[Obj]:
    lay, look = scene.lay, scene.look
    objs: list[Obj] = []
    boost = 1.6 if negatives_only else 1.0
    # Trees and lamps in rows along the kerbs.
    for side in (1, -1):
        walk = lay.walk_far if side > 0 else lay.walk_near
        yk = side * (lay.road_w / 2 + 0.8)
        if walk > 2.5 and rng.random() < 0.55:
            step = rng.uniform(5, 9)
            x = pl.vx0 + rng.uniform(0, step)
            while x < pl.vx1 + 5:
                near = scene.cam.depth(np.array([x, yk, 4.0])) < 7.0
                if not near and pl.free(x - 0.5, x + 0.5, yk - 0.5, yk + 0.5):
                    objs.append(ob.tree(rng, Frame((x, yk, 0), 0)))
                    pl.take(x - 0.6, x + 0.6, yk - 0.6, yk + 0.6)
                x += step
        if not lay.lane and rng.random() < 0.8:
            step = rng.uniform(18, 32)
            x = pl.vx0 + rng.uniform(0, step)
            yl = side * (lay.road_w / 2 + 0.5)
            while x < pl.vx1 + 5:
                lamp = ob.street_lamp(rng, Frame((x, yl, 0), 0.0 if side > 0 else math.pi), lit=look.night)
                objs.append(lamp)
                pl.take(x - 0.3, x + 0.3, yl - 0.3, yl + 0.3)
                x += step
    # Parked and moving vehicles.
    if not lay.lane:
        for _ in range(int(rng.integers(0, 10))):
            side = 1 if rng.random() < 0.5 else -1
            parked = rng.random() < 0.6
            x = pl.x()
            y = side * (lay.road_w / 2 - 1.2) if parked else rng.uniform(-lay.road_w / 2 + 1.2, lay.road_w / 2 - 1.2)
            if pl.free(x - 2.6, x + 2.6, y - 1.1, y + 1.1):
                pl.take(x - 2.6, x + 2.6, y - 1.1, y + 1.1)
                objs.append(ob.car(rng, Frame((x, y, 0), (0.0 if y < 0 else math.pi) + rng.normal(0, 0.03))))
    # Scooters parked in rows on the pavement.
    for _ in range(int(rng.integers(0, 4) * boost)):
        side = _side_choice(scene, rng)
        n = int(rng.integers(1, 8))
        spot = pl.walk_spot(side, n * 0.7, 1.6, "kerb" if rng.random() < 0.6 else "wall")
        if spot is None:
            continue
        x, y = spot
        pl.take(x - n * 0.35, x + n * 0.35, y - 0.8, y + 0.8)
        bike = rng.random() < 0.25
        for k in range(n):
            objs.append(
                ob.scooter(rng, Frame((x - n * 0.35 + k * 0.7, y, 0), math.pi / 2 + rng.normal(0, 0.15)), bicycle=bike)
            )
    # People, the commonest occluders; crowds in market streets.
    n_people = int(rng.integers(0, 12) * boost) + (int(rng.integers(0, 20)) if rng.random() < 0.25 else 0)
    for _ in range(n_people):
        side = 1 if rng.random() < 0.65 else -1
        x = pl.x()
        if rng.random() < 0.2 or lay.lane:
            y = rng.uniform(lay.y_near + 0.3, lay.y_far - 0.3)
        else:
            ya, yb = (lay.road_w / 2 + 0.3, lay.y_far - 0.3) if side > 0 else (lay.y_near + 0.3, -lay.road_w / 2 - 0.3)
            y = rng.uniform(ya, max(ya, yb))
        um = rng.random() < (0.6 if look.rain else (0.15 * boost))
        objs.append(ob.person(rng, Frame((x, y, 0), rng.uniform(0, 2 * math.pi)), umbrella=um))
    # Street furniture.
    furniture = [
        (ob.bench, 0.3),
        (ob.bin_box, 0.5),
        (ob.cabinet, 0.3),
        (ob.planter, 0.3),
        (ob.street_sign, 0.5),
        (ob.a_frame_sign, 0.4),
        (ob.cone, 0.25),
        (ob.bus_shelter, 0.2 * boost),
    ]
    for builder, p in furniture:
        for _ in range(int(rng.integers(1, 3))):
            if rng.random() > p:
                continue
            side = _side_choice(scene, rng)
            ln = 4.0 if builder is ob.bus_shelter else 1.2
            spot = pl.walk_spot(
                side,
                ln,
                1.0 if builder is not ob.bus_shelter else 1.8,
                "kerb" if builder in (ob.bus_shelter, ob.street_sign, ob.cone) else "any",
            )
            if spot is None:
                continue
            x, y = spot
            pl.take(x - ln / 2, x + ln / 2, y - 0.5, y + 0.5)
            objs.append(builder(rng, Frame((x, y, 0), _facing(side, rng, 0.1))))
    if not lay.lane and rng.random() < 0.3:
        side = _side_choice(scene, rng)
        x = pl.x()
        objs.append(ob.bollard_row(rng, Frame((x, side * (lay.road_w / 2 + 0.45), 0), 0), int(rng.integers(3, 10))))
    return objs


def _balcony(rng: Rng, b: Block, s: float, zf: float, bw: float) -> Obj:
    """An open balcony: slab, railing panel or bars (distractor, and a support for laundry)."""
    depth = 1.1
    fr = b.frame(s)
    c = (rng.uniform(170, 230),) * 3 if rng.random() < 0.6 else ob.dull(rng)
    parts = fr.box(0, -depth / 2, zf - 0.15, (bw, depth, 0.15), c)  # type: ignore[arg-type]
    if rng.random() < 0.5:
        parts.append(
            fr.quad(
                [
                    (-bw / 2, -depth, zf),
                    (bw / 2, -depth, zf),
                    (bw / 2, -depth, zf + 1.05),
                    (-bw / 2, -depth, zf + 1.05),
                ],
                ob.jitter(c, rng, 20),
            )
        )  # type: ignore[arg-type]
        for sgn in (-1, 1):
            parts.append(
                fr.quad(
                    [
                        (sgn * bw / 2, -depth, zf),
                        (sgn * bw / 2, 0, zf),
                        (sgn * bw / 2, 0, zf + 1.05),
                        (sgn * bw / 2, -depth, zf + 1.05),
                    ],
                    ob.jitter(c, rng, 25),
                )
            )  # type: ignore[arg-type]
    else:
        rail = (60, 60, 60) if rng.random() < 0.5 else (200, 200, 200)
        parts.append(line([fr.p(-bw / 2, -depth, zf + 1.05), fr.p(bw / 2, -depth, zf + 1.05)], 0.04, rail))
        for k in range(int(bw / 0.25) + 1):
            uu = -bw / 2 + k * 0.25
            parts.append(line([fr.p(uu, -depth, zf), fr.p(uu, -depth, zf + 1.05)], 0.015, rail))
    return Obj(-1, parts, fr.p(0, -depth / 2, zf + 0.5), kind="balcony", shadow=False)


def build_scene(
    seed: int, width: int, height: int, *, negatives_only: bool = False, counts: tuple[int, int, int] | None = None
) -> Scene:
    """Lay out a street, camera, light and objects for ``seed`` (background not yet drawn)."""
    rng = np.random.default_rng(seed)
    lay = make_layout(rng)
    look = make_look(rng)
    mat = make_materials(rng, look)
    cam = make_camera(rng, lay, width, height)
    scene = Scene(seed, width, height, lay, look, mat, cam, Ground(rng, lay, mat, look))
    scene.lit_frac = float(rng.uniform(0.1, 0.6))
    pl = Placer(scene, rng)
    # Street lights are known before the background is lit.
    pre = place_distractors(scene, pl, rng, [], negatives_only)
    scene.lamps = []
    if look.night:
        col = (0.55, 0.8, 1.0) if rng.random() < 0.5 else (1.0, 1.0, 0.95)
        for o in pre:
            if o.kind == "lamp":
                scene.lamps.append((np.asarray(o.meta["light"], np.float64), col, float(rng.uniform(0.6, 1.4))))
    scene.render_background()  # fills facade metadata (windows, balconies, shops)
    blocks = _visible_blocks(scene, pl)
    objs = pre + place_distractors_facades(scene, pl, rng, blocks, negatives_only)
    if not negatives_only:
        if counts is None:
            empty = rng.random() < 0.06
            counts = (0, 0, 0) if empty else (int(rng.integers(0, 6)), int(rng.integers(1, 7)), int(rng.integers(0, 4)))
        for cls, n in enumerate(counts):
            for _ in range(n):
                for _attempt in range(6):
                    found: Obj | None
                    if cls == 0:
                        found = place_stall(scene, pl, rng)
                    elif cls == 1:
                        found = place_laundry(scene, pl, rng, blocks)
                    else:
                        found = place_structure(scene, pl, rng, blocks)
                    if found is not None:
                        objs.append(found)
                        vendor = found.meta.get("vendor")
                        if isinstance(vendor, Obj):
                            objs.append(vendor)
                        break
    scene.objects = objs
    return scene


def place_distractors_facades(
    scene: Scene, pl: Placer, rng: Rng, blocks: list[Block], negatives_only: bool
) -> list[Obj]:
    """Facade-mounted distractors, known only once the facades are drawn."""
    boost = 1.6 if negatives_only else 1.0
    objs: list[Obj] = []
    for b in blocks:
        for s0, s1 in b.shops:
            if rng.random() < 0.35 * boost:
                objs.append(ob.legal_awning(rng, b.frame((s0 + s1) / 2), (s1 - s0) * rng.uniform(0.6, 0.95)))
        for s, sill, ww, _wh in b.windows:
            if rng.random() < 0.2:
                objs.append(ob.ac_unit(rng, b.frame(s + ww / 2 + 0.5, 0.0, sill - 0.2)))
        for s, zf, bw in b.balconies:
            objs.append(_balcony(rng, b, s, zf, bw))
        if rng.random() < 0.12 * boost and b.height > 6:
            objs.append(
                ob.banner(
                    rng,
                    b.frame((b.x1 - b.x0) / 2, 0.05),
                    min(b.x1 - b.x0 - 1, rng.uniform(4, 12)),
                    b.ground_floor + rng.uniform(0.5, 3),
                )
            )
    if rng.random() < 0.15 * boost:
        side = _side_choice(scene, rng)
        x = pl.x()
        fr = Frame((x, side * (scene.lay.road_w / 2 + 0.6), 0), 0.0)
        objs.append(ob.flags(rng, fr, rng.uniform(6, 15), rng.uniform(3, 5)))
    return objs


# --- camera artefacts ---------------------------------------------------------------------------------
def apply_effects(img: Image, rng: Rng, look: Look, *, strength: float = 1.0, osd: bool | None = None) -> Image:
    """What a real CCTV pipeline does to a picture: rain, white balance, blur, noise, OSD text, JPEG."""
    h, w = img.shape[:2]
    out = img
    if look.rain:
        streaks: npt.NDArray[Any] = np.zeros((h, w), np.uint8)
        n = int(w * h / 900 * rng.uniform(0.3, 1.0))
        xs = rng.integers(0, w, n)
        ys = rng.integers(0, h, n)
        ln = int(rng.uniform(0.02, 0.06) * h)
        dx = int(rng.normal(0, 0.3) * ln)
        for x, y in zip(xs, ys, strict=False):
            cv2.line(streaks, (int(x), int(y)), (int(x) + dx, int(y) + ln), int(rng.integers(60, 160)), 1)
        streaks = cv2.GaussianBlur(streaks, (3, 3), 0)
        out = cv2.scaleAdd(cv2.merge([streaks, streaks, streaks]), 0.35, img)
    # Exposure, white balance and gamma as one lookup table per channel; saturation by blending with grey.
    img = np.clip(out, 0, 255).astype(np.uint8) if out.dtype != np.uint8 else out
    gain = np.array([rng.normal(1, 0.06), rng.normal(1, 0.04), rng.normal(1, 0.06)]) * strength + (1 - strength)
    gain = gain * rng.uniform(0.8, 1.2)
    gamma = rng.uniform(0.8, 1.25)
    x = np.arange(256, dtype=np.float64)
    lut = (
        np.stack([np.clip(255.0 * np.power(np.clip(x * g, 0, 255) / 255.0, gamma), 0, 255) for g in gain], axis=1)
        .astype(np.uint8)
        .reshape(256, 1, 3)
    )
    img = cv2.LUT(img, lut)
    grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if look.ir:
        img = cv2.convertScaleAbs(grey, alpha=rng.uniform(0.9, 1.3))
    else:
        sat = rng.uniform(0.6, 1.25)
        img = cv2.addWeighted(img, sat, grey, 1 - sat, 0)
    # Vignetting.
    if rng.random() < 0.4:
        yy, xx = np.ogrid[:h, :w]
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        vig = (255 * (1 - rng.uniform(0.1, 0.35) * r2 / 2)).astype(np.uint8)
        img = cv2.multiply(img, cv2.merge([vig, vig, vig]), scale=1 / 255)
    # Lower-resolution source scaled up.
    if rng.random() < 0.3 * strength:
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    # Defocus and motion blur.
    r = rng.random()
    if r < 0.3 * strength:
        s = rng.uniform(0.3, 1.5) * max(w, h) / 960
        img = cv2.GaussianBlur(img, (0, 0), s)
    elif r < 0.45 * strength:
        k = int(rng.integers(3, 9))
        kern = np.zeros((k, k), np.float32)
        ang = rng.uniform(0, math.pi)
        c = (k - 1) / 2
        cv2.line(
            kern,
            (int(c - math.cos(ang) * c), int(c - math.sin(ang) * c)),
            (int(c + math.cos(ang) * c), int(c + math.sin(ang) * c)),
            1.0,
            1,
        )
        img = cv2.filter2D(img, -1, kern / max(kern.sum(), 1))
    # Sensor noise (stronger in the dark), with chroma noise.
    sigma = rng.uniform(1, 5) + (rng.uniform(3, 10) if look.night else 0)
    sigma *= strength
    if sigma > 0.5:
        # numpy's generator, not cv2.randn: OpenCV's global RNG would break determinism by seed.
        if rng.random() < 0.5:  # luma-correlated noise
            noise = np.repeat(rng.standard_normal((h, w, 1), dtype=np.float32) * sigma, 3, axis=2)
        else:
            noise = rng.standard_normal((h, w, 3), dtype=np.float32) * sigma
        img = cv2.add(img, noise, dtype=cv2.CV_8U)
    # On-screen display: timestamp and camera name, as almost every CCTV frame has.
    if osd if osd is not None else rng.random() < 0.55:
        _osd(img, rng)
    # Compression.
    if rng.random() < 0.85:
        q = int(rng.uniform(20, 95) if strength >= 1 else rng.uniform(60, 95))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            img = decoded
    return img


def _osd(img: Image, rng: Rng) -> None:
    h, w = img.shape[:2]
    scale = max(h, w) / 1280 * rng.uniform(0.6, 1.1)
    y = int(rng.uniform(0.03, 0.07) * h) + int(20 * scale)
    x = int(rng.uniform(0.01, 0.05) * w)
    text = (
        f"20{rng.integers(18, 27)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d} "
        f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}"
    )
    col = (255, 255, 255) if rng.random() < 0.8 else (0, 255, 255)
    th = max(1, int(2 * scale))
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), th + 2, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, col, th, cv2.LINE_AA)
    if rng.random() < 0.6:
        name = f"CAM{rng.integers(1, 99):02d} " + "".join(
            chr(int(rng.integers(65, 91))) for _ in range(rng.integers(3, 8))
        )
        yb = h - int(rng.uniform(0.03, 0.06) * h)
        xb = w - int(w * rng.uniform(0.25, 0.4))
        cv2.putText(img, name, (xb, yb), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(img, name, (xb, yb), cv2.FONT_HERSHEY_SIMPLEX, scale, col, th, cv2.LINE_AA)


def render_scene(seed: int, width: int, height: int, *, negatives_only: bool = False) -> tuple[Image, list[Label]]:
    """Render one training image for ``seed``.

    Returns the BGR uint8 image and YOLO labels ``(class_id, cx, cy, w, h)`` normalised to 0..1
    (0 stall, 1 laundry, 2 structure). Deterministic by seed. With ``negatives_only`` the scene holds
    only look-alike distractors and the label list is empty.
    """
    scene = build_scene(seed, width, height, negatives_only=negatives_only)
    img, labels, _ = scene.render_objects(scene.objects)
    rng = np.random.default_rng(seed + 104729)
    img = apply_effects(img, rng, scene.look)
    if negatives_only:
        labels = []
    return img, labels
