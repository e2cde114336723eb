"""Geolocation against a synthetic pinhole camera: accuracy, honest error bounds, bad calibrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyproj import Geod

from tests.zones.conftest import CALIBRATION_LAYOUT, CAMERA, calibration_points, valid_config, write_yaml
from tests.zones.synthetic_camera import PinholeCamera, distance_m
from zones.config import CameraConfig, load_camera_config
from zones.errors import ConfigError
from zones.geo import HORIZON_ERROR_M, Geolocator


def geolocator(points: list[dict[str, Any]] | None, **extra: Any) -> Geolocator:
    data = valid_config()
    if points is None:
        del data["calibration"]
    else:
        data["calibration"] = {"points": points, **extra}
    return Geolocator.from_config(CameraConfig.model_validate(data))


def ground_truth(
    camera: PinholeCamera, n: int, max_range_m: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n ground points in view between 8 m and ``max_range_m``: (pixels, lon/lat, range)."""
    rng = np.random.default_rng(seed)
    bearing = camera.yaw_deg + rng.uniform(-35, 35, 20 * n)
    ranges = rng.uniform(8, max_range_m, 20 * n)
    pixels = camera.project(camera.ground_point(bearing, ranges))
    keep = np.flatnonzero(camera.in_view(pixels, margin=2))[:n]
    assert len(keep) == n
    return pixels[keep], camera.lonlat(bearing[keep], ranges[keep]), ranges[keep]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_accuracy_and_honest_error(seed: int) -> None:
    geo = geolocator(calibration_points(noise_px=0.5, seed=seed))
    pixels, truth, ranges = ground_truth(CAMERA, 200, 30.0, seed)
    lonlat, reported = geo.locate(pixels)
    error = distance_m(lonlat, truth)
    assert error.max() < 0.5, f"worst {error.max():.3f} m"
    assert error[ranges > 25].max() < 0.5
    covered = np.mean(error <= reported)
    assert covered >= 0.95, f"only {covered:.0%} of true errors within the reported bound"
    # The bound must also mean something: not a blanket number, and growing with range.
    assert reported.max() < 2.0
    near, far = reported[ranges < 12].mean(), reported[ranges > 25].mean()
    assert far > 2 * near


def test_bound_covers_fit_error_without_box_term() -> None:
    # With no box-edge uncertainty the bound is the calibration's own: it must still cover the fit error.
    geo = geolocator(calibration_points(noise_px=1.0, seed=11))
    pixels, truth, _ = ground_truth(CAMERA, 200, 30.0, 11)
    lonlat, reported = geo.locate(pixels, uncertainty_px=0.0)
    assert np.mean(distance_m(lonlat, truth) <= reported) >= 0.95


def test_box_uncertainty_grows_the_bound() -> None:
    geo = geolocator(calibration_points())
    pixels, _, _ = ground_truth(CAMERA, 50, 30.0, 5)
    _, small = geo.locate(pixels, uncertainty_px=1.0)
    _, large = geo.locate(pixels, uncertainty_px=6.0)
    assert np.all(large > small)


def test_horizon_returns_camera_with_large_error() -> None:
    geo = geolocator(calibration_points())
    # The horizon of a camera pitched 25° down lies tan(25°)·f above the image centre (v ≈ -106).
    above = np.array([[640.0, -300.0], [100.0, -150.0], [640.0, -106.3]])
    lonlat, error = geo.locate(above)
    np.testing.assert_allclose(lonlat, [[CAMERA.lon, CAMERA.lat]] * 3)
    assert np.all(error >= HORIZON_ERROR_M)
    # Just below the horizon: far away and honestly uncertain, never a precise-looking position.
    lonlat, error = geo.locate(np.array([[640.0, -95.0]]))
    assert error[0] > 50


def test_uncalibrated_camera_reports_view_radius() -> None:
    geo = geolocator(None)
    lonlat, error = geo.locate(np.array([[10.0, 10.0], [640.0, 700.0]]))
    np.testing.assert_allclose(lonlat, [[CAMERA.lon, CAMERA.lat]] * 2)
    np.testing.assert_allclose(error, [50.0, 50.0])
    assert geo.locate(np.zeros((0, 2)))[0].shape == (0, 2)


@pytest.mark.parametrize("index", range(len(CALIBRATION_LAYOUT)))
def test_point_moved_20m_is_named(index: int) -> None:
    points = calibration_points()
    geod = Geod(ellps="WGS84")
    points[index]["lon"], points[index]["lat"], _ = geod.fwd(points[index]["lon"], points[index]["lat"], 135.0, 20.0)
    with pytest.raises(ConfigError) as caught:
        geolocator(points)
    assert caught.value.field == f"calibration.points[{index}]"
    assert "m from where the other points place it" in caught.value.reason


def test_bad_calibration_through_loader(tmp_path: Path) -> None:
    data = valid_config()
    point = data["calibration"]["points"][5]
    point["lon"], point["lat"], _ = Geod(ellps="WGS84").fwd(point["lon"], point["lat"], 0.0, 20.0)
    path = write_yaml(tmp_path / "camera.yaml", data)
    with pytest.raises(ConfigError) as caught:
        load_camera_config(path)
    assert caught.value.file == str(path)
    assert caught.value.field == "calibration.points[5]"
    assert str(caught.value).startswith(f"{path}: calibration.points[5]: this calibration point is 2")


@pytest.mark.parametrize(("tolerance", "accepted"), [(2.0, True), (0.001, False)])
def test_tolerance_is_respected(tolerance: float, accepted: bool) -> None:
    points = calibration_points(noise_px=1.0)
    if accepted:
        assert geolocator(points, max_reprojection_error_m=tolerance).is_calibrated
    else:
        with pytest.raises(ConfigError, match=r"max_reprojection_error_m = 0\.001 m"):
            geolocator(points, max_reprojection_error_m=tolerance)


def test_four_points_fit_exactly_with_conservative_bound() -> None:
    points = [calibration_points(noise_px=0.0)[i] for i in (0, 2, 5, 6)]
    geo = geolocator(points)
    assert geo.calibrated is not None and geo.calibrated.point_errors_m is None
    pixels, truth, _ = ground_truth(CAMERA, 50, 30.0, 4)
    lonlat, reported = geo.locate(pixels)
    assert distance_m(lonlat, truth).max() < 0.05
    assert np.all(reported >= distance_m(lonlat, truth))


def test_frame_size_scales_calibration_pixels() -> None:
    # Calibration measured on a 640x360 still; video analysed at 1280x720.
    data = valid_config()
    for point in data["calibration"]["points"]:
        point["px"] = [point["px"][0] / 2, point["px"][1] / 2]
    data["frame_size"] = [640, 360]
    data["zones"] = []
    geo = Geolocator.from_config(CameraConfig.model_validate(data), 1280, 720)
    pixels, truth, _ = ground_truth(CAMERA, 50, 30.0, 8)
    lonlat, _ = geo.locate(pixels)
    assert distance_m(lonlat, truth).max() < 0.5


def test_locate_is_deterministic() -> None:
    pixels, _, _ = ground_truth(CAMERA, 20, 30.0, 9)
    first = geolocator(calibration_points()).locate(pixels)
    second = geolocator(calibration_points()).locate(pixels)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
