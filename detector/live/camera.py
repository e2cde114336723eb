"""One live camera (``CameraRuntime``): its capture thread, frame queue, watchdog, pipeline and saved state.

Time: each frame carries the wall-clock time at capture. A camera's engine seconds ``t`` count
from its epoch (the capture time of its first frame ever, kept across restarts with the engine
state), so ``wall_clock(t) = epoch + t`` and ``t`` never goes backwards for a camera (a clock step
back is clamped).

Restarts: each camera resumes its engine from the state saved in the spool, so an incident that was
reported is not reported again; if the camera was away for longer than ``max_gap_s``, the first frame
ends the old incidents at their last sighting (DESIGN §3.4a). An outage longer than ``max_gap_s``
while running does the same without waiting for the camera to come back (``expire_gap``).

Where a zone opts in to ``sidewalk_obstruction``, the stationary-object finder's long-term background (the
street as it learnt it over the last hour) is kept in ``<state dir>/finder/<camera>-<w>x<h>.png`` at most
every ``BACKGROUND_SAVE_INTERVAL_S`` and at shutdown; the next run starts from it, so what was put down
before a restart is still found (a finder started afresh would take it for the street).

New config versions (``reconfigure``): when the view changed (``VIEW_FIELDS``) the open incidents are
closed at the change time and the pipeline is rebuilt with the new zones; any other change keeps the
open incidents and only changes where and to whom later records go.

Camera health (``health``): ``offline`` from the watchdog, else what the view check
(``detector/video/view_check.py``) says: ``online``, ``view_moved``, ``obstructed`` or ``blurred``. The view's
reference is learnt from the first analysed frames and kept in ``<state dir>/view/<camera>-<w>x<h>.png``, so a
restart compares with the same view; a new config version that changes the view (the operator re-drew the
zones after a move), or any version saved while the view has moved, deletes it, and the new view becomes
the reference. Incidents that open while the view is not sound carry ``camera_health`` on their records.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detector.evidence.writer import EvidenceWriter, write_atomic
from detector.incidents.engine import IncidentEngine
from detector.incidents.pipeline import CameraPipeline, PipelineContext
from detector.live.status import CameraSnapshot
from detector.model.obstructions import CropModel, ObstructionFinder
from detector.model.obstructions import wanted as wanted_obstructions
from detector.model.people_vehicles import shared_people_vehicles
from detector.video.capture import CapturedFrame, CaptureThread, FrameQueue, Opener, redact
from detector.video.frame_skip import NO_REUSE, ChangeGate, ReusePolicy, camera_gate, thumbnail
from detector.video.view_check import ViewCheck, ViewStatus
from detector.video.watchdog import OFFLINE_AFTER_S, Transition, Watchdog
from zones.alert import AlertRecord, ModelRef
from zones.config import CameraConfig
from zones.detections import Detections
from zones.geo import Geolocator
from zones.geometry import CameraZones

log = logging.getLogger("streetwatch.live")

STATE_VERSION = 1
FPS_WINDOW_S = 10.0
BACKGROUND_SAVE_INTERVAL_S = 60.0
"""The finder's long-term background learns over an hour: saving it every minute loses nothing."""
FINDER_DIR = "finder"
VIEW_DIR = "view"
# Fields of a camera config that change what its pipeline sees and where: a change of any of them ends
# the camera's open incidents (their places and zones mean something else afterwards).
VIEW_FIELDS = frozenset({"source", "zones", "exclude", "frame_size", "max_gap_s", "class_map"})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _write_png(path: Path, image: npt.NDArray[np.uint8]) -> None:
    """A state image (the finder's background, the view's reference) as PNG, replaced whole; OSError on failure."""
    encoded, png = cv2.imencode(".png", image)
    if not encoded:
        raise OSError("the PNG encoder refused the image")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, png.tobytes())


class CameraRuntime:
    """One camera: its capture thread, queue, watchdog, pipeline and persisted state."""

    def __init__(
        self,
        config: CameraConfig,
        *,
        model: ModelRef,
        crop_model: CropModel | None = None,
        track_thresholds: Mapping[str, float] | None = None,
        state_dir: Path,
        analysis_fps: float,
        saved_state: str | None = None,
        evidence: bool = True,
        opener: Opener | None = None,
        mono_clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        offline_after_s: float = OFFLINE_AFTER_S,
        reuse: ReusePolicy = NO_REUSE,
    ) -> None:
        self.config = config
        self.id = config.id
        self.source = config.resolve_source()
        self.uri = redact(self.source)
        self.model = model
        self.crop_model = crop_model
        self.track_thresholds = track_thresholds
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
        self.view: ViewCheck | None = None
        """The view check of the current pipeline (its frame size and zones)."""
        self._view_saved = False
        self.reported_health: str | None = None
        """The health last logged and pushed (the runner pushes a status when it changes)."""
        self.reuse = reuse
        """When an analysed frame may reuse the model's last detections (``detector/video/frame_skip.py``)."""
        self.frames_inferred = 0
        self.frames_reused = 0
        self._gate = ChangeGate(NO_REUSE)
        self._last_detections: Detections | None = None
        self._reconnects_seen = 0
        self._analysed_at: deque[float] = deque()
        self._saved_state = self._parse_state(saved_state)
        self._closed_ids: set[str] = set()
        self.last_state_save = mono_clock()
        self.last_background_save: float | None = None
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
            track_thresholds=self.track_thresholds,
        )

    def _pipeline(self, width: int, height: int, engine: IncidentEngine | None = None) -> CameraPipeline:
        # A new finder with each pipeline: a new view or frame size starts its background models afresh.
        obstructions = None
        if wanted_obstructions(self.config):
            # No crop model (a replay of detections): no model of any kind judges the regions.
            people_vehicles = shared_people_vehicles() if self.crop_model is not None else None
            obstructions = ObstructionFinder.for_frames(width, height, self.crop_model, people_vehicles=people_vehicles)
        if obstructions is not None:
            self._seed_finder(obstructions, width, height)
        pipeline = CameraPipeline(
            self._context(width, height), evidence=self.evidence, engine=engine, obstructions=obstructions
        )
        # A new pipeline is a new view, frame size or set of zones: the model looks afresh.
        self._gate = camera_gate(self.reuse, pipeline.zones)
        self._last_detections = None
        self.view = self._view_check(width, height)
        return pipeline

    def _view_path(self, width: int, height: int) -> Path:
        return self.state_dir / VIEW_DIR / f"{self.id}-{width}x{height}.png"

    def _view_check(self, width: int, height: int) -> ViewCheck:
        view = ViewCheck()
        self._view_saved = False
        path = self._view_path(width, height)
        if path.exists():
            reference = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if reference is not None and view.seed(np.asarray(reference, dtype=np.uint8)):
                self._view_saved = True
                log.info("view.reference_restored camera=%s file=%s", self.id, path)
            else:
                log.warning("view.reference_unusable camera=%s file=%s (learning the view afresh)", self.id, path)
        return view

    def _forget_view_reference(self) -> None:
        for path in (self.state_dir / VIEW_DIR).glob(f"{self.id}-*x*.png"):
            if path.stem.removeprefix(f"{self.id}-").replace("x", "", 1).isdigit():
                path.unlink(missing_ok=True)

    def _save_view(self) -> None:
        reference = self.view.reference if self.view is not None else None
        if reference is None or self._view_saved or self.size is None:
            return
        self._view_saved = True  # one try: a disk that refuses it is logged once, not every frame
        path = self._view_path(*self.size)
        try:
            _write_png(path, reference)
        except OSError as error:
            log.warning("view.reference_not_saved camera=%s file=%s error=%s", self.id, path, error)
            return
        log.info("view.reference_learnt camera=%s file=%s", self.id, path)

    def health(self) -> str:
        """``starting``, ``offline``, or the view check's status (``online`` and its problems)."""
        if self.watchdog.status != "online":
            return self.watchdog.status
        return self.view.status if self.view is not None else "online"

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
                    self.pipeline = self._pipeline(width, height, engine)
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
        self.pipeline = self._pipeline(width, height)
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

    def needs_inference(self, frame: CapturedFrame, t: float) -> bool:
        """Whether the model must look at this frame (after ``prepare``), or may lend it the detections of
        the last frame it saw: nothing in the zones changed since (the audit's rule, the same gate). The
        first frame of a pipeline and the first after a reconnect always go to the model."""
        reconnects = self.capture.stats.reconnects
        force = self._last_detections is None or reconnects != self._reconnects_seen
        self._reconnects_seen = reconnects
        thumb = thumbnail(frame.image) if self._gate.policy.enabled else None
        infer = self._gate.needs_inference(t, thumb, force=force)
        if infer:
            self.frames_inferred += 1
        else:
            self.frames_reused += 1
        return infer

    def detections_for(self, inferred: Detections | None) -> Detections:
        """The frame's detections: the model's (kept for the frames that reuse them) or, for ``None``,
        those of the last frame the model saw."""
        if inferred is not None:
            self._last_detections = inferred
            return inferred
        assert self._last_detections is not None, "needs_inference sends the first frame to the model"
        return self._last_detections

    def check_view(self, frame: CapturedFrame, t: float) -> ViewStatus:
        """The view check on this frame (before ``process``, so that an incident opening on it is marked)."""
        assert self.pipeline is not None and self.view is not None
        status = self.view.observe(frame.image, t)
        self._save_view()
        self.pipeline.camera_health = None if status == "online" else status
        return status

    def process(self, frame: CapturedFrame, t: float, detections: Detections) -> list[AlertRecord]:
        assert self.pipeline is not None
        # The image also feeds the stationary-object finder, which the pipeline runs only where a zone opts in.
        records = self.pipeline.process(frame.index, t, detections, frame.image)
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
        # A version saved while the view had moved was saved by an operator who saw the new view on the
        # setup page (its notice says so): with the zones re-drawn, or kept because they still fit (a small
        # move), what the camera sees now is the reference from here on.
        accept_view = (
            not view_changed and self.view is not None and self.view.status == "view_moved" and self.size is not None
        )
        if view_changed or accept_view:
            self._forget_view_reference()
        if accept_view:
            assert self.size is not None
            self.view = self._view_check(*self.size)
            log.info("view.accepted camera=%s version=%s (saved while the view had moved)", self.id, version)
        if self.pipeline is not None and self.size is not None:
            if view_changed:
                t_change = self.last_t or 0.0
                if self.epoch is not None:
                    t_change = max((self._wall() - self.epoch).total_seconds(), t_change)
                records += self.pipeline.close_all(t_change)
                self.last_t = t_change
                self.config = config
                self.pipeline = self._pipeline(*self.size)
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
        health = self.health()
        status = "offline" if health == "starting" else health
        return {
            "status": status,
            "last_frame_at": _iso(self.last_frame_at),
            "frames_dropped": self.queue.dropped,
            "analysis_fps": self.analysis_fps() if status != "offline" else 0.0,
            "last_error": (self.capture.stats.last_error or "")[:500] or None,
        }

    def snapshot(self) -> CameraSnapshot:
        engine = self.pipeline.engine if self.pipeline is not None else None
        return CameraSnapshot(
            id=self.id,
            source=self.uri,
            status=self.health(),
            last_frame_at=_iso(self.last_frame_at),
            frames_dropped=self.queue.dropped,
            frames_analysed=self.frames_analysed,
            analysis_fps=self.analysis_fps(),
            reconnects=self.capture.stats.reconnects,
            open_incidents=sum(1 for i in engine.open_incidents if i.fired) if engine is not None else 0,
            last_error=self.capture.stats.last_error,
            config_version=self.config_version,
            frames_inferred=self.frames_inferred,
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

    def _background_path(self, width: int, height: int) -> Path:
        return self.state_dir / FINDER_DIR / f"{self.id}-{width}x{height}.png"

    def _seed_finder(self, obstructions: ObstructionFinder, width: int, height: int) -> None:
        path = self._background_path(width, height)
        if not path.exists():
            return
        background = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if background is None or not obstructions.finder.seed(background):
            log.warning("finder.background_unusable camera=%s file=%s (learning the street afresh)", self.id, path)
            return
        log.info("finder.background_restored camera=%s file=%s", self.id, path)

    def save_background(self, now_mono: float, *, force: bool = False) -> bool:
        """Keep the finder's long-term background for the next run (every ``BACKGROUND_SAVE_INTERVAL_S``,
        or now with ``force``). Returns whether a file was written."""
        last = self.last_background_save
        if not force and last is not None and now_mono - last < BACKGROUND_SAVE_INTERVAL_S:
            return False
        obstructions = self.pipeline.obstructions if self.pipeline is not None else None
        background = obstructions.finder.background() if obstructions is not None else None
        if background is None or self.size is None:
            return False
        path = self._background_path(*self.size)
        try:
            _write_png(path, background)
        except OSError as error:
            log.warning("finder.background_not_saved camera=%s file=%s error=%s", self.id, path, error)
            return False
        self.last_background_save = now_mono
        return True

    def close(self) -> None:
        if self.evidence is not None:
            self.evidence.finish_all()
