"""Zone membership: anchors by class, overlap, boundaries, relative vs pixel, exclusion, speed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.zones.conftest import valid_config
from zones.config import CameraConfig, ZoneConfig
from zones.detections import CLASS_IDS, Detections
from zones.geometry import CameraZones, Zone

W, H = 1280, 720


def dets(boxes: Sequence[Sequence[float]], classes: Sequence[str]) -> Detections:
    return Detections(
        xyxy=np.array(boxes, dtype=np.float64).reshape(-1, 4),
        confidence=np.full(len(boxes), 0.9),
        class_id=np.array([CLASS_IDS[c] for c in classes], dtype=np.int64),
    )


def zone(
    polygon: Sequence[Sequence[float]], relative: bool = False, width: int = W, height: int = H, **extra: Any
) -> Zone:
    config = ZoneConfig.model_validate(
        {"name": "z", "polygon": polygon, "relative": relative, "categories": ["street_vending"], **extra}
    )
    return Zone(config, width, height)


# Pixel square [100, 300] x [100, 300].
SQUARE = [[100, 100], [300, 100], [300, 300], [100, 300]]


@pytest.mark.parametrize(
    ("box", "cls", "anchor", "inside"),
    [
        # stall/structure default to the bottom-centre, laundry to the centre.
        ([150, 250, 250, 290], "stall", None, True),
        ([150, 250, 250, 320], "stall", None, False),  # bottom below the zone
        ([150, 250, 250, 320], "laundry", None, True),  # centre (200, 285) inside
        ([150, 250, 250, 320], "structure", None, False),
        ([150, 50, 250, 100], "stall", None, True),  # bottom-centre exactly on the top edge
        ([250, 250, 350, 300], "stall", None, True),  # bottom-centre (300, 300) is the corner
        ([251, 250, 351, 300], "stall", None, False),  # one pixel past the corner
        # zone-set anchors override the class default
        ([150, 250, 250, 320], "stall", "center", True),
        ([150, 250, 250, 320], "laundry", "bottom_center", False),
        # overlap: fraction of box area inside >= min_overlap (0.5 by default)
        ([200, 200, 400, 300], "stall", "overlap", True),  # exactly half inside
        ([201, 200, 401, 300], "stall", "overlap", False),  # just under half
        ([0, 0, 400, 400], "laundry", "overlap", False),  # zone covers a quarter of the box
        ([120, 120, 140, 140], "structure", "overlap", True),  # wholly inside
        ([500, 500, 600, 600], "stall", "overlap", False),  # disjoint
        ([200, 200, 200, 200], "stall", "overlap", True),  # zero-area box: judged by its point
    ],
)
def test_membership_table(box: list[float], cls: str, anchor: str | None, inside: bool) -> None:
    z = zone(SQUARE, anchor=anchor)
    assert z.contains(dets([box], [cls])).tolist() == [inside]


@pytest.mark.parametrize(("min_overlap", "inside"), [(0.25, True), (0.26, False), (1.0, False)])
def test_min_overlap(min_overlap: float, inside: bool) -> None:
    z = zone(SQUARE, anchor="overlap", min_overlap=min_overlap)
    assert z.contains(dets([[0, 0, 400, 400]], ["stall"])).tolist() == [inside]


def test_empty_detections() -> None:
    for anchor in (None, "center", "overlap"):
        assert zone(SQUARE, anchor=anchor).contains(Detections.empty()).shape == (0,)
    cz = CameraZones(CameraConfig.model_validate(valid_config()), W, H)
    assert cz.excluded(Detections.empty()).shape == (0,)


def test_dwell_override_and_defaults() -> None:
    data = valid_config()
    cz = CameraZones(CameraConfig.model_validate(data), W, H)
    assert cz.zone("sidewalk-north").dwell_s("hanging_laundry") == 180.0  # zone override
    assert cz.zone("shopfront-row").dwell_s("storefront_overflow") == 180.0
    assert cz.zone("shopfront-row").dwell_s("illegal_structure") == 600.0
    assert cz.zone("shopfront-row").dwell_s("hanging_laundry") == 300.0
    assert [z.name for z in cz.zones] == ["sidewalk-north", "shopfront-row"]
    assert cz.zone("sidewalk-north").categories == ("street_vending", "hanging_laundry")
    assert cz.zone("sidewalk-north").categories_for("stall") == ("street_vending",)
    assert str(cz.timezone) == "Asia/Shanghai"
    with pytest.raises(KeyError, match="no zone 'nowhere'"):
        cz.zone("nowhere")


def test_frame_size_scales_pixel_polygons() -> None:
    data = valid_config()
    data["frame_size"] = [640, 360]
    del data["calibration"]  # its px were measured on 1280x720
    data["zones"][1].update(polygon=[[0, 144], [192, 144], [192, 223.2], [0, 223.2]], relative=False)
    scaled = CameraZones(CameraConfig.model_validate(data), 1280, 720)
    relative = CameraZones(CameraConfig.model_validate(valid_config()), 1280, 720)
    assert scaled.zone("shopfront-row").polygon.equals(relative.zone("shopfront-row").polygon)


# ---------------------------------------------------------------- properties


@st.composite
def star_polygon(draw: st.DrawFn) -> tuple[int, int, list[list[int]]]:
    """A frame size and a simple polygon with integer pixel vertices inside it."""
    width = draw(st.integers(32, 4000))
    height = draw(st.integers(32, 3000))
    n = draw(st.integers(3, 9))
    cx, cy = draw(st.floats(0.3, 0.7)) * width, draw(st.floats(0.3, 0.7)) * height
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi), min_size=n, max_size=n, unique=True)))
    radii = draw(st.lists(st.floats(0.05, 0.3), min_size=n, max_size=n))
    vertices = [
        [round(cx + r * width * math.cos(a)), round(cy + r * height * math.sin(a))]
        for a, r in zip(angles, radii, strict=True)
    ]
    polygon = shapely.Polygon(vertices)
    assume(polygon.is_valid and polygon.area > 1.0 and len({tuple(v) for v in vertices}) == n)
    return width, height, vertices


def boxes_around(
    draw: Callable[[st.SearchStrategy[Any]], Any], width: int, height: int, targets: Sequence[Sequence[int]]
) -> npt.NDArray[np.float64]:
    """Random boxes plus boxes whose bottom-centre and centre fall exactly on the target points."""
    n = draw(st.integers(0, 30))
    xs = draw(st.lists(st.integers(0, width), min_size=n * 2, max_size=n * 2))
    ys = draw(st.lists(st.integers(0, height), min_size=n * 2, max_size=n * 2))
    random = [
        [
            min(xs[2 * i], xs[2 * i + 1]),
            min(ys[2 * i], ys[2 * i + 1]),
            max(xs[2 * i], xs[2 * i + 1]),
            max(ys[2 * i], ys[2 * i + 1]),
        ]
        for i in range(n)
    ]
    half_w = draw(st.integers(1, 40))
    half_h = draw(st.integers(1, 40))
    exact = [[x - half_w, y - 2 * half_h, x + half_w, y] for x, y in targets]  # bottom-centre on target
    exact += [[x - half_w, y - half_h, x + half_w, y + half_h] for x, y in targets]  # centre on target
    return np.array(random + exact, dtype=np.float64).reshape(-1, 4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data(), shape=star_polygon(), anchor=st.sampled_from([None, "bottom_center", "center", "overlap"]))
def test_relative_and_pixel_polygons_agree(
    data: st.DataObject, shape: tuple[int, int, list[list[int]]], anchor: str | None
) -> None:
    width, height, vertices = shape
    relative = [[x / width, y / height] for x, y in vertices]
    by_pixel = zone(vertices, relative=False, width=width, height=height, anchor=anchor)
    by_fraction = zone(relative, relative=True, width=width, height=height, anchor=anchor)
    boxes = boxes_around(data.draw, width, height, vertices)
    classes = data.draw(
        st.lists(st.sampled_from(["stall", "laundry", "structure"]), min_size=len(boxes), max_size=len(boxes))
    )
    detections = dets(boxes.tolist(), classes)
    assert by_pixel.polygon.equals_exact(by_fraction.polygon, 0.0)
    np.testing.assert_array_equal(by_pixel.contains(detections), by_fraction.contains(detections))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    x0=st.integers(0, 600),
    y0=st.integers(0, 300),
    w=st.integers(2, 600),
    h=st.integers(2, 400),
    cls=st.sampled_from(["stall", "laundry", "structure"]),
    relative=st.booleans(),
)
def test_anchor_on_boundary_is_inside(
    data: st.DataObject, x0: int, y0: int, w: int, h: int, cls: str, relative: bool
) -> None:
    x1, y1 = x0 + w, y0 + h
    corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    outline = [[x / W, y / H] for x, y in corners] if relative else corners
    z = zone(outline, relative=relative)
    # A point on one of the four edges (integer coordinates, so exactly representable).
    edge = data.draw(st.integers(0, 3))
    t = data.draw(st.integers(0, max(w, h)))
    point = [[min(x0 + t, x1), y0], [x1, min(y0 + t, y1)], [min(x0 + t, x1), y1], [x0, min(y0 + t, y1)]][edge]
    half_w, half_h = data.draw(st.integers(1, 50)), data.draw(st.integers(1, 50))
    px, py = point
    box = (
        [px - half_w, py - 2 * half_h, px + half_w, py]
        if cls != "laundry"
        else [px - half_w, py - half_h, px + half_w, py + half_h]
    )
    assert z.contains(dets([box], [cls])).tolist() == [True]
    # Just outside that edge is out.
    nudge = [[0, -1], [1, 0], [0, 1], [-1, 0]][edge]
    outside = [box[0] + nudge[0], box[1] + nudge[1], box[2] + nudge[0], box[3] + nudge[1]]
    assert z.contains(dets([outside], [cls])).tolist() == [False]


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    mask=st.tuples(st.integers(0, 1000), st.integers(0, 600), st.integers(1, 280), st.integers(1, 120)),
)
def test_exclusion_wins(data: st.DataObject, mask: tuple[int, int, int, int]) -> None:
    mx, my, mw, mh = mask
    config = valid_config()
    config["zones"] = [
        {
            "name": "everywhere",
            "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
            "categories": ["street_vending", "hanging_laundry", "illegal_structure"],
        }
    ]
    config["exclude"] = [{"polygon": [[mx, my], [mx + mw, my], [mx + mw, my + mh], [mx, my + mh]], "relative": False}]
    cz = CameraZones(CameraConfig.model_validate(config), W, H)
    n = data.draw(st.integers(1, 20))
    xs = data.draw(st.lists(st.integers(0, W), min_size=n, max_size=n))
    ys = data.draw(st.lists(st.integers(0, H), min_size=n, max_size=n))
    classes = data.draw(st.lists(st.sampled_from(["stall", "laundry", "structure"]), min_size=n, max_size=n))
    # Anchor each detection at (x, y) by its class: centre for laundry, bottom-centre otherwise.
    boxes = [
        [x - 4, y - 8, x + 4, y] if c != "laundry" else [x - 4, y - 4, x + 4, y + 4]
        for x, y, c in zip(xs, ys, classes, strict=True)
    ]
    detections = dets(boxes, classes)
    in_mask = np.array([mx <= x <= mx + mw and my <= y <= my + mh for x, y in zip(xs, ys, strict=True)])
    np.testing.assert_array_equal(cz.excluded(detections), in_mask)
    memberships = cz.memberships(detections)
    assert cz.zone("everywhere").contains(detections).all()
    np.testing.assert_array_equal(memberships["everywhere"], ~in_mask)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), shape=star_polygon(), min_overlap=st.floats(0.05, 1.0))
def test_overlap_matches_per_box_reference(
    data: st.DataObject, shape: tuple[int, int, list[list[int]]], min_overlap: float
) -> None:
    width, height, vertices = shape
    z = zone(vertices, width=width, height=height, anchor="overlap", min_overlap=min_overlap)
    boxes = boxes_around(data.draw, width, height, vertices)
    detections = dets(boxes.tolist(), ["stall"] * len(boxes))
    reference = []
    for x1, y1, x2, y2 in boxes:  # the slow, obvious way
        box = shapely.box(x1, y1, x2, y2)
        if box.area == 0:
            reference.append(z.polygon.intersects(shapely.Point((x1 + x2) / 2, (y1 + y2) / 2)))
        else:
            reference.append(box.intersection(z.polygon).area / box.area >= min_overlap - 1e-9)
    assert z.contains(detections).tolist() == reference


# ---------------------------------------------------------------- speed


def random_detections(n: int, seed: int = 0) -> Detections:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [W - 80, H - 80], (n, 2))
    wh = rng.uniform(4, 80, (n, 2))
    return Detections(xyxy=np.column_stack([xy, xy + wh]), confidence=np.full(n, 0.5), class_id=rng.integers(0, 3, n))


@pytest.mark.parametrize(
    ("anchor", "n", "budget_s"), [(None, 100_000, 0.5), ("center", 100_000, 0.5), ("overlap", 1000, 0.25)]
)
def test_contains_is_vectorised(anchor: str | None, n: int, budget_s: float) -> None:
    # A Python loop over shapely points costs ~15-30 µs per box (2-3 s for 100 000); vectorised it is ~20 ms.
    z = zone(
        [[0.1, 0.2], [0.9, 0.25], [0.8, 0.9], [0.3, 0.7], [0.05, 0.95]],
        relative=True,
        anchor=anchor,
    )
    detections = random_detections(n)
    z.contains(detections[:10])  # warm up
    start = time.perf_counter()
    inside = z.contains(detections)
    elapsed = time.perf_counter() - start
    assert inside.shape == (n,) and 0.1 < inside.mean() < 0.6
    assert elapsed < budget_s, f"{n} boxes took {elapsed:.3f} s"
