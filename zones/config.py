"""Camera config (DESIGN §3.2): pydantic schema and the loader that turns every problem into a ConfigError.

Fields beyond the contract example, all optional:

- ``calibration.max_reprojection_error_m`` (default 2.0): a calibration point whose ground position
  disagrees with the homography fitted on the other points by more than this is rejected at load.
- ``grid_cells``: path (relative to the config file) of a GeoJSON FeatureCollection of 单元网格
  polygons with properties ``code`` and ``team``; an alert is assigned to the cell containing it,
  else to ``grid``.
- ``class_map``: model class name -> ``stall`` | ``laundry`` | ``structure``, for foreign models.
- ``max_gap_s``: how long an incident survives unseen (default 30 s, DESIGN §3.4a).
- ``frame_size``: ``[w, h]`` of the frames that calibration ``px`` and pixel (``relative: false``)
  polygons were measured on; they are scaled when the video has another size. Without it they are
  taken as pixels of the analysed video.

Allowed-window times may be written unquoted (``from: 18:00``): YAML 1.1 reads that as the
sexagesimal integer 1080, which is turned back into ``"18:00"``.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from shapely.validation import explain_validity

from zones.alert import REMIND_FIRST_MAX_S, GridRef, ResponsibleUnit
from zones.categories import CATEGORIES, DEFAULT_MAX_GAP_S, Anchor, Category, ModelClass
from zones.errors import ConfigError
from zones.schedule import DAYS, Day, Window, parse_hhmm

if TYPE_CHECKING:
    from zones.grid import GridIndex

__all__ = [
    "AllowedWindow",
    "Calibration",
    "CalibrationPoint",
    "CameraConfig",
    "ExcludeMask",
    "GridRef",
    "Location",
    "ResponsibleUnit",
    "ZoneConfig",
    "brief",
    "format_loc",
    "load_camera_config",
]

MAX_POLYGON_POINTS: Final = 1000
# The largest config the schema allows (256 zones of 1000 points) is under 800 000 YAML nodes once
# aliases are expanded; more than this is an alias bomb ("billion laughs"), refused before it is built.
MAX_YAML_NODES: Final = 1_000_000
DEFAULT_MAX_REPROJECTION_ERROR_M: Final = 2.0
DEFAULT_MIN_OVERLAP: Final = 0.5
# Calibration points closer to a line than this (metres on the ground, pixels in the image) are
# treated as collinear: a homography through them is undetermined.
_COLLINEAR_GROUND_M: Final = 0.5
_COLLINEAR_PIXELS: Final = 2.0


_BRIEF = reprlib.Repr()  # keyword arguments only from Python 3.12
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother = 2, 60, 60
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = _BRIEF.maxset = 4


def brief(value: Any) -> str:
    """A bounded repr of user input for messages (a value may be a 1 MB string or a huge structure)."""
    return _BRIEF.repr(value)


def _at(message: str, *sub_loc: str | int) -> PydanticCustomError:
    """A validation error whose location is ``sub_loc`` below the model that raises it.

    pydantic places model-validator errors at the model itself; the loader appends ``sub_loc`` so
    the user is pointed at e.g. ``zones[1].name`` rather than ``zones``.
    """
    return PydanticCustomError("streetwatch_config", message, {"sub_loc": sub_loc})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _sexagesimal_to_hhmm(value: Any) -> Any:
    # YAML 1.1 turns an unquoted 18:00 into 1080 (base 60); give the user back what they wrote.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60:
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


HHMM = Annotated[str, BeforeValidator(_sexagesimal_to_hhmm)]
DayName = Annotated[Day, BeforeValidator(_lower)]


class AllowedWindow(_Strict):
    """A weekly window during which the zone's categories are legal (e.g. a night market)."""

    days: list[DayName] = Field(
        min_length=1, max_length=7, description="Days the window starts on: mon tue wed thu fri sat sun."
    )
    from_: HHMM = Field(
        alias="from",
        max_length=5,
        description='Local start time "HH:MM" (camera timezone).',
    )
    to: HHMM = Field(
        max_length=5,
        description='Local end time "HH:MM"; not after `from` means it ends the next day; "24:00" is midnight.',
    )

    @field_validator("days")
    @classmethod
    def _unique_days(cls, days: list[Day]) -> list[Day]:
        duplicates = sorted({d for d in days if days.count(d) > 1}, key=DAYS.index)
        if duplicates:
            raise ValueError(f"day listed twice: {', '.join(duplicates)}")
        return days

    @field_validator("from_")
    @classmethod
    def _valid_from(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @field_validator("to")
    @classmethod
    def _valid_to(cls, value: str) -> str:
        parse_hhmm(value, allow_24=True)
        return value

    @model_validator(mode="after")
    def _nonempty(self) -> AllowedWindow:
        if parse_hhmm(self.from_) == parse_hhmm(self.to, allow_24=True):
            raise _at(
                f"from and to are both {self.from_}: the window would be empty "
                '(for the whole day write from: "00:00", to: "24:00")',
                "to",
            )
        return self

    def window(self) -> Window:
        return Window(
            weekdays=frozenset(DAYS.index(d) for d in self.days),
            start_min=parse_hhmm(self.from_),
            end_min=parse_hhmm(self.to, allow_24=True),
        )


Point2 = tuple[float, float]


class PolygonOwner(_Strict):
    """Shared checks of a polygon in relative (0..1) or pixel coordinates."""

    polygon: list[Point2] = Field(
        max_length=MAX_POLYGON_POINTS,
        description="Outline [[x, y], …] in order around the area; 0..1 fractions when relative, else pixels.",
    )
    relative: bool = Field(default=True, description="true: fractions of width/height; false: pixels.")

    @field_validator("polygon")
    @classmethod
    def _enough_points(cls, polygon: list[Point2]) -> list[Point2]:
        distinct = {tuple(p) for p in polygon}
        if len(distinct) < 3:
            raise ValueError(f"a polygon needs at least 3 points (got {len(distinct)} distinct)")
        if not all(np.isfinite(c) for p in polygon for c in p):
            raise ValueError("polygon coordinates must be finite numbers")
        return polygon

    @model_validator(mode="after")
    def _check_polygon(self) -> PolygonOwner:
        for i, (x, y) in enumerate(self.polygon):
            if self.relative and not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise _at(
                    f"relative coordinates must lie in 0..1, got [{x:g}, {y:g}] "
                    "(set relative: false for pixel coordinates)",
                    "polygon",
                    i,
                )
            if not self.relative and (x < 0 or y < 0):
                raise _at(f"pixel coordinates cannot be negative, got [{x:g}, {y:g}]", "polygon", i)
        shape = shapely.Polygon(self.polygon)
        if not shape.is_valid:
            reason = readable_validity(explain_validity(shape))
            raise _at(
                f"the polygon is not a simple outline ({reason}); list the points in order around the "
                "area without crossing edges",
                "polygon",
            )
        if shape.area <= 0:
            raise _at("the polygon has no area", "polygon")
        return self


def readable_validity(reason: str) -> str:
    """GEOS "Self-intersection[0.5 0.5]" -> "self-intersection at [0.5, 0.5]"."""
    match = re.match(r"^(?P<what>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)\]$", reason)
    if match is None:
        return reason
    return f"{match['what'].strip().lower()} at [{float(match['x']):g}, {float(match['y']):g}]"


class ExcludeMask(PolygonOwner):
    """An area whose detections are ignored (e.g. a legal market hall, a sign, the timestamp overlay)."""


class ZoneConfig(PolygonOwner):
    """A named image area and the categories that are violations there."""

    name: str = Field(min_length=1, max_length=128, description="Zone name, unique within the camera.")
    categories: list[Category] = Field(
        min_length=1, max_length=len(CATEGORIES), description="Violation categories this zone makes illegal."
    )
    dwell_s: float | None = Field(
        default=None, gt=0, le=7 * 86400, description="Per-zone dwell override in seconds (default per category)."
    )
    anchor: Anchor | None = Field(
        default=None,
        description="bottom_center | center | overlap; default by object class (bottom_center for stall and "
        "structure, center for laundry).",
    )
    min_overlap: float = Field(
        default=DEFAULT_MIN_OVERLAP,
        gt=0,
        le=1,
        description="For anchor: overlap, the fraction of the box area inside the zone.",
    )
    allowed: list[AllowedWindow] = Field(
        default_factory=list, max_length=64, description="Windows when these categories are legal here."
    )
    responsible: ResponsibleUnit | None = Field(
        default=None,
        description="The 门前三包 unit answerable here: {unit: id the notifier knows, name: display name}; "
        "never a phone number.",
    )
    remind_first_s: int | None = Field(
        default=None,
        ge=1,
        le=REMIND_FIRST_MAX_S,
        description="Remind the unit first (live only); the case goes to an operator only if the violation "
        "is still there this many seconds after the reminder (1..86400).",
    )

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, categories: list[Category]) -> list[Category]:
        duplicates = sorted({c for c in categories if categories.count(c) > 1})
        if duplicates:
            raise ValueError(f"category listed twice: {', '.join(duplicates)}")
        return categories

    @model_validator(mode="after")
    def _overlap_only_with_overlap_anchor(self) -> ZoneConfig:
        # The default value is let through so that a dumped config validates again.
        if self.anchor != "overlap" and self.min_overlap != DEFAULT_MIN_OVERLAP:
            raise _at("min_overlap only applies with anchor: overlap", "min_overlap")
        return self


class Location(_Strict):
    lon: float = Field(ge=-180, le=180, description="Longitude, WGS84 degrees.")
    lat: float = Field(ge=-90, le=90, description="Latitude, WGS84 degrees.")


class CalibrationPoint(_Strict):
    px: tuple[Annotated[float, Field(ge=0, le=100_000)], Annotated[float, Field(ge=0, le=100_000)]] = Field(
        description="[x, y] pixel where the ground point appears."
    )
    lon: float = Field(ge=-180, le=180, description="Longitude of the ground point, WGS84.")
    lat: float = Field(ge=-90, le=90, description="Latitude of the ground point, WGS84.")


def _collinear(points: np.ndarray, tolerance: float) -> bool:
    """Whether all points lie within ``tolerance`` of their best-fitting line."""
    centred = points - points.mean(axis=0)
    normal = np.linalg.svd(centred, full_matrices=False)[2][-1]  # direction of least spread
    return bool(np.max(np.abs(centred @ normal)) < tolerance)


class Calibration(_Strict):
    """Ground control points: pixels whose WGS84 position is known (for pixel→ground geolocation)."""

    points: list[CalibrationPoint] = Field(
        max_length=500, description="At least 4 non-collinear ground points seen in the image (6+ recommended)."
    )
    max_reprojection_error_m: float = Field(
        default=DEFAULT_MAX_REPROJECTION_ERROR_M,
        gt=0,
        le=1000,
        description="Reject the calibration when a point is farther than this (metres) from where the "
        "homography fitted on the other points places it.",
    )

    @field_validator("points")
    @classmethod
    def _at_least_four(cls, points: list[CalibrationPoint]) -> list[CalibrationPoint]:
        if len(points) < 4:
            raise ValueError(f"a calibration needs at least 4 ground points (got {len(points)}); 6+ recommended")
        return points

    @model_validator(mode="after")
    def _not_degenerate(self) -> Calibration:
        pixels = np.array([p.px for p in self.points], dtype=np.float64)
        lat0 = float(np.mean([p.lat for p in self.points]))
        # Equirectangular metres are plenty to judge collinearity over a camera's view.
        ground = np.array([[p.lon * 111_320.0 * np.cos(np.radians(lat0)), p.lat * 110_540.0] for p in self.points])
        for i in range(len(self.points)):
            for j in range(i):
                if np.allclose(pixels[i], pixels[j]):
                    raise _at(f"same pixel as points[{j}]", "points", i, "px")
                if np.hypot(*(ground[i] - ground[j])) < 0.01:
                    raise _at(f"same ground position as points[{j}]", "points", i)
        if _collinear(ground, _COLLINEAR_GROUND_M):
            raise _at(
                "the ground points (lon/lat) are collinear: they all lie on one line, so the view "
                "cannot be calibrated; add points off that line",
                "points",
            )
        if _collinear(pixels, _COLLINEAR_PIXELS):
            raise _at(
                "the pixel points (px) are collinear: they all lie on one line in the image; add points off that line",
                "points",
            )
        return self


def _source(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("source must be a video file path, a stream URL (rtsp://…, http://…) or a webcam index")
    return value


def _camera_id(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[a-z0-9-]{1,64}", value):
        raise ValueError(f"{brief(value)} is not a camera id: use 1-64 lower-case letters, digits and '-'")
    return value


def _timezone(value: Any) -> Any:
    if isinstance(value, str):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA timezone {brief(value)} (e.g. Asia/Shanghai, UTC)") from None
    return value


class CameraConfig(_Strict):
    """One camera: where it stands, where its views are illegal and when (DESIGN §3.2)."""

    id: Annotated[str, BeforeValidator(_camera_id)] = Field(
        pattern=r"^[a-z0-9-]{1,64}$", description="Unique camera id: lower-case letters, digits, '-'."
    )
    name: str = Field(min_length=1, max_length=256, description="Free-text name, e.g. the street address.")
    source: Annotated[
        Annotated[str, Field(min_length=1, max_length=2048)] | Annotated[int, Field(ge=0, le=1024)],
        BeforeValidator(_source),
    ] = Field(description="Video file (relative to the config), stream URL, or webcam index.")
    timezone: Annotated[str, BeforeValidator(_timezone)] = Field(
        max_length=64, description="IANA timezone name; schedules are local time."
    )
    location: Location = Field(description="Where the camera stands (WGS84).")
    view_radius_m: float = Field(
        default=50.0, gt=0, le=100_000, description="Location error (metres) when there is no calibration."
    )
    calibration: Calibration | None = Field(default=None, description="Ground control points for geolocation.")
    grid: GridRef | None = Field(default=None, description="Default 单元网格 and team for this view.")
    grid_cells: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="GeoJSON FeatureCollection of grid cells (properties code, team), relative to this file.",
    )
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=256, description="Zones of this view.")
    exclude: list[ExcludeMask] = Field(
        default_factory=list, max_length=256, description="Masks: detections anchored here are ignored."
    )
    class_map: dict[Annotated[str, Field(min_length=1, max_length=128)], ModelClass] | None = Field(
        default=None, description="Model class name -> stall | laundry | structure, for foreign models."
    )
    max_gap_s: float = Field(
        default=DEFAULT_MAX_GAP_S, gt=0, le=86400, description="An incident survives unseen stretches this long."
    )
    frame_size: tuple[Annotated[int, Field(gt=0, le=100_000)], Annotated[int, Field(gt=0, le=100_000)]] | None = Field(
        default=None, description="[w, h] that calibration px and pixel polygons refer to."
    )

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _grid_index: GridIndex | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_camera(self) -> CameraConfig:
        seen: dict[str, int] = {}
        for i, zone in enumerate(self.zones):
            if zone.name in seen:
                raise _at(f"duplicate zone name {zone.name!r} (also zones[{seen[zone.name]}])", "zones", i, "name")
            seen[zone.name] = i
        if self.frame_size is not None:
            w, h = self.frame_size
            for i, zone in enumerate(self.zones):
                self._check_in_frame(zone, w, h, "zones", i)
            for i, mask in enumerate(self.exclude):
                self._check_in_frame(mask, w, h, "exclude", i)
            if self.calibration is not None:
                for i, point in enumerate(self.calibration.points):
                    x, y = point.px
                    if x > w or y > h:
                        raise _at(
                            f"px [{x:g}, {y:g}] lies outside frame_size [{w}, {h}]",
                            "calibration",
                            "points",
                            i,
                            "px",
                        )
        return self

    @staticmethod
    def _check_in_frame(owner: PolygonOwner, w: int, h: int, key: str, index: int) -> None:
        if owner.relative:
            return
        for j, (x, y) in enumerate(owner.polygon):
            if x > w or y > h:
                raise _at(f"[{x:g}, {y:g}] lies outside frame_size [{w}, {h}]", key, index, "polygon", j)

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def base_dir(self) -> Path:
        """Directory of the config file (cwd for configs built from a dict)."""
        return self._base_dir

    def resolve(self, path: str | Path) -> Path:
        """A path from the config, relative to the config file's directory."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self._base_dir / candidate

    def resolve_source(self) -> str | int:
        """``source`` ready to open: webcam index and URLs unchanged, file paths resolved."""
        if isinstance(self.source, int) or "://" in self.source:
            return self.source
        return str(self.resolve(self.source))

    def grid_index(self) -> GridIndex | None:
        """The ``grid_cells`` index, loaded once (ConfigError naming the file when it is bad)."""
        if self.grid_cells is None:
            return None
        if self._grid_index is None:
            from zones.grid import GridIndex

            self._grid_index = GridIndex.load(self.resolve(self.grid_cells))
        return self._grid_index


def format_loc(loc: Sequence[str | int]) -> str:
    """pydantic ``loc`` -> ``zones[0].polygon`` / ``calibration.points[3]``; a key with a line break or
    other unprintable character is quoted and escaped (``location.'x\\n'``), so messages stay one line."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part) if str(part).isprintable() else repr(str(part))
            out += f".{name}" if out else name
    return out


def error_loc(error: Mapping[str, Any]) -> tuple[str | int, ...]:
    loc = tuple(error.get("loc", ()))
    ctx = error.get("ctx") or {}
    if error.get("type") == "streetwatch_config":
        loc += tuple(ctx.get("sub_loc", ()))
    return loc


def error_message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid value"))
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = "unknown field (not part of the camera config; check the spelling)"
    elif kind in {"literal_error", "enum"}:
        expected = (error.get("ctx") or {}).get("expected", "")
        message = f"{brief(error.get('input'))} is not one of {expected}" if expected else message
    elif kind == "string_pattern_mismatch":
        message = f"{message}, got {brief(error.get('input'))}"
    return message


def _yaml_line(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """1-based line of the YAML node at ``loc`` (deepest node that exists)."""
    node = root
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expanded_size(root: yaml.Node) -> int | None:
    """Nodes in the document once aliases are expanded (capped above MAX_YAML_NODES); None for a cycle.

    Computed on the node graph, where an alias is one shared node, so a "billion laughs" costs no more
    than its text. A cycle (an alias inside its own anchor) would make the data infinitely deep.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = min(total, MAX_YAML_NODES + 1)
            continue
        if key in sizes:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                return None
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _duplicate_key(root: yaml.Node | None) -> tuple[str, int] | None:
    """First key repeated within one mapping (PyYAML silently keeps the last one)."""
    stack = [root] if root is not None else []
    visited: set[int] = set()  # an alias is the same node again: look at it once
    while stack:
        node = stack.pop()
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        return key.value, key.start_mark.line + 1
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


_PROBLEMS_SHOWN = 5


def _validation_error(error: ValidationError, path: Path, root: yaml.Node | None) -> ConfigError:
    items = error.errors()
    problems = []
    for item in items[: _PROBLEMS_SHOWN + 1]:  # one paragraph, even for a list of 1000 bad points
        loc = error_loc(item)
        line = _yaml_line(root, loc)
        where = f" (line {line})" if line is not None else ""
        problems.append((format_loc(loc), error_message(item) + where))
    field, message = problems[0]
    if len(items) > 1:
        more = "; ".join(f"{f or 'top level'}: {m}" for f, m in problems[1:])
        if len(items) > len(problems):
            more += f"; and {len(items) - len(problems)} more"
        message += f". {len(items) - 1} more problem{'s' if len(items) > 2 else ''}: {more}"
    return ConfigError(message, file=str(path), field=field or None)


def load_camera_config(path: str | Path) -> CameraConfig:
    """Read and validate a camera config; every problem becomes a ConfigError naming file and field."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a camera config file", file=str(path)) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text (byte {error.start})", file=str(path)) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror or error}", file=str(path)) from None
    root, data = _parse_yaml(text, path)
    duplicate = _duplicate_key(root)
    if duplicate is not None:
        key, key_line = duplicate
        raise ConfigError(
            f"key {key!r} appears twice in one mapping (line {key_line}); YAML would keep only the last", file=str(path)
        )
    if data is None:
        raise ConfigError(
            "the file is empty; expected a camera config mapping (id:, name:, source:, …)", file=str(path)
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level must be a mapping of fields (id:, name:, source:, …), got a {type(data).__name__}",
            file=str(path),
        )
    try:
        config = CameraConfig.model_validate(data)
    except ValidationError as error:
        raise _validation_error(error, path, root) from None
    config._base_dir = path.resolve().parent
    if config.calibration is not None:
        from zones.geo import Geolocator

        try:
            Geolocator.from_config(config)
        except ConfigError as error:
            line = _yaml_line(root, _parse_field(error.field or ""))
            where = f" (line {line})" if line is not None and error.field else ""
            raise ConfigError(error.reason + where, file=str(path), field=error.field) from None
    if config.grid_cells is not None:
        if not config.resolve(config.grid_cells).is_file():
            raise ConfigError(
                f"grid cells file {config.grid_cells!r} not found (looked at {config.resolve(config.grid_cells)})",
                file=str(path),
                field="grid_cells",
            )
        config.grid_index()
    return config


def _parse_yaml(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    """The document's node graph (for line numbers) and its data, built only once its size is known."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as error:
        raise ConfigError(
            f"YAML syntax error: character #x{error.character:04x} is not allowed in YAML (position {error.position})",
            file=str(path),
        ) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        size = _expanded_size(root)
        if size is None:
            raise ConfigError("YAML alias refers to itself (an anchor used inside its own value)", file=str(path))
        if size > MAX_YAML_NODES:
            raise ConfigError(
                f"the YAML expands to more than {MAX_YAML_NODES:,} values through its aliases (*name); "
                "a camera config is far smaller",
                file=str(path),
            )
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        reason = " ".join(str(error.problem or error).split())  # one line
        raise ConfigError(f"YAML syntax error: {where}{reason}", file=str(path)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"YAML syntax error: {' '.join(str(error).split())}", file=str(path)) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply to be a camera config", file=str(path)) from None
    finally:
        loader.dispose()


def _parse_field(field: str) -> list[str | int]:
    """``calibration.points[3]`` -> ["calibration", "points", 3] (inverse of format_loc)."""
    parts: list[str | int] = []
    for token in field.replace("[", ".[").split("."):
        if not token:
            continue
        if token.startswith("[") and token.endswith("]") and token[1:-1].isdigit():
            parts.append(int(token[1:-1]))
        else:
            parts.append(token)
    return parts
