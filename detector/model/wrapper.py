"""The model wrapper: any ultralytics weights (.pt, exported ONNX / OpenVINO) behind one adapter.

Nothing here downloads: a missing weights file is an input error naming the path. A ``.pt`` runs on
the fastest inference backend available (``detector.model.backends``: OpenVINO, ONNX Runtime or PyTorch);
the model's identity (name, SHA-256 of the weights) does not depend on the backend.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from detector.model.adapters import class_lookup, from_ultralytics
from detector.model.backends import open_model
from zones.detections import MODEL_CLASSES, Detections
from zones.errors import ModelError

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")  # ultralytics must never pip-install anything


class _HasImage(Protocol):
    @property
    def image(self) -> npt.NDArray[np.uint8]: ...


FrameT = TypeVar("FrameT", bound=_HasImage)

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_CONFIDENCE = 0.35
BATCH = 4


class _ClassConfidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stall: float = Field(gt=0, le=1, description="Threshold for stalls.")
    laundry: float = Field(gt=0, le=1, description="Threshold for laundry.")
    structure: float = Field(gt=0, le=1, description="Threshold for structures.")


def _confidence_form(value: Any) -> str:
    return "per_class" if isinstance(value, Mapping | _ClassConfidence) else "single"


# A card's thresholds (``confidence``, ``min_score``): one number for every class, or one per class.
_Thresholds = Annotated[
    Annotated[float, Field(gt=0, le=1), Tag("single")] | Annotated[_ClassConfidence, Tag("per_class")],
    Discriminator(_confidence_form),
]


class _CardFields(BaseModel):
    """The fields of a model card the program reads; the rest of a card (metrics, lineage) is documentation."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, description="Model name written into alert records.")
    weights: str = Field(min_length=1, description="Weights file, relative to the card.")
    created: str | datetime | date = Field(
        default="", description="Creation date: the newest card is the default model."
    )
    imgsz: int = Field(default=640, ge=32, le=4096, description="Inference image size, pixels.")
    confidence: _Thresholds = Field(
        default=DEFAULT_CONFIDENCE,
        description="Track threshold: an incident fires once the median of its recent scores reaches it. "
        "One number for every class, or {stall: …, laundry: …, structure: …}.",
    )
    min_score: _Thresholds | None = Field(
        default=None,
        description="Lowest score of a box that starts or continues a track, at most the class's confidence. "
        "Absent: the confidence itself.",
    )


def class_thresholds(confidence: float | Mapping[str, float]) -> npt.NDArray[np.float64]:
    """Per-class thresholds indexed by our class id, from one threshold or a mapping naming every class."""
    if isinstance(confidence, Mapping):
        missing = [name for name in MODEL_CLASSES if name not in confidence]
        unknown = sorted(set(confidence) - set(MODEL_CLASSES))
        if missing or unknown:
            raise ValueError(
                f"per-class confidence must name exactly {list(MODEL_CLASSES)} (missing {missing}, unknown {unknown})"
            )
        thresholds = np.array([float(confidence[name]) for name in MODEL_CLASSES])
    else:
        thresholds = np.full(len(MODEL_CLASSES), float(confidence))
    if not np.all((thresholds > 0) & (thresholds <= 1)):
        raise ValueError("confidence thresholds must lie in (0, 1]")
    return thresholds


@dataclass(frozen=True)
class ModelCard:
    name: str
    weights: Path
    created: str
    imgsz: int
    confidence: float | Mapping[str, float]
    min_score: float | Mapping[str, float] | None = None


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def read_card(path: Path) -> ModelCard:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"cannot read model card: {error}", file=str(path)) from None
    if not isinstance(data, dict) or "weights" not in data or "name" not in data:
        raise ModelError("a model card needs at least 'name' and 'weights'", file=str(path))
    try:
        fields = _CardFields.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in ("single", "per_class"))
        raise ModelError(first["msg"], file=str(path), field=where) from None
    created = fields.created.isoformat() if isinstance(fields.created, date) else fields.created
    return ModelCard(
        name=fields.name,
        weights=(path.parent / fields.weights).resolve(),
        created=created,
        imgsz=fields.imgsz,
        confidence=_plain(fields.confidence),
        min_score=_plain(fields.min_score),
    )


def default_card(models_dir: Path = MODELS_DIR) -> ModelCard:
    """The newest model card (by its ``created`` date, then name) in ``models/``."""
    cards = [read_card(path) for path in sorted(models_dir.glob("*.yaml")) if _is_card(path)]
    if not cards:
        raise ModelError("no model card (*.yaml with 'weights') found; pass --model PATH", file=str(models_dir))
    return max(cards, key=lambda card: (card.created, card.name))


def _is_card(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "weights" in data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    # OpenVINO exports are folders: hash their files in name order.
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class Detector:
    """Runs an ultralytics model on BGR frames and returns our ``Detections``.

    ``backend`` is ``auto`` (default: ``$STREETWATCH_BACKEND``, else ``auto``), ``pytorch``, ``onnx``
    or ``openvino``; ``self.backend`` says which one runs and ``self.backend_info`` why.
    """

    def __init__(
        self,
        weights: Path,
        *,
        class_map: Mapping[str, str] | None = None,
        confidence: float | Mapping[str, float] = DEFAULT_CONFIDENCE,
        min_score: float | Mapping[str, float] | None = None,
        imgsz: int = 640,
        device: str = "cpu",
        name: str | None = None,
        backend: str | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if not weights.exists():
            raise ModelError("model weights not found", file=str(weights))
        # The source weights' hash, also when an export runs: alert records name the trained model.
        try:
            self.sha256 = sha256_of(weights)
        except OSError as error:
            raise ModelError(f"cannot read model: {error.strerror or error}", file=str(weights)) from None
        lookups: list[npt.NDArray[np.int64]] = []
        loaded = open_model(
            weights,
            sha256=self.sha256,
            backend=backend,
            device=device,
            imgsz=imgsz,
            cache_dir=cache_dir,
            # A model without our classes is refused before any export is spent on it.
            check=lambda names: lookups.append(class_lookup(names, class_map)),
        )
        self._model: Any = loaded.yolo
        self.lookup = lookups[0]
        self.weights = weights
        self.backend = loaded.backend
        self.backend_info = loaded.describe()
        self.runtime_path = loaded.path
        try:
            self.thresholds = class_thresholds(confidence)
        except ValueError as error:
            raise ModelError(str(error), field="confidence") from None
        try:
            self.min_scores = self.thresholds.copy() if min_score is None else class_thresholds(min_score)
        except ValueError as error:
            raise ModelError(str(error), field="min_score") from None
        if np.any(self.min_scores > self.thresholds + 1e-9):
            raise ModelError(
                f"min_score {self.min_score} must not exceed the confidence {self.confidence} of its class",
                field="min_score",
            )
        self.imgsz = imgsz
        self.device = device
        self.name = name or weights.stem

    @classmethod
    def from_card(cls, card: ModelCard, **kwargs: Any) -> Detector:
        if "confidence" not in kwargs:  # the card's thresholds, with its min_score; a caller's own go alone
            kwargs["confidence"] = card.confidence
            kwargs.setdefault("min_score", card.min_score)
        kwargs.setdefault("imgsz", card.imgsz)
        return cls(card.weights, name=card.name, **kwargs)

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        if not images:
            return []
        results = self._model.predict(
            list(images),
            conf=self.min_confidence,
            imgsz=self.imgsz,
            device=self.device,
            verbose=False,
        )
        found = [from_ultralytics(result, self.lookup) for result in results]
        if np.all(self.min_scores == self.min_confidence):
            return found
        return [d[d.confidence >= self.min_scores[d.class_id]] for d in found]

    def confident(self, detections: Detections) -> Detections:
        """The boxes at or above their class's track threshold (for a single look, where no track forms)."""
        return detections[detections.confidence >= self.thresholds[detections.class_id]]

    @property
    def confidence(self) -> dict[str, float]:
        """The track threshold of each class, by name (the card's ``confidence``)."""
        return {name: float(t) for name, t in zip(MODEL_CLASSES, self.thresholds, strict=True)}

    @property
    def min_score(self) -> dict[str, float]:
        """The lowest score of a box that starts or continues a track, by class name."""
        return {name: float(t) for name, t in zip(MODEL_CLASSES, self.min_scores, strict=True)}

    @property
    def track_thresholds(self) -> dict[str, float]:
        """What the incident engine's track score rule needs (``confidence``; boxes arrive at ``min_score``)."""
        return self.confidence

    @property
    def min_confidence(self) -> float:
        """The lowest ``min_score``: what the model is asked for before per-class filtering."""
        return float(self.min_scores.min())

    def predict_frames(self, frames: Iterable[FrameT]) -> Iterator[tuple[FrameT, Detections]]:
        """Predict over a stream of frames (objects with ``.image``) in small batches."""
        batch: list[FrameT] = []
        for frame in frames:
            batch.append(frame)
            if len(batch) == BATCH:
                yield from zip(batch, self.predict([f.image for f in batch]), strict=True)
                batch = []
        if batch:
            yield from zip(batch, self.predict([f.image for f in batch]), strict=True)


def load_detector(
    model: Path | None, *, class_map: Mapping[str, str] | None = None, backend: str | None = None
) -> Detector:
    """The weights given, else the newest model card's; ``backend`` as in ``Detector``.

    Weights with a card beside them (e.g. ``--model models/streetwatch-v2.pt``) run with that card's
    thresholds and image size; other weights at ``DEFAULT_CONFIDENCE``."""
    if model is None:
        return Detector.from_card(default_card(), class_map=class_map, backend=backend)
    card = card_of(model)
    if card is not None:
        return Detector.from_card(card, class_map=class_map, backend=backend)
    return Detector(model, class_map=class_map, backend=backend)


def card_of(weights: Path) -> ModelCard | None:
    """The model card in the weights' folder that names these weights, if there is one."""
    target = weights.resolve()
    for path in sorted(weights.parent.glob("*.yaml")) if weights.parent.is_dir() else []:
        if _is_card(path):
            card = read_card(path)
            if card.weights == target:
                return card
    return None
