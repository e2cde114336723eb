"""``streetwatch run``: live cameras analysed continuously, alerts and camera status pushed to the service.

Threads: one capture thread per camera (``detector.capture``), one analysis loop (the caller's
thread: it owns the pipelines, so they need no locks), one spool sender (``detector.spool``), and
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
"""

from __future__ import annotations

import bisect
import json
import logging
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

import numpy as np
import numpy.typing as npt

from detector.capture import CapturedFrame, CaptureThread, FrameQueue, Opener, redact
from detector.evidence import EvidenceWriter
from detector.incidents import IncidentEngine
from detector.live_watchdog import OFFLINE_AFTER_S, Transition, Watchdog
from detector.pipeline import CameraPipeline, PipelineContext
from detector.push import ALERTS_PATH, ServiceClient, evidence_content_type, evidence_upload_path, service_base
from detector.spool import Outgoing, Spool, SpoolSender
from zones.alert import AlertRecord, ModelRef
from zones.config import CameraConfig, load_camera_config
from zones.detections import Detections
from zones.errors import InputError
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


def status_path(camera_id: str) -> str:
    return f"/api/v1/cameras/{camera_id}/status"


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
        from detector.detections_file import DetectionsFile

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
        self.queue = FrameQueue()
        self.capture = CaptureThread(
            config.id,
            self.source,
            self.queue,
            sample_fps=analysis_fps,
            opener=opener,
            wall_clock=wall_clock,
            mono_clock=mono_clock,
        )
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
    ) -> None:
        self.cameras = list(cameras)
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
        for camera in self.cameras:
            camera.capture.start()

    def step(self) -> list[AlertRecord]:
        """Analyse every camera's newest frame (one batch), run the watchdogs, persist and queue."""
        now = self._mono()
        outgoing: list[Outgoing] = []
        states: dict[str, str] = {}
        emitted: list[AlertRecord] = []
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


def _load_configs(paths: Sequence[Path]) -> list[CameraConfig]:
    if not paths:
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
    from detector.model import load_detector

    maps = {json.dumps(c.class_map, sort_keys=True) for c in configs}
    if len(maps) > 1:
        raise InputError("the cameras of one run share one model, so their class_map entries must be the same")
    return ModelAnalyser(load_detector(request.model, class_map=configs[0].class_map))


def run_live(request: LiveRequest, *, stop: threading.Event | None = None) -> int:
    """Runs until SIGTERM/SIGINT (or ``stop``); returns the exit code."""
    configure_logging()
    base = service_base(request.push)
    if not 0.05 <= request.analysis_fps <= 30:
        raise InputError(f"--analysis-fps {request.analysis_fps} must lie within 0.05..30")
    configs = _load_configs(request.cameras)
    analyser = _analyser(request, configs)
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own log lines say it
    except (ImportError, AttributeError):
        pass
    lock = _lock_state_dir(request.state_dir)
    spool = Spool(request.state_dir / SPOOL_FILE)
    client = ServiceClient(base, request.token)
    sender = SpoolSender(spool, client)
    cameras = [
        CameraRuntime(
            config,
            model=analyser.model,
            state_dir=request.state_dir,
            analysis_fps=request.analysis_fps,
            saved_state=spool.load_state(config.id),
            evidence=request.evidence,
            offline_after_s=request.offline_after_s,
        )
        for config in configs
    ]
    runner = LiveRunner(
        cameras,
        analyser,
        spool,
        state_dir=request.state_dir,
        sender=sender,
        analysis_fps=request.analysis_fps,
        status_interval_s=request.status_interval_s,
    )
    stop = stop or threading.Event()
    health = start_health_server(runner, request.health_host, request.health_port) if request.health_port else None
    previous = _install_signal_handlers(stop)
    log.info(
        "live.started cameras=%s push=%s model=%s analysis_fps=%g state_dir=%s pending=%d",
        ",".join(c.id for c in cameras),
        base,
        analyser.model.name,
        request.analysis_fps,
        request.state_dir,
        spool.pending(),
    )
    try:
        sender.start()
        runner.start_capture()
        runner.loop(stop)
    finally:
        runner.shutdown()
        if health is not None:
            health.shutdown()
        client.close()
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
