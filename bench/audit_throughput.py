"""Audit throughput on a 1080p25 H.264 street clip (GOP 50), each figure beside its references.

The input is made by the bench itself: a sample clip looped to 120 s and upscaled to 1920x1080 with
libx264, GOP 50 (like a street camera). Measured in one run on the same machine:

- ``streetwatch audit`` with default settings: its ``realtime_factor`` (video seconds per wall second
  of processing; model loading and warm-up excluded, as in the naive figure), the frames the model
  ran on and those that reused detections, and the wall time of the whole command;
- the fast path with each of its parts switched off in turn (same clip, in-process), so that what
  each part buys is measured in the same run: decoding ahead in a thread, analysing every other key
  frame, reusing detections of unchanged frames, and all of them off (the audit before issue #7,
  except that the model's warm-up now counts as loading, outside ``processing_s``);
- the same audit with every zone opting in to ``sidewalk_obstruction`` (issue #16): what the
  stationary-object finder and its crop inferences cost, beside the same in-process audit without it
  (alternating ``--pairs`` times, medians), and timed inside the runs (issue #25: the finder's share of
  the processing time);
- decoding every frame with OpenCV (what any tool pays before analysing anything);
- ultralytics predicting every frame, the naive approach: timed on the first ``naive_frames`` frames
  (decode + predict each) and scaled to the whole clip;
- with ``static=True`` also the best case for reuse: a still street (one frame of the clip with
  fresh sensor noise in every frame), audited with default settings and the sample camera's zones
  at the category default dwells (the demo camera's 20 s dwell caps reuse at 5 s, see frame_skip).

``python -m bench.audit_throughput --duration 40`` runs it on a shorter clip (for a quick look; the
recorded figures use 120 s on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "sample_videos" / "street_day"
DURATION_S = 120

# In-process variants of the audit: AuditRequest fields that switch one part of the fast path off.
ABLATIONS: dict[str, dict[str, Any]] = {
    "no_prefetch": {"prefetch": 0},
    "every_keyframe": {"keyframe_interval_s": None},
    "no_reuse": {"change_threshold": 0.0},
    "all_off_as_before_issue_7": {"prefetch": 0, "keyframe_interval_s": None, "change_threshold": 0.0, "batch": 4},
}


def _encode_args(duration_s: float, out: Path) -> list[str]:
    args = ["-t", str(duration_s), "-vf", "scale=1920:1080", "-r", "25", "-c:v", "libx264", "-preset", "veryfast"]
    return [*args, "-crf", "26", "-g", "50", "-pix_fmt", "yuv420p", "-y", str(out)]


def _ffmpeg() -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed to make the benchmark clip")
    return ffmpeg


def make_clip(out: Path, duration_s: float = DURATION_S) -> Path:
    args = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-stream_loop", "-1", "-i", str(CLIP.with_suffix(".mp4"))]
    subprocess.run([*args, *_encode_args(duration_s, out)], check=True, timeout=900)
    return out


def make_static_clip(out: Path, duration_s: float = DURATION_S) -> Path:
    """The first frame of the sample clip held still, with temporal noise like a real sensor's."""
    ffmpeg = _ffmpeg()
    still = out.with_suffix(".png")
    grab = [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(CLIP.with_suffix(".mp4")), "-frames:v", "1"]
    subprocess.run([*grab, "-y", str(still)], check=True, timeout=120)
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-loop", "1", "-framerate", "25", "-i", str(still)]
    encode = _encode_args(duration_s, out)
    encode[encode.index("-vf") + 1] = "scale=1920:1080,noise=alls=6:allf=t"
    subprocess.run([*args, *encode], check=True, timeout=900)
    return out


def opencv_decode_all(video: Path, duration_s: float) -> float:
    import cv2

    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return duration_s / (time.perf_counter() - started)


def naive_predict_every_frame(video: Path, frames: int, duration_s: float) -> float:
    import cv2
    from ultralytics import YOLO

    from detector.model.wrapper import default_card

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
    return duration_s / (per_frame * duration_s * 25)


def default_dwell_camera(out: Path) -> Path:
    """The sample camera with its zones at the category default dwells, as a real deployment has them."""
    import yaml

    config = yaml.safe_load(CLIP.with_suffix(".camera.yaml").read_text(encoding="utf-8"))
    for zone in config["zones"]:
        zone.pop("dwell_s", None)
    config["source"] = str(CLIP.with_suffix(".mp4"))
    out.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return out


def obstruction_camera(out: Path) -> Path:
    """The sample camera with every zone also opting in to ``sidewalk_obstruction``: the stationary-object
    finder runs on every analysed frame and the model on a crop around each region it holds."""
    import yaml

    config = yaml.safe_load(CLIP.with_suffix(".camera.yaml").read_text(encoding="utf-8"))
    for zone in config["zones"]:
        zone["categories"] = [*zone["categories"], "sidewalk_obstruction"]
    config["source"] = str(CLIP.with_suffix(".mp4"))
    out.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return out


def streetwatch_audit(video: Path, out: Path, camera: Path | None = None) -> tuple[dict[str, Any], float]:
    """The real command with default settings: its summary and the command's whole wall time."""
    streetwatch = Path(sys.executable).with_name("streetwatch")
    camera = camera or CLIP.with_suffix(".camera.yaml")
    started = time.perf_counter()
    subprocess.run(
        [str(streetwatch), "audit", str(video), "--camera", str(camera), "--out", str(out)],
        check=True,
        timeout=1800,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    return dict(json.loads((out / "summary.json").read_text())), wall


def audit_variant(video: Path, out: Path, camera: Path | None = None, **settings: Any) -> dict[str, Any]:
    from detector.audit.runner import AuditRequest, run_audit

    camera = camera or CLIP.with_suffix(".camera.yaml")
    request = AuditRequest(videos=[video], camera=camera, out=out, progress=False)
    for name, value in settings.items():
        setattr(request, name, value)
    return run_audit(request)


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "realtime_factor": summary["realtime_factor"],
        "frames_analysed": summary["frames_analysed"],
        "frames_inferred": summary.get("frames_inferred"),
        "frames_reused": summary.get("frames_reused"),
        "alerts": sum(summary["alerts"].values()),
        "crops_inferred": summary.get("crops_inferred"),
    }


def finder_variant(video: Path, out: Path, camera: Path) -> dict[str, Any]:
    """The in-process audit with the finder, and the seconds spent in it: the stationary-object finder's own
    update (``finder_s``) and all of judging its regions (``obstructions_s``: the update plus the crop
    inferences of the default and the people-and-vehicles models). Timed inside the run, so its share of
    ``processing_s`` is free of the machine's run-to-run spread that the with/without pair carries."""
    from detector.model.obstructions import ObstructionFinder
    from detector.video.stationary import StationaryFinder

    spent = {"finder_s": 0.0, "obstructions_s": 0.0}
    update, detections = StationaryFinder.update, ObstructionFinder.detections

    def timed(name: str, method: Any) -> Any:
        def call(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                spent[name] += time.perf_counter() - started

        return call

    StationaryFinder.update = timed("finder_s", update)  # type: ignore[method-assign]
    ObstructionFinder.detections = timed("obstructions_s", detections)  # type: ignore[method-assign]
    try:
        summary = audit_variant(video, out, camera=camera)
    finally:
        StationaryFinder.update = update  # type: ignore[method-assign]
        ObstructionFinder.detections = detections  # type: ignore[method-assign]
    processing = float(summary["processing_s"])
    return {
        **_figures(summary),
        "processing_s": processing,
        **{name: round(value, 3) for name, value in spent.items()},
        "finder_share_of_processing": round(spent["finder_s"] / processing, 4),
        "obstructions_share_of_processing": round(spent["obstructions_s"] / processing, 4),
    }


def finder_pairs(video: Path, work: Path, pairs: int) -> dict[str, Any]:
    """The audit without and with the finder, in-process, alternating ``pairs`` times on the same camera
    otherwise: the medians of each (one pair swings by this machine's ±15 %, more than the finder costs),
    and the finder's cost from them beside its share timed inside the runs."""
    camera = obstruction_camera(work / "finder.yaml")
    without, with_finder = [], []
    for pair in range(pairs):
        without.append(_figures(audit_variant(video, work / f"without_finder_{pair}"))["realtime_factor"])
        with_finder.append(finder_variant(video, work / f"finder_{pair}", camera))
    shares = [run["obstructions_share_of_processing"] for run in with_finder]
    median_run = with_finder[shares.index(statistics.median_low(shares))]
    factor_without = statistics.median(without)
    factor_with = statistics.median(run["realtime_factor"] for run in with_finder)
    return {
        **median_run,
        "pairs": pairs,
        "realtime_factor_without_finder_runs": without,
        "realtime_factor_with_finder_runs": [run["realtime_factor"] for run in with_finder],
        "obstructions_share_runs": shares,
        "realtime_factor_without_finder": factor_without,
        "realtime_factor_with_finder_median": factor_with,
        # Extra processing time with the finder, as a share of the audit's time with it (medians).
        "finder_cost_from_medians": round(1.0 - factor_with / factor_without, 4),
    }


def run(
    naive_frames: int = 50, duration_s: float = DURATION_S, *, static: bool = True, pairs: int = 3
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
        work = Path(tmp)
        video = make_clip(work / "street_1080p.mp4", duration_s)
        summary, wall = streetwatch_audit(video, work / "audit")
        ablations = {name: _figures(audit_variant(video, work / name, **s)) for name, s in ABLATIONS.items()}
        finder = finder_pairs(video, work, pairs)
        still = None
        if static:
            still_clip = make_static_clip(work / "still_1080p.mp4", duration_s)
            camera = default_dwell_camera(work / "camera.yaml")
            still = _figures(streetwatch_audit(still_clip, work / "still", camera)[0])
        decode = opencv_decode_all(video, duration_s)
        naive = naive_predict_every_frame(video, naive_frames, duration_s)
    audit = float(summary["realtime_factor"])
    figures: dict[str, Any] = {
        "clip": f"{duration_s:g} s 1920x1080 25 fps H.264 GOP 50 (sample street_day, looped and upscaled)",
        "audit_realtime_factor": audit,
        "audit_frames_analysed": summary["frames_analysed"],
        "audit_frames_inferred": summary.get("frames_inferred"),
        "audit_frames_reused": summary.get("frames_reused"),
        "audit_command_wall_s": round(wall, 2),
        "audit_command_realtime_factor_incl_startup": round(duration_s / wall, 2),
        "fast_path_parts_off": ablations,
        "with_obstruction_finder": finder,
        "opencv_decode_every_frame_realtime_factor": round(decode, 2),
        "naive_predict_every_frame_realtime_factor": round(naive, 3),
        "audit_vs_naive": round(audit / naive, 1),
        "audit_vs_decode_all": round(audit / decode, 2),
    }
    if still is not None:
        figures["still_street_audit"] = still
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=DURATION_S, help="clip length in seconds")
    parser.add_argument("--naive-frames", type=int, default=50, help="frames timed for the naive figure")
    parser.add_argument("--no-static", action="store_true", help="skip the still-street clip")
    parser.add_argument("--pairs", type=int, default=3, help="alternating audits without and with the finder")
    args = parser.parse_args()
    print(json.dumps(run(args.naive_frames, args.duration, static=not args.no_static, pairs=args.pairs), indent=2))


if __name__ == "__main__":
    main()
