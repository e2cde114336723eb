"""The decisions and parsers inside the benchmarks (bench/ingest.py, bench/live_capacity.py): the
"sustains" verdict, the request plan of the ingest load, cutting an H.264 stream into frames, and the
relay's measure of how far a camera is behind its live stream (real sockets on loopback)."""

from __future__ import annotations

import socket
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from bench.ingest import plan
from bench.live_capacity import LevelMeasure, StreamRelay, access_units, verdict
from zones.alert import AlertRecord


def measure(**overrides: object) -> LevelMeasure:
    values: dict[str, object] = {
        "configured_fps": 2.0,
        "camera_fps": {"a": 2.0, "b": 1.95},
        "alert_latencies_s": [0.4, 0.6, 0.9, 1.2],
        "backlog_s": {"a": 0.0, "b": 0.3},
    }
    values.update(overrides)
    return LevelMeasure(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "sustained", "saturated", "reason"),
    [
        ({}, True, False, None),
        ({"camera_fps": {"a": 2.0, "b": 1.8}}, True, False, None),  # exactly 90 %: enough
        ({"camera_fps": {"a": 2.0, "b": 1.79}}, False, False, "1 of 2 cameras analysed < 1.8 fps"),
        ({"camera_fps": {"a": 1.4, "b": 2.0}}, False, True, "slowest a 1.40"),
        ({"alert_latencies_s": [0.5] * 19 + [9.0]}, True, False, None),  # one late alert of 20: p95 < 2 s
        ({"alert_latencies_s": [0.5] * 18 + [9.0, 9.0]}, False, True, "alert latency p95"),
        ({"alert_latencies_s": [1.9, 2.1]}, False, False, "alert latency p95 2.09 s"),
        ({"alert_latencies_s": []}, False, False, "no alert fell due"),
        ({"backlog_s": {"a": 0.0, "b": 1.5}}, False, False, "behind their stream"),
        ({"backlog_s": {"a": 6.0, "b": 0.0}}, False, True, "worst a 6.0 s"),
        ({"offline": ["b"]}, False, True, "offline: b"),
        ({"spool_pending": 3}, False, False, "3 records still in the spool"),
    ],
)
def test_verdict(overrides: dict[str, object], sustained: bool, saturated: bool, reason: str | None) -> None:
    ok, clearly_saturated, reasons = verdict(measure(**overrides))
    assert (ok, clearly_saturated) == (sustained, saturated), reasons
    if reason is None:
        assert reasons == []
    else:
        assert any(reason in text for text in reasons), reasons


@pytest.mark.parametrize(("total", "closed_fraction", "opened", "closed"), [(100, 0.25, 80, 20), (7, 0.0, 7, 0)])
def test_ingest_plan_sends_each_close_after_its_open(
    total: int, closed_fraction: float, opened: int, closed: int
) -> None:
    jobs = plan(total, closed_fraction, seed=3, now=datetime.now(UTC), gap=8)
    events = Counter(job.record["event"] for job in jobs)
    assert (len(jobs), events["violation.opened"], events["violation.closed"]) == (total, opened, closed)
    for position, job in enumerate(jobs):
        AlertRecord.model_validate(job.record)
        if job.record["event"] == "violation.closed":
            assert job.after is not None and job.after < position
            assert jobs[job.after].record["id"] == job.record["id"]
            assert jobs[job.after].record["event"] == "violation.opened"
    assert len({job.record["id"] for job in jobs}) == opened


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (
            b"\x00\x00\x00\x01\x09\xf0AAA\x00\x00\x01\x09\xf0BB",
            [b"\x00\x00\x00\x01\x09\xf0AAA", b"\x00\x00\x01\x09\xf0BB"],
        ),
        (
            b"\x00\x00\x01\x09\x10X\x00\x00\x00\x01\x67S\x00\x00\x00\x01\x09\x10Y",
            [b"\x00\x00\x01\x09\x10X\x00\x00\x00\x01\x67S", b"\x00\x00\x00\x01\x09\x10Y"],
        ),
    ],
)
def test_access_units_cut_before_each_delimiter(stream: bytes, expected: list[bytes]) -> None:
    assert access_units(stream) == expected
    assert b"".join(access_units(stream)) == stream


def test_access_units_refuse_a_stream_without_delimiters() -> None:
    with pytest.raises(ValueError, match="access-unit delimiter"):
        access_units(b"\x00\x00\x00\x01\x67S\x00\x00\x00\x01\x68P")


@pytest.mark.parametrize("frame_bytes", [1_000, 200_000])  # fits the socket buffers / blocks the sender
def test_relay_measures_how_far_an_idle_reader_is_behind(frame_bytes: int) -> None:
    relay = StreamRelay({"clip": [b"\x00" * frame_bytes] * 10})
    try:
        with socket.create_connection(("127.0.0.1", relay.port)) as reader:
            reader.sendall(b"GET /clip/cam-a.h264 HTTP/1.0\r\n\r\n")
            time.sleep(0.3)
            reader.settimeout(5)
            # Keep up for a second: never more than a frame or two behind.
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                reader.recv(1 << 20)
            assert relay.backlog_s("cam-a", relay.unread_bytes()) < 0.3
            time.sleep(1.5)  # stop reading: 1.5 s of video piles up in the socket or at the relay
            behind = relay.backlog_s("cam-a", relay.unread_bytes())
            assert behind is not None and 1.2 < behind < 1.8
        assert relay.backlog_s("cam-b", relay.unread_bytes()) is None
    finally:
        relay.stop()


def _model_row(name: str, p50_ms: float, false_per_image: float) -> dict[str, object]:
    return {
        "model": name,
        "sha256": "0" * 12,
        "renders_mAP50": 0.6,
        "renders_per_class_mAP50": {"stall": 0.66, "laundry": 0.47, "structure": 0.67},
        "bogota_mAP50": None,
        "at_thresholds": {
            "per_class": {c: {"threshold": 0.6, "precision": 0.9, "recall": 0.4} for c in ("stall", "laundry")},
            "false_per_distractor_image": false_per_image,
        },
        "backend": "openvino",
        "p50_ms": p50_ms,
        "cpu_p50_ms": p50_ms * 2,
    }


def test_model_compare_table_names_both_models_and_the_cost_bar() -> None:
    from bench.model_compare import MAX_COST_RATIO, markdown

    figures = {
        "renders": 400,
        "negatives": 300,
        "bogota_test_images": None,
        "render_s": 1.0,
        "rows": [_model_row("old", 10.0, 0.043), _model_row("new", 12.0, 0.027)],
        "cost_ratio": 1.2,
        "cpu_cost_ratio": 1.2,
        "max_cost_ratio": MAX_COST_RATIO,
    }
    table = markdown(figures)
    rows = [line for line in table.splitlines() if line.startswith("| old") or line.startswith("| new")]
    assert len(rows) == 2 and "| 0.043 |" in rows[0] and "| 0.027 |" in rows[1]
    assert "absent (../shared missing)" in table  # no real photographs: said, not hidden
    assert f"1.2x wall, 1.2x CPU (bar: <= {MAX_COST_RATIO}x)" in table
