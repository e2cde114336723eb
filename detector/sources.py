"""Frame sources for audits: video files (PyAV/FFmpeg) and image folders.

Timestamps come from the container (``pts × time_base``), not frame index ÷ nominal fps. Only
sampled frames are converted to pixels; the rest are decoded and dropped, which is what makes
sampling cheap. Damage is reported, never hidden: a video that breaks part-way ends the iteration
with ``report.error = "truncated"`` (DESIGN §3.4b).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt

from zones.errors import VideoError

# Guard OpenCV's image decoder against decompression bombs (a 20000×20000 PNG is refused).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(8192 * 8192))

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MAX_FRAME_PIXELS = 8192 * 8192
# A video is "whole" when it yields at least this fraction of its announced frames; container
# headers round durations, so demanding every last frame would call sound files truncated.
WHOLE_FRACTION = 0.98


@dataclass(frozen=True, eq=False)
class Frame:
    index: int
    t: float
    image: npt.NDArray[np.uint8]


@dataclass
class SourceReport:
    """What a source read; ``error`` is set when the input broke part-way."""

    frames_read: int = 0
    frames_expected: int | None = None
    frames_sampled: int = 0
    last_t: float = 0.0
    error: str | None = None
    detail: str | None = None
    problems: list[str] = field(default_factory=list)


class Sampler:
    """Chooses frames at ``sample_fps`` from their timestamps (``None`` keeps every frame)."""

    def __init__(self, sample_fps: float | None) -> None:
        self.interval = 0.0 if not sample_fps else 1.0 / sample_fps
        self._next_t = -math.inf

    def take(self, t: float) -> bool:
        # A small tolerance so 25 fps timestamps like 0.9999 still land on the 1 s grid.
        if t + 1e-3 < self._next_t:
            return False
        base = self._next_t if self._next_t != -math.inf else t
        steps = 1 if self.interval == 0 else max(1, math.floor((t - base) / self.interval + 1e-6) + 1)
        self._next_t = base + steps * self.interval
        return True


class VideoFile:
    """A video file opened with PyAV; ``frames()`` yields sampled frames in time order.

    With ``keyframes_only`` only key frames are decoded (FFmpeg skips the rest without decoding),
    about ten times faster than decoding every frame; packets are still counted, so truncation is
    still detected.
    """

    def __init__(self, path: Path, *, sample_fps: float | None, keyframes_only: bool = False) -> None:
        import av

        self.path = path
        self.uri = str(path)
        self.sample_fps = sample_fps
        self.keyframes_only = keyframes_only
        self.report = SourceReport()
        if not path.exists():
            raise VideoError("file not found", file=str(path))
        if not path.is_file():
            raise VideoError("not a regular file", file=str(path))
        try:
            self._container = av.open(str(path), mode="r", timeout=10.0)
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoError(f"cannot open video: {_reason(error)}", file=str(path)) from None
        format_name = self._container.format.name
        if format_name == "image2" or format_name.endswith("_pipe"):
            self._container.close()
            # FFmpeg opens a lone picture as a one-frame "video"; an audit of it would be meaningless.
            raise VideoError(f"this is a still image ({format_name}), not a video", file=str(path))
        if not self._container.streams.video:
            self._container.close()
            raise VideoError("no video stream in the file", file=str(path))
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        ctx = self._stream.codec_context
        self.width = int(ctx.width or 0)
        self.height = int(ctx.height or 0)
        if self.width <= 0 or self.height <= 0 or self.width * self.height > MAX_FRAME_PIXELS:
            self._container.close()
            raise VideoError(f"unusable frame size {self.width}x{self.height}", file=str(path))
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.duration_s = self._duration()
        self.report.frames_expected = self._expected_frames()

    def _duration(self) -> float | None:
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if self._container.duration is not None:
            return float(self._container.duration) / 1_000_000
        return None

    def _expected_frames(self) -> int | None:
        if self._stream.frames:
            return int(self._stream.frames)
        if self.duration_s:
            return round(self.duration_s * self.fps)
        return None

    def keyframe_interval_s(self, probe_s: float = 30.0) -> float | None:
        """Median seconds between key frames over the first ``probe_s`` (demuxing only), or None."""
        stream = self._stream
        time_base = float(stream.time_base or Fraction(1, 90_000))
        keys: list[float] = []
        try:
            for packet in self._container.demux(stream):
                if packet.pts is None:
                    continue
                t = packet.pts * time_base
                if packet.is_keyframe:
                    keys.append(t)
                if len(keys) >= 6 or (keys and t - keys[0] > probe_s):
                    break
            self._container.seek(0, stream=stream)
        except Exception:  # an unseekable or broken file: decode it the ordinary way
            return None
        gaps = sorted(b - a for a, b in itertools.pairwise(keys))
        return gaps[len(gaps) // 2] if gaps else None

    def frames(self) -> Iterator[Frame]:
        import av

        sampler = Sampler(self.sample_fps)
        stream = self._stream
        if self.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        time_base = stream.time_base or Fraction(1, 90_000)
        start_pts: int | None = None
        index = -1
        try:
            for packet in self._container.demux(stream):
                if packet.size:  # the last, empty packet only flushes the decoder
                    self.report.frames_read += 1
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as error:
                    # Corrupt packets: keep going, the frame count will tell whether data was lost.
                    self.report.problems.append(_reason(error))
                    continue
                for frame in decoded:
                    pts = frame.pts if frame.pts is not None else frame.dts
                    if pts is None:
                        index += 1
                        t = index / self.fps
                    else:
                        start_pts = pts if start_pts is None else start_pts
                        t = float((pts - start_pts) * time_base)
                        index = round(t * self.fps)
                    t = max(t, self.report.last_t)
                    self.report.last_t = t
                    if sampler.take(t):
                        self.report.frames_sampled += 1
                        image: npt.NDArray[np.uint8] = frame.to_ndarray(format="bgr24")  # type: ignore[assignment]
                        yield Frame(index=index, t=t, image=image)
        except av.error.FFmpegError as error:
            self.report.problems.append(_reason(error))
        finally:
            self._container.close()
        self._judge()

    def _judge(self) -> None:
        report = self.report
        if report.frames_read == 0:
            raise VideoError(
                f"no frame could be decoded ({'; '.join(report.problems[:3]) or 'empty stream'})",
                file=str(self.path),
            )
        expected = report.frames_expected
        if expected and report.frames_read < math.floor(expected * WHOLE_FRACTION) - 1:
            report.error = "truncated"
            report.detail = f"decoded {report.frames_read} of {expected} frames"
        elif report.problems:
            report.error = "corrupt"
            report.detail = f"{len(report.problems)} undecodable packets"


class ImageFolder:
    """A folder of still images in name order, one every ``1 / sample_fps`` seconds (default 1 s)."""

    def __init__(self, path: Path, *, sample_fps: float | None) -> None:
        import cv2

        self._cv2 = cv2
        self.path = path
        self.uri = str(path)
        self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise VideoError("image folder holds no images", file=str(path))
        self.fps = sample_fps or 1.0
        self.sample_fps = sample_fps
        self.report = SourceReport(frames_expected=len(self.files))
        first = self._read(self.files[0])
        if first is None:
            raise VideoError(
                "cannot decode the first image (corrupt, or over the decoder's pixel limit)", file=str(self.files[0])
            )
        self.height, self.width = first.shape[:2]
        self.duration_s = len(self.files) / self.fps

    def _read(self, file: Path) -> npt.NDArray[np.uint8] | None:
        """Decodes one image; None when it is corrupt or larger than OPENCV_IO_MAX_IMAGE_PIXELS allows."""
        try:
            image = self._cv2.imread(str(file), self._cv2.IMREAD_COLOR)
        except self._cv2.error:  # OpenCV refuses decompression bombs with an exception
            return None
        return None if image is None else np.asarray(image, dtype=np.uint8)

    def frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            t = index / self.fps
            image = self._read(file)
            if image is None or image.shape[:2] != (self.height, self.width):
                self.report.problems.append(f"{file.name}: unreadable or of another size")
                self.report.error = "corrupt"
                self.report.detail = "; ".join(self.report.problems[:5])
                continue
            self.report.frames_read += 1
            self.report.frames_sampled += 1
            self.report.last_t = t
            yield Frame(index=index, t=t, image=image)


KEYFRAME_MAX_INTERVAL_S = 4.0
"""Key frames at most this far apart are dense enough to audit on their own (violations last minutes)."""


def open_source(path: Path, *, sample_fps: float | None) -> VideoFile | ImageFolder:
    if path.is_dir():
        return ImageFolder(path, sample_fps=sample_fps)
    return VideoFile(path, sample_fps=sample_fps)


def open_fast_source(path: Path, *, fallback_fps: float) -> VideoFile | ImageFolder:
    """The default audit path: key frames only where they are dense enough, else ``fallback_fps``."""
    if path.is_dir():
        return ImageFolder(path, sample_fps=None)
    video = VideoFile(path, sample_fps=fallback_fps)
    interval = video.keyframe_interval_s()
    if interval is not None and 0 < interval <= KEYFRAME_MAX_INTERVAL_S:
        video.keyframes_only = True
        video.sample_fps = None
    return video


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.strip().rstrip(".") or type(error).__name__
