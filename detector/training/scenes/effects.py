"""Camera artefacts: what a real CCTV pipeline does to a picture (rain streaks, white balance, vignetting,
blur, sensor noise, on-screen timestamps, JPEG)."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detector.training.geometry import Image
from detector.training.objects.common import Rng
from detector.training.scenes.light import Look


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
