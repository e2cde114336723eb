"""Fast CPU inference: the same model exported to OpenVINO or ONNX Runtime, chosen automatically.

A ``.pt`` model is exported on first use with ultralytics' own exporter into a cache keyed by the
weights' SHA-256, then loaded through ultralytics again, so pre-processing (letterbox), NMS and
results are the same code as on PyTorch. Exports are *dynamic* (any batch, any input shape): the
predictor then letterboxes each frame to the same minimal stride-32 rectangle as PyTorch does
(640x384 for a 16:9 frame at imgsz 640) instead of a fixed 640x640 square, which would cost 1.7x
the compute and shift the boxes slightly.

Choice (``STREETWATCH_BACKEND`` = ``auto`` | ``pytorch`` | ``onnx`` | ``openvino``, or the
``backend`` argument, which wins over the environment):

* ``auto`` on CPU tries OpenVINO, then ONNX Runtime, then PyTorch; on a GPU it keeps PyTorch. The
  order is measured, not assumed (``CPU_ORDER``; ``python -m bench.inference``).
* A backend whose runtime is missing, whose export fails, or whose cache cannot be written is
  skipped with a logged reason; PyTorch is always the last resort, so choosing never crashes.

Nothing here downloads or installs: exports run in a child process with ultralytics' requirement
checks switched off (the runtimes were checked by importing them), ``YOLO_OFFLINE=1``,
``YOLO_AUTOINSTALL=False`` and internet sockets refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np

from zones.errors import ModelError

os.environ.setdefault("YOLO_OFFLINE", "1")
# Read by ultralytics once at import: never let a missing package turn into a pip install.
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

logger = logging.getLogger("streetwatch.backends")

Backend = Literal["pytorch", "onnx", "openvino"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
REQUESTS = ("auto", *BACKENDS)
ENV_BACKEND = "STREETWATCH_BACKEND"
ENV_CACHE = "STREETWATCH_CACHE"

# Fastest first on a CPU. Measured on the shared 2-core EPYC dev box (imgsz 640, 16:9 frames, so a
# 640x384 input; bench/inference.py): on one thread, ONNX Runtime and OpenVINO need 0.6-0.65x
# PyTorch's CPU time per frame, and both compute on every physical core where ultralytics gives
# PyTorch logical CPUs - 1 (one core of two). Between the two, per-frame wall times on the busy box
# were split, but OpenVINO spent about half ONNX Runtime's CPU per frame (ORT's threads spin while
# they wait, taking time from the decoder thread) and won both end-to-end audit rounds. The same
# detections and mAP50 on all three. On the quiet box (bench/RESULTS.md, session 10) ONNX Runtime won the
# per-frame latency (54 ms vs OpenVINO 82 ms, PyTorch 113 ms) but OpenVINO still won the end-to-end audit
# of the 120 s 1080p clip (41.4x vs 38.5x real time), which is what users run.
CPU_ORDER: tuple[Backend, ...] = ("openvino", "onnx", "pytorch")

# Bump when the export recipe changes: entries made by an older recipe are then re-exported.
EXPORT_RECIPE = 1
MANIFEST = "manifest.json"
# Modules each runtime needs at export and inference time (onnxslim is optional: it only simplifies).
_RUNTIME_MODULES: dict[Backend, tuple[str, ...]] = {"onnx": ("onnx", "onnxruntime"), "openvino": ("openvino",)}
_STALE_TMP_S = 24 * 3600
# Exports of this many models (by weights hash) are kept, the least recently used beyond are removed:
# every fine-tuned or throw-away .pt gets its own entry (about 12 MB per backend).
MAX_CACHED_MODELS = 8
EXPORT_TIMEOUT_S = 900


class BackendUnavailable(Exception):
    """A backend cannot be used here; the message says why (it is logged, never shown as a traceback)."""


@dataclass
class LoadedModel:
    """An ultralytics ``YOLO`` ready to predict, and how it was chosen."""

    yolo: Any
    backend: Backend
    path: Path
    requested: str
    reason: str
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What an audit summary records: the backend used, what was asked for, and why others were skipped."""
        return {
            "backend": self.backend,
            "requested": self.requested,
            "reason": self.reason,
            "skipped": self.skipped,
            "threads": runtime_threads(self.yolo, self.backend),
        }


def runtime_threads(yolo: Any, backend: Backend) -> int | None:
    """Threads the runtime computes with (informational; ``None`` when this ultralytics hides it).

    ONNX Runtime and OpenVINO use the physical cores (OpenVINO in one stream: ultralytics compiles
    with the ``LATENCY`` hint, one frame at a time on every core). PyTorch runs with what ultralytics
    sets when its predictor starts: logical CPUs - 1, at most 8 (so 1 on a 2-core box, leaving a core
    to the decoder).
    """
    try:
        if backend == "pytorch":
            import torch

            return int(torch.get_num_threads())
        runtime = yolo.predictor.model.backend
        if backend == "openvino":
            return int(runtime.ov_compiled_model.get_property("INFERENCE_NUM_THREADS"))
        configured = int(runtime.session.get_session_options().intra_op_num_threads)
        return configured or physical_cores()
    except Exception:  # internals of ultralytics or the runtime changed: the figure is only informational
        return None


def physical_cores() -> int:
    """Physical cores: ONNX Runtime's default thread count."""
    import psutil  # an ultralytics dependency

    return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def requested_backend(value: str | None = None) -> str:
    """The backend asked for: ``value`` if given, else ``$STREETWATCH_BACKEND``, else ``auto``."""
    source = "backend"
    if value is None:
        value = os.environ.get(ENV_BACKEND) or "auto"
        source = ENV_BACKEND
    normalised = value.strip().lower()
    if normalised not in REQUESTS:
        raise ModelError(f"unknown inference backend {value!r}; choose one of {', '.join(REQUESTS)}", field=source)
    return normalised


def candidates(requested: str, device: str = "cpu") -> tuple[Backend, ...]:
    """Backends to try, in order; PyTorch always comes last as the fallback."""
    if requested == "auto":
        # On a GPU, PyTorch runs there; the CPU builds of ONNX Runtime and OpenVINO would not.
        return CPU_ORDER if _is_cpu(device) else ("pytorch",)
    if requested == "pytorch":
        return ("pytorch",)
    return (cast(Backend, requested), "pytorch")


def _is_cpu(device: str) -> bool:
    return str(device).strip().lower() in {"", "cpu"}


def backend_of(path: Path) -> Backend:
    """The backend a model file or folder runs on (ultralytics' own naming: ``*.onnx``, ``*_openvino_model/``)."""
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if path.is_dir() or path.name.endswith("_openvino_model") or path.suffix.lower() == ".xml":
        return "openvino"
    return "pytorch"


def runtime_missing(backend: Backend) -> str | None:
    """Why ``backend``'s runtime cannot be imported here, or ``None`` when it can."""
    for module in _RUNTIME_MODULES.get(backend, ()):
        problem = _import_problem(module)
        if problem:
            return problem
    return None


def _import_problem(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as error:  # ImportError, or a broken install raising anything at import
        return f"{module} is not importable ({type(error).__name__}: {error})"
    return None


def default_cache_dir() -> Path:
    """``$STREETWATCH_CACHE``, else ``$XDG_CACHE_HOME/streetwatch``, else ``~/.cache/streetwatch``."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "streetwatch"


def cache_entry(cache_dir: Path, sha256: str, backend: Backend) -> Path:
    """Where the export of the weights with this SHA-256 for ``backend`` lives."""
    return cache_dir / "exports" / f"{sha256}-r{EXPORT_RECIPE}" / backend


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): _sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST
    }


def _artifact(entry: Path, backend: Backend) -> Path:
    return entry / ("model.onnx" if backend == "onnx" else "model_openvino_model")


def cached_export(entry: Path, backend: Backend, sha256: str) -> Path | None:
    """The cached artifact if its manifest matches the weights and every file hashes as recorded, else ``None``."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        valid = (
            manifest.get("source_sha256") == sha256
            and manifest.get("recipe") == EXPORT_RECIPE
            and isinstance(files, dict)
            and bool(files)
            and _file_hashes(entry) == files
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    artifact = _artifact(entry, backend)
    return artifact if valid and artifact.exists() else None


@contextlib.contextmanager
def quiet_ultralytics() -> Iterator[None]:
    """Keep ultralytics' banners and tracer warnings off stdout/stderr (stdout carries JSON for some commands)."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        LOGGER.setLevel(level)


def export(weights: Path, backend: Backend, *, sha256: str, cache_dir: Path, imgsz: int = 640) -> Path:
    """Export ``weights`` for ``backend`` into the cache (atomically) and return the artifact.

    ``imgsz`` is only the tracing shape: the graph is dynamic. Raises ``BackendUnavailable`` with the
    reason when the runtime is missing, the cache is not writable, or the exporter fails.
    """
    if backend == "pytorch":
        return weights
    missing = runtime_missing(backend)
    if missing:
        raise BackendUnavailable(missing)
    entry = cache_entry(cache_dir, sha256, backend)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(entry.parent)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{backend}-", dir=entry.parent))
    except OSError as error:
        raise BackendUnavailable(f"cannot write the export cache {cache_dir} ({error}); set {ENV_CACHE}") from None
    try:
        # Export a copy: ultralytics writes beside its input, and models/ may be read-only or tracked.
        source = work / "model.pt"
        shutil.copyfile(weights, source)
        started = time.perf_counter()
        _run_exporter(source, backend, imgsz)
        source.unlink()
        if not _artifact(work, backend).exists():
            raise BackendUnavailable(f"the {backend} exporter wrote no {_artifact(work, backend).name}")
        import ultralytics

        manifest = {
            "source_sha256": sha256,
            "source": str(weights),
            "recipe": EXPORT_RECIPE,
            "backend": backend,
            "dynamic": True,
            "trace_imgsz": imgsz,
            "ultralytics": ultralytics.__version__,
            "export_s": round(time.perf_counter() - started, 1),
            "files": _file_hashes(work),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _install(work, entry)
    except BackendUnavailable:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except Exception as error:  # the exporter raises many kinds; none may stop the audit
        shutil.rmtree(work, ignore_errors=True)
        raise BackendUnavailable(f"{backend} export failed ({type(error).__name__}: {error})") from None
    found = cached_export(entry, backend, sha256)
    if found is None:
        raise BackendUnavailable(f"the {backend} export in {entry} does not verify")
    return found


def _run_exporter(source: Path, backend: Backend, imgsz: int) -> None:
    """Run ultralytics' exporter in a child process.

    The child owns every process-wide change the export needs (environment, refused sockets, logger
    levels, the tracer's memory), so threads of this process (say, a pusher uploading alerts) are
    untouched, and a crash inside a converter costs the export, not the audit.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False", ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "detector.model.backends", backend, str(source), "--imgsz", str(imgsz)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=EXPORT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(f"{backend} export took longer than {EXPORT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise BackendUnavailable(f"{backend} export failed (exit {done.returncode}: {tail})")


def _export_here(source: Path, backend: Backend, imgsz: int) -> None:
    """The export itself (in the child): dynamic shapes, FP32, CPU, no downloads, no installs."""
    from ultralytics import YOLO

    from detector.model.offline import no_network

    kwargs: dict[str, Any] = {"format": backend, "imgsz": imgsz, "dynamic": True, "device": "cpu", "batch": 1}
    if backend == "onnx":
        kwargs["simplify"] = _import_problem("onnxslim") is None
    with no_network(), quiet_ultralytics():
        YOLO(str(source), task="detect").export(**kwargs)


def _install(work: Path, entry: Path) -> None:
    """Move a finished export into place; another process may have finished the same export first."""
    if entry.exists():
        shutil.rmtree(entry, ignore_errors=True)  # an invalid entry (the caller re-exports only those)
    try:
        work.rename(entry)
    except OSError:
        if not entry.exists():
            raise
        shutil.rmtree(work, ignore_errors=True)  # lost the race to an identical export: use that one


def _remove_stale_tmp(parent: Path) -> None:
    now = time.time()
    for tmp in parent.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(tmp, ignore_errors=True)


def ensure_export(weights: Path, backend: Backend, *, sha256: str, cache_dir: Path, imgsz: int = 640) -> Path:
    """The verified cached artifact for ``backend``, exporting it first when absent or corrupt."""
    if backend == "pytorch":
        return weights
    entry = cache_entry(cache_dir, sha256, backend)
    found = cached_export(entry, backend, sha256)
    if found is None:
        if entry.exists():
            logger.warning("cached %s export %s is incomplete or corrupt; exporting again", backend, entry)
        else:
            logger.info("exporting %s to %s once (cached in %s)", weights.name, backend, entry)
        found = export(weights, backend, sha256=sha256, cache_dir=cache_dir, imgsz=imgsz)
    _mark_used_and_evict(entry.parent)
    return found


def _mark_used_and_evict(model_dir: Path) -> None:
    """Touch this model's cache folder and drop the least recently used beyond ``MAX_CACHED_MODELS``."""
    with contextlib.suppress(OSError):
        os.utime(model_dir)
        models = sorted(
            (d for d in model_dir.parent.iterdir() if d.is_dir() and not d.name.startswith(".")),
            key=lambda d: d.stat().st_mtime,
            reverse=True,
        )
        for old in models[MAX_CACHED_MODELS:]:
            if old != model_dir:
                shutil.rmtree(old, ignore_errors=True)


def prepare(
    weights: Path, backends: Sequence[Backend], *, sha256: str, cache_dir: Path | None = None, imgsz: int = 640
) -> dict[str, Path | str]:
    """Fill the cache for several backends at once (exports run side by side, one child process each).

    Returns each backend's artifact, or the reason it is unavailable. For warming a deployment's
    cache ahead of the first audit, and for benchmarks and tests that need every backend.
    """
    from concurrent.futures import ThreadPoolExecutor

    cache = cache_dir if cache_dir is not None else default_cache_dir()

    def one(backend: Backend) -> Path | str:
        try:
            return ensure_export(weights, backend, sha256=sha256, cache_dir=cache, imgsz=imgsz)
        except BackendUnavailable as error:
            return str(error)

    with ThreadPoolExecutor(max_workers=max(1, len(backends))) as pool:
        return dict(zip(backends, pool.map(one, backends), strict=True))


def _load(path: Path, backend: Backend, imgsz: int, *, warm_up: bool) -> Any:
    """A ``YOLO`` on ``path``; exported runtimes load lazily, so one tiny prediction proves the session works."""
    from ultralytics import YOLO

    with quiet_ultralytics():
        yolo = YOLO(str(path), task="detect")
        _ = yolo.names  # builds the predictor (and the runtime session) for exported formats
        if warm_up:
            yolo.predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=imgsz, device="cpu", verbose=False)
    return yolo


def open_model(
    weights: Path,
    *,
    sha256: str,
    backend: str | None = None,
    device: str = "cpu",
    imgsz: int = 640,
    cache_dir: Path | None = None,
    check: Callable[[dict[int, str]], object] | None = None,
) -> LoadedModel:
    """Load ``weights`` on the requested backend (see module doc), falling back down to PyTorch.

    The file is first loaded as it is (``.pt`` with PyTorch; ``.onnx`` and OpenVINO folders run as
    they are) and ``check(names)`` may refuse it, so bad input fails fast as ``ModelError`` (exit 2)
    before any export. After that, every failure only moves on to the next backend, with the reason
    logged and kept in ``LoadedModel.skipped``.
    """
    requested = requested_backend(backend)
    asked_by = "the backend option" if backend is not None else ENV_BACKEND
    given = backend_of(weights)
    try:
        yolo = _load(weights, given, imgsz, warm_up=False)
        names = dict(yolo.names)
    except Exception as error:  # ultralytics raises many kinds for a bad file
        raise ModelError(f"cannot load model: {error}", file=str(weights)) from None
    if check is not None:
        check(names)
    if given != "pytorch":
        if requested not in ("auto", given):
            logger.info("%s is a %s model; %s applies to .pt weights only", weights, given, requested)
        return LoadedModel(yolo, given, weights, requested, "the model file given is this format")
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    skipped: dict[str, str] = {}
    for candidate in candidates(requested, device):
        if candidate == "pytorch":
            break
        try:
            exported, path = _open_exported(weights, candidate, sha256=sha256, imgsz=imgsz, cache=cache)
        except BackendUnavailable as error:
            skipped[candidate] = str(error)
            logger.warning("inference backend %s unavailable, trying the next: %s", candidate, error)
            continue
        if requested == candidate:
            reason = f"requested by {asked_by}"
        else:
            reason = f"auto: fastest available on CPU (order {', '.join(CPU_ORDER)})"
        return LoadedModel(exported, candidate, path, requested, reason, skipped)
    with quiet_ultralytics():
        # Starts the predictor now (ultralytics sets torch's threads then), not on the first frame.
        yolo.predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=imgsz, device=device, verbose=False)
    if requested == "pytorch":
        reason = f"requested by {asked_by}"
    elif skipped:
        reason = "fallback: " + "; ".join(f"{name}: {why}" for name, why in skipped.items())
    else:
        reason = "auto: PyTorch on a GPU device"
    return LoadedModel(yolo, "pytorch", weights, requested, reason, skipped)


def _open_exported(weights: Path, backend: Backend, *, sha256: str, imgsz: int, cache: Path) -> tuple[Any, Path]:
    """The loaded exported model and its path; a cached export that does not load is made again once."""
    missing = runtime_missing(backend)
    if missing:  # before touching the cache: a runtime missing here says nothing about the files there
        raise BackendUnavailable(missing)
    artifact = ensure_export(weights, backend, sha256=sha256, cache_dir=cache, imgsz=imgsz)
    try:
        yolo = _load(artifact, backend, imgsz, warm_up=True)
    except Exception as error:
        # The files verify yet do not load (say, written by an incompatible runtime): export once more.
        logger.warning("cached %s export %s does not load (%s); exporting again", backend, artifact, error)
        shutil.rmtree(cache_entry(cache, sha256, backend), ignore_errors=True)
        artifact = export(weights, backend, sha256=sha256, cache_dir=cache, imgsz=imgsz)
        try:
            yolo = _load(artifact, backend, imgsz, warm_up=True)
        except Exception as again:
            raise BackendUnavailable(f"{backend} model does not load ({type(again).__name__}: {again})") from None
    return yolo, artifact


def main(argv: list[str] | None = None) -> None:
    """``python -m detector.model.backends {onnx,openvino} MODEL.pt [--imgsz N]``: the export child.

    It writes the exported model beside MODEL.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m detector.model.backends")
    parser.add_argument("backend", choices=[b for b in BACKENDS if b != "pytorch"])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args(argv)
    _export_here(args.weights, args.backend, args.imgsz)


if __name__ == "__main__":
    main()
