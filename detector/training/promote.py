"""``streetwatch model promote``: make retrained weights the default model only when they are no worse.

A candidate (e.g. ``runs/train/weights/best.pt``, fine-tuned on the city's reviewed verdicts) is judged on
the city's held-out split of a YOLO dataset (its ``test`` split when it has one, else ``val``):

1. mAP50 per class (classes with labelled instances in the split) of the candidate and of the current
   default model (the newest card in the models folder), both at the current card's image size, with
   ``detector.training.train.evaluate``;
2. the candidate's per-class thresholds, chosen on the same split by ``detector.training.calibrate``
   with its defaults; where that is impossible (too few frames to resolve the false-detection limit, or
   no thresholds within the limits) the current card's thresholds are kept;
3. an audit of every sample clip (DESIGN §3.6a) with the candidate at those thresholds, compared with the
   clip's truth exactly as the metric gate does (``detector.audit.sample_clips.compare``). Calibrated thresholds
   are used only when every clip still matches with them: otherwise (a small split moves a threshold
   enough to change a clip's result) the clips are audited again at the current card's thresholds, and
   when they all match there the candidate is judged, and promoted, with the current thresholds. So the
   very same weights as the current default are always accepted: equal mAP, and the current thresholds
   reproduce the current clip results.

It is promoted only when no class got worse (candidate mAP50 >= current mAP50, no tolerance) and every
clip matches at the thresholds it is promoted with: the weights are copied into the models folder as
``<name>.pt`` beside a card ``<name>.yaml`` whose ``created`` makes it the newest, hence the default of
audit, run and detect. The card records which thresholds it carries and, after a fallback, the
calibrated ones that were set aside and the clips they changed.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml

from detector.audit.sample_clips import SAMPLES_DIR, ClipCheck, SampleClip, compare, read_alerts, sample_clips
from detector.model.backends import ENV_BACKEND
from detector.model.wrapper import (
    MODELS_DIR,
    Detector,
    ModelCard,
    _is_card,
    class_thresholds,
    default_card,
    read_card,
    sha256_of,
)
from detector.training import mix
from detector.training.calibrate import COLLECT_CONFIDENCE, calibrate, labelled_split
from detector.training.train import evaluate, split_files
from zones.detections import MODEL_CLASSES
from zones.errors import InputError, ModelError

_CALIBRATE_DEFAULTS = inspect.signature(calibrate).parameters
MAX_FALSE_PER_IMAGE: float = _CALIBRATE_DEFAULTS["max_false_per_image"].default
# Below this many frames a single false detection already breaks calibrate's false-detection limit, so the
# limit cannot be measured (it would silently become "no false detection at all"): thresholds are kept.
MIN_CALIBRATION_IMAGES = math.ceil(1 / MAX_FALSE_PER_IMAGE)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

T = TypeVar("T")
# Evaluations and clip audits already done in this process, keyed by everything their result depends on
# (weights hash, thresholds, image size, backend, input files): the same model is never run twice.
_MEMO: dict[tuple[Any, ...], Any] = {}


def _memo(key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    if key not in _MEMO:
        _MEMO[key] = compute()
    result: T = _MEMO[key]
    return result


def _signature(*paths: Path) -> tuple[tuple[str, int, int], ...]:
    """What a cached result depends on in the file system: each path with its size and modification time."""
    out = []
    for path in paths:
        stat = path.stat()
        out.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


@dataclass(frozen=True)
class PromoteRequest:
    candidate: Path
    data: Path
    """A dataset folder holding ``data.yaml``, or the path of a data yaml."""
    models_dir: Path = MODELS_DIR
    name: str | None = None
    """The new model's name (default ``streetwatch-city-<UTC date>-<first 8 hex of the sha256>``)."""
    dry_run: bool = False
    clips_dir: Path = SAMPLES_DIR


@dataclass(frozen=True)
class ClassRow:
    name: str
    instances: int
    current: float
    candidate: float
    current_50_95: float = 0.0
    candidate_50_95: float = 0.0

    @property
    def delta(self) -> float:
        return self.candidate - self.current

    @property
    def worse(self) -> bool:
        return self.candidate < self.current


@dataclass(frozen=True)
class Thresholds:
    confidence: dict[str, float]
    calibrated: bool
    note: str
    report: dict[str, Any] | None = None


@dataclass(frozen=True)
class ClipResult:
    clip: str
    check: ClipCheck


@dataclass(frozen=True)
class Trial:
    """The sample clips audited with the candidate at one set of thresholds."""

    thresholds: Thresholds
    clips: list[ClipResult]

    @property
    def matches(self) -> bool:
        return all(c.check.matches for c in self.clips)

    @property
    def changed(self) -> list[str]:
        """The clips whose audit no longer matches their truth."""
        return [c.clip for c in self.clips if not c.check.matches]


def _shown(confidence: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in confidence.items())


def settle_thresholds(
    chosen: Thresholds,
    current: Mapping[str, float],
    parent: str,
    audit: Callable[[dict[str, float]], list[ClipResult]],
) -> tuple[Trial, Trial | None]:
    """Which thresholds the candidate is judged (and promoted) with, and the clips audited at them.

    Calibrated thresholds stand when every sample clip matches with them. Otherwise the clips are audited
    again at ``current`` (the current default card's thresholds, ``parent`` its name): that trial is the
    one judged, and the calibrated one is returned second as what was set aside. Thresholds that were
    not calibrated (kept already) or equal ``current`` are never audited twice."""
    first = Trial(chosen, audit(dict(chosen.confidence)))
    current = dict(current)
    if first.matches or not chosen.calibrated or dict(chosen.confidence) == current:
        return first, None
    clips = audit(current)
    changed = ", ".join(first.changed)
    if all(c.check.matches for c in clips):
        note = (
            f"kept from {parent}: the thresholds calibrated on the split ({_shown(chosen.confidence)}) change "
            f"sample clip {changed}, and {parent}'s reproduce every clip"
        )
    else:
        note = (
            f"kept from {parent} after the calibrated ones ({_shown(chosen.confidence)}) changed sample clip "
            f"{changed}; at {parent}'s a clip does not match either"
        )
    return Trial(Thresholds(current, calibrated=False, note=note), clips), first


@dataclass
class Outcome:
    """Everything ``promote`` measured and decided; ``lines()`` is what the command prints."""

    name: str
    candidate: Path
    sha256: str
    parent: ModelCard
    data: Path
    split: str
    split_note: str
    images: int
    objects: int
    imgsz: int
    rows: list[ClassRow]
    overall: tuple[float, float]
    thresholds: Thresholds
    clips: list[ClipResult]
    """The sample clips audited at ``thresholds``, the thresholds the candidate is judged with."""
    dry_run: bool
    written: list[Path] = field(default_factory=list)
    set_aside: Trial | None = None
    """The calibrated thresholds and their clip audits, when a clip did not match with them and the current
    card's thresholds were tried instead (``thresholds``/``clips`` are then those)."""

    @property
    def reasons(self) -> list[str]:
        """Why the candidate may not be promoted (empty: it may)."""
        reasons = [
            f"{row.name}: candidate mAP50 {row.candidate:.4f} < current {row.current:.4f} ({self.parent.name})"
            for row in self.rows
            if row.worse
        ]
        failed = [c for c in self.clips if not c.check.matches]
        if self.set_aside is None:
            reasons += [f"sample clip {c.clip}: {c.check.describe()}" for c in failed]
        elif failed:  # neither the calibrated thresholds nor the current ones reproduce the clips
            reasons += [
                f"sample clip {c.clip} at the calibrated thresholds: {c.check.describe()}"
                for c in self.set_aside.clips
                if not c.check.matches
            ]
            reasons += [
                f"sample clip {c.clip} at {self.parent.name}'s thresholds: {c.check.describe()}" for c in failed
            ]
        return reasons

    @property
    def fell_back(self) -> bool:
        """Judged with the current card's thresholds because the calibrated ones changed a clip's result."""
        return self.set_aside is not None

    def _with_thresholds(self) -> str:
        if not self.fell_back:
            return ""
        assert self.set_aside is not None
        return (
            f", with the current thresholds of {self.parent.name} (the calibrated ones changed sample clip "
            f"{', '.join(self.set_aside.changed)})"
        )

    @property
    def accepted(self) -> bool:
        return not self.reasons

    def lines(self) -> list[str]:
        out = [
            f"candidate {self.candidate} (sha256 {self.sha256[:12]}…) against the current default "
            f"{self.parent.name} at imgsz {self.imgsz}",
            f"held-out split: '{self.split}' of {self.data}{self.split_note}, {self.images} images, "
            f"{self.objects} labelled objects",
            "",
            f"{'class':<12}{'current mAP50':>15}{'candidate mAP50':>17}{'delta':>9}{'instances':>11}",
        ]
        for row in self.rows:
            mark = "  worse" if row.worse else ""
            out.append(
                f"{row.name:<12}{row.current:>15.3f}{row.candidate:>17.3f}{row.delta:>+9.3f}{row.instances:>11}{mark}"
            )
        current_all, candidate_all = self.overall
        out.append(f"{'all':<12}{current_all:>15.3f}{candidate_all:>17.3f}{candidate_all - current_all:>+9.3f}")
        out.append("")
        if self.set_aside is not None:
            aside = self.set_aside
            out.append(f"calibrated thresholds: {_shown(aside.thresholds.confidence)} ({aside.thresholds.note})")
            out.append("")
            out.append(f"sample clips, candidate at the calibrated thresholds ({len(aside.clips)}):")
            out += [f"  {c.clip}: {c.check.describe()}" for c in aside.clips]
            out.append("")
            out.append(
                f"fallback: the calibrated thresholds change sample clip {', '.join(aside.changed)}, so the "
                f"candidate is judged at the current thresholds of {self.parent.name}:"
            )
        out.append(f"thresholds: {_shown(self.thresholds.confidence)} ({self.thresholds.note})")
        out.append("")
        out.append(f"sample clips, candidate at these thresholds ({len(self.clips)}):")
        out += [f"  {c.clip}: {c.check.describe()}" for c in self.clips]
        out.append("")
        if self.dry_run:
            if self.accepted:
                out.append(
                    f"decision (dry run, nothing written): would promote as {self.name}{self._with_thresholds()}"
                )
            else:
                out.append("decision (dry run, nothing written): would refuse:")
                out += [f"  - {reason}" for reason in self.reasons]
        elif self.accepted:
            out.append(
                f"decision: promoted as {self.name} ({', '.join(str(p) for p in self.written)}); "
                f"it is now the default model (parent {self.parent.name}){self._with_thresholds()}"
            )
        else:
            out.append("decision: refused, nothing written:")
            out += [f"  - {reason}" for reason in self.reasons]
        return out


def dataset_yaml(data: Path) -> Path:
    """``DIR/data.yaml`` for a folder, else the yaml given; an input error names what is missing."""
    path = data / "data.yaml" if data.is_dir() else data
    if not path.is_file():
        raise InputError("dataset yaml (data.yaml) not found", file=str(path))
    return path


def held_out_split(data_yaml: Path) -> tuple[str, str]:
    """``test`` when the dataset has one, else ``val``; with a note that says which and why."""
    split = mix.held_out_split(data_yaml)
    return split, " (the dataset has a 'test' split: used instead of 'val')" if split == "test" else ""


def default_name(sha256: str, now: datetime | None = None) -> str:
    """``streetwatch-city-<UTC date>-<first 8 hex of sha256>``."""
    day = (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()
    return f"streetwatch-city-{day}-{sha256[:8]}"


def _cards(models_dir: Path) -> list[tuple[Path, ModelCard]]:
    return [(path, read_card(path)) for path in sorted(models_dir.glob("*.yaml")) if _is_card(path)]


def newest_created(models_dir: Path, now: datetime | None = None) -> str:
    """An ISO 8601 UTC date-time later than every card's ``created``, as a time and as the string that
    ``default_card`` compares (a card written in another offset reads later than its instant)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    cards = _cards(models_dir)
    for _, card in cards:
        try:
            parsed = datetime.fromisoformat(card.created)
        except ValueError:
            continue  # not a date: the string check below decides
        instant = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        wall = parsed.replace(tzinfo=UTC)  # the reading of its clock, which is what the string order sees
        moment = max(moment, instant + timedelta(seconds=1), wall + timedelta(seconds=1))
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    created = moment.isoformat(timespec="seconds")
    for path, card in cards:
        if not created > card.created:
            raise InputError(
                f"created {card.created!r} is not an ISO 8601 date or time, so no new card can be dated after it",
                file=str(path),
                field="created",
            )
    return created


def _check_name(name: str, models_dir: Path) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (a file name, up to 100 characters)")
    for suffix in (".pt", ".yaml"):
        target = models_dir / f"{name}{suffix}"
        if target.exists():
            raise InputError("already exists; choose another --name", file=str(target))


def _confidence_dict(confidence: float | Mapping[str, float]) -> dict[str, float]:
    thresholds = class_thresholds(confidence).tolist()
    return {name: float(value) for name, value in zip(MODEL_CLASSES, thresholds, strict=True)}


def min_score_for(confidence: Mapping[str, float], parent: ModelCard) -> dict[str, float] | None:
    """The current default's ``min_score`` (tracks judged per track, #24), each capped at the candidate's
    threshold of its class; None when the current card has none (then every box counts from the threshold)."""
    if parent.min_score is None:
        return None
    return {name: min(value, float(confidence[name])) for name, value in _confidence_dict(parent.min_score).items()}


def _evaluate(weights: Path, sha256: str, data: Path, split: str, imgsz: int, files: list[Path]) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        try:
            return evaluate(data, weights, imgsz=imgsz, split=split)
        except ValueError as error:
            raise InputError(str(error), file=str(data)) from None

    return _memo(("eval", sha256, split, imgsz, _signature(data, *files)), run)


def choose_thresholds(detector: Detector, data: Path, split: str, images: int, parent: ModelCard) -> Thresholds:
    """The candidate's thresholds calibrated on the split, else (with the reason) the parent card's."""
    kept = _confidence_dict(parent.confidence)
    if images < MIN_CALIBRATION_IMAGES:
        return Thresholds(
            kept,
            calibrated=False,
            note=f"kept from {parent.name}: calibration impossible on {images} images; it needs at least "
            f"{MIN_CALIBRATION_IMAGES} to resolve {MAX_FALSE_PER_IMAGE} false detections per image",
        )
    try:
        report = calibrate(detector, data, fallback=list(kept.values()), split=split)
    except InputError as error:
        return Thresholds(
            kept, calibrated=False, note=f"kept from {parent.name}: calibration impossible: {error.reason}"
        )
    confidence = {name: float(value) for name, value in report["confidence"].items()}
    limits = report["limits"]
    return Thresholds(
        confidence,
        calibrated=True,
        note=f"calibrated on '{split}', {report['images']} images: precision >= {limits['min_precision']} per class, "
        f"{report['false_per_image']:.3f} false detections per image (limit {limits['max_false_per_image']})",
        report=report,
    )


def _stage(
    staging: Path,
    name: str,
    candidate: Path,
    imgsz: int,
    confidence: dict[str, float],
    min_score: dict[str, float] | None,
) -> Path:
    """The candidate as it would be promoted (weights + minimal card) in ``staging``: audits run it from there."""
    weights = staging / f"{name}.pt"
    shutil.copyfile(candidate, weights)
    card: dict[str, Any] = {"name": name, "weights": weights.name, "imgsz": imgsz, "confidence": confidence}
    if min_score is not None:
        card["min_score"] = min_score
    (staging / f"{name}.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
    return weights


def check_clip(
    clip: SampleClip,
    weights: Path,
    sha256: str,
    imgsz: int,
    confidence: dict[str, float],
    min_score: dict[str, float] | None = None,
) -> ClipCheck:
    """Audit ``clip`` with these weights as the truth file says (its start time, default settings)."""
    from detector.audit.runner import AuditRequest, run_audit

    truth = clip.truth()

    def run() -> ClipCheck:
        with tempfile.TemporaryDirectory(prefix="streetwatch-promote-audit-") as out:
            run_audit(
                AuditRequest(
                    videos=[clip.video],
                    camera=clip.camera,
                    out=Path(out),
                    model=weights,
                    start_time=clip.start_time(),
                    progress=False,
                )
            )
            return compare(read_alerts(Path(out)), truth["incidents"])

    key = (
        "clip",
        sha256,
        tuple(sorted(confidence.items())),
        tuple(sorted((min_score or {}).items())),
        imgsz,
        os.environ.get(ENV_BACKEND, "auto"),
        _signature(clip.video, clip.camera, clip.truth_file),
    )
    return _memo(key, run)


def promote(request: PromoteRequest) -> Outcome:
    """Measure the candidate against the current default and, unless refused or a dry run, promote it."""
    candidate = request.candidate
    if not candidate.is_file():
        raise ModelError("candidate weights not found", file=str(candidate))
    data = dataset_yaml(request.data).resolve()
    split, split_note = held_out_split(data)
    labelled = labelled_split(data, split)
    objects = sum(len(classes) for classes, _ in labelled.labels.values())
    if not objects:
        raise InputError(
            f"no labelled images: the '{split}' split has {len(labelled.images)} images but no labelled "
            f"object of {list(MODEL_CLASSES)}",
            file=str(data),
        )
    clips = sample_clips(request.clips_dir)
    if not clips:
        raise InputError(
            "no sample clips (<clip>.mp4, .camera.yaml, .truth.json) to check the candidate on",
            file=str(request.clips_dir),
        )
    models_dir = request.models_dir
    if not _cards(models_dir):
        raise ModelError(
            "no model card (*.yaml with 'weights') here: no current model to compare the candidate with",
            file=str(models_dir),
        )
    parent = default_card(models_dir)
    if not parent.weights.is_file():
        raise ModelError("the current default model's weights are missing", file=str(parent.weights))
    sha256 = sha256_of(candidate)
    name = request.name or default_name(sha256)
    _check_name(name, models_dir)
    created = newest_created(models_dir)
    imgsz = parent.imgsz
    # Loads the candidate (a file that is no model, or one without our classes, stops here) at the
    # confidence calibration collects at.
    detector = Detector(candidate, confidence=COLLECT_CONFIDENCE, imgsz=imgsz, name=name)

    _, pairs = split_files(data, split)
    files = [path for pair in pairs for path in pair if path.is_file()]
    current = _evaluate(parent.weights, sha256_of(parent.weights), data, split, imgsz, files)
    mine = _evaluate(candidate, sha256, data, split, imgsz, files)
    rows = []
    for class_name, row in current["per_class"].items():
        if not row["instances"]:
            continue
        theirs = mine["per_class"].get(class_name, {"mAP50": 0.0, "mAP50_95": 0.0})
        rows.append(
            ClassRow(
                class_name,
                int(row["instances"]),
                float(row["mAP50"]),
                float(theirs["mAP50"]),
                float(row["mAP50_95"]),
                float(theirs["mAP50_95"]),
            )
        )
    chosen = choose_thresholds(detector, data, split, len(labelled.images), parent)
    with tempfile.TemporaryDirectory(prefix="streetwatch-promote-") as staging:
        trials = 0

        def audit(confidence: dict[str, float]) -> list[ClipResult]:
            nonlocal trials
            trials += 1
            folder = Path(staging) / f"trial-{trials}"
            folder.mkdir()
            low = min_score_for(confidence, parent)
            staged = _stage(folder, name, candidate, imgsz, confidence, low)
            return [ClipResult(clip.name, check_clip(clip, staged, sha256, imgsz, confidence, low)) for clip in clips]

        judged, set_aside = settle_thresholds(chosen, _confidence_dict(parent.confidence), parent.name, audit)
    outcome = Outcome(
        name=name,
        candidate=candidate.resolve(),
        sha256=sha256,
        parent=parent,
        data=data,
        split=split,
        split_note=split_note,
        images=len(labelled.images),
        objects=objects,
        imgsz=imgsz,
        rows=rows,
        overall=(float(current["mAP50"]), float(mine["mAP50"])),
        thresholds=judged.thresholds,
        clips=judged.clips,
        dry_run=request.dry_run,
        set_aside=set_aside,
    )
    if outcome.accepted and not request.dry_run:
        outcome.written = write_model(outcome, models_dir, created)
    return outcome


def card_of_outcome(outcome: Outcome, created: str) -> dict[str, Any]:
    """The new model card: what the program reads (name, weights, created, imgsz, confidence) and the record."""
    thresholds = outcome.thresholds
    calibration: dict[str, Any] = {
        "calibrated": thresholds.calibrated,
        "thresholds": "calibrated" if thresholds.calibrated else f"kept from {outcome.parent.name}",
        "note": thresholds.note,
    }
    if thresholds.report is not None:
        calibration["per_class"] = thresholds.report["per_class"]
    if outcome.set_aside is not None:
        aside = outcome.set_aside
        calibration["set_aside"] = {
            "why": "with these calibrated thresholds a sample clip no longer matched its truth; "
            f"{outcome.parent.name}'s thresholds were used instead",
            "confidence": aside.thresholds.confidence,
            "note": aside.thresholds.note,
            "sample_clips": {c.clip: c.check.describe() for c in aside.clips},
        }
        if aside.thresholds.report is not None:
            calibration["set_aside"]["per_class"] = aside.thresholds.report["per_class"]
    return {
        "name": outcome.name,
        "weights": f"{outcome.name}.pt",
        "sha256": outcome.sha256,
        "created": created,
        "imgsz": outcome.imgsz,
        "confidence": thresholds.confidence,
        **({} if (low := min_score_for(thresholds.confidence, outcome.parent)) is None else {"min_score": low}),
        "lineage": {
            "candidate": str(outcome.candidate),
            "sha256": outcome.sha256,
            "parent": outcome.parent.name,
            "promoted_by": "streetwatch model promote",
        },
        "calibration": calibration,
        "metrics": {
            "dataset": str(outcome.data),
            "split": outcome.split,
            "images": outcome.images,
            "objects": outcome.objects,
            "imgsz": outcome.imgsz,
            "mAP50": round(outcome.overall[1], 4),
            "parent_mAP50": round(outcome.overall[0], 4),
            "per_class": {
                row.name: {
                    "mAP50": round(row.candidate, 4),
                    "parent_mAP50": round(row.current, 4),
                    "delta": round(row.delta, 4),
                    "mAP50_95": round(row.candidate_50_95, 4),
                    "parent_mAP50_95": round(row.current_50_95, 4),
                    "instances": row.instances,
                }
                for row in outcome.rows
            },
            "sample_clips": {c.clip: c.check.describe() for c in outcome.clips},
        },
    }


def write_model(outcome: Outcome, models_dir: Path, created: str) -> list[Path]:
    """Copy the weights and write the card (weights first, each through a temporary name): a card never
    names weights that are not there."""
    weights = models_dir / f"{outcome.name}.pt"
    card_path = models_dir / f"{outcome.name}.yaml"
    header = (
        f"# Model card: {outcome.name}, promoted by `streetwatch model promote` over {outcome.parent.name}\n"
        f"# (no class worse on the held-out split, every sample clip matching its truth at this card's thresholds)\n"
    )
    if outcome.set_aside is not None:
        header += (
            f"# Thresholds: the current ones of {outcome.parent.name}; the ones calibrated on the split changed "
            f"sample clip {', '.join(outcome.set_aside.changed)} (calibration.set_aside)\n"
        )
    text = header + yaml.safe_dump(card_of_outcome(outcome, created), sort_keys=False, allow_unicode=True)
    partial = weights.with_name(f".{weights.name}.partial")
    shutil.copyfile(outcome.candidate, partial)
    os.replace(partial, weights)
    partial_card = card_path.with_name(f".{card_path.name}.partial")
    partial_card.write_text(text, encoding="utf-8")
    os.replace(partial_card, card_path)
    if default_card(models_dir).name != outcome.name:  # newest_created guarantees it; never leave it unsaid
        raise RuntimeError(f"{card_path} was written but is not the newest card of {models_dir}")
    return [weights, card_path]
