"""Train and evaluate streetwatch's detector with ultralytics, strictly offline (DESIGN §4).

The network is built from a model yaml (``yolov8n.yaml``), never from a downloaded checkpoint.
Everything that could reach the network is switched off: ``YOLO_OFFLINE=1``, no pretrained weights,
no AMP check (it downloads a checkpoint; ``amp`` is ``False`` or ``"bf16"``, which skips the check),
no plots (they fetch a font), and while training or evaluating, socket connections are refused
outright so that a forgotten download path fails loudly instead of hanging.

Command line (used by ``gpu_train.sh``)::

    python -m detector.training.train train --data D/data.yaml --epochs 50 --imgsz 640 --project runs --name x
    python -m detector.training.train eval --data D/data.yaml --model best.pt [--split test] [--json]
    python -m detector.training.train fp --images D/negatives/images --model best.pt [--conf 0.25]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")

import yaml

from detector.model.offline import no_network
from detector.training.mix import IMAGE_SUFFIXES, MixReport, class_names, label_path, rewrite_labels, split_images


def _quiet_settings() -> None:
    """Turn off ultralytics' telemetry and hub integrations for this process."""
    from ultralytics import settings

    with contextlib.suppress(Exception):  # a read-only settings file must not stop training
        settings.update(
            {
                "sync": False,
                "hub": False,
                "wandb": False,
                "mlflow": False,
                "comet": False,
                "clearml": False,
                "neptune": False,
                "dvc": False,
                "tensorboard": False,
                "raytune": False,
            }
        )


def bf16_supported() -> bool:
    """Whether this ultralytics accepts ``amp='bf16'`` (which also skips the downloading AMP check)."""
    import ultralytics.engine.trainer as trainer

    return '"bf16"' in Path(trainer.__file__).read_text()


def train(
    data: Path,
    *,
    epochs: int,
    imgsz: int,
    model_yaml: str = "yolov8n.yaml",
    batch: int = 16,
    device: str | None = None,
    project: Path,
    name: str,
    resume: bool = False,
    seed: int = 0,
    time_hours: float | None = None,
    workers: int = 8,
    cache: bool | str = False,
    amp: bool | str = False,
    patience: int = 100,
    init: Path | None = None,
    freeze: int | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Path:
    """Train a detector from ``model_yaml`` on ``data`` and return the path of ``best.pt``.

    ``init`` names weights to start from (e.g. COCO weights): tensors whose name and shape match are
    loaded into the ``model_yaml`` network, the rest keep their initialisation, and the count is
    printed. ``freeze`` keeps the first N layers fixed (10 = yolov8n's backbone). ``time_hours`` caps
    the wall time (ultralytics' ``time``, overrides ``epochs``). Every epoch writes ``last.pt`` and a
    copy that is only ever replaced whole (``last.safe.pt``); with ``resume`` the run continues from
    the newest checkpoint that loads (:func:`resumable_checkpoint`).
    """
    from ultralytics import YOLO

    _quiet_settings()
    project = Path(project).resolve()
    run_dir = project / name
    last = run_dir / "weights" / "last.pt"
    if amp == "bf16" and not bf16_supported():
        amp = False
    checkpoint = resumable_checkpoint(run_dir) if resume else None
    with no_network():
        if checkpoint is not None:
            if checkpoint != last:
                print(f"{last} is damaged (interrupted while saving): resuming from {checkpoint}", flush=True)
            model = YOLO(str(checkpoint))
            _keep_safe_copy(model)
            _use_all_cores(model)
            if progress:
                _add_epoch_bar(model)
            model.train(resume=True)
        else:
            model = YOLO(model_yaml)  # a yaml builds random weights; a .pt of ours is fine-tuned; nothing downloads
            # ultralytics drops loaded weights when pretrained is False, so only a yaml may train from scratch.
            from_scratch = Path(model_yaml).suffix.lower() in {".yaml", ".yml"}
            if init is not None:
                report_initialisation(model, Path(init))
                # As ultralytics' ``pretrained``: the trainer builds the yaml for the dataset's classes, then loads.
                overrides["pretrained"] = str(Path(init).resolve())
                from_scratch = False
            if freeze:
                overrides["freeze"] = freeze
            _keep_safe_copy(model)
            _use_all_cores(model)
            if progress:
                _add_epoch_bar(model)
            args: dict[str, Any] = dict(
                data=str(Path(data).resolve()),
                epochs=epochs,
                imgsz=imgsz,
                batch=batch,
                project=str(project),
                name=name,
                exist_ok=True,
                pretrained=not from_scratch,
                amp=amp,
                plots=False,
                seed=seed,
                workers=workers,
                cache=cache,
                patience=patience,
                verbose=True,
                deterministic=False,
            )
            if device is not None:
                args["device"] = device
            if time_hours is not None:
                args["time"] = time_hours
            args.update(overrides)
            model.train(**args)
    trainer = getattr(model, "trainer", None)
    best = (
        Path(trainer.best)
        if trainer is not None and getattr(trainer, "best", None)
        else run_dir / "weights" / "best.pt"
    )
    if not best.is_file():
        best = last
    return best


def report_initialisation(model: Any, weights: Path) -> None:
    """Print, once the trainer has built the network, how many of its tensors came from ``weights``.

    The trainer builds the network for the dataset's classes and loads every tensor of ``weights``
    whose name and shape match (all but the class logits when only the class count differs); the count
    is of the tensors of the network actually trained that hold the initial weights' values.
    """
    import torch

    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: initial weights not found")
    ckpt = torch.load(str(weights), map_location="cpu", weights_only=False)
    source = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else ckpt
    if source is None or not hasattr(source, "state_dict"):
        raise ValueError(f"{weights}: not an ultralytics checkpoint (no model inside)")
    reference = {k: v.detach().float().clone() for k, v in source.float().state_dict().items()}

    def report(trainer: Any) -> None:
        target = trainer.model.state_dict()
        same = sum(
            1
            for k, v in target.items()
            if k in reference and v.shape == reference[k].shape and torch.equal(v.detach().float().cpu(), reference[k])
        )
        print(f"initialised from {weights}: {same} of {len(target)} tensors loaded, the rest initialised", flush=True)

    model.add_callback("on_pretrain_routine_end", report)


def _add_epoch_bar(model: Any) -> None:
    """One progress bar over the whole run in epochs (moved on every batch), with ETA."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def start(trainer: Any) -> None:
        state["bar"] = tqdm(
            total=int(trainer.epochs),
            initial=int(trainer.start_epoch),
            desc="training",
            unit="epoch",
            bar_format="{l_bar}{bar}| {n:.2f}/{total} epochs [{elapsed}<{remaining}{postfix}]",
        )

    def batch_end(trainer: Any) -> None:
        bar = state.get("bar")
        batches = len(getattr(trainer, "train_loader", None) or ()) or 1
        if bar is not None and bar.n < int(trainer.epoch) + 1:
            bar.update(min(1.0 / batches, int(trainer.epoch) + 1 - bar.n))

    def epoch_end(trainer: Any) -> None:
        bar = state.get("bar")
        if bar is None:
            return
        bar.total = int(trainer.epochs)  # a wall-time cap re-plans the epoch count
        fitness = getattr(trainer, "fitness", None)
        if fitness is not None:
            bar.set_postfix(fitness=f"{float(fitness):.3f}", refresh=False)
        bar.n = min(float(trainer.epoch) + 1, bar.total)
        bar.refresh()

    def end(trainer: Any) -> None:
        bar = state.pop("bar", None)
        if bar is not None:
            bar.close()

    model.add_callback("on_train_start", start)
    model.add_callback("on_train_batch_end", batch_end)
    model.add_callback("on_fit_epoch_end", epoch_end)
    model.add_callback("on_train_end", end)


SAFE_COPY = "last.safe.pt"


def _loads(path: Path) -> bool:
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception:  # a truncated zip, a partial pickle: anything that does not load is not a checkpoint
        return False
    return isinstance(ckpt, dict) and (ckpt.get("model") is not None or ckpt.get("ema") is not None)


def resumable_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a resume continues from: ``last.pt`` if it loads, else the whole copy of the epoch before."""
    weights = Path(run_dir) / "weights"
    for candidate in (weights / "last.pt", weights / SAFE_COPY):
        if candidate.is_file() and _loads(candidate):
            return candidate
    return None


def _keep_safe_copy(model: Any) -> None:
    """After every checkpoint, copy ``last.pt`` to ``last.safe.pt`` by rename: a kill mid-save loses one epoch at most.

    ultralytics writes ``last.pt`` in place, so a process killed while writing leaves it truncated.
    """

    def copy(trainer: Any) -> None:
        last = Path(trainer.last)
        if not last.is_file():
            return
        tmp = last.with_name(SAFE_COPY + ".tmp")
        shutil.copyfile(last, tmp)
        os.replace(tmp, last.with_name(SAFE_COPY))

    model.add_callback("on_model_save", copy)


def _use_all_cores(model: Any) -> None:
    """Train on every core: ultralytics leaves one free for data loading, which it then does in-line on CPU."""
    import torch

    threads = int(os.environ.get("STREETWATCH_TRAIN_THREADS") or os.cpu_count() or 1)

    def apply(trainer: Any) -> None:
        if getattr(trainer, "device", None) is not None and trainer.device.type == "cpu":
            torch.set_num_threads(max(1, threads))

    model.add_callback("on_pretrain_routine_start", apply)


def split_files(data_yaml: Path, split: str) -> tuple[dict[str, Any], list[tuple[Path, Path]]]:
    """A dataset yaml and the (image, label file) pairs of one split (a folder, a .txt list or a list of them)."""
    cfg = yaml.safe_load(Path(data_yaml).read_text())
    if not isinstance(cfg, dict):
        raise ValueError(f"{data_yaml}: not a dataset yaml (a mapping with 'names' and the splits)")
    if cfg.get(split) is None:
        raise ValueError(f"{data_yaml}: no '{split}' split")
    return cfg, [(image, label_path(image)) for image in split_images(Path(data_yaml), cfg, split)]


def _aligned_data(data_yaml: Path, split: str, model_names: list[str], tmp: Path) -> tuple[Path, dict[int, int]]:
    """A data yaml whose class ids follow the model's: the dataset's names are matched by name.

    Returns the yaml to validate on and the dataset-to-model id map. When the orders already agree the
    original yaml is used; otherwise the split's labels are rewritten into ``tmp`` (images linked).
    """
    cfg, files = split_files(data_yaml, split)
    ds_names = class_names(cfg["names"])
    id_map = {i: model_names.index(n) for i, n in enumerate(ds_names) if n in model_names}
    # ultralytics insists on 'train' and 'val' keys even to evaluate another split.
    complete = cfg.get("train") is not None and cfg.get("val") is not None
    if ds_names == model_names and complete:
        return data_yaml, id_map
    out_img, out_lbl = tmp / "images" / split, tmp / "labels" / split
    out_img.mkdir(parents=True, exist_ok=True)
    out_lbl.mkdir(parents=True, exist_ok=True)
    for index, (img, src) in enumerate(files):
        stem = f"{index:06d}_{img.stem}"  # a list may name two files of the same name in different folders
        (out_img / f"{stem}{img.suffix}").symlink_to(img)
        text = rewrite_labels(src, id_map, ds_names, model_names, MixReport(data_yaml=data_yaml))
        (out_lbl / f"{stem}.txt").write_text(text)
    new_cfg = {
        "path": str(tmp),
        "train": f"images/{split}",
        "val": f"images/{split}",
        split: f"images/{split}",
        "names": dict(enumerate(model_names)),
    }
    path = tmp / "data.yaml"
    path.write_text(yaml.safe_dump(new_cfg, sort_keys=False, allow_unicode=True))
    return path, id_map


def _count_instances(label_files: list[Path], n_classes: int, id_map: dict[int, int]) -> list[int]:
    counts = [0] * n_classes
    for f in label_files:
        if not f.is_file():
            continue
        for row in f.read_text().splitlines():
            parts = row.split()
            if parts and int(float(parts[0])) in id_map:
                counts[id_map[int(float(parts[0]))]] += 1
    return counts


def evaluate(
    data: Path,
    model: Path,
    *,
    imgsz: int = 640,
    conf: float = 0.001,
    split: str = "test",
    batch: int = 16,
    device: str | None = None,
) -> dict[str, Any]:
    """mAP of ``model`` on a YOLO dataset split, classes matched by name (DESIGN §3.1 ``eval``).

    Returns ``{"mAP50", "mAP50_95", "per_class": {name: {"mAP50", "mAP50_95", "instances"}}}`` with one
    entry per model class that the dataset names.
    """
    from ultralytics import YOLO

    _quiet_settings()
    data = Path(data).resolve()
    yolo = YOLO(str(model))
    model_names = class_names(yolo.names)
    with tempfile.TemporaryDirectory(prefix="streetwatch-eval-") as tmpdir, no_network():
        yaml_path, id_map = _aligned_data(data, split, model_names, Path(tmpdir))
        _, files = split_files(data, split)
        kwargs: dict[str, Any] = dict(
            data=str(yaml_path),
            split=split,
            imgsz=imgsz,
            conf=conf,
            batch=batch,
            plots=False,
            verbose=False,
            save_json=False,
        )
        if device is not None:
            kwargs["device"] = device
        metrics = yolo.val(**kwargs)
        counts = _count_instances([label for _, label in files], len(model_names), id_map)
        box = metrics.box
        ap50 = {int(c): float(box.ap50[i]) for i, c in enumerate(box.ap_class_index)}
        ap = {int(c): float(box.ap[i]) for i, c in enumerate(box.ap_class_index)}
        per_class = {}
        for mid in sorted(set(id_map.values())):
            per_class[model_names[mid]] = {
                "mAP50": ap50.get(mid, 0.0),
                "mAP50_95": ap.get(mid, 0.0),
                "instances": int(counts[mid]),
            }
        return {"mAP50": float(box.map50), "mAP50_95": float(box.map), "per_class": per_class}


def false_positives_per_image(
    images_dir: Path, model: Path, conf: float = 0.25, *, imgsz: int = 640, device: str | None = None
) -> float:
    """Mean number of detections at ``conf`` per image on distractor-only images (every one is false)."""
    from ultralytics import YOLO

    images = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"{images_dir}: no images")
    yolo = YOLO(str(model))
    total = 0
    with no_network():
        for i in range(0, len(images), 32):
            kwargs: dict[str, Any] = dict(conf=conf, imgsz=imgsz, verbose=False, stream=False)
            if device is not None:
                kwargs["device"] = device
            for r in yolo.predict([str(p) for p in images[i : i + 32]], **kwargs):
                boxes = getattr(r, "boxes", None)
                total += 0 if boxes is None else len(boxes)
    return total / len(images)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m detector.training.train")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train from a model yaml")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--imgsz", type=int, default=640)
    t.add_argument("--model-yaml", default="yolov8n.yaml")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--device", default=None)
    t.add_argument("--project", type=Path, default=Path("runs"))
    t.add_argument("--name", default="streetwatch")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--time", type=float, default=None, help="cap in hours (overrides --epochs)")
    t.add_argument("--workers", type=int, default=8)
    t.add_argument("--cache", default="false", help="false | ram | disk")
    t.add_argument("--amp", default="false", help="false | bf16")
    t.add_argument("--copy-to", type=Path, default=None, help="copy best.pt here when done")
    t.add_argument("--init", type=Path, default=None, help="weights to start from (e.g. COCO): matching tensors load")
    t.add_argument("--freeze", type=int, default=0, help="keep the first N layers fixed")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra ultralytics training argument, e.g. --set val=False --set warmup_epochs=1 (repeatable)",
    )
    e = sub.add_parser("eval", help="mAP on a split, classes matched by name")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--model", type=Path, required=True)
    e.add_argument("--imgsz", type=int, default=640)
    e.add_argument("--conf", type=float, default=0.001)
    e.add_argument("--split", default="test")
    e.add_argument("--device", default=None)
    e.add_argument("--json", action="store_true")
    f = sub.add_parser("fp", help="false positives per image on distractor-only images")
    f.add_argument("--images", type=Path, required=True)
    f.add_argument("--model", type=Path, required=True)
    f.add_argument("--conf", type=float, default=0.25)
    f.add_argument("--imgsz", type=int, default=640)
    f.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "train":
        cache: bool | str = False if args.cache.lower() in {"false", "0", "no", ""} else args.cache
        amp: bool | str = False if args.amp.lower() in {"false", "0", "no", ""} else args.amp
        extra: dict[str, Any] = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key:
                ap.error(f"--set expects KEY=VALUE, got {item!r}")
            extra[key] = yaml.safe_load(value)
        best = train(
            args.data,
            epochs=args.epochs,
            imgsz=args.imgsz,
            model_yaml=args.model_yaml,
            batch=args.batch,
            device=args.device,
            project=args.project,
            name=args.name,
            resume=args.resume,
            seed=args.seed,
            time_hours=args.time,
            workers=args.workers,
            cache=cache,
            amp=amp,
            init=args.init,
            freeze=args.freeze or None,
            **extra,
        )
        print(f"best: {best}")
        if args.copy_to is not None:
            args.copy_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(best, args.copy_to)
    elif args.cmd == "eval":
        res = evaluate(args.data, args.model, imgsz=args.imgsz, conf=args.conf, split=args.split, device=args.device)
        if args.json:
            print(json.dumps(res))
        else:
            print(f"all        mAP50 {res['mAP50']:.3f}  mAP50-95 {res['mAP50_95']:.3f}")
            for n, m in res["per_class"].items():
                print(f"{n:10s} mAP50 {m['mAP50']:.3f}  mAP50-95 {m['mAP50_95']:.3f}  instances {m['instances']}")
    else:
        fp = false_positives_per_image(args.images, args.model, args.conf, imgsz=args.imgsz, device=args.device)
        print(json.dumps({"false_positives_per_image": fp, "conf": args.conf}))


if __name__ == "__main__":
    main()
