"""The ``streetwatch`` console script (DESIGN §3.1).

Exit codes: 0 success, 2 invalid input (a one-paragraph message on stderr naming the file and,
for config, the field path), 1 only for bugs. Commands owned by other rooms (the service's
``serve``, ``token``, ``webhook``) are contributed through the ``streetwatch.commands`` entry-point
group so that this room never imports ``service``.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

from detector.live.command import run
from detector.model.options import BackendOption, MaxReuseOption, ModelOption, ReuseThresholdOption, use_backend
from zones.errors import InputError

# No code path may reach the network: ultralytics must never try to download weights, fonts or
# check for updates. Set before anything imports ultralytics.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")
# Decompression bombs: OpenCV refuses images over this many pixels (read once, before first use).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(8192 * 8192))

app = typer.Typer(
    name="streetwatch",
    help="Street-violation detection for city management: audit video, run live cameras, dispatch cases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("check")
def check_config(
    camera: Annotated[Path, typer.Argument(help="Camera config YAML (DESIGN §3.2) to validate.")],
) -> None:
    """Validate a camera config and print a one-line summary of its zones."""
    from zones.config import load_camera_config

    config = load_camera_config(camera)
    zone_names = ", ".join(zone.name for zone in config.zones) or "no zones"
    typer.echo(f"{camera}: camera {config.id} is valid ({zone_names})")


def _start_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--start-time {value!r} is not ISO 8601, e.g. 2026-11-27T19:00:00+08:00") from None
    if parsed.tzinfo is None:
        raise InputError(f"--start-time {value!r} needs a UTC offset, e.g. 2026-11-27T19:00:00+08:00")
    return parsed


SampleFps = Annotated[
    float | None,
    typer.Option("--sample-fps", min=0.01, max=60.0, help="Frames analysed per second of video (default 1)."),
]


@app.command()
def audit(
    videos: Annotated[list[Path] | None, typer.Argument(help="Video files or image folders.")] = None,
    camera: Annotated[Path, typer.Option("--camera", help="Camera config YAML (DESIGN §3.2).")] = Path(),
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path(),
    model: ModelOption = None,
    detections_from: Annotated[
        Path | None, typer.Option("--detections-from", help="Replay a detections file (§3.3) instead of the model.")
    ] = None,
    sample_fps: SampleFps = None,
    start_time: Annotated[
        str | None, typer.Option("--start-time", help="Wall-clock time of the first frame, ISO 8601 with offset.")
    ] = None,
    push: Annotated[str | None, typer.Option("--push", help="Service URL to post each alert record to.")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Bearer token (default $STREETWATCH_TOKEN).")] = None,
    backend: BackendOption = None,
    reuse_threshold: ReuseThresholdOption = None,
    max_reuse_s: MaxReuseOption = None,
    keyframe_interval: Annotated[
        float | None,
        typer.Option(
            "--keyframe-interval",
            min=0.1,
            max=60.0,
            help="Key-frame path: analyse a key frame at most every this many seconds (default 4; capped at "
            "half the camera's max_gap_s).",
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Spread the audit over a Ray cluster: 'auto' (the running cluster, else one on this machine) or "
            "its ADDRESS. Each video, and each segment of a long one, is a task. Needs pip install "
            "'streetwatch[ray]'.",
        ),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option("--ray-workers", min=1, max=4096, help="Tasks at once (default: the cluster's CPUs / 2)."),
    ] = None,
    ray_segment_s: Annotated[
        float,
        typer.Option(
            "--ray-segment-s", min=10.0, max=86400.0, help="With --ray: cut videos longer than this into segments."
        ),
    ] = 1800.0,
) -> None:
    """Audit recorded video: alerts.jsonl, summary.json, report.html and evidence in --out."""
    from detector.audit.runner import DEFAULT_KEYFRAME_INTERVAL_S, AuditRequest, run_audit

    if camera == Path() or out == Path():
        raise InputError("audit needs --camera CAMERA.yaml and --out DIR")
    use_backend(backend)
    request = AuditRequest(
        videos=list(videos or []),
        camera=camera,
        out=out,
        model=model,
        detections_from=detections_from,
        sample_fps=sample_fps,
        start_time=_start_time(start_time),
        push=push,
        token=token,
        change_threshold=reuse_threshold,
        max_reuse_s=max_reuse_s,
        keyframe_interval_s=DEFAULT_KEYFRAME_INTERVAL_S if keyframe_interval is None else keyframe_interval,
    )
    if ray is not None:
        from detector.audit.distributed import run_audit_ray

        summary = run_audit_ray(request, ray, ray_workers, ray_segment_s)
    else:
        summary = run_audit(request)
    found = sum(summary["alerts"].values())
    typer.echo(
        f"{found} violation(s) in {summary['duration_s']:.0f} s of video "
        f"({summary['realtime_factor']}x real time); report: {out / 'report.html'}"
    )
    for error in summary["errors"]:
        typer.echo(f"streetwatch: warning: {_describe_error(error)}", err=True)


def _describe_error(error: object) -> str:
    """One readable line for a summary.json error entry (``{"video", "error", "detail", …}``)."""
    if not isinstance(error, dict):
        return str(error)
    where = error.get("video") or (f"push of alert {error['alert']}" if "alert" in error else "audit")
    line = f"{where}: {error.get('error', 'error')}"
    return f"{line} ({error['detail']})" if error.get("detail") else line


@app.command()
def detect(
    video: Annotated[Path, typer.Argument(help="Video file or image folder.")],
    out: Annotated[Path, typer.Option("--out", help="Detections file to write (JSON Lines, §3.3).")],
    model: ModelOption = None,
    sample_fps: SampleFps = None,
    backend: BackendOption = None,
) -> None:
    """Run the model and tracker only and write the detections file."""
    from detector.model.detect import run_detect

    use_backend(backend)
    count = run_detect(video, out, model=model, sample_fps=sample_fps, progress=sys.stderr.isatty())
    typer.echo(f"{count} frames analysed; detections in {out}")


def verify_bundle_file(bundle: Path, public_key: Path | None) -> None:
    """``verify BUNDLE.zip``: every hash and the signature, offline; exit 2 naming the first file that fails."""
    from zones.bundle import load_public_key, verify_bundle

    key = None
    if public_key is not None:
        try:
            key = load_public_key(public_key.read_bytes())
        except (ValueError, TypeError) as error:
            raise InputError(f"not an Ed25519 public key in PEM: {error}", file=str(public_key)) from None
    check = verify_bundle(bundle, public_key=key)
    for problem in check.problems:
        typer.echo(f"{bundle}: {problem}", err=True)
    if not check.ok:
        raise typer.Exit(2)
    signer = "the given public key" if check.key_given else "the key it names (give --public-key to know who signed)"
    typer.echo(
        f"{bundle}: case {check.case_id}: {check.files} file(s) match the manifest, signed by {signer} "
        f"(key id {check.key_id})"
    )


@app.command()
def verify(
    target: Annotated[Path, typer.Argument(help="An audit output folder, or a case bundle (.zip) from the service.")],
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="Bundles: the service's public key (PEM, from GET /api/v1/keys/bundle)."),
    ] = None,
) -> None:
    """Check every evidence file against the SHA-256 in alerts.jsonl; or a case bundle's hashes and signature."""
    from detector.evidence.writer import verify_evidence

    if target.is_file():
        verify_bundle_file(target, public_key)
        return
    if target.suffix.lower() == ".zip":
        raise InputError("no such bundle", file=str(target))
    audit_dir = target
    if public_key is not None:
        raise InputError("--public-key is for case bundles (.zip), not audit folders", field="--public-key")
    if not (audit_dir / "alerts.jsonl").is_file():
        raise InputError("no alerts.jsonl here", file=str(audit_dir))
    problems = verify_evidence(audit_dir)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(2)
    typer.echo(f"{audit_dir}: all evidence matches its records")


@app.command("eval")
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Ultralytics dataset yaml (YOLO format).")],
    model: ModelOption = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="Dataset split to evaluate (default: test, or val when there is no test split)."),
    ] = None,
    imgsz: Annotated[int, typer.Option("--imgsz", min=32, max=4096, help="Inference size.")] = 640,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """mAP50 and mAP50-95 per class and overall on a labelled dataset."""
    import json

    from detector.model.wrapper import default_card
    from detector.training.train import evaluate as run_eval

    if not data.is_file():
        raise InputError("dataset yaml not found", file=str(data))
    if split is None:
        split = _default_eval_split(data)
    weights = model if model is not None else default_card().weights
    if not weights.exists():
        raise InputError("model weights not found", file=str(weights))
    try:
        metrics = run_eval(data, weights, imgsz=imgsz, split=split)
    except ValueError as error:  # a split or class the dataset does not have
        raise InputError(str(error), file=str(data)) from None
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    typer.echo(f"{'class':<12}{'mAP50':>8}{'mAP50-95':>10}{'instances':>11}")
    for name, row in metrics["per_class"].items():
        typer.echo(f"{name:<12}{row['mAP50']:>8.3f}{row['mAP50_95']:>10.3f}{row['instances']:>11}")
    typer.echo(f"{'all':<12}{metrics['mAP50']:>8.3f}{metrics['mAP50_95']:>10.3f}")


def _default_eval_split(data: Path) -> str:
    """``test``; a dataset with only train/val (ultralytics' own, most Roboflow exports) is evaluated on ``val``."""
    from detector.training.mix import held_out_split

    split = held_out_split(data)
    if split == "val":
        typer.echo(f"{data}: no 'test' split; evaluating on 'val' instead", err=True)
    return split


@app.command()
def calibrate(
    data: Annotated[Path, typer.Option("--data", help="Ultralytics dataset yaml of labelled frames not trained on.")],
    model: ModelOption = None,
    split: Annotated[str, typer.Option("--split", help="Dataset split to calibrate on.")] = "val",
    negatives: Annotated[
        Path | None,
        typer.Option(
            "--negatives",
            help="Folder of frames holding none of the objects: false detections are "
            "counted there (default: unmatched detections on the split).",
        ),
    ] = None,
    max_false_per_image: Annotated[
        float, typer.Option("--max-false-per-image", min=0.0, max=100.0, help="All classes together.")
    ] = 0.03,
    min_precision: Annotated[float, typer.Option("--min-precision", min=0.0, max=1.0, help="For every class.")] = 0.8,
    backend: BackendOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")] = False,
) -> None:
    """Choose track thresholds and min_score per class on labelled frames; prints a card's `confidence:` and
    `min_score:` lines."""
    import json

    from detector.model.wrapper import DEFAULT_CONFIDENCE, Detector, card_of, class_thresholds, default_card
    from detector.training.calibrate import COLLECT_CONFIDENCE, labelled_split
    from detector.training.calibrate import calibrate as run_calibration

    if not data.is_file():
        raise InputError("dataset yaml not found", file=str(data))
    labelled_split(data, split)  # bad labels stop here, before the model is loaded
    card = default_card() if model is None else card_of(model)
    if card is not None:
        detector = Detector.from_card(card, confidence=COLLECT_CONFIDENCE, backend=backend)
        fallback = class_thresholds(card.confidence)
    else:
        assert model is not None
        detector = Detector(model, confidence=COLLECT_CONFIDENCE, backend=backend)
        fallback = class_thresholds(DEFAULT_CONFIDENCE)
    report = run_calibration(
        detector,
        data,
        fallback=fallback.tolist(),
        split=split,
        negatives=negatives,
        max_false_per_image=max_false_per_image,
        min_precision=min_precision,
    )
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{'class':<12}{'threshold':>10}{'precision':>11}{'recall':>8}{'false/img':>11}{'instances':>11}")
    for name, row in report["per_class"].items():
        recall = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        typer.echo(
            f"{name:<12}{row['threshold']:>10.2f}{row['precision']:>11.3f}{recall:>8}"
            f"{row['false_per_image']:>11.3f}{row['instances']:>11}"
        )
    typer.echo(
        f"false detections per image, all classes: {report['false_per_image']:.3f} ({report['false_counted_on']})"
    )
    for key in ("confidence", "min_score"):
        values = ", ".join(f"{name}: {value}" for name, value in report[key].items())
        typer.echo(f"{key}: {{{values}}}")


@app.command()
def train(
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            help="Ultralytics dataset yaml, optionally with a weight: PATH[:W] (each image seen W times per epoch, "
            "e.g. real.yaml:0.3). Repeat to mix datasets; class names are matched to ours by name.",
        ),
    ],
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=10000)] = 50,
    imgsz: Annotated[int, typer.Option("--imgsz", min=32, max=4096)] = 640,
    model_yaml: Annotated[
        str, typer.Option("--model-yaml", help="Architecture yaml, or a .pt of ours to fine-tune from.")
    ] = "yolov8n.yaml",
    init: Annotated[
        Path | None,
        typer.Option("--init", help="Weights to start from (e.g. COCO weights): matching layers are loaded."),
    ] = None,
    freeze: Annotated[
        int, typer.Option("--freeze", min=0, max=100, help="Keep the first N layers fixed (10: yolov8n's backbone).")
    ] = 0,
    names_map: Annotated[
        Path | None,
        typer.Option("--names-map", help="YAML mapping dataset class names to ours, e.g. {vendedor_ambulante: stall}."),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=1024)] = 16,
    hours: Annotated[
        float | None, typer.Option("--hours", min=0.01, max=1000.0, help="Wall-time cap; overrides --epochs.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=0, max=64, help="Data-loader processes.")] = 2,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    project: Annotated[Path, typer.Option("--project", help="Where runs are written.")] = Path("runs"),
    name: Annotated[str, typer.Option("--name")] = "train",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run from its last.pt (checkpointed every epoch).")
    ] = False,
    device: Annotated[str | None, typer.Option("--device", help="cpu, 0, … (default: GPU if present).")] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option("--set", help="Extra ultralytics training argument KEY=VALUE, e.g. --set close_mosaic=2."),
    ] = None,
) -> None:
    """Train (or fine-tune) a detector with ultralytics; never downloads a checkpoint."""
    import yaml

    from detector.training.mix import DataSource, load_names_map, write_mix
    from detector.training.scenes import CLASS_NAMES
    from detector.training.train import resumable_checkpoint
    from detector.training.train import train as run_train

    sources = [DataSource.parse(spec) for spec in data]
    for source in sources:
        if not source.path.is_file():
            raise InputError("dataset yaml not found", file=str(source.path))
    if init is not None and not init.is_file():
        raise InputError("initial weights not found", file=str(init))
    overrides: dict[str, Any] = {}
    for item in extra or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects KEY=VALUE, got {item!r}", file="--set")
        overrides[key] = yaml.safe_load(value)
    run_dir = project.resolve() / name
    resuming = resume and resumable_checkpoint(run_dir) is not None
    train_yaml = sources[0].path
    mapping = load_names_map(names_map)
    if not resuming and (len(sources) > 1 or sources[0].weight != 1.0 or mapping):
        report = write_mix(sources, run_dir / "mix", list(CLASS_NAMES), names_map=mapping, seed=seed)
        for line in report.lines():
            typer.echo(line, err=True)
        train_yaml = report.data_yaml
    elif resume and not resuming:
        typer.echo(f"{run_dir}: no checkpoint that loads to resume from; starting a new run", err=True)
    try:
        best = run_train(
            train_yaml,
            epochs=epochs,
            imgsz=imgsz,
            model_yaml=model_yaml,
            batch=batch,
            device=device,
            project=project,
            name=name,
            resume=resuming,
            seed=seed,
            time_hours=hours,
            workers=workers,
            init=init,
            freeze=freeze or None,
            **overrides,
        )
    except (FileNotFoundError, ValueError) as error:
        raise InputError(str(error), file=str(init or train_yaml)) from None
    typer.echo(f"best weights: {best}")


model_app = typer.Typer(
    name="model",
    help="The model cards in models/: promote retrained weights to the default model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(model_app, name="model")


_PROMOTE_HELP = (
    "Promote retrained weights to the default model only if they are no worse than it.\n\n"
    "On the dataset's held-out split: mAP50 per class (classes with instances) of the candidate and of the "
    "current default model (the newest card in --models-dir), per-class thresholds calibrated for the candidate "
    "(the current card's are kept when the split is too small), and an audit of every sample clip with the "
    "candidate at those thresholds against the clip's truth. The calibrated thresholds are used only when every "
    "clip still matches with them; otherwise the clips are audited again at the current card's thresholds, and "
    "if they all match there the candidate is judged and promoted with the current thresholds (the table and the "
    "card say so). So the very same weights as the current default are always accepted. Promoted when no class "
    "is worse (candidate mAP50 >= current, no tolerance) and every clip matches: --models-dir gets NAME.pt and a "
    "card NAME.yaml that is the newest, so audit, run and detect use it.\n\n"
    "Exit codes: 0 promoted (or --dry-run, whatever it would decide); 1 refused, which is a decision and not a "
    "bug: a class got worse or a sample clip no longer matches its truth (the table and the reasons are printed, "
    "nothing is written); 2 invalid input (missing candidate or data.yaml, not a model, no val split, no labelled "
    "images), naming the file."
)


@model_app.command("promote", help=_PROMOTE_HELP)
def model_promote(
    candidate: Annotated[Path, typer.Argument(help="Candidate weights, e.g. runs/train/weights/best.pt.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="The city's YOLO dataset (a folder with data.yaml, or a data yaml): its 'val' split, or its "
            "'test' split when it has one, is the held-out split everything is measured on.",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the table and the decision, write nothing, exit 0.")
    ] = False,
    models_dir: Annotated[
        Path | None,
        typer.Option(
            "--models-dir",
            help="Folder of model cards; its newest card is the current default (default: the models/ folder "
            "audit, run and detect read).",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name of the new model (default streetwatch-city-<UTC date>-<sha256[:8]>)."),
    ] = None,
    backend: BackendOption = None,
) -> None:
    """Promote retrained weights to the default model only if they are no worse than it (see --help)."""
    from detector.model.wrapper import MODELS_DIR
    from detector.training.promote import PromoteRequest, promote

    use_backend(backend)
    outcome = promote(
        PromoteRequest(
            candidate=candidate,
            data=data,
            models_dir=MODELS_DIR if models_dir is None else models_dir,
            name=name,
            dry_run=dry_run,
        )
    )
    for line in outcome.lines():
        typer.echo(line)
    if not outcome.accepted and not dry_run:
        raise typer.Exit(1)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="Where the demo's database and audits go.")] = Path(
        "demo-out"
    ),
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Service port (default: free).")] = None,
    keep_serving: Annotated[
        bool | None,
        typer.Option("--serve/--no-serve", help="Keep the service running after the audits (default: on a terminal)."),
    ] = None,
) -> None:
    """The main job on embedded defaults: service on SQLite, sample clips audited and pushed into it."""
    from detector.demo import run_demo

    serve_on = sys.stdin.isatty() if keep_serving is None else keep_serving
    raise typer.Exit(run_demo(workdir, port=port, keep_serving=serve_on))


app.command()(run)  # live mode, whose options are in detector/live/command.py


_plugins_registered = False


def _register_plugin_commands() -> None:
    global _plugins_registered
    if _plugins_registered:  # main() may be called many times in one process (tests, embedding)
        return
    _plugins_registered = True
    for entry in entry_points(group="streetwatch.commands"):
        try:
            plugin = entry.load()
        except ImportError as error:  # a broken optional room must not take the other commands down
            print(f"streetwatch: warning: command {entry.name!r} unavailable: {error}", file=sys.stderr)
            continue
        if isinstance(plugin, typer.Typer):
            app.add_typer(plugin, name=entry.name)
        else:
            app.command(entry.name)(plugin)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: maps typed input errors to exit code 2."""
    _register_plugin_commands()
    try:
        code = app(args=argv, standalone_mode=False)
    except InputError as error:
        print(f"streetwatch: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError) as error:
        # A path the user gave that cannot be used (e.g. an --out folder without write permission).
        where = error.filename or "a path"
        print(f"streetwatch: error: {where}: {error.strerror or error}", file=sys.stderr)
        raise SystemExit(2) from None
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        print("streetwatch: aborted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:
        # Usage errors (missing option, bad value) come from the click that typer bundles; they carry
        # their own exit code (2) and know how to explain themselves.
        show = getattr(error, "show", None)
        exit_code = getattr(error, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            raise SystemExit(exit_code) from None
        raise
    raise SystemExit(code if isinstance(code, int) else 0)
