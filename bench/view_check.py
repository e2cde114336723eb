"""The view check's cost (issue #26) against a camera's analysis time.

The live path as ``streetwatch run`` takes it (``CameraRuntime`` + ``LiveRunner``, default model on the default
backend, the frame-skip gate on), fed in this process without capture or network, with the frames a camera
delivers at 0.5 fps from the audit benchmark's 1080p clips: the busy street (every frame goes to the model)
and the still street (the gate skips half). For each: CPU seconds of the whole analysis step per video
minute, CPU seconds of the view check inside it (``CameraRuntime.check_view``: learning the reference, then
a check every ``check_every_s``), their ratio (target: under 5 %), and the CPU time of one check.

    .venv/bin/python -m bench view_check
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.live_gate import ANALYSIS_FPS, street_frames

DURATION_S = 120.0


def _analyse(images: list[Any], detector: Any, state: Path) -> dict[str, Any]:
    from bench.audit_throughput import CLIP
    from detector.live.analysers import ModelAnalyser
    from detector.live.camera import CameraRuntime
    from detector.live.runner import LiveRunner
    from detector.live.spool import Spool
    from detector.video.capture import CapturedFrame
    from detector.video.frame_skip import ReusePolicy
    from zones.config import load_camera_config

    config = load_camera_config(CLIP.with_suffix(".camera.yaml"))
    start = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    clock = [0.0]
    analyser = ModelAnalyser(detector)
    camera = CameraRuntime(
        config, model=analyser.model, crop_model=detector, state_dir=state, analysis_fps=ANALYSIS_FPS,
        evidence=False, reuse=ReusePolicy(), mono_clock=lambda: clock[0],
        wall_clock=lambda: start + timedelta(seconds=clock[0]),
    )  # fmt: skip
    view_cpu = [0.0]
    checks = [0]
    check_view = camera.check_view

    def timed_check(frame: Any, t: float) -> Any:
        due = camera.view is not None and camera.view.due(t)
        before = time.process_time()
        status = check_view(frame, t)
        view_cpu[0] += time.process_time() - before
        checks[0] += int(due)
        return status

    camera.check_view = timed_check  # type: ignore[method-assign]
    spool = Spool(state / "spool.sqlite3")
    runner = LiveRunner([camera], analyser, spool, state_dir=state, mono_clock=lambda: clock[0])
    cpu = 0.0
    for index, image in enumerate(images):
        clock[0] = index / ANALYSIS_FPS
        camera.capture.stats.last_grab_mono = clock[0]
        camera.queue.put(CapturedFrame(index, start + timedelta(seconds=clock[0]), clock[0], image))
        before = time.process_time()
        runner.step()
        cpu += time.process_time() - before
    runner.shutdown(flush_timeout_s=0.0)
    spool.close()
    minutes = len(images) / ANALYSIS_FPS / 60
    assert camera.view is not None
    return {
        "frames_analysed": len(images),
        "frames_inferred": camera.frames_inferred,
        "view_checks": camera.view.readings,
        "view_status": camera.view.status,
        "analysis_cpu_s_per_video_minute": round(cpu / minutes, 3),
        "view_check_cpu_s_per_video_minute": round(view_cpu[0] / minutes, 3),
        "view_check_share_percent": round(100 * view_cpu[0] / cpu, 2),
        "cpu_ms_per_check_or_learning_frame": round(1000 * view_cpu[0] / max(1, checks[0]), 1),
    }


def run(duration_s: float = DURATION_S) -> dict[str, Any]:
    from detector.model.wrapper import load_detector
    from detector.video.view_check import DEFAULT_SETTINGS

    detector = load_detector(None)
    figures: dict[str, Any] = {
        "analysis_fps": ANALYSIS_FPS,
        "video_s": duration_s,
        "backend": detector.backend,
        "check_every_s": DEFAULT_SETTINGS.check_every_s,
    }
    with tempfile.TemporaryDirectory(prefix="sw-view-") as tmp:
        work = Path(tmp)
        for name, images in street_frames(work, duration_s, detector):
            state = work / name
            state.mkdir()
            figures[name] = _analyse(images, detector, state)
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
