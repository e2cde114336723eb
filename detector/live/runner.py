"""``streetwatch run``: live cameras analysed continuously, alerts and camera status pushed to the service.

Threads: one capture thread per camera (``detector.video.capture``), one analysis loop (the caller's
thread: it owns the pipelines, so they need no locks), one spool sender (``detector.live.spool``), and
optionally the health endpoint. One model instance serves all cameras; the frames each camera has
ready are analysed together as one batch.

Time: each frame carries the wall-clock time at capture. A camera's engine seconds ``t`` count
from its epoch (the capture time of its first frame ever, kept across restarts with the engine
state), so ``wall_clock(t) = epoch + t`` and ``t`` never goes backwards for a camera (a clock step
back is clamped).

Durability: a batch of alert records and the engine states that produced them are written to the
spool in one transaction before anything is sent; states are also saved every few seconds and at
shutdown. After a restart each camera resumes its engine from the saved state, so an incident that
was reported is not reported again; if the camera was away for longer than ``max_gap_s``, the
first frame ends the old incidents at their last sighting (DESIGN §3.4a). An outage longer than
``max_gap_s`` while running does the same without waiting for the camera to come back.

Configs from the service (``--config-from URL``): a poller thread (``ConfigFeed``) reads
``GET /api/v1/camera-configs`` every ``--config-poll-s`` and fetches each camera config whose version
changed; the analysis loop applies them between two batches. A new camera starts; a changed one is
reconfigured without a restart: when its view changed (source, zones, exclude masks, frame_size,
max_gap_s, class_map) its open incidents are closed at the change time (``violation.closed``, ended at
their last sighting) and its pipeline is rebuilt with the new zones; any other change (name, location,
calibration, grid) keeps the open incidents and only changes where and to whom later records go. A
config that fails validation here (e.g. a calibration whose points disagree, which the service cannot
check) is logged and the camera keeps its previous version. The last config fetched of each camera is
kept under ``--state-dir/configs``: a runner that starts while the service is unreachable runs those
and says so, else it waits, retrying with backoff. Relative file paths in a config from the service
are relative to the working directory.

Snapshots: every ``--snapshot-every-s`` (and at a camera's first analysed frame) the clean analysed
frame goes as a JPEG to ``PUT /api/v1/cameras/<id>/snapshot``, best effort beside the spool
(``detector.live.push.SnapshotUploader``).
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from detector.evidence.writer import EvidenceWriter
from detector.incidents.engine import IncidentEngine
from detector.incidents.pipeline import CameraPipeline, PipelineContext
from detector.live.push import (
    ALERTS_PATH,
    ServiceClient,
    SnapshotUploader,
    evidence_content_type,
    evidence_upload_path,
    service_base,
)
from detector.live.spool import Outgoing, Spool, SpoolSender
from detector.video.capture import CapturedFrame, CaptureThread, FrameQueue, Opener, redact
from detector.video.watchdog import OFFLINE_AFTER_S, Transition, Watchdog
from zones.alert import AlertRecord, ModelRef
from zones.config import CameraConfig, format_loc, load_camera_config
from zones.detections import Detections
from zones.errors import ConfigError, InputError
from zones.geo import Geolocator
from zones.geometry import CameraZones

log = logging.getLogger("streetwatch.live")

STATE_VERSION = 1
# Violations need minutes of dwell (DESIGN §3.4a defaults: 180-600 s) and survive 30 s unseen, so a look every
# 2 s is ample (the audit looks every 4 s and reports the sample clips' truth exactly). It is also the key-frame
# interval of a typical IP camera (GOP 50 at 25 fps), so the capture decodes key frames only: a 1080p camera then
# costs 0.023 core instead of the 0.11-0.14 that decoding every frame needs (bench/live_capacity.py), and one 2-core
# machine sustains 8 such cameras with margin, 16 at the edge of a 2 s alert latency p95 (bench/RESULTS.md).
DEFAULT_ANALYSIS_FPS = 0.5
STATE_SAVE_INTERVAL_S = 10.0
STATUS_INTERVAL_S = 30.0
STATUS_LINE_INTERVAL_S = 60.0
FPS_WINDOW_S = 10.0
FLUSH_TIMEOUT_S = 10.0
SPOOL_FILE = "spool.sqlite3"
DEFAULT_CONFIG_POLL_S = 30.0
DEFAULT_SNAPSHOT_EVERY_S = 300.0
CONFIGS_PATH = "/api/v1/camera-configs"
CONFIG_CACHE_DIR = "configs"
SNAPSHOT_JPEG_QUALITY = 85
# Fields of a camera config that change what its pipeline sees and where: a change of any of them ends
# the camera's open incidents (their places and zones mean something else afterwards).
VIEW_FIELDS = frozenset({"source", "zones", "exclude", "frame_size", "max_gap_s", "class_map"})
_CAMERA_ID = re.compile(r"[a-z0-9-]{1,64}")


def status_path(camera_id: str) -> str:
    return f"/api/v1/cameras/{camera_id}/status"


def camera_config_path(camera_id: str) -> str:
    return f"/api/v1/cameras/{camera_id}/config"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --------------------------------------------------------------------------- analysers


@dataclass(frozen=True)
class AnalysisItem:
    camera_id: str
    t: float
    image: npt.NDArray[np.uint8]


class Analyser(Protocol):
    model: ModelRef

    def analyse(self, items: Sequence[AnalysisItem]) -> list[Detections]: ...


class ModelAnalyser:
    """The one model instance, run on every camera's ready frame as one batch."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.model = ModelRef(name=detector.name, sha256=detector.sha256)

    def analyse(self, items: Sequence[AnalysisItem]) -> list[Detections]:
        result: list[Detections] = self.detector.predict([item.image for item in items])
        return result


class ReplayAnalyser:
    """Detections from a file (§3.3) instead of the model, keyed by the camera's engine seconds.

    At time ``t`` the detections of the last line with ``line.t <= t`` are in effect (a step
    function: a file lists an empty line where an object goes away). The same file serves every
    camera of the run. For tests and demos without weights; the rest of the path is the real one.
    """

    def __init__(self, path: Path) -> None:
        from detector.model.detections_file import DetectionsFile

        replay = DetectionsFile(path)
        self.times: list[float] = []
        self.detections: list[Detections] = []
        for entry in replay.frames():
            self.times.append(entry.t)
            self.detections.append(entry.detections)
        meta_model = replay.meta.model or {}
        self.model = ModelRef(
            name=str(meta_model.get("name") or "replay"), sha256=str(meta_model.get("sha256") or "")[:64]
        )

    def at(self, t: float) -> Detections:
        index = bisect.bisect_right(self.times, t + 1e-9) - 1
        return self.detections[index] if index >= 0 else Detections.empty()

    def analyse(self, items: Sequence[AnalysisItem]) -> list[Detections]:
        return [self.at(item.t) for item in items]


# --------------------------------------------------------------------------- one camera


@dataclass
class CameraSnapshot:
    """What the health endpoint and the status pushes report about a camera."""

    id: str
    source: str
    status: str
    last_frame_at: str | None
    frames_dropped: int
    frames_analysed: int
    analysis_fps: float
    reconnects: int
    open_incidents: int
    last_error: str | None
    config_version: int | None = None


class CameraRuntime:
    """One camera: its capture thread, queue, watchdog, pipeline and persisted state."""

    def __init__(
        self,
        config: CameraConfig,
        *,
        model: ModelRef,
        state_dir: Path,
        analysis_fps: float,
        saved_state: str | None = None,
        evidence: bool = True,
        opener: Opener | None = None,
        mono_clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        offline_after_s: float = OFFLINE_AFTER_S,
    ) -> None:
        self.config = config
        self.id = config.id
        self.source = config.resolve_source()
        self.uri = redact(self.source)
        self.model = model
        self.state_dir = state_dir
        self.evidence = EvidenceWriter(state_dir) if evidence else None
        self._mono = mono_clock
        self._wall = wall_clock
        self._analysis_fps = analysis_fps
        self._opener = opener
        self.config_version: int | None = None
        """Version of the config in the service (``--config-from``); None for a YAML file."""
        self.last_snapshot: float | None = None
        self.capturing = False
        self.queue = FrameQueue()
        self.capture = self._new_capture()
        self.watchdog = Watchdog(offline_after_s=offline_after_s, clock=mono_clock)
        self.pipeline: CameraPipeline | None = None
        self.epoch: datetime | None = None
        self.size: tuple[int, int] | None = None
        self.last_frame_at: datetime | None = None
        self.last_t: float | None = None
        self.frames_analysed = 0
        self._analysed_at: deque[float] = deque()
        self._saved_state = self._parse_state(saved_state)
        self._closed_ids: set[str] = set()
        self.last_state_save = mono_clock()
        if self._saved_state is not None:
            self.epoch = datetime.fromisoformat(self._saved_state["epoch"])
            last = self._saved_state.get("last_frame_at")
            self.last_frame_at = datetime.fromisoformat(last) if last else None

    def _new_capture(self) -> CaptureThread:
        return CaptureThread(
            self.id,
            self.source,
            self.queue,
            sample_fps=self._analysis_fps,
            opener=self._opener,
            wall_clock=self._wall,
            mono_clock=self._mono,
        )

    def _parse_state(self, text: str | None) -> dict[str, Any] | None:
        if text is None:
            return None
        try:
            state = json.loads(text)
            if state.get("version") != STATE_VERSION or state.get("camera_id") != self.id:
                raise ValueError(f"state version {state.get('version')!r} for camera {state.get('camera_id')!r}")
            datetime.fromisoformat(state["epoch"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            log.error("state.unusable camera=%s error=%r (starting with a fresh engine)", self.id, str(error))
            return None
        return state

    # ---------------------------------------------------------------- time and pipeline

    def _clock(self) -> Callable[[float], datetime]:
        epoch = self.epoch
        assert epoch is not None
        return lambda t: epoch + timedelta(seconds=t)

    def _context(self, width: int, height: int) -> PipelineContext:
        return PipelineContext(
            config=self.config,
            width=width,
            height=height,
            wall_clock=self._clock(),
            model=self.model,
            source_uri=self.uri,
            mode="live",
        )

    def _build(self, width: int, height: int) -> list[AlertRecord]:
        """Pipeline for this frame size, resuming the saved engine where it fits. Returns records
        of incidents that cannot continue (saved for another frame size)."""
        records: list[AlertRecord] = []
        saved, self._saved_state = self._saved_state, None
        if saved is not None:
            old_size = (int(saved["width"]), int(saved["height"]))
            try:
                old_zones = CameraZones(self.config, *old_size)
                engine = IncidentEngine.from_state(old_zones, saved["engine"], wall_clock=self._clock())
            except (ValueError, KeyError, TypeError) as error:
                log.error("state.unusable camera=%s error=%r (starting with a fresh engine)", self.id, str(error))
            else:
                if old_size == (width, height):
                    self.pipeline = CameraPipeline(self._context(width, height), evidence=self.evidence, engine=engine)
                    self.size = old_size
                    self.last_t = engine.last_t
                    log.info(
                        "state.restored camera=%s open_incidents=%d last_t=%s",
                        self.id,
                        len(engine.open_incidents),
                        engine.last_t,
                    )
                    return records
                # The view changed size: old places mean nothing in the new frame; end them.
                old = CameraPipeline(self._context(*old_size), engine=engine)
                records = old.close_all(engine.last_t if engine.last_t is not None else 0.0)
                self.last_t = engine.last_t
                log.warning("state.size_changed camera=%s old=%s new=%s", self.id, old_size, (width, height))
        if self.pipeline is not None and self.size != (width, height):
            last = self.pipeline.engine.last_t
            records += self.pipeline.close_all(last if last is not None else 0.0)
            log.warning("camera.size_changed camera=%s old=%s new=%s", self.id, self.size, (width, height))
        self.pipeline = CameraPipeline(self._context(width, height), evidence=self.evidence)
        if self.last_t is not None:
            # Keep t monotonic across the rebuild.
            self.pipeline.engine.close_all(self.last_t)
        self.size = (width, height)
        return records

    def prepare(self, frame: CapturedFrame) -> tuple[float, list[AlertRecord]]:
        """Engine seconds of this frame (building or restoring the pipeline on the first one)."""
        height, width = frame.image.shape[:2]
        if self.epoch is None:
            self.epoch = frame.captured_at.astimezone(self.config.tz)
        records: list[AlertRecord] = []
        if self.pipeline is None or self.size != (width, height):
            records = self._build(width, height)
        t = (frame.captured_at - self.epoch).total_seconds()
        if self.last_t is not None and t < self.last_t:
            t = self.last_t  # the wall clock stepped back: engine time never does
        return t, records

    def process(self, frame: CapturedFrame, t: float, detections: Detections) -> list[AlertRecord]:
        assert self.pipeline is not None
        image = frame.image if self.evidence is not None else None
        records = self.pipeline.process(frame.index, t, detections, image)
        self.last_t = t
        self.last_frame_at = frame.captured_at
        self.frames_analysed += 1
        now = self._mono()
        self._analysed_at.append(now)
        while self._analysed_at and now - self._analysed_at[0] > FPS_WINDOW_S:
            self._analysed_at.popleft()
        self._forget_closed(records)
        return records

    def expire_gap(self) -> list[AlertRecord]:
        """No frame for longer than ``max_gap_s``: end the open incidents at their last sighting now
        rather than when the camera comes back (nothing fires from the gap)."""
        if self.pipeline is None and self._saved_state is not None and self.last_frame_at is not None:
            # Restored from a previous run and the camera has not come back: the saved incidents
            # still end by the gap rule.
            if (self._wall() - self.last_frame_at).total_seconds() <= self.config.max_gap_s:
                return []
            records = self._build(int(self._saved_state["width"]), int(self._saved_state["height"]))
        else:
            records = []
        if self.pipeline is None or self.last_frame_at is None or self.epoch is None:
            return records
        if not self.pipeline.engine.open_incidents:
            return records
        silent = (self._wall() - self.last_frame_at).total_seconds()
        if silent <= self.config.max_gap_s:
            return records
        t_now = max((self._wall() - self.epoch).total_seconds(), self.last_t or 0.0)
        records += self.pipeline.close_all(t_now)
        self.last_t = t_now
        log.info("camera.gap_closed camera=%s silent_s=%.1f closed=%d", self.id, silent, len(records))
        self._forget_closed(records)
        return records

    def reconfigure(self, config: CameraConfig, *, version: int | None = None) -> list[AlertRecord]:
        """Switch to a new version of this camera's config without a restart.

        When the view changed (``VIEW_FIELDS``) the open incidents are closed at the change time (the
        records returned) and the pipeline is rebuilt with the new zones; otherwise the incidents go on
        and only geolocation, grid and name follow the new config. A new source restarts the capture.
        """
        old = self.config
        if config.id != self.id:
            raise ValueError(f"config of camera {config.id!r} given to camera {self.id!r}")
        view_changed = old.model_dump(mode="json", include=set(VIEW_FIELDS)) != config.model_dump(
            mode="json", include=set(VIEW_FIELDS)
        )
        # What can refuse the config (ConfigError) is built first: a refused config changes nothing.
        size = self.size
        if size is None and self._saved_state is not None:
            size = (int(self._saved_state["width"]), int(self._saved_state["height"]))
        geolocator = Geolocator.from_config(config, *(size or (None, None)))
        if size is not None:
            CameraZones(config, *size)
        config.grid_index()
        records: list[AlertRecord] = []
        if view_changed and self.pipeline is None and self._saved_state is not None:
            # Restored from a previous run, no frame yet: the saved incidents belong to the old view.
            records += self._build(int(self._saved_state["width"]), int(self._saved_state["height"]))
        if self.pipeline is not None and self.size is not None:
            if view_changed:
                t_change = self.last_t or 0.0
                if self.epoch is not None:
                    t_change = max((self._wall() - self.epoch).total_seconds(), t_change)
                records += self.pipeline.close_all(t_change)
                self.last_t = t_change
                self.config = config
                self.pipeline = CameraPipeline(self._context(*self.size), evidence=self.evidence)
                self.pipeline.engine.close_all(t_change)  # engine time goes on from the change
            else:
                # Same view: the engine, tracker and evidence go on; locate and name with the new config.
                self.pipeline.context = replace(self.pipeline.context, config=config)
                self.pipeline.geolocator = geolocator
                self.pipeline.grid_index = config.grid_index()
        self.config = config
        self.config_version = version
        if config.resolve_source() != self.source:
            self._restart_capture()
        if records:
            self._forget_closed(records)
        return records

    def start_capture(self) -> None:
        self.capturing = True
        self.capture.start()

    def _restart_capture(self) -> None:
        on_put = self.queue.on_put
        self.capture.stop()
        self.source = self.config.resolve_source()
        self.uri = redact(self.source)
        self.queue = FrameQueue()
        self.queue.on_put = on_put
        self.capture = self._new_capture()
        if self.capturing:
            self.capture.start()

    def _forget_closed(self, records: list[AlertRecord]) -> None:
        # A long-running camera must not keep every incident it ever saw: once closed and its clip
        # is written, an incident's record and evidence list are dropped from the pipeline.
        assert self.pipeline is not None
        self._closed_ids.update(str(r.id) for r in records if r.event == "violation.closed")
        if not self._closed_ids:
            return
        open_clips = set(self.evidence.open_clips) if self.evidence is not None else set()
        for alert_id in [a for a in self._closed_ids if a not in open_clips]:
            self.pipeline.forget(alert_id)
            self._closed_ids.discard(alert_id)
        if self.evidence is not None and not open_clips:
            self.evidence.finish_all()  # nothing open: only drains the finished-clip list

    # ---------------------------------------------------------------- watchdog and status

    def watch(self) -> Transition | None:
        grabbed = self.capture.stats.last_grab_mono
        if grabbed is not None and (self.watchdog.last_frame is None or grabbed > self.watchdog.last_frame):
            return self.watchdog.frame(grabbed)
        return self.watchdog.check()

    def analysis_fps(self) -> float:
        if len(self._analysed_at) < 2:
            return 0.0
        span = self._analysed_at[-1] - self._analysed_at[0]
        return round((len(self._analysed_at) - 1) / span, 2) if span > 0 else 0.0

    def status_body(self) -> dict[str, Any]:
        status = "online" if self.watchdog.status == "online" else "offline"
        return {
            "status": status,
            "last_frame_at": _iso(self.last_frame_at),
            "frames_dropped": self.queue.dropped,
            "analysis_fps": self.analysis_fps() if status == "online" else 0.0,
        }

    def snapshot(self) -> CameraSnapshot:
        engine = self.pipeline.engine if self.pipeline is not None else None
        return CameraSnapshot(
            id=self.id,
            source=self.uri,
            status=self.watchdog.status,
            last_frame_at=_iso(self.last_frame_at),
            frames_dropped=self.queue.dropped,
            frames_analysed=self.frames_analysed,
            analysis_fps=self.analysis_fps(),
            reconnects=self.capture.stats.reconnects,
            open_incidents=sum(1 for i in engine.open_incidents if i.fired) if engine is not None else 0,
            last_error=self.capture.stats.last_error,
            config_version=self.config_version,
        )

    def state_json(self) -> str | None:
        if self.pipeline is None or self.epoch is None or self.size is None:
            return None
        return json.dumps(
            {
                "version": STATE_VERSION,
                "camera_id": self.id,
                "epoch": self.epoch.isoformat(),
                "width": self.size[0],
                "height": self.size[1],
                "last_frame_at": _iso(self.last_frame_at),
                "engine": self.pipeline.engine.state(),
            },
            separators=(",", ":"),
        )

    def close(self) -> None:
        if self.evidence is not None:
            self.evidence.finish_all()


# --------------------------------------------------------------------------- configs from the service


@dataclass(frozen=True)
class RemoteConfig:
    """One version of a camera's config, fetched from the service and validated here."""

    camera_id: str
    version: int
    config: CameraConfig


def config_from_service(data: Any, origin: str) -> CameraConfig:
    """A config fetched from the service, checked as ``load_camera_config`` checks a YAML file; every
    problem is a ConfigError naming ``origin`` and the field path."""
    if not isinstance(data, dict):
        raise ConfigError("not a camera config (expected a JSON object of fields)", file=origin)
    try:
        config = CameraConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first.get("loc", ())) + tuple((first.get("ctx") or {}).get("sub_loc", ()))
        raise ConfigError(str(first.get("msg", "invalid value")), file=origin, field=format_loc(loc) or None) from None
    try:
        if config.calibration is not None:
            Geolocator.from_config(config)  # what the service cannot check without OpenCV
        config.grid_index()
    except ConfigError as error:
        raise ConfigError(error.reason, file=origin, field=error.field) from None
    source = config.resolve_source()
    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise ConfigError(f"source file {source!r} not found", file=origin, field="source")
    return config


class ConfigFeed:
    """The camera configs of this runner in the service (``--config-from``), polled in a thread.

    ``poll`` reads ``GET /api/v1/camera-configs`` and fetches each of its cameras (all listed, or only
    ``camera_ids``) whose version it has not seen; a valid one waits for ``take`` (the analysis loop)
    and is cached under ``cache_dir``, an invalid one is logged once and skipped. While the service is
    unreachable the polls back off (1, 2, 4 … s up to the poll interval) and say so once.
    """

    def __init__(
        self,
        client: ServiceClient,
        *,
        cache_dir: Path,
        camera_ids: Sequence[str] = (),
        poll_s: float = DEFAULT_CONFIG_POLL_S,
    ) -> None:
        self.client = client
        self.cache_dir = cache_dir
        self.camera_ids = list(dict.fromkeys(camera_ids))
        self.poll_s = poll_s
        self.versions: dict[str, int] = {}
        """Newest version seen of each camera (applied or refused): not fetched again."""
        self.failures = 0
        self._missing: set[str] = set()
        self._updates: dict[str, RemoteConfig] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.client.url(CONFIGS_PATH)

    def retry_in_s(self) -> float:
        """The next poll: the interval, or the backoff after failures."""
        if not self.failures:
            return self.poll_s
        return float(min(2.0 ** (self.failures - 1), max(self.poll_s, 1.0), 60.0))

    def poll(self) -> bool:
        """One round; True when the service answered the list."""
        listing = self.client.get_json(CONFIGS_PATH)
        items = listing.data.get("items") if listing.ok and isinstance(listing.data, dict) else None
        if not isinstance(items, list):
            self._failed(listing.status, listing.problem or "the answer has no items list")
            return False
        listed = {
            str(item["camera_id"]): int(item["version"])
            for item in items
            if isinstance(item, dict)
            and isinstance(item.get("camera_id"), str)
            and isinstance(item.get("version"), int)
        }
        if self.failures:
            log.info("config.reachable url=%s cameras=%d", self.url, len(listed))
        self.failures = 0
        for camera_id in self.camera_ids or sorted(listed):
            version = listed.get(camera_id)
            if version is None:
                if camera_id not in self._missing:
                    self._missing.add(camera_id)
                    log.warning("config.missing camera=%s (the service has no config for it yet; waiting)", camera_id)
                continue
            self._missing.discard(camera_id)
            if self.versions.get(camera_id) != version:
                self._fetch(camera_id)
        return True

    def _failed(self, status: int | None, problem: str) -> None:
        self.failures += 1
        if status in (401, 403):
            log.error(
                "config.auth_failed url=%s status=%s problem=%r (check --token: reading configs takes a camera, "
                "operator, supervisor or admin token)",
                self.url,
                status,
                problem,
            )
        elif self.failures == 1:
            log.warning(
                "config.unreachable url=%s problem=%r (retrying with backoff; running cameras keep their configs)",
                self.url,
                problem,
            )

    def _fetch(self, camera_id: str) -> None:
        origin = self.client.url(camera_config_path(camera_id))
        fetched = self.client.get_json(camera_config_path(camera_id))
        if not fetched.ok:
            log.warning("config.fetch_failed camera=%s problem=%r (tried again next poll)", camera_id, fetched.problem)
            return
        body = fetched.data
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(version, int):
            log.error("config.invalid camera=%s error=%r", camera_id, f"{origin}: not a camera config answer")
            return
        self.versions[camera_id] = version
        try:
            config = config_from_service(body.get("config"), f"{origin}?version={version}")
            if config.id != camera_id:
                raise ConfigError(f"config of camera {config.id!r}", file=origin, field="id")
        except ConfigError as error:
            log.error(
                "config.invalid camera=%s version=%d error=%r (the camera keeps its previous config)",
                camera_id,
                version,
                str(error),
            )
            return
        self._cache(camera_id, version, body["config"])
        with self._lock:
            self._updates[camera_id] = RemoteConfig(camera_id, version, config)

    def _cache(self, camera_id: str, version: int, config: dict[str, Any]) -> None:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            path = self.cache_dir / f"{camera_id}.json"
            part = path.with_name(path.name + ".part")
            part.write_text(json.dumps({"camera_id": camera_id, "version": version, "config": config}), "utf-8")
            os.replace(part, path)
        except OSError as error:
            log.warning("config.cache_failed camera=%s error=%r", camera_id, str(error))

    def cached(self) -> list[RemoteConfig]:
        """The last config fetched of each camera (``cache_dir``), for a start without the service."""
        found = []
        for path in sorted(self.cache_dir.glob("*.json")) if self.cache_dir.is_dir() else []:
            try:
                entry = json.loads(path.read_text("utf-8"))
                camera_id, version = str(entry["camera_id"]), int(entry["version"])
                config = config_from_service(entry["config"], str(path))
            except (OSError, ValueError, KeyError, TypeError, ConfigError) as error:
                log.warning("config.cache_unusable file=%s error=%r", path, str(error))
                continue
            if config.id == camera_id and (not self.camera_ids or camera_id in self.camera_ids):
                found.append(RemoteConfig(camera_id, version, config))
        return found

    def take(self) -> list[RemoteConfig]:
        """New versions since the last call (the newest of each camera)."""
        with self._lock:
            updates, self._updates = list(self._updates.values()), {}
        return updates

    def first(self, stop: threading.Event, *, wait: bool) -> list[RemoteConfig]:
        """The configs to start with. The service first; when it does not answer, the cached configs;
        without those and with ``wait``, poll with backoff until it answers (or ``stop``)."""
        attempt = 0
        while not stop.is_set():
            attempt += 1
            if self.poll():
                return self.take()
            if attempt == 1:
                cached = self.cached()
                for entry in cached:
                    self.versions[entry.camera_id] = entry.version
                    log.warning(
                        "config.cached camera=%s version=%d (the service does not answer: running the last config "
                        "fetched; newer versions are picked up once it does)",
                        entry.camera_id,
                        entry.version,
                    )
                if cached or not wait:
                    return cached
            delay = self.retry_in_s()
            log.warning(
                "config.waiting url=%s attempt=%d retry_in_s=%g (no camera to run until the service answers)",
                self.url,
                attempt,
                delay,
            )
            stop.wait(delay)
        return []

    def start(self, stop: threading.Event) -> None:
        def run() -> None:
            while not stop.wait(self.retry_in_s()):
                try:
                    self.poll()
                except Exception:  # a bug in one poll must not end config updates for the whole run
                    log.exception("config.poll_error")

        self._thread = threading.Thread(target=run, name="config-feed", daemon=True)
        self._thread.start()


def encode_snapshot(image: npt.NDArray[np.uint8]) -> bytes | None:
    """The clean frame as JPEG (what the setup page draws zones on)."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_JPEG_QUALITY])
    return encoded.tobytes() if ok else None


# --------------------------------------------------------------------------- the runner


_UPLOADED_MEMORY = 4096


def record_outgoing(record: AlertRecord) -> Outgoing:
    return Outgoing(kind="alert", key=f"{record.id}:{record.event}", path=ALERTS_PATH, body=record.model_dump_json())


def evidence_outgoing(record: AlertRecord, state_dir: Path) -> list[Outgoing]:
    """Uploads of the record's evidence files (``PUT /api/v1/evidence/<sha256>``), queued ahead of it."""
    uploads = []
    for item in record.evidence:
        if "://" in item.path:
            continue
        file = (state_dir / item.path).resolve()
        body = json.dumps({"file": str(file), "content_type": evidence_content_type(file)})
        uploads.append(
            Outgoing(kind="evidence", key=f"evidence:{item.sha256}", path=evidence_upload_path(item.sha256), body=body)
        )
    return uploads


def status_outgoing(camera: CameraRuntime) -> Outgoing:
    body = json.dumps(camera.status_body(), separators=(",", ":"))
    return Outgoing(kind="status", key=f"status:{camera.id}", path=status_path(camera.id), body=body)


class LiveRunner:
    """The analysis loop over all cameras; ``step`` is one pass (the tests drive it directly)."""

    def __init__(
        self,
        cameras: Sequence[CameraRuntime],
        analyser: Analyser,
        spool: Spool,
        *,
        state_dir: Path,
        sender: SpoolSender | None = None,
        analysis_fps: float = DEFAULT_ANALYSIS_FPS,
        mono_clock: Callable[[], float] = time.monotonic,
        status_interval_s: float = STATUS_INTERVAL_S,
        state_save_interval_s: float = STATE_SAVE_INTERVAL_S,
        config_feed: ConfigFeed | None = None,
        new_camera: Callable[[RemoteConfig], CameraRuntime] | None = None,
        class_map: str | None = None,
        snapshots: SnapshotUploader | None = None,
        snapshot_every_s: float = DEFAULT_SNAPSHOT_EVERY_S,
    ) -> None:
        """``config_feed``: new config versions from the service, applied in ``step``; ``new_camera``
        builds the runtime of a camera that appears there. ``class_map``: when set (a model runs),
        the canonical JSON of the class_map the model was loaded with; a config with another is
        refused. ``snapshots``: where each camera's clean frame goes every ``snapshot_every_s``."""
        self.cameras = list(cameras)
        self.config_feed = config_feed
        self.new_camera = new_camera
        self.class_map = class_map
        self.snapshots = snapshots
        self.snapshot_every_s = snapshot_every_s
        self.file_cameras = {camera.id for camera in self.cameras if camera.config_version is None}
        self._capturing = False
        self.analyser = analyser
        self.spool = spool
        self.sender = sender
        self.analysis_fps = analysis_fps
        self._mono = mono_clock
        self.status_interval_s = status_interval_s
        self.state_save_interval_s = state_save_interval_s
        self.frames_ready = threading.Event()
        for camera in self.cameras:
            camera.queue.on_put = self.frames_ready.set
        self._last_status = {camera.id: -float("inf") for camera in self.cameras}
        self._last_status_line = mono_clock()
        self.records_emitted = 0
        self.state_dir = state_dir
        # Evidence already queued: the closed record repeats the opened one's files.
        self._uploaded: OrderedDict[str, None] = OrderedDict()
        self._health: dict[str, Any] = {}
        self._health_lock = threading.Lock()

    def start_capture(self) -> None:
        self._capturing = True
        for camera in self.cameras:
            camera.start_capture()

    def add_camera(self, camera: CameraRuntime) -> None:
        camera.queue.on_put = self.frames_ready.set
        self._last_status[camera.id] = -float("inf")
        self.cameras.append(camera)
        if self._capturing:
            camera.start_capture()

    def apply_configs(self, states: dict[str, str]) -> list[AlertRecord]:
        """New config versions from the service: start new cameras, reconfigure changed ones."""
        if self.config_feed is None:
            return []
        records: list[AlertRecord] = []
        by_id = {camera.id: camera for camera in self.cameras}
        for update in self.config_feed.take():
            camera = by_id.get(update.camera_id)
            if update.camera_id in self.file_cameras:
                log.error(
                    "config.ignored camera=%s version=%d (this camera runs from its --camera file, which wins)",
                    update.camera_id,
                    update.version,
                )
                continue
            if self.class_map is not None and json.dumps(update.config.class_map, sort_keys=True) != self.class_map:
                log.error(
                    "config.refused camera=%s version=%d (its class_map differs from the one the model of this run "
                    "was loaded with; restart the runner to change it)",
                    update.camera_id,
                    update.version,
                )
                continue
            if camera is None:
                if self.new_camera is None:
                    continue
                camera = self.new_camera(update)
                self.add_camera(camera)
                log.info("config.applied camera=%s version=%d (new camera)", camera.id, update.version)
                continue
            before = camera.config_version
            try:
                closed = camera.reconfigure(update.config, version=update.version)
            except (ConfigError, ValueError) as error:
                log.error(
                    "config.invalid camera=%s version=%d error=%r (the camera keeps version %s)",
                    camera.id,
                    update.version,
                    str(error),
                    before,
                )
                continue
            records += closed
            if closed:
                self._save_state(camera, states)
            log.info(
                "config.applied camera=%s version=%d previous=%s closed_incidents=%d",
                camera.id,
                update.version,
                before,
                len(closed),
            )
        return records

    def _snapshot(self, camera: CameraRuntime, frame: CapturedFrame, now: float) -> None:
        if self.snapshots is None or self.snapshot_every_s <= 0:
            return
        if camera.last_snapshot is not None and now - camera.last_snapshot < self.snapshot_every_s:
            return
        camera.last_snapshot = now
        jpeg = encode_snapshot(frame.image)
        if jpeg is None:
            log.warning("snapshot.encode_failed camera=%s", camera.id)
            return
        self.snapshots.offer(camera.id, jpeg, frame.captured_at)

    def step(self) -> list[AlertRecord]:
        """Analyse every camera's newest frame (one batch), run the watchdogs, persist and queue."""
        now = self._mono()
        outgoing: list[Outgoing] = []
        states: dict[str, str] = {}
        emitted: list[AlertRecord] = self.apply_configs(states)
        ready: list[tuple[CameraRuntime, CapturedFrame, float]] = []
        for camera in self.cameras:
            frame = camera.queue.take_latest()
            if frame is None:
                continue
            t, records = camera.prepare(frame)
            emitted += records
            ready.append((camera, frame, t))
        if ready:
            batch = [AnalysisItem(camera.id, t, frame.image) for camera, frame, t in ready]
            for (camera, frame, t), detections in zip(ready, self.analyser.analyse(batch), strict=True):
                records = camera.process(frame, t, detections)
                emitted += records
                if records:
                    self._save_state(camera, states)
                self._snapshot(camera, frame, now)
        fresh = {camera.id for camera, _, _ in ready}
        for camera in self.cameras:
            if camera.id not in fresh:
                records = camera.expire_gap()
                if records:
                    emitted += records
                    self._save_state(camera, states)
            if now - camera.last_state_save >= self.state_save_interval_s:
                self._save_state(camera, states)
        for record in emitted:
            for upload in evidence_outgoing(record, self.state_dir):
                if upload.key not in self._uploaded:
                    outgoing.append(upload)
                    self._uploaded[upload.key] = None
                    if len(self._uploaded) > _UPLOADED_MEMORY:
                        self._uploaded.popitem(last=False)
            outgoing.append(record_outgoing(record))
            log.info(
                "alert.%s camera=%s id=%s category=%s zone=%s at=%s",
                record.event.removeprefix("violation."),
                record.camera_id,
                record.id,
                record.category,
                record.zone,
                (record.ended_at or record.alerted_at).isoformat(),
            )
        for camera in self.cameras:
            transition = camera.watch()
            if transition is not None:
                self._log_transition(camera, transition)
            if camera.watchdog.status != "starting" and (
                transition is not None or now - self._last_status[camera.id] >= self.status_interval_s
            ):
                outgoing.append(status_outgoing(camera))
                self._last_status[camera.id] = now
        if outgoing or states:
            self.spool.put(outgoing, states=states)
            if self.sender is not None:
                self.sender.notify()
        self.records_emitted += len(emitted)
        self._update_health()
        if now - self._last_status_line >= STATUS_LINE_INTERVAL_S:
            self._last_status_line = now
            self._status_line()
        return emitted

    def _save_state(self, camera: CameraRuntime, states: dict[str, str]) -> None:
        state = camera.state_json()
        if state is not None:
            states[camera.id] = state
        camera.last_state_save = self._mono()

    def _log_transition(self, camera: CameraRuntime, transition: Transition) -> None:
        if transition.status == "online":
            log.info("camera.online camera=%s source=%s", camera.id, camera.uri)
        else:
            log.warning(
                "camera.offline camera=%s source=%s silent_s=%.1f error=%r",
                camera.id,
                camera.uri,
                camera.watchdog.silent_for(),
                camera.capture.stats.last_error,
            )

    def _update_health(self) -> None:
        snapshot = {
            "cameras": [camera.snapshot().__dict__ for camera in self.cameras],
            "spool": {
                "pending": self.spool.pending(),
                "dead": self.spool.dead(),
                "delivered": self.sender.delivered if self.sender is not None else 0,
                "last_error": self.sender.last_error if self.sender is not None else None,
            },
            "records_emitted": self.records_emitted,
        }
        with self._health_lock:
            self._health = snapshot

    def health(self) -> dict[str, Any]:
        with self._health_lock:
            return dict(self._health)

    def _status_line(self) -> None:
        health = self.health()
        cameras = " ".join(
            f"{c['id']}={c['status']}/{c['analysis_fps']}fps/dropped={c['frames_dropped']}"
            for c in health.get("cameras", [])
        )
        spool = health.get("spool", {})
        log.info("live.status %s spool_pending=%s spool_dead=%s", cameras, spool.get("pending"), spool.get("dead"))

    def loop(self, stop: threading.Event) -> None:
        """Until ``stop``: wake when a frame is ready (or twice a second for the watchdogs), gather
        the frames of cameras that arrive together, analyse them as one batch."""
        batch_window_s = min(0.05, 0.25 / self.analysis_fps)
        while not stop.is_set():
            if self.frames_ready.wait(0.5):
                self.frames_ready.clear()
                if stop.wait(batch_window_s):
                    break
            self.step()

    def shutdown(self, flush_timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Stop capture, save states and final statuses, try to deliver what is queued."""
        for camera in self.cameras:
            camera.capture.stop()
        for camera in self.cameras:
            if not camera.capture.join(2.0):
                log.warning("capture.stuck camera=%s (abandoned inside a blocking open or read)", camera.id)
        states: dict[str, str] = {}
        outgoing: list[Outgoing] = []
        for camera in self.cameras:
            self._save_state(camera, states)
            if camera.watchdog.status == "online":
                camera.watchdog.status = "offline"  # no longer watched by this process
                outgoing.append(status_outgoing(camera))
            camera.close()
        self.spool.put(outgoing, states=states)
        if self.sender is not None:
            if not self.sender.flush(flush_timeout_s):
                log.warning("spool.kept pending=%d (delivered on the next start)", self.spool.pending())
            self.sender.stop()
        log.info("live.stopped pending=%d", self.spool.pending())


# --------------------------------------------------------------------------- health endpoint


def start_health_server(runner: LiveRunner, host: str, port: int) -> Any:
    """``GET /healthz`` (and ``/``): JSON with every camera's status and the spool's backlog."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/", "/healthz"):
                self.send_error(404)
                return
            health = runner.health()
            online = all(c["status"] == "online" for c in health.get("cameras", []))
            body = json.dumps({"ok": online, **health}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # polled often; not worth a log line each

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as error:
        raise InputError(f"--health-port {port}: cannot listen on {host}:{port} ({error.strerror})") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health.listening url=http://%s:%d/healthz", host, server.server_address[1])
    return server


# --------------------------------------------------------------------------- entry point


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

        def build(config: CameraConfig, version: int | None) -> CameraRuntime:
            camera = CameraRuntime(
                config,
                model=analyser.model,
                state_dir=request.state_dir,
                analysis_fps=request.analysis_fps,
                saved_state=spool.load_state(config.id),
                evidence=request.evidence,
                offline_after_s=request.offline_after_s,
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
