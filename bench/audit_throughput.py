"""Audit throughput on a 1080p25 H.264 street clip (GOP 50), each figure beside its references.

The input is made by the bench itself: a sample clip looped to 120 s and upscaled to 1920x1080 with
libx264, GOP 50 (like a street camera). Measured in one run on the same machine:

- ``streetwatch audit`` with default settings: its ``realtime_factor`` (video seconds per wall second);
- decoding every frame with OpenCV (what any tool pays before analysing anything);
- ultralytics predicting every frame, the naive approach: timed on the first ``naive_frames`` frames
  (decode + predict each) and scaled to the whole clip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "sample_videos" / "street_day"
DURATION_S = 120


def make_clip(out: Path) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed to make the benchmark clip")
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-stream_loop", "-1", "-i", str(CLIP.with_suffix(".mp4"))]
    args += ["-t", str(DURATION_S), "-vf", "scale=1920:1080", "-r", "25", "-c:v", "libx264", "-preset", "veryfast"]
    args += ["-crf", "26", "-g", "50", "-pix_fmt", "yuv420p", "-y", str(out)]
    subprocess.run(args, check=True, timeout=900)
    return out


def opencv_decode_all(video: Path) -> float:
    import cv2

    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return DURATION_S / (time.perf_counter() - started)


def naive_predict_every_frame(video: Path, frames: int) -> float:
    import cv2
    from ultralytics import YOLO

    from detector.model import default_card

    model = YOLO(str(default_card().weights), task="detect")
    capture = cv2.VideoCapture(str(video))
    ok, image = capture.read()
    model.predict(image, verbose=False)  # warm-up, not timed
    started = time.perf_counter()
    done = 0
    while done < frames:
        ok, image = capture.read()
        if not ok:
            break
        model.predict(image, verbose=False)
        done += 1
    capture.release()
    per_frame = (time.perf_counter() - started) / max(done, 1)
    return DURATION_S / (per_frame * DURATION_S * 25)


def streetwatch_audit(video: Path, work: Path) -> dict[str, Any]:
    out = work / "audit"
    streetwatch = Path(sys.executable).with_name("streetwatch")
    subprocess.run(
        [str(streetwatch), "audit", str(video), "--camera", str(CLIP.with_suffix(".camera.yaml")), "--out", str(out)],
        check=True,
        timeout=1800,
        capture_output=True,
    )
    return dict(json.loads((out / "summary.json").read_text()))


def run(naive_frames: int = 50) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
        work = Path(tmp)
        video = make_clip(work / "street_1080p.mp4")
        summary = streetwatch_audit(video, work)
        decode = opencv_decode_all(video)
        naive = naive_predict_every_frame(video, naive_frames)
    audit = float(summary["realtime_factor"])
    return {
        "clip": f"{DURATION_S} s 1920x1080 25 fps H.264 GOP 50 (sample street_day, looped and upscaled)",
        "audit_realtime_factor": audit,
        "audit_frames_analysed": summary["frames_analysed"],
        "opencv_decode_every_frame_realtime_factor": round(decode, 2),
        "naive_predict_every_frame_realtime_factor": round(naive, 3),
        "audit_vs_naive": round(audit / naive, 1),
        "audit_vs_decode_all": round(audit / decode, 2),
    }
