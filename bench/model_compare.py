"""Two (or more) model cards side by side in one run: accuracy where it matters and cost per frame.

For each card, on the same images and the same machine in the same run:

* mAP50 on held-out renders (seeds from ``TEST_SEED0``, the cards' test seeds) and, when ``../shared``
  holds it, on the held-out split of the real Bogotá street-vendor photographs (split by source
  photograph, seed 0: the split no shipped model trained on);
* precision and recall at the card's own thresholds on the held-out renders, and false detections per
  distractor-only render (seeds from ``NEGATIVES_SEED0``), with the matcher of ``streetwatch calibrate``;
* latency of one ``Detector.predict`` call per demo-clip frame as audit and run call it (the backend
  chosen as shipped); the models take turns frame by frame so a noisy neighbour slows all alike.

    python -m bench.model_compare                                   # v2 against the default card
    python -m bench.model_compare --cards models/a.yaml,models/b.yaml --renders 100 --negatives 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
BOGOTA = REPO.parent / "shared" / "realdata" / "bogota-street-vendors" / "train" / "images"
BASELINE = REPO / "models" / "streetwatch-v2.yaml"
# The bar: a new default costs at most this much more per frame than the one it replaces.
MAX_COST_RATIO = 1.3


def _render(out: Path, renders: int, negatives: int) -> tuple[Path, Path]:
    from detector.training.dataset import NEGATIVES_SEED0, TEST_SEED0, write_dataset, write_negatives

    data = write_dataset(
        out / "renders",
        train_seeds=range(0),
        val_seeds=range(0),
        test_seeds=range(TEST_SEED0, TEST_SEED0 + renders),
        workers=os.cpu_count(),
    )
    seeds = range(NEGATIVES_SEED0, NEGATIVES_SEED0 + negatives)
    neg = write_negatives(out / "negatives", seeds, workers=os.cpu_count())
    return data, neg


def _bogota(out: Path) -> Path | None:
    from detector.training.mix import write_holdout

    if not BOGOTA.is_dir():
        return None
    split = write_holdout(BOGOTA, out / "bogota", names=["vendedor_ambulante"])
    # Their one class is our stall: a names-aligned copy of the test split for the evaluator.
    import yaml

    cfg = yaml.safe_load(split.read_text())
    cfg["names"] = {0: "stall"}
    aligned = out / "bogota" / "stall.yaml"
    aligned.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return aligned


def _at_thresholds(card: Any, data: Path, negatives: Path) -> dict[str, Any]:
    from detector.model.wrapper import Detector, class_thresholds
    from detector.training.calibrate import COLLECT_CONFIDENCE, collect
    from zones.detections import MODEL_CLASSES

    detector = Detector.from_card(card, confidence=COLLECT_CONFIDENCE)
    sightings = collect(detector, data, split="test", negatives=negatives)
    thresholds = class_thresholds(card.confidence)
    per_class = {}
    false = 0.0
    for class_id, name in enumerate(MODEL_CLASSES):
        stats = sightings.at(class_id, float(thresholds[class_id]))
        per_class[name] = {
            "threshold": float(thresholds[class_id]),
            "precision": round(float(stats["precision"]), 3),
            "recall": round(float(stats["recall"]), 3),
        }
        false += float(stats["false_per_image"])
    return {"per_class": per_class, "false_per_distractor_image": round(false, 3)}


def _latency(cards: Sequence[Any], frames: Sequence[Any], rounds: int) -> dict[str, dict[str, float | str]]:
    from bench.inference import time_backends
    from detector.model.wrapper import Detector

    detectors = {card.name: Detector.from_card(card) for card in cards}
    wall, cpu = time_backends(detectors, frames, rounds)
    return {
        name: {
            "backend": detectors[name].backend,
            "p50_ms": round(1000 * statistics.median(wall[name]), 1),
            "cpu_p50_ms": round(1000 * statistics.median(cpu[name]), 1),
        }
        for name in detectors
    }


def run(
    *,
    cards: Sequence[Path] | None = None,
    renders: int = 400,
    negatives: int = 300,
    frames: int = 40,
    rounds: int = 2,
    data: Path | None = None,
    negatives_dir: Path | None = None,
) -> dict[str, Any]:
    """The figures (JSON-ready): one row per card, and the cost ratio of the last against the first."""
    from bench.inference import clip_frames
    from detector.model.wrapper import default_card, read_card, sha256_of
    from detector.training.train import evaluate

    chosen = [read_card(p) for p in cards] if cards else [read_card(BASELINE), default_card()]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sw-bench-models-") as tmp:
        started = time.perf_counter()
        if data is None or negatives_dir is None:
            data, negatives_dir = _render(Path(tmp), renders, negatives)
        bogota = _bogota(Path(tmp))
        render_s = time.perf_counter() - started
        latency = _latency(chosen, clip_frames(frames), rounds)
        for card in chosen:
            renders_map = evaluate(data, card.weights, imgsz=card.imgsz, split="test", device="cpu")
            real = evaluate(bogota, card.weights, imgsz=card.imgsz, split="test", device="cpu") if bogota else None
            rows.append(
                {
                    "model": card.name,
                    "sha256": sha256_of(card.weights)[:12],
                    "renders_mAP50": round(renders_map["mAP50"], 3),
                    "renders_per_class_mAP50": {k: round(v["mAP50"], 3) for k, v in renders_map["per_class"].items()},
                    "bogota_mAP50": round(real["mAP50"], 3) if real else None,
                    "at_thresholds": _at_thresholds(card, data, negatives_dir),
                    **latency[card.name],
                }
            )
    base, new = rows[0], rows[-1]
    return {
        "renders": renders,
        "negatives": negatives,
        "bogota_test_images": None if not BOGOTA.is_dir() else "held-out split, seed 0",
        "render_s": round(render_s, 1),
        "rows": rows,
        "cost_ratio": round(new["p50_ms"] / base["p50_ms"], 2),
        "cpu_cost_ratio": round(new["cpu_p50_ms"] / base["cpu_p50_ms"], 2),
        "max_cost_ratio": MAX_COST_RATIO,
    }


def markdown(figures: dict[str, Any]) -> str:
    lines = [
        "### Models side by side (same run)",
        "",
        f"Held-out renders: {figures['renders']} (seeds from 1500000); distractor-only renders: "
        f"{figures['negatives']} (seeds from 2000000); real photographs: Bogotá street vendors, "
        f"{figures['bogota_test_images'] or 'absent (../shared missing)'}. Latency: demo-clip frames, one per call.",
        "",
        "| model | renders mAP50 (stall / laundry / structure) | Bogotá mAP50 | P / R at card thresholds "
        "(stall, laundry, structure) | false per distractor image | backend | p50 ms/frame | CPU ms/frame |",
        "|---|---|---:|---|---:|---|---:|---:|",
    ]
    for r in figures["rows"]:
        pc = r["renders_per_class_mAP50"]
        at = r["at_thresholds"]
        pr = ", ".join(f"{v['precision']:.2f}/{v['recall']:.2f}" for v in at["per_class"].values())
        bogota = "-" if r["bogota_mAP50"] is None else f"{r['bogota_mAP50']:.3f}"
        lines.append(
            f"| {r['model']} | {r['renders_mAP50']:.3f} ({' / '.join(f'{v:.3f}' for v in pc.values())}) | {bogota} "
            f"| {pr} | {at['false_per_distractor_image']:.3f} | {r['backend']} | {r['p50_ms']} | {r['cpu_p50_ms']} |"
        )
    lines += [
        "",
        f"Cost per frame, last against first: {figures['cost_ratio']}x wall, {figures['cpu_cost_ratio']}x CPU "
        f"(bar: <= {figures['max_cost_ratio']}x).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.model_compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", default=None, help="comma-separated model cards (default: v2, then the default)")
    parser.add_argument("--renders", type=int, default=400)
    parser.add_argument("--negatives", type=int, default=300)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="an already rendered test set's data.yaml")
    parser.add_argument("--negatives-dir", type=Path, default=None, help="its distractor-only images/ folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = run(
        cards=[Path(p) for p in args.cards.split(",")] if args.cards else None,
        renders=args.renders,
        negatives=args.negatives,
        frames=args.frames,
        rounds=args.rounds,
        data=args.data,
        negatives_dir=args.negatives_dir,
    )
    print(json.dumps(figures, indent=2) if args.json else markdown(figures))


if __name__ == "__main__":
    main()
