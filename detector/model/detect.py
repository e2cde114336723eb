"""``streetwatch detect``: model and tracker only, written as a detections file (DESIGN §3.3)."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from detector.model.detections_file import DetectionsWriter
from detector.model.tracking import Tracker
from detector.model.wrapper import load_detector
from detector.video.sources import DEFAULT_SAMPLE_FPS, open_source
from zones.detections import MODEL_CLASSES


def run_detect(video: Path, out: Path, *, model: Path | None, sample_fps: float | None, progress: bool) -> int:
    """Writes the detections file atomically; returns the number of frames analysed."""
    rate = sample_fps or DEFAULT_SAMPLE_FPS
    source = open_source(video, sample_fps=rate)  # an unusable video is refused before the model loads
    detector = load_detector(model)
    tracker = Tracker()
    meta = {
        "video": str(video),
        "fps": source.fps,
        "width": source.width,
        "height": source.height,
        "classes": list(MODEL_CLASSES),
        "model": {"name": detector.name, "sha256": detector.sha256},
        # Every box above min_score is written; a replay judges tracks by these thresholds, as live does.
        "min_score": detector.min_score,
        "thresholds": detector.track_thresholds,
        "sample_fps": rate,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    count = 0
    last_t = 0.0
    with partial.open("w", encoding="utf-8") as handle, tqdm(
        total=source.duration_s, unit="s", disable=not progress, leave=False
    ) as bar:
        writer = DetectionsWriter(handle, meta)
        for frame, detections in detector.predict_frames(source.frames()):
            writer.write(frame.index, frame.t, tracker.update(detections, (source.height, source.width)))
            count += 1
            bar.update(max(0.0, frame.t - last_t))
            last_t = frame.t
    partial.replace(out)
    return count
