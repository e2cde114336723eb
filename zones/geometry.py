"""Zone membership in pixels (DESIGN §3.2): which detections stand in which zone, and which are masked.

Everything is vectorised with shapely 2 array functions: one call per zone and frame, whatever the
number of boxes. Boundaries count as inside (``intersects`` of a point is ``covers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import shapely

from zones.categories import DEFAULT_ANCHOR, DEFAULT_DWELL_S, OBJECT_CLASS_OF, Category, ObjectClass
from zones.config import CameraConfig, PolygonOwner, ZoneConfig
from zones.detections import CLASSES, Detections
from zones.schedule import Schedule

BoolArray = npt.NDArray[np.bool_]

# Polygon vertices are snapped to a micro-pixel so that relative coordinates (x * width) and the
# same outline written in pixels give bit-identical polygons: 1/49 * 49 is 0.9999999999999999.
_SNAP_DECIMALS: Final = 6

# Per-class default anchor indexed by class_id, so a whole frame is resolved with one take().
_CLASS_IS_CENTER: Final = np.array([DEFAULT_ANCHOR[name] == "center" for name in CLASSES])  # type: ignore[index]


def polygon_pixels(
    owner: PolygonOwner, width: int, height: int, frame_size: tuple[int, int] | None = None
) -> shapely.Polygon:
    """The owner's polygon in pixels of a ``width`` x ``height`` frame.

    Relative outlines scale by the frame size; pixel outlines measured on ``frame_size`` scale to it.
    """
    coords = np.asarray(owner.polygon, dtype=np.float64)
    if owner.relative:
        coords = coords * np.array([width, height], dtype=np.float64)
    elif frame_size is not None and tuple(frame_size) != (width, height):
        coords = coords * np.array([width / frame_size[0], height / frame_size[1]])
    polygon = shapely.Polygon(np.round(coords, _SNAP_DECIMALS))
    shapely.prepare(polygon)
    return polygon


def default_anchors(detections: Detections) -> npt.NDArray[np.float64]:
    """(N, 2) anchor of each detection by its class: box centre for laundry, bottom-centre otherwise."""
    xyxy = detections.xyxy
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2
    center_y = (xyxy[:, 1] + xyxy[:, 3]) / 2
    y = np.where(_CLASS_IS_CENTER[detections.class_id], center_y, xyxy[:, 3])
    return np.stack([x, y], axis=1)


def _covers_points(polygon: shapely.Geometry, points: npt.NDArray[np.float64]) -> BoolArray:
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(shapely.intersects_xy(polygon, points[:, 0], points[:, 1]), dtype=bool)


class Zone:
    """One configured zone, in pixels of the analysed frame."""

    def __init__(
        self,
        config: ZoneConfig,
        width: int,
        height: int,
        timezone: ZoneInfo | str = "UTC",
        *,
        frame_size: tuple[int, int] | None = None,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self.config = config
        self.name: str = config.name
        self.categories: tuple[Category, ...] = tuple(config.categories)
        self.polygon: shapely.Polygon = polygon_pixels(config, width, height, frame_size)
        tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self.schedule = Schedule((w.window() for w in config.allowed), tz)

    def __repr__(self) -> str:
        return f"Zone({self.name!r}, categories={self.categories})"

    @property
    def object_classes(self) -> frozenset[ObjectClass]:
        return frozenset(OBJECT_CLASS_OF[c] for c in self.categories)

    def categories_for(self, object_class: str) -> tuple[Category, ...]:
        """The categories of this zone that ``object_class`` detections count towards."""
        return tuple(c for c in self.categories if OBJECT_CLASS_OF[c] == object_class)

    def anchor_points(self, detections: Detections) -> npt.NDArray[np.float64]:
        """(N, 2) anchor points this zone tests (class default unless the zone sets bottom_center/center)."""
        anchor = self.config.anchor
        if anchor in ("bottom_center", "center"):
            return detections.anchors(anchor)
        return default_anchors(detections)

    def contains(self, detections: Detections) -> BoolArray:
        """(N,) whether each detection is in the zone (anchor inside, boundary included, or box overlap)."""
        if len(detections) == 0:
            return np.zeros(0, dtype=bool)
        if self.config.anchor == "overlap":
            return self._overlap(detections)
        return _covers_points(self.polygon, self.anchor_points(detections))

    def _overlap(self, detections: Detections) -> BoolArray:
        xyxy = detections.xyxy
        boxes = shapely.box(xyxy[:, 0], xyxy[:, 1], xyxy[:, 2], xyxy[:, 3])
        area = detections.area
        # Clipping is the slow part: only boxes crossing the outline need it (prepared predicates
        # settle the boxes wholly inside or outside).
        inside = np.where(shapely.covers(self.polygon, boxes), area, 0.0)
        crossing = shapely.intersects(self.polygon, boxes) & (inside == 0.0) & (area > 0)
        if np.any(crossing):
            inside[crossing] = shapely.area(shapely.intersection(boxes[crossing], self.polygon))
        with np.errstate(divide="ignore", invalid="ignore"):
            fraction = np.where(area > 0, inside / np.where(area > 0, area, 1.0), 0.0)
        # A degenerate (zero-area) box has no fraction; judge it by its centre instead.
        degenerate = area <= 0
        result = fraction >= self.config.min_overlap - 1e-9
        if np.any(degenerate):
            result[degenerate] = _covers_points(self.polygon, detections[degenerate].anchors("center"))
        return np.asarray(result, dtype=bool)

    def dwell_s(self, category: Category) -> float:
        """Seconds the object must stay: the zone's override, else the category default."""
        return float(self.config.dwell_s) if self.config.dwell_s is not None else DEFAULT_DWELL_S[category]

    def allowed_at(self, when: datetime) -> bool:
        """Whether an allowed window of this zone is active at the aware instant ``when``."""
        return self.schedule.allowed_at(when)

    def allowed_window_start(self, when: datetime) -> datetime | None:
        """Start of the allowed window containing ``when`` (camera timezone), else None."""
        return self.schedule.window_start(when)


class CameraZones:
    """All zones and exclusion masks of one camera, in pixels of a ``width`` x ``height`` frame."""

    def __init__(self, config: CameraConfig, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self.config = config
        self.width = int(width)
        self.height = int(height)
        self.timezone: ZoneInfo = ZoneInfo(config.timezone)
        frame_size = config.frame_size
        self.zones: list[Zone] = [
            Zone(z, self.width, self.height, self.timezone, frame_size=frame_size) for z in config.zones
        ]
        self._by_name = {zone.name: zone for zone in self.zones}
        masks = [polygon_pixels(m, self.width, self.height, frame_size) for m in config.exclude]
        self._mask: shapely.Geometry | None = shapely.union_all(masks) if masks else None
        if self._mask is not None:
            shapely.prepare(self._mask)

    def zone(self, name: str) -> Zone:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"camera {self.config.id} has no zone {name!r}") from None

    def excluded(self, detections: Detections) -> BoolArray:
        """(N,) whether each detection's (class-default) anchor lies in an exclusion mask."""
        if self._mask is None or len(detections) == 0:
            return np.zeros(len(detections), dtype=bool)
        return _covers_points(self._mask, default_anchors(detections))

    def memberships(self, detections: Detections) -> dict[str, BoolArray]:
        """Zone name -> (N,) membership with exclusion applied (a masked detection is in no zone)."""
        keep = ~self.excluded(detections)
        return {zone.name: zone.contains(detections) & keep for zone in self.zones}

    def zones_for(self, categories: Sequence[Category]) -> list[Zone]:
        """Zones that make any of ``categories`` illegal, in config order."""
        wanted = set(categories)
        return [zone for zone in self.zones if wanted.intersection(zone.categories)]
