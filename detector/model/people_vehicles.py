"""People and vehicles on a crop: what the stationary-object finder must not report as an obstruction.

A person waiting at the kerb or a car parked on the pavement is new and stays, so the finder holds it
like goods put down. The distractor model (``models/distractors/``, a card like the default model's:
six COCO classes, see ``detector/training/distractors.py``) tells those apart; a region it calls a
person or a vehicle is nobody's obstruction (``detector/model/obstructions.py``).

The model is loaded once per process and shared (cameras judge regions rarely: when first held and
when one grows). Without its card or weights the finder runs as before, with a warning that people and
vehicles may then be reported.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from detector.model.backends import open_model
from detector.model.wrapper import MODELS_DIR, sha256_of
from zones.errors import ModelError

logger = logging.getLogger("streetwatch.people_vehicles")

CARD = MODELS_DIR / "distractors" / "streetwatch-people-vehicles-v2.yaml"
CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")


class _Card(BaseModel):
    model_config = ConfigDict(extra="ignore")  # lineage, metrics and recipe are documentation

    name: str = Field(min_length=1, description="Model name.")
    weights: str = Field(min_length=1, description="Weights file, relative to the card.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the weights file.")
    imgsz: int = Field(default=320, ge=32, le=4096, description="Inference image size of a crop, pixels.")
    confidence: float = Field(gt=0, le=1, description="Threshold for a person or vehicle.")


@dataclass(frozen=True)
class PeopleVehiclesCard:
    name: str
    weights: Path
    sha256: str
    imgsz: int
    confidence: float


def read_card(path: Path = CARD) -> PeopleVehiclesCard:
    """The distractor model's card; ``ModelError`` naming the file and field when it is unusable."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        card = _Card.model_validate(data)
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"cannot read model card: {error}", file=str(path)) from None
    except ValidationError as error:
        first = error.errors()[0]
        raise ModelError(first["msg"], file=str(path), field=".".join(map(str, first["loc"]))) from None
    return PeopleVehiclesCard(
        card.name, (path.parent / card.weights).resolve(), card.sha256, card.imgsz, card.confidence
    )


class PeopleVehicles:
    """``find(image)``: boxes (N, 4, xyxy pixels) of the people and vehicles the model sees on an image."""

    def __init__(self, card: PeopleVehiclesCard, *, backend: str | None = None) -> None:
        if not card.weights.exists():
            raise ModelError("model weights not found", file=str(card.weights))
        if sha256_of(card.weights) != card.sha256:
            raise ModelError("weights do not match the card's sha256", file=str(card.weights), field="sha256")
        loaded = open_model(card.weights, sha256=card.sha256, backend=backend, imgsz=card.imgsz, check=_check_names)
        self._model: Any = loaded.yolo
        self.card = card
        self.backend = loaded.backend
        self._lock = threading.Lock()  # one ultralytics predictor, shared by every camera's thread

    def find(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        with self._lock:
            result = self._model.predict(image, conf=self.card.confidence, imgsz=self.card.imgsz, verbose=False)[0]
        if result.boxes is None or len(result.boxes) == 0:
            return np.zeros((0, 4), dtype=np.float64)
        return np.asarray(result.boxes.xyxy.cpu().numpy(), dtype=np.float64).reshape(-1, 4)


def _check_names(names: dict[int, str]) -> None:
    if tuple(names[i] for i in sorted(names)) != CLASSES:
        raise ModelError(f"a people-and-vehicles model has the classes {list(CLASSES)}, not {list(names.values())}")


@cache
def shared_people_vehicles() -> PeopleVehicles | None:
    """The process's distractor model, or None (logged once) when it cannot be loaded."""
    try:
        return PeopleVehicles(read_card())
    except ModelError as error:
        logger.warning("people and vehicles will not be told apart from obstructions: %s", error)
        return None
