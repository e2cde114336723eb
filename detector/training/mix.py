"""Training data mixes: several YOLO datasets, each with a weight, class names mapped to ours by name.

``streetwatch train --data gen.yaml --data real.yaml:0.3`` trains on one merged dataset written by
:func:`write_mix`: every image is a symlink (nothing is copied) beside a label file rewritten to our
class ids. A dataset's ``names`` are matched to ours by name, through an optional names map
(``{vendedor_ambulante: stall}``); labels of classes that are neither ours nor mapped are dropped and
counted, so such images still teach what not to report.

The weight of a dataset is how many times each of its images is seen per epoch: ``2`` lists every
image twice, ``0.3`` a seeded 30 % of them (the same 30 % every epoch, since ultralytics fixes the
list of a run). Validation uses every dataset's ``val`` split as it is (a dataset without one adds
none); the first dataset must have one or the mix takes its ``train`` split for validation and says so.

Real photographs are usually exported as one folder; :func:`write_holdout` splits such a folder into
train/val/test lists by *source image*: Roboflow's augmented copies of one photograph
(``<name>_png.rf.<hash>.jpg``) always land in the same split, so no near-duplicate crosses splits.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from zones.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataSource:
    """One ``--data PATH[:WEIGHT]`` argument."""

    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> DataSource:
        """``gen.yaml`` or ``real.yaml:0.3`` (a Windows drive letter or a colon in the path is kept)."""
        head, sep, tail = spec.rpartition(":")
        if sep and head and not tail.startswith(("/", "\\")):
            try:
                weight = float(tail)
            except ValueError:
                raise InputError(f"--data {spec!r}: the weight after ':' must be a number", file=spec) from None
            if not math.isfinite(weight) or weight <= 0 or weight > 100:
                raise InputError(f"--data {spec!r}: the weight must be in (0, 100]", file=spec)
            return cls(Path(head), weight)
        return cls(Path(spec), 1.0)


@dataclass
class MixReport:
    """What went into a mix: images per dataset and split, labels kept, renamed and dropped."""

    data_yaml: Path
    images: dict[str, dict[str, int]] = field(default_factory=dict)
    labels_kept: Counter[str] = field(default_factory=Counter)
    labels_dropped: Counter[str] = field(default_factory=Counter)
    renamed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{src}: " + ", ".join(f"{s} {n}" for s, n in splits.items()) for src, splits in self.images.items()]
        if self.renamed:
            out.append("classes mapped: " + ", ".join(f"{a} -> {b}" for a, b in sorted(self.renamed.items())))
        out.append("labels kept: " + (", ".join(f"{k} {v}" for k, v in sorted(self.labels_kept.items())) or "none"))
        if self.labels_dropped:
            out.append(
                "labels dropped (class not ours, not mapped): "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.labels_dropped.items()))
            )
        return out + self.notes


def load_names_map(path: Path | None) -> dict[str, str]:
    """A YAML mapping ``their_name: our_name``."""
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(f"cannot read the names map: {error}", file=str(path)) from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise InputError("a names map is a YAML mapping of dataset class name to our class name", file=str(path))
    return dict(raw)


def class_names(obj: Any) -> list[str]:
    """A dataset yaml's ``names`` (a list, or a mapping of id to name) in id order."""
    if isinstance(obj, dict):
        return [str(obj[k]) for k in sorted(obj)]
    if isinstance(obj, list):
        return [str(n) for n in obj]
    raise ValueError("names must be a list or a mapping of id to name")


def _read_dataset_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError("dataset yaml not found", file=str(path))
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(f"cannot read the dataset yaml: {error}", file=str(path)) from None
    if not isinstance(cfg, dict) or "names" not in cfg or "train" not in cfg:
        raise InputError("a dataset yaml needs 'train' and 'names'", file=str(path))
    return cfg


def held_out_split(path: Path) -> str:
    """The split to judge a model on: ``test``, or ``val`` when the dataset has no test split.

    ultralytics' own datasets and most Roboflow exports have only train/val.
    """
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InputError(f"cannot read the dataset yaml: {error}", file=str(path)) from None
    if not isinstance(cfg, dict):
        raise InputError("not a dataset yaml (a mapping with 'names' and the splits)", file=str(path))
    if cfg.get("test") is not None:
        return "test"
    if cfg.get("val") is not None:
        return "val"
    raise InputError("neither a 'test' nor a 'val' split", file=str(path), field="test")


def _root(path: Path, cfg: dict[str, Any]) -> Path:
    root = Path(str(cfg.get("path") or path.parent))
    return root if root.is_absolute() else (path.parent / root).resolve()


def split_images(path: Path, cfg: dict[str, Any], split: str) -> list[Path]:
    """The images of a split: a folder, a ``.txt`` list of images, or a list of either (ultralytics' forms)."""
    entry = cfg.get(split)
    if entry is None:
        return []
    root = _root(path, cfg)
    images: list[Path] = []
    for item in entry if isinstance(entry, list) else [entry]:
        p = Path(str(item))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            images.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES))
        elif p.suffix.lower() == ".txt" and p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line:
                    q = Path(line)
                    images.append(q if q.is_absolute() else (p.parent / q).resolve())
        else:
            raise InputError(f"{split}: {item} is neither an image folder nor a list of images", file=str(path))
    return images


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _class_map(names: list[str], ours: list[str], names_map: dict[str, str], source: Path) -> dict[int, int]:
    unknown_targets = sorted({v for v in names_map.values() if v not in ours})
    if unknown_targets:
        raise InputError(f"names map targets {unknown_targets} are not our classes {ours}", file=str(source))
    mapping: dict[int, int] = {}
    for i, name in enumerate(names):
        target = names_map.get(name, name)
        if target in ours:
            mapping[i] = ours.index(target)
    return mapping


def rewrite_labels(src: Path, mapping: dict[int, int], names: list[str], ours: list[str], report: MixReport) -> str:
    if not src.is_file():
        return ""
    rows = []
    for lineno, row in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
        parts = row.split()
        if not parts:
            continue
        try:
            cls = int(float(parts[0]))
            values = [float(v) for v in parts[1:]]
        except ValueError:
            raise InputError(f"line {lineno}: not 'class cx cy w h'", file=str(src)) from None
        if len(values) != 4 or not all(math.isfinite(v) for v in values):
            raise InputError(f"line {lineno}: expected 4 finite box values (detection labels)", file=str(src))
        if cls not in mapping:
            report.labels_dropped[names[cls] if 0 <= cls < len(names) else str(cls)] += 1
            continue
        report.labels_kept[ours[mapping[cls]]] += 1
        rows.append(" ".join([str(mapping[cls]), *parts[1:]]))
    return "\n".join(rows) + ("\n" if rows else "")


def _repeat(images: list[Path], weight: float, seed: int) -> list[tuple[Path, int]]:
    """(image, copy number) pairs: ``weight`` copies of every image on average, chosen by a seeded RNG."""
    whole, part = int(weight), weight - int(weight)
    picks = [(img, k) for k in range(whole) for img in images]
    if part > 0 and images:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(images), size=max(1, round(part * len(images))), replace=False)
        picks += [(images[i], whole) for i in sorted(chosen)]
    return picks


def write_mix(
    sources: list[DataSource],
    out_dir: Path,
    ours: list[str],
    *,
    names_map: dict[str, str] | None = None,
    seed: int = 0,
) -> MixReport:
    """Write one ultralytics dataset merging ``sources``; returns what went in (its ``data_yaml``)."""
    out = Path(out_dir).resolve()
    names_map = names_map or {}
    report = MixReport(data_yaml=out / "data.yaml")
    for split in ("train", "val"):
        for sub in ("images", "labels"):
            d = out / sub / split
            if d.exists():
                for old in d.iterdir():
                    old.unlink()
            d.mkdir(parents=True, exist_ok=True)
    seen_prefix: set[str] = set()
    for index, source in enumerate(sources):
        cfg = _read_dataset_yaml(source.path)
        try:
            names = class_names(cfg["names"])
        except ValueError as error:
            raise InputError(f"names: {error}", file=str(source.path)) from None
        mapping = _class_map(names, ours, names_map, source.path)
        report.renamed.update({n: names_map[n] for n in names if n in names_map})
        if not mapping:
            report.notes.append(f"{source.path}: none of its classes {names} is ours: its images are negatives only")
        prefix = f"d{index}"
        assert prefix not in seen_prefix
        seen_prefix.add(prefix)
        counts: dict[str, int] = {}
        for split in ("train", "val"):
            images = split_images(source.path, cfg, split)
            if split == "val" and not images and index == 0:
                images = split_images(source.path, cfg, "train")
                report.notes.append(f"{source.path}: no 'val' split, validating on its 'train' images")
            if not images:
                continue
            picks = _repeat(images, source.weight, seed + index) if split == "train" else [(i, 0) for i in images]
            for image, copy in picks:
                if not image.is_file():
                    raise InputError(f"{split}: image listed but missing: {image}", file=str(source.path))
                # The hash keeps names unique when two folders hold files of the same name.
                tag = hashlib.sha1(str(image).encode()).hexdigest()[:8]
                stem = f"{prefix}_{tag}_{copy}_{image.stem}"
                link = out / "images" / split / f"{stem}{image.suffix.lower()}"
                os.symlink(image.resolve(), link)
                text = rewrite_labels(label_path(image), mapping, names, ours, report)
                (out / "labels" / split / f"{stem}.txt").write_text(text, encoding="utf-8")
            counts[split] = len(picks)
        report.images[f"{source.path} (x{source.weight:g})"] = counts
    data = {
        "path": str(out),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(ours)),
    }
    report.data_yaml.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return report


def source_group(image: Path) -> str:
    """The photograph an image was made from: Roboflow's ``<name>_png.rf.<hash>`` copies share ``<name>``."""
    stem = image.stem
    if ".rf." in stem:
        stem = stem.split(".rf.", 1)[0]
    return stem.removesuffix("_png").removesuffix("_jpg")


def _fraction_of(group: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def write_holdout(
    images_dir: Path,
    out_dir: Path,
    *,
    names: list[str],
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Path:
    """Split a folder of labelled images into train/val/test lists by source photograph; returns the data yaml.

    Membership is a pure function of (seed, source name), so adding photographs never moves old ones.
    """
    images_dir = Path(images_dir).resolve()
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError("no images in the folder", file=str(images_dir))
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise InputError("val and test fractions must be in [0, 1) and sum to less than 1", file=str(images_dir))
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {s: [] for s in _SPLITS}
    for image in images:
        u = _fraction_of(source_group(image), seed)
        split = "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"
        lists[split].append(str(image))
    data: dict[str, Any] = {"path": str(out)}
    for split, items in lists.items():
        (out / f"{split}.txt").write_text("\n".join(items) + ("\n" if items else ""), encoding="utf-8")
        data[split] = f"{split}.txt"
    data["names"] = dict(enumerate(names))
    data_yaml = out / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return data_yaml


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m detector.training.mix",
        description="Split a folder of labelled photographs into train/val/test by source photograph.",
    )
    ap.add_argument("images", type=Path, help="folder of images (labels in the sibling 'labels' folder)")
    ap.add_argument("--out", type=Path, required=True, help="where data.yaml and the split lists go")
    ap.add_argument("--names", required=True, help="the dataset's class names, comma-separated, in id order")
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    path = write_holdout(
        args.images,
        args.out,
        names=[n.strip() for n in args.names.split(",") if n.strip()],
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
    cfg = yaml.safe_load(path.read_text())
    for split in _SPLITS:
        n = len(split_images(path, cfg, split))
        print(f"{split}: {n} images")
    print(f"dataset: {path}")


if __name__ == "__main__":
    main()
