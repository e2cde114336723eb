"""``streetwatch audit``: recorded video (or replayed detections) in, alerts and a report out."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Generator
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from tqdm import tqdm

from detector.evidence.writer import EvidenceWriter
from detector.incidents.pipeline import CameraPipeline, PipelineContext, offset_clock
from detector.live.push import Pusher
from detector.model.detections_file import DetectionsFile
from detector.model.obstructions import ObstructionFinder, wanted
from detector.model.people_vehicles import shared_people_vehicles
from detector.model.wrapper import BATCH, Detector, load_detector
from detector.video.frame_skip import (
    NO_REUSE,
    ChangeGate,
    GreyThumb,
    ReusePolicy,
    analyse,
    camera_gate,
    thumbnail,
)
from detector.video.prefetch import DEFAULT_DEPTH, Prefetcher
from detector.video.sources import (
    DEFAULT_SAMPLE_FPS,
    Frame,
    ImageFolder,
    VideoFile,
    check_readable,
    open_fast_source,
    open_source,
)
from detector.video.view_check import ViewCheck, ViewLog
from zones.alert import AlertRecord, ModelRef
from zones.categories import CATEGORIES
from zones.config import CameraConfig, load_camera_config
from zones.errors import InputError, VideoError

DEFAULT_KEYFRAME_INTERVAL_S: float | None = 4.0
"""On the key-frame path, analyse key frames at least this many seconds apart (None: every key frame).

An object appearing just after an analysed frame is first seen up to this long later, so it stays
under the sample clips' 5 s start tolerance by construction (at GOP 50, 25 fps: every other key frame,
half the inference of every key frame; bench/audit_throughput.py measures it). Capped at half the
camera's ``max_gap_s``."""


@dataclass
class AuditRequest:
    videos: list[Path]
    camera: Path
    out: Path
    model: Path | None = None
    detections_from: Path | None = None
    sample_fps: float | None = None
    start_time: datetime | None = None
    push: str | None = None
    token: str | None = None
    progress: bool = field(default_factory=lambda: sys.stderr.isatty())
    change_threshold: float | None = None
    """Reuse the last detections while no zone cell changed by this many grey levels (0 never reuses).
    None: ``DEFAULT_CHANGE_THRESHOLD`` on the default (key-frame) path, no reuse with ``sample_fps``,
    so that ``detect --sample-fps F`` and ``--detections-from`` reproduce such an audit exactly."""
    max_reuse_s: float | None = None
    """Run the model at least every this many video seconds (0 never reuses); always capped at
    ``DWELL_FRACTION`` of the camera's shortest dwell. None: ``DEFAULT_MAX_REUSE_S`` (key-frame path)."""
    keyframe_interval_s: float | None = DEFAULT_KEYFRAME_INTERVAL_S
    """Default path only: analyse a key frame at most every this many seconds (None: every key frame)."""
    batch: int | None = None
    """Frames per model call. None: 1 with reuse (each frame is inferred as soon as it is decoded,
    which measured fastest beside the decoding thread on 2 cores); without reuse the detector's own
    batch (``detector.model.wrapper.BATCH``), the one ``streetwatch detect`` uses, so that a replay of its
    file reproduces such an audit exactly."""
    prefetch: int = DEFAULT_DEPTH
    """Frames decoded ahead in a producer thread (0: decode in the calling thread)."""


@dataclass(frozen=True)
class Segment:
    """One part of a long video audited on its own (``--ray``): the frames with ``analyse_from <= t <
    analyse_to`` are analysed; those with ``own_from <= t < own_to`` are counted in the summary and the
    incidents that start among them are this part's (the rest overlap the parts before and after)."""

    analyse_from: float
    analyse_to: float
    own_from: float
    own_to: float


@dataclass
class _VideoOutcome:
    duration_s: float = 0.0
    frames_total: int = 0
    frames_analysed: int = 0
    frames_inferred: int = 0
    frames_reused: int = 0
    crops_inferred: int = 0
    people_vehicles_dismissed: int = 0
    error: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)


def run_audit(request: AuditRequest) -> dict[str, Any]:
    """Runs the audit and writes alerts.jsonl, summary.json and report.html; returns the summary."""
    config = load_camera_config(request.camera)
    if not request.videos and request.detections_from is None:
        raise InputError("give at least one VIDEO, or --detections-from FILE to replay detections")
    if request.detections_from is not None and len(request.videos) > 1:
        raise InputError("--detections-from replays one video's detections; give at most one VIDEO")
    request.out.mkdir(parents=True, exist_ok=True)
    if (request.batch is not None and request.batch < 1) or request.prefetch < 0:
        raise InputError("batch must be >= 1 and prefetch >= 0")
    interval = request.keyframe_interval_s
    if interval is not None and not (math.isfinite(interval) and interval > 0):
        raise InputError(f"the key-frame interval must be a positive number of seconds, got {interval:g}")
    _reuse_policy(request, config)  # refuse bad reuse settings before the model loads
    replay = DetectionsFile(request.detections_from) if request.detections_from else None
    if replay is None and len(request.videos) == 1:
        check_readable(request.videos[0])  # a lone unusable video is refused in a moment, not after model loading
    detector = None if replay else load_detector(request.model, class_map=config.class_map)
    if detector is not None:
        # ultralytics builds its predictor (and imports torchvision) on the first call: model
        # loading, not processing, exactly like the warm-up that bench/audit_throughput.py leaves
        # out of the naive figure.
        detector.predict([np.zeros((64, 64, 3), dtype=np.uint8)])
        people_vehicles = shared_people_vehicles() if wanted(config) else None
        if people_vehicles is not None:  # loaded (and warmed up) with the model, not while processing
            people_vehicles.find(np.zeros((64, 64, 3), dtype=np.uint8))
    model_ref = _model_ref(detector, replay)
    pusher = (
        Pusher(request.push, request.token, spool=request.out / "push-failed.jsonl", evidence_root=request.out)
        if request.push
        else None
    )
    evidence = EvidenceWriter(request.out)
    started = time.perf_counter()
    records: dict[str, AlertRecord] = {}
    outcomes: list[_VideoOutcome] = []
    video_names: list[str] = []
    elapsed_s = 0.0  # with --start-time, several videos are consecutive segments of one recording
    try:
        jobs: list[Path | None] = list(request.videos) or [None]
        for video in jobs:
            name = str(video) if video else str(request.detections_from)
            video_names.append(name)
            if request.start_time is not None:
                start = request.start_time + timedelta(seconds=elapsed_s)
            else:
                start = _mtime_start(video or request.detections_from, config)
            try:
                outcome = _audit_one(
                    video, config, request, detector, replay, model_ref, offset_clock(start), evidence, pusher, records
                )
            except VideoError as error:
                if len(jobs) == 1:
                    raise
                # One bad file never stops the others (DESIGN §3.4b).
                outcome = _VideoOutcome(error={"video": name, "error": "unreadable", "detail": error.reason})
            outcomes.append(outcome)
            elapsed_s += outcome.duration_s
    finally:
        if pusher is not None:
            pusher.close()
    processing_s = time.perf_counter() - started
    ordered = sorted(records.values(), key=lambda r: (r.alerted_at, str(r.id)))
    summary = _summary(video_names, outcomes, processing_s, ordered, pusher)
    write_outputs(request.out, config, ordered, summary)
    return summary


def write_outputs(out: Path, config: CameraConfig, ordered: list[AlertRecord], summary: dict[str, Any]) -> None:
    """alerts.jsonl, summary.json and report.html of an audit (serial or spread over Ray)."""
    from detector.evidence.report import write_report

    _write_alerts(out / "alerts.jsonl", ordered)
    summary_text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    (out / "summary.json").write_text(summary_text, encoding="utf-8")
    write_report(
        out,
        ordered,
        summary,
        camera_names={config.id: config.name},
        camera_locations={config.id: (config.location.lon, config.location.lat)},
    )


def _audit_one(
    video: Path | None,
    config: CameraConfig,
    request: AuditRequest,
    detector: Detector | None,
    replay: DetectionsFile | None,
    model_ref: ModelRef,
    clock: Any,
    evidence: EvidenceWriter,
    pusher: Any,
    records: dict[str, AlertRecord],
    segment: Segment | None = None,
) -> _VideoOutcome:
    source = _open(video, request, replaying=replay is not None, max_gap_s=config.max_gap_s) if video else None
    if segment is not None:
        if not isinstance(source, VideoFile) or replay is not None:
            raise InputError("only a video file's own frames can be audited in segments")
        source.window = (segment.analyse_from, segment.analyse_to)
    if replay is not None and source is not None:
        width, height = source.width, source.height
    elif replay is not None:
        width, height = _replay_size(replay, config)
    else:
        assert source is not None
        width, height = source.width, source.height
    context = PipelineContext(
        config=config,
        width=width,
        height=height,
        wall_clock=clock,
        model=model_ref,
        source_uri=str(video) if video else (replay.meta.video or str(replay.path) if replay else ""),
        mode="audit",
        track_thresholds=detector.track_thresholds if detector is not None else _replay_thresholds(replay),
    )
    # The finder needs the frames and watches only where a zone opts in; a replay is its own detections.
    obstructions = (
        ObstructionFinder.for_frames(width, height, detector, people_vehicles=shared_people_vehicles())
        if source is not None and replay is None and wanted(config)
        else None
    )
    pipeline = CameraPipeline(context, evidence=evidence if source is not None else None, obstructions=obstructions)
    outcome = _VideoOutcome()
    # Is the camera still looking at its street? Stretches where it was not are warnings, and their
    # incidents are marked (camera_health).
    view, view_log = (ViewCheck(), ViewLog()) if source is not None else (None, None)

    def emit(new_records: list[AlertRecord]) -> None:
        for record in new_records:
            if pusher is not None:
                pusher.send(record)

    total = source.duration_s if source is not None else None
    with tqdm(
        total=round(total, 1) if total else None,
        unit="s",
        desc=Path(context.source_uri).name[:30],
        disable=not request.progress,
        leave=False,
    ) as bar:
        last_t = 0.0
        gate = _gate(request, config, source, pipeline) if replay is None else None
        # closing(): the decoding thread is joined here, before the source's report is read, also
        # when the pipeline raises or the user interrupts.
        with closing(_stream(source, replay, detector, gate, request)) as stream:
            for frame_index, t, detections, image, after_damage in stream:
                if after_damage:
                    # Damaged data lies between the last analysed frame and this one: no incident is
                    # carried across it (DESIGN §3.4b); new incidents may start after it.
                    emit(pipeline.close_all(last_t))
                if view is not None and view_log is not None and image is not None:
                    status = view.observe(image, t)
                    view_log.note(view, t)
                    pipeline.camera_health = None if status == "online" else status
                emit(pipeline.process(frame_index, t, detections, image))
                if segment is None or segment.own_from <= t < segment.own_to:
                    outcome.frames_analysed += 1
                bar.update(max(0.0, round(t - last_t, 3)))
                last_t = t
        if gate is not None:
            outcome.frames_inferred, outcome.frames_reused = gate.inferred, gate.reused
    if source is not None and source.report.error == "truncated":
        # Nothing continues past the damage point: incidents end at their last sighting. (A video
        # damaged only part-way ends normally: incidents seen in its last frame stay open, §3.4a.)
        emit(pipeline.close_all(source.report.last_t))
    if source is not None and source.report.error:
        outcome.error = {
            "video": str(video),
            # DESIGN §3.4b names every part-way break "truncated"; what was met is kept beside it.
            "error": "truncated",
            "damage": source.report.error,
            "frames_read": source.report.frames_read,
            "frames_expected": source.report.frames_expected,
            "detail": source.report.detail,
        }
    emit(pipeline.finish())
    if obstructions is not None:
        outcome.crops_inferred = obstructions.crops_inferred
        outcome.people_vehicles_dismissed = obstructions.people_vehicles_dismissed
        outcome.warnings = [
            {"video": str(video), "warning": "sidewalk_obstruction", "detail": problem}
            for problem in obstructions.warnings()
        ]
    if view_log is not None:
        outcome.warnings += [
            warning
            for warning in view_log.warnings(str(video))
            if segment is None or segment.own_from <= float(warning["from_s"]) < segment.own_to  # type: ignore[arg-type]
        ]
    if source is not None:
        outcome.duration_s = source.duration_s or source.report.last_t
        outcome.frames_total = source.report.frames_expected or source.report.frames_read
    else:
        outcome.duration_s = last_t
        outcome.frames_total = outcome.frames_analysed
        if replay is not None and replay.meta.fps:
            outcome.frames_total = max(outcome.frames_analysed, round(last_t * replay.meta.fps) + 1)
    records.update(pipeline.records)
    return outcome


def _open(video: Path, request: AuditRequest, *, replaying: bool, max_gap_s: float) -> VideoFile | ImageFolder:
    if replaying:
        return open_source(video, sample_fps=None)  # the replayed file decides which frames matter
    if request.sample_fps:
        return open_source(video, sample_fps=request.sample_fps)
    source = open_fast_source(video, fallback_fps=DEFAULT_SAMPLE_FPS)
    if isinstance(source, VideoFile) and source.keyframes_only and request.keyframe_interval_s:
        # At most half the gap rule's span: sparser, an incident could end between two analysed frames.
        interval = min(request.keyframe_interval_s, max_gap_s / 2)
        # The source's sampler then takes key frames at least this far apart (by their timestamps).
        source.sample_fps = 1.0 / interval
    return source


def _reuse_policy(request: AuditRequest, config: CameraConfig) -> ReusePolicy:
    """The reuse settings asked for (``camera_gate`` caps the bound by the camera's shortest dwell).

    Reuse is on by default on the default path; with an explicit sample rate it is off unless a
    reuse setting is given, so that ``detect --sample-fps F`` + ``--detections-from`` reproduce it.
    """
    explicit = request.change_threshold is not None or request.max_reuse_s is not None
    if request.sample_fps is not None and not explicit:
        return NO_REUSE
    return ReusePolicy.from_options(request.change_threshold, request.max_reuse_s)


def _gate(
    request: AuditRequest, config: CameraConfig, source: VideoFile | ImageFolder | None, pipeline: CameraPipeline
) -> ChangeGate:
    policy = _reuse_policy(request, config)
    if not policy.enabled or source is None:
        return ChangeGate(NO_REUSE)
    return camera_gate(policy, pipeline.zones)  # the pipeline's zones are in this source's pixels


def _stream(
    source: VideoFile | ImageFolder | None,
    replay: DetectionsFile | None,
    detector: Detector | None,
    gate: ChangeGate | None,
    request: AuditRequest,
) -> Generator[tuple[int, float, Any, Any, bool], None, None]:
    """(frame index, t, detections, image, after_damage) per analysed frame."""
    if replay is not None:
        lookup = _FrameLookup(source) if source is not None else None
        for entry in replay.frames():
            if lookup is None:
                yield entry.frame, entry.t, entry.detections, None, False
                continue
            image = lookup.get(entry.frame)
            if lookup.exhausted and lookup.source.report.error == "truncated":
                return  # the video breaks off before this entry: nothing is audited past the damage point
            yield entry.frame, entry.t, entry.detections, image, lookup.take_damage()
        return
    assert source is not None and detector is not None and gate is not None
    decoded = _decode(source, thumbnails=gate.policy.enabled)
    ahead = Prefetcher(decoded, depth=request.prefetch, name="streetwatch-decode") if request.prefetch else None
    with closing(decoded), ahead if ahead is not None else nullcontext():
        # Without reuse every frame is inferred, in runs of BATCH frames: the grouping of
        # Detector.predict_frames, so `detect` + `--detections-from` replays this bit for bit.
        batch = request.batch or (1 if gate.policy.enabled else BATCH)
        items = ahead if ahead is not None else decoded
        for item in analyse(items, detector, gate, batch=batch, max_pending=2 * batch):
            yield item.frame.index, item.frame.t, item.detections, item.frame.image, item.frame.after_damage


def _decode(
    source: VideoFile | ImageFolder, *, thumbnails: bool
) -> Generator[tuple[Frame, float, GreyThumb | None], None, None]:
    """Frames with their change thumbnails, made where the decoding runs (off the model's thread)."""
    frames = source.frames()
    try:
        for frame in frames:
            yield frame, frame.t, thumbnail(frame.image) if thumbnails else None
    finally:
        if isinstance(frames, Generator):
            frames.close()  # the container is closed by the thread that decoded from it


class _FrameLookup:
    """Pulls the frames a replay asks for from a video decoded in step with it."""

    def __init__(self, source: VideoFile | ImageFolder) -> None:
        self.source = source
        self._frames = source.frames()
        self._current: Frame | None = None
        self._damage = False
        self.exhausted = False  # the video has no more frames: its source report is final

    def get(self, index: int) -> Any:
        while self._current is None or self._current.index < index:
            nxt = next(self._frames, None)
            if nxt is None:
                self.exhausted = True
                return None
            self._current = nxt
            self._damage = self._damage or nxt.after_damage
        return self._current.image if self._current.index == index else None

    def take_damage(self) -> bool:
        """Whether damaged data was met since the last call."""
        damage, self._damage = self._damage, False
        return damage


def _replay_size(replay: DetectionsFile, config: CameraConfig) -> tuple[int, int]:
    if replay.meta.width and replay.meta.height:
        return replay.meta.width, replay.meta.height
    if config.frame_size:
        return int(config.frame_size[0]), int(config.frame_size[1])
    raise InputError(
        "the frame size is unknown: give the video, a meta line with width and height, "
        "or frame_size in the camera config",
        file=str(replay.path),
    )


def _replay_thresholds(replay: DetectionsFile | None) -> dict[str, float] | None:
    """The track thresholds a detections file was written for (its meta), None for a file without them:
    its boxes passed a per-frame threshold already, so each one counts as before."""
    return None if replay is None else replay.meta.thresholds


def _model_ref(detector: Detector | None, replay: DetectionsFile | None) -> ModelRef:
    if detector is not None:
        return ModelRef(name=detector.name, sha256=detector.sha256)
    meta_model = (replay.meta.model or {}) if replay else {}
    return ModelRef(name=str(meta_model.get("name") or "replay"), sha256=str(meta_model.get("sha256") or "")[:64])


def _mtime_start(path: Path | None, config: CameraConfig) -> datetime:
    zone = ZoneInfo(config.timezone)
    if path is not None and path.exists():
        return datetime.fromtimestamp(path.stat().st_mtime, tz=zone).replace(microsecond=0)
    return datetime.now(tz=zone).replace(microsecond=0)


def _write_alerts(path: Path, records: list[AlertRecord]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")
    tmp.replace(path)


def _summary(
    videos: list[str],
    outcomes: list[_VideoOutcome],
    processing_s: float,
    records: list[AlertRecord],
    pusher: Any,
) -> dict[str, Any]:
    duration = sum(o.duration_s for o in outcomes)
    counts = {category: 0 for category in CATEGORIES}
    for record in records:
        counts[record.category] += 1
    errors = [o.error for o in outcomes if o.error]
    if pusher is not None:
        errors.extend(pusher.errors)
    return {
        "videos": videos,
        "duration_s": round(duration, 3),
        "frames_total": sum(o.frames_total for o in outcomes),
        "frames_analysed": sum(o.frames_analysed for o in outcomes),
        # Of the analysed frames: the model ran on these, the others reused the detections of the last
        # inferred frame because nothing in the zones changed (detector/video/frame_skip.py). Both 0 in replay.
        "frames_inferred": sum(o.frames_inferred for o in outcomes),
        "frames_reused": sum(o.frames_reused for o in outcomes),
        # Model runs on crops around regions the stationary-object finder holds (sidewalk_obstruction zones).
        "crops_inferred": sum(o.crops_inferred for o in outcomes),
        # Of those regions, the ones the people-and-vehicles model found a person or vehicle on (not reported).
        "people_vehicles_dismissed": sum(o.people_vehicles_dismissed for o in outcomes),
        "processing_s": round(processing_s, 3),
        "realtime_factor": round(duration / processing_s, 2) if processing_s > 0 else None,
        "alerts": counts,
        "errors": errors,
        # Not errors: the audit ran, but some of it may see less than it should (e.g. frames too dark).
        "warnings": [warning for o in outcomes for warning in o.warnings],
    }
