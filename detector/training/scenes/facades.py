"""Building faces: the facade texture (wall material, windows, curtains, shop fronts and signs), roof
textures, and the 3-D balconies hung on facades."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detector.training import textures as tx
from detector.training.geometry import Image, Obj, line
from detector.training.objects.common import Rng, cloth_texture, dull, goods_texture, hsv, jitter, sign_texture
from detector.training.scenes.layout import Block
from detector.training.scenes.light import Look


def facade_texture(rng: Rng, b: Block, ppm: float, look: Look, lit_frac: float) -> Image:
    """Facade image (top row = roof line): wall material, windows with curtains, shop fronts and signs."""
    W, H = b.x1 - b.x0, b.height
    w, h = max(4, round(W * ppm)), max(4, round(H * ppm))
    r = rng.random()
    if r < 0.3:  # ceramic tiles, the commonest Chinese facade
        c = hsv(rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.2), rng.uniform(0.7, 0.95))
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
            hsv(rng.uniform(0.0, 0.07), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.7))
            if rng.random() < 0.7
            else (rng.uniform(110, 170),) * 3
        )
        detail = tx.random_grey_detail(rng, h, w, ("brick.png",), scale=max(ppm / 130.0, 0.03))
        img = tx.tint(detail, c, 0.9)  # type: ignore[arg-type]
    elif r < 0.85:  # paint / plaster
        c = hsv(rng.random(), rng.uniform(0.05, 0.45), rng.uniform(0.5, 0.9))
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
        ccol = np.array([hsv(hh, 0.5, 0.7) for hh in hues], np.float32).reshape(nf, nb, 3)
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
                sign = sign_texture(rng, sy1 - sy0, x1 - x0)
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
                        interior = goods_texture(rng, oh, ow)
                        for k in range(1, int(rng.integers(2, 5))):
                            yy = int(oh * k / 4)
                            cv2.line(interior, (0, yy), (ow, yy), (60, 60, 60), max(1, int(0.05 * ppm)))
                    elif pick < 0.75:  # a photograph (posters, displays, the room behind)
                        interior = tx.random_photo_patch(rng, oh, ow)
                    else:  # a dim room
                        interior = tx.tint(tx.random_noise_detail(rng, oh, ow, 0.8), dull(rng), 0.6)
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
                                interior[iy : iy + ih, ix : ix + iw] = cloth_texture(rng, ih, iw, folds=False)
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


def roof_texture(rng: Rng, w: int, h: int) -> Image:
    g = rng.uniform(90, 170)
    c = (g, g, g * rng.uniform(0.95, 1.05)) if rng.random() < 0.7 else hsv(rng.uniform(0.0, 0.1), 0.3, g / 255)
    img = tx.tint(tx.random_grey_detail(rng, h, w, ("gravel.png", "moon.png"), scale=0.5), c, 0.6)
    return tx.modulate(img, tx.random_noise_detail(rng, h, w, 0.8), 0.3)


def balcony(rng: Rng, b: Block, s: float, zf: float, bw: float) -> Obj:
    """An open balcony: slab, railing panel or bars (distractor, and a support for laundry)."""
    depth = 1.1
    fr = b.frame(s)
    c = (rng.uniform(170, 230),) * 3 if rng.random() < 0.6 else dull(rng)
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
                jitter(c, rng, 20),
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
                    jitter(c, rng, 25),
                )
            )  # type: ignore[arg-type]
    else:
        rail = (60, 60, 60) if rng.random() < 0.5 else (200, 200, 200)
        parts.append(line([fr.p(-bw / 2, -depth, zf + 1.05), fr.p(bw / 2, -depth, zf + 1.05)], 0.04, rail))
        for k in range(int(bw / 0.25) + 1):
            uu = -bw / 2 + k * 0.25
            parts.append(line([fr.p(uu, -depth, zf), fr.p(uu, -depth, zf + 1.05)], 0.015, rail))
    return Obj(-1, parts, fr.p(0, -depth / 2, zf + 0.5), kind="balcony", shadow=False)
