"""``streetwatch audit --ray`` throughput with 1 and 2 workers on this machine, in one run (issue #18).

The input is the three sample clips, each copied ``copies`` times (so that there are more tasks than
workers), audited as one command per clip set with the sample camera of street_day (the videos are
separate recordings; the camera only decides the zones). Measured: the audit's own ``processing_s``
(the driver's wall time from the first task submitted to the last record written, model loading in
the workers included, since with Ray every worker loads its own model) and the whole command's wall
time (Ray's start included). The ratio is throughput with 2 workers over throughput with 1.

    python -m bench.ray_audit [--copies 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_videos"


def _audit(videos: list[Path], out: Path, workers: int) -> tuple[dict[str, Any], float]:
    streetwatch = Path(sys.executable).with_name("streetwatch")
    command = [str(streetwatch), "audit", *map(str, videos), "--camera", str(SAMPLES / "street_day.camera.yaml")]
    command += ["--out", str(out), "--ray", "auto", "--ray-workers", str(workers)]
    started = time.perf_counter()
    env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "YOLO_OFFLINE": "1"}
    subprocess.run(command, check=True, timeout=3600, capture_output=True, env={**os.environ, **env})
    wall = time.perf_counter() - started
    return dict(json.loads((out / "summary.json").read_text(encoding="utf-8"))), wall


def run(copies: int = 4) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sw-bench-ray-") as tmp:
        work = Path(tmp)
        videos = []
        for clip in sorted(SAMPLES.glob("*.mp4")):
            for k in range(copies):
                videos.append(work / f"{clip.stem}-{k}.mp4")
                shutil.copyfile(clip, videos[-1])
        figures: dict[str, Any] = {"videos": len(videos), "video_s": None}
        for workers in (1, 2):
            summary, wall = _audit(videos, work / f"out-{workers}", workers)
            figures["video_s"] = summary["duration_s"]
            figures[f"workers_{workers}"] = {
                "processing_s": summary["processing_s"],
                "realtime_factor": summary["realtime_factor"],
                "command_wall_s": round(wall, 2),
                "alerts": sum(summary["alerts"].values()),
            }
    one, two = figures["workers_1"], figures["workers_2"]
    figures["throughput_ratio_2_over_1"] = round(one["processing_s"] / two["processing_s"], 2)
    figures["same_alerts"] = one["alerts"] == two["alerts"]
    return figures


def markdown(figures: dict[str, Any]) -> str:
    one, two = figures["workers_1"], figures["workers_2"]
    return "\n".join(
        [
            "### Audit on Ray (`python -m bench.ray_audit`)",
            "",
            f"{figures['videos']} videos, {figures['video_s']:g} s of video in all (the sample clips, copied), "
            "one local Ray cluster started by the command (`--ray auto`).",
            "",
            "| workers | processing_s | x real time | command wall s | alerts |",
            "|---:|---:|---:|---:|---:|",
            f"| 1 | {one['processing_s']} | {one['realtime_factor']} | {one['command_wall_s']} | {one['alerts']} |",
            f"| 2 | {two['processing_s']} | {two['realtime_factor']} | {two['command_wall_s']} | {two['alerts']} |",
            "",
            f"Throughput 2 workers / 1 worker: **{figures['throughput_ratio_2_over_1']}x**; same alerts: "
            f"{figures['same_alerts']}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of each sample clip")
    args = parser.parse_args()
    print(json.dumps(run(args.copies), indent=2))


if __name__ == "__main__":
    main()
