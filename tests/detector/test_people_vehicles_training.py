"""How the people-and-vehicles model is made (``detector/training/distractors.py``): crop labels, the COCO
head cut to six classes, and the weight-space interpolation of its card's recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detector.model.people_vehicles import read_card
from detector.training.distractors import (
    CLASSES,
    COCO_IDS,
    RenderedObject,
    crop_labels,
    interpolate,
    rendered_objects,
    slice_coco,
)

COCO = Path(__file__).resolve().parents[2].parent / "shared" / "pretrained" / "yolov8n-coco.pt"


def _person(box: tuple[float, float, float, float]) -> RenderedObject:
    return RenderedObject("person", "people_and_vehicles", box)


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        pytest.param([_person((10, 20, 30, 60))], [(0, 0.2, 0.4, 0.2, 0.4)], id="inside"),
        pytest.param(
            [RenderedObject("car", "people_and_vehicles", (0, 0, 100, 50))], [(2, 0.5, 0.25, 1, 0.5)], id="car"
        ),
        pytest.param([_person((-10, 0, 30, 40))], [(0, 0.15, 0.2, 0.3, 0.4)], id="cut-by-the-edge-kept"),
        pytest.param([_person((-30, 0, 10, 40))], [], id="mostly-outside-dropped"),
        pytest.param([_person((120, 0, 140, 40))], [], id="outside"),
        pytest.param([RenderedObject("cabinet", "street_furniture", (10, 10, 50, 50))], [], id="furniture-unlabelled"),
        pytest.param(
            [RenderedObject("umbrella_stall", "labelled_violations", (0, 0, 90, 90))], [], id="stall-unlabelled"
        ),
    ],
)
def test_crop_labels(objects: list[RenderedObject], expected: list[tuple[float, ...]]) -> None:
    labels = crop_labels(objects, left=0, top=0, width=100, height=100)
    assert len(labels) == len(expected)
    for label, want in zip(labels, expected, strict=True):
        assert label[0] == want[0]
        assert np.allclose(label[1:], want[1:])


def test_rendered_objects_are_the_training_render_with_every_judged_object() -> None:
    from detector.training.dataset import DEFAULT_IMGSZ_RANGE, image_size
    from detector.training.scenes import render_scene

    seed = 3_000_000
    image, objects = rendered_objects(seed)
    width, height = image_size(seed, DEFAULT_IMGSZ_RANGE)
    same, _ = render_scene(seed, width, height)
    assert np.array_equal(image, same)  # what the default model was trained on, not a look-alike
    assert {o.group for o in objects} <= {"people_and_vehicles", "labelled_violations", "street_furniture"}
    assert any(o.group == "people_and_vehicles" for o in objects)
    for obj in objects:
        x0, y0, x1, y1 = obj.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_interpolate_mixes_every_floating_point_tensor(tmp_path: Path) -> None:
    import torch

    shipped = read_card().weights
    checkpoint = torch.load(shipped, map_location="cpu", weights_only=False)
    model = checkpoint["model"].float()
    shifted = tmp_path / "shifted.pt"
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor += 1.0
    torch.save({**checkpoint, "model": model.half()}, shifted)
    mixed = interpolate(shipped, shifted, 0.25, tmp_path / "mixed.pt")
    base = torch.load(shipped, map_location="cpu", weights_only=False)["model"].float().state_dict()
    out = torch.load(mixed, map_location="cpu", weights_only=False)["model"].float().state_dict()
    for name, value in base.items():
        if value.is_floating_point():
            assert torch.allclose(out[name], value + 0.25, atol=0.01), name
        else:
            assert torch.equal(out[name], value), name


@pytest.mark.skipif(not COCO.exists(), reason=f"COCO weights not present at {COCO} (../shared absent)")
def test_slicing_the_coco_head_keeps_those_classes_scores_exactly(tmp_path: Path) -> None:
    import ultralytics
    from ultralytics import YOLO

    bus = str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")
    sliced = YOLO(str(slice_coco(COCO, tmp_path / "sliced.pt")))
    assert tuple(sliced.names.values()) == CLASSES
    coco = YOLO(str(COCO)).predict(bus, conf=0.25, classes=list(COCO_IDS), verbose=False)[0].boxes
    ours = sliced.predict(bus, conf=0.25, verbose=False)[0].boxes
    assert len(coco) == len(ours) >= 5  # the bus and four people
    assert [COCO_IDS[int(c)] for c in ours.cls] == [int(c) for c in coco.cls]
    assert np.allclose(ours.conf.numpy(), coco.conf.numpy(), atol=1e-4)
    assert np.allclose(ours.xyxy.numpy(), coco.xyxy.numpy(), atol=0.5)
