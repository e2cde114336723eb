"""The ``streetwatch run`` command: its options, turned into a ``LiveRequest`` for ``detector.live.run``.

``detector.cli`` registers it with the other commands. Only typer is imported here, so the CLI starts
fast; the live room loads when the command runs. ``--model`` and ``--backend`` are the model room's,
as for every other command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detector.model.options import BackendOption, MaxReuseOption, ModelOption, ReuseThresholdOption, use_backend
from zones.errors import InputError


def run(
    camera: Annotated[
        list[Path] | None,
        typer.Option("--camera", help="Camera config YAML (DESIGN §3.2); repeat for several cameras."),
    ] = None,
    push: Annotated[
        str | None, typer.Option("--push", help="Service URL to push alert records and camera status to.")
    ] = None,
    token: Annotated[str | None, typer.Option("--token", help="Bearer token (default $STREETWATCH_TOKEN).")] = None,
    model: ModelOption = None,
    detections_from: Annotated[
        Path | None,
        typer.Option(
            "--detections-from",
            help="Replay a detections file (§3.3) instead of the model; t counts seconds from each camera's "
            "first frame (tests, demos).",
        ),
    ] = None,
    analysis_fps: Annotated[
        float,
        typer.Option(
            "--analysis-fps",
            min=0.05,
            max=30.0,
            help="Frames analysed per second per camera. Where the camera's key frames come at least this "
            "often (GOP ≤ 1.25/F s), only key frames are decoded.",
        ),
    ] = 0.5,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Spool of unsent records, engine state and evidence.")
    ] = Path("streetwatch-state"),
    health_port: Annotated[
        int | None, typer.Option("--health-port", min=1, max=65535, help="Serve GET /healthz on this port.")
    ] = None,
    health_host: Annotated[str, typer.Option("--health-host", help="Address for --health-port.")] = "127.0.0.1",
    evidence: Annotated[
        bool, typer.Option("--evidence/--no-evidence", help="Write snapshots and clips under --state-dir.")
    ] = True,
    backend: BackendOption = None,
    config_from: Annotated[
        str | None,
        typer.Option(
            "--config-from",
            help="Service URL to take camera configs from (GET /api/v1/camera-configs): every camera configured "
            "there, or those of --camera-id; new versions are picked up without a restart. Combines with --camera. "
            "--push defaults to it.",
        ),
    ] = None,
    camera_id: Annotated[
        list[str] | None,
        typer.Option("--camera-id", help="With --config-from: run only this camera (repeat for several)."),
    ] = None,
    config_poll_s: Annotated[
        float,
        typer.Option("--config-poll-s", min=0.1, max=86400.0, help="How often --config-from is polled, seconds."),
    ] = 30.0,
    snapshot_every_s: Annotated[
        float,
        typer.Option(
            "--snapshot-every-s",
            min=0.0,
            max=86400.0,
            help="Upload each camera's clean frame (JPEG) to the service this often, at its first frame and when its "
            "view check's status changes; 0: off.",
        ),
    ] = 300.0,
    reuse_threshold: ReuseThresholdOption = None,
    max_reuse_s: MaxReuseOption = None,
) -> None:
    """Live mode: analyse cameras continuously, push alerts and camera status to the service."""
    from detector.live.run import LiveRequest, configure_logging, run_live

    push = push or config_from
    if not (camera or config_from) or not push:
        raise InputError("run needs --camera CAMERA.yaml (one or more) or --config-from URL, and --push URL")
    configure_logging()  # live mode's own line format
    use_backend(backend)
    raise typer.Exit(
        run_live(
            LiveRequest(
                cameras=list(camera or []),
                push=push,
                token=token,
                model=model,
                detections_from=detections_from,
                analysis_fps=analysis_fps,
                state_dir=state_dir,
                health_port=health_port,
                health_host=health_host,
                evidence=evidence,
                config_from=config_from,
                camera_ids=list(camera_id or []),
                config_poll_s=config_poll_s,
                snapshot_every_s=snapshot_every_s,
                change_threshold=reuse_threshold,
                max_reuse_s=max_reuse_s,
            )
        )
    )
