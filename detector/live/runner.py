"""The analysis loop of ``streetwatch run`` (``LiveRunner``): every camera's newest frame analysed as one batch,
new config versions applied, records, states and camera status queued on the spool.

Threads: one capture thread per camera (``detector.video.capture``), one analysis loop (the caller's
thread: it owns the pipelines, so they need no locks), one spool sender (``detector.live.spool``), the
config poller (``detector.live.configs``), the snapshot uploader (``detector.live.snapshots``) and
optionally the health endpoint (``detector.live.status``). One model instance serves all cameras
(``detector.live.analysers``); each camera is a ``detector.live.camera.CameraRuntime``.

Durability: a batch of alert records and the engine states that produced them are written to the
spool in one transaction before anything is sent; states are also saved every few seconds and at
shutdown.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from detector.live.analysers import Analyser, AnalysisItem
from detector.live.camera import CameraRuntime
from detector.live.configs import ConfigFeed, RemoteConfig
from detector.live.push import ALERTS_PATH, evidence_content_type, evidence_upload_path
from detector.live.snapshots import DEFAULT_SNAPSHOT_EVERY_S, SnapshotUploader, encode_snapshot
from detector.live.spool import Outgoing, Spool, SpoolSender
from detector.live.status import STATUS_INTERVAL_S, STATUS_LINE_INTERVAL_S, status_outgoing
from detector.video.capture import CapturedFrame
from detector.video.watchdog import Transition
from zones.alert import AlertRecord
from zones.errors import ConfigError

log = logging.getLogger("streetwatch.live")

# Violations need minutes of dwell (DESIGN §3.4a defaults: 180-600 s) and survive 30 s unseen, so a look every
# 2 s is ample (the audit looks every 4 s and reports the sample clips' truth exactly). It is also the key-frame
# interval of a typical IP camera (GOP 50 at 25 fps), so the capture decodes key frames only: a 1080p camera then
# costs 0.023 core instead of the 0.11-0.14 that decoding every frame needs (bench/live_capacity.py), and one 2-core
# machine sustains 8 such cameras with margin, 16 at the edge of a 2 s alert latency p95 (bench/RESULTS.md).
DEFAULT_ANALYSIS_FPS = 0.5
STATE_SAVE_INTERVAL_S = 10.0
FLUSH_TIMEOUT_S = 10.0


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
        refused. ``snapshots``: where each camera's clean frame goes every ``snapshot_every_s`` and when its
        view check's status changes."""
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

    def _snapshot(self, camera: CameraRuntime, frame: CapturedFrame, now: float, *, view: str | None = None) -> None:
        """The camera's clean frame to the service: at its first frame, every ``snapshot_every_s``, and at
        once when the view check's status changed on this frame (``view``: the new status). After a move
        the operator re-draws the zones on the setup page over this snapshot; waiting up to
        ``snapshot_every_s`` would leave the old view there. A forced upload restarts the periodic wait:
        the service already has the newest frame."""
        if self.snapshots is None or self.snapshot_every_s <= 0:
            return
        due = camera.last_snapshot is None or now - camera.last_snapshot >= self.snapshot_every_s
        if not due and view is None:
            return
        camera.last_snapshot = now
        jpeg = encode_snapshot(frame.image)
        if jpeg is None:
            log.warning("snapshot.encode_failed camera=%s", camera.id)
            return
        if view is not None:
            log.info("snapshot.view_changed camera=%s status=%s (the setup page gets this view now)", camera.id, view)
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
            infer = [camera.needs_inference(frame, t) for camera, frame, t in ready]
            asked = [(camera, frame, t) for (camera, frame, t), i in zip(ready, infer, strict=True) if i]
            batch = [AnalysisItem(camera.id, t, frame.image) for camera, frame, t in asked]
            found = iter(self.analyser.analyse(batch) if batch else [])
            for (camera, frame, t), inferred in zip(ready, infer, strict=True):
                detections = camera.detections_for(next(found) if inferred else None)
                # The view check's own transitions (with its hysteresis), not the health's: an outage of the
                # stream changes no view, and a new config version starts a new check at online.
                before = camera.view.status if camera.view is not None else None
                view = camera.check_view(frame, t)
                records = camera.process(frame, t, detections)
                emitted += records
                if records:
                    self._save_state(camera, states)
                self._snapshot(camera, frame, now, view=view if before is not None and view != before else None)
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
            health = camera.health()
            changed = health != camera.reported_health
            if changed and camera.view is not None and "offline" not in (health, camera.reported_health):
                self._log_view(camera, health)
            camera.reported_health = health
            if camera.watchdog.status != "starting" and (
                changed or now - self._last_status[camera.id] >= self.status_interval_s
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

    def _save_state(self, camera: CameraRuntime, states: dict[str, str], *, final: bool = False) -> None:
        state = camera.state_json()
        if state is not None:
            states[camera.id] = state
        camera.last_state_save = self._mono()
        camera.save_background(camera.last_state_save, force=final)

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

    def _log_view(self, camera: CameraRuntime, health: str) -> None:
        reading = camera.view.last if camera.view is not None else None
        figures = ""
        if reading is not None:
            shift = "-" if reading.shift is None else f"{reading.shift:.3f}"
            turn = "-" if reading.rotation_deg is None else f"{reading.rotation_deg:.1f}"
            figures = (
                f" shift={shift} rotation_deg={turn} inliers={reading.inliers} covered={reading.covered:.2f} "
                f"focus={reading.focus:.2f}"
            )
        level = logging.INFO if health == "online" else logging.WARNING
        log.log(level, "camera.view camera=%s status=%s%s", camera.id, health, figures)

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
            self._save_state(camera, states, final=True)
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
