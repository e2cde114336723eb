"""Pixel → ground → WGS84 geolocation from calibration points (DESIGN §3.2), with an honest error bound.

The ground near a street camera is taken as a plane. A homography (OpenCV) maps image pixels to
metres in a local azimuthal-equidistant frame centred at the camera (pyproj), and back to lon/lat.

``location_error_m`` combines two parts, both in metres at the located pixel:

- fit uncertainty: the calibration's own noise, propagated by a parametric bootstrap. The pixel
  noise of the calibration is estimated from its leave-one-out residuals (each point predicted by
  the homography fitted on the others, converted to pixels with the local ground sampling
  distance); the points are re-drawn with that noise around the fitted model, refitted, and the
  spread of the refitted homographies at the located pixel is the fit uncertainty. It grows where
  the homography extrapolates (far away, outside the calibrated area), as it should.
- box uncertainty: the ground sampling distance (metres per pixel, largest singular value of the
  homography's Jacobian) times a few pixels, because a box's bottom edge does not sit exactly on
  the ground contact point.

A pixel at or above the horizon (homography denominator <= 0), or one where refitted homographies
disagree about that, has no ground position: it is reported at the camera with a large error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import cv2
import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

from zones.errors import ConfigError

if TYPE_CHECKING:
    from zones.config import CameraConfig

FloatArray = npt.NDArray[np.float64]

PIXEL_UNCERTAINTY_PX: Final = 3.0
"""How far (pixels) a box's bottom edge may sit from the object's true ground contact point."""

MIN_CALIBRATION_NOISE_PX: Final = 0.5
"""Floor of the estimated calibration pixel noise: nobody clicks control points better than this."""

BOOTSTRAP_SAMPLES: Final = 64
COVERAGE_FACTOR: Final = 2.5
"""Multiplies the bootstrap RMS (2-D) spread: ≈ 98 % coverage for a circular normal error."""

HORIZON_ERROR_M: Final = 1000.0
"""Error reported for pixels with no ground position (at/above the horizon); at least view_radius_m."""

MAX_ERROR_M: Final = 100_000.0
MIN_ERROR_M: Final = 0.05


def local_transformers(lon: float, lat: float) -> tuple[Transformer, Transformer]:
    """(WGS84 → local metres, local metres → WGS84) for an azimuthal equidistant frame at lon/lat."""
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs")
    wgs84 = CRS.from_epsg(4326)
    return (
        Transformer.from_crs(wgs84, local, always_xy=True),
        Transformer.from_crs(local, wgs84, always_xy=True),
    )


def _homogeneous(points: FloatArray) -> FloatArray:
    return np.column_stack([points, np.ones(len(points))])


def _apply(h: FloatArray, points: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Map (N, 2) pixels through ``h``: ((N, 2) ground, (N,) denominator w)."""
    projected = _homogeneous(points) @ h.T
    w = projected[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ground = projected[:, :2] / w[:, None]
    return ground, w


def _apply_many(hs: FloatArray, points: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Map (N, 2) pixels through each of (K, 3, 3) homographies: ((K, N, 2), (K, N))."""
    projected = np.einsum("kij,nj->kni", hs, _homogeneous(points))
    w = projected[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ground = projected[..., :2] / w[..., None]
    return ground, w


def ground_sampling_distance(h: FloatArray, points: FloatArray) -> FloatArray:
    """(N,) metres per pixel at each pixel: largest singular value of the homography's Jacobian."""
    p = _homogeneous(points)
    numerator = p @ h[:2].T  # (N, 2)
    w = p @ h[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        # d(n/w)/du_j = (h[:2, j] * w - n * h[2, j]) / w²
        jac = (h[None, :2, :2] * w[:, None, None] - numerator[:, :, None] * h[None, 2, :2][:, None, :]) / (w**2)[
            :, None, None
        ]
        a, b, c, d = jac[:, 0, 0], jac[:, 0, 1], jac[:, 1, 0], jac[:, 1, 1]
        total = a * a + b * b + c * c + d * d
        det = a * d - b * c
        return np.sqrt((total + np.sqrt(np.maximum(total * total - 4 * det * det, 0.0))) / 2)


def fit_homography(pixels: FloatArray, ground: FloatArray) -> FloatArray | None:
    """Least-squares pixel→ground homography, signed so that w > 0 at the points; None if degenerate."""
    if len(pixels) < 4:
        return None
    found, _ = cv2.findHomography(pixels.astype(np.float64), ground.astype(np.float64), 0)
    if found is None:
        return None
    h: FloatArray = np.asarray(found, dtype=np.float64)
    if h.shape != (3, 3) or not np.all(np.isfinite(h)):
        return None
    _, w = _apply(h, pixels)
    if np.all(w < 0):
        h = -h
        w = -w
    if not np.all(w > 0):
        return None
    return h


@dataclass(frozen=True)
class Calibrated:
    """A fitted calibration: the homography, its bootstrap replicas and per-point diagnostics."""

    homography: FloatArray
    replicas: FloatArray
    """(K, 3, 3) homographies refitted on re-drawn calibration points."""
    point_errors_m: FloatArray | None
    """Leave-one-out error of each calibration point in metres (None with exactly 4 points)."""
    noise_px: float
    """Estimated pixel noise of the calibration points."""


class Geolocator:
    """Locates image pixels on the ground: calibrated homography, or the camera position."""

    def __init__(
        self,
        lon: float,
        lat: float,
        view_radius_m: float,
        calibrated: Calibrated | None = None,
    ) -> None:
        self.lon = lon
        self.lat = lat
        self.view_radius_m = view_radius_m
        self.calibrated = calibrated
        self._to_local, self._to_wgs84 = local_transformers(lon, lat)

    @property
    def is_calibrated(self) -> bool:
        return self.calibrated is not None

    @classmethod
    def from_config(cls, config: CameraConfig, width: int | None = None, height: int | None = None) -> Geolocator:
        """Build from a camera config; ``width``/``height`` of the analysed frames scale calibration
        pixels measured on ``frame_size``. Raises ConfigError for a calibration that does not hold."""
        lon, lat = config.location.lon, config.location.lat
        geolocator = cls(lon, lat, config.view_radius_m)
        if config.calibration is None:
            return geolocator
        points = config.calibration.points
        pixels = np.array([p.px for p in points], dtype=np.float64)
        if config.frame_size is not None and width is not None and height is not None:
            pixels = pixels * np.array([width / config.frame_size[0], height / config.frame_size[1]])
        east, north = geolocator._to_local.transform([p.lon for p in points], [p.lat for p in points])
        ground = np.column_stack([east, north]).astype(np.float64)
        geolocator.calibrated = _calibrate(pixels, ground, config.calibration.max_reprojection_error_m)
        return geolocator

    def locate(
        self, points_px: npt.ArrayLike, *, uncertainty_px: float = PIXEL_UNCERTAINTY_PX
    ) -> tuple[FloatArray, FloatArray]:
        """Ground position of each pixel: ((N, 2) [lon, lat], (N,) location_error_m)."""
        points = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        n = len(points)
        camera = np.tile([self.lon, self.lat], (n, 1)).astype(np.float64)
        if self.calibrated is None or n == 0:
            return camera, np.full(n, float(self.view_radius_m))
        cal = self.calibrated
        ground, w = _apply(cal.homography, points)
        replicas, replica_w = _apply_many(cal.replicas, points)
        spread = np.sqrt(np.mean(np.sum((replicas - ground[None]) ** 2, axis=2), axis=0))
        gsd = ground_sampling_distance(cal.homography, points)
        error = np.hypot(COVERAGE_FACTOR * spread, gsd * uncertainty_px)
        error = np.maximum(error, MIN_ERROR_M)
        # No ground position: at/above the horizon, or the refitted homographies put it there.
        lost = (w <= 0) | np.any(replica_w <= 0, axis=0) | ~np.isfinite(error) | ~np.all(np.isfinite(ground), axis=1)
        lon, lat = self._to_wgs84.transform(np.where(lost, 0.0, ground[:, 0]), np.where(lost, 0.0, ground[:, 1]))
        lonlat = np.column_stack([lon, lat]).astype(np.float64)
        lonlat[lost] = camera[lost]
        error = np.where(lost, max(float(self.view_radius_m), HORIZON_ERROR_M), np.minimum(error, MAX_ERROR_M))
        return lonlat, error.astype(np.float64)


@dataclass(frozen=True)
class _LeaveOneOut:
    errors_m: FloatArray
    """Each point's distance (m) from where the homography fitted on the other points places it."""
    rest_rms_m: FloatArray
    """RMS residual of the other points under that same fit: how well they agree without point i."""


def _leave_one_out(pixels: FloatArray, ground: FloatArray) -> _LeaveOneOut:
    n = len(pixels)
    errors = np.full(n, np.inf)
    rest_rms = np.full(n, np.inf)
    for i in range(n):
        others = np.arange(n) != i
        h = fit_homography(pixels[others], ground[others])
        if h is None:
            continue
        predicted, w = _apply(h, pixels)
        if w[i] > 0:
            errors[i] = float(np.hypot(*(predicted[i] - ground[i])))
        rest_rms[i] = float(np.sqrt(np.mean(np.sum((predicted[others] - ground[others]) ** 2, axis=1))))
    return _LeaveOneOut(errors_m=errors, rest_rms_m=rest_rms)


def _culprit(loo: _LeaveOneOut) -> int:
    """The point to blame when the calibration does not hold together.

    A bad point also spoils every fit it takes part in, so the point with the largest leave-one-out
    error need not be the bad one. With 6+ points, blame the one whose removal leaves the others
    most consistent; with 5, four points always fit exactly and only the error itself can tell.
    """
    if len(loo.errors_m) >= 6 and np.any(np.isfinite(loo.rest_rms_m)):
        return int(np.argmin(loo.rest_rms_m))
    return int(np.argmax(loo.errors_m))


def _calibrate(pixels: FloatArray, ground: FloatArray, max_error_m: float) -> Calibrated:
    point_errors: FloatArray | None = None
    if len(pixels) >= 5:
        loo = _leave_one_out(pixels, ground)
        point_errors = loo.errors_m
        if np.max(point_errors) > max_error_m:
            bad = _culprit(loo)
            distance = (
                f"{point_errors[bad]:.1f} m from where the other points place it"
                if np.isfinite(point_errors[bad])
                else "impossible to place from the other points (beyond their horizon)"
            )
            raise ConfigError(
                f"this calibration point is {distance}; the limit is max_reprojection_error_m = "
                f"{max_error_m:g} m. Check its px and lon/lat (swapped lon/lat, wrong pixel, typo)",
                field=f"calibration.points[{bad}]",
            )
    homography = fit_homography(pixels, ground)
    if homography is None:
        raise ConfigError(
            "the calibration points do not determine a ground plane (degenerate, or on both sides of the "
            "horizon); use 6+ points spread over the ground in view, no three on one line",
            field="calibration.points",
        )
    gsd = ground_sampling_distance(homography, pixels)
    if point_errors is not None:
        noise_px = float(np.sqrt(np.mean((point_errors / gsd) ** 2)))
    else:
        # Four points fit exactly and cannot check each other: assume each may be off by the
        # declared tolerance.
        noise_px = float(max_error_m / np.median(gsd))
    noise_px = max(noise_px, MIN_CALIBRATION_NOISE_PX)
    replicas = _bootstrap(homography, pixels, noise_px)
    if len(replicas) < BOOTSTRAP_SAMPLES // 2:
        raise ConfigError(
            "the calibration is too unstable: small pixel errors change the ground plane completely; "
            "add points spread over the ground in view",
            field="calibration.points",
        )
    return Calibrated(homography=homography, replicas=replicas, point_errors_m=point_errors, noise_px=noise_px)


def _bootstrap(homography: FloatArray, pixels: FloatArray, noise_px: float) -> FloatArray:
    """Homographies refitted on points re-drawn with ``noise_px`` around the fitted model."""
    rng = np.random.default_rng(20261127)  # fixed: the same config always gives the same bounds
    model_ground, _ = _apply(homography, pixels)
    replicas = []
    for _ in range(BOOTSTRAP_SAMPLES):
        noisy = pixels + rng.normal(0.0, noise_px, size=pixels.shape)
        h = fit_homography(noisy, model_ground)
        if h is not None:
            replicas.append(h)
    return np.array(replicas, dtype=np.float64).reshape(-1, 3, 3)
