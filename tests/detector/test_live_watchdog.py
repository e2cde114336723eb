"""Live capture rules with a fake clock: offline after 20 s, reconnect spacing and escalation,
the drop-oldest frame queue, and capture threads that never turn a failed read into a frame."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector.video.capture import CapturedFrame, CaptureThread, FrameQueue, probe_stream, redact
from detector.video.watchdog import ReconnectPolicy, Watchdog
from tests.conftest import make_test_video


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ----------------------------------------------------------------------------- watchdog


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        # (action, seconds after start) -> status after each action
        pytest.param([("check", 20.0)], ["starting"], id="no frame yet, 20 s is not yet offline"),
        pytest.param([("check", 20.1)], ["offline"], id="no frame for more than 20 s after start: offline"),
        pytest.param([("frame", 3.0)], ["online"], id="first good frame: online"),
        pytest.param(
            [("frame", 3.0), ("check", 23.0), ("check", 23.2)], ["online", "online", "offline"], id="silent 20.2 s"
        ),
        pytest.param(
            [("frame", 1.0), ("check", 30.0), ("frame", 31.0), ("check", 45.0)],
            ["online", "offline", "online", "online"],
            id="back online on the first good frame",
        ),
    ],
)
def test_watchdog_offline_after_20_s_online_on_first_frame(
    script: list[tuple[str, float]], expected: list[str]
) -> None:
    clock = FakeClock()
    start = clock.now
    dog = Watchdog(clock=clock)
    seen = []
    for action, at in script:
        clock.now = start + at
        if action == "frame":
            dog.frame()
        else:
            dog.check()
        seen.append(dog.status)
    assert seen == expected


def test_watchdog_reports_each_transition_once() -> None:
    clock = FakeClock()
    dog = Watchdog(clock=clock)
    assert dog.frame() is not None
    assert dog.frame() is None  # still online: nothing to report
    clock.advance(21)
    transition = dog.check()
    assert transition is not None and (transition.previous, transition.status) == ("online", "offline")
    assert dog.check() is None
    assert dog.silent_for() == pytest.approx(21)


# ----------------------------------------------------------------------------- reconnect policy


@pytest.mark.parametrize(
    ("failures", "escalates_at", "interval_after"),
    [
        pytest.param([0, 10, 20, 30, 40], None, 10.0, id="a 45 s outage: 10 s spacing, never escalated"),
        pytest.param([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110], None, 10.0, id="110 s dead: still 10 s"),
        pytest.param([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120], 12, 60.0, id="dead 120 s: escalates"),
        pytest.param([0, 60, 120], None, 10.0, id="3 failures over 120 s: fewer than 5, no escalation"),
        pytest.param([0, 30, 60, 90, 120, 180], 4, 120.0, id="escalated: each further failure doubles"),
        pytest.param([0, 30, 60, 90, 120, 180, 300, 540, 840], 4, 300.0, id="capped at 300 s"),
        pytest.param([(0, "5xx"), (2, "5xx"), (4, "5xx")], None, 2.0, id="a 5xx is retried after 2 s"),
        pytest.param(
            [(0, "5xx"), (2, "5xx"), (4, "5xx"), (6, "5xx"), (8, "5xx"), (10, "5xx")],
            None,
            10.0,
            id="a 6th 5xx in a row: back to 10 s",
        ),
        pytest.param(
            [(t, "5xx") for t in range(0, 300, 2)], 10, 300.0, id="a server that only answers 5xx is dead too"
        ),
    ],
)
def test_reconnect_policy_escalates_cameras_that_stay_dead(
    failures: list[float | tuple[float, str]], escalates_at: int | None, interval_after: float
) -> None:
    clock = FakeClock()
    start = clock.now
    policy = ReconnectPolicy(clock=clock)
    escalations = []
    counted = 0
    for entry in failures:
        at, kind = entry if isinstance(entry, tuple) else (entry, "refused")
        clock.now = start + at
        policy.attempt()
        before = policy.failures
        if policy.failure(retry_soon=kind == "5xx"):
            escalations.append(counted)
        counted += policy.failures - before
    assert escalations == ([] if escalates_at is None else [escalates_at])
    assert policy.interval_s == interval_after
    assert policy.delay() == pytest.approx(interval_after)


def test_reconnect_attempts_are_at_least_10_s_apart_and_success_resets() -> None:
    clock = FakeClock()
    policy = ReconnectPolicy(clock=clock)
    assert policy.delay() == 0  # the very first attempt goes at once
    policy.attempt()
    clock.advance(3)  # open failed after 3 s
    policy.failure()
    assert policy.delay() == pytest.approx(7)  # 10 s after the previous attempt *started*
    clock.advance(7)
    assert policy.delay() == 0
    for _ in range(13):  # failing for 130 s: dead
        policy.attempt()
        clock.advance(10)
        policy.failure()
    assert policy.escalation >= 1
    policy.success()
    assert policy.escalation == 0 and policy.interval_s == 10.0 and policy.failing_since is None
    clock.advance(100)
    assert policy.delay() == 0  # a stream that ran for a while and dropped reconnects at once


# ----------------------------------------------------------------------------- frame queue


def _frame(index: int) -> CapturedFrame:
    return CapturedFrame(index, datetime(2026, 1, 1, tzinfo=UTC), float(index), np.zeros((2, 2, 3), np.uint8))


@pytest.mark.parametrize(
    ("maxlen", "puts", "latest", "dropped"),
    [
        pytest.param(2, 1, 0, 0, id="one frame, nothing dropped"),
        pytest.param(2, 2, 1, 1, id="analysis takes the newest; the older one was never analysed"),
        pytest.param(2, 5, 4, 4, id="overflow drops the oldest, the taker drops the rest"),
        pytest.param(4, 3, 2, 2, id="larger queue"),
    ],
)
def test_queue_drops_oldest_and_counts(maxlen: int, puts: int, latest: int, dropped: int) -> None:
    queue = FrameQueue(maxlen)
    for i in range(puts):
        queue.put(_frame(i))
    assert len(queue) == min(puts, maxlen)
    taken = queue.take_latest()
    assert taken is not None and taken.index == latest
    assert queue.dropped == dropped
    assert queue.take_latest() is None


@given(st.lists(st.sampled_from(["put", "take"]), max_size=60), st.integers(min_value=1, max_value=4))
def test_queue_accounts_for_every_frame(ops: list[str], maxlen: int) -> None:
    queue = FrameQueue(maxlen)
    taken = 0
    for i, op in enumerate(ops):
        if op == "put":
            queue.put(_frame(i))
        elif queue.take_latest() is not None:
            taken += 1
        assert len(queue) <= maxlen
    assert taken + queue.dropped + len(queue) == queue.put_count


def test_queue_never_blocks_the_producer() -> None:
    queue = FrameQueue(2)
    done = threading.Event()

    def produce() -> None:
        for i in range(20_000):
            queue.put(_frame(i))
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert done.wait(10), "put blocked although nobody consumed"
    assert queue.dropped == 20_000 - 2


# ----------------------------------------------------------------------------- capture thread


class FakeStream:
    """Scripted stream: ``grabs`` is a list of booleans; ``retrieve_ok`` the retrieve results."""

    def __init__(self, grabs: list[bool], retrieve_ok: bool = True, opened: bool = True) -> None:
        self.grabs = list(grabs)
        self.retrieve_ok = retrieve_ok
        self.opened = opened
        self.released = False
        self.served = 0

    def isOpened(self) -> bool:
        return self.opened

    def grab(self) -> bool:
        time.sleep(0.01)
        if not self.grabs:
            return False
        ok = self.grabs.pop(0)
        self.served += ok
        return ok

    def retrieve(self) -> tuple[bool, Any]:
        if not self.retrieve_ok:
            return False, None
        return True, np.full((4, 4, 3), self.served, np.uint8)

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True


def _run_capture(streams: list[FakeStream], *, seconds: float, policy: ReconnectPolicy | None = None) -> Any:
    queue = FrameQueue(1000)
    opened: list[float] = []

    def opener(source: str | int) -> FakeStream:
        opened.append(time.monotonic())
        return streams.pop(0) if streams else FakeStream([], opened=False)

    thread = CaptureThread("cam-x", "rtsp://cam/x", queue, sample_fps=1000.0, policy=policy, opener=opener, probe=None)
    thread.start()
    time.sleep(seconds)
    thread.stop()
    assert thread.join(2.0)
    return queue, thread, opened


def test_failed_reads_are_not_frames() -> None:
    stream = FakeStream([True, True, True, False, True])  # the True after the failure is never read
    queue, thread, _ = _run_capture([stream], seconds=0.3, policy=ReconnectPolicy(min_interval_s=60))
    frames = []
    while (frame := queue.take_latest()) is not None:
        frames.append(frame)
        break
    assert queue.put_count == 3, "exactly the three good frames, nothing for the failed read"
    assert frames[0].image[0, 0, 0] == 3  # the newest real frame, not a black or repeated one
    assert stream.released
    assert thread.stats.reconnects == 1 and thread.stats.last_error == "read failed or timed out"


def test_undecodable_frame_is_not_queued() -> None:
    stream = FakeStream([True, True], retrieve_ok=False)
    queue, thread, _ = _run_capture([stream], seconds=0.2, policy=ReconnectPolicy(min_interval_s=60))
    assert queue.put_count == 0
    assert thread.stats.last_error == "decode failed"


def test_capture_reconnects_with_spacing_and_escalates(caplog: pytest.LogCaptureFixture) -> None:
    policy = ReconnectPolicy(min_interval_s=0.1, escalated_interval_s=5.0, escalate_after_s=0.35)
    with caplog.at_level(logging.WARNING, logger="streetwatch.capture"):
        _, thread, opened = _run_capture([], seconds=0.75, policy=policy)
    gaps = np.diff(opened)
    assert len(opened) == 5, f"attempts at {opened}: five fast failures, then the 5 s escalated wait"
    assert (gaps >= 0.1 - 1e-3).all()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "capture.escalated camera=cam-x" in errors[0].getMessage()
    assert thread.stats.escalated


def test_file_source_loops_paced_without_counting_reconnects(tmp_path: Path) -> None:
    """A file source plays at its own frame rate and starts again at its end without a reconnect.

    Load only ever slows the capture down, so pacing is checked as "never faster than the file": the
    test waits for two loops (20 frames of a 10-frame, 10 fps file) however long they take, and checks
    that they took at least the file's own time and gave no more than 5 fps worth of sampled frames."""
    clip = make_test_video(tmp_path / "clip.mp4", seconds=1.0, size="160x120", fps=10)
    queue = FrameQueue(1000)
    thread = CaptureThread("cam-f", str(clip), queue, sample_fps=5.0)
    started = time.monotonic()
    thread.start()
    deadline = started + 20.0
    while thread.stats.grabbed < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    thread.stop()
    assert thread.join(3.0)
    assert thread.stats.grabbed >= 20, "the 10-frame file looped"
    # 20 frames at 10 fps: the first at 0 s, the 20th at 1.9 s of the file's time.
    assert elapsed >= 1.8, f"20 frames in {elapsed:.2f} s: not paced at the file's 10 fps"
    # Sampled at 5 fps (less part of the first loop, whose one key frame is too few for 5 fps): never more.
    assert 3 <= queue.put_count <= 5 * elapsed + 2
    assert thread.stats.reconnects == 0


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("rtsp://admin:secret@10.0.0.5:554/stream1", "rtsp://10.0.0.5:554/stream1"),
        ("rtsp://10.0.0.5/stream1", "rtsp://10.0.0.5/stream1"),
        ("http://user@cam.local/mjpg", "http://cam.local/mjpg"),
        (0, "webcam:0"),
        ("/videos/a.mp4", "/videos/a.mp4"),
    ],
)
def test_stream_credentials_never_leave(source: str | int, shown: str) -> None:
    assert redact(source) == shown


# ----------------------------------------------------------------------------- stream probe


class TinyServer:
    """Accepts TCP connections and answers ``reply`` (or nothing at all when ``reply`` is None)."""

    def __init__(self, reply: bytes | None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.reply = reply
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            if self.reply is not None:
                conn.recv(4096)
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize(
    ("scheme", "reply", "problem"),
    [
        pytest.param("rtsp", None, "no answer within 0.3 s", id="rtsp: accepted, no data"),
        pytest.param("rtsp", b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n", None, id="rtsp: 401 is alive"),
        pytest.param("rtsp", b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n", None, id="rtsp: 200"),
        pytest.param("rtsp", b"SSH-2.0-OpenSSH\r\n", "not an RTSP server", id="rtsp: something else"),
        pytest.param("http", b"HTTP/1.0 200 OK\r\n\r\n", None, id="http: status line"),
        pytest.param("http", None, "no answer within 0.3 s", id="http: accepted, no data"),
    ],
)
def test_probe_finds_cameras_that_do_not_answer(scheme: str, reply: bytes | None, problem: str | None) -> None:
    server = TinyServer(reply)
    try:
        started = time.monotonic()
        found = probe_stream(f"{scheme}://user:pw@127.0.0.1:{server.port}/stream", timeout_s=0.3)
        assert time.monotonic() - started < 2
    finally:
        server.close()
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def test_probe_refused_and_unprobed_sources() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert "ConnectionRefusedError" in (probe_stream(f"rtsp://127.0.0.1:{port}/x", timeout_s=1) or "")
    assert probe_stream("/videos/clip.mp4") is None
    assert probe_stream(0) is None


def test_a_hanging_camera_does_not_hold_up_another_cameras_open(tmp_path: Path) -> None:
    """OpenCV opens streams under one process-wide lock; the probe keeps a silent camera out of it."""
    clip = make_test_video(tmp_path / "clip.mp4", seconds=1.0, size="160x120", fps=10)
    silent = TinyServer(None)
    hanging = CaptureThread("cam-h", f"rtsp://127.0.0.1:{silent.port}/x", FrameQueue(), sample_fps=2.0)
    good_queue = FrameQueue()
    good = CaptureThread("cam-g", str(clip), good_queue, sample_fps=2.0)
    try:
        hanging.start()
        time.sleep(0.3)  # the silent camera is mid-connect
        started = time.monotonic()
        good.start()
        deadline = started + 4
        while good_queue.put_count == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert good_queue.put_count > 0, "the good camera waited for the silent one"
        assert time.monotonic() - started < 3
    finally:
        for thread in (hanging, good):
            thread.stop()
        silent.close()
    assert good.join(3)
