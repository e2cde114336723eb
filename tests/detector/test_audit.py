"""``streetwatch audit`` end to end through the real CLI: replay, geolocation, evidence, damage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import make_test_video, run_cli
from tests.zones.conftest import CAMERA, calibration_points
from tests.zones.synthetic_camera import distance_m

START = "2026-11-27T09:00:00+08:00"


def _camera(tmp_path: Path, **overrides: Any) -> Path:
    config: dict[str, Any] = {
        "id": "cam-test-01",
        "name": "测试 <camera>",
        "source": "clip.mp4",
        "timezone": "Asia/Shanghai",
        "location": {"lon": CAMERA.lon, "lat": CAMERA.lat},
        "grid": {"code": "320102001001", "team": "team-a"},
        "zones": [
            {
                "name": "sidewalk",
                "polygon": [[0.0, 0.2], [1.0, 0.2], [1.0, 1.0], [0.0, 1.0]],
                "relative": True,
                "categories": ["street_vending"],
                "dwell_s": 20,
            }
        ],
    }
    config.update(overrides)
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _detections(
    path: Path, boxes_by_second: dict[int, list[list[float]]], *, seconds: int, size: tuple[int, int]
) -> Path:
    lines: list[dict[str, Any]] = [{"meta": {"video": "clip.mp4", "fps": 25.0, "width": size[0], "height": size[1]}}]
    for second in range(seconds):
        boxes = boxes_by_second.get(second, [])
        lines.append(
            {
                "frame": second * 25,
                "t": float(second),
                "detections": [{"xyxy": box, "class": "stall", "conf": 0.9} for box in boxes],
            }
        )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def _alerts(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(("bearing_offset", "range_m"), [(0.0, 12.0), (-15.0, 20.0), (10.0, 25.0)])
def test_alert_location_matches_the_generating_camera(tmp_path: Path, bearing_offset: float, range_m: float) -> None:
    bearing = np.array([CAMERA.yaw_deg + bearing_offset])
    ranges = np.array([range_m])
    foot = CAMERA.project(CAMERA.ground_point(bearing, ranges))[0]
    truth = CAMERA.lonlat(bearing, ranges)
    box = [float(foot[0] - 40), float(foot[1] - 70), float(foot[0] + 40), float(foot[1])]
    camera = _camera(tmp_path, calibration={"points": calibration_points()})
    replay = _detections(
        tmp_path / "d.jsonl", {s: [box] for s in range(40)}, seconds=40, size=(CAMERA.width, CAMERA.height)
    )
    done = run_cli(
        "audit", "--detections-from", replay, "--camera", camera, "--out", tmp_path / "out", "--start-time", START
    )
    assert done.returncode == 0, done.stderr
    [alert] = _alerts(tmp_path / "out")
    location = np.array([alert["location"]["coordinates"]])
    error = float(distance_m(location, truth)[0])
    assert error < 1.0
    assert error <= alert["location_error_m"]
    assert alert["started_at"] == "2026-11-27T09:00:00+08:00"
    assert alert["alerted_at"] == "2026-11-27T09:00:20+08:00"
    assert alert["event"] == "violation.opened" and alert["ended_at"] is None  # seen in the last frame


def test_audit_with_video_writes_verifiable_evidence_and_report(tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", seconds=40)
    camera = _camera(tmp_path)
    box = [200.0, 200.0, 300.0, 330.0]
    replay = _detections(tmp_path / "d.jsonl", {s: [box] for s in range(3, 30)}, seconds=40, size=(640, 360))
    out = tmp_path / "out"
    done = run_cli("audit", video, "--detections-from", replay, "--camera", camera, "--out", out, "--start-time", START)
    assert done.returncode == 0, done.stderr
    [alert] = _alerts(out)
    assert alert["event"] == "violation.closed"
    assert alert["video_offset_s"] == {"start": 3.0, "alert": 23.0, "end": 29.0}
    kinds = {item["kind"] for item in alert["evidence"]}
    assert {"snapshot", "snapshot_clean", "clip"} <= kinds
    for item in alert["evidence"]:
        assert (out / item["path"]).is_file()
    assert run_cli("verify", out).returncode == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "测试 &lt;camera&gt;" in html and "<camera>" not in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["alerts"]["street_vending"] == 1 and summary["errors"] == []
    snapshot = next(item for item in alert["evidence"] if item["kind"] == "snapshot")
    tampered = out / snapshot["path"]
    tampered.write_bytes(tampered.read_bytes()[:-10] + b"0123456789")
    verify = run_cli("verify", out)
    assert verify.returncode == 2 and snapshot["path"] in verify.stderr


def test_one_bad_video_does_not_stop_the_others(tmp_path: Path, untrained_model: Path) -> None:
    good = make_test_video(tmp_path / "good.mp4", seconds=3)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 5000)
    out = tmp_path / "out"
    done = run_cli(
        "audit", bad, good, "--camera", _camera(tmp_path), "--out", out, "--model", untrained_model, "--sample-fps", "1"
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["videos"] == [str(bad), str(good)]
    assert summary["frames_analysed"] == 3
    [error] = summary["errors"]
    assert error["video"] == str(bad) and error["error"] == "unreadable"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.write_bytes(b"garbage" * 100), p)[1], "cannot open video"),
    ],
)
def test_single_unusable_video_exits_2(tmp_path: Path, make: Any, expected: str) -> None:
    video = make(tmp_path / "clip.mp4")
    # The weights do not exist either: the video is refused first, before any model would load.
    missing_model = tmp_path / "no-such-model.pt"
    done = run_cli("audit", video, "--camera", _camera(tmp_path), "--out", tmp_path / "out", "--model", missing_model)
    assert done.returncode == 2
    assert expected in done.stderr and "clip.mp4" in done.stderr and "Traceback" not in done.stderr
    assert "no-such-model.pt" not in done.stderr


def test_truncated_video_is_audited_in_part(tmp_path: Path, untrained_model: Path) -> None:
    whole = make_test_video(tmp_path / "whole.mp4", seconds=20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out"
    done = run_cli("audit", cut, "--camera", _camera(tmp_path), "--out", out, "--model", untrained_model)
    assert done.returncode == 0, done.stderr
    [error] = json.loads((out / "summary.json").read_text())["errors"]
    assert error["error"] == "truncated" and error["video"] == str(cut)
    assert 0 < error["frames_read"] < error["frames_expected"] == 500


def test_auditing_again_repeats_the_alert_ids(tmp_path: Path) -> None:
    """Re-running an audit (e.g. with --push after a failed push) must not create new cases."""
    camera = _camera(tmp_path)
    side_by_side = [[100.0, 200.0, 180.0, 300.0], [200.0, 200.0, 280.0, 300.0]]
    replay = _detections(tmp_path / "d.jsonl", {s: side_by_side for s in range(30)}, seconds=30, size=(640, 360))
    ids = []
    for run in ("first", "second"):
        done = run_cli(
            "audit", "--detections-from", replay, "--camera", camera, "--out", tmp_path / run, "--start-time", START
        )
        assert done.returncode == 0, done.stderr
        ids.append(sorted(alert["id"] for alert in _alerts(tmp_path / run)))
    assert len(ids[0]) == 2 and len(set(ids[0])) == 2  # two stalls starting together keep distinct ids
    assert ids[0] == ids[1]


def test_unusable_output_folder_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    replay = _detections(tmp_path / "d.jsonl", {}, seconds=3, size=(640, 360))
    done = run_cli("audit", "--detections-from", replay, "--camera", _camera(tmp_path), "--out", blocker / "out")
    assert done.returncode == 2
    assert "a-file/out" in done.stderr and "Traceback" not in done.stderr


def test_records_carry_the_zones_responsible_unit_and_remind_time(tmp_path: Path) -> None:
    """DESIGN §3.4/§3.7: copied from the zone; a zone without them leaves both keys out of the record."""
    shop = {
        "name": "shopfront",
        "polygon": [[0.0, 0.2], [0.5, 0.2], [0.5, 1.0], [0.0, 1.0]],
        "relative": True,
        "categories": ["street_vending"],
        "dwell_s": 20,
        "responsible": {"unit": "shop-0127", "name": "张记水果店"},
        "remind_first_s": 90,
    }
    street = {**shop, "name": "street", "polygon": [[0.5, 0.2], [1.0, 0.2], [1.0, 1.0], [0.5, 1.0]]}
    del street["responsible"], street["remind_first_s"]
    camera = _camera(tmp_path, zones=[shop, street])
    boxes = [[100.0, 200.0, 180.0, 300.0], [420.0, 200.0, 500.0, 300.0]]
    replay = _detections(tmp_path / "d.jsonl", {s: boxes for s in range(30)}, seconds=30, size=(640, 360))
    done = run_cli(
        "audit", "--detections-from", replay, "--camera", camera, "--out", tmp_path / "out", "--start-time", START
    )
    assert done.returncode == 0, done.stderr
    by_zone = {alert["zone"]: alert for alert in _alerts(tmp_path / "out")}
    assert by_zone["shopfront"]["responsible"] == {"unit": "shop-0127", "name": "张记水果店"}
    assert by_zone["shopfront"]["remind_first_s"] == 90
    assert "responsible" not in by_zone["street"] and "remind_first_s" not in by_zone["street"]
