"""Placing objects where they occur in real streets: stalls on pavements and kerbs, laundry at windows,
balconies, lanes and roofs, structures in lots, on roofs and against walls, and the distractors around them."""

from __future__ import annotations

import math

import numpy as np

from detector.training.geometry import F64, Obj, line
from detector.training.objects import distractors, laundry, stalls, structures
from detector.training.objects.common import Frame, Rng
from detector.training.scenes.facades import balcony
from detector.training.scenes.layout import Block
from detector.training.scenes.scene import Scene


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


def visible_blocks(scene: Scene, pl: Placer) -> list[Block]:
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
    builder = stalls.STALL_BUILDERS[int(rng.integers(len(stalls.STALL_BUILDERS)))]
    if builder is stalls.shop_goods or (r < 0.25 and builder is not stalls.vendor_cart):
        where = "wall"
    elif r < 0.7:
        where = "kerb"
    else:
        where = "any"
    if lay.lane:
        where = "any"
    length, depth = 2.5, 1.6
    if (builder in (stalls.vendor_cart, stalls.tricycle_cart)) and rng.random() < 0.3 and not lay.lane:
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
        if builder not in (stalls.vendor_cart, stalls.tricycle_cart) or rng.random() < 0.5
        else rng.uniform(-0.4, 0.4) + (math.pi if rng.random() < 0.5 else 0.0)
    )
    if not pl.ok_on_screen(np.array([x, y, 1.0]), 2.0, 18):
        return None
    o = builder(rng, Frame((x, y, 0.0), yaw))
    pl.take(x - length / 2, x + length / 2, y - depth / 2, y + depth / 2)
    # A vendor tends the stall.
    if rng.random() < 0.6:
        vf = Frame((x + rng.uniform(-1, 1), y + side * rng.uniform(0.7, 1.2), 0.0), yaw + math.pi + rng.normal(0, 0.4))
        o.meta["vendor"] = distractors.person(rng, vf, umbrella=False, sitting=rng.random() < 0.4)
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
            return laundry.laundry_pole(rng, base, direction, rng.uniform(1.2, 2.5))
        p0 = b.facade_point(s - ww / 2 - 0.2, sill + wh + 0.1, rng.uniform(0.25, 0.5))
        p1 = b.facade_point(s + ww / 2 + 0.2 + rng.uniform(0, 1.0), sill + wh + 0.1, rng.uniform(0.25, 0.5))
        return laundry.laundry_line(rng, p0, p1, sag=0.02, allow_sheet=rng.random() < 0.3)
    if r < 0.55 and bals:  # balcony: over the rail or on a line inside above it
        b, (s, zf, bw) = bals[int(rng.integers(len(bals)))]
        p0 = b.facade_point(s - bw / 2 + 0.1, zf + 1.05, 1.1)
        p1 = b.facade_point(s + bw / 2 - 0.1, zf + 1.05, 1.1)
        if not pl.ok_on_screen((p0 + p1) / 2, 1.0, 14):
            return None
        if rng.random() < 0.5:
            return laundry.draped_rail(rng, p0, p1)
        z = zf + rng.uniform(1.9, 2.4)
        return laundry.laundry_line(
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
        return laundry.laundry_line(rng, p0, p1)
    if r < 0.8 and lay.gaps:  # across an alley/lot between two blocks
        side, gx0, gx1, gd = lay.gaps[int(rng.integers(len(lay.gaps)))]
        y = (lay.y_far if side > 0 else lay.y_near) + side * rng.uniform(0.5, min(gd, 6))
        z = rng.uniform(2.0, 5.0)
        p0, p1 = np.array([gx0, y, z]), np.array([gx1, y + rng.normal(0, 0.5), z + rng.normal(0, 0.2)])
        if not pl.ok_on_screen((p0 + p1) / 2, 1.0, 14):
            return None
        return laundry.laundry_line(rng, p0, p1)
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
            o = laundry.laundry_line(rng, p0, p1, poles=False)
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
        return laundry.drying_rack(rng, Frame((x, y, 0), rng.normal(0, 0.3)))
    if kind < 0.75:
        length = rng.uniform(2.5, 6.0)
        z = rng.uniform(1.6, 2.1)
        ang = rng.normal(0, 0.2)
        d = np.array([math.cos(ang), math.sin(ang), 0.0]) * length / 2
        c = np.array([x, y, z])
        return laundry.laundry_line(rng, c - d, c + d, poles=True)
    # Fence/railing along the kerb with quilts draped over it.
    length = rng.uniform(2.0, 5.0)
    yk = side * (lay.road_w / 2 + 0.4)
    p0, p1 = np.array([x - length / 2, yk, 1.0]), np.array([x + length / 2, yk, 1.0])
    o = laundry.draped_rail(rng, p0, p1)
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
        builder = (
            structures.shed
            if rng.random() < 0.6
            else (structures.enclosure if rng.random() < 0.5 else structures.scaffold_frame)
        )
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
                return structures.shed(rng, Frame(p, 0.0 if b.side > 0 else math.pi), on_roof=True)
            return structures.scaffold_frame(rng, Frame(p, 0.0 if b.side > 0 else math.pi))
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
        o = structures.canopy_addon(rng, fr, length)
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
        o = structures.shed(rng, fr, against_wall=True)
    elif k < 0.8:
        o = structures.enclosure(rng, fr)
    else:
        o = structures.scaffold_frame(rng, fr)
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
                    objs.append(distractors.tree(rng, Frame((x, yk, 0), 0)))
                    pl.take(x - 0.6, x + 0.6, yk - 0.6, yk + 0.6)
                x += step
        if not lay.lane and rng.random() < 0.8:
            step = rng.uniform(18, 32)
            x = pl.vx0 + rng.uniform(0, step)
            yl = side * (lay.road_w / 2 + 0.5)
            while x < pl.vx1 + 5:
                lamp = distractors.street_lamp(rng, Frame((x, yl, 0), 0.0 if side > 0 else math.pi), lit=look.night)
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
                objs.append(distractors.car(rng, Frame((x, y, 0), (0.0 if y < 0 else math.pi) + rng.normal(0, 0.03))))
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
                distractors.scooter(
                    rng, Frame((x - n * 0.35 + k * 0.7, y, 0), math.pi / 2 + rng.normal(0, 0.15)), bicycle=bike
                )
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
        objs.append(distractors.person(rng, Frame((x, y, 0), rng.uniform(0, 2 * math.pi)), umbrella=um))
    # Street furniture.
    furniture = [
        (distractors.bench, 0.3),
        (distractors.bin_box, 0.5),
        (distractors.cabinet, 0.3),
        (distractors.planter, 0.3),
        (distractors.street_sign, 0.5),
        (distractors.a_frame_sign, 0.4),
        (distractors.cone, 0.25),
        (distractors.bus_shelter, 0.2 * boost),
    ]
    for builder, p in furniture:
        for _ in range(int(rng.integers(1, 3))):
            if rng.random() > p:
                continue
            side = _side_choice(scene, rng)
            ln = 4.0 if builder is distractors.bus_shelter else 1.2
            spot = pl.walk_spot(
                side,
                ln,
                1.0 if builder is not distractors.bus_shelter else 1.8,
                "kerb" if builder in (distractors.bus_shelter, distractors.street_sign, distractors.cone) else "any",
            )
            if spot is None:
                continue
            x, y = spot
            pl.take(x - ln / 2, x + ln / 2, y - 0.5, y + 0.5)
            objs.append(builder(rng, Frame((x, y, 0), _facing(side, rng, 0.1))))
    if not lay.lane and rng.random() < 0.3:
        side = _side_choice(scene, rng)
        x = pl.x()
        objs.append(
            distractors.bollard_row(rng, Frame((x, side * (lay.road_w / 2 + 0.45), 0), 0), int(rng.integers(3, 10)))
        )
    return objs


def place_distractors_facades(
    scene: Scene, pl: Placer, rng: Rng, blocks: list[Block], negatives_only: bool
) -> list[Obj]:
    """Facade-mounted distractors, known only once the facades are drawn."""
    boost = 1.6 if negatives_only else 1.0
    objs: list[Obj] = []
    for b in blocks:
        for s0, s1 in b.shops:
            if rng.random() < 0.35 * boost:
                objs.append(distractors.legal_awning(rng, b.frame((s0 + s1) / 2), (s1 - s0) * rng.uniform(0.6, 0.95)))
        for s, sill, ww, _wh in b.windows:
            if rng.random() < 0.2:
                objs.append(distractors.ac_unit(rng, b.frame(s + ww / 2 + 0.5, 0.0, sill - 0.2)))
        for s, zf, bw in b.balconies:
            objs.append(balcony(rng, b, s, zf, bw))
        if rng.random() < 0.12 * boost and b.height > 6:
            objs.append(
                distractors.banner(
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
        objs.append(distractors.flags(rng, fr, rng.uniform(6, 15), rng.uniform(3, 5)))
    return objs
