"""Live capture decoding: key frames only while they come often enough, every frame otherwise."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.video.capture import CapturedFrame, CaptureThread, FrameQueue, PacketStream


def gop_clip(path: Path, *, frames: int, fps: int, gop: int, b_frames: int = 0) -> Path:
    """An H.264 clip with a key frame exactly every ``gop`` frames; frame i is grey level 30 + 5·(i mod 40)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.options = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "preset": "ultrafast",
            "bf": str(b_frames),
        }
        for index in range(frames):
            image = np.full((96, 160, 3), 30 + 5 * (index % 40), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def grey_index(image: Any) -> int:
    # The encoder's colour conversion darkens by about 3 grey levels.
    return round((float(np.mean(image)) - 27) / 5)


@pytest.mark.parametrize(
    ("gop", "max_keyframe_gap_s", "expected_pictures", "stays_keyframes_only"),
    [
        # 10 fps clip of 100 frames; the stream's clock advances 0.1 s per packet.
        pytest.param(10, None, 100, False, id="no-gap-given-decodes-every-frame"),
        pytest.param(10, 1.25, 10, True, id="1s-gop-within-gap-key-frames-only"),
        pytest.param(20, 2.5, 5, True, id="2s-gop-within-gap-key-frames-only"),
        # Key frames 4 s apart against a 2.5 s gap: the key frame at 4 s switches to every frame.
        pytest.param(40, 2.5, 1 + 60, False, id="4s-gop-beyond-gap-switches-at-next-key"),
    ],
)
def test_packet_stream_decodes_key_frames_while_they_are_dense_enough(
    tmp_path: Path, gop: int, max_keyframe_gap_s: float | None, expected_pictures: int, stays_keyframes_only: bool
) -> None:
    clip = gop_clip(tmp_path / "clip.mp4", frames=100, fps=10, gop=gop)
    ticks = itertools.count()
    stream = PacketStream(str(clip), max_keyframe_gap_s=max_keyframe_gap_s, mono_clock=lambda: next(ticks) / 10)
    assert stream.isOpened() and stream.fps == 10
    pictures: list[tuple[int, int]] = []
    for packet_index in itertools.count():
        if not stream.grab():
            break
        if stream.has_picture:
            ok, image = stream.retrieve()
            assert ok and image.shape == (96, 160, 3)
            pictures.append((packet_index, grey_index(image)))
    stream.release()
    assert len(pictures) == expected_pictures
    assert stream.keyframes_only is stays_keyframes_only
    # Every picture is the frame of its packet (no B-frames, one decoding thread: no delay).
    assert all(grey == index % 40 for index, grey in pictures), pictures[:5]
    if stays_keyframes_only:
        assert [index for index, _ in pictures] == list(range(0, 100, gop))


def test_key_frames_of_a_b_frame_stream_come_out_at_once(tmp_path: Path) -> None:
    """A decoder that reorders B-frames holds pictures back; key-frame mode drains each key frame at once,
    so its picture is ready at its own packet (and gets the right capture time)."""
    clip = gop_clip(tmp_path / "b.mp4", frames=100, fps=10, gop=20, b_frames=2)
    ticks = itertools.count()
    stream = PacketStream(str(clip), max_keyframe_gap_s=2.5, mono_clock=lambda: next(ticks) / 10)
    pictures = []
    packet_index = 0
    while stream.grab():
        if stream.has_picture:
            pictures.append((packet_index, grey_index(stream.retrieve()[1])))
        packet_index += 1
    stream.release()
    # The key frames are the packets 0, 20, 40, … in decoding order, each showing frame 0, 20, 40, …
    assert pictures == [(i, i % 40) for i in range(0, 100, 20)]


@pytest.mark.parametrize(
    ("source", "reason"),
    [("missing.mp4", "FileNotFoundError"), ("http://127.0.0.1:9/cam.h264", "Error")],
)
def test_packet_stream_that_cannot_open_says_why(tmp_path: Path, source: str, reason: str) -> None:
    stream = PacketStream(str(tmp_path / source) if "://" not in source else source, max_keyframe_gap_s=2.5)
    assert not stream.isOpened()
    assert stream.error is not None and reason in stream.error
    assert not stream.grab()


class RecordingQueue(FrameQueue):
    def __init__(self) -> None:
        super().__init__(1000)
        self.frames: list[CapturedFrame] = []

    def put(self, frame: CapturedFrame) -> None:
        self.frames.append(frame)
        super().put(frame)


@pytest.mark.parametrize(
    ("gop", "analysis_fps", "only_key_frames", "queued"),
    [
        # 50 fps file paced in real time: key frames every 0.5 s serve 2 fps analysis on their own.
        pytest.param(25, 2.0, True, (5, 8), id="gop-0.5s-analysis-2fps-key-frames"),
        # Key frames every 2 s cannot serve 2 fps: from the second key frame (at 2 s) on, every frame is
        # decoded and 2 fps kept (0, 2.0, 2.5, 3.0 s); before it only the first key frame had a picture.
        pytest.param(100, 2.0, False, (3, 5), id="gop-2s-analysis-2fps-every-frame"),
    ],
)
def test_capture_thread_queues_key_frames_at_the_analysis_rate(
    tmp_path: Path, gop: int, analysis_fps: float, only_key_frames: bool, queued: tuple[int, int]
) -> None:
    clip = gop_clip(tmp_path / "clip.mp4", frames=400, fps=50, gop=gop)
    queue = RecordingQueue()
    thread = CaptureThread("cam-x", str(clip), queue, sample_fps=analysis_fps, probe=None)
    thread.start()
    # 3.2 s of the paced 50 fps file (160 packets), however long the thread took to open it.
    deadline = time.monotonic() + 15
    while thread.stats.grabbed < 160 and time.monotonic() < deadline:
        time.sleep(0.01)
    # The OS sees the camera's name on its thread (top -H, the live capacity bench's CPU per thread).
    names = {path.read_text().strip() for path in Path("/proc/self/task").glob("*/comm")}
    assert "capture-cam-x" in names
    thread.stop()
    assert thread.join(5.0)
    frames = queue.frames
    assert queued[0] <= len(frames) <= queued[1], f"{len(frames)} frames queued in 3.2 s at {analysis_fps} fps"
    assert thread.stats.grabbed >= 140
    if only_key_frames:
        # Each queued picture is a key frame (its packet index a multiple of the GOP) and shows that frame.
        assert all(f.index % gop == 0 for f in frames)
        assert all(grey_index(f.image) == f.index % 40 for f in frames)
    else:
        assert any(f.index % gop for f in frames), "frames between key frames were decoded"
        assert all(grey_index(f.image) == f.index % 40 for f in frames), "and are the frames they claim to be"
