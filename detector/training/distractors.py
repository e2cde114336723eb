"""Training data and starting weights for the people-and-vehicles model (issue #16, item 5).

The stationary-object finder holds whatever is new and stays; a person waiting or a car parked at the
kerb stays too. The people-and-vehicles model tells those apart: six COCO classes that stand or park
on a street (``CLASSES``). It starts from a COCO model (``../shared/pretrained``, real photographs)
with its class head cut to these six classes (:func:`slice_coco`; exact: YOLOv8 scores each class
with its own sigmoid, so dropping classes changes no other class's score), and is fine-tuned with the
backbone frozen on the training renders (``detector.training.scenes``) with their people, cars and
scooters labelled instead of stalls, laundry and structures (the renderer knows each object's kind),
so that it knows both real and rendered streets. (Pseudo-labels of the real aerial vendor photographs
were tried: the COCO model finds almost nothing from above, 21 boxes on 108 images.)

``python -m detector.training.distractors slice COCO.pt OUT.pt``, ``… render OUT --train N --val N``,
``… train OUT/data.yaml --start SLICED.pt``; the recipe as run is in the model card
``models/distractors/streetwatch-people-vehicles-v2.yaml``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import yaml
from tqdm import tqdm

CLASSES: Final = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
"""The distractor model's classes, in COCO's order."""
COCO_IDS: Final = (0, 1, 2, 3, 5, 7)
"""Each class's index among COCO's 80."""
RENDER_KIND_CLASS: Final = {"person": 0, "car": 2, "scooter": 3}
"""The renderer's object kinds that are distractor classes (its box truck is drawn as a car)."""


Label = tuple[int, float, float, float, float]
Box = tuple[float, float, float, float]
PEOPLE_VEHICLES: Final = "people_and_vehicles"
GROUPS: Final = (PEOPLE_VEHICLES, "labelled_violations", "street_furniture")


@dataclass(frozen=True)
class RenderedObject:
    kind: str
    group: str
    """``people_and_vehicles`` (to be found), ``labelled_violations`` or ``street_furniture`` (never)."""
    box: Box
    """Its visible pixels' box in the render."""


def rendered_objects(seed: int) -> tuple[np.ndarray, list[RenderedObject]]:
    """The training render of ``seed`` (the very image ``render_scene`` makes) and the objects in it that the
    finder could hold: people and vehicles, stalls, laundry and structures, street furniture."""
    from detector.training.dataset import DEFAULT_IMGSZ_RANGE, image_size
    from detector.training.scenes import build_scene
    from detector.training.scenes.effects import apply_effects

    width, height = image_size(seed, DEFAULT_IMGSZ_RANGE)
    scene = build_scene(seed, width, height)
    image, _, ids = scene.render_objects(scene.objects)
    image = apply_effects(image, np.random.default_rng(seed + 104729), scene.look)
    found = []
    for index, obj in enumerate(scene.objects):
        if obj.kind in PEOPLE_VEHICLE_KINDS:
            group = PEOPLE_VEHICLES
        elif obj.cls >= 0:
            group = "labelled_violations"
        elif obj.kind in OBSTRUCTION_LIKE_KINDS:
            group = "street_furniture"
        else:
            continue
        ys, xs = np.nonzero(ids == index + 2)
        if len(xs) >= MIN_VISIBLE_PX:
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            found.append(RenderedObject(obj.kind, group, box))
    return image, found


def crop_labels(objects: Sequence[RenderedObject], left: int, top: int, width: int, height: int) -> list[Label]:
    """YOLO labels of the people and vehicles in a crop: those with at least half their box inside it."""
    labels: list[Label] = []
    for obj in objects:
        if obj.group != PEOPLE_VEHICLES:
            continue
        x0, y0, x1, y1 = obj.box[0] - left, obj.box[1] - top, obj.box[2] - left, obj.box[3] - top
        cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
        if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < 0.5 * (x1 - x0) * (y1 - y0):
            continue
        labels.append(
            (
                RENDER_KIND_CLASS[obj.kind],
                (cx0 + cx1) / 2 / width,
                (cy0 + cy1) / 2 / height,
                (cx1 - cx0) / width,
                (cy1 - cy0) / height,
            )
        )
    return labels


def _write_labels(path: Path, labels: Sequence[Label]) -> None:
    lines = [f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for c, cx, cy, w, h in labels]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def interpolate(start: Path, tuned: Path, share: float, out: Path) -> Path:
    """Weight-space ensemble (WiSE-FT, Wortsman et al. 2022): every floating-point tensor, BatchNorm
    statistics included, ``(1 - share) * start + share * tuned``; keeps what the start knew of real
    photographs while taking most of what fine-tuning learnt of rendered streets."""
    import torch

    def load(path: Path) -> dict[str, Any]:
        checkpoint: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
        return checkpoint

    first, second = load(start), load(tuned)
    model = (second.get("ema") or second["model"]).float()
    own = (first.get("ema") or first["model"]).float().state_dict()
    mixed = {
        name: (1 - share) * own[name] + share * value if value.is_floating_point() else value
        for name, value in model.state_dict().items()
    }
    model.load_state_dict(mixed)
    torch.save({**second, "model": model.half(), "ema": None, "optimizer": None}, out)
    return out


def _crops_of_one(job: tuple[int, str, str]) -> int:
    from detector.model.obstructions import _crop

    seed, img_dir, lbl_dir = job
    cv2.setNumThreads(1)  # one process per core already
    image, objects = rendered_objects(seed)
    boxes = 0
    for number, obj in enumerate(objects):
        crop, (left, top) = _crop(image, obj.box)
        labels = crop_labels(objects, left, top, crop.shape[1], crop.shape[0])
        name = f"{seed:08d}-{number:02d}"
        cv2.imwrite(str(Path(img_dir) / f"{name}.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
        _write_labels(Path(lbl_dir) / f"{name}.txt", labels)
        boxes += len(labels)
    return boxes


def write_crops(out: Path, splits: dict[str, range], workers: int = os.cpu_count() or 1) -> Path:
    """Crops as the finder cuts them around every object of the renders (people and vehicles labelled,
    street furniture, stalls, laundry and structures as they are: what must not be called one), as an
    ultralytics dataset; returns its ``data.yaml``."""
    out = out.resolve()
    for split, seeds in splits.items():
        img_dir, lbl_dir = out / "images" / split, out / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(seed, str(img_dir), str(lbl_dir)) for seed in seeds]
        with get_context("spawn").Pool(max(1, workers)) as pool:
            boxes = sum(tqdm(pool.imap_unordered(_crops_of_one, jobs, chunksize=4), total=len(jobs), desc=split))
        crops = sum(1 for _ in img_dir.glob("*.jpg"))
        print(f"{split}: {len(jobs)} renders, {crops} crops, {boxes} people and vehicles", flush=True)
    return _data_yaml(out, {split: f"images/{split}" for split in splits})


def _data_yaml(out: Path, splits: dict[str, str | list[str]]) -> Path:
    data: dict[str, Any] = {"path": str(out), **splits, "names": dict(enumerate(CLASSES))}
    path = out / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def slice_coco(coco: Path, out: Path) -> Path:
    """The COCO checkpoint with its class head cut to ``CLASSES``: same boxes, same scores for these classes."""
    import torch
    from ultralytics import YOLO

    model: Any = YOLO(str(coco), task="detect").model
    head = model.model[-1]
    keep = torch.tensor(COCO_IDS)
    for branch in head.cv3:
        last = branch[-1]
        sliced = torch.nn.Conv2d(last.in_channels, len(CLASSES), 1)
        sliced.weight.data = last.weight.data[keep].clone()
        sliced.bias.data = last.bias.data[keep].clone()  # type: ignore[union-attr]
        branch[-1] = sliced
    head.nc = len(CLASSES)
    head.no = head.nc + head.reg_max * 4
    model.nc = len(CLASSES)
    model.yaml["nc"] = len(CLASSES)
    model.names = dict(enumerate(CLASSES))
    model.args = {**getattr(model, "args", {}), "task": "detect"}
    torch.save({"model": model, "train_args": {}, "date": None, "version": None}, out)
    return out


PEOPLE_VEHICLE_KINDS: Final = frozenset(RENDER_KIND_CLASS)
OBSTRUCTION_LIKE_KINDS: Final = frozenset({"cabinet", "planter", "bin", "cone", "aframe", "bench", "bollards", "sign"})
"""Rendered street furniture that, left on a pavement, looks like what ``sidewalk_obstruction`` reports."""
MIN_VISIBLE_PX: Final = 400


def evaluate(find: Any, seeds: range) -> dict[str, Any]:
    """How the finder would judge each rendered object: a crop around its box (as ``obstructions`` cuts
    it) and whether ``find(crop)`` (a people-and-vehicles model) returns a box on it (IoU ≥ ``COVERED_IOU``).

    People and vehicles should be found (recall); stalls, laundry, structures and street furniture must
    not be (each one found is an obstruction the finder would dismiss).
    """
    from detector.model.obstructions import COVERED_IOU, _crop
    from zones.detections import iou_matrix

    groups = {name: [0, 0] for name in GROUPS}
    by_kind: dict[str, list[int]] = {}
    for seed in tqdm(seeds, desc="evaluate", unit="img"):
        image, objects = rendered_objects(seed)
        for obj in objects:
            crop, (left, top) = _crop(image, obj.box)
            found = np.asarray(find(crop), dtype=np.float64).reshape(-1, 4) + np.array([left, top, left, top])
            hit = bool(len(found)) and bool((iou_matrix(found, np.array([obj.box]))[:, 0] >= COVERED_IOU).any())
            for counts in (groups[obj.group], by_kind.setdefault(obj.kind, [0, 0])):
                counts[0] += 1
                counts[1] += hit
    return {
        "seeds": [seeds.start, seeds.stop],
        "found_share": {name: round(hit / max(n, 1), 3) for name, (n, hit) in groups.items()},
        "objects": {name: n for name, (n, _) in groups.items()},
        "found_share_by_kind": {kind: round(hit / n, 3) for kind, (n, hit) in sorted(by_kind.items())},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.training.distractors", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    crops = commands.add_parser("crops", help="crops of renders, people and vehicles labelled")
    crops.add_argument("out", type=Path)
    crops.add_argument("--train", type=int, default=500)
    crops.add_argument("--train-seed0", type=int, default=3_000_000)
    crops.add_argument("--val", type=int, default=60)
    crops.add_argument("--val-seed0", type=int, default=3_100_000)
    cut = commands.add_parser("slice", help="COCO weights with the class head cut to the distractor classes")
    cut.add_argument("coco", type=Path)
    cut.add_argument("out", type=Path)
    judge = commands.add_parser("evaluate", help="people/vehicles found, furniture and violations dismissed")
    judge.add_argument("weights", type=Path)
    judge.add_argument("--seed0", type=int, default=3_200_000)
    judge.add_argument("--images", type=int, default=100)
    judge.add_argument("--imgsz", type=int, default=320)
    judge.add_argument("--confidence", type=float, default=0.35)
    mix = commands.add_parser("interpolate", help="(1 - SHARE) * START + SHARE * TUNED, tensor by tensor")
    mix.add_argument("start", type=Path)
    mix.add_argument("tuned", type=Path)
    mix.add_argument("share", type=float)
    mix.add_argument("out", type=Path)
    fit = commands.add_parser("train", help="fine-tune the sliced COCO weights on a distractor dataset")
    fit.add_argument("data", type=Path)
    fit.add_argument("--start", type=Path, required=True, help="the sliced COCO weights")
    fit.add_argument("--project", type=Path, default=Path("runs"))
    fit.add_argument("--name", default="people-vehicles")
    fit.add_argument("--epochs", type=int, default=4)
    fit.add_argument("--hours", type=float, default=None)
    fit.add_argument("--imgsz", type=int, default=512)
    fit.add_argument("--resume", action="store_true")
    fit.add_argument(
        "--freeze", type=int, default=22, help="layers kept as they are (22: all but the head; 10: the backbone)"
    )
    args = parser.parse_args(argv)
    if args.command == "crops":
        splits = {"train": range(args.train_seed0, args.train_seed0 + args.train)}
        if args.val:
            splits["val"] = range(args.val_seed0, args.val_seed0 + args.val)
        print(write_crops(args.out, splits))
    elif args.command == "evaluate":
        import json

        from ultralytics import YOLO

        model: Any = YOLO(str(args.weights), task="detect")

        def find(crop: np.ndarray) -> np.ndarray:
            result: Any = model.predict(crop, conf=args.confidence, imgsz=args.imgsz, verbose=False)[0]
            return np.asarray(result.boxes.xyxy.cpu().numpy(), dtype=np.float64)

        print(json.dumps(evaluate(find, range(args.seed0, args.seed0 + args.images)), indent=2))
    elif args.command == "interpolate":
        print(interpolate(args.start, args.tuned, args.share, args.out))
    elif args.command == "slice":
        print(slice_coco(args.coco, args.out))
    else:
        from detector.training.train import train

        best = train(
            args.data,
            model_yaml=str(args.start),
            epochs=args.epochs,
            time_hours=args.hours,
            imgsz=args.imgsz,
            freeze=args.freeze,
            project=args.project,
            name=args.name,
            resume=args.resume,
            workers=2,
            cache="ram",
            optimizer="AdamW",
            lr0=0.0005,
            warmup_epochs=0.5,
            warmup_bias_lr=0.0,
            close_mosaic=1,
            save_period=1,
        )
        print(best)


if __name__ == "__main__":
    main()
