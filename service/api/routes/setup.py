"""Camera setup (issue 17): the live preview of a camera config drawn on a snapshot — its zones placed on
the ground, each calibration point's reprojection error, the resulting location error — and the cameras
(view direction, zones) for the pages' maps.

The geometry is zones/geo.py's, so the preview shows exactly what the detector will compute. zones.geo
fits its homographies with OpenCV, which the service process never loads (DESIGN §2): the geometry runs
in up to ``WORKERS`` worker processes (``python -c``, talking JSON lines over pipes), started on the first
request that needs one and kept for the next; a worker ends when the server does (its stdin closes).
"""

from __future__ import annotations

import io
import json
import math
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path as PathLib
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from fastapi import APIRouter, Path
from pydantic import BaseModel, ValidationError

from service import crud
from service.api.deps import ERROR_RESPONSES, DbDep, ReaderPrincipal, ReviewerPrincipal
from service.core.errors import NotFound, ServiceError
from service.schemas import (
    ConfigPreview,
    ConfigPreviewRequest,
    ConfigProblem,
    ErrorOut,
    MapFeature,
    MapFeatureCollection,
    PreviewCamera,
    PreviewOutline,
    PreviewPoint,
)
from zones.config import (
    Calibration,
    CalibrationPoint,
    CameraConfig,
    ExcludeMask,
    Location,
    PolygonOwner,
    ZoneConfig,
    format_loc,
)
from zones.errors import ConfigError

if TYPE_CHECKING:
    from pyproj import Transformer

    from zones.geo import Geolocator

router = APIRouter(prefix="/api/v1", tags=["camera setup"])

CameraId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,64}$", description="Camera id.")]
FloatArray = npt.NDArray[np.float64]
M = TypeVar("M", bound=BaseModel)

HORIZON_MARGIN: Final = 0.1
"""Outlines are cut where the homography's denominator falls below this fraction of its smallest value at
the calibration points: about ten times farther than the farthest point, well before the horizon."""
GRID_LINES: Final = 8
"""About this many ground grid lines across the calibrated area, each way."""
_GRID_STEPS_M: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
_GRID_SAMPLES: Final = 33
_MAX_GRID_LINES: Final = 60


# ---- validation, piece by piece ----------------------------------------------------------------------


def _message(item: Any) -> str:
    kind = str(item.get("type", ""))
    message = str(item.get("msg", "invalid value"))
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not part of the camera config; check the spelling)"
    return message


def config_problems(error: ValidationError) -> list[ConfigProblem]:
    """A camera config's validation errors, each at the field it concerns (``zones[0].polygon``, not
    ``zones[0]``: the config's own checks name their sub-field in the error context)."""
    problems = []
    for item in error.errors():
        loc: tuple[str | int, ...] = tuple(item.get("loc", ()))
        if item.get("type") == "streetwatch_config":
            loc += tuple((item.get("ctx") or {}).get("sub_loc", ()))
        problems.append(ConfigProblem(loc=list(loc), field=format_loc(loc), msg=_message(item)))
    return problems


def _valid(model: type[M], value: Any) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _frame_size(value: Any) -> tuple[int, int] | None:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100_000 for v in value)
    ):
        return int(value[0]), int(value[1])
    return None


def _view_radius(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 100_000:
        return float(value)
    return 50.0


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _metres(value: float) -> float | None:
    return round(float(value), 3) if math.isfinite(value) else None


def _lonlat(lon: float, lat: float) -> tuple[float, float] | None:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return round(float(lon), 8), round(float(lat), 8)


# ---- geometry ------------------------------------------------------------------------------------------


def _apply(h: FloatArray, points: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(N, 2) pixels through homography ``h``: ((N, 2) local metres, (N,) denominators)."""
    projected = np.column_stack([points, np.ones(len(points))]) @ h.T
    w = projected[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return projected[:, :2] / w[:, None], w


def _half_plane(a: float, b: float, c: float, box: tuple[float, float, float, float]) -> shapely.Polygon | None:
    """The part of ``box`` where a·x + b·y + c ≥ 0 (one Sutherland–Hodgman step on a rectangle)."""
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    kept: list[tuple[float, float]] = []
    for j, p in enumerate(corners):
        q = corners[(j + 1) % 4]
        fp, fq = a * p[0] + b * p[1] + c, a * q[0] + b * q[1] + c
        if fp >= 0:
            kept.append(p)
        if (fp >= 0) != (fq >= 0):
            t = fp / (fp - fq)
            kept.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    polygon = shapely.Polygon(kept) if len(kept) >= 3 else None
    return polygon if polygon is not None and polygon.is_valid and polygon.area > 0 else None


class _Placer:
    """Pixels of one snapshot → WGS84, through a fitted calibration."""

    def __init__(self, geolocator: Geolocator, to_wgs84: Transformer, calibration_px: FloatArray) -> None:
        assert geolocator.calibrated is not None
        self.geolocator = geolocator
        self.h = geolocator.calibrated.homography
        self.to_wgs84 = to_wgs84
        _, w = _apply(self.h, calibration_px)
        self.w_min = HORIZON_MARGIN * float(np.min(w))

    def ground_side(self, polygon: shapely.Polygon) -> tuple[shapely.Polygon | None, bool]:
        """The polygon less what lies at or beyond the horizon; and whether anything was cut."""
        x0, y0, x1, y1 = polygon.bounds
        pad = max(x1 - x0, y1 - y0, 1.0)
        a, b, c = self.h[2]
        region = _half_plane(float(a), float(b), float(c) - self.w_min, (x0 - pad, y0 - pad, x1 + pad, y1 + pad))
        if region is None:
            return None, True
        if region.covers(polygon):
            return polygon, False
        part = polygon.intersection(region)
        pieces = [g for g in getattr(part, "geoms", [part]) if isinstance(g, shapely.Polygon) and g.area > 0]
        return (max(pieces, key=lambda g: g.area) if pieces else None), True

    def lonlat(self, pixels: FloatArray) -> list[tuple[float, float] | None]:
        ground, w = _apply(self.h, pixels)
        lon, lat = self.to_wgs84.transform(ground[:, 0], ground[:, 1])
        return [
            _lonlat(x, y) if wi > 0 else None
            for x, y, wi in zip(np.atleast_1d(lon), np.atleast_1d(lat), w, strict=True)
        ]

    def errors(self, pixels: FloatArray) -> FloatArray:
        return self.geolocator.locate(pixels)[1]

    def place(
        self, polygon: shapely.Polygon
    ) -> tuple[list[tuple[float, float]] | None, bool, float | None, float | None]:
        """(outline [lon, lat], clipped, error inside, largest error along the outline)."""
        part, clipped = self.ground_side(polygon)
        if part is None:
            return None, clipped, None, None
        vertices = np.asarray(part.exterior.coords, dtype=np.float64)[:-1]
        outline = [p for p in self.lonlat(vertices) if p is not None]
        inside = polygon.representative_point()
        if not part.covers(inside):
            inside = part.representative_point()
        inside_error = float(self.errors(np.array([[inside.x, inside.y]]))[0])
        max_error = float(np.max(self.errors(vertices))) if len(vertices) else math.nan
        return (outline if len(outline) >= 3 else None), clipped, _metres(inside_error), _metres(max_error)

    def bearing(self, width: int, height: int) -> float | None:
        """View direction (degrees from north): the image's vertical centre line, bottom to top, on the
        ground. For a camera without roll that line runs through the camera's nadir along its heading."""
        ys = np.linspace(float(height), 0.0, 41)
        ground, w = _apply(self.h, np.column_stack([np.full_like(ys, width / 2.0), ys]))
        usable = (w >= self.w_min) & np.all(np.isfinite(ground), axis=1)
        if not usable[0]:
            return None
        last = int(np.argmin(usable)) - 1 if not np.all(usable) else len(ys) - 1
        far = ground[max(last // 2, 1) if last >= 1 else 0]
        d_east, d_north = far - ground[0]
        if math.hypot(d_east, d_north) < 0.1:
            return None
        return round(math.degrees(math.atan2(d_east, d_north)) % 360.0, 2)

    def grid(
        self, ground_points: FloatArray, width: int, height: int
    ) -> tuple[list[list[tuple[float, float]]], float | None]:
        """Ground lines every few metres over the calibrated area, as polylines in snapshot pixels."""
        lo, hi = ground_points.min(axis=0), ground_points.max(axis=0)
        span = float(np.max(hi - lo))
        if not math.isfinite(span) or span <= 0:
            return [], None
        step = next((s for s in _GRID_STEPS_M if span / s <= GRID_LINES), _GRID_STEPS_M[-1])
        pad = (hi - lo) * 0.25 + step
        lo, hi = lo - pad, hi + pad
        try:
            inverse = np.linalg.inv(self.h)
        except np.linalg.LinAlgError:
            return [], None
        frame = shapely.box(0, 0, width, height)
        lines: list[list[tuple[float, float]]] = []
        t = np.linspace(0.0, 1.0, _GRID_SAMPLES)
        for axis in (0, 1):
            start = math.ceil(lo[axis] / step) * step
            for value in np.arange(start, hi[axis] + 1e-9, step)[:_MAX_GRID_LINES]:
                other = lo[1 - axis] + t * (hi[1 - axis] - lo[1 - axis])
                ground = np.column_stack(
                    [np.full_like(t, value), other] if axis == 0 else [other, np.full_like(t, value)]
                )
                back = np.column_stack([ground, np.ones(len(ground))]) @ inverse.T
                with np.errstate(divide="ignore", invalid="ignore"):
                    pixels = back[:, :2] / back[:, 2:3]
                    _, w = _apply(self.h, pixels)
                ok = (back[:, 2] > 0) & (w >= self.w_min) & np.all(np.isfinite(pixels), axis=1)
                run: list[tuple[float, float]] = []
                for good, (x, y) in zip(ok, pixels, strict=True):
                    if good:
                        run.append((float(x), float(y)))
                        continue
                    lines += _inside(run, frame)
                    run = []
                lines += _inside(run, frame)
        return lines[:_MAX_GRID_LINES], step


def _inside(run: Sequence[tuple[float, float]], frame: shapely.Polygon) -> list[list[tuple[float, float]]]:
    if len(run) < 2:
        return []
    clipped = shapely.LineString(run).intersection(frame)
    parts = [g for g in getattr(clipped, "geoms", [clipped]) if isinstance(g, shapely.LineString) and g.length > 0]
    return [[(round(x, 1), round(y, 1)) for x, y in part.coords] for part in parts]


def _outlines(
    raw: list[Any],
    model: type[ZoneConfig] | type[ExcludeMask],
    placer: _Placer | None,
    width: int,
    height: int,
    frame_size: tuple[int, int] | None,
) -> list[PreviewOutline]:
    from zones.geometry import polygon_pixels

    result = []
    for index, item in enumerate(raw):
        name = _mapping(item).get("name")
        owner: PolygonOwner | None = _valid(model, item)
        outline, clipped, error, max_error = None, False, None, None
        if owner is not None and placer is not None:
            polygon = polygon_pixels(owner, width, height, frame_size)
            if polygon.is_valid and polygon.area > 0:
                outline, clipped, error, max_error = placer.place(polygon)
        result.append(
            PreviewOutline(
                index=index,
                name=name if isinstance(name, str) else None,
                outline=outline,
                clipped=clipped,
                location_error_m=error,
                max_location_error_m=max_error,
            )
        )
    return result


def build_preview(data: dict[str, Any], width: int, height: int) -> ConfigPreview:
    """Everything the setup page shows for a (possibly unfinished) config drawn on a ``width`` x ``height``
    snapshot. Calibration pixels and pixel polygons are in ``frame_size`` units when it is given, as in
    the config itself, and are scaled to the snapshot."""
    problems: list[ConfigProblem] = []
    try:
        CameraConfig.model_validate(data)
    except ValidationError as error:
        problems = config_problems(error)
    location = _valid(Location, data.get("location"))
    frame_size = _frame_size(data.get("frame_size"))
    scale = np.array([width / frame_size[0], height / frame_size[1]]) if frame_size else np.ones(2)
    calibration = _mapping(data.get("calibration"))
    points = [(i, _valid(CalibrationPoint, p)) for i, p in enumerate(_items(calibration.get("points")))]
    good = [(i, p) for i, p in points if p is not None]
    camera = PreviewCamera(location=_lonlat(location.lon, location.lat) if location else None, bearing_deg=None)

    placer: _Placer | None = None
    rows = {i: PreviewPoint(index=i, lonlat=(p.lon, p.lat), projected=None, residual_m=None,
                            reprojection_error_m=None, location_error_m=None) for i, p in good}  # fmt: skip
    noise_px = None
    grid: list[list[tuple[float, float]]] = []
    grid_step = None
    # Only a calibration the schema accepts (≥ 4 points, no duplicates, not collinear) is fitted: OpenCV
    # is not asked to fit what cannot determine a plane.
    valid_calibration = _valid(Calibration, calibration) if location is not None else None
    ground: FloatArray | None = None
    if location is not None and valid_calibration is not None:
        from zones.geo import Geolocator, fit_homography, local_transformers

        to_local, to_wgs84 = local_transformers(location.lon, location.lat)
        pixels = np.array([p.px for _, p in good], dtype=np.float64) * scale
        east, north = to_local.transform([p.lon for _, p in good], [p.lat for _, p in good])
        ground = np.column_stack([east, north]).astype(np.float64)
    if location is not None and valid_calibration is not None and ground is not None and np.all(np.isfinite(ground)):
        shell = CameraConfig.model_construct(
            location=location,
            view_radius_m=_view_radius(data.get("view_radius_m")),
            calibration=valid_calibration,
            frame_size=frame_size,
        )
        geolocator: Geolocator | None = None
        try:
            geolocator = Geolocator.from_config(shell, width, height)
        except ConfigError as error:
            field = error.field or "calibration"
            if not any(p.field == field for p in problems):
                problems.append(ConfigProblem(loc=_parse_field(field), field=field, msg=error.reason))
        h_all = fit_homography(pixels, ground)
        fitted, _ = _apply(h_all, pixels) if h_all is not None else (None, None)
        errors = geolocator.locate(pixels)[1] if geolocator is not None and geolocator.calibrated else None
        for k, (i, _) in enumerate(good):
            row = rows[i]
            if fitted is not None:
                lon, lat = to_wgs84.transform(fitted[k, 0], fitted[k, 1])
                row.projected = _lonlat(lon, lat)
                row.residual_m = _metres(float(np.hypot(*(fitted[k] - ground[k]))))
            if len(good) >= 5:
                others = np.arange(len(good)) != k
                h_rest = fit_homography(pixels[others], ground[others])
                if h_rest is not None:
                    predicted, w = _apply(h_rest, pixels[k : k + 1])
                    if w[0] > 0:
                        row.reprojection_error_m = _metres(float(np.hypot(*(predicted[0] - ground[k]))))
            if errors is not None:
                row.location_error_m = _metres(float(errors[k]))
        if geolocator is not None and geolocator.calibrated is not None:
            placer = _Placer(geolocator, to_wgs84, pixels)
            camera.bearing_deg = placer.bearing(width, height)
            noise_px = _number(round(geolocator.calibrated.noise_px, 3))
            grid, grid_step = placer.grid(ground, width, height)

    zones = _outlines(_items(data.get("zones")), ZoneConfig, placer, width, height, frame_size)
    exclude = _outlines(_items(data.get("exclude")), ExcludeMask, placer, width, height, frame_size)
    zone_errors = [z.location_error_m for z in zones if z.location_error_m is not None]
    point_errors = [r.location_error_m for r in rows.values() if r.location_error_m is not None]
    overall = max(zone_errors) if zone_errors else (float(np.median(point_errors)) if point_errors else None)
    return ConfigPreview(
        calibrated=placer is not None,
        problems=problems,
        camera=camera,
        points=[rows[i] for i, _ in good],
        zones=zones,
        exclude=exclude,
        noise_px=noise_px,
        location_error_m=_metres(overall) if overall is not None else None,
        grid=grid,
        grid_step_m=grid_step,
    )


def _parse_field(field: str) -> list[str | int]:
    """``calibration.points[3]`` -> ["calibration", "points", 3]."""
    parts: list[str | int] = []
    for token in field.replace("[", ".[").split("."):
        if token.startswith("[") and token.endswith("]") and token[1:-1].isdigit():
            parts.append(int(token[1:-1]))
        elif token:
            parts.append(token)
    return parts


def camera_features(camera_id: str, data: dict[str, Any], size: tuple[int, int] | None) -> list[MapFeature]:
    """A stored camera config on the map: the camera (with its view direction when calibrated) and its
    zones on the ground. ``size``: the frames' size (frame_size, else the snapshot's); without one only
    the camera is placed. Never the source (stream credentials)."""
    location = _valid(Location, data.get("location"))
    if location is None:
        return []
    name = data.get("name")
    preview = build_preview(data, *size) if size is not None else None
    bearing = preview.camera.bearing_deg if preview is not None else None
    features = [
        MapFeature(
            id=f"camera:{camera_id}",
            geometry={"type": "Point", "coordinates": [location.lon, location.lat]},
            properties={
                "kind": "camera",
                "camera_id": camera_id,
                "name": name if isinstance(name, str) else camera_id,
                "bearing_deg": bearing,
                "calibrated": bool(preview and preview.calibrated),
            },
        )
    ]
    raw_zones = _items(data.get("zones"))
    for zone in preview.zones if preview is not None else []:
        if zone.outline is None:
            continue
        categories = _mapping(raw_zones[zone.index]).get("categories") if zone.index < len(raw_zones) else None
        features.append(
            MapFeature(
                id=f"zone:{camera_id}:{zone.index}",
                geometry={"type": "Polygon", "coordinates": [[*map(list, zone.outline), list(zone.outline[0])]]},
                properties={
                    "kind": "zone",
                    "camera_id": camera_id,
                    "zone": zone.name,
                    "categories": categories if isinstance(categories, list) else [],
                    "location_error_m": zone.location_error_m,
                },
            )
        )
    return features


# ---- the geometry workers -------------------------------------------------------------------------

WORKERS: Final = 2
WORKER_TIMEOUT_S: Final = 60.0
_MAP_CACHE_SIZE: Final = 4096
# The worker runs this module's ``serve_worker``; ``python -c`` re-imports no server code (unlike
# multiprocessing's spawn, which re-runs the parent's __main__).
_WORKER_MAIN: Final = "from service.api.routes.setup import serve_worker; serve_worker()"

_map_cache: dict[tuple[str, int, tuple[int, int] | None], list[dict[str, Any]]] = {}
_map_cache_lock = threading.Lock()


class GeometryUnavailable(ServiceError):
    status_code = 503


class _WorkerDied(Exception):
    def __init__(self, timed_out: bool) -> None:
        super().__init__("timed out" if timed_out else "died")
        self.timed_out = timed_out


def _preview_job(data: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    return build_preview(data, width, height).model_dump(mode="json")


def _map_job(jobs: list[tuple[str, dict[str, Any], tuple[int, int] | None]]) -> list[list[dict[str, Any]]]:
    return [[f.model_dump(mode="json") for f in camera_features(*job)] for job in jobs]


_JOBS: Final[dict[str, Callable[..., Any]]] = {"preview": _preview_job, "map": _map_job}


def serve_worker() -> None:
    """A geometry worker process: one JSON request per line on stdin ({"job", "args"}), one answer per line
    on stdout ({"ok": result} or {"error": text}); it ends when stdin closes (the server went away)."""
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the answers
    for line in requests:
        try:
            request = json.loads(line)
            answer: dict[str, Any] = {"ok": _JOBS[request["job"]](*request["args"])}
        except Exception as error:  # one bad job must not take the worker down
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer).encode("utf-8") + b"\n")
        answers.flush()


class _Worker:
    """One worker process and its pipes; used by one request at a time."""

    def __init__(self) -> None:
        root = str(PathLib(__file__).resolve().parents[3])  # the directory holding the service package
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_MAIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, job: str, args: list[Any], timeout_s: float) -> Any:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            self.process.kill()

        watchdog = threading.Timer(timeout_s, kill)
        watchdog.start()
        try:
            stdin.write(json.dumps({"job": job, "args": args}).encode("utf-8") + b"\n")
            stdin.flush()
            line = stdout.readline()
        except OSError:
            line = b""
        finally:
            watchdog.cancel()
        if not line:
            self.close()
            raise _WorkerDied(expired.is_set())
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"geometry worker: {answer['error']}")
        return answer["ok"]

    def close(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


_idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
_started = threading.BoundedSemaphore(WORKERS)


def _take_worker() -> _Worker:
    while True:
        try:
            worker = _idle.get_nowait()
        except queue.Empty:
            if _started.acquire(blocking=False):
                try:
                    return _Worker()
                except OSError:
                    _started.release()
                    raise GeometryUnavailable("cannot start a geometry worker process") from None
            worker = _idle.get(timeout=WORKER_TIMEOUT_S)
        if worker.alive():
            return worker
        worker.close()
        _started.release()


def in_worker(job: str, *args: Any) -> Any:
    """Run ``job`` (a key of _JOBS) in a geometry worker process; a worker that died is replaced once."""
    for attempt in range(2):
        try:
            worker = _take_worker()
        except queue.Empty:
            raise GeometryUnavailable("all geometry workers are busy; try again") from None
        try:
            result = worker.call(job, list(args), WORKER_TIMEOUT_S)
        except _WorkerDied as died:
            _started.release()
            if died.timed_out:
                raise GeometryUnavailable(f"the geometry took longer than {WORKER_TIMEOUT_S:g} s") from None
            if attempt:
                raise GeometryUnavailable("the geometry worker stopped; try again") from None
            continue
        except BaseException:
            _idle.put(worker)
            raise
        _idle.put(worker)
        return result
    raise AssertionError("unreachable")


def warm_up() -> None:
    """Start a geometry worker in the background (the setup page asks, so its first preview is quick)."""

    def start() -> None:
        try:
            _idle.put(_Worker())
        except OSError:
            _started.release()

    if _idle.empty() and _started.acquire(blocking=False):
        threading.Thread(target=start, name="geometry-warm-up", daemon=True).start()


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from an image's header (Pillow reads no pixels for it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _needs_size(config: dict[str, Any]) -> bool:
    return _frame_size(config.get("frame_size")) is None and bool(
        _items(_mapping(config.get("calibration")).get("points"))
    )


# ---- routes --------------------------------------------------------------------------------------------


@router.post(
    "/cameras/{camera_id}/config/preview",
    response_model=ConfigPreview,
    responses={**ERROR_RESPONSES, 503: {"model": ErrorOut, "description": "The geometry worker is unavailable."}},
    summary="Preview a camera config drawn on its snapshot (operator+)",
    description="Places the zones on the ground through the calibration (zones/geo.py, as the detector will), "
    "with each calibration point's reprojection error and the resulting location error. An unfinished config "
    "is previewed as far as it goes; `problems` lists, field by field, what saving it would refuse.",
)
def preview_config(camera_id: CameraId, body: ConfigPreviewRequest, principal: ReviewerPrincipal) -> ConfigPreview:
    preview = ConfigPreview.model_validate(in_worker("preview", body.config, body.width, body.height))
    config_id = body.config.get("id")
    if config_id is not None and config_id != camera_id and not any(p.loc == ["id"] for p in preview.problems):
        preview.problems.insert(
            0, ConfigProblem(loc=["id"], field="id", msg=f"the config's id must be this camera's id, {camera_id}")
        )
    return preview


@router.get(
    "/cameras.geojson",
    response_model=MapFeatureCollection,
    responses={**ERROR_RESPONSES, 503: {"model": ErrorOut, "description": "The geometry worker is unavailable."}},
    summary="Cameras (view direction from the calibration) and their zones on the ground, as GeoJSON",
    description="One Point feature per camera with a stored config (`properties.kind` camera, `bearing_deg` "
    "degrees from north or null) and one Polygon per zone that its calibration places on the ground "
    "(`kind` zone). Sources (stream URLs) are never included. For every reader, officers included.",
)
def cameras_geojson(principal: ReaderPrincipal, db: DbDep) -> MapFeatureCollection:
    keys: list[tuple[str, int, tuple[int, int] | None]] = []
    configs: dict[str, dict[str, Any]] = {}
    with db.reading() as session:
        for row in crud.list_camera_configs(session):
            config = json.loads(row.config)
            size = _frame_size(config.get("frame_size"))
            if size is None and _needs_size(config):
                try:
                    size = _image_size(crud.get_camera_snapshot(session, camera_id=row.camera_id).data)
                except NotFound:
                    size = None
            keys.append((row.camera_id, row.version, size))
            configs[row.camera_id] = config
    with _map_cache_lock:
        known = {key: _map_cache[key] for key in keys if key in _map_cache}
    missing = [key for key in keys if key not in known]
    if missing:
        computed = in_worker("map", [(key[0], configs[key[0]], key[2]) for key in missing])
        with _map_cache_lock:
            if len(_map_cache) + len(missing) > _MAP_CACHE_SIZE:
                _map_cache.clear()
            for key, features in zip(missing, computed, strict=True):
                _map_cache[key] = known[key] = features
    return MapFeatureCollection(features=[MapFeature.model_validate(f) for key in keys for f in known[key]])
