"""Operators' verdicts as training data (issue 15), and labelled data from annotation tools.

Export (``streetwatch dataset export``): every case whose verdict is *file* or *reject* becomes one image
of an ultralytics YOLO dataset. The verdict is the case's latest audit-trail change of kind ``action``
that files or rejects it (a filed case that moved on to dispatched/handled/closed still counts). The
image is the case's ``snapshot_clean`` evidence; a filed case is labelled with the operator's corrected
box (``CaseChange.label``) or else the case's own box and class; a rejected case gets an empty label
file (a hard negative), whatever its category.

The dataset is for the detector model, whose classes are ``zones.detections.MODEL_CLASSES``. A filed
case whose label would be of another of our object classes (``object``: a ``sidewalk_obstruction`` found
by the stationary-object finder, or an operator's label of that class) has no class id there: it is
*skipped*, i.e. no image and no label are written (its snapshot is not even read) and its manifest line
says why. A rejected case of such a class stays a hard negative like any other: the operator found no
violation in the snapshot, and the model, which reported nothing of its classes there, should go on
doing so.

Layout written under ``DIR``::

    images/{train,val}/<case id>.jpg     the clean snapshot, byte for byte (.png/.webp if it is one)
    labels/{train,val}/<case id>.txt     ``class cx cy w h`` normalised; empty for rejected cases
    data.yaml                            path, train, val, names {0: stall, 1: laundry, 2: structure}
    manifest.jsonl                       one line per exported or skipped case (see ``_manifest_entry``)

The split is a pure function of (camera, local calendar day of the case's ``started_at``): frames of one
camera on one day are near-duplicates and must never straddle train and val, and an item never moves
between runs. Runs are incremental: cases already in ``manifest.jsonl`` are neither re-read nor
re-written. A run is all or nothing: every new item is staged in a temporary folder inside ``DIR``
first; any broken case (snapshot missing, unreadable, not matching its SHA-256, degenerate box) stops
the run with :class:`InputError` naming the case, and nothing of the run is left behind.

``--format label-studio`` writes ``tasks.json`` (Label Studio's import format, with the model's box as a
pre-annotation), ``label_config.xml`` and ``images/<case id>.jpg`` instead, with the same manifest.

Import (``streetwatch dataset import``): a Label Studio JSON export, or a YOLO folder/zip (CVAT "YOLO 1.1",
Roboflow, ultralytics) becomes a YOLO dataset with our class names. No cv2/torch here: Pillow reads sizes.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import quoteattr

import yaml
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import crud
from service.core.db import Database
from service.core.errors import NotFound
from service.models import AlertRecordRow, Case, CaseChange
from zones.detections import CLASSES, MODEL_CLASSES
from zones.errors import InputError

CLASS_NAMES: Final[tuple[str, ...]] = tuple(MODEL_CLASSES)
"""The dataset's classes: those of the detector model, in its class-id order."""
CLASS_IDS: Final[dict[str, int]] = {name: index for index, name in enumerate(CLASS_NAMES)}
OUR_CLASSES: Final[tuple[str, ...]] = tuple(CLASSES)
"""Every object class a case or a review label may hold (the model's and ``object``)."""
VERDICT_ACTIONS: Final[dict[str, Literal["filed", "rejected"]]] = {"file": "filed", "reject": "rejected"}
CLEAN_SNAPSHOT: Final = "snapshot_clean"
MANIFEST: Final = "manifest.jsonl"
TASKS: Final = "tasks.json"
LABEL_CONFIG: Final = "label_config.xml"
DATA_YAML: Final = "data.yaml"
# Pillow format → file suffix of the images we accept as training images.
IMAGE_SUFFIX: Final[dict[str, str]] = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp"}
IMAGE_EXTENSIONS: Final = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
# Label Studio: the names of the tags in label_config.xml that every result refers to.
LS_FROM_NAME: Final = "label"
LS_TO_NAME: Final = "image"
MAX_LISTED_ERRORS: Final = 20

Split = Literal["train", "val", "test"]
ExportFormat = Literal["yolo", "label-studio"]


def split_for(camera_id: str, day: str, val_fraction: float) -> Literal["train", "val"]:
    """``val`` for a fixed ``val_fraction`` share of (camera, day) groups, by hash: stable across runs."""
    digest = hashlib.sha256(f"{camera_id}\n{day}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "val" if position < val_fraction else "train"


def check_val_fraction(value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InputError(f"must be a number from 0 to 1, not {value!r}", field="--val-fraction")
    return float(value)


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{value!r} is not ISO 8601, e.g. 2026-11-27T00:00:00+08:00", field="--since") from None
    if parsed.tzinfo is None:
        raise InputError(f"{value!r} needs a UTC offset, e.g. 2026-11-27T00:00:00+08:00", field="--since")
    return parsed


# ---- reading verdicts ----------------------------------------------------------------------------


def latest_verdicts(
    session: Session, *, since: datetime | None = None, cameras: Sequence[str] = ()
) -> list[tuple[Case, CaseChange]]:
    """Each case with its verdict change, oldest verdict first; ``since`` bounds the verdict time."""
    latest = (
        select(CaseChange.case_id, func.max(CaseChange.seq).label("seq"))
        .where(CaseChange.kind == "action", CaseChange.action.in_(list(VERDICT_ACTIONS)))
        .group_by(CaseChange.case_id)
        .subquery()
    )
    query = (
        select(Case, CaseChange)
        .join(latest, latest.c.seq == CaseChange.seq)
        .join(Case, Case.id == CaseChange.case_id)
        .order_by(CaseChange.at, Case.id)
    )
    if since is not None:
        query = query.where(CaseChange.at >= since)
    if cameras:
        query = query.where(Case.camera_id.in_(list(cameras)))
    return [(case, change) for case, change in session.execute(query)]


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def local_days(session: Session, cases: Sequence[Case]) -> dict[str, str]:
    """Case id → local calendar day (``YYYY-MM-DD``) of its ``started_at``.

    The case row keeps UTC; the camera's local offset survives in the alert record as it was received.
    A case without a readable record falls back to the UTC day."""
    days = {case.id: case.started_at.astimezone(UTC).date().isoformat() for case in cases}
    found: dict[str, tuple[int, str]] = {}
    for chunk in _chunks([case.id for case in cases]):
        rows = session.execute(
            select(AlertRecordRow.alert_id, AlertRecordRow.event, AlertRecordRow.payload).where(
                AlertRecordRow.alert_id.in_(list(chunk))
            )
        )
        for alert_id, event, payload in rows:
            rank = 0 if event == "violation.opened" else 1
            try:
                started = datetime.fromisoformat(str(json.loads(payload)["started_at"]))
            except (ValueError, TypeError, KeyError):
                continue
            if started.tzinfo is not None and (alert_id not in found or rank < found[alert_id][0]):
                found[alert_id] = (rank, started.date().isoformat())
    days.update({case_id: day for case_id, (_, day) in found.items()})
    return days


# ---- building one item ---------------------------------------------------------------------------


class _CaseProblem(Exception):
    """Why one case cannot be exported; collected and reported together."""


@dataclass(frozen=True)
class Snapshot:
    data: bytes
    sha256: str
    width: int
    height: int
    suffix: str


def read_snapshot(session: Session, case: Case, *, evidence_dir: Path | None) -> Snapshot:
    evidence = case.evidence if isinstance(case.evidence, list) else []
    indices = [i for i, item in enumerate(evidence) if isinstance(item, dict) and item.get("kind") == CLEAN_SNAPSHOT]
    if not indices:
        raise _CaseProblem(f"has no {CLEAN_SNAPSHOT} evidence")
    index = indices[0]
    item = evidence[index]
    expected = str(item.get("sha256") or "").lower()
    where = f"{CLEAN_SNAPSHOT} evidence #{index} ({item.get('path') or 'no path'})"
    try:
        found = crud.evidence_file(session, case=case, index=index, evidence_dir=evidence_dir)
    except NotFound:
        hint = f"not under --evidence-dir {evidence_dir}" if evidence_dir else "no --evidence-dir given"
        raise _CaseProblem(f"{where} was never uploaded and is {hint}") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise _CaseProblem(f"{where} is malformed in the store: {error!r}") from None
    if found.data is not None:
        data = found.data
    else:
        assert found.path is not None
        try:
            data = found.path.read_bytes()
        except OSError as error:
            raise _CaseProblem(f"{where} cannot be read: {error.strerror or error}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise _CaseProblem(f"{where} has SHA-256 {digest}, but the record says {expected or 'nothing'}")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image_format = image.format or "unknown"
    except Exception as error:  # Pillow raises many kinds (UnidentifiedImageError, OSError, bomb warnings)
        raise _CaseProblem(f"{where} is not a readable image ({type(error).__name__}: {error})") from None
    suffix = IMAGE_SUFFIX.get(image_format)
    if suffix is None or width < 1 or height < 1:
        raise _CaseProblem(f"{where} is a {image_format} image of {width}x{height}, not a usable JPEG/PNG/WebP")
    return Snapshot(data=data, sha256=digest, width=width, height=height, suffix=suffix)


def pixel_box(raw: Any, what: str) -> tuple[float, float, float, float]:
    """``[x1, y1, x2, y2]``: four finite numbers (pixels), else a problem."""
    if not (
        isinstance(raw, list | tuple)
        and len(raw) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in raw)
    ):
        raise _CaseProblem(f"{what} {raw!r} is not [x1, y1, x2, y2] in pixels")
    x1, y1, x2, y2 = (float(v) for v in raw)
    return (x1, y1, x2, y2)


def clip_box(raw: Any, width: int, height: int, what: str) -> tuple[float, float, float, float]:
    """``[x1, y1, x2, y2]`` pixels clipped to the image; a box with no area left is a problem."""
    x1, y1, x2, y2 = pixel_box(raw, what)
    cx1, cx2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    cy1, cy2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if not (cx2 > cx1 and cy2 > cy1):
        raise _CaseProblem(f"{what} {list(raw)} is degenerate: no area inside the {width}x{height} snapshot")
    return (cx1, cy1, cx2, cy2)


def yolo_line(class_id: int, box: tuple[float, float, float, float], width: int, height: int) -> str:
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    w, h = (x2 - x1) / width, (y2 - y1) / height
    return f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def _class_of(value: Any, what: str) -> str:
    if value not in OUR_CLASSES:
        raise _CaseProblem(f"{what} {value!r} is not one of {', '.join(OUR_CLASSES)}")
    return str(value)


@dataclass(frozen=True)
class Claim:
    """What one case's verdict says before its snapshot is read: the class and the unclipped box of its
    label (of the case itself when rejected or filed without the operator's label)."""

    verdict: Literal["filed", "rejected"]
    object_class: str
    raw_bbox: Any
    label_from: Literal["operator", "model"]

    @property
    def bbox_name(self) -> str:
        """How messages name the box."""
        return "verdict label bbox" if self.label_from == "operator" else "case bbox"

    @property
    def skip_reason(self) -> str | None:
        """Why a filed case cannot become a label of the model's dataset; None when it can."""
        if self.verdict == "filed" and self.object_class not in CLASS_IDS:
            return (
                f"object class {self.object_class!r} is not a class of the model ({', '.join(CLASS_NAMES)}), "
                "so the case is left out of the dataset"
            )
        return None


def claim_of(case: Case, change: CaseChange) -> Claim:
    verdict = VERDICT_ACTIONS[str(change.action)]
    label = change.label if verdict == "filed" else None
    if label is not None:
        if not isinstance(label, dict) or "bbox" not in label or "object_class" not in label:
            raise _CaseProblem(f"verdict label {label!r} is not {{'bbox': [x1, y1, x2, y2], 'object_class': …}}")
        object_class = _class_of(label["object_class"], "verdict label object_class")
        return Claim(verdict="filed", object_class=object_class, raw_bbox=label["bbox"], label_from="operator")
    object_class = _class_of(case.object_class, "case object_class")
    return Claim(verdict=verdict, object_class=object_class, raw_bbox=case.bbox, label_from="model")


@dataclass(frozen=True)
class Verdict:
    """What one case's verdict teaches: the box and class that go into its label (none when rejected)."""

    verdict: Literal["filed", "rejected"]
    object_class: str
    bbox: tuple[float, float, float, float]
    label_from: Literal["operator", "model"]


def verdict_of(claim: Claim, snapshot: Snapshot) -> Verdict:
    box = clip_box(claim.raw_bbox, snapshot.width, snapshot.height, claim.bbox_name)
    return Verdict(verdict=claim.verdict, object_class=claim.object_class, bbox=box, label_from=claim.label_from)


def ls_rectangle(
    box: tuple[float, float, float, float], object_class: str, width: int, height: int, **extra: Any
) -> dict[str, Any]:
    """One Label Studio ``rectanglelabels`` result: x, y, width, height in percent of the image."""
    x1, y1, x2, y2 = box
    return {
        "from_name": LS_FROM_NAME,
        "to_name": LS_TO_NAME,
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x1 / width,
            "y": 100.0 * y1 / height,
            "width": 100.0 * (x2 - x1) / width,
            "height": 100.0 * (y2 - y1) / height,
            "rotation": 0,
            "rectanglelabels": [object_class],
        },
        **extra,
    }


def label_config_xml() -> str:
    """The Label Studio labeling interface for exported tasks (Image + RectangleLabels)."""
    colours = {"stall": "#e6194b", "laundry": "#4363d8", "structure": "#f58231"}
    labels = "\n".join(
        f"    <Label value={quoteattr(name)} background={quoteattr(colours[name])}/>" for name in CLASS_NAMES
    )
    return (
        "<View>\n"
        f'  <Image name="{LS_TO_NAME}" value="$image" zoom="true"/>\n'
        f'  <RectangleLabels name="{LS_FROM_NAME}" toName="{LS_TO_NAME}">\n'
        f"{labels}\n"
        "  </RectangleLabels>\n"
        "</View>\n"
    )


def data_yaml(root: Path, *, test: bool = False) -> str:
    data: dict[str, Any] = {"path": str(root), "train": "images/train", "val": "images/val"}
    if test:
        data["test"] = "images/test"
    data["names"] = dict(enumerate(CLASS_NAMES))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# ---- export ----------------------------------------------------------------------------------------


@dataclass
class ExportReport:
    out: Path
    format: ExportFormat
    added: int = 0
    already: int = 0
    by_split: Counter[str] = field(default_factory=Counter)
    by_verdict: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # new cases kept out, by object class
    total_by_split: Counter[str] = field(default_factory=Counter)

    @property
    def main_file(self) -> Path:
        return self.out / (DATA_YAML if self.format == "yolo" else TASKS)


def read_manifest(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the manifest: {error}", file=str(path)) from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"not JSON: {error.msg}", file=str(path), field=f"line {number}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("case_id"), str):
            raise InputError("not a manifest entry (an object with case_id)", file=str(path), field=f"line {number}")
        entries.append(entry)
    return entries


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_if_changed(path: Path, data: bytes) -> None:
    if not (path.is_file() and path.read_bytes() == data):
        _write_atomic(path, data)


def _read_tasks(path: Path) -> list[Any]:
    if not path.exists():
        return []
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read the earlier tasks: {error}", file=str(path)) from None
    if not isinstance(tasks, list):
        raise InputError("not a list of Label Studio tasks", file=str(path))
    return tasks


@dataclass(frozen=True)
class _Staged:
    entry: dict[str, Any]
    files: tuple[tuple[Path, Path], ...]  # (staged, final)
    task: dict[str, Any] | None


def _stage_case(
    session: Session,
    case: Case,
    change: CaseChange,
    *,
    day: str,
    out: Path,
    staging: Path,
    evidence_dir: Path | None,
    val_fraction: float,
    fmt: ExportFormat,
    image_url_prefix: str,
) -> _Staged:
    claim = claim_of(case, change)
    split = split_for(case.camera_id, day, val_fraction)
    skip_reason = claim.skip_reason
    if skip_reason is not None:
        box = pixel_box(claim.raw_bbox, claim.bbox_name)
        entry = _manifest_entry(case, change, day=day, split=split, claim=claim, bbox=box, skipped=skip_reason)
        return _Staged(entry=entry, files=(), task=None)
    snapshot = read_snapshot(session, case, evidence_dir=evidence_dir)
    verdict = verdict_of(claim, snapshot)
    image_name = f"{case.id}{snapshot.suffix}"
    image_rel = f"images/{split}/{image_name}" if fmt == "yolo" else f"images/{image_name}"
    files: list[tuple[Path, Path]] = []
    staged_image = staging / image_rel
    staged_image.parent.mkdir(parents=True, exist_ok=True)
    staged_image.write_bytes(snapshot.data)
    files.append((staged_image, out / image_rel))
    task: dict[str, Any] | None = None
    if fmt == "yolo":
        label_rel = f"labels/{split}/{case.id}.txt"
        staged_label = staging / label_rel
        staged_label.parent.mkdir(parents=True, exist_ok=True)
        text = (
            yolo_line(CLASS_IDS[verdict.object_class], verdict.bbox, snapshot.width, snapshot.height)
            if verdict.verdict == "filed"
            else ""
        )
        staged_label.write_text(text, encoding="utf-8")
        files.append((staged_label, out / label_rel))
    else:
        model_class = _class_of(case.object_class, "case object_class")
        model_box = clip_box(case.bbox, snapshot.width, snapshot.height, "case bbox")
        model = case.model if isinstance(case.model, dict) else {}
        # The label config offers the model's classes only: a case of another class (``object``, found by
        # the stationary-object finder) comes without a pre-annotation.
        predictions = (
            [
                {
                    "model_version": str(model.get("name") or "unknown"),
                    "score": float(case.confidence),
                    "result": [
                        ls_rectangle(
                            model_box,
                            model_class,
                            snapshot.width,
                            snapshot.height,
                            id=case.id.replace("-", "")[:10],
                            score=float(case.confidence),
                        )
                    ],
                }
            ]
            if model_class in CLASS_IDS
            else []
        )
        task = {
            "data": {
                "image": image_url_prefix + image_rel,
                "case_id": case.id,
                "camera_id": case.camera_id,
                "day": day,
                "split": split,
                "verdict": verdict.verdict,
                "reviewer": change.actor,
                "reason": change.reason,
            },
            "predictions": predictions,
        }
    entry = _manifest_entry(
        case, change, day=day, split=split, claim=claim, bbox=verdict.bbox, snapshot=snapshot, image=image_rel
    )
    return _Staged(entry=entry, files=tuple(files), task=task)


def _manifest_entry(
    case: Case,
    change: CaseChange,
    *,
    day: str,
    split: str,
    claim: Claim,
    bbox: tuple[float, float, float, float],
    snapshot: Snapshot | None = None,
    image: str | None = None,
    skipped: str | None = None,
) -> dict[str, Any]:
    """One line of manifest.jsonl. ``split`` is the (camera, day) group's; ``image``, ``sha256``, ``width``
    and ``height`` are null and ``skipped`` says why when the case was kept out of the dataset (see the
    module docstring); ``bbox`` is the label's box in snapshot pixels, clipped to the snapshot when it was
    read. Cases in the manifest, skipped ones included, are not looked at again by later runs."""
    return {
        "case_id": case.id,
        "camera_id": case.camera_id,
        "time": change.at.astimezone(UTC).isoformat(),
        "day": day,
        "split": split,
        "image": image,
        "sha256": snapshot.sha256 if snapshot is not None else None,
        "width": snapshot.width if snapshot is not None else None,
        "height": snapshot.height if snapshot is not None else None,
        "verdict": claim.verdict,
        "reviewer": change.actor,
        "reviewer_role": change.actor_role,
        "reason": change.reason,
        "object_class": claim.object_class,
        "bbox": list(bbox),
        "label_from": claim.label_from,
        "skipped": skipped,
    }


def _problem_message(problems: Sequence[str], total: int) -> str:
    listed = "; ".join(problems[:MAX_LISTED_ERRORS])
    more = f"; and {len(problems) - MAX_LISTED_ERRORS} more" if len(problems) > MAX_LISTED_ERRORS else ""
    return (
        f"{len(problems)} of {total} new case(s) cannot be exported, so nothing was written: {listed}{more}. "
        "Fix or upload their evidence (or give --evidence-dir), or narrow the export with --since/--camera."
    )


def export_dataset(
    db: Database,
    *,
    out: Path,
    since: datetime | None = None,
    cameras: Sequence[str] = (),
    evidence_dir: Path | None = None,
    val_fraction: float = 0.2,
    fmt: ExportFormat = "yolo",
    image_url_prefix: str | None = None,
) -> ExportReport:
    """Add every verdict not yet in ``out/manifest.jsonl``; all or nothing (see the module docstring)."""
    val_fraction = check_val_fraction(val_fraction)
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise InputError("is not a directory", file=str(out), field="--out")
    other = out / (TASKS if fmt == "yolo" else DATA_YAML)
    if other.exists() and (out / MANIFEST).exists():
        kind = "Label Studio" if fmt == "yolo" else "YOLO"
        raise InputError(f"already holds a {kind} export; export --format {fmt} into another folder", file=str(out))
    manifest_path = out / MANIFEST
    previous = read_manifest(manifest_path)
    known = {entry["case_id"] for entry in previous}
    report = ExportReport(out=out, format=fmt)
    report.total_by_split.update(str(entry.get("split")) for entry in previous if not entry.get("skipped"))
    prefix = image_url_prefix if image_url_prefix is not None else f"/data/local-files/?d={out.name}/"
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    failed = False
    try:
        staged: list[_Staged] = []
        problems: list[str] = []
        with db.reading() as session:
            rows = latest_verdicts(session, since=since, cameras=cameras)
            report.already = sum(1 for case, _ in rows if case.id in known)
            fresh = [(case, change) for case, change in rows if case.id not in known]
            days = local_days(session, [case for case, _ in fresh])
            for case, change in fresh:
                try:
                    staged.append(
                        _stage_case(
                            session,
                            case,
                            change,
                            day=days[case.id],
                            out=out,
                            staging=staging,
                            evidence_dir=evidence_dir,
                            val_fraction=val_fraction,
                            fmt=fmt,
                            image_url_prefix=prefix,
                        )
                    )
                except _CaseProblem as problem:
                    problems.append(f"case {case.id}: {problem}")
        if problems:
            failed = True
            raise InputError(_problem_message(problems, len(fresh)), field="--db")
        _commit_export(out, staged, previous_manifest=manifest_path, fmt=fmt)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if failed and created:
            shutil.rmtree(out, ignore_errors=True)
    for item in staged:
        if item.entry["skipped"]:
            report.skipped[str(item.entry["object_class"])] += 1
            continue
        report.added += 1
        report.by_split[item.entry["split"]] += 1
        report.by_verdict[item.entry["verdict"]] += 1
    report.total_by_split.update(report.by_split)
    return report


def _commit_export(out: Path, staged: Sequence[_Staged], *, previous_manifest: Path, fmt: ExportFormat) -> None:
    """Move the staged files into place, then the manifest last: it is what makes items exported."""
    if fmt == "yolo":
        for folder in ("images/train", "images/val", "labels/train", "labels/val"):
            (out / folder).mkdir(parents=True, exist_ok=True)
    else:
        (out / "images").mkdir(parents=True, exist_ok=True)
    for item in staged:
        for source, target in item.files:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    if fmt == "yolo":
        _write_if_changed(out / DATA_YAML, data_yaml(out).encode())
    else:
        if staged or not (out / TASKS).exists():
            tasks = _read_tasks(out / TASKS)
            tasks.extend(item.task for item in staged if item.task is not None)
            _write_atomic(out / TASKS, (json.dumps(tasks, ensure_ascii=False, indent=1) + "\n").encode())
        _write_if_changed(out / LABEL_CONFIG, label_config_xml().encode())
    if staged or not previous_manifest.exists():
        old = previous_manifest.read_bytes() if previous_manifest.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        lines = "".join(json.dumps(item.entry, ensure_ascii=False, sort_keys=False) + "\n" for item in staged)
        _write_atomic(previous_manifest, old + lines.encode())


# ---- import: reading sources -------------------------------------------------------------------------


@dataclass
class Sample:
    """One image of an imported dataset, boxes as (their class name, x1, y1, x2, y2) normalised 0..1."""

    image: Path
    origin: str  # how to name it in messages
    stem: str
    split: Split | None  # None: decided by hash of ``group``
    group: str
    boxes: list[tuple[str, float, float, float, float]] = field(default_factory=list)


@dataclass
class ImportReport:
    out: Path
    images: Counter[str] = field(default_factory=Counter)
    boxes: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)  # their class name → boxes dropped
    unannotated: int = 0
    unchanged: int = 0
    missing_labels: int = 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _clip01(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float] | None:
    x1, x2 = sorted((min(max(x1, 0.0), 1.0), min(max(x2, 0.0), 1.0)))
    y1, y2 = sorted((min(max(y1, 0.0), 1.0), min(max(y2, 0.0), 1.0)))
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _ls_image_ref(data: dict[str, Any]) -> tuple[str, str] | None:
    value = data.get(LS_TO_NAME)
    if isinstance(value, str) and value:
        return LS_TO_NAME, value
    for key, value in data.items():
        if isinstance(value, str) and PurePosixPath(urlsplit(value).path).suffix.lower() in IMAGE_EXTENSIONS:
            return str(key), value
    return None


_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def locate_image(ref: str, search: Sequence[Path]) -> Path | None:
    """Find the local file behind a Label Studio image reference (local-files URL, upload URL, path)."""
    parts_of = urlsplit(ref)
    local = parse_qs(parts_of.query).get("d")
    rel = unquote(local[0]) if local else unquote(parts_of.path)
    if not parts_of.scheme and not local and Path(rel).is_absolute() and Path(rel).is_file():
        return Path(rel)
    parts = [p for p in PurePosixPath(rel).parts if p not in ("/", "..", ".", "")]
    if not parts:
        return None
    tails = [Path(*parts[i:]) for i in range(len(parts))]
    names = [parts[-1], _UPLOAD_PREFIX.sub("", parts[-1])]
    for root in search:
        for tail in tails:
            if (root / tail).is_file():
                return root / tail
        for name in names:
            for folder in (root, root / "images"):
                if (folder / name).is_file():
                    return folder / name
    return None


def read_label_studio(path: Path, *, origin: str, images: Sequence[Path]) -> tuple[list[Sample], int]:
    """Tasks of a Label Studio JSON export → samples (latest non-cancelled annotation of each task)."""
    try:
        tasks = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", file=origin) from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"not JSON: {error.msg}", file=origin, field=f"line {error.lineno} column {error.colno}"
        ) from None
    if not isinstance(tasks, list):
        raise InputError("a Label Studio export is a JSON list of tasks", file=origin, field="(top level)")
    search = [path.parent, *images]
    samples: list[Sample] = []
    unannotated = 0
    for i, task in enumerate(tasks):
        where = f"[{i}]"
        if not isinstance(task, dict):
            raise InputError("a task must be a JSON object", file=origin, field=where)
        data = task.get("data")
        if not isinstance(data, dict):
            raise InputError(
                "missing or not an object (export as JSON, not JSON-MIN)", file=origin, field=f"{where}.data"
            )
        found = _ls_image_ref(data)
        if found is None:
            raise InputError("no image reference", file=origin, field=f"{where}.data.image")
        key, ref = found
        annotations = task.get("annotations", task.get("completions"))
        if annotations is None:
            unannotated += 1
            continue
        if not isinstance(annotations, list):
            raise InputError("must be a list", file=origin, field=f"{where}.annotations")
        usable: list[tuple[int, dict[str, Any]]] = []
        for j, annotation in enumerate(annotations):
            if not isinstance(annotation, dict):
                raise InputError("an annotation must be an object", file=origin, field=f"{where}.annotations[{j}]")
            if not annotation.get("was_cancelled"):
                usable.append((j, annotation))
        if not usable:
            unannotated += 1
            continue
        j, annotation = usable[-1]
        boxes = _ls_boxes(annotation.get("result"), origin=origin, where=f"{where}.annotations[{j}].result")
        image = locate_image(ref, search)
        if image is None:
            looked = ", ".join(str(p) for p in search)
            raise InputError(
                f"image {ref!r} not found (looked in {looked}; give --images DIR)",
                file=origin,
                field=f"{where}.data.{key}",
            )
        case_id, camera, day = data.get("case_id"), data.get("camera_id"), data.get("day")
        stem = case_id if isinstance(case_id, str) and case_id else image.stem
        group = f"{camera}\n{day}" if isinstance(camera, str) and isinstance(day, str) else stem
        # Tasks of our own export keep the split they were exported with: items never move.
        split: Split | None = data["split"] if data.get("split") in ("train", "val") else None
        samples.append(
            Sample(image=image, origin=f"{origin} {where}", stem=stem, split=split, group=group, boxes=boxes)
        )
    return samples, unannotated


def _ls_boxes(result: Any, *, origin: str, where: str) -> list[tuple[str, float, float, float, float]]:
    if result is None:
        return []
    if not isinstance(result, list):
        raise InputError("must be a list", file=origin, field=where)
    boxes: list[tuple[str, float, float, float, float]] = []
    for k, item in enumerate(result):
        at = f"{where}[{k}]"
        if not isinstance(item, dict):
            raise InputError("a result must be an object", file=origin, field=at)
        if item.get("type") != "rectanglelabels":
            continue  # other tools (choices, text areas, relations) carry no boxes
        value = item.get("value")
        if not isinstance(value, dict):
            raise InputError("missing or not an object", file=origin, field=f"{at}.value")
        numbers: dict[str, float] = {}
        for name in ("x", "y", "width", "height"):
            number = _number(value.get(name))
            if number is None:
                raise InputError(
                    f"must be a finite number (percent), not {value.get(name)!r}",
                    file=origin,
                    field=f"{at}.value.{name}",
                )
            numbers[name] = number
        labels = value.get("rectanglelabels")
        if not (isinstance(labels, list) and labels and all(isinstance(v, str) and v for v in labels)):
            raise InputError(
                "must be a non-empty list of label names", file=origin, field=f"{at}.value.rectanglelabels"
            )
        rotation = _number(value.get("rotation", 0) or 0)
        if rotation is None:
            raise InputError("must be a number (degrees)", file=origin, field=f"{at}.value.rotation")
        x, y, w, h = numbers["x"], numbers["y"], numbers["width"], numbers["height"]
        if rotation % 360 == 0:
            corners = [(x / 100, y / 100), ((x + w) / 100, (y + h) / 100)]
        else:
            ow, oh = _number(item.get("original_width")), _number(item.get("original_height"))
            if not ow or not oh or ow <= 0 or oh <= 0:
                raise InputError(
                    "a rotated box needs original_width and original_height", file=origin, field=f"{at}.original_width"
                )
            # Label Studio rotates the rectangle about its top-left corner, in pixels.
            theta = math.radians(rotation)
            x0, y0, wp, hp = x / 100 * ow, y / 100 * oh, w / 100 * ow, h / 100 * oh
            corners = [
                (
                    (x0 + dx * math.cos(theta) - dy * math.sin(theta)) / ow,
                    (y0 + dx * math.sin(theta) + dy * math.cos(theta)) / oh,
                )
                for dx, dy in ((0, 0), (wp, 0), (wp, hp), (0, hp))
            ]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        box = _clip01(min(xs), min(ys), max(xs), max(ys))
        if box is None or w <= 0 or h <= 0:
            raise InputError(f"box {x, y, w, h} has no area inside the image", file=origin, field=f"{at}.value")
        boxes.append((labels[0], *box))
    return boxes


def _names_from_yaml(path: Path, origin: str) -> list[str] | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", file=origin) from None
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML: {error}", file=origin) from None
    if not isinstance(data, dict) or "names" not in data:
        return None
    names = data["names"]
    if isinstance(names, list):
        result = names
    elif isinstance(names, dict):
        try:
            index = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            raise InputError("keys must be class numbers 0, 1, …", file=origin, field="names") from None
        if sorted(index) != list(range(len(index))):
            raise InputError(
                f"class numbers must run 0..{len(index) - 1}, got {sorted(index)}", file=origin, field="names"
            )
        result = [index[i] for i in range(len(index))]
    else:
        raise InputError("must be a list or a mapping of class number → name", file=origin, field="names")
    if not result or not all(isinstance(n, str | int) and str(n).strip() for n in result):
        raise InputError("must be non-empty class names", file=origin, field="names")
    return [str(n).strip() for n in result]


def _names_from_lines(path: Path, origin: str) -> list[str]:
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", file=origin) from None
    if not names:
        raise InputError("holds no class names", file=origin)
    return names


def find_names(root: Path, show: Callable[[Path], str]) -> tuple[list[str], Path]:
    """Class names of a YOLO export and the folder they were found in (the dataset's root)."""
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))]
    for folder in folders:
        yamls = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
        yamls.sort(key=lambda p: p.name not in ("data.yaml", "data.yml", "dataset.yaml"))
        for candidate in yamls:
            names = _names_from_yaml(candidate, show(candidate))
            if names is not None:
                return names, folder
        for pattern in ("obj.names", "classes.txt", "*.names"):
            for candidate in sorted(folder.glob(pattern)):
                return _names_from_lines(candidate, show(candidate)), folder
    raise InputError("no class names: expected data.yaml (names), obj.names or classes.txt", file=show(root))


_SPLIT_WORDS: Final[dict[str, Split]] = {
    "train": "train",
    "obj_train_data": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "obj_valid_data": "val",
    "obj_validation_data": "val",
    "test": "test",
    "obj_test_data": "test",
}


def _label_path(image: Path, root: Path) -> Path | None:
    parts = list(image.relative_to(root).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            candidate = root.joinpath(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")
            if candidate.is_file():
                return candidate
            break
    beside = image.with_suffix(".txt")
    return beside if beside.is_file() else None


def read_yolo_labels(path: Path, names: Sequence[str], origin: str) -> list[tuple[str, float, float, float, float]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", file=origin) from None
    boxes: list[tuple[str, float, float, float, float]] = []
    eps = 1e-6
    for number, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"line {number}"
        if len(tokens) < 5 or (len(tokens) > 5 and len(tokens) % 2 == 0):
            raise InputError(
                f"expected 'class cx cy w h' (or 'class x1 y1 x2 y2 …' for a polygon), got {line!r}",
                file=origin,
                field=where,
            )
        try:
            class_value = float(tokens[0])
            values = [float(t) for t in tokens[1:]]
        except ValueError:
            raise InputError(f"not numbers: {line!r}", file=origin, field=where) from None
        if not class_value.is_integer() or not 0 <= class_value < len(names):
            raise InputError(
                f"class {tokens[0]} is not one of 0..{len(names) - 1} of the names",
                file=origin,
                field=f"{where}: class",
            )
        if not all(math.isfinite(v) and -eps <= v <= 1 + eps for v in values):
            raise InputError(f"coordinates must be normalised to 0..1, got {line!r}", file=origin, field=where)
        if len(values) == 4:
            cx, cy, w, h = values
            box = _clip01(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2) if w > 0 and h > 0 else None
        else:
            xs, ys = values[0::2], values[1::2]
            box = _clip01(min(xs), min(ys), max(xs), max(ys))
        if box is None:
            raise InputError(f"box has no area: {line!r}", file=origin, field=where)
        boxes.append((names[int(class_value)], *box))
    return boxes


def read_yolo_folder(root: Path, show: Callable[[Path], str]) -> tuple[list[Sample], int]:
    """A CVAT "YOLO 1.1" / Roboflow / ultralytics export unpacked at ``root``."""
    names, base = find_names(root, show)
    samples: list[Sample] = []
    missing = 0
    for image in sorted(base.rglob("*")):
        rel = image.relative_to(base)
        if (
            image.suffix.lower() not in IMAGE_EXTENSIONS
            or not image.is_file()
            or any(part.startswith(".") or part == "__MACOSX" for part in rel.parts)
        ):
            continue
        split = next((_SPLIT_WORDS[p.lower()] for p in rel.parts[:-1] if p.lower() in _SPLIT_WORDS), None)
        label = _label_path(image, base)
        if label is None:
            missing += 1  # ultralytics reads an image without a label file as background
            boxes: list[tuple[str, float, float, float, float]] = []
        else:
            boxes = read_yolo_labels(label, names, show(label))
        samples.append(
            Sample(
                image=image,
                origin=show(image),
                stem=image.stem,
                split=split,
                group=rel.with_suffix("").as_posix(),
                boxes=boxes,
            )
        )
    if not samples:
        raise InputError("holds no images (.jpg, .jpeg, .png, .webp, .bmp)", file=show(base))
    return samples, missing


def extract_zip(path: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                parts = PurePosixPath(info.filename).parts
                if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in info.filename:
                    raise InputError("unsafe path in the archive", file=str(path), field=info.filename)
            archive.extractall(dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        raise InputError(f"not a readable zip archive: {error}", file=str(path)) from None


def read_names_map(path: Path | None) -> dict[str, str | None]:
    """``--names-map``: YAML ``their: ours`` (``ours`` one of our class names, or null to drop)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", file=str(path), field="--names-map") from None
    except yaml.YAMLError as error:
        raise InputError(f"not valid YAML: {error}", file=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("must be a mapping of their class name → ours", file=str(path))
    mapping: dict[str, str | None] = {}
    for their, ours in data.items():
        if ours is not None and (not isinstance(ours, str) or ours.strip().lower() not in CLASS_IDS):
            raise InputError(
                f"maps to {ours!r}, not one of {', '.join(CLASS_NAMES)} (or null to drop)",
                file=str(path),
                field=str(their),
            )
        mapping[str(their).strip().lower()] = ours.strip().lower() if isinstance(ours, str) else None
    return mapping


def our_class(their: str, mapping: dict[str, str | None]) -> str | None:
    key = their.strip().lower()
    if key in mapping:
        return mapping[key]
    return key if key in CLASS_IDS else None


# ---- import: writing ---------------------------------------------------------------------------------

_SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]+")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_image(path: Path, origin: str) -> None:
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as error:  # Pillow raises many kinds
        raise InputError(f"not a readable image ({type(error).__name__}: {error})", file=origin) from None


def import_dataset(
    source: Path,
    *,
    out: Path,
    names_map: Path | None = None,
    val_fraction: float = 0.2,
    images: Sequence[Path] = (),
) -> ImportReport:
    """Write an ultralytics YOLO dataset with our class names from a Label Studio / YOLO export."""
    val_fraction = check_val_fraction(val_fraction)
    mapping = read_names_map(names_map)
    if not source.exists():
        raise InputError("does not exist", file=str(source))
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise InputError("is not a directory", file=str(out), field="--out")
    with tempfile.TemporaryDirectory(prefix="streetwatch-import-") as tmp:
        unannotated = missing = 0
        if source.is_file() and source.suffix.lower() == ".json":
            samples, unannotated = read_label_studio(source, origin=str(source), images=images)
        elif source.is_file() and source.suffix.lower() == ".zip":
            root = Path(tmp) / "src"
            extract_zip(source, root)

            def show(p: Path) -> str:
                rel = p.relative_to(root).as_posix()
                return f"{source}!/{rel}" if rel != "." else str(source)

            jsons = [p for p in root.rglob("*.json") if "__MACOSX" not in p.parts and p.name != "notes.json"]
            has_yolo_names = any(root.rglob("*.yaml")) or any(root.rglob("*.names")) or any(root.rglob("classes.txt"))
            if len(jsons) == 1 and not has_yolo_names:
                samples, unannotated = read_label_studio(jsons[0], origin=show(jsons[0]), images=[root, *images])
            else:
                samples, missing = read_yolo_folder(root, show)
        elif source.is_dir():
            samples, missing = read_yolo_folder(source, str)
        else:
            raise InputError("expected a Label Studio .json export, or a YOLO export folder or .zip", file=str(source))
        report = ImportReport(out=out, unannotated=unannotated, missing_labels=missing)
        _write_import(samples, out=out, mapping=mapping, val_fraction=val_fraction, report=report)
    return report


def _write_import(
    samples: Iterable[Sample], *, out: Path, mapping: dict[str, str | None], val_fraction: float, report: ImportReport
) -> None:
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    moves: list[tuple[Path, Path]] = []
    taken: set[tuple[str, str]] = set()
    ok = False
    try:
        for sample in samples:
            _check_image(sample.image, sample.origin)
            split: Split = sample.split or split_for("import", sample.group, val_fraction)
            lines: list[str] = []
            for their, x1, y1, x2, y2 in sample.boxes:
                ours = our_class(their, mapping)
                if ours is None:
                    report.dropped[their] += 1
                    continue
                report.boxes[ours] += 1
                lines.append(yolo_line(CLASS_IDS[ours], (x1, y1, x2, y2), 1, 1))
            suffix = sample.image.suffix.lower()
            digest = _file_sha256(sample.image)
            stem = _SAFE_STEM.sub("_", sample.stem).strip("._") or digest[:12]
            target = out / "images" / split / f"{stem}{suffix}"
            if (split, stem) in taken or (target.exists() and _file_sha256(target) != digest):
                stem = f"{stem}-{digest[:8]}"
                target = out / "images" / split / f"{stem}{suffix}"
            taken.add((split, stem))
            report.images[split] += 1
            label_target = out / "labels" / split / f"{stem}.txt"
            staged_label = staging / "labels" / split / f"{stem}.txt"
            staged_label.parent.mkdir(parents=True, exist_ok=True)
            staged_label.write_text("".join(lines), encoding="utf-8")
            moves.append((staged_label, label_target))
            if target.exists():
                report.unchanged += 1  # the same image from an earlier import: only its label is refreshed
                continue
            staged_image = staging / "images" / split / target.name
            staged_image.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample.image, staged_image)
            moves.append((staged_image, target))
        for folder in ("images/train", "images/val", "labels/train", "labels/val"):
            (out / folder).mkdir(parents=True, exist_ok=True)
        for staged, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        has_test = (out / "images" / "test").is_dir() and any((out / "images" / "test").iterdir())
        _write_if_changed(out / DATA_YAML, data_yaml(out, test=has_test).encode())
        ok = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not ok and created:
            shutil.rmtree(out, ignore_errors=True)


__all__ = [
    "CLASS_NAMES",
    "ExportReport",
    "ImportReport",
    "export_dataset",
    "import_dataset",
    "label_config_xml",
    "latest_verdicts",
    "local_days",
    "locate_image",
    "split_for",
]
