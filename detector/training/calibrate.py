"""Per-class confidence thresholds chosen on labelled frames (``streetwatch calibrate``).

The model runs once at a low threshold over a labelled split (and, optionally, over frames that hold none
of the objects); every detection is matched to the labels (per class, most confident first, IoU ≥ 0.5).
Because a detection's match depends only on more confident ones, the precision, recall and false
detections of any higher threshold follow from that one pass. The chosen thresholds give the highest mean
recall over the classes while every class keeps ``min_precision`` and all classes together raise at most
``max_false_per_image`` false detections per image.

Those thresholds are *track* thresholds (``detector.incidents.track_score``): an incident fires once the
median of its recent scores reaches its class's threshold. The false-detection budget is therefore counted
per still image, which is per stationary track: only an object that stays for the dwell raises an alert,
the median of a stationary look-alike's scores over the dwell is its typical score, and a still frame
measures exactly that; a single frame that flickers above the threshold, which a per-frame count charged
in full, no longer raises anything. Each class also gets a ``min_score``, the lowest score of a box that
starts or continues a track: the lowest grid value at which at least ``MIN_SCORE_PRECISION`` of the boxes
are right (no lower than ``MIN_SCORE_FLOOR``, never above the threshold). Boxes between it and the
threshold raise nothing on their own; they let an object that hovers near the threshold be followed from
its first sighting, and the precision floor keeps look-alikes from being followed into real incidents.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import yaml
from tqdm import tqdm

from detector.model.wrapper import Detector
from detector.training.mix import IMAGE_SUFFIXES, class_names
from detector.training.train import split_files
from zones.detections import MODEL_CLASSES, Detections, iou_matrix
from zones.errors import InputError

MIN_IOU = 0.5
GRID = tuple(round(0.05 * step, 2) for step in range(1, 20))  # 0.05 … 0.95
COLLECT_CONFIDENCE = min(GRID)
MIN_SCORE_PRECISION = 0.5
"""At least half of the boxes that start or continue a track hit an object."""
MIN_SCORE_FLOOR = 0.25
"""ByteTrack starts no track below 0.25 (its ``new_track_thresh``): lower boxes would follow nothing."""


def match(found: Detections, truth_class: npt.NDArray[np.int64], truth_xyxy: npt.NDArray[np.float64]) -> Any:
    """Whether each detection hits a labelled object of its class (IoU ≥ MIN_IOU); the most confident
    detection takes an object first, and an object is taken once (a second box on it is false)."""
    hit = np.zeros(len(found), dtype=bool)
    for class_id in np.unique(found.class_id):
        mine = np.where(found.class_id == class_id)[0]
        mine = mine[np.argsort(-found.confidence[mine], kind="stable")]
        theirs = truth_xyxy[truth_class == class_id]
        if not len(theirs):
            continue
        taken = np.zeros(len(theirs), dtype=bool)
        for index, row in zip(mine, iou_matrix(found.xyxy[mine], theirs), strict=True):
            free = np.where(~taken & (row >= MIN_IOU))[0]
            if len(free):
                taken[free[np.argmax(row[free])]] = True
                hit[index] = True
    return hit


@dataclass(frozen=True)
class Sightings:
    """Every detection of one pass, per class: its confidence and whether it hit a labelled object."""

    confidence: tuple[npt.NDArray[np.float64], ...]
    hit: tuple[npt.NDArray[np.bool_], ...]
    instances: tuple[int, ...]
    images: int
    # Detections on frames that hold none of the objects (all false), when such frames were given.
    on_negatives: tuple[npt.NDArray[np.float64], ...] | None
    negative_images: int

    def at(self, class_id: int, threshold: float) -> dict[str, float | int]:
        """Hits, false detections, precision and recall of one class at ``threshold``."""
        kept = self.confidence[class_id] >= threshold
        hits = int(self.hit[class_id][kept].sum())
        false = int(kept.sum()) - hits
        if self.on_negatives is None:
            false_per_image = false / max(self.images, 1)
        else:
            false_per_image = int((self.on_negatives[class_id] >= threshold).sum()) / max(self.negative_images, 1)
        return {
            "hits": hits,
            "false": false,
            "precision": hits / max(int(kept.sum()), 1),
            "recall": hits / self.instances[class_id] if self.instances[class_id] else float("nan"),
            "false_per_image": false_per_image,
        }


def read_labels(label_file: Path, width: int, height: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """YOLO labels (``class cx cy w h``, normalised) as class ids and pixel boxes; no file means no objects."""
    if not label_file.is_file():
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4))
    try:
        text = label_file.read_text(encoding="utf-8")
        rows = np.loadtxt(text.splitlines(), ndmin=2) if text.strip() else np.zeros((0, 5))
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        raise InputError(f"not a YOLO label file: {error}", file=str(label_file)) from None
    if rows.shape[1] != 5:
        raise InputError(f"a label row needs 5 numbers, found {rows.shape[1]}", file=str(label_file))
    centre, size = rows[:, 1:3] * (width, height), rows[:, 3:5] * (width, height)
    return rows[:, 0].astype(np.int64), np.hstack([centre - size / 2, centre + size / 2])


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError("image folder not found", file=str(folder))
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _predict_all(detector: Detector, paths: Sequence[Path], desc: str) -> list[tuple[Path, Detections, int, int]]:
    done: list[tuple[Path, Detections, int, int]] = []
    # One image at a time: a batch of differently sized images is padded to a square, unlike a video's frames.
    for path in tqdm(paths, desc=desc, unit="img", disable=None):
        image = cv2.imread(str(path))
        if image is None:
            raise InputError("cannot read image", file=str(path))
        [found] = detector.predict([np.asarray(image, dtype=np.uint8)])
        # A still image is a stationary track whose scores are all this one: judged at the track threshold.
        done.append((path, detector.confident(found), image.shape[1], image.shape[0]))
    return done


@dataclass(frozen=True)
class LabelledSplit:
    """A split's images with their labels read up front (a broken label file stops the run before the model)."""

    images: list[Path]
    labels: dict[Path, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]  # normalised class ids, boxes 0..1


def labelled_split(data: Path, split: str) -> LabelledSplit:
    """The images of ``split`` in a YOLO dataset yaml and their labels, in our class ids (others dropped)."""
    try:
        config, files = split_files(data, split)
    except (OSError, ValueError, AttributeError, TypeError, yaml.YAMLError) as error:
        raise InputError(str(error), file=str(data)) from None
    label_of = dict(files)
    their_names = class_names(config.get("names") or {})
    ours = {i: MODEL_CLASSES.index(name) for i, name in enumerate(their_names) if name in MODEL_CLASSES}
    if not ours:
        raise InputError(f"none of our classes {list(MODEL_CLASSES)} is named", file=str(data), field="names")
    paths = [image for image, _ in files]
    if not paths:
        raise InputError(f"no images in the '{split}' split", file=str(data))
    labels = {}
    for path in paths:
        their_class, box = read_labels(label_of[path], 1, 1)
        known = np.array([c in ours for c in their_class.tolist()], dtype=bool)
        labels[path] = (np.array([ours[c] for c in their_class[known].tolist()], dtype=np.int64), box[known])
    return LabelledSplit(images=paths, labels=labels)


def collect(
    detector: Detector,
    data: Path,
    *,
    split: str = "val",
    negatives: Path | None = None,
) -> Sightings:
    """One pass of ``detector`` over a labelled split of ``data`` (and over ``negatives``, if given)."""
    labelled = labelled_split(data, split)
    negative_paths = _images(negatives) if negatives is not None else []
    if negatives is not None and not negative_paths:
        raise InputError("no images here", file=str(negatives))
    confidence: list[list[npt.NDArray[np.float64]]] = [[] for _ in MODEL_CLASSES]
    hit: list[list[npt.NDArray[np.bool_]]] = [[] for _ in MODEL_CLASSES]
    instances = [0] * len(MODEL_CLASSES)
    for path, found, width, height in _predict_all(detector, labelled.images, f"calibrate {split}"):
        truth_class, unit_box = labelled.labels[path]
        hits = match(found, truth_class, unit_box * (width, height, width, height))
        for class_id in range(len(MODEL_CLASSES)):
            mine = found.class_id == class_id
            confidence[class_id].append(found.confidence[mine])
            hit[class_id].append(hits[mine])
            instances[class_id] += int((truth_class == class_id).sum())
    on_negatives: tuple[npt.NDArray[np.float64], ...] | None = None
    if negative_paths:
        found_on = [d for _, d, _, _ in _predict_all(detector, negative_paths, "calibrate negatives")]
        on_negatives = tuple(
            np.concatenate([d.confidence[d.class_id == c] for d in found_on] or [np.zeros(0)])
            for c in range(len(MODEL_CLASSES))
        )
    return Sightings(
        confidence=tuple(np.concatenate(parts) for parts in confidence),
        hit=tuple(np.concatenate(parts).astype(bool) for parts in hit),
        instances=tuple(instances),
        images=len(labelled.images),
        on_negatives=on_negatives,
        negative_images=len(negative_paths),
    )


def choose_thresholds(
    sightings: Sightings,
    *,
    max_false_per_image: float,
    min_precision: float,
    fallback: Sequence[float],
) -> tuple[float, ...]:
    """The grid thresholds with the highest mean recall within both limits; a class without labelled
    objects keeps its ``fallback`` threshold (nothing here can say what it should be)."""
    options: list[list[tuple[float, float, float]]] = []  # per class: (threshold, recall, false per image)
    for class_id in range(len(MODEL_CLASSES)):
        grid = GRID if sightings.instances[class_id] else (fallback[class_id],)
        allowed = []
        for threshold in grid:
            stats = sightings.at(class_id, threshold)
            if sightings.instances[class_id] and stats["precision"] < min_precision and stats["hits"] + stats["false"]:
                continue
            recall = float(stats["recall"]) if sightings.instances[class_id] else 0.0
            allowed.append((threshold, recall, float(stats["false_per_image"])))
        options.append(allowed)
    best: tuple[float, float, tuple[float, ...]] | None = None
    for combination in itertools.product(*options):
        false = sum(option[2] for option in combination)
        if false > max_false_per_image + 1e-9:
            continue
        recall = float(np.mean([option[1] for option in combination]))
        # Equal recall: fewer false detections, then the higher thresholds (product order visits lower first).
        key = (recall, -false)
        if best is None or key >= best[:2]:
            best = (recall, -false, tuple(option[0] for option in combination))
    if best is None:
        raise InputError(
            f"no thresholds between {GRID[0]} and {GRID[-1]} keep precision >= {min_precision} for every class "
            f"with at most {max_false_per_image} false detections per image; relax --min-precision or "
            "--max-false-per-image, or label more frames"
        )
    return best[2]


def choose_min_scores(
    sightings: Sightings, thresholds: Sequence[float], fallback: Sequence[float] | None = None
) -> tuple[float, ...]:
    """Per class, the lowest grid value from ``MIN_SCORE_FLOOR`` up to its threshold whose boxes keep
    ``MIN_SCORE_PRECISION``; a class without labelled objects keeps ``fallback`` (else its threshold)."""
    chosen: list[float] = []
    for class_id, threshold in enumerate(thresholds):
        if not sightings.instances[class_id]:
            kept = threshold if fallback is None else min(float(fallback[class_id]), threshold)
            chosen.append(kept)
            continue
        pick = threshold
        for value in (g for g in GRID if MIN_SCORE_FLOOR - 1e-9 <= g <= threshold + 1e-9):
            stats = sightings.at(class_id, value)
            if stats["hits"] + stats["false"] == 0 or stats["precision"] >= MIN_SCORE_PRECISION:
                pick = value
                break
        chosen.append(pick)
    return tuple(chosen)


def calibrate(
    detector: Detector,
    data: Path,
    *,
    fallback: Sequence[float],
    split: str = "val",
    negatives: Path | None = None,
    max_false_per_image: float = 0.03,
    min_precision: float = 0.8,
    fallback_min_score: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Thresholds per class and what they give on the split: the report of ``streetwatch calibrate``.

    ``detector`` must run at ``COLLECT_CONFIDENCE`` or lower; ``fallback`` (per class id) is kept for a
    class the split has no labelled objects of."""
    if detector.min_confidence > COLLECT_CONFIDENCE:
        raise ValueError(f"calibration needs detections down to confidence {COLLECT_CONFIDENCE}")
    sightings = collect(detector, data, split=split, negatives=negatives)
    chosen = choose_thresholds(
        sightings, max_false_per_image=max_false_per_image, min_precision=min_precision, fallback=fallback
    )
    min_scores = choose_min_scores(sightings, chosen, fallback_min_score)
    per_class: dict[str, dict[str, Any]] = {}
    for class_id, (name, threshold) in enumerate(zip(MODEL_CLASSES, chosen, strict=True)):
        stats = sightings.at(class_id, threshold)
        low = sightings.at(class_id, min_scores[class_id])
        per_class[name] = {
            "threshold": threshold,
            "min_score": min_scores[class_id],
            "min_score_precision": round(float(low["precision"]), 4),
            "min_score_recall": round(float(low["recall"]), 4) if sightings.instances[class_id] else None,
            "precision": round(float(stats["precision"]), 4),
            "recall": round(float(stats["recall"]), 4) if sightings.instances[class_id] else None,
            "false_per_image": round(float(stats["false_per_image"]), 4),
            "instances": sightings.instances[class_id],
        }
    return {
        "confidence": dict(zip(MODEL_CLASSES, chosen, strict=True)),
        "min_score": dict(zip(MODEL_CLASSES, min_scores, strict=True)),
        "per_class": per_class,
        "false_per_image": round(sum(float(c["false_per_image"]) for c in per_class.values()), 4),
        "false_counted_on": "negatives" if negatives is not None else split,
        "images": sightings.images,
        "negative_images": sightings.negative_images,
        "limits": {"max_false_per_image": max_false_per_image, "min_precision": min_precision},
    }
