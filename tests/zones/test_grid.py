"""单元网格 lookup: GeoJSON cells, borders, MultiPolygons, fallback to the camera's grid, bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.zones.conftest import valid_config, write_yaml
from zones.alert import GridRef
from zones.config import CameraConfig, load_camera_config
from zones.errors import ConfigError
from zones.grid import GridIndex, resolve_grid


def square(lon0: float, lat0: float, size: float) -> list[list[list[float]]]:
    return [[[lon0, lat0], [lon0 + size, lat0], [lon0 + size, lat0 + size], [lon0, lat0 + size], [lon0, lat0]]]


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


CELLS: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        feature({"type": "Polygon", "coordinates": square(118.790, 32.060, 0.001)}, code="A1", team="team-a"),
        feature({"type": "Polygon", "coordinates": square(118.791, 32.060, 0.001)}, code="B1", team="team-b"),
        feature(
            {"type": "MultiPolygon", "coordinates": [square(118.795, 32.060, 0.001), square(118.797, 32.060, 0.001)]},
            code=320102001003,  # numeric codes are read as strings
            team="team-c",
        ),
    ],
}


@pytest.fixture
def index(tmp_path: Path) -> GridIndex:
    path = tmp_path / "cells.geojson"
    path.write_text(json.dumps(CELLS), encoding="utf-8")
    return GridIndex.load(path)


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        (118.7905, 32.0605, ("A1", "team-a")),
        (118.7915, 32.0605, ("B1", "team-b")),
        (118.791, 32.0605, ("A1", "team-a")),  # shared border: the cell listed first
        (118.790, 32.060, ("A1", "team-a")),  # corner counts as inside
        (118.7955, 32.0605, ("320102001003", "team-c")),  # first part of the MultiPolygon
        (118.7975, 32.0605, ("320102001003", "team-c")),  # second part
        (118.7965, 32.0605, None),  # the gap between the parts
        (118.7905, 32.0625, None),  # north of everything
    ],
)
def test_lookup(index: GridIndex, lon: float, lat: float, expected: tuple[str, str] | None) -> None:
    found = index.lookup(lon, lat)
    assert (None if found is None else (found.code, found.team)) == expected
    assert index.lookup_many([[lon, lat]]) == [found]


def test_lookup_many_matches_lookup(index: GridIndex) -> None:
    points = [[118.7905, 32.0605], [118.7965, 32.0605], [118.791, 32.0605], [118.7975, 32.0605]]
    assert index.lookup_many(points) == [index.lookup(lon, lat) for lon, lat in points]
    assert index.lookup_many([]) == []


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        (118.7905, 32.0605, GridRef(code="A1", team="team-a")),  # inside a cell
        (118.7999, 32.0699, GridRef(code="320102001001", team="team-a")),  # outside: camera default
    ],
)
def test_resolve_grid(index: GridIndex, lon: float, lat: float, expected: GridRef) -> None:
    config = CameraConfig.model_validate(valid_config())
    assert resolve_grid(config, index, lon, lat) == expected


def test_resolve_grid_without_index_or_default() -> None:
    data = valid_config()
    config = CameraConfig.model_validate(data)
    assert resolve_grid(config, None, 0.0, 0.0) == GridRef(code="320102001001", team="team-a")
    del data["grid"]
    assert resolve_grid(CameraConfig.model_validate(data), None, 0.0, 0.0) is None


def test_config_loads_grid_cells_relative_to_file(tmp_path: Path) -> None:
    sub = tmp_path / "cams"
    sub.mkdir()
    (sub / "cells.geojson").write_text(json.dumps(CELLS), encoding="utf-8")
    data = valid_config()
    data["grid_cells"] = "cells.geojson"
    config = load_camera_config(write_yaml(sub / "camera.yaml", data))
    cells = config.grid_index()
    assert cells is not None and len(cells) == 3
    assert config.grid_index() is cells  # loaded once
    assert resolve_grid(config, cells, 118.7915, 32.0605) == GridRef(code="B1", team="team-b")


def bad(features: list[Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


GOOD: dict[str, Any] = CELLS["features"][0]


@pytest.mark.parametrize(
    ("content", "field", "phrase"),
    [
        ("{not json", None, "not valid JSON"),
        (json.dumps([1, 2]), None, "FeatureCollection"),
        (json.dumps({"type": "FeatureCollection"}), "features", '"features" list'),
        (json.dumps(bad([GOOD, {"type": "Point"}])), "features[1]", "expected a GeoJSON Feature"),
        (
            json.dumps(bad([GOOD, feature({"type": "Point", "coordinates": [1, 2]}, code="x", team="t")])),
            "features[1].geometry",
            "Polygon or MultiPolygon, got Point",
        ),
        (
            json.dumps(
                bad(
                    [
                        GOOD,
                        feature(
                            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
                            code="x",
                            team="t",
                        ),
                    ]
                )
            ),
            "features[1].geometry",
            "self-intersection",
        ),
        (
            json.dumps(bad([GOOD, feature({"type": "Polygon", "coordinates": "nope"}, code="x", team="t")])),
            "features[1].geometry",
            "malformed coordinates",
        ),
        (
            json.dumps(
                bad([feature({"type": "Polygon", "coordinates": square(320000, 3500000, 100)}, code="x", team="t")])
            ),
            "features[0].geometry",
            "WGS84",
        ),
        (json.dumps(bad([GOOD, feature(GOOD["geometry"], code="x")])), "features[1].properties.team", "team"),
        (json.dumps(bad([GOOD, feature(GOOD["geometry"], code="", team="t")])), "features[1].properties.code", "code"),
        (
            json.dumps(bad([{"type": "Feature", "geometry": GOOD["geometry"]}])),
            "features[0].properties",
            "code and team",
        ),
    ],
)
def test_bad_grid_file(tmp_path: Path, content: str, field: str | None, phrase: str) -> None:
    path = tmp_path / "cells.geojson"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        GridIndex.load(path)
    assert caught.value.file == str(path)
    assert caught.value.field == field
    assert phrase.lower() in caught.value.reason.lower()


def test_missing_grid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        GridIndex.load(tmp_path / "nope.geojson")
