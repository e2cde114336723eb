"""The view check (issue #26) on rendered and real clips: a view shifted by 3 % and 8 % of its width, turned
3°, 70 % covered or blurred (σ = 3) from the middle of the clip is found within 30 s and given back to
``online`` within 30 s of being undone; unchanged clips (people walking, a brightness ramp) stay ``online``
throughout. Also the statuses' hysteresis and the audit's ``summary.json`` warnings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.video.view_check import ViewCheck, ViewLog, ViewSettings, ViewStatus
from tests.conftest import REPO, STREETWATCH
from tests.detector import view_clips
from tests.detector.view_clips import Timeline

REAL = REPO.parent / "shared" / "realdata" / "abandoned-objects" / "corridor_backpack.mp4"
CLIPS = [
    pytest.param(REPO / "sample_videos" / "street_day.mp4", id="rendered-street_day"),
    pytest.param(REPO / "sample_videos" / "night_market.mp4", id="rendered-night_market"),
    pytest.param(REPO / "sample_videos" / "residential_day.mp4", id="rendered-residential_day"),
    pytest.param(
        REAL, id="real-corridor_backpack", marks=pytest.mark.skipif(not REAL.exists(), reason=f"{REAL} not present")
    ),
]
STEP_S = 2.0  # live mode analyses a frame every 2 s
WITHIN_S = 30.0
CHANGES: list[tuple[str, view_clips.Alteration | None, bool, ViewStatus]] = [
    ("unchanged", None, False, "online"),
    ("brightness ramp", None, True, "online"),
    ("shift 3 %", view_clips.shift(0.03), False, "view_moved"),
    ("shift 8 %", view_clips.shift(0.08), False, "view_moved"),
    ("rotation 3°", view_clips.rotate(3.0), False, "view_moved"),
    ("70 % covered", view_clips.cover(0.70), False, "obstructed"),
    ("blur σ 3", view_clips.blur(3.0), False, "blurred"),
]
_FRAMES: dict[Path, list[view_clips.Image]] = {}


def _frames(path: Path) -> list[view_clips.Image]:
    if path not in _FRAMES:
        _FRAMES[path] = view_clips.frames(path, STEP_S)
    return _FRAMES[path]


def run_timeline(timeline: Timeline) -> list[tuple[float, ViewStatus]]:
    check = ViewCheck()  # the default settings: a check every 8 s of the frames live mode analyses
    return [(t, check.observe(image, t)) for t, image in timeline]


@pytest.mark.parametrize("clip", CLIPS)
def test_view_changes_are_found_and_undone(clip: Path) -> None:
    table = []
    for name, alteration, ramp, expected in CHANGES:
        timeline = Timeline(_frames(clip), STEP_S, alteration=alteration, ramp=ramp)
        statuses = run_timeline(timeline)
        if alteration is None:
            wrong = [(t, s) for t, s in statuses if s != "online"]
            assert not wrong, f"{clip.name} {name}: not online at {wrong[:5]}"
            table.append(f"{name}: online throughout ({timeline.duration_s:.0f} s)")
            continue
        before = [s for t, s in statuses if t < timeline.change_s]
        assert set(before) == {"online"}, f"{clip.name} {name}: {before}"
        found = next((t for t, s in statuses if t >= timeline.change_s and s == expected), None)
        assert found is not None, f"{clip.name} {name}: never {expected}: {statuses}"
        assert found - timeline.change_s <= WITHIN_S
        during = {s for t, s in statuses if found <= t < timeline.undo_s}
        assert during == {expected}, f"{clip.name} {name}: {during} while changed"
        back = next((t for t, s in statuses if t >= timeline.undo_s and s == "online"), None)
        assert back is not None and back - timeline.undo_s <= WITHIN_S, f"{clip.name} {name}: {statuses}"
        assert {s for t, s in statuses if t >= back} == {"online"}
        undone = back - timeline.undo_s
        table.append(f"{name}: {expected} after {found - timeline.change_s:.0f} s, online {undone:.0f} s after undo")
    print(f"\n{clip.name}: " + "; ".join(table))


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        pytest.param(["online"] * 5, ["online"] * 5, id="clean"),
        pytest.param(["online", "view_moved", "online", "online"], ["online"] * 4, id="one odd check: nothing"),
        pytest.param(
            ["online", "obstructed", "obstructed", "online", "online"], ["online"] * 5, id="a bus for 8 s: nothing"
        ),
        pytest.param(
            ["online", "obstructed", "obstructed", "obstructed", "obstructed", "online", "online", "online"],
            ["online", "online", "online", "online", "obstructed", "obstructed", "obstructed", "online"],
            id="covered 16 s: obstructed after 12 s, online after 8 s clean",
        ),
    ],
)
def test_hysteresis(findings: list[ViewStatus], expected: list[ViewStatus]) -> None:
    check = ViewCheck(ViewSettings(check_every_s=4.0))
    statuses = []
    for i, finding in enumerate(findings):
        check._settle(finding, i * 4.0)
        statuses.append(check.status)
    assert statuses == expected


def test_reference_is_kept_and_seeded() -> None:
    images = _frames(REPO / "sample_videos" / "street_day.mp4")
    check = ViewCheck(ViewSettings(check_every_s=STEP_S))
    for i, image in enumerate(images[:5]):
        check.observe(image, i * STEP_S)
    assert check.reference is not None
    again = ViewCheck()
    assert again.seed(check.reference)
    assert not again.seed(np.zeros((10, 10), np.uint8))
    moved = view_clips.shift(0.08)(images[10])
    assert again.measure(moved, 0.0).finding == "view_moved"
    assert again.measure(images[10], 0.0).finding == "online"


def test_audit_summary_names_the_stretch_the_view_moved(tmp_path: Path) -> None:
    """A recorded video whose second half is shifted by 8 %: summary.json warns of the stretch."""
    clip = REPO / "sample_videos" / "street_day.mp4"
    half = 30
    moved = view_clips.shift_second_half(clip, tmp_path / "moved.mp4", half_s=half, shift_px=78)  # 8 % of 960
    truth = json.loads(clip.with_suffix(".truth.json").read_text(encoding="utf-8"))
    replay = tmp_path / "empty.jsonl"
    replay.write_text(
        "\n".join(json.dumps({"frame": i * 25, "t": float(i), "detections": []}) for i in range(60)) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [
            STREETWATCH,
            "audit",
            str(moved),
            "--camera",
            str(clip.with_suffix(".camera.yaml")),
            "--out",
            str(out),
            "--start-time",
            truth["start_time"],
            "--detections-from",
            str(replay),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    moves = [w for w in summary["warnings"] if w["warning"] == "view_moved"]
    assert len(moves) == 1, summary["warnings"]
    assert half <= moves[0]["from_s"] <= half + WITHIN_S and moves[0]["to_s"] is None
    assert "moved" in moves[0]["detail"]


def test_view_log_stretches() -> None:
    check = ViewCheck()
    log = ViewLog()
    check.status, check.since = "obstructed", 10.0
    log.note(check, 14.0)
    check.status, check.since = "online", 30.0
    log.note(check, 34.0)
    assert [(s.status, s.start_s, s.end_s) for s in log.stretches] == [("obstructed", 10.0, 30.0)]
    assert log.warnings("v.mp4")[0]["to_s"] == 30.0
    assert cv2 is not None


@pytest.mark.parametrize(
    ("name", "size", "sigma"),
    [
        pytest.param("sensor noise on a grey wall", (96, 160), 3.0, id="small noisy grey"),
        pytest.param("a dark, noisy night view", (540, 960), 8.0, id="dark noise"),
    ],
)
def test_a_plain_or_noisy_view_is_never_taken_for_moved(name: str, size: tuple[int, int], sigma: float) -> None:
    rng = np.random.default_rng(3)
    check = ViewCheck()
    statuses = {
        check.observe(np.clip(rng.normal(40 if "dark" in name else 120, sigma, (*size, 3)), 0, 255).astype(np.uint8), t)
        for t in np.arange(0, 120, 2.0)
    }
    assert statuses == {"online"}, name
