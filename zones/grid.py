"""单元网格 (grid cells) and their responsible teams: which cell an alert's location falls in.

Cells come from a GeoJSON FeatureCollection (``grid_cells`` in the camera config): Polygon or
MultiPolygon features in WGS84 [lon, lat] with properties ``code`` and ``team``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import shapely
from pydantic import ValidationError
from shapely.geometry import shape
from shapely.validation import explain_validity

from zones.alert import GridRef
from zones.config import readable_validity
from zones.errors import ConfigError

if TYPE_CHECKING:
    from zones.config import CameraConfig


class GridIndex:
    """Grid cells in an STR-tree; a point on a shared border goes to the cell listed first."""

    def __init__(self, cells: list[shapely.Geometry], refs: list[GridRef]) -> None:
        if len(cells) != len(refs):
            raise ValueError("one GridRef per cell")
        self.cells = cells
        self.refs = refs
        self._tree = shapely.STRtree(cells)

    def __len__(self) -> int:
        return len(self.cells)

    @classmethod
    def load(cls, path: str | Path) -> GridIndex:
        """Read a GeoJSON FeatureCollection; a bad file is a ConfigError naming it and the feature."""
        file = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("grid cells file not found", file=file) from None
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read grid cells file: {error}", file=file) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})", file=file
            ) from None
        return cls.from_geojson(data, file=file)

    @classmethod
    def from_geojson(cls, data: Any, *, file: str | None = None) -> GridIndex:
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise ConfigError('expected a GeoJSON object with "type": "FeatureCollection"', file=file)
        features = data.get("features")
        if not isinstance(features, list):
            raise ConfigError('a FeatureCollection needs a "features" list', file=file, field="features")
        cells: list[shapely.Geometry] = []
        refs: list[GridRef] = []
        for i, feature in enumerate(features):
            cell, ref = _read_feature(feature, f"features[{i}]", file)
            cells.append(cell)
            refs.append(ref)
        return cls(cells, refs)

    def lookup(self, lon: float, lat: float) -> GridRef | None:
        """The cell containing (lon, lat) (border included), else None."""
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return self.refs[int(np.min(hits))] if len(hits) else None

    def lookup_many(self, lonlat: npt.ArrayLike) -> list[GridRef | None]:
        """``lookup`` for (N, 2) [lon, lat] points in one tree query."""
        points = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        found: list[GridRef | None] = [None] * len(points)
        if not len(points):
            return found
        point_index, cell_index = self._tree.query(shapely.points(points), predicate="intersects")
        best: dict[int, int] = {}
        for p, c in zip(point_index.tolist(), cell_index.tolist(), strict=True):
            best[p] = min(c, best.get(p, c))
        for p, c in best.items():
            found[p] = self.refs[c]
        return found


def _read_feature(feature: Any, where: str, file: str | None) -> tuple[shapely.Geometry, GridRef]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ConfigError('expected a GeoJSON Feature ("type": "Feature")', file=file, field=where)
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        got = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise ConfigError(
            f"geometry must be a Polygon or MultiPolygon, got {got}", file=file, field=f"{where}.geometry"
        )
    try:
        cell = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.ShapelyError) as error:
        raise ConfigError(f"malformed coordinates: {error}", file=file, field=f"{where}.geometry") from None
    if cell.is_empty or not cell.is_valid:
        reason = "empty" if cell.is_empty else readable_validity(explain_validity(cell))
        raise ConfigError(f"invalid cell outline ({reason})", file=file, field=f"{where}.geometry")
    minx, miny, maxx, maxy = cell.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise ConfigError(
            "coordinates must be WGS84 [lon, lat] degrees (lon -180..180, lat -90..90)",
            file=file,
            field=f"{where}.geometry",
        )
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise ConfigError("properties code and team are required", file=file, field=f"{where}.properties")
    try:
        code = properties.get("code")
        # Codes are digit strings; GeoJSON writers sometimes emit them as numbers.
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        ref = GridRef.model_validate({"code": code, "team": properties.get("team")})
    except ValidationError as error:
        first = error.errors()[0]
        key = first["loc"][0] if first["loc"] else ""
        raise ConfigError(
            f"{first['msg']} (properties code and team must be non-empty strings)",
            file=file,
            field=f"{where}.properties.{key}" if key else f"{where}.properties",
        ) from None
    shapely.prepare(cell)
    return cell, ref


def resolve_grid(config: CameraConfig, index: GridIndex | None, lon: float, lat: float) -> GridRef | None:
    """The grid cell containing the point, else the camera's default ``grid``."""
    if index is not None:
        ref = index.lookup(lon, lat)
        if ref is not None:
            return ref
    return config.grid
