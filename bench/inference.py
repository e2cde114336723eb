"""Inference latency and accuracy of each backend (PyTorch, ONNX Runtime, OpenVINO) at several image sizes.

Speed is never reported without accuracy beside it: every (backend, imgsz) row carries the mAP50 of
that same runtime on a held-out generated set (seeds from ``TEST_SEED0``, the model card's test
seeds, rendered into a temporary folder), measured with ultralytics' validator on the exported file.

Latency is one ``Detector.predict`` call on one frame (letterbox, inference, NMS, conversion), as the
audit calls it, on frames of the demo clips (960x540, 16:9). Backends take turns frame by frame, so
a noisy neighbour slows them all alike; the table gives the median, the mean and the speed-up of the
median against PyTorch at the same size.

    python -m bench.inference                        # 200 images, sizes 640 480 320, 40 frames
    python -m bench.inference --images 8 --sizes 320 --frames 4    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
CLIPS = ("street_day", "residential_day", "night_market")
DEFAULT_SIZES = (640, 480, 320)
# The bar: an exported backend at least this much faster than PyTorch, mAP50 within MAX_MAP_LOSS.
TARGET_SPEEDUP = 2.0
MAX_MAP_LOSS = 0.01
ALL_CORES = "pytorch-allcores"


def clip_frames(count: int) -> list[Any]:
    """``count`` frames spread evenly over the demo clips."""
    import cv2

    frames: list[Any] = []
    per_clip = max(1, -(-count // len(CLIPS)))
    for clip in CLIPS:
        capture = cv2.VideoCapture(str(REPO / "sample_videos" / f"{clip}.mp4"))
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
        for i in range(per_clip):
            capture.set(cv2.CAP_PROP_POS_FRAMES, i * total // per_clip)
            ok, image = capture.read()
            if ok:
                frames.append(image)
        capture.release()
    if not frames:
        raise SystemExit("no frames could be read from sample_videos/")
    return frames[:count]


def render_test_set(out: Path, images: int) -> Path:
    from detector.training.dataset import TEST_SEED0, write_dataset

    return write_dataset(
        out,
        train_seeds=range(0),
        val_seeds=range(0),
        test_seeds=range(TEST_SEED0, TEST_SEED0 + images),
        workers=os.cpu_count(),
    )


class AllCoresPyTorch:
    """The PyTorch detector with one thread per physical core for each call (ultralytics' own setting,
    logical CPUs - 1, leaves one core to the decoder), so the comparison holds against PyTorch at its best."""

    def __init__(self, detector: Any, threads: int) -> None:
        self.detector = detector
        self.threads = threads

    def predict(self, images: Sequence[Any]) -> Any:
        import torch

        saved = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self.detector.predict(images)
        finally:
            torch.set_num_threads(saved)


def time_backends(
    detectors: dict[str, Any], frames: Sequence[Any], rounds: int = 1
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and process CPU seconds (all threads) per ``predict([frame])``; backends interleaved
    frame by frame. CPU time is the work done, which a busy neighbour barely changes; wall time is latency."""
    for detector in detectors.values():
        for frame in frames[:2]:
            detector.predict([frame])  # warm-up: first-shape compilation, allocator, caches
    wall: dict[str, list[float]] = {name: [] for name in detectors}
    cpu: dict[str, list[float]] = {name: [] for name in detectors}
    for _ in range(rounds):
        for frame in frames:
            for name, detector in detectors.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                detector.predict([frame])
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
    return wall, cpu


def run(
    *,
    images: int = 200,
    sizes: Sequence[int] = DEFAULT_SIZES,
    frames: int = 40,
    rounds: int = 1,
    backends: Sequence[str] = ("pytorch", "onnx", "openvino"),
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """The figures as a dict (JSON-ready): one row per backend and size, plus the setting."""
    from detector.model.backends import default_cache_dir, physical_cores
    from detector.model.wrapper import Detector, default_card, sha256_of
    from detector.training.train import evaluate

    card = default_card()
    cache = cache_dir or default_cache_dir()
    video_frames = clip_frames(frames)
    rows: list[dict[str, Any]] = []
    exports: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sw-bench-inference-") as tmp:
        started = time.perf_counter()
        data = render_test_set(Path(tmp) / "data", images)
        render_s = time.perf_counter() - started
        for imgsz in sizes:
            detectors: dict[str, Any] = {}
            for backend in backends:
                started = time.perf_counter()
                detector = Detector(
                    card.weights, name=card.name, confidence=card.confidence, imgsz=imgsz, backend=backend,
                    cache_dir=cache,
                )
                exports.setdefault(backend, round(time.perf_counter() - started, 1))
                if detector.backend != backend:
                    print(f"bench: {backend} unavailable ({detector.backend_info['reason']}); skipped", file=sys.stderr)
                    continue
                detectors[backend] = detector
            timed: dict[str, Any] = dict(detectors)
            threads: dict[str, int | None] = {name: d.backend_info["threads"] for name, d in detectors.items()}
            if "pytorch" in detectors and threads["pytorch"] != physical_cores():
                timed[ALL_CORES] = AllCoresPyTorch(detectors["pytorch"], physical_cores())
                threads[ALL_CORES] = physical_cores()
            times, cpu_times = time_backends(timed, video_frames, rounds)
            accuracy: dict[str, dict[str, Any]] = {}
            for name in timed:
                backend = "pytorch" if name == ALL_CORES else name
                if backend not in accuracy:  # threads do not change what the model finds
                    path = detectors[backend].runtime_path
                    accuracy[backend] = evaluate(data, path, imgsz=imgsz, split="test", device="cpu")
                rows.append(
                    {
                        "backend": name,
                        "imgsz": imgsz,
                        "p50_ms": round(1000 * statistics.median(times[name]), 1),
                        "mean_ms": round(1000 * statistics.fmean(times[name]), 1),
                        "min_ms": round(1000 * min(times[name]), 1),
                        "cpu_p50_ms": round(1000 * statistics.median(cpu_times[name]), 1),
                        "frames": len(times[name]),
                        "threads": threads[name],
                        "mAP50": round(accuracy[backend]["mAP50"], 4),
                        "mAP50_95": round(accuracy[backend]["mAP50_95"], 4),
                    }
                )
    for row in rows:
        same = [r for r in rows if r["imgsz"] == row["imgsz"]]
        base = next((r for r in same if r["backend"] == "pytorch"), None)
        best = min((r for r in same if r["backend"] in ("pytorch", ALL_CORES)), key=lambda r: r["p50_ms"], default=None)
        row["speedup_vs_pytorch"] = round(base["p50_ms"] / row["p50_ms"], 2) if base else None
        row["speedup_vs_best_pytorch"] = round(best["p50_ms"] / row["p50_ms"], 2) if best else None
        row["mAP50_delta"] = round(row["mAP50"] - base["mAP50"], 4) if base else None
    return {
        "model": {"name": card.name, "sha256": sha256_of(card.weights)},
        "test_set": {"images": images, "seeds_from": "TEST_SEED0 (1500000)", "render_s": round(render_s, 1)},
        "frames": f"{len(video_frames)} demo-clip frames (960x540), one frame per predict call, {rounds} round(s)",
        "first_load_s": exports,
        "rows": rows,
        "verdict": verdict(rows),
    }


def verdict(rows: Sequence[dict[str, Any]]) -> str:
    """Whether an exported backend met the bar at the card's size (the largest measured)."""
    if not rows:
        return "no rows"
    imgsz = max(r["imgsz"] for r in rows)
    good = [
        r
        for r in rows
        if r["imgsz"] == imgsz
        and r["backend"] not in ("pytorch", ALL_CORES)
        and r["speedup_vs_pytorch"] is not None
        and r["speedup_vs_pytorch"] >= TARGET_SPEEDUP
        and abs(r["mAP50_delta"]) <= MAX_MAP_LOSS
    ]
    if good:
        best = max(good, key=lambda r: r["speedup_vs_pytorch"])
        return (
            f"met at imgsz {imgsz}: {best['backend']} {best['speedup_vs_pytorch']}x PyTorch as shipped "
            f"({best['speedup_vs_best_pytorch']}x PyTorch at its best), mAP50 {best['mAP50_delta']:+.4f}"
        )
    return f"not met at imgsz {imgsz} (target: >= {TARGET_SPEEDUP}x PyTorch with |mAP50 delta| <= {MAX_MAP_LOSS})"


def markdown(figures: dict[str, Any]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("ultralytics", "torch", "onnxruntime", "openvino"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    lines = [
        f"### Inference backends: {figures['model']['name']} ({figures['model']['sha256'][:12]})",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; {', '.join(versions)}.",
        f"Latency: {figures['frames']}. Accuracy: {figures['test_set']['images']} held-out renders "
        f"(seeds from {figures['test_set']['seeds_from']}), ultralytics val at conf 0.001 on the exported file.",
        "",
        "| backend | imgsz | threads | p50 ms/frame | mean ms | min ms | CPU ms/frame | speed-up vs pytorch "
        "(best pytorch) | mAP50 | Δ mAP50 | mAP50-95 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in figures["rows"]:
        lines.append(
            f"| {r['backend']} | {r['imgsz']} | {r['threads']} | {r['p50_ms']} | {r['mean_ms']} | {r['min_ms']} "
            f"| {r['cpu_p50_ms']} "
            f"| {r['speedup_vs_pytorch']}x ({r['speedup_vs_best_pytorch']}x) "
            f"| {r['mAP50']:.3f} | {r['mAP50_delta']:+.3f} | {r['mAP50_95']:.3f} |"
        )
    first = ", ".join(f"{k} {v} s" for k, v in figures["first_load_s"].items())
    lines += [
        "",
        f"`pytorch` runs as streetwatch runs it (ultralytics' threads); `{ALL_CORES}` is the same model with one",
        "thread per physical core. CPU ms: process CPU time per frame, all threads (spinning included).",
        "First load (export included when the cache was cold): " + first + ".",
        f"Verdict: {figures['verdict']}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="held-out renders for mAP50 (default 200)")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="imgsz list, e.g. 640,480,320")
    parser.add_argument("--frames", type=int, default=40, help="timed frames per backend and size (default 40)")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the timed frames (default 1)")
    parser.add_argument("--backends", default="pytorch,onnx,openvino")
    parser.add_argument("--cache", type=Path, default=None, help="export cache (default: streetwatch's cache)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of markdown")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    figures = run(
        images=args.images,
        sizes=sizes,
        frames=args.frames,
        rounds=args.rounds,
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        cache_dir=args.cache,
    )
    print(json.dumps(figures, indent=2) if args.json else markdown(figures))


if __name__ == "__main__":
    main()
