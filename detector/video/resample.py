"""Frames made small for the cheap per-frame checks (the stationary-object finder, the view check)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt


def shrink(image: npt.NDArray[Any], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """``image`` area-averaged to ``size`` (width, height).

    A frame 4 or more times larger is first resized bilinearly to twice the size: area-averaging 1080p
    straight to 320 px took 4 ms, this under 1 ms, for a copy within a grey level of it on average (less
    than the sensor noise the checks tolerate anyway).
    """
    width, height = size
    if image.shape[1] >= 4 * width and image.shape[0] >= 4 * height:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
