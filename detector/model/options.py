"""The ``--model`` and ``--backend`` options every model-running command takes, how ``--backend``
reaches the model loader, and the frame-skip options of ``audit`` and ``run``. Imports only typer, so the
CLI starts fast."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from zones.errors import InputError

ModelOption = Annotated[
    Path | None, typer.Option("--model", help="Weights (.pt, .onnx, OpenVINO folder); default: newest card in models/.")
]

BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Inference runtime: auto (fastest present: OpenVINO, ONNX Runtime, PyTorch on a CPU), pytorch, onnx, "
        "openvino (default $STREETWATCH_BACKEND, else auto). A .pt is exported once, offline, into the cache.",
    ),
]

ReuseThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--reuse-threshold",
        min=0.0,
        max=255.0,
        help="Grey-level change inside the zones below which the previous detections are reused instead of "
        "running the model (default 12; 0 runs the model on every analysed frame).",
    ),
]

MaxReuseOption = Annotated[
    float | None,
    typer.Option(
        "--max-reuse-s",
        min=0.0,
        max=3600.0,
        help="Run the model at least this often, in seconds of video (default 10; never more than a quarter of "
        "the camera's shortest dwell; 0 turns reuse off).",
    ),
]


def use_backend(backend: str | None) -> None:
    """Route --backend through the environment, where the model loader (and any child process) reads it."""
    from detector.model.backends import ENV_BACKEND, REQUESTS

    if backend is not None:
        if backend not in REQUESTS:
            raise InputError(f"--backend {backend!r} is not one of {', '.join(REQUESTS)}")
        os.environ[ENV_BACKEND] = backend
    # Exports ("exporting … once") and fallbacks ("openvino unavailable: …") are worth a line on stderr,
    # unless the command has set its own logging up already (live mode's line format).
    logger = logging.getLogger("streetwatch")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("streetwatch: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
