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
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from zones.errors import VideoError

if TYPE_CHECKING:
    import av

# Guard OpenCV's image decoder against decompression bombs (a 20000×20000 PNG is refused).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(8192 * 8192))

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MAX_FRAME_PIXELS = 8192 * 8192
DEFAULT_SAMPLE_FPS = 1.0
"""Analysed frames per second of recorded video when the command line gives no rate."""
# A video is "whole" when it yields at least this fraction of its announced frames; container
# headers round durations, so demanding every last frame would call sound files truncated.
WHOLE_FRACTION = 0.98


@dataclass(frozen=True, eq=False)
class Frame:
    index: int
    t: float
    image: npt.NDArray[np.uint8]
    after_damage: bool = False
    """Damaged data lies between the previous frame yielded and this one: nothing may be carried across it."""


@dataclass
class SourceReport:
    """What a source read; ``error`` is set when the input broke part-way."""

    frames_read: int = 0
    frames_expected: int | None = None
    frames_sampled: int = 0
    last_t: float = 0.0
    error: str | None = None
    detail: str | None = None
    damage_t: float | None = None  # video time of the first damage (seconds), once met
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
        self.window: tuple[float, float] | None = None
        """Only frames with ``start <= t < end`` (seconds from the first frame) are yielded; the frames
        before are sampled but not decoded where they need not be, so that the sampling matches a
        reading of the whole file (one segment of a long video audited on its own)."""
        self._stopped_at_window_end = False
        if not path.exists():
            raise VideoError("file not found", file=str(path))
        if not path.is_file():
            raise VideoError("not a regular file", file=str(path))
        if path.stat().st_size == 0:
            raise VideoError("cannot open video: the file is empty (0 bytes)", file=str(path))
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

    def close(self) -> None:
        self._container.close()

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
        key_sampler = Sampler(self.sample_fps) if self.keyframes_only and self.sample_fps else None
        stream = self._stream
        if self.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
            # Frame threading hands every packet to a worker thread, also the non-key ones the decoder
            # then drops: at 1080p25 that hand-off cost as much as decoding the key frames (0.67 s vs
            # 0.42 s for 120 s of video, bench clip). Those packets must still reach the decoder, which
            # is how damage between key frames is noticed (tests/detector/test_prefetch.py).
            stream.thread_type = "SLICE"
        self._time_base = stream.time_base or Fraction(1, 90_000)
        self._start_pts: int | None = None
        self._key_origin: int | None = None
        self._index = -1
        self._last_packet_t = 0.0
        self._cut_off = False  # the last packet with data was incomplete: the file ends mid-packet
        self._unreported_damage = False
        try:
            for packet in self._container.demux(stream):
                if packet.size:  # the last, empty packet only flushes the decoder
                    self.report.frames_read += 1
                    if packet.is_corrupt:
                        # A cut-off packet (truncated file). Decoding it would fail, and with frame
                        # threading that failure also discards the frames still queued in the decoder,
                        # i.e. the last few seconds before the damage point.
                        self._damage(self._packet_t(packet), "incomplete packet")
                        self._cut_off = True
                        continue
                    self._cut_off = False
                    if self._start_pts is None and self.window is not None:
                        # Frames before the window are not all decoded: time is counted from the first
                        # packet, the first frame of the file, as a reading of the whole file counts it.
                        self._start_pts = packet.pts if packet.pts is not None else packet.dts
                    packet_t = self._packet_t(packet)
                    self._last_packet_t = max(self._last_packet_t, packet_t)
                    if self.window is not None and packet_t >= self.window[1]:
                        self._stopped_at_window_end = True
                        break
                    if key_sampler is not None and packet.is_keyframe and not self._take_key(key_sampler, packet):
                        # A key frame the sampling stride passes over: not worth its decoding (about
                        # 10 ms at 1080p). Key frames decode on their own, so skipping one harms none.
                        # (Chosen by packet: with frame threading the decoder's output lags behind.)
                        continue
                    if self.keyframes_only and self.window is not None and packet_t < self.window[0] - 1e-3:
                        # Sampled as a whole reading samples it (the stride keeps its phase), but not decoded.
                        sampler.take(packet_t)
                        continue
                yield from self._sampled(self._decode(packet), sampler)
            if self._stopped_at_window_end:
                yield from self._sampled(self._decode(None), sampler)
        except av.error.FFmpegError as error:
            # The demuxer gave up part-way; frames already inside the decoder are still good.
            self._damage(self.report.last_t, _reason(error))
            yield from self._sampled(self._decode(None), sampler)
        finally:
            self._container.close()
        self._judge()

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        import av

        try:
            if packet is None:
                return list(self._stream.decode(None))
            return list(packet.decode())  # type: ignore[arg-type]
        except av.error.FFmpegError as error:
            # Corrupt packets: keep going, later key frames decode again.
            t = self._packet_t(packet) if packet is not None else self.report.last_t
            self._damage(t, _reason(error))
            return []

    def _sampled(self, decoded: list[av.VideoFrame], sampler: Sampler) -> Iterator[Frame]:
        for frame in decoded:
            pts = frame.pts if frame.pts is not None else frame.dts
            if pts is None:
                self._index += 1
                t = self._index / self.fps
            else:
                self._start_pts = pts if self._start_pts is None else self._start_pts
                t = float((pts - self._start_pts) * self._time_base)
                self._index = round(t * self.fps)
            t = max(t, self.report.last_t)
            if self.window is not None and not self.window[0] - 1e-3 <= t < self.window[1]:
                sampler.take(t)  # outside the window: sampled (same phase as a whole reading), not yielded
                continue
            if frame.is_corrupt:
                # The decoder concealed damaged data (smeared blocks): not a picture to judge a street by.
                self._damage(t, "damaged frame")
                continue
            self.report.last_t = t
            if sampler.take(t):
                self.report.frames_sampled += 1
                image: npt.NDArray[np.uint8] = frame.to_ndarray(format="bgr24")  # type: ignore[assignment]
                yield Frame(index=self._index, t=t, image=image, after_damage=self._unreported_damage)
                self._unreported_damage = False

    def _take_key(self, key_sampler: Sampler, packet: av.Packet) -> bool:
        """Whether the sampler takes this key packet, timed from the first key packet as the frames are
        timed from the first frame (which is that key frame), whatever the container's start time."""
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            return True
        if self._key_origin is None:
            self._key_origin = pts
        return key_sampler.take(float((pts - self._key_origin) * self._time_base))

    def _packet_t(self, packet: av.Packet) -> float:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            return self.report.last_t
        return max(0.0, float((pts - (self._start_pts or 0)) * self._time_base))

    def _damage(self, t: float, reason: str) -> None:
        """Records damage as soon as it is met, so a reader that stops early still sees it."""
        report = self.report
        if report.damage_t is None:
            report.damage_t = round(t, 3)
        report.problems.append(f"{t:.1f} s: {reason}")
        report.error = report.error or "corrupt"
        report.detail = self._damage_detail()
        self._unreported_damage = True

    def _damage_detail(self) -> str:
        problems = self.report.problems
        first = f"first at {self.report.damage_t:g} s" if self.report.damage_t is not None else ""
        return f"{len(problems)} damaged packet(s) or frame(s), {first} ({'; '.join(problems[:3])})"

    def _judge(self) -> None:
        report = self.report
        if self._stopped_at_window_end:
            return  # the rest of the file is another segment's: nothing to judge it by here
        if report.frames_read == 0 or (report.frames_sampled == 0 and report.problems):
            raise VideoError(
                f"no frame could be decoded ({'; '.join(report.problems[:3]) or 'empty stream'})",
                file=str(self.path),
            )
        expected = report.frames_expected
        short = expected and report.frames_read < math.floor(expected * WHOLE_FRACTION) - 1
        if short or (self._cut_off and expected and report.frames_read < expected):
            report.error = "truncated"
            end_t = round(max(report.last_t, self._last_packet_t), 3)
            report.damage_t = end_t if report.damage_t is None else min(report.damage_t, end_t)
            report.detail = f"decoded {report.frames_read} of {expected} frames; the data breaks off at {end_t:g} s"
        elif report.problems:
            report.error = "corrupt"
            report.detail = self._damage_detail()


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
        # The frame size comes from the first image that decodes: one corrupt image at the start must not
        # stop the audit of the rest (it is reported as damage when the frames are read).
        first = next((image for image in map(self._read, self.files) if image is not None), None)
        if first is None:
            raise VideoError(
                "cannot decode the first image (corrupt, or over the decoder's pixel limit)", file=str(self.files[0])
            )
        self.height, self.width = first.shape[:2]
        self.duration_s = len(self.files) / self.fps

    def close(self) -> None:
        """Nothing stays open between images."""

    def _read(self, file: Path) -> npt.NDArray[np.uint8] | None:
        """Decodes one image; None when it is corrupt or larger than OPENCV_IO_MAX_IMAGE_PIXELS allows."""
        try:
            image = self._cv2.imread(str(file), self._cv2.IMREAD_COLOR)
        except self._cv2.error:  # OpenCV refuses decompression bombs with an exception
            return None
        return None if image is None else np.asarray(image, dtype=np.uint8)

    def frames(self) -> Iterator[Frame]:
        damaged = False
        for index, file in enumerate(self.files):
            t = index / self.fps
            image = self._read(file)
            if image is None or image.shape[:2] != (self.height, self.width):
                self.report.problems.append(f"{file.name}: unreadable or of another size")
                self.report.damage_t = t if self.report.damage_t is None else self.report.damage_t
                self.report.error = "corrupt"
                self.report.detail = "; ".join(self.report.problems[:5])
                damaged = True
                continue
            self.report.frames_read += 1
            self.report.frames_sampled += 1
            self.report.last_t = t
            yield Frame(index=index, t=t, image=image, after_damage=damaged)
            damaged = False


KEYFRAME_MAX_INTERVAL_S = 4.0
"""Key frames at most this far apart are dense enough to audit on their own (violations last minutes)."""


def open_source(path: Path, *, sample_fps: float | None) -> VideoFile | ImageFolder:
    if path.is_dir():
        return ImageFolder(path, sample_fps=sample_fps)
    return VideoFile(path, sample_fps=sample_fps)


def check_readable(path: Path) -> None:
    """Opens ``path`` as ``open_source`` does, and closes it: an unusable input fails before the model loads."""
    open_source(path, sample_fps=None).close()


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
