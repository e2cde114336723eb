"""Small H.264 clips of a fixed camera: a textured still scene with sensor noise, where boxes appear,
leave or move at chosen times (for the frame-skip and prefetch tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Thing:
    """A flat box of ``grey`` shown from ``start`` (inclusive) to ``end`` (exclusive) seconds."""

    box: Box | Callable[[float], Box]
    start: float = 0.0
    end: float = float("inf")
    grey: int = 30

    def at(self, t: float) -> Box | None:
        if not self.start <= t < self.end:
            return None
        return self.box(t) if callable(self.box) else self.box


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A street-like texture: smooth blotches plus fixed fine detail, mid grey on average."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(70, 190, size=(max(2, height // 24), max(2, width // 24), 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image += rng.integers(-20, 21, size=image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def scene_video(
    path: Path,
    *,
    seconds: float,
    things: Sequence[Thing] = (),
    fps: int = 5,
    gop: int = 10,
    size: tuple[int, int] = (640, 360),
    noise: float = 2.0,
    seed: int = 0,
) -> Path:
    """Encode the scene with libx264, a key frame exactly every ``gop`` frames (no scene-cut key frames)."""
    import av

    width, height = size
    base = background(width, height, seed).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    # A few noise fields used in turn: temporal noise like a sensor's, at a fraction of the cost.
    noise_fields = [rng.normal(0.0, noise, base.shape).astype(np.float32) for _ in range(7)]
    with av.open(str(path), mode="w") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "preset": "ultrafast"}
        for index in range(round(seconds * fps)):
            t = index / fps
            image = base + noise_fields[index % len(noise_fields)]
            for thing in things:
                box = thing.at(t)
                if box is not None:
                    x1, y1, x2, y2 = box
                    image[y1:y2, x1:x2] = thing.grey
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


LOWER_HALF = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]


def camera_yaml(
    path: Path,
    *,
    dwell_s: float | None = None,
    polygon: list[list[float]] | None = None,
    max_gap_s: float | None = None,
) -> Path:
    """A camera whose one street-vending zone is the lower half of the frame (default dwell unless given)."""
    zone: dict[str, Any] = {
        "name": "sidewalk",
        "polygon": polygon or LOWER_HALF,
        "relative": True,
        "categories": ["street_vending"],
    }
    if dwell_s is not None:
        zone["dwell_s"] = dwell_s
    config = {
        "id": "cam-skip-01",
        "name": "frame-skip test camera",
        "source": "clip.mp4",
        "timezone": "Asia/Shanghai",
        "location": {"lon": 118.7969, "lat": 32.0603},
        "grid": {"code": "320102001001", "team": "team-a"},
        "zones": [zone],
    }
    if max_gap_s is not None:
        config["max_gap_s"] = max_gap_s
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
