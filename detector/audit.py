"""``streetwatch audit``: recorded video (or replayed detections) in, alerts and a report out."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tqdm import tqdm

from detector.detections_file import DetectionsFile
from detector.evidence import EvidenceWriter
from detector.model import Detector, load_detector
from detector.pipeline import CameraPipeline, PipelineContext, offset_clock
from detector.push import Pusher
from detector.sources import Frame, ImageFolder, VideoFile, open_fast_source, open_source
from zones.alert import AlertRecord, ModelRef
from zones.categories import CATEGORIES
from zones.config import CameraConfig, load_camera_config
from zones.errors import InputError, VideoError

DEFAULT_SAMPLE_FPS = 1.0


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


@dataclass
class _VideoOutcome:
    duration_s: float = 0.0
    frames_total: int = 0
    frames_analysed: int = 0
    error: dict[str, Any] | None = None


def run_audit(request: AuditRequest) -> dict[str, Any]:
    """Runs the audit and writes alerts.jsonl, summary.json and report.html; returns the summary."""
    config = load_camera_config(request.camera)
    if not request.videos and request.detections_from is None:
        raise InputError("give at least one VIDEO, or --detections-from FILE to replay detections")
    if request.detections_from is not None and len(request.videos) > 1:
        raise InputError("--detections-from replays one video's detections; give at most one VIDEO")
    request.out.mkdir(parents=True, exist_ok=True)
    replay = DetectionsFile(request.detections_from) if request.detections_from else None
    detector = None if replay else load_detector(request.model, class_map=config.class_map)
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
                print(f"streetwatch: warning: {error}", file=sys.stderr)
            outcomes.append(outcome)
            elapsed_s += outcome.duration_s
    finally:
        if pusher is not None:
            pusher.close()
    processing_s = time.perf_counter() - started
    ordered = sorted(records.values(), key=lambda r: (r.alerted_at, str(r.id)))
    _write_alerts(request.out / "alerts.jsonl", ordered)
    summary = _summary(video_names, outcomes, processing_s, ordered, pusher)
    summary_text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    (request.out / "summary.json").write_text(summary_text, encoding="utf-8")
    from detector.report import write_report

    write_report(
        request.out,
        ordered,
        summary,
        camera_names={config.id: config.name},
        camera_locations={config.id: (config.location.lon, config.location.lat)},
    )
    return summary


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
) -> _VideoOutcome:
    source = _open(video, request, replaying=replay is not None) if video else None
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
    )
    pipeline = CameraPipeline(context, evidence=evidence if source is not None else None)
    outcome = _VideoOutcome()

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
        for frame_index, t, detections, image in _stream(source, replay, detector):
            emit(pipeline.process(frame_index, t, detections, image))
            outcome.frames_analysed += 1
            bar.update(max(0.0, round(t - last_t, 3)))
            last_t = t
    if source is not None and source.report.error:
        # Nothing continues past the damage point: incidents end at their last sighting.
        emit(pipeline.close_all(source.report.last_t))
        outcome.error = {
            "video": str(video),
            "error": source.report.error,
            "frames_read": source.report.frames_read,
            "frames_expected": source.report.frames_expected,
            "detail": source.report.detail,
        }
    emit(pipeline.finish())
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


def _open(video: Path, request: AuditRequest, *, replaying: bool) -> VideoFile | ImageFolder:
    if replaying:
        return open_source(video, sample_fps=None)  # the replayed file decides which frames matter
    if request.sample_fps:
        return open_source(video, sample_fps=request.sample_fps)
    return open_fast_source(video, fallback_fps=DEFAULT_SAMPLE_FPS)


def _stream(
    source: VideoFile | ImageFolder | None, replay: DetectionsFile | None, detector: Detector | None
) -> Iterator[tuple[int, float, Any, Any]]:
    if replay is not None:
        frames = _FrameLookup(source) if source is not None else None
        for entry in replay.frames():
            image = frames.get(entry.frame) if frames is not None else None
            yield entry.frame, entry.t, entry.detections, image
        return
    assert source is not None and detector is not None
    for frame, detections in detector.predict_frames(source.frames()):
        yield frame.index, frame.t, detections, frame.image


class _FrameLookup:
    """Pulls the frames a replay asks for from a video decoded in step with it."""

    def __init__(self, source: VideoFile | ImageFolder) -> None:
        self._frames = source.frames()
        self._current: Frame | None = None

    def get(self, index: int) -> Any:
        while self._current is None or self._current.index < index:
            nxt = next(self._frames, None)
            if nxt is None:
                return None
            self._current = nxt
        return self._current.image if self._current.index == index else None


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
        "processing_s": round(processing_s, 3),
        "realtime_factor": round(duration / processing_s, 2) if processing_s > 0 else None,
        "alerts": counts,
        "errors": errors,
    }
