"""``streetwatch audit --ray`` (issue #18) on a real Ray cluster on loopback: a head node and a second
worker node started with ``ray start``, stopped by the fixture. The sample clips, and a clip cut into
segments across its incidents, give the same alert records (ids, times, boxes, evidence hashes) as a
serial audit of the same input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, free_port, run_cli, run_cli_in_process

SAMPLES = REPO / "sample_videos"
CLIPS = sorted(p.name.removesuffix(".mp4") for p in SAMPLES.glob("*.mp4"))
RAY = str(Path(sys.executable).with_name("ray"))

needs_ray = pytest.mark.skipif(not Path(RAY).exists(), reason="Ray is not installed (pip install '.[ray]')")


@pytest.fixture(scope="session")  # one per test process (each xdist worker that runs these tests has its own)
def cluster() -> Iterator[str]:
    """A head node and one more worker node on this machine, one CPU each; the address to give --ray.

    Both run with ``ray start --block`` in process groups of their own, so that stopping them stops this
    cluster only (``ray stop`` would stop every Ray process on the machine, another test's included)."""
    # Short: Ray's Unix sockets live below it, and their paths may not exceed 107 bytes (pytest's own
    # temporary folders under xdist are too deep).
    temp = Path(tempfile.mkdtemp(prefix="swray-", dir="/tmp"))
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "YOLO_OFFLINE": "1"}
    common = ["--num-cpus", "1", "--disable-usage-stats", "--block"]
    head = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard=false"]
    address = f"127.0.0.1:{port}"
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        nodes.append(_start([*head, *common, "--temp-dir", str(temp)], env, temp / "head.log"))
        _wait_for_nodes(address, 1, env, nodes)
        worker = [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common]
        nodes.append(_start(worker, env, temp / "worker.log"))
        _wait_for_nodes(address, 2, env, nodes)
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(temp, ignore_errors=True)


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_nodes(address: str, count: int, env: dict[str, str], nodes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:
        if any(node.poll() is not None for node in nodes):
            raise AssertionError(f"a Ray node exited while starting: {[node.args for node in nodes]}")
        done = subprocess.run(
            [RAY, "status", "--address", address], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        status = done.stdout
        if done.returncode == 0 and status.count(" node_") >= count:
            return
        time.sleep(1.0)
    raise AssertionError(f"Ray cluster at {address} did not reach {count} node(s):\n{status}")


def _stop(node: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _audit(video: Path, camera: Path, out: Path, start: str, *ray: str) -> list[dict[str, Any]]:
    env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    done = run_cli("audit", video, "--camera", camera, "--out", out, "--start-time", start, *ray, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _exact(record: dict[str, Any]) -> dict[str, Any]:
    """The record without its two float figures, which must only be close: the model's outputs differ in
    their last bits when it runs on another number of threads (a Ray worker gets its task's CPUs), which
    moves the location by centimetres and the confidence in its fourth decimal. All else must be equal."""
    return {key: value for key, value in record.items() if key not in ("location", "confidence")}


def _evidence_hashes(out: Path, records: list[dict[str, Any]]) -> dict[str, str]:
    from detector.evidence.writer import sha256_file

    return {item["path"]: sha256_file(out / item["path"]) for r in records for item in r["evidence"]}


def _cut_clip(tmp_path: Path) -> Path:
    """street_day played twice (120 s): its stall and its shop goods go on across the 60 s cut."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    out = tmp_path / "twice.mp4"
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-stream_loop", "1", "-i", str(SAMPLES / "street_day.mp4")]
    subprocess.run([*args, "-c", "copy", "-y", str(out)], check=True, timeout=120)
    return out


@needs_ray
@pytest.mark.slow
@pytest.mark.parametrize(("clip", "segment_s"), [*[(c, None) for c in CLIPS], ("cut-across-incidents", 60)])
def test_ray_audit_equals_serial_audit(tmp_path: Path, cluster: str, clip: str, segment_s: int | None) -> None:
    name = "street_day" if segment_s else clip
    video = _cut_clip(tmp_path) if segment_s else SAMPLES / f"{clip}.mp4"
    camera = SAMPLES / f"{name}.camera.yaml"
    start = json.loads((SAMPLES / f"{name}.truth.json").read_text(encoding="utf-8"))["start_time"]
    serial = _audit(video, camera, tmp_path / "serial", start)
    ray_args = ["--ray", cluster, "--ray-workers", "2"] + (["--ray-segment-s", str(segment_s)] if segment_s else [])
    spread = _audit(video, camera, tmp_path / "ray", start, *ray_args)
    truth = json.loads((SAMPLES / f"{name}.truth.json").read_text(encoding="utf-8"))["incidents"]
    assert len(serial) == len(truth) or segment_s  # the serial audit is the one the sample clip tests check
    assert [_exact(r) for r in spread] == [_exact(r) for r in serial]
    for mine, theirs in zip(spread, serial, strict=True):
        assert mine["location"]["coordinates"] == pytest.approx(theirs["location"]["coordinates"], abs=2e-6)
        assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=2e-3)
    assert _evidence_hashes(tmp_path / "ray", spread) == _evidence_hashes(tmp_path / "serial", serial)
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text(encoding="utf-8"))
    assert summary["ray"]["tasks"] == (2 if segment_s else 1)
    if segment_s:
        # Not vacuous: an incident of the serial audit runs across the cut at 60 s.
        offsets = [r["video_offset_s"] for r in serial]
        assert any(o["start"] < 60 and (o["end"] is None or o["end"] > 60) for o in offsets)
    assert not (tmp_path / "ray" / ".ray-parts").exists()  # the workers' staging is gone


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--ray", "auto", "--detections-from", "x.jsonl"], "--detections-from"),
        (["--ray", "auto", "--ray-workers", "0"], "--ray-workers"),
        (["--ray", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),  # at once: Ray would wait minutes
        (["--ray", "head-without-port"], "HOST:PORT"),
    ],
)
def test_ray_options_refused_with_a_reason(tmp_path: Path, extra: list[str], expected: str) -> None:
    camera = SAMPLES / "street_day.camera.yaml"
    code, _, err, _ = run_cli_in_process(
        ["audit", str(SAMPLES / "street_day.mp4"), "--camera", str(camera), "--out", str(tmp_path), *extra]
    )
    assert code == 2 and expected in err


def test_ray_missing_exits_2_saying_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as without the extra
    camera = SAMPLES / "street_day.camera.yaml"
    code, _, err, _ = run_cli_in_process(
        ["audit", str(SAMPLES / "street_day.mp4"), "--camera", str(camera), "--out", str(tmp_path), "--ray", "auto"]
    )
    assert code == 2 and "streetwatch[ray]" in err


@needs_ray
@pytest.mark.slow
def test_ray_audit_keeps_going_past_a_bad_video(tmp_path: Path, cluster: str) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 5000)
    good = SAMPLES / "street_day.mp4"
    out = tmp_path / "out"
    start = json.loads((SAMPLES / "street_day.truth.json").read_text(encoding="utf-8"))["start_time"]
    alerts = _audit(bad, SAMPLES / "street_day.camera.yaml", out, start, "--ray", cluster, good)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["videos"] == [str(bad), str(good)]
    [error] = summary["errors"]
    assert error["video"] == str(bad) and error["error"] == "unreadable"
    truth = json.loads((SAMPLES / "street_day.truth.json").read_text(encoding="utf-8"))["incidents"]
    assert len(alerts) == len(truth) and summary["ray"]["tasks"] == 1
