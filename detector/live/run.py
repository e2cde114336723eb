"""``streetwatch run``: live cameras analysed continuously, alerts and camera status pushed to the service.

``run_live`` checks the request, loads the camera configs (``--camera`` files and/or those of
``--config-from``), loads the model once, locks the state dir, and wires the cameras, the spool and its
sender, the config poller, the snapshot uploader and the health endpoint around one ``LiveRunner``; it
runs until SIGTERM/SIGINT and then saves the states and tries to deliver what is queued.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from detector.live.analysers import Analyser, ModelAnalyser, ReplayAnalyser
from detector.live.camera import CameraRuntime
from detector.live.configs import CONFIG_CACHE_DIR, CONFIGS_PATH, DEFAULT_CONFIG_POLL_S, ConfigFeed, RemoteConfig
from detector.live.push import ServiceClient, service_base
from detector.live.runner import DEFAULT_ANALYSIS_FPS, LiveRunner
from detector.live.snapshots import DEFAULT_SNAPSHOT_EVERY_S, SnapshotUploader
from detector.live.spool import Spool, SpoolSender
from detector.live.status import STATUS_INTERVAL_S, start_health_server
from detector.model.obstructions import wanted as wanted_obstructions
from detector.model.people_vehicles import shared_people_vehicles
from detector.video.frame_skip import NO_REUSE, ReusePolicy
from detector.video.watchdog import OFFLINE_AFTER_S
from zones.config import CameraConfig, load_camera_config
from zones.errors import InputError

log = logging.getLogger("streetwatch.live")

SPOOL_FILE = "spool.sqlite3"
_CAMERA_ID = re.compile(r"[a-z0-9-]{1,64}")


@dataclass
class LiveRequest:
    cameras: list[Path]
    push: str
    token: str | None = None
    model: Path | None = None
    detections_from: Path | None = None
    analysis_fps: float = DEFAULT_ANALYSIS_FPS
    state_dir: Path = Path("streetwatch-state")
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    evidence: bool = True
    offline_after_s: float = OFFLINE_AFTER_S
    status_interval_s: float = STATUS_INTERVAL_S
    config_from: str | None = None
    """Service whose camera configs this run runs (besides ``cameras``)."""
    camera_ids: list[str] = field(default_factory=list)
    """With ``config_from``: only these cameras (default: every camera with a config there)."""
    config_poll_s: float = DEFAULT_CONFIG_POLL_S
    snapshot_every_s: float = DEFAULT_SNAPSHOT_EVERY_S
    change_threshold: float | None = None
    """Frame skip (``detector/video/frame_skip.py``, as the audit): None is the default, 12 grey levels."""
    max_reuse_s: float | None = None
    """None: 10 s; always capped at a quarter of each camera's shortest dwell; 0 turns reuse off."""
    extra: dict[str, Any] = field(default_factory=dict)


def configure_logging(level: int = logging.INFO) -> None:
    """One line per event on stderr: ``<UTC time> <level> <event> key=value …``."""
    logger = logging.getLogger("streetwatch")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _load_configs(paths: Sequence[Path], *, required: bool = True) -> list[CameraConfig]:
    if not paths and required:
        raise InputError("run needs at least one --camera CAMERA.yaml")
    configs = [load_camera_config(path) for path in paths]
    seen: dict[str, Path] = {}
    for path, config in zip(paths, configs, strict=True):
        if config.id in seen:
            raise InputError(f"camera id {config.id!r} is also used by {seen[config.id]}", file=str(path), field="id")
        seen[config.id] = path
        source = config.resolve_source()
        if isinstance(source, str) and "://" not in source and not Path(source).is_file():
            raise InputError(f"source file {source!r} not found", file=str(path), field="source")
    return configs


def _analyser(request: LiveRequest, configs: Sequence[CameraConfig]) -> Analyser:
    if request.detections_from is not None:
        return ReplayAnalyser(request.detections_from)
    from detector.model.wrapper import load_detector

    maps = {json.dumps(c.class_map, sort_keys=True) for c in configs}
    if len(maps) > 1:
        raise InputError("the cameras of one run share one model, so their class_map entries must be the same")
    return ModelAnalyser(load_detector(request.model, class_map=configs[0].class_map if configs else None))


def _check_request(request: LiveRequest) -> None:
    ReusePolicy.from_options(request.change_threshold, request.max_reuse_s)  # refused before anything starts
    if not 0.05 <= request.analysis_fps <= 30:
        raise InputError(f"--analysis-fps {request.analysis_fps} must lie within 0.05..30")
    if not request.cameras and request.config_from is None:
        raise InputError("run needs --camera CAMERA.yaml (one or more) or --config-from URL")
    if request.camera_ids and request.config_from is None:
        raise InputError("--camera-id picks cameras of --config-from URL; give --config-from too", field="--camera-id")
    for camera_id in request.camera_ids:
        if not _CAMERA_ID.fullmatch(camera_id):
            raise InputError(
                f"{camera_id!r} is not a camera id: use 1-64 lower-case letters, digits and '-'", field="--camera-id"
            )
    if not 0.1 <= request.config_poll_s <= 86400:
        raise InputError(f"--config-poll-s {request.config_poll_s:g} must lie within 0.1..86400")
    if not (request.snapshot_every_s == 0 or 1 <= request.snapshot_every_s <= 86400):
        raise InputError(f"--snapshot-every-s {request.snapshot_every_s:g} must be 0 (off) or within 1..86400")
    if request.model is not None and request.detections_from is None and not request.model.exists():
        # Known now, not after waiting for the service to hand out the first configs.
        raise InputError("model weights not found", file=str(request.model))


def run_live(request: LiveRequest, *, stop: threading.Event | None = None) -> int:
    """Runs until SIGTERM/SIGINT (or ``stop``); returns the exit code."""
    configure_logging()
    config_base = (
        service_base(request.config_from, "--config-from", CONFIGS_PATH) if request.config_from is not None else None
    )
    base = service_base(request.push)
    _check_request(request)
    configs = _load_configs(request.cameras, required=config_base is None)
    replay = _analyser(request, ()) if request.detections_from is not None else None
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own log lines say it
    except (ImportError, AttributeError):
        pass
    lock = _lock_state_dir(request.state_dir)
    spool = Spool(request.state_dir / SPOOL_FILE)
    client = ServiceClient(base, request.token)
    feed_client = ServiceClient(config_base, request.token) if config_base is not None else None
    snapshot_client = ServiceClient(base, request.token) if request.snapshot_every_s > 0 else None
    stop = stop or threading.Event()
    previous = _install_signal_handlers(stop)  # also while waiting for the service's configs
    runner: LiveRunner | None = None
    health = None
    try:
        feed = None
        remote: list[RemoteConfig] = []
        if feed_client is not None:
            feed = ConfigFeed(
                feed_client,
                cache_dir=request.state_dir / CONFIG_CACHE_DIR,
                camera_ids=request.camera_ids,
                poll_s=request.config_poll_s,
            )
            file_ids = {config.id for config in configs}
            remote = [entry for entry in feed.first(stop, wait=not configs) if entry.camera_id not in file_ids]
            if stop.is_set():
                return 0
        analyser = replay or _analyser(request, [*configs, *(entry.config for entry in remote)])
        # Reusing detections saves model time; a replayed file costs none, so it is read at every frame.
        reuse = ReusePolicy.from_options(request.change_threshold, request.max_reuse_s)
        if not isinstance(analyser, ModelAnalyser):
            reuse = NO_REUSE
        elif any(wanted_obstructions(c) for c in [*configs, *(entry.config for entry in remote)]):
            shared_people_vehicles()  # loaded now, not at the first frame of such a camera

        def build(config: CameraConfig, version: int | None) -> CameraRuntime:
            camera = CameraRuntime(
                config,
                model=analyser.model,
                crop_model=analyser.crop_model,
                track_thresholds=analyser.track_thresholds,
                state_dir=request.state_dir,
                analysis_fps=request.analysis_fps,
                saved_state=spool.load_state(config.id),
                evidence=request.evidence,
                offline_after_s=request.offline_after_s,
                reuse=reuse,
            )
            camera.config_version = version
            return camera

        def new_camera(entry: RemoteConfig) -> CameraRuntime:
            return build(entry.config, entry.version)

        cameras = [build(config, None) for config in configs] + [new_camera(entry) for entry in remote]
        snapshots = SnapshotUploader(snapshot_client) if snapshot_client is not None else None
        runner = LiveRunner(
            cameras,
            analyser,
            spool,
            state_dir=request.state_dir,
            sender=SpoolSender(spool, client),
            analysis_fps=request.analysis_fps,
            status_interval_s=request.status_interval_s,
            config_feed=feed,
            new_camera=new_camera,
            # A model maps class names once, at load: later configs must keep its class_map.
            class_map=json.dumps(cameras[0].config.class_map if cameras else None, sort_keys=True)
            if isinstance(analyser, ModelAnalyser)
            else None,
            snapshots=snapshots,
            snapshot_every_s=request.snapshot_every_s,
        )
        health = start_health_server(runner, request.health_host, request.health_port) if request.health_port else None
        log.info(
            "live.started cameras=%s push=%s config_from=%s model=%s analysis_fps=%g state_dir=%s pending=%d",
            ",".join(c.id for c in cameras) or "none-yet",
            base,
            config_base or "-",
            analyser.model.name,
            request.analysis_fps,
            request.state_dir,
            spool.pending(),
        )
        assert runner.sender is not None
        runner.sender.start()
        if snapshots is not None:
            snapshots.start()
        if feed is not None:
            feed.start(stop)
        runner.start_capture()
        runner.loop(stop)
    finally:
        stop.set()  # ends the config poller
        if runner is not None:
            runner.shutdown()
            if runner.snapshots is not None:
                runner.snapshots.stop()
        if health is not None:
            health.shutdown()
        for each in (client, feed_client, snapshot_client):
            if each is not None:
                each.close()
        spool.close()
        _restore_signal_handlers(previous)
        lock.close()
    return 0


def _lock_state_dir(state_dir: Path) -> IO[bytes]:
    """One ``run`` per state dir: two would send the same spool and overwrite each other's engines."""
    import fcntl

    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = (state_dir / "run.lock").open("ab")
    except OSError as error:
        raise InputError(f"cannot use the state dir: {error.strerror or error}", file=str(state_dir)) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise InputError("another streetwatch run is using this --state-dir", file=str(state_dir)) from None
    return handle


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("live.stopping signal=%s", signal.Signals(signum).name)
        stop.set()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
