"""A synthetic pinhole street camera over a flat ground, for geolocation tests.

Ground points are placed with pyproj's geodesic (independent of the local projection that
zones.geo uses), projected to pixels by an ideal camera, and compared on the ellipsoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pyproj import Geod

GEOD = Geod(ellps="WGS84")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PinholeCamera:
    lon: float = 118.7969
    lat: float = 32.0603
    height_m: float = 8.0
    pitch_deg: float = 25.0
    """Downward tilt of the optical axis."""
    yaw_deg: float = 30.0
    """Compass heading of the optical axis (0 = north, clockwise)."""
    focal_px: float = 1000.0
    width: int = 1280
    height: int = 720

    def _axes(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        yaw, pitch = np.radians(self.yaw_deg), np.radians(self.pitch_deg)
        forward = np.array([np.sin(yaw) * np.cos(pitch), np.cos(yaw) * np.cos(pitch), -np.sin(pitch)])
        right = np.array([np.cos(yaw), -np.sin(yaw), 0.0])
        down = np.cross(forward, right)
        return forward, right, down

    def project(self, east_north: FloatArray) -> FloatArray:
        """(N, 2) ground metres (east, north from the camera foot) -> (N, 2) pixels."""
        forward, right, down = self._axes()
        rel = np.column_stack([east_north, np.full(len(east_north), -self.height_m)])
        depth = rel @ forward
        u = self.width / 2 + self.focal_px * (rel @ right) / depth
        v = self.height / 2 + self.focal_px * (rel @ down) / depth
        return np.column_stack([u, v])

    def ground_point(self, bearing_deg: FloatArray, range_m: FloatArray) -> FloatArray:
        """(N, 2) east/north metres of points at a bearing (from north) and ground range."""
        b = np.radians(bearing_deg)
        return np.column_stack([range_m * np.sin(b), range_m * np.cos(b)])

    def lonlat(self, bearing_deg: FloatArray, range_m: FloatArray) -> FloatArray:
        lon, lat, _ = GEOD.fwd(np.full(len(range_m), self.lon), np.full(len(range_m), self.lat), bearing_deg, range_m)
        return np.column_stack([lon, lat])

    def in_view(self, pixels: FloatArray, margin: float = 0.0) -> npt.NDArray[np.bool_]:
        u, v = pixels[:, 0], pixels[:, 1]
        return (u >= margin) & (u <= self.width - margin) & (v >= margin) & (v <= self.height - margin)


def distance_m(a: FloatArray, b: FloatArray) -> FloatArray:
    """Geodesic distance between (N, 2) lon/lat arrays."""
    _, _, dist = GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    return np.asarray(dist, dtype=np.float64)
