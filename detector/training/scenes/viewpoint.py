"""Where the CCTV camera stands and looks: pole or wall mounts along, across or down onto the street,
phone-height close-ups and views up at balconies."""

from __future__ import annotations

import math

import numpy as np

from detector.training.geometry import Camera
from detector.training.objects.common import Rng
from detector.training.scenes.layout import Layout


def make_camera(rng: Rng, lay: Layout, width: int, height: int) -> Camera:
    """An elevated CCTV view: pole or wall mount, looking along, across or down onto the street."""
    view = rng.choice(["along", "across", "diag", "high", "close", "up"], p=[0.2, 0.2, 0.18, 0.12, 0.18, 0.12])
    if lay.lane:
        view = rng.choice(["along", "diag", "up"])
    y_cam = rng.uniform(lay.y_near + 0.8, max(lay.y_near + 1.0, min(lay.y_near + lay.walk_near, -lay.road_w / 4)))
    if view == "close":  # a phone or low camera a few metres from the far pavement: objects fill the frame
        y_cam = rng.uniform(-lay.road_w / 2, min(lay.road_w / 2, lay.y_far - 6.0))
        z_cam = rng.uniform(1.6, 5.0)
    elif view == "up":  # from the pavement looking up at balconies and windows
        y_cam = rng.uniform(lay.y_near + 0.5, min(lay.y_near + max(lay.walk_near, 0.6), 0.0))
        z_cam = rng.uniform(1.5, 4.0)
    elif view == "high":
        z_cam = rng.uniform(14, 35)
    elif lay.lane:
        z_cam = rng.uniform(3.0, 9.0)
    else:
        z_cam = rng.uniform(3.5, 14.0)
    x_cam = rng.uniform(-5, 5)
    if view == "along":
        target = np.array([x_cam + rng.uniform(18, 60), rng.uniform(lay.y_near, lay.y_far), rng.uniform(0, 4)])
    elif view == "across":
        target = np.array([x_cam + rng.uniform(-4, 8), lay.y_far - rng.uniform(0, 3), rng.uniform(0, 6)])
    elif view == "diag":
        target = np.array([x_cam + rng.uniform(8, 25), lay.y_far - rng.uniform(0, 4), rng.uniform(0, 5)])
    elif view == "close":
        target = np.array([x_cam + rng.uniform(-3, 6), lay.y_far - rng.uniform(0.5, 3.5), rng.uniform(0.3, 2.5)])
    elif view == "up":
        target = np.array([x_cam + rng.uniform(-2, 14), lay.y_far, rng.uniform(4, 14)])
    else:
        target = np.array([x_cam + rng.uniform(10, 40), lay.y_far + rng.uniform(-4, 10), 0.0])
    d = target - np.array([x_cam, y_cam, z_cam])
    yaw = math.atan2(d[1], d[0]) + rng.normal(0, 0.05)
    pitch = math.atan2(-d[2], math.hypot(d[0], d[1])) + rng.normal(0, 0.04)
    pitch = float(np.clip(pitch, math.radians(-35 if view == "up" else 4), math.radians(70)))
    hfov = {"high": rng.uniform(40, 75), "close": rng.uniform(35, 65), "up": rng.uniform(40, 75)}.get(
        str(view), rng.uniform(45, 95)
    )
    roll = rng.normal(0, 0.015)
    return Camera((x_cam, y_cam, z_cam), yaw, pitch, roll, hfov, width, height)
