"""Live capture: one thread per camera reads its stream and hands sampled frames to the analysis.

* Streams open with open and read timeouts, so a camera that accepts the connection and then sends
  nothing fails after seconds instead of hanging its thread (and the other cameras never wait on
  it: each has its own thread; FFmpeg runs without the GIL).
* Streams and files are read packet by packet with PyAV. While the stream's key frames come at
  least as often as the analysis needs a frame (an IP camera's GOP of 1-2 s against the default
  analysis every 2 s), only key frames are decoded: a 1080p25 camera then costs 0.023 core instead
  of the 0.11-0.14 that decoding every frame costs (bench/live_capacity.py). A stream with sparser key
  frames is switched, at its next key frame, to decoding every frame (so P-frames always have their
  references); the capture thread remembers that for its later connections.
* Only the frames due at the analysis rate are converted to pixels and queued.
* The queue is bounded and never blocks the capture thread: when the analysis falls behind, the
  oldest frame is dropped and counted (``frames_dropped``).
* A failed read is not a frame: nothing is queued on failure, no black or repeated frame. The
  thread releases the stream and reconnects as ``ReconnectPolicy`` allows.
* Files loop (for demos and tests) and are paced at their own frame rate; webcams open by index.

Each queued frame carries the wall-clock time at capture: that is the frame's timestamp in live
mode (DESIGN §2), from which the analysis derives the engine's seconds.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

from detector.video.watchdog import ReconnectPolicy

log = logging.getLogger("streetwatch.capture")

OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 5_000
QUEUE_FRAMES = 2
# Frames decoded from a file faster than this many seconds ahead of their time are paced.
_FILE_PACE_SLACK_S = 0.02


@dataclass(frozen=True, eq=False)
class CapturedFrame:
    index: int
    """Frames grabbed from this camera since the process started (the stream's frame count)."""
    captured_at: datetime
    """Wall-clock time of capture (aware, UTC)."""
    mono: float
    """Monotonic time of capture (for the watchdog)."""
    image: npt.NDArray[np.uint8]


class FrameQueue:
    """Bounded, thread-safe, drop-oldest: ``put`` never blocks; drops are counted."""

    def __init__(self, maxlen: int = QUEUE_FRAMES) -> None:
        if maxlen < 1:
            raise ValueError("a frame queue holds at least one frame")
        self._frames: deque[CapturedFrame] = deque()
        self._maxlen = maxlen
        self._lock = threading.Lock()
        self.dropped = 0
        self.put_count = 0
        self.on_put: Callable[[], None] | None = None
        """Called (outside the lock) after each put: wakes the analysis loop."""

    def put(self, frame: CapturedFrame) -> None:
        with self._lock:
            if len(self._frames) >= self._maxlen:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self.put_count += 1
        if self.on_put is not None:
            self.on_put()

    def take_latest(self) -> CapturedFrame | None:
        """The newest frame; older ones still queued were never analysed and count as dropped."""
        with self._lock:
            if not self._frames:
                return None
            latest = self._frames.pop()
            self.dropped += len(self._frames)
            self._frames.clear()
            return latest

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)


def redact(source: str | int) -> str:
    """A source for logs and records: the password of ``rtsp://user:pass@host`` never leaves."""
    if isinstance(source, int):
        return f"webcam:{source}"
    parts = urlsplit(source)
    if parts.password is None and parts.username is None:
        return source
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def is_file_source(source: str | int) -> bool:
    return isinstance(source, str) and "://" not in source


PROBE_TIMEOUT_S = 5.0


def probe_stream(source: str | int, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Whether a network camera answers at all: None when it does, else the reason.

    A camera that accepts the TCP connection and then says nothing would hold its capture thread
    inside FFmpeg's open for the whole open timeout (and, with OpenCV's FFmpeg backend, which opens
    every stream under one process-wide lock, every other camera too). A cheap request with its own
    short timeout finds such a camera first: RTSP ``DESCRIBE`` (any RTSP answer, 401 included, proves
    it alive) or an HTTP ``GET`` (any status line). Other sources (files, webcams, other schemes) are
    not probed.
    """
    if isinstance(source, int):
        return None
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme not in ("rtsp", "http", "https") or not parts.hostname:
        return None
    default_port = {"rtsp": 554, "http": 80, "https": 443}[scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        return "invalid port in the stream URL"
    target = redact(source)
    if scheme == "rtsp":
        request = (
            f"DESCRIBE {target} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n"
            "User-Agent: streetwatch\r\n\r\n"
        )
        expected = b"RTSP/"
    else:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nUser-Agent: streetwatch\r\n"
            "Connection: close\r\n\r\n"
        )
        expected = b"HTTP/"
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s) as raw:
            sock: socket.socket = raw
            if scheme == "https":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # liveness only; FFmpeg does the real session
                sock = context.wrap_socket(raw, server_hostname=parts.hostname)
            sock.sendall(request.encode("ascii", "replace"))
            answer = b""
            while len(answer) < len(expected):
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(64)
                if not chunk:
                    return "the server closed the connection without answering"
                answer += chunk
    except TimeoutError:
        return f"no answer within {timeout_s:g} s (connection accepted, no data)"
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
    if not answer.startswith(expected):
        return f"not an {expected.decode().rstrip('/')} server"
    return None


class VideoStream(Protocol):
    def isOpened(self) -> bool: ...
    def grab(self) -> bool: ...
    def retrieve(self) -> tuple[bool, Any]: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


Opener = Callable[[str | int], VideoStream]

KEYFRAME_GAP_TOLERANCE = 1.25
"""Key frames up to this many analysis intervals apart still feed the analysis at its rate."""
KEYFRAME_DUE_SLACK = 0.25
"""A key frame this fraction of an interval early is taken: key frames jitter around the due grid."""


class PacketStream:
    """A stream or file read with PyAV, one packet per ``grab``; decodes key frames only while they come
    at most ``max_keyframe_gap_s`` apart (``None``: decode every frame).

    ``grab`` reads one packet and decodes it if needed; ``has_picture`` says whether it produced a
    picture that ``retrieve`` can convert. In key-frame mode only key packets reach the decoder, each
    decoded and drained on its own. Once key frames come sparser than the gap (or none comes in twice
    the gap), the stream switches to decoding every frame at the next key frame, and stays so.
    """

    def __init__(
        self,
        source: str,
        *,
        max_keyframe_gap_s: float | None,
        open_timeout_s: float = OPEN_TIMEOUT_MS / 1000,
        read_timeout_s: float = READ_TIMEOUT_MS / 1000,
        mono_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import av

        options = {"rtsp_transport": "tcp"} if source.lower().startswith("rtsp") else {}
        self._av = av
        self.where = redact(source)
        self._mono = mono_clock
        self._container: Any = None
        self._picture: Any = None
        self.max_keyframe_gap_s = max_keyframe_gap_s
        self.keyframes_only = max_keyframe_gap_s is not None
        self._switch_at_key = False
        self._drained = False
        self.decode_errors = 0
        self.error: str | None = None
        """Why the stream did not open."""
        self.retry_soon = False
        """The server answered but was not ready (5xx): worth another try in a moment."""
        try:
            self._container = av.open(source, mode="r", options=options, timeout=(open_timeout_s, read_timeout_s))
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, OSError, ValueError, IndexError) as error:
            self.release()
            self.error = f"{type(error).__name__}: {error}"
            self.retry_soon = isinstance(error, av.error.HTTPServerError)
            return
        context = self._stream.codec_context
        # One decoding thread per camera: the cameras already run side by side, and frame threading
        # would hold pictures back by a frame per thread.
        context.thread_count = 1
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self._packets = self._container.demux(self._stream)
        self._last_key_mono = mono_clock()

    def isOpened(self) -> bool:
        return self._container is not None

    @property
    def switched_to_every_frame(self) -> bool:
        """Started on key frames only and found them too sparse."""
        return self.max_keyframe_gap_s is not None and not self.keyframes_only

    @property
    def has_picture(self) -> bool:
        return self._picture is not None

    def grab(self) -> bool:
        av = self._av
        self._picture = None
        if self._container is None:
            return False
        try:
            packet = next(self._packets)
        except (StopIteration, av.error.FFmpegError, OSError):
            return False
        if not packet.size:
            # The empty packet that ends the stream: what the decoder still holds (pictures it delays
            # to reorder B-frames) comes out now, once.
            if self._drained:
                return False
            self._drained = True
            return self._decoded(packet)
        key = bool(packet.is_keyframe)
        if self.keyframes_only:
            self._watch_keyframes(key)
        if self.keyframes_only:
            # Other frames never reach the decoder. Each key frame is decoded on its own and drained
            # at once: a decoder that reorders B-frames would otherwise hold its picture back until
            # frames that never come (a GOP or two late, stamped with the wrong capture time).
            return self._decoded(packet, drain=True) if key else True
        return self._decoded(packet)

    def _decoded(self, packet: Any, *, drain: bool = False) -> bool:
        context = self._stream.codec_context
        try:
            pictures = list(context.decode(packet))
            if drain:
                pictures += context.decode(None)
        except self._av.error.FFmpegError:
            # A damaged packet: no picture from it; later key frames decode again.
            self.decode_errors += 1
            pictures = []
        finally:
            if drain:
                context.flush_buffers()  # ready for the next key frame after the drain
        # A picture the decoder had to conceal is not one to judge a street by.
        good = [picture for picture in pictures if not picture.is_corrupt]
        self._picture = good[-1] if good else None
        return self._picture is not None or bool(packet.size)

    def _watch_keyframes(self, key: bool) -> None:
        assert self.max_keyframe_gap_s is not None
        now = self._mono()
        gap = now - self._last_key_mono
        if key:
            self._last_key_mono = now
            if self._switch_at_key or gap > self.max_keyframe_gap_s:
                self._decode_every_frame(gap)
        elif gap > 2 * self.max_keyframe_gap_s:
            self._decode_every_frame(gap)  # no key frame at all (intra refresh): decode what comes
        elif gap > self.max_keyframe_gap_s:
            self._switch_at_key = True

    def _decode_every_frame(self, gap: float) -> None:
        log.info(
            "capture.decode_every_frame source=%s key_frame_gap_s=%.1f max_s=%.1f",
            self.where,
            gap,
            self.max_keyframe_gap_s or 0.0,
        )
        self.keyframes_only = False

    def retrieve(self) -> tuple[bool, Any]:
        if self._picture is None:
            return False, None
        return True, self._picture.to_ndarray(format="bgr24")

    def get(self, prop: int) -> float:
        import cv2

        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        container, self._container = self._container, None
        self._picture = None
        if container is not None:
            container.close()


def open_stream(source: str | int, *, max_keyframe_gap_s: float | None = None) -> VideoStream:
    """Files and network streams through PyAV (key frames only when ``max_keyframe_gap_s`` is given);
    webcams through OpenCV."""
    if isinstance(source, int):
        import cv2

        return cv2.VideoCapture(source)
    return PacketStream(source, max_keyframe_gap_s=max_keyframe_gap_s)


def _name_os_thread(name: str) -> None:
    """Names the calling thread for the OS (``top -H``, /proc/…/task/*/comm; 15 bytes on Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


@dataclass
class CaptureStats:
    """Written by the capture thread, read by others (single assignments: safe under the GIL)."""

    connected: bool = False
    grabbed: int = 0
    last_grab_mono: float | None = None
    reconnects: int = 0
    last_error: str | None = None
    escalated: bool = False


class CaptureThread:
    """Reads one camera for ever (until ``stop``), reconnecting as the policy allows."""

    def __init__(
        self,
        camera_id: str,
        source: str | int,
        queue: FrameQueue,
        *,
        sample_fps: float,
        policy: ReconnectPolicy | None = None,
        opener: Opener | None = None,
        probe: Callable[[str | int], str | None] | None = probe_stream,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        mono_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.queue = queue
        self.interval_s = 1.0 / sample_fps
        self.policy = policy or ReconnectPolicy(clock=mono_clock)
        self.stats = CaptureStats()
        self._opener = opener or self._open_default
        self._every_frame = False
        """The stream's key frames proved too sparse once: later connections decode every frame at once."""
        self._probe = probe
        self._wall_clock = wall_clock
        self._mono = mono_clock
        self._stop = threading.Event()
        self._stream: VideoStream | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture-{camera_id}", daemon=True)
        self._index = 0
        self._next_due = 0.0

    def start(self) -> None:
        self._thread.start()

    def _open_default(self, source: str | int) -> VideoStream:
        gap = None if self._every_frame else self.interval_s * KEYFRAME_GAP_TOLERANCE
        return open_stream(source, max_keyframe_gap_s=gap)

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread; False when it is still inside a blocking open/read (it is a daemon)."""
        if self._thread.ident is None:
            return True  # never started (stopped before its camera began): nothing to wait for
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        _name_os_thread(f"capture-{self.camera_id}")
        where = redact(self.source)
        while not self._stop.is_set():
            delay = self.policy.delay()
            if delay > 0 and self._stop.wait(delay):
                break
            self.policy.attempt()
            log.info("capture.connecting camera=%s source=%s", self.camera_id, where)
            problem = self._probe(self.source) if self._probe is not None else None
            if problem is not None:
                self.stats.last_error = problem
                self._failed(where, "no answer")
                continue
            self.stats.last_error = None
            try:
                stream = self._opener(self.source)
            except Exception as error:  # OpenCV raises cv2.error for some malformed sources
                stream = None
                self.stats.last_error = f"{type(error).__name__}: {error}"
            if stream is None or not stream.isOpened():
                if stream is not None:
                    stream.release()
                self.stats.last_error = self.stats.last_error or getattr(stream, "error", None) or "cannot open stream"
                self._failed(where, "open failed", retry_soon=bool(getattr(stream, "retry_soon", False)))
                continue
            self._stream = stream
            self.stats.connected = True
            got_frame = self._read(stream)
            self._every_frame = self._every_frame or bool(getattr(stream, "switched_to_every_frame", False))
            stream.release()
            self._stream = None
            self.stats.connected = False
            if self._stop.is_set():
                break
            if got_frame and is_file_source(self.source):
                # End of a file: loop it at once, like a camera that never stops.
                self.policy.success()
                self.policy.last_attempt = None
                continue
            self.stats.reconnects += 1
            self._failed(where, "stream ended" if got_frame else "no frame")

    def _failed(self, where: str, what: str, *, retry_soon: bool = False) -> None:
        escalated = self.policy.failure(retry_soon=retry_soon)
        self.stats.escalated = self.policy.escalation > 0
        if escalated:
            log.error(
                "capture.escalated camera=%s source=%s failures=%d failing_s=%.0f next_attempt_s=%g error=%r",
                self.camera_id,
                where,
                self.policy.failures,
                self._mono() - (self.policy.failing_since or self._mono()),
                self.policy.interval_s,
                self.stats.last_error,
            )
        else:
            log.warning(
                "capture.failed camera=%s source=%s what=%r error=%r next_attempt_s=%.1f",
                self.camera_id,
                where,
                what,
                self.stats.last_error,
                self.policy.delay(),
            )

    def _read(self, stream: VideoStream) -> bool:
        """Grabs until the stream fails or stop; returns whether any frame came through."""
        import cv2

        pace_file = is_file_source(self.source)
        file_fps = stream.get(cv2.CAP_PROP_FPS) if pace_file else 0.0
        file_step = 1.0 / file_fps if pace_file and 0 < file_fps < 1000 else 0.04
        file_start = self._mono()
        frames_this_open = 0
        got_frame = False
        while not self._stop.is_set():
            if pace_file:
                due = file_start + frames_this_open * file_step
                wait = due - self._mono()
                if wait > _FILE_PACE_SLACK_S and self._stop.wait(wait):
                    break
            if not stream.grab():
                self.stats.last_error = "read failed or timed out"
                return got_frame
            now = self._mono()
            frames_this_open += 1
            self._index += 1
            # Key frames come when the camera sends them, not on our grid: one a little early is taken.
            slack = KEYFRAME_DUE_SLACK * self.interval_s if getattr(stream, "keyframes_only", False) else 1e-3
            if now + slack < self._next_due or not getattr(stream, "has_picture", True):
                self.stats.grabbed += 1
                self.stats.last_grab_mono = now
                continue
            ok, image = stream.retrieve()
            if not ok or image is None or getattr(image, "size", 0) == 0:
                self.stats.last_error = "decode failed"
                return got_frame
            if not got_frame:
                got_frame = True
                self.policy.success()
                self.stats.escalated = False
                self.stats.last_error = None
            self.stats.grabbed += 1
            self.stats.last_grab_mono = now
            # Due times advance on a fixed grid so the analysed rate does not drift; after a stall
            # the grid restarts from now rather than letting a burst of frames catch up.
            self._next_due += self.interval_s
            if self._next_due < now:
                self._next_due = now + self.interval_s
            self.queue.put(CapturedFrame(self._index - 1, self._wall_clock(), now, image))
        return got_frame
