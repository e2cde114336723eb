"""A static street view and its rendering: lit background (sky, ground, buildings), objects with their
shadows, and labels read from the object-id buffer."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detector.training import textures as tx
from detector.training.geometry import F64, Camera, Image, Obj, Painter, Part, textured
from detector.training.objects.common import Rng
from detector.training.scenes.facades import facade_texture, roof_texture
from detector.training.scenes.ground import Ground, Materials
from detector.training.scenes.layout import Block, Layout
from detector.training.scenes.light import Look

MIN_VISIBLE = 0.35
MIN_SIDE_640 = 10.0
MAX_ASPECT = 10.0
MIN_FILL = 0.08
Label = tuple[int, float, float, float, float]


def _ppm_for(cam: Camera, nearest: float, cap: float = 40.0) -> float:
    return float(np.clip(cam.f / max(nearest, 1.0) * 0.9, 1.0, cap))


def _dist_to_box(cam: Camera, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> float:
    p = cam.pos
    dx = max(x0 - p[0], 0.0, p[0] - x1)
    dy = max(y0 - p[1], 0.0, p[1] - y1)
    dz = max(z0 - p[2], 0.0, p[2] - z1)
    return math.sqrt(dx * dx + dy * dy + dz * dz)


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
        facade = facade_texture(rng, b, ppm, look, self.lit_frac)
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
            roof = roof_texture(rng, rw, rh)
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
