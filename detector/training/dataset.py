"""Write rendered street scenes as an ultralytics YOLO dataset (DESIGN §4).

Seed plan (every image is a pure function of its seed, so any set can be re-made exactly):

* training images: seeds ``0 .. N-1`` (``TRAIN_SEED0``);
* validation images: seeds from ``VAL_SEED0`` = 1 000 000;
* held-out test images: seeds from ``TEST_SEED0`` = 1 500 000;
* distractor-only images for the false-positive check: seeds from ``NEGATIVES_SEED0`` = 2 000 000.

The ranges never overlap for sets below 500 000 images. Within the train/val/test sets a
``negatives_fraction`` of the seeds (chosen by seed, so stable) are rendered with
``negatives_only=True``: look-alike scenes with empty label files, which teach the model what not
to report. Image sizes vary per seed inside ``imgsz_range`` (long side, pixels) and aspect ratio,
like real CCTV streams from 360p to 1080p.

Command line::

    python -m detector.training.dataset --out DIR --train N --val N --test N --negatives N
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from detector.training.scenes import CLASS_NAMES, render_scene

TRAIN_SEED0 = 0
VAL_SEED0 = 1_000_000
TEST_SEED0 = 1_500_000
NEGATIVES_SEED0 = 2_000_000
DEFAULT_IMGSZ_RANGE = (480, 960)  # what the default model was trained and measured on (its card)
_ASPECTS = ((16, 9), (16, 9), (16, 9), (4, 3), (4, 3), (3, 2))


def image_size(seed: int, imgsz_range: tuple[int, int]) -> tuple[int, int]:
    """(width, height) for a seed: long side in ``imgsz_range`` and a CCTV aspect ratio."""
    rng = np.random.default_rng([seed, 77])
    lo, hi = imgsz_range
    long_side = int(rng.integers(lo, hi + 1)) // 16 * 16
    aw, ah = _ASPECTS[int(rng.integers(len(_ASPECTS)))]
    if rng.random() < 0.1:  # portrait crops of corridors and lanes are rare but exist
        aw, ah = ah, aw
    if aw >= ah:
        return long_side, max(16, long_side * ah // aw // 2 * 2)
    return max(16, long_side * aw // ah // 2 * 2), long_side


def is_negative(seed: int, fraction: float) -> bool:
    """Whether the seed renders a distractor-only scene (stable per seed)."""
    return bool(np.random.default_rng([seed, 91]).random() < fraction)


def _render_one(job: tuple[int, str, str, bool, tuple[int, int], int]) -> int:
    seed, img_dir, lbl_dir, negative, imgsz_range, quality = job
    cv2.setNumThreads(1)  # one process per core already
    w, h = image_size(seed, imgsz_range)
    img, labels = render_scene(seed, w, h, negatives_only=negative)
    name = f"{seed:08d}"
    cv2.imwrite(str(Path(img_dir) / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    lines = [f"{c} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}" for c, cx, cy, bw, bh in labels]
    (Path(lbl_dir) / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return len(labels)


def _run(jobs: Sequence[tuple[int, str, str, bool, tuple[int, int], int]], workers: int, desc: str) -> int:
    total = 0
    if workers <= 1:
        for job in tqdm(jobs, desc=desc, unit="img"):
            total += _render_one(job)
        return total
    with get_context("spawn").Pool(workers) as pool:
        for n in tqdm(pool.imap_unordered(_render_one, jobs, chunksize=4), total=len(jobs), desc=desc, unit="img"):
            total += n
    return total


def _split_jobs(
    out: Path, split: str, seeds: Iterable[int], negatives_fraction: float, imgsz_range: tuple[int, int], quality: int
) -> list[tuple[int, str, str, bool, tuple[int, int], int]]:
    img_dir = out / "images" / split
    lbl_dir = out / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    return [(s, str(img_dir), str(lbl_dir), is_negative(s, negatives_fraction), imgsz_range, quality) for s in seeds]


def write_dataset(
    out_dir: Path | str,
    *,
    train_seeds: range,
    val_seeds: range,
    test_seeds: range | None = None,
    negatives_fraction: float = 0.1,
    workers: int | None = os.cpu_count(),
    imgsz_range: tuple[int, int] = DEFAULT_IMGSZ_RANGE,
    quality: int = 92,
) -> Path:
    """Render an ultralytics YOLO dataset and return the path of its ``data.yaml``.

    Layout: ``images/{train,val[,test]}/<seed>.jpg``, ``labels/{…}/<seed>.txt`` (``class cx cy w h``,
    normalised) and ``data.yaml`` with ``names: {0: stall, 1: laundry, 2: structure}``.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    splits: list[tuple[str, range]] = [("train", train_seeds), ("val", val_seeds)]
    if test_seeds is not None:
        splits.append(("test", test_seeds))
    for split, seeds in splits:
        jobs = _split_jobs(out, split, seeds, negatives_fraction, imgsz_range, quality)
        n = _run(jobs, workers or 1, f"render {split}")
        print(f"{split}: {len(jobs)} images, {n} labelled objects", flush=True)
    data: dict[str, object] = {"path": str(out), "train": "images/train", "val": "images/val"}
    if test_seeds is not None:
        data["test"] = "images/test"
    data["names"] = dict(enumerate(CLASS_NAMES))
    yaml_path = out / "data.yaml"
    yaml_path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return yaml_path


def write_negatives(
    out_dir: Path | str,
    seeds: range,
    *,
    workers: int | None = os.cpu_count(),
    imgsz_range: tuple[int, int] = DEFAULT_IMGSZ_RANGE,
    quality: int = 92,
) -> Path:
    """Render distractor-only scenes (no positives) for the false-positive check; returns the image folder.

    Layout: ``<out>/images/<seed>.jpg`` plus empty ``<out>/labels/<seed>.txt``.
    """
    out = Path(out_dir).resolve()
    img_dir, lbl_dir = out / "images", out / "labels"
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(s, str(img_dir), str(lbl_dir), True, imgsz_range, quality) for s in seeds]
    _run(jobs, workers or 1, "render negatives")
    return img_dir


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m detector.training.dataset", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (data.yaml, images/, labels/)")
    ap.add_argument("--train", type=int, default=6000, help="training images (seeds SEED0..SEED0+N-1)")
    ap.add_argument(
        "--train-seed0",
        type=int,
        default=TRAIN_SEED0,
        help="first training seed (a fine-tuning round can use seeds the previous round never saw)",
    )
    ap.add_argument("--val", type=int, default=600, help="validation images (seeds from --val-seed0)")
    ap.add_argument(
        "--val-seed0",
        type=int,
        default=VAL_SEED0,
        help="first validation seed (a calibration set can use seeds no evaluation ever saw)",
    )
    ap.add_argument("--test", type=int, default=400, help=f"held-out test images (seeds from {TEST_SEED0})")
    ap.add_argument(
        "--negatives",
        type=int,
        default=300,
        help="distractor-only images in <out>/negatives (seeds from --negatives-seed0)",
    )
    ap.add_argument("--negatives-seed0", type=int, default=NEGATIVES_SEED0, help="first distractor-only seed")
    ap.add_argument(
        "--negatives-fraction", type=float, default=0.1, help="share of distractor-only scenes inside train/val/test"
    )
    ap.add_argument("--min-size", type=int, default=DEFAULT_IMGSZ_RANGE[0], help="smallest long side, pixels")
    ap.add_argument("--max-size", type=int, default=DEFAULT_IMGSZ_RANGE[1], help="largest long side, pixels")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    size = (args.min_size, args.max_size)
    path = write_dataset(
        args.out,
        train_seeds=range(args.train_seed0, args.train_seed0 + args.train),
        val_seeds=range(args.val_seed0, args.val_seed0 + args.val),
        test_seeds=range(TEST_SEED0, TEST_SEED0 + args.test) if args.test > 0 else None,
        negatives_fraction=args.negatives_fraction,
        workers=args.workers,
        imgsz_range=size,
    )
    print(f"dataset: {path}")
    if args.negatives > 0:
        neg = write_negatives(
            args.out / "negatives",
            range(args.negatives_seed0, args.negatives_seed0 + args.negatives),
            workers=args.workers,
            imgsz_range=size,
        )
        print(f"negatives: {neg}")


if __name__ == "__main__":
    main()
