"""Every camera-config mistake through the real console script: exit 2, file + field path, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod

from tests.zones.conftest import valid_config, write_yaml

STREETWATCH = Path(sys.executable).parent / "streetwatch"

Mutation = Callable[[dict[str, Any]], Any]


def put(path: str, value: Any) -> Mutation:
    """Set ``a.b.0.c`` in the config to ``value``."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


def move_calibration_point(index: int, metres: float) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        point = data["calibration"]["points"][index]
        point["lon"], point["lat"], _ = Geod(ellps="WGS84").fwd(point["lon"], point["lat"], 60.0, metres)

    return mutate


GRID_OK = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"code": "320102001001", "team": "team-a"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[118.79, 32.05], [118.80, 32.05], [118.80, 32.07], [118.79, 32.05]]],
            },
        }
    ],
}
GRID_NO_TEAM = {
    "type": "FeatureCollection",
    "features": [
        GRID_OK["features"][0],
        {
            "type": "Feature",
            "properties": {"code": "320102001002"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[118.80, 32.05], [118.81, 32.05], [118.81, 32.07], [118.80, 32.05]]],
            },
        },
    ],
}

# (mutation of the valid config, expected field path, key phrase of the message)
CASES = [
    pytest.param(
        put("zones.0.polygon", [[0.1, 0.1], [0.5, 0.5]]),
        "zones[0].polygon",
        "a polygon needs at least 3 points",
        id="polygon-two-points",
    ),
    pytest.param(
        put("zones.1.polygon", [[0.0, 0.4], [0.3, 0.62], [0.3, 0.4], [0.0, 0.62]]),
        "zones[1].polygon",
        "self-intersection",
        id="polygon-self-intersecting",
    ),
    pytest.param(
        put("zones.0.polygon", [[0.05, 0.6], [1.2, 0.6], [0.95, 0.98]]),
        "zones[0].polygon[1]",
        "relative coordinates must lie in 0..1",
        id="relative-outside-unit-square",
    ),
    pytest.param(
        put("exclude.0.polygon", [[0.9, -0.1], [1.0, 0.0], [1.0, 0.1]]),
        "exclude[0].polygon[0]",
        "relative coordinates must lie in 0..1",
        id="exclude-relative-outside",
    ),
    pytest.param(
        put("zones.0.categories", ["street_vending", "laundry"]),
        "zones[0].categories[1]",
        "'laundry' is not one of",
        id="unknown-category",
    ),
    pytest.param(put("zones.0.categories", []), "zones[0].categories", "at least 1 item", id="no-categories"),
    pytest.param(
        put("zones.0.categories", ["street_vending", "street_vending"]),
        "zones[0].categories",
        "category listed twice",
        id="duplicate-category",
    ),
    pytest.param(
        lambda d: d["calibration"].update(points=d["calibration"]["points"][:3]),
        "calibration.points",
        "at least 4 ground points",
        id="calibration-three-points",
    ),
    pytest.param(
        put(
            "calibration.points",
            [
                {"px": [100 + 90 * i, 600 - 40 * (i % 2)], "lon": 118.7969 + 0.00005 * i, "lat": 32.0603}
                for i in range(5)
            ],
        ),
        "calibration.points",
        "ground points (lon/lat) are collinear",
        id="calibration-ground-collinear",
    ),
    pytest.param(
        put(
            "calibration.points",
            [
                {"px": [100 + 90 * i, 600], "lon": 118.7969 + 0.00005 * i, "lat": 32.0603 + 0.00003 * (i % 2)}
                for i in range(5)
            ],
        ),
        "calibration.points",
        "pixel points (px) are collinear",
        id="calibration-pixels-collinear",
    ),
    pytest.param(
        move_calibration_point(3, 20.0),
        "calibration.points[3]",
        "m from where the other points place it",
        id="calibration-point-moved-20m",
    ),
    pytest.param(
        put("calibration.max_reprojection_error_m", 0.0),
        "calibration.max_reprojection_error_m",
        "greater than 0",
        id="calibration-zero-tolerance",
    ),
    pytest.param(put("timezone", "Asia/Shangai"), "timezone", "unknown IANA timezone", id="unknown-timezone"),
    pytest.param(put("timezone", "../../etc/passwd"), "timezone", "unknown IANA timezone", id="timezone-path"),
    pytest.param(
        put("zones.0.allowed.0.from", "25:00"),
        "zones[0].allowed[0].from",
        "HH:MM",
        id="window-hour-25",
    ),
    pytest.param(
        put("zones.0.allowed.0.to", "6pm"),
        "zones[0].allowed[0].to",
        "HH:MM",
        id="window-not-a-time",
    ),
    pytest.param(
        put("zones.0.allowed.0.days", ["monday"]),
        "zones[0].allowed[0].days[0]",
        "'monday' is not one of",
        id="window-unknown-day",
    ),
    pytest.param(put("zones.0.allowed.0.days", []), "zones[0].allowed[0].days", "at least 1 item", id="window-no-days"),
    pytest.param(
        put("zones.0.allowed.0.to", "18:00"),
        "zones[0].allowed[0].to",
        "the window would be empty",
        id="window-from-equals-to",
    ),
    pytest.param(
        drop("zones.0.allowed.0.from"), "zones[0].allowed[0].from", "required field is missing", id="window-no-from"
    ),
    pytest.param(
        put("zones.1.name", "sidewalk-north"),
        "zones[1].name",
        "duplicate zone name 'sidewalk-north'",
        id="duplicate-zone-name",
    ),
    pytest.param(put("zones.0.colour", "red"), "zones[0].colour", "unknown field", id="unknown-zone-field"),
    pytest.param(drop("id"), "id", "required field is missing", id="missing-id"),
    pytest.param(put("id", "Cam_01"), "id", "is not a camera id", id="bad-id"),
    pytest.param(
        put("location", {"lon": 218.0, "lat": 32.0}), "location.lon", "less than or equal to 180", id="lon-range"
    ),
    pytest.param(put("view_radius_m", -5), "view_radius_m", "greater than 0", id="negative-view-radius"),
    pytest.param(put("source", [1, 2]), "source", "source must be a video file path", id="source-list"),
    pytest.param(
        put("zones.0.min_overlap", 0.3),
        "zones[0].min_overlap",
        "only applies with anchor: overlap",
        id="min-overlap-without-overlap",
    ),
    pytest.param(put("zones.0.anchor", "top"), "zones[0].anchor", "'top' is not one of", id="unknown-anchor"),
    pytest.param(put("zones.0.dwell_s", 0), "zones[0].dwell_s", "greater than 0", id="zero-dwell"),
    pytest.param(
        put("class_map", {"cart": "vehicle"}), "class_map.cart", "'vehicle' is not one of", id="class-map-target"
    ),
    pytest.param(
        lambda d: d.update(
            frame_size=[640, 360],
            zones=[{**d["zones"][1], "polygon": [[0, 0], [700, 0], [700, 100]], "relative": False}],
        ),
        "zones[0].polygon[1]",
        "outside frame_size",
        id="pixel-polygon-outside-frame",
    ),
    pytest.param(put("grid_cells", "missing.geojson"), "grid_cells", "not found", id="grid-cells-missing"),
    pytest.param(
        put("zones.1.remind_first_s", 0), "zones[1].remind_first_s", "greater than or equal to 1", id="remind-zero"
    ),
    pytest.param(
        put("zones.1.remind_first_s", -600),
        "zones[1].remind_first_s",
        "greater than or equal to 1",
        id="remind-negative",
    ),
    pytest.param(
        put("zones.1.remind_first_s", 86401),
        "zones[1].remind_first_s",
        "less than or equal to 86400",
        id="remind-over-a-day",
    ),
    pytest.param(
        put("zones.1.responsible.unit", ""), "zones[1].responsible.unit", "at least 1 character", id="unit-empty"
    ),
    pytest.param(
        put("zones.1.responsible.unit", "   "), "zones[1].responsible.unit", "must not be blank", id="unit-blank"
    ),
    pytest.param(
        put("zones.1.responsible.unit", "u" * 65),
        "zones[1].responsible.unit",
        "at most 64 characters",
        id="unit-65-chars",
    ),
    pytest.param(
        put("zones.1.responsible.unit", "139 1234 5678"),
        "zones[1].responsible.unit",
        "looks like a phone number",
        id="unit-phone-number",
    ),
    pytest.param(
        put("zones.1.responsible.name", "张记水果店 025-84561234"),
        "zones[1].responsible.name",
        "looks like a phone number",
        id="unit-name-with-phone",
    ),
    pytest.param(
        put("zones.1.responsible", {"name": "张记水果店"}),
        "zones[1].responsible.unit",
        "required field is missing",
        id="unit-missing",
    ),
]


def run_check(config_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run(
        [str(STREETWATCH), "check", str(config_path)], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_console_script_installed() -> None:
    assert STREETWATCH.exists(), f"{STREETWATCH} missing: run .venv/bin/pip install -e '.[dev]'"


def test_valid_config_passes(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "camera.yaml", valid_config())
    result = run_check(config)
    assert result.returncode == 0, result.stderr
    assert "cam-jfdl-01 is valid (sidewalk-north, shopfront-row)" in result.stdout


@pytest.mark.parametrize(("mutate", "field", "phrase"), CASES)
def test_invalid_config_exits_2_naming_field(tmp_path: Path, mutate: Mutation, field: str, phrase: str) -> None:
    data = valid_config()
    mutate(data)
    config = write_yaml(tmp_path / "camera.yaml", data)
    result = run_check(config)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert f"{config}: {field}: " in result.stderr, result.stderr
    assert phrase in result.stderr, result.stderr


# Files that are not a valid config at all: (file text or None for "no file", key phrase)
FILE_CASES = [
    pytest.param("id: cam-1\nzones: [\n  - name: x\n", "YAML syntax error: line 3", id="yaml-syntax"),
    pytest.param("- id: cam-1\n- name: x\n", "the top level must be a mapping", id="top-level-list"),
    pytest.param("just a sentence\n", "the top level must be a mapping", id="top-level-scalar"),
    pytest.param("", "the file is empty", id="empty-file"),
    pytest.param(None, "file not found", id="missing-file"),
    pytest.param(b"id: \xff\xfe\n", "not UTF-8 text", id="not-utf8"),
    pytest.param(
        "id: cam-1\nname: a\nid: cam-2\n", "key 'id' appears twice in one mapping (line 3)", id="duplicate-key"
    ),
]


@pytest.mark.parametrize(("content", "phrase"), FILE_CASES)
def test_unreadable_config_exits_2(tmp_path: Path, content: str | bytes | None, phrase: str) -> None:
    config = tmp_path / "camera.yaml"
    if isinstance(content, bytes):
        config.write_bytes(content)
    elif content is not None:
        config.write_text(content, encoding="utf-8")
    result = run_check(config)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert f"{config}: " in result.stderr
    assert phrase in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        pytest.param(GRID_OK, None, id="good-grid-file"),
        pytest.param(GRID_NO_TEAM, "features[1].properties.team: ", id="feature-without-team"),
        pytest.param(
            {"type": "Feature"}, 'expected a GeoJSON object with "type": "FeatureCollection"', id="not-collection"
        ),
    ],
)
def test_grid_cells_file_checked(tmp_path: Path, grid: dict[str, Any], expected: str | None) -> None:
    (tmp_path / "cells.geojson").write_text(json.dumps(grid), encoding="utf-8")
    data = valid_config()
    data["grid_cells"] = "cells.geojson"
    config = write_yaml(tmp_path / "camera.yaml", data)
    result = run_check(config)
    if expected is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'cells.geojson'}: " in result.stderr
    assert expected in result.stderr, result.stderr
