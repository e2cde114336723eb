"""``streetwatch audit --ray``: one audit spread over a Ray cluster, with the output of a serial audit.

Each video is a Ray task; a video longer than ``segment_s`` is cut into segments, each a task of its
own. A segment analyses from ``overlap`` seconds before its cut (``max_gap_s`` + the longest dwell + the
key-frame stride), so that it sees every incident that is still alive at its cut from that incident's
true start. The driver then stitches the parts back together, by place and time:

- an incident belongs to the segment in which it started (``Segment.own_from <= start < own_to``);
- an incident a segment saw start before its cut is the continuation of the previous segment's
  incident at that place (same zone and category, boxes overlapping, times within ``max_gap_s``): the
  earlier part keeps its id, start, alert and evidence, the later part gives how and when it ended;
- evidence is written by the workers into a staging folder per task inside ``--out`` (a shared
  filesystem on a multi-machine cluster) and the driver moves the evidence of the records it keeps.

A task whose worker dies is retried by Ray (``max_retries``); a video that cannot be read stays in
``summary.json`` ``errors`` as in a serial audit. Ray is an optional extra: ``pip install
'streetwatch[ray]'``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from detector.audit.runner import (
    AuditRequest,
    Segment,
    _audit_one,
    _model_ref,
    _mtime_start,
    _reuse_policy,
    _summary,
    _VideoOutcome,
    write_outputs,
)
from detector.evidence.writer import EvidenceWriter
from detector.incidents.pipeline import offset_clock
from detector.live.push import Pusher
from detector.video.sources import VideoFile, open_source
from zones.alert import AlertRecord, ModelRef
from zones.categories import DEFAULT_DWELL_S
from zones.config import CameraConfig, load_camera_config
from zones.detections import iou_matrix
from zones.errors import InputError, VideoError

RAY_EXTRA = "pip install 'streetwatch[ray]'"
DEFAULT_SEGMENT_S = 1800.0
"""Videos longer than this are cut into segments of this length (each a task)."""
TASK_RETRIES = 3
CONNECT_TIMEOUT_S = 5.0
STAGING = ".ray-parts"
_STITCH_IOU = 0.3
CLIP_TAIL_S = 10.0
"""Longer than an evidence clip's part after its alert (``EvidenceWriter.clip_after_s``, 5 s) plus a stride."""


@dataclass(frozen=True)
class Job:
    video: str
    video_index: int
    part: int
    start: str
    """Wall-clock time of the video's first frame (ISO 8601)."""
    segment: Segment | None
    staging: str


@dataclass
class PartResult:
    job: Job
    records: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    unreadable: str | None = None


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_audit_ray(request: AuditRequest, address: str, workers: int | None, segment_s: float) -> dict[str, Any]:
    """Runs the audit as Ray tasks and writes what ``run_audit`` writes; returns the summary."""
    if not ray_available():
        raise InputError(f"--ray needs Ray, which is not installed: {RAY_EXTRA}")
    if request.detections_from is not None:
        raise InputError("--ray audits video; a replay (--detections-from) runs in one process")
    if not request.videos:
        raise InputError("give at least one VIDEO to audit with --ray")
    if workers is not None and workers < 1:
        raise InputError("--ray-workers must be at least 1")
    if not (math.isfinite(segment_s) and segment_s > 0):
        raise InputError("the segment length must be a positive number of seconds")
    config = load_camera_config(request.camera)
    _reuse_policy(request, config)  # bad settings are refused before a cluster is touched
    request.out.mkdir(parents=True, exist_ok=True)
    staging = request.out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    jobs, durations, unreadable = _plan(request, config, segment_s, staging)
    if not jobs and len(request.videos) == 1:
        raise VideoError(unreadable[0]["detail"], file=unreadable[0]["video"])
    started = time.perf_counter()
    results = _run_tasks(jobs, request, address, workers)
    model_ref = next((ModelRef(**r.model) for r in results if r.model), _model_ref(None, None))
    records, outcomes = _stitch(request, config, jobs, results, durations, unreadable)
    shutil.rmtree(staging, ignore_errors=True)
    pusher = _push(request, records) if request.push else None
    processing_s = time.perf_counter() - started
    ordered = sorted(records, key=lambda r: (r.alerted_at, str(r.id)))
    summary = _summary([str(v) for v in request.videos], outcomes, processing_s, ordered, pusher)
    summary["ray"] = {"tasks": len(jobs), "model": model_ref.name}
    write_outputs(request.out, config, ordered, summary)
    return summary


# ------------------------------------------------------------------------------------------- planning


def overlap_s(config: CameraConfig, request: AuditRequest) -> float:
    """How far before its cut a segment starts analysing. An incident alive at the cut that has not fired
    yet started less than the longest dwell before it; one that fired is the earlier part's, and the
    later part only has to recognise it, which a sighting within ``max_gap_s`` of the cut allows. Two
    key-frame strides more, so the tracker has settled when it matters."""
    dwells = [
        float(zone.dwell_s) if zone.dwell_s is not None else DEFAULT_DWELL_S[category]
        for zone in config.zones
        for category in zone.categories
    ]
    stride = request.keyframe_interval_s or 0.0
    return max(dwells, default=0.0) + config.max_gap_s + 2 * stride


def _plan(
    request: AuditRequest, config: CameraConfig, segment_s: float, staging: Path
) -> tuple[list[Job], list[float], list[dict[str, Any]]]:
    jobs: list[Job] = []
    durations: list[float] = []
    unreadable: list[dict[str, Any]] = []
    elapsed_s = 0.0
    overlap = overlap_s(config, request)
    for index, video in enumerate(request.videos):
        try:
            probe = open_source(video, sample_fps=None)
            duration = float(probe.duration_s or 0.0)
            splittable = isinstance(probe, VideoFile) and duration > segment_s and request.sample_fps is None
            probe.close()
        except VideoError as error:
            unreadable.append({"video": str(video), "error": "unreadable", "detail": error.reason})
            durations.append(0.0)
            continue
        if request.start_time is not None:
            start = request.start_time + timedelta(seconds=elapsed_s)
        else:
            start = _mtime_start(video, config)
        durations.append(duration)
        elapsed_s += duration
        cuts = [k * segment_s for k in range(math.ceil(duration / segment_s))] if splittable else [0.0]
        for part, cut in enumerate(cuts):
            end = cuts[part + 1] if part + 1 < len(cuts) else math.inf
            # Each part also analyses a tail past its end, so that the evidence clips of alerts just before
            # the cut are as long as in a serial audit (incidents starting in the tail are the next part's).
            segment = None if len(cuts) == 1 else Segment(max(0.0, cut - overlap), end + CLIP_TAIL_S, cut, end)
            jobs.append(
                Job(str(video), index, part, start.isoformat(), segment, str(staging / f"{index:04d}-{part:04d}"))
            )
    return jobs, durations, unreadable


# -------------------------------------------------------------------------------------------- workers

_DETECTORS: dict[tuple[str, str], Any] = {}


def audit_part(job: Job, request: AuditRequest) -> PartResult:
    """One task: one video, or one segment of it, audited with its evidence in the job's staging folder."""
    from detector.model.wrapper import load_detector

    config = load_camera_config(request.camera)
    key = (str(request.model), json.dumps(config.class_map, sort_keys=True))
    if key not in _DETECTORS:  # a worker process runs many tasks: the model is loaded once
        detector = load_detector(request.model, class_map=config.class_map)
        detector.predict([np.zeros((64, 64, 3), dtype=np.uint8)])
        _DETECTORS[key] = detector
    detector = _DETECTORS[key]
    model_ref = _model_ref(detector, None)
    records: dict[str, AlertRecord] = {}
    result = PartResult(job, model={"name": model_ref.name, "sha256": model_ref.sha256})
    clock = offset_clock(datetime.fromisoformat(job.start))
    try:
        outcome = _audit_one(
            Path(job.video),
            config,
            request,
            detector,
            None,
            model_ref,
            clock,
            EvidenceWriter(Path(job.staging)),
            None,
            records,
            segment=job.segment,
        )
    except VideoError as error:
        result.unreadable = error.reason
        return result
    result.records = [record.model_dump(mode="json") for record in records.values()]
    result.outcome = asdict(outcome)
    return result


def _run_tasks(jobs: list[Job], request: AuditRequest, address: str, workers: int | None) -> list[PartResult]:
    import ray

    env = {name: os.environ[name] for name in ("STREETWATCH_BACKEND", "YOLO_OFFLINE") if name in os.environ}
    options: dict[str, Any] = {
        "ignore_reinit_error": True,
        "log_to_driver": False,
        "runtime_env": {"env_vars": env} if env else None,
    }
    if address == "auto":
        # Ray's own rule without an address: the cluster RAY_ADDRESS or this machine's running cluster
        # names, else a new one on this machine.
        ray.init(**options)
    else:
        _check_reachable(address)  # Ray itself waits minutes for an address where nothing answers
        ray.init(address=address, **options)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        # A task asks for no more CPUs than the largest node has: more could never be scheduled.
        node_cpus = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)
        limit = workers or max(1, cpus // 2)  # each worker's model uses two threads
        task = ray.remote(num_cpus=max(1, min(node_cpus, cpus // limit)), max_retries=TASK_RETRIES)(audit_part)
        worker_request = _worker_request(request)
        queue = list(jobs)
        running: dict[Any, Job] = {}
        results: list[PartResult] = []
        with tqdm(total=len(jobs), unit="task", desc="audit", disable=not request.progress) as bar:
            while queue or running:
                while queue and len(running) < limit:
                    job = queue.pop(0)
                    running[task.remote(job, worker_request)] = job
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    running.pop(ref)
                    results.append(ray.get(ref))
                    bar.update(1)
        return results
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--ray takes 'auto' or HOST:PORT of a cluster's head, not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise InputError(f"no Ray cluster answers at {address}: {error.strerror or error}") from None


def _worker_request(request: AuditRequest) -> AuditRequest:
    """The request as the workers see it: absolute paths (their working folder may differ), no push or
    progress bar of their own."""
    from dataclasses import replace

    return replace(
        request,
        videos=[v.resolve() for v in request.videos],
        camera=request.camera.resolve(),
        out=request.out.resolve(),
        model=request.model.resolve() if request.model else None,
        push=None,
        progress=False,
    )


# ------------------------------------------------------------------------------------------ stitching


@dataclass
class _Kept:
    record: AlertRecord
    staging: Path
    last_seen_t: float
    """Video seconds of the last sighting (its end, or the end of the part when it is still open)."""
    end_from: Path | None = None
    """Staging folder of the part whose view of the end (and after-evidence) the record took."""
    end_id: str | None = None


def _stitch(
    request: AuditRequest,
    config: CameraConfig,
    jobs: list[Job],
    results: list[PartResult],
    durations: list[float],
    unreadable: list[dict[str, Any]],
) -> tuple[list[AlertRecord], list[_VideoOutcome]]:
    by_job = {(r.job.video_index, r.job.part): r for r in results}
    outcomes: list[_VideoOutcome] = []
    kept: list[_Kept] = []
    errors = {e["video"]: e for e in unreadable}
    for index, video in enumerate(request.videos):
        parts = [by_job[(j.video_index, j.part)] for j in jobs if j.video_index == index]
        outcome = _VideoOutcome(duration_s=durations[index])
        if str(video) in errors:
            outcome.error = errors[str(video)]
        failed = next((p for p in parts if p.unreadable), None)
        if failed is not None:
            if len(request.videos) == 1:
                raise VideoError(failed.unreadable or "unreadable", file=str(video))
            outcome.error = {"video": str(video), "error": "unreadable", "detail": failed.unreadable}
            outcomes.append(outcome)
            continue
        open_parts: list[_Kept] = []
        for part in sorted(parts, key=lambda p: p.job.part):
            figures = part.outcome
            for name in (
                "frames_analysed",
                "frames_inferred",
                "frames_reused",
                "crops_inferred",
                "people_vehicles_dismissed",
            ):
                setattr(outcome, name, getattr(outcome, name) + int(figures.get(name, 0)))
            outcome.frames_total = max(outcome.frames_total, int(figures.get("frames_total", 0)))
            outcome.warnings += list(figures.get("warnings", []))
            if figures.get("error"):
                outcome.error = figures["error"]  # the part that met the damage says what it was
            open_parts = _merge_part(part, open_parts, kept, config)
        outcomes.append(outcome)
    for item in kept:
        _move_evidence(item, request.out)
    return [item.record for item in kept], outcomes


def _merge_part(part: PartResult, previous: list[_Kept], kept: list[_Kept], config: CameraConfig) -> list[_Kept]:
    """Adds one part's records to ``kept``; returns the records a later part may continue."""
    segment = part.job.segment
    staging = Path(part.job.staging)
    part_end = segment.analyse_to if segment is not None else math.inf
    mine: list[_Kept] = []
    for raw in part.records:
        record = AlertRecord.model_validate(raw)
        offsets = record.video_offset_s
        assert offsets is not None  # audits always fill it
        last_seen = offsets.end if offsets.end is not None else part_end
        item = _Kept(record, staging, last_seen)
        if segment is None or segment.own_from <= offsets.start < segment.own_to:
            kept.append(item)
            mine.append(item)
            continue
        if offsets.start >= segment.own_to:
            continue  # started in the tail: the next part's, which sees it whole
        earlier = _continued(item, previous, config.max_gap_s)
        if earlier is None:
            # Seen starting inside the overlap but the previous part has no incident there: it began
            # before the overlap reaches (longer than the overlap allows) or is an artefact of the
            # cut; the earlier part's view, if any, stands.
            continue
        _take_end(earlier, item)
        mine.append(earlier)
    return mine


def _continued(item: _Kept, previous: list[_Kept], max_gap_s: float) -> _Kept | None:
    record = item.record
    offsets = record.video_offset_s
    assert offsets is not None
    for earlier in previous:
        other = earlier.record
        if (other.zone, other.category) != (record.zone, record.category):
            continue
        if offsets.start > earlier.last_seen_t + max_gap_s:
            continue
        boxes = np.array([other.bbox], dtype=np.float64), np.array([record.bbox], dtype=np.float64)
        if other.id == record.id or float(iou_matrix(*boxes)[0, 0]) >= _STITCH_IOU:
            return earlier
    return None


def _take_end(earlier: _Kept, later: _Kept) -> None:
    """The earlier part's incident, ending as the later part saw it end."""
    record, end = earlier.record, later.record
    assert record.video_offset_s is not None and end.video_offset_s is not None
    after = [item for item in end.evidence if item.kind == "snapshot_after"]
    evidence = [item for item in record.evidence if item.kind != "snapshot_after"]
    evidence += [item.model_copy(update={"path": item.path.replace(str(end.id), str(record.id))}) for item in after]
    earlier.record = record.model_copy(
        update={
            "event": end.event,
            "ended_at": end.ended_at,
            "video_offset_s": record.video_offset_s.model_copy(update={"end": end.video_offset_s.end}),
            "evidence": evidence,
        }
    )
    earlier.last_seen_t = later.last_seen_t
    earlier.end_from = later.staging if after else None
    earlier.end_id = str(end.id)


def _move_evidence(item: _Kept, out: Path) -> None:
    for evidence in item.record.evidence:
        target = out / evidence.path
        if evidence.kind == "snapshot_after" and item.end_from is not None and item.end_id is not None:
            source = item.end_from / evidence.path.replace(str(item.record.id), item.end_id)
        else:
            source = item.staging / evidence.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.move(str(source), target)


def _push(request: AuditRequest, records: list[AlertRecord]) -> Pusher:
    """Both events of each incident, in order, as a serial audit sends them as they happen."""
    assert request.push is not None
    pusher = Pusher(request.push, request.token, spool=request.out / "push-failed.jsonl", evidence_root=request.out)
    try:
        for record in sorted(records, key=lambda r: (r.alerted_at, str(r.id))):
            if record.event == "violation.closed":
                assert record.video_offset_s is not None
                opened = record.model_copy(
                    update={
                        "event": "violation.opened",
                        "ended_at": None,
                        "video_offset_s": record.video_offset_s.model_copy(update={"end": None}),
                        "evidence": [e for e in record.evidence if e.kind != "snapshot_after"],
                    }
                )
                pusher.send(opened)
            pusher.send(record)
    finally:
        pusher.close()
    return pusher
