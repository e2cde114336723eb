"""The metric gate: every sample clip, audited with default settings and the default model, reports
exactly the incidents of its truth file (category, zone, start within 5 s) and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from detector.audit.sample_clips import SAMPLES_DIR, compare, read_alerts, sample_clips
from detector.model.wrapper import class_thresholds, default_card
from tests.conftest import run_cli, screenshot_page
from zones.detections import MODEL_CLASSES

SAMPLES = SAMPLES_DIR
CLIPS = [clip.name for clip in sample_clips(SAMPLES)]

pytestmark = pytest.mark.slow


def _audit(clip: str, out: Path, *extra: str | Path, backend: str = "pytorch") -> list[dict[str, Any]]:
    truth = json.loads((SAMPLES / f"{clip}.truth.json").read_text(encoding="utf-8"))
    done = run_cli(
        "audit",
        *extra,
        "--camera",
        SAMPLES / f"{clip}.camera.yaml",
        "--out",
        out,
        "--start-time",
        truth["start_time"],
        env={"STREETWATCH_BACKEND": backend},
    )
    assert done.returncode == 0, done.stderr
    return read_alerts(out)


def test_there_are_at_least_three_sample_clips() -> None:
    assert len(CLIPS) >= 3


@pytest.mark.parametrize("clip", CLIPS)
def test_sample_clip_reports_exactly_its_truth(tmp_path: Path, clip: str) -> None:
    truth = json.loads((SAMPLES / f"{clip}.truth.json").read_text(encoding="utf-8"))["incidents"]
    # The backend a user gets by default (auto: the fastest runtime present), exported once per machine.
    alerts = _audit(clip, tmp_path / "out", SAMPLES / f"{clip}.mp4", backend="auto")
    check = compare(alerts, truth)
    found = [(a["category"], a["zone"], a["video_offset_s"]) for a in check.unexpected]
    assert not check.missed, f"missed {check.missed}"
    assert not check.unexpected, f"reported but not in the truth: {found}"
    assert run_cli("verify", tmp_path / "out").returncode == 0


@pytest.mark.browser
def test_audit_report_of_a_real_video_renders_in_chromium(tmp_path: Path) -> None:
    clip = "street_day" if "street_day" in CLIPS else CLIPS[0]
    alerts = _audit(clip, tmp_path / "out", SAMPLES / f"{clip}.mp4")
    assert alerts
    shot = cv2.imread(str(screenshot_page(tmp_path / "out" / "report.html", tmp_path)))
    assert shot is not None and shot.shape[:2] == (2000, 1280)
    assert float(shot.std()) > 20, "the screenshot is blank"
    # the report's navy header band rendered (CSS applied)
    assert np.abs(shot[15, 640].astype(int) - np.array([0x44, 0x2A, 0x0F])).max() < 12


def test_detect_then_replay_reproduces_the_audit(tmp_path: Path) -> None:
    clip = "street_day" if "street_day" in CLIPS else CLIPS[0]
    video = SAMPLES / f"{clip}.mp4"
    direct = _audit(clip, tmp_path / "direct", video, "--sample-fps", "1")
    detections = tmp_path / "detections.jsonl"
    done = run_cli("detect", video, "--out", detections, "--sample-fps", "1")
    assert done.returncode == 0, done.stderr
    # The file holds every box above min_score and names the track thresholds a replay must judge them by.
    meta = json.loads(detections.read_text(encoding="utf-8").splitlines()[0])["meta"]
    card_thresholds = class_thresholds(default_card().confidence)
    assert meta["thresholds"] == {name: float(v) for name, v in zip(MODEL_CLASSES, card_thresholds, strict=True)}
    lines = detections.read_text(encoding="utf-8").splitlines()[1:]
    boxes = [d for line in lines for d in json.loads(line)["detections"]]
    assert all(d["conf"] >= meta["min_score"][d["class"]] - 1e-6 for d in boxes)
    replayed = _audit(clip, tmp_path / "replayed", "--detections-from", detections)

    def key(alert: dict[str, Any]) -> tuple[Any, ...]:
        return (alert["category"], alert["zone"], alert["event"], alert["video_offset_s"], alert["bbox"])

    assert direct, "the clip should raise at least one alert"
    assert sorted(map(key, direct)) == sorted(map(key, replayed))
