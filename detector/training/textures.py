"""Texture bank for the scene renderer: real photographs bundled with scikit-image plus procedural noise.

Only files that ship inside the scikit-image wheel are read, straight from its data folder, so nothing
can trigger pooch's download path. Everything here is built once per process from fixed seeds, so the
renders stay deterministic given the scene seed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[Any]  # uint8 BGR; cv2 stubs return loosely typed arrays
FloatImage = npt.NDArray[Any]

# Photographs that ship inside the scikit-image wheel (no download): outdoor/indoor scenes and objects,
# used as skins for goods, cloth prints, posters and shop-window contents.
_COLOUR_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "color.png",
    "ihc.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
)
# Grey real textures: materials for walls, pavements, roofs and foliage.
_GREY_TEXTURES = (
    "brick.png",
    "gravel.png",
    "grass.png",
    "moon.png",
    "camera.png",
    "coins.png",
    "text.png",
    "page.png",
    "clock_motion.png",
)


def _skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


@cache
def photo(name: str) -> Image:
    """A bundled scikit-image photograph as BGR uint8 (grey ones converted to 3 channels)."""
    path = _skimage_data_dir() / name
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:  # pragma: no cover - a broken scikit-image install; fall back to noise
        rng = np.random.default_rng(abs(hash(name)) % 2**32)
        return cv2.cvtColor(fractal_noise(rng, 256, 256), cv2.COLOR_GRAY2BGR)
    return img


@cache
def grey(name: str) -> Image:
    """A bundled grey texture, contrast-normalised to mean 128 (multiplicative detail)."""
    img = cv2.cvtColor(photo(name), cv2.COLOR_BGR2GRAY).astype(np.float32)
    img = (img - img.mean()) / (img.std() + 1e-6) * 40.0 + 128.0
    return np.clip(img, 0, 255).astype(np.uint8)


def colour_photos() -> tuple[str, ...]:
    return _COLOUR_PHOTOS


def fractal_noise(
    rng: np.random.Generator, h: int, w: int, octaves: int = 5, base: int = 4, persistence: float = 0.55
) -> Image:
    """Perlin-style fractal value noise in 0..255 (sum of smoothly upsampled random grids)."""
    acc = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base * 2**o
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        acc += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    acc /= total
    acc = (acc - acc.min()) / (np.ptp(acc) + 1e-6)
    return (acc * 255).astype(np.uint8)


@cache
def noise_bank() -> tuple[Image, ...]:
    """A fixed set of noise tiles (deterministic) for stains, dirt and cloth wrinkles."""
    rng = np.random.default_rng(12345)
    tiles = [fractal_noise(rng, 256, 256, octaves=5, base=b) for b in (2, 3, 4, 6, 8, 12)]
    return tuple(tiles)


def crop(rng: np.random.Generator, img: Image, h: int, w: int) -> Image:
    """A random crop of size (h, w), resizing the source first if it is smaller."""
    ih, iw = img.shape[:2]
    if ih < h or iw < w:
        s = max(h / ih, w / iw) * 1.01
        img = cv2.resize(img, (int(iw * s) + 1, int(ih * s) + 1), interpolation=cv2.INTER_LINEAR)
        ih, iw = img.shape[:2]
    y = int(rng.integers(0, ih - h + 1))
    x = int(rng.integers(0, iw - w + 1))
    return img[y : y + h, x : x + w]


def tint(detail: Image, colour: tuple[float, float, float], strength: float = 1.0) -> Image:
    """Colour a grey detail texture (mean 128) with a BGR colour; strength scales the detail contrast."""
    d = cv2.convertScaleAbs(detail, alpha=strength, beta=128.0 * (1.0 - strength))
    c = (float(colour[0]) / 128.0, float(colour[1]) / 128.0, float(colour[2]) / 128.0, 0.0)
    return cv2.multiply(cv2.merge([d, d, d]), c)  # type: ignore[call-overload]


def solid(h: int, w: int, colour: tuple[float, ...]) -> Image:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.asarray(colour[:3], np.float64).clip(0, 255).astype(np.uint8)
    return img


def random_grey_detail(
    rng: np.random.Generator, h: int, w: int, names: tuple[str, ...] | None = None, scale: float = 1.0
) -> Image:
    """A crop of a grey real texture or noise tile, resampled by ``scale`` (texels per source pixel)."""
    pool = names or ("brick.png", "gravel.png", "grass.png", "moon.png")
    src_h = max(2, int(h / scale))
    src_w = max(2, int(w / scale))
    name = pool[int(rng.integers(len(pool)))]
    c = crop(rng, grey(name), min(src_h, 512), min(src_w, 512))
    return cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR)


def random_noise_detail(rng: np.random.Generator, h: int, w: int, contrast: float = 0.5) -> Image:
    tile = noise_bank()[int(rng.integers(len(noise_bank())))]
    c = crop(rng, tile, min(h, 256), min(w, 256))
    c = cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.clip((c - 128.0) * contrast + 128.0, 0, 255).astype(np.uint8)


def random_photo_patch(rng: np.random.Generator, h: int, w: int) -> Image:
    """A crop of a bundled colour photograph (goods, prints, posters)."""
    name = _COLOUR_PHOTOS[int(rng.integers(len(_COLOUR_PHOTOS)))]
    src = photo(name)
    frac = rng.uniform(0.15, 0.6)
    ch = max(4, int(src.shape[0] * frac))
    cw = max(4, int(ch * w / max(h, 1)))
    cw = min(cw, src.shape[1])
    c = crop(rng, src, ch, cw)
    return cv2.resize(c, (max(1, w), max(1, h)), interpolation=cv2.INTER_LINEAR)


def stripes(h: int, w: int, c1: tuple[float, ...], c2: tuple[float, ...], period: int, vertical: bool = True) -> Image:
    idx = np.arange(w if vertical else h) // max(1, period // 2) % 2
    row = np.where(idx[:, None] == 0, np.asarray(c1[:3]), np.asarray(c2[:3])).astype(np.uint8)
    if vertical:
        return np.broadcast_to(row[None, :, :], (h, w, 3)).copy()
    return np.broadcast_to(row[:, None, :], (h, w, 3)).copy()


def checks(h: int, w: int, c1: tuple[float, ...], c2: tuple[float, ...], period: int) -> Image:
    yy = np.arange(h)[:, None] // max(1, period // 2)
    xx = np.arange(w)[None, :] // max(1, period // 2)
    m = ((yy + xx) % 2 == 0)[..., None]
    base = np.where(m, np.asarray(c1[:3]), np.asarray(c2[:3])).astype(np.float32)
    # Plaid: blend a second band pattern over the checks.
    band = (((yy % 3) == 0) | ((xx % 3) == 0))[..., None]
    out = np.where(band, base * 0.8, base)
    return out.astype(np.uint8)


def corrugated(h: int, w: int, colour: tuple[float, ...], period: int, vertical: bool = True) -> Image:
    """Corrugated steel sheet: sinusoidal shading bands."""
    n = w if vertical else h
    phase = np.sin(np.arange(n) * 2 * np.pi / max(2, period)) * 0.22 + 0.95
    c = np.asarray(colour[:3], np.float32)
    row = np.clip(phase[:, None] * c[None, :], 0, 255).astype(np.uint8)
    if vertical:
        return np.broadcast_to(row[None, :, :], (h, w, 3)).copy()
    return np.broadcast_to(row[:, None, :], (h, w, 3)).copy()


def modulate(img: Image, detail: Image, strength: float) -> Image:
    """Multiply an image by a grey detail texture (mean 128) with the given strength."""
    # 8-bit lookup of the factor keeps this cheap: out = img * (1 + (detail - 128) / 128 * strength).
    d = cv2.convertScaleAbs(detail, alpha=strength, beta=128.0 * (1.0 - strength))
    return cv2.multiply(img, cv2.merge([d, d, d]), scale=1.0 / 128.0)
