"""Shared camera-config builders for the zones tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.zones.synthetic_camera import PinholeCamera

CAMERA = PinholeCamera()

# Eight calibration points spread over the ground in view (bearing offset from the optical axis in
# degrees, ground range in metres), as a surveyor would pick them: near, middle and far, left and right.
CALIBRATION_LAYOUT = np.array(
    [[-20, 11], [0, 10], [20, 11], [-25, 22], [25, 22], [-12, 34], [12, 34], [0, 30]], dtype=np.float64
)


def calibration_points(noise_px: float = 0.5, seed: int = 7) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    bearing = CAMERA.yaw_deg + CALIBRATION_LAYOUT[:, 0]
    ranges = CALIBRATION_LAYOUT[:, 1]
    pixels = CAMERA.project(CAMERA.ground_point(bearing, ranges))
    pixels = pixels + rng.normal(0.0, noise_px, pixels.shape)
    lonlat = CAMERA.lonlat(bearing, ranges)
    return [
        {"px": [round(float(u), 2), round(float(v), 2)], "lon": float(lon), "lat": float(lat)}
        for (u, v), (lon, lat) in zip(pixels, lonlat, strict=True)
    ]


VALID: dict[str, Any] = {
    "id": "cam-jfdl-01",
    "name": "解放东路 1 号",
    "source": "clip.mp4",
    "timezone": "Asia/Shanghai",
    "location": {"lon": CAMERA.lon, "lat": CAMERA.lat},
    "view_radius_m": 50,
    "calibration": {"points": calibration_points()},
    "grid": {"code": "320102001001", "team": "team-a"},
    "zones": [
        {
            "name": "sidewalk-north",
            "polygon": [[0.05, 0.60], [0.95, 0.60], [0.95, 0.98], [0.05, 0.98]],
            "relative": True,
            "categories": ["street_vending", "hanging_laundry"],
            "dwell_s": 180,
            "anchor": "bottom_center",
            "allowed": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "18:00", "to": "22:00"}],
        },
        {
            "name": "shopfront-row",
            "polygon": [[0.0, 0.40], [0.30, 0.40], [0.30, 0.62], [0.0, 0.62]],
            "relative": True,
            "categories": ["storefront_overflow"],
            "responsible": {"unit": "shop-0127", "name": "张记水果店"},
            "remind_first_s": 600,
        },
    ],
    "exclude": [{"polygon": [[0.9, 0.0], [1.0, 0.0], [1.0, 0.1], [0.9, 0.1]], "relative": True}],
}


def valid_config() -> dict[str, Any]:
    return copy.deepcopy(VALID)


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def valid_dict() -> dict[str, Any]:
    return valid_config()
