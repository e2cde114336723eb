"""Decode-ahead thread: order, errors and lifetime, alone and inside a real audit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import detector.audit.runner as audit_module
from detector.audit.runner import AuditRequest, run_audit
from detector.model.wrapper import Detector, load_detector
from detector.video.prefetch import Prefetcher
from tests.conftest import make_test_video, run_cli
from tests.detector.scene_video import Thing, camera_yaml, scene_video
from zones.detections import Detections
from zones.errors import VideoError


def _decode_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("streetwatch-")]


@pytest.mark.parametrize("depth", [1, 2, 5])
@pytest.mark.parametrize("count", [0, 1, 7, 300])
def test_items_come_out_in_order(depth: int, count: int) -> None:
    with Prefetcher(range(count), depth=depth) as ahead:
        assert list(ahead) == list(range(count))
    assert not ahead.thread.is_alive()


class _Recorder:
    """A generator of items that fails after ``fail_after`` items and records where its ``finally`` ran."""

    def __init__(self, fail_after: int | None = None, error: BaseException | None = None) -> None:
        self.fail_after = fail_after
        self.error = error
        self.made = 0
        self.closed_in: str | None = None

    def items(self) -> Iterator[int]:
        try:
            while True:
                if self.fail_after is not None and self.made == self.fail_after:
                    assert self.error is not None
                    raise self.error
                self.made += 1
                yield self.made - 1
        finally:
            self.closed_in = threading.current_thread().name


@pytest.mark.parametrize(
    ("fail_after", "error"),
    [
        (0, VideoError("no frame could be decoded", file="clip.mp4")),
        (3, VideoError("no frame could be decoded", file="clip.mp4")),
        (5, ValueError("broken packet")),
        (2, MemoryError()),
    ],
)
def test_a_producer_error_surfaces_after_the_items_before_it(fail_after: int, error: BaseException) -> None:
    recorder = _Recorder(fail_after, error)
    received: list[int] = []
    with pytest.raises(type(error)) as raised, Prefetcher(recorder.items(), depth=2, name="streetwatch-test") as ahead:
        for item in ahead:
            received.append(item)
    assert raised.value is error
    assert received == list(range(fail_after))
    assert not ahead.thread.is_alive()
    assert recorder.closed_in == "streetwatch-test"


def _exhaust(ahead: Prefetcher[int]) -> None:
    for _ in ahead:
        pass


def _stop_early(ahead: Prefetcher[int]) -> None:
    for item in ahead:
        if item == 3:
            break


def _consumer_fails(ahead: Prefetcher[int]) -> None:
    for item in ahead:
        if item == 3:
            raise RuntimeError("pipeline bug")


def _interrupted(ahead: Prefetcher[int]) -> None:
    for item in ahead:
        if item == 3:
            raise KeyboardInterrupt


def _never_read(ahead: Prefetcher[int]) -> None:
    time.sleep(0.05)  # the producer fills the queue and blocks


@pytest.mark.parametrize(
    ("consume", "raises"),
    [
        (_exhaust, None),
        (_stop_early, None),
        (_consumer_fails, RuntimeError),
        (_interrupted, KeyboardInterrupt),
        (_never_read, None),
    ],
)
def test_the_thread_never_outlives_its_user(
    consume: Callable[[Prefetcher[int]], None], raises: type[BaseException] | None
) -> None:
    closed_in: list[str] = []

    def frames() -> Iterator[int]:
        try:
            yield from range(50)
        finally:
            closed_in.append(threading.current_thread().name)

    started = time.monotonic()
    try:
        with Prefetcher(frames(), depth=2, name="streetwatch-test") as ahead:
            consume(ahead)
    except BaseException as error:
        assert raises is not None and isinstance(error, raises)
    else:
        assert raises is None
    assert not ahead.thread.is_alive()
    # the generator was closed where it ran, so e.g. a video container is closed by its decoder
    assert closed_in == ["streetwatch-test"]
    assert time.monotonic() - started < 5


def test_the_producer_stays_at_most_depth_items_ahead() -> None:
    made: list[int] = []
    consumed_at: list[tuple[int, int]] = []

    def items() -> Iterator[int]:
        for i in range(40):
            made.append(i)
            yield i

    with Prefetcher(items(), depth=3) as ahead:
        for item in ahead:
            time.sleep(0.002)  # a slow consumer: the producer fills the queue
            consumed_at.append((item, len(made)))
    # the queue holds 3, the producer holds one more while it waits to put it
    assert all(count - item - 1 <= 3 + 1 for item, count in consumed_at)


@pytest.mark.parametrize("depth", [0, -1])
def test_depth_must_be_positive(depth: int) -> None:
    with pytest.raises(ValueError, match="depth"):
        Prefetcher(range(3), depth=depth)


def test_a_closed_prefetcher_cannot_be_iterated() -> None:
    ahead = Prefetcher(range(3))
    ahead.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(ahead)


# --- inside a real audit ---------------------------------------------------------------------


def _truncated(tmp_path: Path) -> Path:
    whole = make_test_video(tmp_path / "whole.mp4", seconds=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return cut


def _corrupt_middle(tmp_path: Path) -> Path:
    whole = make_test_video(tmp_path / "whole.mp4", seconds=10)
    data = bytearray(whole.read_bytes())
    start = len(data) // 3
    data[start : start + len(data) // 4] = bytes(len(data) // 4)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    return broken


def _whole(tmp_path: Path) -> Path:
    return scene_video(tmp_path / "whole.mp4", seconds=12, things=(Thing((300, 250, 360, 300), start=5.0),))


@pytest.mark.parametrize("make", [_whole, _truncated, _corrupt_middle])
def test_audit_with_and_without_the_thread_agree(
    tmp_path: Path, untrained_model: Path, make: Callable[[Path], Path]
) -> None:
    """Frames, detections, damage records: the decode-ahead thread changes nothing but the speed."""
    video = make(tmp_path)
    camera = camera_yaml(tmp_path / "camera.yaml")
    summaries = []
    for prefetch in (0, 2):
        out = tmp_path / f"out-{prefetch}"
        request = AuditRequest(videos=[video], camera=camera, out=out, model=untrained_model, progress=False)
        request.prefetch = prefetch
        summary = run_audit(request)
        alerts = (out / "alerts.jsonl").read_text(encoding="utf-8")
        timing = ("processing_s", "realtime_factor")
        summaries.append(({k: v for k, v in summary.items() if k not in timing}, alerts))
        assert _decode_threads() == []
    assert summaries[0] == summaries[1]
    errors = summaries[1][0]["errors"]
    if make is _whole:
        assert errors == []
    else:
        [error] = errors
        assert error["error"] in {"truncated", "corrupt"} and error["video"] == str(video)
        assert json.loads((tmp_path / "out-2" / "summary.json").read_text())["errors"] == errors


class _Interrupting:
    """The real detector, except that the user presses Ctrl-C during its ``calls``-th prediction."""

    def __init__(self, inner: Detector, calls: int) -> None:
        self._inner = inner
        self._calls = calls
        self.name, self.sha256 = inner.name, inner.sha256
        self.track_thresholds = inner.track_thresholds

    def predict(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        self._calls -= 1
        if self._calls == 0:
            raise KeyboardInterrupt
        return self._inner.predict(images)


def test_ctrl_c_during_an_audit_leaves_no_thread_behind(
    tmp_path: Path, untrained_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 3  # the warm-up, the first frame, then Ctrl-C while the thread decodes ahead

    def interrupting(model: Path | None, **kwargs: Any) -> _Interrupting:
        return _Interrupting(load_detector(untrained_model, **kwargs), calls)

    monkeypatch.setattr(audit_module, "load_detector", interrupting)
    video = scene_video(
        tmp_path / "clip.mp4", seconds=30, things=(Thing(lambda t: (int(20 * t), 200, int(20 * t) + 40, 300)),)
    )
    request = AuditRequest(
        videos=[video], camera=camera_yaml(tmp_path / "camera.yaml"), out=tmp_path / "out", progress=False
    )
    with pytest.raises(KeyboardInterrupt):
        run_audit(request)
    assert _decode_threads() == []


def _no_packets(tmp_path: Path) -> Path:
    """A video whose header is whole but whose data ends before the first packet: it opens, then
    the decoding thread finds no frame at all."""
    whole = make_test_video(tmp_path / "whole.mp4", seconds=4)
    data = whole.read_bytes()
    headless = tmp_path / "no-packets.mp4"
    headless.write_bytes(data[: data.index(b"mdat") + 4])
    return headless


def test_a_video_with_no_frame_is_still_an_input_error(tmp_path: Path, untrained_model: Path) -> None:
    video = _no_packets(tmp_path)
    camera = camera_yaml(tmp_path / "camera.yaml")
    request = AuditRequest(videos=[video], camera=camera, out=tmp_path / "out", model=untrained_model, progress=False)
    with pytest.raises(VideoError, match="no frame could be decoded"):
        run_audit(request)
    assert _decode_threads() == []
    done = run_cli("audit", video, "--camera", camera, "--out", tmp_path / "cli", "--model", untrained_model)
    assert done.returncode == 2
    assert "no frame could be decoded" in done.stderr and "no-packets.mp4" in done.stderr
    assert "Traceback" not in done.stderr
