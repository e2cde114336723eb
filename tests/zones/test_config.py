"""load_camera_config and CameraConfig in-process: error fields, paths, base directory, conveniences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.zones.conftest import valid_config, write_yaml
from zones.config import CameraConfig, format_loc, load_camera_config
from zones.errors import ConfigError, InputError


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("zones", 0, "polygon"), "zones[0].polygon"),
        (("calibration", "points", 3), "calibration.points[3]"),
        (("zones", 2, "allowed", 0, "from"), "zones[2].allowed[0].from"),
        (("timezone",), "timezone"),
        (("location", "x\n"), "location.'x\\n'"),
        (("zones", 0, "名称"), "zones[0].名称"),
        ((), ""),
    ],
)
def test_format_loc(loc: tuple[str | int, ...], expected: str) -> None:
    assert format_loc(loc) == expected


def test_load_valid_config(tmp_path: Path) -> None:
    config = load_camera_config(write_yaml(tmp_path / "camera.yaml", valid_config()))
    assert config.id == "cam-jfdl-01"
    assert [z.name for z in config.zones] == ["sidewalk-north", "shopfront-row"]
    assert config.zones[0].allowed[0].from_ == "18:00"
    assert config.zones[1].anchor is None and config.zones[1].min_overlap == 0.5
    assert config.max_gap_s == 30.0
    assert config.view_radius_m == 50
    assert config.calibration is not None and config.calibration.max_reprojection_error_m == 2.0
    assert config.grid is not None and config.grid.team == "team-a"


def test_config_error_carries_file_and_first_field(tmp_path: Path) -> None:
    data = valid_config()
    data["zones"][0]["polygon"] = [[0.1, 0.1], [0.2, 0.2]]
    data["timezone"] = "Mars/Olympus"
    path = write_yaml(tmp_path / "camera.yaml", data)
    with pytest.raises(ConfigError) as caught:
        load_camera_config(path)
    error = caught.value
    assert isinstance(error, InputError)
    assert error.file == str(path)
    assert error.field == "timezone"  # first in field order
    message = str(error)
    assert message.startswith(f"{path}: timezone: unknown IANA timezone 'Mars/Olympus'")
    assert "1 more problem: zones[0].polygon: a polygon needs at least 3 points" in message


def test_yaml_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "camera.yaml"
    path.write_text("id: cam-1\nname: x\nzones:\n  - name: a\n   polygon: [[0, 0]]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"YAML syntax error: line 5, column \d+"):
        load_camera_config(path)


def test_validation_error_names_yaml_line(tmp_path: Path) -> None:
    path = tmp_path / "camera.yaml"
    data = valid_config()
    data["zones"][1]["dwell_s"] = -1
    write_yaml(path, data)
    line = next(i for i, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "dwell_s: -1" in row)
    with pytest.raises(ConfigError) as caught:
        load_camera_config(path)
    assert caught.value.field == "zones[1].dwell_s"
    assert f"(line {line})" in str(caught.value)


def test_sexagesimal_times_read_back(tmp_path: Path) -> None:
    # YAML 1.1 reads an unquoted 18:00 as the integer 1080; the config must still mean 18:00.
    path = tmp_path / "camera.yaml"
    write_yaml(path, valid_config())
    text = path.read_text(encoding="utf-8").replace("'18:00'", "18:00").replace("'22:00'", "22:00")
    assert "from: 18:00" in text
    path.write_text(text, encoding="utf-8")
    window = load_camera_config(path).zones[0].allowed[0]
    assert (window.from_, window.to) == ("18:00", "22:00")


def test_paths_resolve_against_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "cams"
    sub.mkdir()
    config = load_camera_config(write_yaml(sub / "camera.yaml", valid_config()))
    monkeypatch.chdir(tmp_path)
    assert config.base_dir == sub.resolve()
    assert config.resolve("clip.mp4") == sub.resolve() / "clip.mp4"
    assert config.resolve("/data/clip.mp4") == Path("/data/clip.mp4")
    assert config.resolve_source() == str(sub.resolve() / "clip.mp4")


@pytest.mark.parametrize(
    ("source", "expected"),
    [("rtsp://10.0.0.5/stream1", "rtsp://10.0.0.5/stream1"), (0, 0), ("http://cam/mjpg", "http://cam/mjpg")],
)
def test_stream_sources_are_not_paths(source: str | int, expected: str | int) -> None:
    data = valid_config()
    data["source"] = source
    assert CameraConfig.model_validate(data).resolve_source() == expected


def test_model_validate_without_file_uses_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = CameraConfig.model_validate(valid_config())
    assert config.base_dir == tmp_path
    assert config.resolve("cells.geojson") == tmp_path / "cells.geojson"


@pytest.mark.parametrize(
    ("mutate", "loc", "phrase"),
    [
        (lambda d: d["zones"][1].update(name="sidewalk-north"), ("zones", 1, "name"), "duplicate zone name"),
        (lambda d: d["zones"][0].update(polygon=[[0, 0], [1, 1]]), ("zones", 0, "polygon"), "at least 3 points"),
        (lambda d: d.update(timezone="Nowhere/City"), ("timezone",), "unknown IANA timezone"),
        (lambda d: d.update(unknown=1), ("unknown",), "Extra inputs are not permitted"),
    ],
)
def test_model_validate_raises_validation_error(mutate: Any, loc: tuple[Any, ...], phrase: str) -> None:
    data = valid_config()
    mutate(data)
    with pytest.raises(ValidationError) as caught:
        CameraConfig.model_validate(data)
    first = caught.value.errors()[0]
    # Model-level checks carry the exact place below the model in ctx["sub_loc"].
    assert tuple(first["loc"]) + tuple((first.get("ctx") or {}).get("sub_loc", ())) == loc
    assert phrase in first["msg"]


def test_optional_extras(tmp_path: Path) -> None:
    data = valid_config()
    data.update(class_map={"cart": "stall", "clothes": "laundry"}, max_gap_s=12.5, frame_size=[1280, 720])
    data["zones"][1].update(anchor="overlap", min_overlap=0.25)
    data["zones"].append(
        {
            "name": "px-zone",
            "polygon": [[10, 400], [600, 400], [600, 700]],
            "relative": False,
            "categories": ["illegal_structure"],
        }
    )
    config = load_camera_config(write_yaml(tmp_path / "camera.yaml", data))
    assert config.class_map == {"cart": "stall", "clothes": "laundry"}
    assert config.max_gap_s == 12.5
    assert config.frame_size == (1280, 720)
    assert config.zones[1].min_overlap == 0.25
    assert config.zones[2].relative is False


def test_whole_day_window_and_alias_by_name() -> None:
    data = valid_config()
    data["zones"][0]["allowed"] = [{"days": ["Sat", "sun"], "from_": "00:00", "to": "24:00"}]
    window = CameraConfig.model_validate(data).zones[0].allowed[0]
    assert window.days == ["sat", "sun"]
    assert window.model_dump(by_alias=True) == {"days": ["sat", "sun"], "from": "00:00", "to": "24:00"}


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_camera_config(tmp_path)


def test_dump_validates_again() -> None:
    config = CameraConfig.model_validate(valid_config())
    assert CameraConfig.model_validate(config.model_dump(by_alias=True)) == config
    assert CameraConfig.model_validate_json(config.model_dump_json(by_alias=True)) == config
    assert str(config.tz) == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("unit", "phone"),
    [
        ("shop-0127", False),
        ("320102001001", False),  # a 12-digit grid code is an id, not a phone number
        ("320102001001-0127", False),
        ("13912345678", True),
        ("shop-13912345678", True),
        ("139-1234-5678", True),
        ("+86 139 1234 5678", True),
        ("008613912345678", True),
        ("025-84561234", True),
        ("02584561234", True),
        ("+49 30 1234567", True),
    ],
)
def test_responsible_unit_is_never_a_phone_number(unit: str, phone: bool) -> None:
    data = valid_config()
    data["zones"][1]["responsible"]["unit"] = unit
    if not phone:
        assert CameraConfig.model_validate(data).zones[1].responsible.unit == unit  # type: ignore[union-attr]
        return
    with pytest.raises(ValidationError) as caught:
        CameraConfig.model_validate(data)
    first = caught.value.errors()[0]
    assert first["loc"] == ("zones", 1, "responsible", "unit")
    assert "looks like a phone number" in first["msg"]


def test_remind_first_fields_are_optional_and_read_back() -> None:
    config = CameraConfig.model_validate(valid_config())
    assert config.zones[0].responsible is None and config.zones[0].remind_first_s is None
    shop = config.zones[1]
    assert shop.responsible is not None
    assert (shop.responsible.unit, shop.responsible.name, shop.remind_first_s) == ("shop-0127", "张记水果店", 600)
