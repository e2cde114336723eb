"""Demo clips for ``sample_videos/`` made with the training renderer (DESIGN §3.6a).

Each clip is one static street view from :mod:`detector.training.scenes` (same camera, light and
background for every frame) in which people and cars move, and violations appear and disappear on a
timeline. Next to ``<clip>.mp4`` (H.264, 25 fps) come ``<clip>.camera.yaml`` (DESIGN §3.2: zones
drawn from the rendered geometry, ground control points from the rendering camera) and
``<clip>.truth.json`` (every violation the clip shows that its zones make illegal, DESIGN §3.4a).

Because clips are short, their zones use short ``dwell_s`` (20–25 s) so incidents fire in the clip.

    python -m detector.training.clips --out sample_videos
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import shapely
import yaml

from detector.training.geometry import F64, Camera, Image, Obj
from detector.training.objects import distractors, stalls, structures
from detector.training.objects.common import Frame
from detector.training.objects.laundry import laundry_line
from detector.training.scenes.ground import Ground, make_materials
from detector.training.scenes.layout import Layout, make_blocks
from detector.training.scenes.light import Look
from detector.training.scenes.scene import Scene

FPS = 25
WIDTH, HEIGHT = 960, 540
GOP = 50
# Where the demo street is (Nanjing, Xuanwu district); the street runs east (+X) - west.
ORIGIN_LONLAT = (118.7969, 32.0603)
M_PER_DEG_LAT = 110_574.0


def world_to_lonlat(x: float, y: float) -> tuple[float, float]:
    """Local east/north metres (X east, Y north) around ``ORIGIN_LONLAT`` to WGS84 lon/lat."""
    lon0, lat0 = ORIGIN_LONLAT
    lon = lon0 + x / (111_320.0 * math.cos(math.radians(lat0)))
    lat = lat0 + y / M_PER_DEG_LAT
    return round(lon, 7), round(lat, 7)


# --- timeline -----------------------------------------------------------------------------------------
@dataclass
class Static:
    """An object that stands still while present (``t0`` <= t < ``t1``; ``t1`` None: to the end)."""

    obj: Obj
    t0: float = 0.0
    t1: float | None = None
    # The violation it shows, if any: (category, zone) and its ground position.
    truth: tuple[str, str] | None = None
    ground: tuple[float, float] | None = None

    def present(self, t: float) -> bool:
        return self.t0 <= t and (self.t1 is None or t < self.t1)


@dataclass
class Mover:
    """An object moving at constant velocity between ``t0`` and ``t1`` (people cycle stride poses)."""

    poses: list[Obj]
    start: F64
    velocity: F64
    t0: float
    t1: float
    stride_period: float = 0.0

    def at(self, t: float) -> Obj | None:
        if not (self.t0 <= t < self.t1):
            return None
        k = 0
        if self.stride_period > 0 and len(self.poses) > 1:
            k = int((t - self.t0) / self.stride_period * len(self.poses)) % len(self.poses)
        return moved(self.poses[k], self.start + self.velocity * (t - self.t0))


def moved(obj: Obj, d: F64) -> Obj:
    """A copy of ``obj`` translated by ``d`` (object built at the origin)."""

    def shift(parts: list) -> list:  # type: ignore[type-arg]
        out = []
        for p in parts:
            uv = None if p.uv is None else np.vstack([p.uv[0] + d, p.uv[1:]])
            out.append(replace(p, pts=p.pts + d, uv=uv))
        return out

    return Obj(obj.cls, shift(obj.parts), obj.anchor + d, obj.kind, obj.shadow, shift(obj.support), dict(obj.meta))


def walker(
    rng: np.random.Generator,
    start: tuple[float, float],
    end: tuple[float, float],
    t0: float,
    speed: float,
    umbrella: bool = False,
) -> Mover:
    d = np.array([end[0] - start[0], end[1] - start[1], 0.0])
    dist = float(np.linalg.norm(d))
    yaw = math.atan2(d[1], d[0]) + math.pi / 2  # a person's front faces -v; walk along u... turned sideways
    seed = int(rng.integers(2**31))
    poses = [
        distractors.person(np.random.default_rng(seed), Frame((0, 0, 0), yaw), umbrella=umbrella, bag=None, stride=s)
        for s in (-0.22, 0.0, 0.22, 0.0)
    ]
    return Mover(poses, np.array([start[0], start[1], 0.0]), d / dist * speed, t0, t0 + dist / speed, stride_period=0.9)


def driver(rng: np.random.Generator, y: float, x0: float, x1: float, t0: float, speed: float) -> Mover:
    direction = 1.0 if x1 > x0 else -1.0
    car = distractors.car(rng, Frame((0, 0, 0), 0.0 if direction > 0 else math.pi))
    return Mover([car], np.array([x0, y, 0.0]), np.array([direction * speed, 0, 0]), t0, t0 + abs(x1 - x0) / speed)


# --- a clip --------------------------------------------------------------------------------------------
@dataclass
class ZoneSpec:
    name: str
    ground: list[tuple[float, float, float]]  # world outline (projected to the image)
    categories: list[str]
    dwell_s: float
    allowed: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Clip:
    name: str
    title: str
    camera_id: str
    start_time: str
    duration_s: float
    scene: Scene
    statics: list[Static]
    movers: list[Mover]
    zones: list[ZoneSpec]
    osd: str = ""

    def zone_polygon(self, z: ZoneSpec) -> list[list[float]]:
        """The zone's world outline projected and cut to the frame, as relative 0..1 coordinates."""
        cam = self.scene.cam
        pts = np.asarray(z.ground, np.float64)
        # Densify edges so the near-plane cut and projection stay faithful.
        dense = []
        for i in range(len(pts)):
            a, b = pts[i], pts[(i + 1) % len(pts)]
            for t in np.linspace(0, 1, 20, endpoint=False):
                dense.append(a + (b - a) * t)
        dp = np.asarray(dense)
        pc = cam.to_cam(dp)
        dp = dp[pc[:, 2] > 0.5]
        uv = cam.project(dp)[0]
        poly = shapely.Polygon(uv).buffer(0)
        frame = shapely.box(0, 0, cam.width, cam.height)
        cut = poly.intersection(frame)
        if cut.geom_type != "Polygon":
            cut = max(cut.geoms, key=lambda g: g.area)  # type: ignore[attr-defined]
        cut = cut.simplify(1.0)
        coords = np.asarray(cut.exterior.coords)[:-1]
        rel = [
            [round(float(np.clip(x / cam.width, 0, 1)), 4), round(float(np.clip(y / cam.height, 0, 1)), 4)]
            for x, y in coords
        ]
        return rel


def _scene(
    seed: int,
    *,
    night: bool,
    road_w: float,
    walk_far: float,
    walk_near: float,
    cam_pos: tuple[float, float, float],
    target: tuple[float, float, float],
    hfov: float,
) -> Scene:
    rng = np.random.default_rng(seed)
    lay = Layout(road_w, walk_far, walk_near, 0.15, False, [], -70.0, 200.0, [])
    far, gaps = make_blocks(rng, +1, lay.y_far, lay.x_min, lay.x_max, False, 0.0)
    near, _ = make_blocks(rng, -1, lay.y_near, lay.x_min, lay.x_max, False, 0.0)
    back, _ = make_blocks(rng, +1, lay.y_far + 22, lay.x_min, lay.x_max, False, 0.3)
    for b in back:
        b.back, b.shop = True, False
    lay.blocks, lay.gaps = far + near + back, gaps
    if night:
        look = Look(
            "night",
            False,
            0.004,
            np.array([0.3, 0.3, 0.9]),
            0.0,
            0.16,
            (40, 25, 15),
            (70, 60, 55),
            (42, 36, 33),
            (1.0, 1.0, 0.95),
            False,
        )
    else:
        sun = np.array([-0.45, -0.55, 0.7])
        look = Look(
            "day",
            False,
            0.003,
            sun / np.linalg.norm(sun),
            0.62,
            0.52,
            (225, 170, 110),
            (235, 225, 215),
            (211, 202, 193),
            (1.0, 1.0, 1.0),
            False,
        )
    mat = make_materials(rng, look)
    d = np.asarray(target) - np.asarray(cam_pos)
    yaw = math.atan2(d[1], d[0])
    pitch = math.atan2(-d[2], math.hypot(d[0], d[1]))
    cam = Camera(cam_pos, yaw, pitch, 0.0, hfov, WIDTH, HEIGHT)
    sc = Scene(seed, WIDTH, HEIGHT, lay, look, mat, cam, Ground(rng, lay, mat, look))
    sc.lit_frac = 0.45
    return sc


def _lamps(sc: Scene, xs: list[float], rng: np.random.Generator) -> list[Static]:
    out = []
    for i, x in enumerate(xs):
        side = 1 if i % 2 == 0 else -1
        lamp = distractors.street_lamp(
            rng, Frame((x, side * (sc.lay.road_w / 2 + 0.5), 0), 0.0 if side > 0 else math.pi), lit=sc.look.night
        )
        out.append(Static(lamp))
        if sc.look.night:
            sc.lamps.append((np.asarray(lamp.meta["light"], np.float64), (0.85, 0.95, 1.0), 0.5))
    return out


def _street_furniture(sc: Scene, rng: np.random.Generator, x0: float, x1: float) -> list[Static]:
    out: list[Static] = []
    yk = sc.lay.road_w / 2 + 0.8
    for x in np.arange(x0, x1, 12.0):
        out.append(Static(distractors.tree(rng, Frame((float(x), yk, 0), 0))))
    for k in range(2):
        out.append(Static(distractors.bin_box(rng, Frame((x0 + 5 + k * 11, sc.lay.y_far - 0.6, 0), 0))))
    return out


def clip_street_day(seed: int = 7001) -> Clip:
    """A shop street by day: a stall is set up and packed away, goods are put out at a shop door,
    a vendor's tricycle passes through without stopping (no alert)."""
    sc = _scene(
        seed,
        night=False,
        road_w=9.0,
        walk_far=5.5,
        walk_near=3.5,
        cam_pos=(0.0, -6.0, 6.0),
        target=(11.0, 5.5, 0.6),
        hfov=52,
    )
    rng = np.random.default_rng(seed + 1)
    lay = sc.lay
    statics = _lamps(sc, [0.0, 26.0], rng) + _street_furniture(sc, rng, 2.0, 30.0)
    sc.render_background()
    yk = lay.road_w / 2 + 1.0  # kerb side of the far pavement
    stall = stalls.umbrella_stall(np.random.default_rng(seed + 2), Frame((9.0, yk + 0.3, 0), 0.0))
    statics.append(Static(stall, 8.0, 46.0, ("street_vending", "sidewalk-north"), (9.0, yk + 0.3)))
    vendor = distractors.person(np.random.default_rng(seed + 3), Frame((9.6, yk + 1.0, 0), math.pi))
    statics.append(Static(vendor, 8.0, 46.0))
    # Clear of the stall's umbrella as the camera sees it: evidence an officer can use.
    goods_x = 22.0
    goods = stalls.shop_goods(np.random.default_rng(seed + 5), Frame((goods_x, lay.y_far - 0.6, 0), 0.0))
    statics.append(Static(goods, 14.0, None, ("storefront_overflow", "shopfront-north"), (goods_x, lay.y_far - 0.6)))
    movers: list[Mover] = []
    cart = stalls.tricycle_cart(np.random.default_rng(seed + 4), Frame((0, 0, 0), math.pi), rider=True)
    # Behind the stall, inside the no-vending zone, never stopping: it must raise no alert.
    movers.append(
        Mover([cart], np.array([30.0, lay.y_far - 2.6, 0.0]), np.array([-0.55, 0.0, 0.0]), 18.0, 18.0 + 34 / 0.55)
    )
    for i in range(14):
        t0 = float(rng.uniform(-20, 55))
        # People keep to the free strip between the stall and the shop fronts, or the near pavement.
        y = (
            float(rng.uniform(lay.y_far - 2.0, lay.y_far - 1.4))
            if i % 3
            else float(rng.uniform(lay.y_near + 0.5, -lay.road_w / 2 - 0.5))
        )
        a, b = (-8.0, 34.0) if rng.random() < 0.5 else (34.0, -8.0)
        movers.append(walker(rng, (a, y), (b, y + float(rng.normal(0, 0.4))), t0, float(rng.uniform(1.0, 1.5))))
    for i in range(8):
        t0 = float(rng.uniform(-5, 58))
        if i % 2:
            movers.append(driver(rng, -lay.road_w / 4, -30.0, 60.0, t0, float(rng.uniform(6, 10))))
        else:
            movers.append(driver(rng, lay.road_w / 4, 60.0, -30.0, t0, float(rng.uniform(6, 10))))
    zones = [
        ZoneSpec(
            "sidewalk-north",
            [
                (2.0, lay.road_w / 2, 0),
                (26.0, lay.road_w / 2, 0),
                (26.0, lay.y_far - 2.5, 0),
                (2.0, lay.y_far - 2.5, 0),
            ],
            ["street_vending"],
            20.0,
        ),
        ZoneSpec(
            "shopfront-north",
            [(2.0, lay.y_far - 2.5, 0), (26.0, lay.y_far - 2.5, 0), (26.0, lay.y_far, 0), (2.0, lay.y_far, 0)],
            ["storefront_overflow"],
            20.0,
        ),
    ]
    return Clip(
        "street_day",
        "解放东路 商业街 (demo)",
        "demo-street-day",
        "2026-11-27T09:00:00+08:00",
        60.0,
        sc,
        statics,
        movers,
        zones,
    )


def clip_residential_day(seed: int = 7101) -> Clip:
    """A residential street: a steel-roof shed stands against a wall throughout, laundry is hung out."""
    sc = _scene(
        seed,
        night=False,
        road_w=7.0,
        walk_far=6.0,
        walk_near=2.5,
        cam_pos=(0.0, -5.0, 7.0),
        target=(9.0, 6.0, 2.0),
        hfov=60,
    )
    rng = np.random.default_rng(seed + 1)
    lay = sc.lay
    pavement = [(0.0, lay.road_w / 2, 0.0), (24.0, lay.road_w / 2, 0.0), (24.0, lay.y_far, 0.0), (0.0, lay.y_far, 0.0)]
    # Laundry is judged by its box centre, which hangs above the ground: the zone climbs the facade too.
    street_face = [*pavement[:3], (24.0, lay.y_far, 9.0), (0.0, lay.y_far, 9.0), (0.0, lay.y_far, 0.0)]
    # Structures take longer to judge than laundry: a second zone on the same pavement with its own dwell.
    zones = [
        ZoneSpec("pavement-north", street_face, ["hanging_laundry"], 20.0),
        ZoneSpec("pavement-north-structures", pavement, ["illegal_structure"], 25.0),
    ]
    statics = _lamps(sc, [-2.0, 24.0], rng) + _street_furniture(sc, rng, 1.0, 26.0)
    sc.render_background()
    shed = structures.shed(np.random.default_rng(seed + 2), Frame((14.0, lay.y_far - 1.6, 0), 0.0), against_wall=True)
    statics.append(Static(shed, 0.0, None, ("illegal_structure", "pavement-north-structures"), (14.0, lay.y_far - 1.6)))
    p0 = np.array([4.0, lay.y_far - 2.6, 1.9])
    p1 = np.array([8.5, lay.y_far - 2.4, 1.9])
    laundry = laundry_line(np.random.default_rng(seed + 3), p0, p1, poles=True, sag=0.12)
    statics.append(
        Static(
            laundry,
            12.0,
            None,
            ("hanging_laundry", "pavement-north"),
            (float((p0[0] + p1[0]) / 2), float((p0[1] + p1[1]) / 2)),
        )
    )
    movers: list[Mover] = []
    for i in range(10):
        t0 = float(rng.uniform(-20, 55))
        y = (
            float(rng.uniform(lay.road_w / 2 + 0.6, lay.road_w / 2 + 2.0))
            if i % 2
            else float(rng.uniform(lay.y_near + 0.4, -lay.road_w / 2 - 0.4))
        )
        a, b = (-8.0, 30.0) if rng.random() < 0.5 else (30.0, -8.0)
        movers.append(walker(rng, (a, y), (b, y), t0, float(rng.uniform(1.0, 1.4)), umbrella=i == 3))
    for _ in range(5):
        t0 = float(rng.uniform(-5, 58))
        movers.append(driver(rng, -lay.road_w / 4, -30.0, 55.0, t0, float(rng.uniform(5, 8))))
    return Clip(
        "residential_day",
        "长江路 住宅街 (demo)",
        "demo-residential-day",
        "2026-11-27T10:30:00+08:00",
        60.0,
        sc,
        statics,
        movers,
        zones,
    )


def clip_night_market(seed: int = 7201) -> Clip:
    """A night market inside its permitted hours (no alert) and a cart passing through (no alert)."""
    sc = _scene(
        seed,
        night=True,
        road_w=8.0,
        walk_far=5.0,
        walk_near=3.0,
        cam_pos=(-1.0, -6.0, 6.0),
        target=(10.0, 5.0, 0.5),
        hfov=64,
    )
    rng = np.random.default_rng(seed + 1)
    lay = sc.lay
    statics = _lamps(sc, [2.0, 12.0, 22.0], rng) + _street_furniture(sc, rng, 3.0, 26.0)
    sc.render_background()
    yk = lay.road_w / 2 + 1.2
    builders: list[Callable[[np.random.Generator, Frame], Obj]] = [
        stalls.awning_stall,
        stalls.umbrella_stall,
        stalls.awning_stall,
    ]
    for i, (x, build) in enumerate(zip((5.0, 10.0, 15.0), builders, strict=True)):
        stall = build(np.random.default_rng(seed + 10 + i), Frame((x, yk, 0), 0.0))
        statics.append(Static(stall, 0.0, None))  # legal: inside the allowed window
        statics.append(
            Static(distractors.person(np.random.default_rng(seed + 20 + i), Frame((x + 0.3, yk + 1.2, 0), math.pi)))
        )
    movers: list[Mover] = []
    cart = stalls.vendor_cart(np.random.default_rng(seed + 4), Frame((0, 0, 0), 0.0))
    movers.append(
        Mover([cart], np.array([-4.0, -lay.road_w / 2 + 0.9, 0.0]), np.array([0.6, 0.0, 0.0]), 10.0, 10.0 + 36 / 0.6)
    )
    for i in range(16):
        t0 = float(rng.uniform(-20, 55))
        y = (
            float(rng.uniform(lay.road_w / 2 + 2.4, lay.y_far - 0.5))
            if i % 3
            else float(rng.uniform(lay.y_near + 0.4, -lay.road_w / 2 - 0.4))
        )
        a, b = (-8.0, 30.0) if rng.random() < 0.5 else (30.0, -8.0)
        movers.append(walker(rng, (a, y), (b, y), t0, float(rng.uniform(0.8, 1.3))))
    zones = [
        ZoneSpec(
            "night-market",
            [(2.0, lay.road_w / 2, 0), (18.0, lay.road_w / 2, 0), (18.0, lay.y_far, 0), (2.0, lay.y_far, 0)],
            ["street_vending"],
            20.0,
            [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "18:00", "to": "22:00"}],
        ),
        ZoneSpec(
            "roadside-south",
            [(0.0, -lay.road_w / 2, 0), (30.0, -lay.road_w / 2, 0), (30.0, 0.0, 0), (0.0, 0.0, 0)],
            ["street_vending"],
            20.0,
        ),
    ]
    return Clip(
        "night_market",
        "湖南路 夜市 (demo)",
        "demo-night-market",
        "2026-11-27T19:30:00+08:00",
        60.0,
        sc,
        statics,
        movers,
        zones,
    )


CLIPS: dict[str, Callable[[], Clip]] = {
    "street_day": clip_street_day,
    "residential_day": clip_residential_day,
    "night_market": clip_night_market,
}


# --- rendering and writing -----------------------------------------------------------------------------
def _grade(clip: Clip) -> Callable[[Image], Image]:
    """A fixed per-clip camera look (tone curve and colour gains) so frames match each other."""
    rng = np.random.default_rng(clip.scene.seed + 5)
    gains = np.array([rng.normal(1, 0.03), 1.0, rng.normal(1, 0.03)])
    gamma = rng.uniform(0.9, 1.1)
    x = np.arange(256) / 255.0
    luts = [np.clip(255 * np.power(x, gamma) * g, 0, 255).astype(np.uint8) for g in gains]
    lut = np.stack(luts, axis=1).reshape(256, 1, 3)

    def apply(img: Image) -> Image:
        return cv2.LUT(img, lut)

    return apply


def render_frame(clip: Clip, t: float, grade: Callable[[Image], Image], rng: np.random.Generator) -> Image:
    objs = [s.obj for s in clip.statics if s.present(t)]
    for m in clip.movers:
        o = m.at(t)
        if o is not None:
            objs.append(o)
    img, _, _ = clip.scene.render_objects(objs)
    img = grade(img)
    noise = rng.standard_normal(img.shape, dtype=np.float32) * 1.2
    img = cv2.add(img, noise, dtype=cv2.CV_8U)
    stamp = datetime.fromisoformat(clip.start_time) + timedelta(seconds=int(t))
    text = stamp.strftime("%Y-%m-%d %H:%M:%S")
    cv2.putText(img, text, (18, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (18, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(
        img,
        clip.camera_id.upper(),
        (WIDTH - 260, HEIGHT - 18),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.7,
        (255, 255, 255),
        2,
        cv2.LINE_AA,
    )
    return img


def write_video(clip: Clip, path: Path, *, crf: int = 30) -> int:
    import av

    grade = _grade(clip)
    rng = np.random.default_rng(clip.scene.seed + 9)
    n = round(clip.duration_s * FPS)
    tmp = path.with_name(path.stem + ".partial.mp4")  # readers never see a half-written clip
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.options = {
            "crf": str(crf),
            "preset": "medium",
            "g": str(GOP),
            "keyint_min": str(GOP),
            "sc_threshold": "0",
            "tune": "film",
        }
        for i in range(n):
            img = render_frame(clip, i / FPS, grade, rng)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return n


def camera_config(clip: Clip, video_name: str) -> dict[str, object]:
    cam = clip.scene.cam
    lay = clip.scene.lay
    # Ground control points: pavement and kerb corners in view, at known world positions.
    cands = [(x, y) for x in (2.0, 8.0, 14.0, 20.0) for y in (lay.y_far - 0.5, lay.road_w / 2, -lay.road_w / 2 + 1.0)]
    points = []
    for x, y in cands:
        uv, z = cam.project(np.array([[x, y, 0.0]]))
        u, v = uv[0]
        if z[0] > 1 and 5 <= u <= WIDTH - 5 and 5 <= v <= HEIGHT - 5:
            lon, lat = world_to_lonlat(x, y)
            points.append({"px": [round(float(u), 1), round(float(v), 1)], "lon": lon, "lat": lat})
    lon, lat = world_to_lonlat(float(cam.pos[0]), float(cam.pos[1]))
    zones = []
    for zone in clip.zones:
        entry: dict[str, object] = {
            "name": zone.name,
            "polygon": clip.zone_polygon(zone),
            "relative": True,
            "categories": list(zone.categories),
            "dwell_s": zone.dwell_s,
        }
        if zone.allowed:
            entry["allowed"] = zone.allowed
        zones.append(entry)
    return {
        "id": clip.camera_id,
        "name": clip.title,
        "source": video_name,
        "timezone": "Asia/Shanghai",
        "location": {"lon": lon, "lat": lat},
        "view_radius_m": 40,
        "frame_size": [WIDTH, HEIGHT],
        "calibration": {"points": points},
        "grid": {"code": "320102001001", "team": "team-a"},
        "zones": zones,
    }


def truth(clip: Clip) -> dict[str, object]:
    incidents = []
    for s in clip.statics:
        if s.truth is None:
            continue
        category, zone = s.truth
        end = None if s.t1 is None or s.t1 >= clip.duration_s else float(s.t1)
        incidents.append(
            {
                "category": category,
                "zone": zone,
                "start_s": float(s.t0),
                "end_s": end,
                "lonlat": list(world_to_lonlat(*s.ground)) if s.ground else None,
            }
        )
    incidents.sort(key=lambda i: (float(i["start_s"]), str(i["zone"])))  # type: ignore[arg-type]
    return {"start_time": clip.start_time, "incidents": incidents}


def write_clip(name: str, out_dir: Path, *, video: bool = True) -> dict[str, Path]:
    clip = CLIPS[name]()
    out_dir.mkdir(parents=True, exist_ok=True)
    mp4 = out_dir / f"{name}.mp4"
    cfg = out_dir / f"{name}.camera.yaml"
    tru = out_dir / f"{name}.truth.json"
    if video:
        write_video(clip, mp4)
    header = (
        f"# Demo camera for {name}.mp4, generated by `python -m detector.training.clips`.\n"
        "# Short dwell_s so that incidents fire within the one-minute clip.\n"
    )
    cfg.write_text(
        header
        + yaml.safe_dump(
            camera_config(clip, mp4.name), sort_keys=False, allow_unicode=True, default_flow_style=None, width=120
        )
    )
    tru.write_text(json.dumps(truth(clip), indent=2, ensure_ascii=False) + "\n")
    return {"video": mp4, "camera": cfg, "truth": tru}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m detector.training.clips", description="Render the demo clips.")
    ap.add_argument("--out", type=Path, default=Path("sample_videos"))
    ap.add_argument("--only", choices=sorted(CLIPS), action="append", help="render only these clips")
    ap.add_argument("--no-video", action="store_true", help="write configs and truth files only")
    args = ap.parse_args(argv)
    for name in args.only or list(CLIPS):
        paths = write_clip(name, args.out, video=not args.no_video)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in paths.values() if p.exists())
        print(f"{name}: {sizes}", flush=True)


if __name__ == "__main__":
    main()
