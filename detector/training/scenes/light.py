"""Light and weather of a scene: time of day, sun, sky, haze, rain, colour cast and infrared night mode."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detector.training.geometry import F64
from detector.training.objects.common import Rng


@dataclass
class Look:
    time: str  # day | overcast | dusk | night
    rain: bool
    haze: float
    sun_dir: F64
    sun: float
    ambient: float
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    haze_colour: tuple[float, float, float]
    tint: tuple[float, float, float]
    ir: bool

    @property
    def night(self) -> bool:
        return self.time == "night"


def make_look(rng: Rng) -> Look:
    r = rng.random()
    time = "day" if r < 0.45 else ("overcast" if r < 0.65 else ("dusk" if r < 0.78 else "night"))
    rain = rng.random() < (0.18 if time != "day" else 0.05)
    az = rng.uniform(0, 2 * math.pi)
    el = rng.uniform(math.radians(20), math.radians(70)) if time == "day" else rng.uniform(0.05, 0.35)
    sun_dir = np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])
    top: tuple[float, float, float]
    hor: tuple[float, float, float]
    if time == "day":
        sun, ambient = rng.uniform(0.5, 0.75), rng.uniform(0.45, 0.6)
        top, hor = (rng.uniform(200, 240), rng.uniform(150, 190), rng.uniform(90, 130)), (235, 225, 215)
        tint = (1.0, 1.0, 1.0)
    elif time == "overcast":
        sun, ambient = rng.uniform(0.05, 0.2), rng.uniform(0.75, 0.95)
        g = rng.uniform(170, 225)
        top, hor = (g, g, g * 0.97), (g + 15, g + 15, g + 12)
        tint = (1.0, 1.0, 1.0)
    elif time == "dusk":
        sun, ambient = rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.45)
        top, hor = (rng.uniform(120, 170), rng.uniform(80, 110), rng.uniform(60, 90)), (120, 160, 230)
        tint = (0.85, 0.95, 1.12)
    else:
        sun, ambient = 0.0, rng.uniform(0.16, 0.3)
        top, hor = (40, 25, 15), (70, 60, 55)
        tint = (0.9, 1.0, 1.1) if rng.random() < 0.5 else (1.1, 1.0, 0.9)
    if rain:
        sun *= 0.2
        ambient *= 0.85
        g = rng.uniform(120, 180) if time != "night" else 50
        top, hor = (g, g, g), (g + 15, g + 15, g + 15)
    haze = rng.choice([0.0, rng.uniform(0.002, 0.01), rng.uniform(0.01, 0.04)], p=[0.45, 0.4, 0.15])
    if rain:
        haze = max(haze, rng.uniform(0.008, 0.03))
    hc = np.asarray(hor, np.float64) * (0.9 if time != "night" else 0.6)
    ir = time == "night" and rng.random() < 0.35
    return Look(
        time,
        bool(rain),
        float(haze),
        sun_dir,
        float(sun),
        float(ambient),
        top,
        hor,
        (float(hc[0]), float(hc[1]), float(hc[2])),
        tint,
        ir,
    )
