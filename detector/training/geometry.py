"""Pinhole camera and a painter's-algorithm rasteriser for the scene renderer.

World frame: metres, X along the street, Y across it, Z up. Every drawn primitive also writes an
object id into an id buffer so that visibility and tight label boxes come from the final pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[Any]  # float64 by convention
Image = npt.NDArray[Any]  # uint8 BGR; cv2 stubs return loosely typed arrays
Vec = Sequence[float] | npt.NDArray[Any]  # a 3-vector
Pts = Sequence[Sequence[float]] | Sequence[npt.NDArray[Any]] | npt.NDArray[Any]  # N points
Colour = tuple[float, float, float]

NEAR = 0.15
_SHIFT = 4
_SCALE = float(1 << _SHIFT)


class Camera:
    """Pinhole camera from position, heading (yaw), downward pitch, roll and horizontal field of view."""

    def __init__(
        self, pos: Vec, yaw: float, pitch: float, roll: float, hfov_deg: float, width: int, height: int
    ) -> None:
        self.pos = np.asarray(pos, np.float64)
        self.width, self.height = width, height
        self.yaw, self.pitch, self.roll, self.hfov_deg = yaw, pitch, roll, hfov_deg
        fwd = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(fwd, right)
        cr, sr = math.cos(roll), math.sin(roll)
        right, down = cr * right + sr * down, -sr * right + cr * down
        self.R = np.stack([right, down, fwd])
        self.f = width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
        self.K = np.array([[self.f, 0, width / 2.0], [0, self.f, height / 2.0], [0, 0, 1.0]])
        self.fwd = fwd

    def to_cam(self, pts: F64) -> F64:
        return (pts - self.pos) @ self.R.T

    def project(self, pts: F64) -> tuple[F64, F64]:
        """Image coordinates (N,2) and camera depth (N,) of world points (N,3)."""
        pc = self.to_cam(pts)
        z = pc[:, 2]
        zs = np.where(z > 1e-6, z, 1e-6)
        uv = np.stack([self.f * pc[:, 0] / zs + self.width / 2.0, self.f * pc[:, 1] / zs + self.height / 2.0], axis=1)
        return uv, z

    def depth(self, p: Vec) -> float:
        return float(np.dot(np.asarray(p) - self.pos, self.fwd))

    def plane_h(self, origin: F64, a: F64, b: F64) -> F64:
        """Homography mapping plane parameters (s, t, 1) of origin + s*a + t*b to image pixels."""
        return self.K @ np.stack([self.R @ a, self.R @ b, self.R @ (origin - self.pos)], axis=1)

    def screen_extent(self, pts: F64) -> tuple[float, float, float, float] | None:
        """Pixel bbox of a convex world polygon after near-plane clipping (None if behind or off screen)."""
        cpc = clip_near(self.to_cam(pts))
        if len(cpc) < 2:
            return None
        u = self.f * cpc[:, 0] / cpc[:, 2] + self.width / 2.0
        v = self.f * cpc[:, 1] / cpc[:, 2] + self.height / 2.0
        x0, x1, y0, y1 = float(u.min()), float(u.max()), float(v.min()), float(v.max())
        if x1 < 0 or y1 < 0 or x0 > self.width or y0 > self.height:
            return None
        return x0, y0, x1, y1

    def ground_to_pixel(self, xy: F64) -> F64:
        pts = np.concatenate([np.asarray(xy, np.float64).reshape(-1, 2), np.zeros((len(xy), 1))], axis=1)
        return self.project(pts)[0]

    def pixel_to_ground(self, uv: F64) -> F64:
        """Intersect pixel rays with the ground plane Z=0."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        rays_c = np.stack(
            [(uv[:, 0] - self.width / 2) / self.f, (uv[:, 1] - self.height / 2) / self.f, np.ones(len(uv))], axis=1
        )
        rays = rays_c @ self.R
        t = -self.pos[2] / np.where(np.abs(rays[:, 2]) > 1e-9, rays[:, 2], -1e-9)
        return self.pos[None, :2] + t[:, None] * rays[:, :2]

    def horizon_y(self, u: float) -> float:
        """Image row of the horizon at column u (where rays become horizontal)."""
        # Ray direction in world: (u-cx)/f*right + (v-cy)/f*down + fwd; z component zero.
        r, d, fw = self.R[0], self.R[1], self.R[2]
        a = (u - self.width / 2) / self.f
        if abs(d[2]) < 1e-9:
            return -1e9
        return float(self.height / 2 + self.f * (-(a * r[2] + fw[2]) / d[2]))


def clip_near(pc: F64) -> F64:
    """Sutherland-Hodgman clip of a camera-space polygon against z >= NEAR."""
    inside = pc[:, 2] >= NEAR
    if inside.all():
        return pc
    if not inside.any():
        return pc[:0]
    out = []
    n = len(pc)
    for i in range(n):
        p, q = pc[i], pc[(i + 1) % n]
        pin, qin = p[2] >= NEAR, q[2] >= NEAR
        if pin:
            out.append(p)
        if pin != qin:
            t = (NEAR - p[2]) / (q[2] - p[2])
            out.append(p + t * (q - p))
    return np.array(out) if out else pc[:0]


@dataclass(slots=True)
class Part:
    """One primitive of an object: a polygon, a polyline (width in metres) or a disc (radius in metres)."""

    kind: str
    pts: F64
    colour: Colour
    width: float = 0.0
    tex: Image | None = None
    uv: F64 | None = None  # textured polygon: plane frame (origin, a, b) rows, and polygon in (s,t)
    emissive: bool = False
    shade: bool = True


@dataclass
class Obj:
    """A scene object: its parts, its class (-1: unlabelled), and where it stands for depth sorting."""

    cls: int
    parts: list[Part]
    anchor: F64
    kind: str = ""
    shadow: bool = True
    support: list[Part] = field(default_factory=list)  # drawn with the object but never part of its label
    meta: dict[str, object] = field(default_factory=dict)


def poly(pts: Pts, colour: Colour, **kw: object) -> Part:
    return Part("poly", np.asarray(pts, np.float64), colour, **kw)  # type: ignore[arg-type]


def line(pts: Pts, width: float, colour: Colour) -> Part:
    return Part("line", np.asarray(pts, np.float64), colour, width=width)


def disc(center: Vec, radius: float, colour: Colour) -> Part:
    return Part("disc", np.asarray(center, np.float64).reshape(1, 3), colour, width=radius)


def textured(
    origin: Vec,
    a: Vec,
    b: Vec,
    tex: Image,
    shape: Pts | None = None,
    colour: Colour = (255, 255, 255),
    emissive: bool = False,
) -> Part:
    """A texture on the plane origin + s*a + t*b (s, t in 0..1 span the texture), cut to ``shape`` (s,t)."""
    o, av, bv = (np.asarray(v, np.float64) for v in (origin, a, b))
    st = np.asarray(shape if shape is not None else [[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
    pts = o[None, :] + st[:, :1] * av[None, :] + st[:, 1:2] * bv[None, :]
    return Part("poly", pts, colour, tex=tex, uv=np.stack([o, av, bv]), emissive=emissive)


def box(
    center_bottom: Vec,
    size: Vec,
    colour: Colour,
    yaw: float = 0.0,
    top: Colour | None = None,
    faces: str = "all",
) -> list[Part]:
    """A box standing on ``center_bottom`` with (length, depth, height), rotated by yaw about Z."""
    cx, cy, cz = center_bottom
    lx, ly, lz = size[0] / 2, size[1] / 2, size[2]
    c, s = math.cos(yaw), math.sin(yaw)
    corners = []
    for dz in (0.0, lz):
        for dx, dy in ((-lx, -ly), (lx, -ly), (lx, ly), (-lx, ly)):
            corners.append((cx + c * dx - s * dy, cy + s * dx + c * dy, cz + dz))
    p = np.asarray(corners)
    quads = [(0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
    parts = [poly(p[list(q)], colour) for q in quads]
    if faces == "all":
        parts.append(poly(p[[4, 5, 6, 7]], top if top is not None else colour))
    return parts


class Painter:
    """Draws parts with flat shading, haze and night lights into an image and an id buffer."""

    def __init__(
        self,
        cam: Camera,
        img: Image,
        sun_dir: F64,
        sun: float,
        ambient: float,
        haze_colour: Colour,
        haze_density: float,
        lamps: list[tuple[F64, Colour, float]],
        sky_light: Colour = (1.0, 1.0, 1.0),
    ) -> None:
        self.cam = cam
        self.img = img
        self.ids: npt.NDArray[Any] = np.zeros(img.shape[:2], np.uint16)
        self.sun_dir = sun_dir / np.linalg.norm(sun_dir)
        self.sun = sun
        self.ambient = ambient
        self.haze_colour = np.asarray(haze_colour, np.float64)
        self.haze_density = haze_density
        self.lamps = lamps
        self.sky_light = np.asarray(sky_light, np.float64)
        self.shadow_factor = 1.0  # sun visibility for the object being drawn (building shadows)
        self.h, self.w = img.shape[:2]
        # Plain-float copies for the per-primitive lighting (numpy on 3-vectors is slow).
        self._campos = tuple(float(v) for v in cam.pos)
        self._sun = tuple(float(v) for v in self.sun_dir)
        self._sky = tuple(float(v) for v in self.sky_light)
        self._hc = tuple(float(v) for v in self.haze_colour)

    # --- lighting -----------------------------------------------------------------------------------
    def light(self, point: Vec, normal: Vec | None, emissive: bool = False) -> F64:
        """Per-channel light multiplier (BGR) at a point with a surface normal (None: diffuse object)."""
        if emissive:
            return np.ones(3)
        px, py, pz = float(point[0]), float(point[1]), float(point[2])
        if normal is None:
            ndl = 0.55
        else:
            nx, ny, nz = float(normal[0]), float(normal[1]), float(normal[2])
            norm = math.sqrt(nx * nx + ny * ny + nz * nz) + 1e-12
            cx, cy, cz = self._campos
            # Double-sided: face the camera.
            sgn = 1.0 if nx * (cx - px) + ny * (cy - py) + nz * (cz - pz) >= 0 else -1.0
            sx, sy, sz = self._sun
            ndl = max(0.0, sgn * (nx * sx + ny * sy + nz * sz) / norm)
            ndl = 0.15 + 0.85 * ndl
        k = self.ambient + self.sun * ndl * self.shadow_factor
        r0, r1, r2 = self._sky[0] * k, self._sky[1] * k, self._sky[2] * k
        for pos, col, power in self.lamps:
            d2 = (pos[0] - px) ** 2 + (pos[1] - py) ** 2 + (pos[2] - pz) ** 2
            w = power / (1.0 + d2 / 16.0)
            r0 += col[0] * w
            r1 += col[1] * w
            r2 += col[2] * w
        return np.array([r0, r1, r2])

    def haze(self, depth: float) -> float:
        return 1.0 - math.exp(-max(depth, 0.0) * self.haze_density)

    def finish_colour(self, colour: Colour, lit: F64, depth: float) -> tuple[float, float, float]:
        hz = self.haze(depth) if self.haze_density > 0 else 0.0
        hc = self._hc
        out = []
        for i in range(3):
            v = colour[i] * lit[i] * (1 - hz) + hc[i] * hz
            out.append(0.0 if v < 0 else (255.0 if v > 255 else v))
        return out[0], out[1], out[2]

    # --- primitives ---------------------------------------------------------------------------------
    def _fill(self, uv: F64, colour: tuple[float, float, float], oid: int) -> None:
        pts = np.clip(np.round(uv * _SCALE), -(2**30), 2**30).astype(np.int32)
        cv2.fillPoly(self.img, [pts], colour, cv2.LINE_AA, _SHIFT)
        cv2.fillPoly(self.ids, [pts], oid, cv2.LINE_8, _SHIFT)

    def draw_poly(self, part: Part, oid: int, pc: F64 | None = None, pre: tuple[F64, float, F64] | None = None) -> None:
        """Fill a polygon. ``pre`` carries (uv, mean depth, centre) computed in bulk by ``draw_parts``."""
        pts = part.pts
        if len(pts) < 3:
            return
        if pre is not None:
            uv, depth, centre = pre
        else:
            if pc is None:
                pc = self.cam.to_cam(pts)
            cpc = pc if pc[:, 2].min() >= NEAR else clip_near(pc)
            if len(cpc) < 3:
                return
            f = self.cam.f
            uv = np.empty((len(cpc), 2))
            uv[:, 0] = f * cpc[:, 0] / cpc[:, 2] + self.w / 2.0
            uv[:, 1] = f * cpc[:, 1] / cpc[:, 2] + self.h / 2.0
            x0, y0 = uv.min(axis=0)
            x1, y1 = uv.max(axis=0)
            if x1 < 0 or y1 < 0 or x0 >= self.w or y0 >= self.h:
                return
            depth = float(cpc[:, 2].mean())
            centre = pts.mean(axis=0)
        if part.emissive:
            lit = np.ones(3)
        else:
            p0, p1, pl = pts[0], pts[1], pts[-1]
            a0, a1, a2 = p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]
            b0, b1, b2 = pl[0] - p0[0], pl[1] - p0[1], pl[2] - p0[2]
            normal = (a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0)
            lit = self.light(centre, normal if part.shade else None)
        if part.tex is None or part.uv is None:
            self._fill(uv, self.finish_colour(part.colour, lit, depth), oid)
            return
        self._textured(part, uv, lit, depth, oid)

    def _textured(self, part: Part, uv: F64, lit: F64, depth: float, oid: int) -> None:
        assert part.tex is not None and part.uv is not None
        rx0 = max(math.floor(uv[:, 0].min()), 0)
        ry0 = max(math.floor(uv[:, 1].min()), 0)
        rx1 = min(math.ceil(uv[:, 0].max()) + 1, self.w)
        ry1 = min(math.ceil(uv[:, 1].max()) + 1, self.h)
        if rx1 - rx0 < 1 or ry1 - ry0 < 1:
            return
        tex = part.tex
        th, tw = tex.shape[:2]
        o, a, b = part.uv
        hmat = self.cam.plane_h(o, a, b) @ np.diag([1.0 / tw, 1.0 / th, 1.0])
        hmat = np.array([[1, 0, -rx0], [0, 1, -ry0], [0, 0, 1.0]]) @ hmat
        roi_w, roi_h = rx1 - rx0, ry1 - ry0
        warped = cv2.warpPerspective(tex, hmat, (roi_w, roi_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((roi_h, roi_w), np.uint8)
        pts = np.round((uv - [rx0, ry0]) * _SCALE).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_8, _SHIFT)
        colour = np.asarray(part.colour, np.float64) / 255.0 * lit
        hz = self.haze(depth)
        gain = colour * (1 - hz)
        off = self.haze_colour * hz
        if np.abs(gain - 1).max() > 0.01:
            warped = cv2.multiply(warped, (float(gain[0]), float(gain[1]), float(gain[2]), 0.0))  # type: ignore[call-overload]
        if off.max() > 0.5:
            warped = cv2.add(warped, (float(off[0]), float(off[1]), float(off[2]), 0.0))  # type: ignore[call-overload]
        m = mask > 0
        np.copyto(self.img[ry0:ry1, rx0:rx1], warped, where=m[..., None])
        self.ids[ry0:ry1, rx0:rx1][m] = oid

    def draw_line(self, part: Part, oid: int, pc: F64 | None = None) -> None:
        if pc is None:
            pc = self.cam.to_cam(part.pts)
        for i in range(len(pc) - 1):
            p, q = pc[i], pc[i + 1]
            if p[2] < NEAR and q[2] < NEAR:
                continue
            if p[2] < NEAR or q[2] < NEAR:
                t = (NEAR - p[2]) / (q[2] - p[2])
                r = p + t * (q - p)
                p, q = (r, q) if p[2] < NEAR else (p, r)
            zm = (p[2] + q[2]) / 2
            th = max(1, round(part.width * self.cam.f / zm))
            a = (self.cam.f * p[0] / p[2] + self.w / 2, self.cam.f * p[1] / p[2] + self.h / 2)
            b = (self.cam.f * q[0] / q[2] + self.w / 2, self.cam.f * q[1] / q[2] + self.h / 2)
            if max(abs(a[0]), abs(a[1]), abs(b[0]), abs(b[1])) > 1e6:
                continue
            mid = part.pts[i]
            col = self.finish_colour(part.colour, self.light(mid, None), float(zm))
            ia = (round(a[0] * _SCALE), round(a[1] * _SCALE))
            ib = (round(b[0] * _SCALE), round(b[1] * _SCALE))
            cv2.line(self.img, ia, ib, col, th, cv2.LINE_AA, _SHIFT)
            cv2.line(self.ids, ia, ib, oid, th, cv2.LINE_8, _SHIFT)

    def draw_disc(self, part: Part, oid: int, pc: F64 | None = None) -> None:
        if pc is None:
            pc = self.cam.to_cam(part.pts)
        z = pc[0, 2]
        if z < NEAR:
            return
        r = part.width * self.cam.f / z
        u = self.cam.f * pc[0, 0] / z + self.w / 2
        v = self.cam.f * pc[0, 1] / z + self.h / 2
        if u < -r or v < -r or u > self.w + r or v > self.h + r:
            return
        col = self.finish_colour(part.colour, self.light(part.pts[0], None, part.emissive), float(z))
        c = (round(u * _SCALE), round(v * _SCALE))
        rr = max(1, round(r * _SCALE))
        cv2.circle(self.img, c, rr, col, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(self.ids, c, rr, oid, -1, cv2.LINE_8, _SHIFT)

    def draw_parts(self, items: list[tuple[Part, int]]) -> None:
        """Draw (part, id) pairs far-to-near (painter's algorithm within one object).

        Projection, depth and screen bounds are computed for all parts at once: per-part numpy calls
        on 4-point arrays would dominate the render time.
        """
        if not items:
            return
        counts = np.fromiter((len(p.pts) for p, _ in items), np.int64, len(items))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        allpts = np.concatenate([p.pts for p, _ in items], axis=0)
        pc_all = self.cam.to_cam(allpts)
        z = pc_all[:, 2]
        zmean = np.add.reduceat(z, starts) / counts
        zmin = np.minimum.reduceat(z, starts)
        zs = np.where(z > NEAR, z, NEAR)
        u = self.cam.f * pc_all[:, 0] / zs + self.w / 2.0
        v = self.cam.f * pc_all[:, 1] / zs + self.h / 2.0
        umin, umax = np.minimum.reduceat(u, starts), np.maximum.reduceat(u, starts)
        vmin, vmax = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
        centres = np.add.reduceat(allpts, starts, axis=0) / counts[:, None]
        uv_all = np.stack([u, v], axis=1)
        order = np.argsort(
            -(zmean - np.fromiter((0.02 if p.kind == "disc" else 0.0 for p, _ in items), np.float64, len(items))),
            kind="stable",
        )
        w, h = self.w, self.h
        for i in order.tolist():
            part, oid = items[i]
            a, n = int(starts[i]), int(counts[i])
            pc = pc_all[a : a + n]
            if part.kind == "poly" and zmin[i] >= NEAR:
                if umax[i] < 0 or vmax[i] < 0 or umin[i] >= w or vmin[i] >= h or n < 3:
                    continue
                self.draw_poly(part, oid, pc, (uv_all[a : a + n], float(zmean[i]), centres[i]))
            else:
                self.draw_part(part, oid, pc)

    def draw_part(self, part: Part, oid: int, pc: F64 | None = None) -> None:
        if part.kind == "poly":
            self.draw_poly(part, oid, pc)
        elif part.kind == "line":
            self.draw_line(part, oid, pc)
        else:
            self.draw_disc(part, oid, pc)
