"""Live mode's frame-skip gate (issue #16, item 4): model CPU per camera with and without it.

The live path as ``streetwatch run`` takes it (``CameraRuntime`` + ``LiveRunner`` with the default model
on the default backend), fed in this process, without capture or network, with the frames a camera
would deliver at the default analysis rate (0.5 fps) from the audit benchmark's two 1080p clips: the
busy street (sample street_day, someone on the pavement in every frame) and the still street (its
first frame held, with sensor noise). The sample camera's zones and 20 s dwell: the model runs at
least every 5 s of video. Reported per clip and gate: frames analysed and inferred, CPU seconds of
the analysis per minute of video, and what that allows: cameras per CPU core at 0.5 fps
(60 / CPU s per minute), for the analysis alone (capture and decoding cost extra: bench/live_capacity.py).

    .venv/bin/python -m bench live_gate
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ANALYSIS_FPS = 0.5
DURATION_S = 120.0


def _frames(video: Path) -> list[Any]:
    from detector.video.sources import open_source

    source = open_source(video, sample_fps=ANALYSIS_FPS)
    try:
        return [frame.image for frame in source.frames()]
    finally:
        source.close()


def _analyse(images: list[Any], detector: Any, reuse: Any, state: Path) -> dict[str, Any]:
    from bench.audit_throughput import CLIP
    from detector.live.analysers import ModelAnalyser
    from detector.live.camera import CameraRuntime
    from detector.live.runner import LiveRunner
    from detector.live.spool import Spool
    from detector.video.capture import CapturedFrame
    from zones.config import load_camera_config

    config = load_camera_config(CLIP.with_suffix(".camera.yaml"))
    start = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    clock = [0.0]

    def wall() -> datetime:
        return start + timedelta(seconds=clock[0])

    analyser = ModelAnalyser(detector)
    camera = CameraRuntime(
        config, model=analyser.model, crop_model=detector, state_dir=state, analysis_fps=ANALYSIS_FPS,
        evidence=False, reuse=reuse, mono_clock=lambda: clock[0], wall_clock=wall,
    )  # fmt: skip
    spool = Spool(state / "spool.sqlite3")
    runner = LiveRunner([camera], analyser, spool, state_dir=state, mono_clock=lambda: clock[0])
    cpu = 0.0
    alerts = 0
    for index, image in enumerate(images):
        clock[0] = index / ANALYSIS_FPS
        camera.capture.stats.last_grab_mono = clock[0]
        camera.queue.put(CapturedFrame(index, start + timedelta(seconds=clock[0]), clock[0], image))
        before = time.process_time()
        alerts += sum(1 for record in runner.step() if record.event == "violation.opened")
        cpu += time.process_time() - before
    runner.shutdown(flush_timeout_s=0.0)
    spool.close()
    minutes = len(images) / ANALYSIS_FPS / 60
    return {
        "frames_analysed": len(images),
        "frames_inferred": camera.frames_inferred,
        "alerts_opened": alerts,
        "cpu_s_per_video_minute": round(cpu / minutes, 2),
        "cameras_per_core": round(60 / (cpu / minutes), 1),
    }


def street_frames(work: Path, duration_s: float, detector: Any) -> Iterator[tuple[str, list[Any]]]:
    """The frames a camera delivers at ``ANALYSIS_FPS`` from the audit benchmark's busy and still 1080p
    streets (made under ``work``), by name, with the model warmed up on each first (not counted)."""
    from bench.audit_throughput import make_clip, make_static_clip

    clips = {
        "busy_street": make_clip(work / "busy.mp4", duration_s),
        "still_street": make_static_clip(work / "still.mp4", duration_s),
    }
    for name, video in clips.items():
        images = _frames(video)
        detector.predict(images[:1])
        yield name, images


def run(duration_s: float = DURATION_S) -> dict[str, Any]:
    from detector.model.wrapper import load_detector
    from detector.video.frame_skip import NO_REUSE, ReusePolicy

    detector = load_detector(None)
    figures: dict[str, Any] = {"analysis_fps": ANALYSIS_FPS, "video_s": duration_s, "backend": detector.backend}
    with tempfile.TemporaryDirectory(prefix="sw-gate-") as tmp:
        work = Path(tmp)
        for name, images in street_frames(work, duration_s, detector):
            for gate, reuse in (("every_frame", NO_REUSE), ("gated", ReusePolicy())):
                state = work / f"{name}-{gate}"
                state.mkdir()
                figures[f"{name}_{gate}"] = _analyse(images, detector, reuse, state)
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
