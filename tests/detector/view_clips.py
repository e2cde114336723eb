"""Clips whose view changes part-way, for the view-check tests (issue #26): frames of a real or rendered clip,
looped, altered with OpenCV from the middle of the timeline (shifted, turned, covered, blurred) and back."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Alteration = Callable[[Image], Image]


def shift(fraction: float) -> Alteration:
    def apply(image: Image) -> Image:
        h, w = image.shape[:2]
        matrix = np.array([[1, 0, fraction * w], [0, 1, 0]], dtype=np.float32)
        return np.asarray(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)

    return apply


def rotate(degrees: float) -> Alteration:
    def apply(image: Image) -> Image:
        h, w = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        return np.asarray(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)

    return apply


def cover(fraction: float) -> Alteration:
    """Something dark and close to the lens over the left ``fraction`` of the view: out of focus (smooth
    shading), with the sensor's noise on it."""

    def apply(image: Image) -> Image:
        h, w = image.shape[:2]
        width = round(w * fraction)
        rng = np.random.default_rng(7)
        shading = cv2.GaussianBlur(rng.normal(50, 25, (h, width)).astype(np.float32), (0, 0), 25)
        patch = np.clip(shading + rng.normal(0, 2, (h, width)), 0, 255).astype(np.uint8)
        out = image.copy()
        out[:, :width] = patch[..., None]
        return out

    return apply


def blur(sigma: float) -> Alteration:
    def apply(image: Image) -> Image:
        return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.uint8)

    return apply


def gain(factor: float, image: Image) -> Image:
    return np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def frames(path: Path, step_s: float) -> list[Image]:
    """The clip's frames every ``step_s`` seconds."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    out: list[Image] = []
    index, due = 0, 0.0
    while capture.grab():
        if index / fps + 1e-6 >= due:
            ok, image = capture.retrieve()
            if ok:
                out.append(np.asarray(image, dtype=np.uint8))
            due += step_s
        index += 1
    capture.release()
    return out


@dataclass(frozen=True)
class Timeline:
    """The clip looped ``loops`` times; ``alteration`` applies over ``[change_s, undo_s)``; ``ramp`` scales
    the brightness over the whole timeline (dusk and back: 1 -> 0.45 -> 1.25)."""

    images: list[Image]
    step_s: float
    loops: int = 3
    alteration: Alteration | None = None
    ramp: bool = False

    @property
    def duration_s(self) -> float:
        return len(self.images) * self.loops * self.step_s

    @property
    def change_s(self) -> float:
        return self.duration_s / 2

    @property
    def undo_s(self) -> float:
        return self.change_s + 40.0

    def __iter__(self) -> Iterator[tuple[float, Image]]:
        total = len(self.images) * self.loops
        for i in range(total):
            t = i * self.step_s
            image = self.images[i % len(self.images)]
            if self.alteration is not None and self.change_s <= t < self.undo_s:
                image = self.alteration(image)
            if self.ramp:
                x = i / max(1, total - 1)
                factor = 1 - 1.1 * x if x < 0.5 else 0.45 + 1.6 * (x - 0.5)
                image = gain(factor, image)
            yield t, image


def shift_second_half(clip: Path, out: Path, *, half_s: float, shift_px: int) -> Path:
    """``clip`` with everything from ``half_s`` on shifted right by ``shift_px`` pixels (even: yuv420p), the
    uncovered strip black, as a camera knocked sideways records it (H.264, a key frame every second)."""
    filters = (
        f"[0:v]split[a][b];[a]trim=0:{half_s},setpts=PTS-STARTPTS[first];"
        f"[b]trim={half_s},setpts=PTS-STARTPTS,crop=iw-{shift_px}:ih:0:0,pad=iw+{shift_px}:ih:{shift_px}:0:black[second];"
        "[first][second]concat=n=2:v=1[out]"
    )
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-filter_complex", filters, "-map", "[out]",
         "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", str(out)],
        check=True,
        timeout=300,
    )  # fmt: skip
    return out
