"""Evidence for alerts: annotated and clean snapshots, short clips, and their SHA-256 (DESIGN §3.1, §3.4).

Layout inside an audit directory::

    evidence/<alert id>/snapshot.jpg        box, zone outline and label drawn
    evidence/<alert id>/snapshot_clean.jpg  the untouched frame (what the camera saw)
    evidence/<alert id>/clip.mp4            ~clip_before_s before the alert to ~clip_after_s after it
    evidence/<alert id>/snapshot_after.jpg  the place when the incident closed

Every file is written under a temporary name and renamed into place, so a file that exists under
its final name is complete; its SHA-256 goes into the alert record and ``verify_evidence`` checks
it later (tampering, lost files).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import av
import cv2
import numpy as np
from av.error import FFmpegError
from pydantic import ValidationError

from zones.alert import AlertRecord, EvidenceItem

log = logging.getLogger(__name__)

EVIDENCE_DIR = "evidence"
ALERTS_FILE = "alerts.jsonl"

# Alert ids and evidence kinds become path components: refuse anything that could escape the
# evidence directory or be awkward on a file system.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# BGR colours for drawing (OpenCV order).
_BOX_COLOUR = (40, 40, 230)
_ZONE_COLOUR = (0, 215, 255)
_TEXT_COLOUR = (255, 255, 255)

# Clip time base: milliseconds, so presentation times follow the frame timestamps exactly even when
# the analysed rate is irregular (sampling, dropped frames, ring thinning).
_CLIP_TIME_BASE = Fraction(1, 1000)
_DEFAULT_CLIP_FPS = 5.0


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lower-case hex SHA-256 of a file, read in chunks (clips can be large)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check_name(value: str, what: str) -> str:
    if not _SAFE_NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a safe file name ([A-Za-z0-9._-], max 128 characters)")
    return value


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    """Accept grey, BGR and BGRA frames; everything downstream draws and encodes BGR."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame if frame.dtype == np.uint8 else np.clip(frame, 0, 255).astype(np.uint8)
    raise ValueError(f"expected a grey, BGR or BGRA image, got an array of shape {frame.shape}")


def downscale(frame: np.ndarray, max_width: int) -> np.ndarray:
    """Return the frame at most ``max_width`` pixels wide (aspect kept); a new array either way."""
    height, width = frame.shape[:2]
    if width <= max_width:
        return frame.copy()
    new_height = max(1, round(height * max_width / width))
    return cv2.resize(frame, (max_width, new_height), interpolation=cv2.INTER_AREA)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a crash leaves the old file or none)."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


@dataclass(frozen=True, slots=True)
class RingFrame:
    t: float
    index: int
    image: np.ndarray


class FrameRing:
    """A bounded buffer of recently analysed frames, so an alert's clip can begin before the alert.

    Memory bound: at most ``max_frames`` images and at most ``max_bytes`` bytes of pixels, each image
    at most ``max_width`` pixels wide (BGR uint8), i.e. never more than ``max_bytes`` plus one frame
    (defaults: 96 MiB; a 960x540 frame is 1.5 MiB). Frames older than ``max_seconds`` before the
    newest one are dropped. When a high analysed rate would exceed the frame or byte limit, the ring
    thins itself evenly (it drops the interior frame whose neighbours are closest in time) instead
    of dropping the oldest, so it still spans ``max_seconds`` at a lower frame rate.
    """

    def __init__(
        self,
        *,
        max_seconds: float = 6.0,
        max_frames: int = 150,
        max_bytes: int = 96 * 1024 * 1024,
        max_width: int = 960,
    ) -> None:
        if max_seconds <= 0 or max_frames < 1 or max_bytes < 1 or max_width < 16:
            raise ValueError("FrameRing limits must be positive (max_width at least 16)")
        self.max_seconds = max_seconds
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.max_width = max_width
        self._frames: deque[RingFrame] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        """Bytes of pixel data held now."""
        return self._bytes

    @property
    def span_s(self) -> float:
        """Seconds between the oldest and the newest frame held."""
        return self._frames[-1].t - self._frames[0].t if self._frames else 0.0

    def clear(self) -> None:
        self._frames.clear()
        self._bytes = 0

    def push(self, t: float, index: int, frame_bgr: np.ndarray) -> None:
        """Keep a downscaled copy of an analysed frame (the caller may reuse its buffer)."""
        if self._frames and t < self._frames[-1].t:
            # Time went backwards: the next video of an audit began. Its frames must not mix with
            # the previous video's in a clip.
            self.clear()
        image = downscale(_as_bgr(frame_bgr), self.max_width)
        self._frames.append(RingFrame(t=float(t), index=int(index), image=image))
        self._bytes += image.nbytes
        self._evict()

    def frames(self, since: float | None = None) -> list[tuple[float, np.ndarray]]:
        """``(t, image)`` pairs, oldest first, optionally only those with ``t >= since``."""
        return [(f.t, f.image) for f in self._frames if since is None or f.t >= since]

    def items(self) -> list[RingFrame]:
        return list(self._frames)

    def _drop(self, position: int) -> None:
        dropped = self._frames[position]
        del self._frames[position]
        self._bytes -= dropped.image.nbytes

    def _evict(self) -> None:
        newest = self._frames[-1].t
        # Compare spans (newest - oldest), not shifted times: `newest - max_seconds` rounds and
        # could keep a frame whose span is a hair over the window.
        while self._frames and newest - self._frames[0].t > self.max_seconds:
            self._drop(0)
        while len(self._frames) > self.max_frames or (self._bytes > self.max_bytes and len(self._frames) > 1):
            if len(self._frames) <= 2:
                self._drop(0)
                continue
            times = [f.t for f in self._frames]
            # Interior frame i whose removal leaves the smallest gap t[i+1] - t[i-1]; ties go to
            # the oldest, so the recent past stays densest.
            victim = min(range(1, len(times) - 1), key=lambda i: (times[i + 1] - times[i - 1], i))
            self._drop(victim)


@lru_cache(maxsize=1)
def clip_codec() -> str:
    """The encoder used for clips: H.264 (libx264) when PyAV's FFmpeg has it, else MPEG-4 part 2."""
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises different error types per version for unknown codecs
            continue
        return name
    raise RuntimeError("PyAV's FFmpeg has neither libx264 nor mpeg4 encoders")


def _even(value: int) -> int:
    # yuv420p needs even dimensions.
    return max(2, value - value % 2)


class _Clip:
    """One clip being encoded incrementally, so memory stays one frame per open clip."""

    def __init__(self, path: Path, alert_t: float | None, fps: float, max_width: int) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.alert_t = alert_t
        self.fps = fps
        self.max_width = max_width
        self.container: Any = None
        self.stream: Any = None
        self.size: tuple[int, int] | None = None
        self.t0: float | None = None
        self.last_t: float | None = None
        self.last_pts = -1
        self.frames_written = 0
        self.failed: str | None = None

    def _open(self, width: int, height: int) -> None:
        codec = clip_codec()
        self.container = av.open(str(self.part), mode="w", format="mp4", options={"movflags": "+faststart"})
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self.container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = _CLIP_TIME_BASE
        stream.codec_context.time_base = _CLIP_TIME_BASE
        if codec == "libx264":
            # veryfast/crf 26: evidence must be legible, not archival, and encoding shares the
            # CPU with the model.
            stream.options = {"preset": "veryfast", "crf": "26"}
        else:
            stream.bit_rate = 2_000_000
        self.stream = stream
        self.size = (width, height)

    def add(self, t: float, frame: np.ndarray) -> None:
        if self.failed is not None:
            return
        if self.last_t is not None and t <= self.last_t:
            return  # repeated or out-of-order timestamp: a clip's time only moves forward
        try:
            image = downscale(_as_bgr(frame), self.max_width)
            if self.size is None:
                height, width = image.shape[:2]
                self._open(_even(width), _even(height))
            assert self.size is not None
            if (image.shape[1], image.shape[0]) != self.size:
                # The source changed resolution mid-clip (stream renegotiation): fit the new frame
                # into the clip's size rather than lose the rest of the evidence.
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            if self.t0 is None:
                self.t0 = t
            pts = max(round((t - self.t0) / _CLIP_TIME_BASE), self.last_pts + 1)
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            video_frame.pts = pts
            video_frame.time_base = _CLIP_TIME_BASE
            for packet in self.stream.encode(video_frame):
                self.container.mux(packet)
            self.last_pts = pts
            self.last_t = t
            self.frames_written += 1
        except (FFmpegError, OSError, ValueError, cv2.error) as error:
            log.warning("evidence clip %s: encoding stopped: %s", self.path, error)
            self.failed = str(error)

    def close(self) -> bool:
        """Flush and close; True when a playable file with at least one frame is in place."""
        ok = self.frames_written > 0
        if self.container is not None:
            try:
                if self.stream is not None:
                    for packet in self.stream.encode():
                        self.container.mux(packet)
            except (FFmpegError, OSError, ValueError) as error:
                log.warning("evidence clip %s: flushing failed: %s", self.path, error)
            try:
                self.container.close()
            except (FFmpegError, OSError, ValueError) as error:
                log.warning("evidence clip %s: closing failed: %s", self.path, error)
                ok = False
            self.container = None
        if ok and self.part.exists():
            os.replace(self.part, self.path)
            return True
        self.part.unlink(missing_ok=True)
        return False


def _ascii(text: str) -> str:
    # OpenCV's Hershey fonts only draw ASCII; replace the rest rather than draw garbage.
    return text.encode("ascii", "replace").decode("ascii")


def draw_annotations(
    frame_bgr: np.ndarray,
    *,
    bbox: Sequence[float] | None,
    label: str,
    zone_polygon_px: np.ndarray | None,
) -> np.ndarray:
    """A copy of the frame with the zone (translucent fill and outline), the box and the label drawn."""
    image = _as_bgr(frame_bgr).copy()
    height, width = image.shape[:2]
    thickness = max(2, round(width / 500))
    if zone_polygon_px is not None and len(zone_polygon_px) >= 3:
        points = np.round(np.asarray(zone_polygon_px, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
        overlay = image.copy()
        cv2.fillPoly(overlay, [points], _ZONE_COLOUR)
        cv2.addWeighted(overlay, 0.18, image, 0.82, 0, dst=image)
        cv2.polylines(image, [points], True, _ZONE_COLOUR, thickness, lineType=cv2.LINE_AA)
    if bbox is not None:
        x1, y1, x2, y2 = (round(float(v)) for v in bbox)
        x1, x2 = sorted((min(max(x1, 0), width - 1), min(max(x2, 0), width - 1)))
        y1, y2 = sorted((min(max(y1, 0), height - 1), min(max(y2, 0), height - 1)))
        cv2.rectangle(image, (x1, y1), (x2, y2), _BOX_COLOUR, thickness, lineType=cv2.LINE_AA)
        text = _ascii(label).strip()
        if text:
            font = cv2.FONT_HERSHEY_SIMPLEX
            scale = max(0.5, width / 1600)
            text_thickness = max(1, round(scale * 1.6))
            (text_w, text_h), baseline = cv2.getTextSize(text, font, scale, text_thickness)
            pad = max(3, text_h // 3)
            box_h = text_h + baseline + 2 * pad
            # Above the box when there is room, otherwise inside its top edge.
            top = y1 - box_h if y1 - box_h >= 0 else y1
            left = min(x1, max(0, width - text_w - 2 * pad))
            cv2.rectangle(image, (left, top), (left + text_w + 2 * pad, top + box_h), _BOX_COLOUR, cv2.FILLED)
            cv2.putText(
                image,
                text,
                (left + pad, top + pad + text_h),
                font,
                scale,
                _TEXT_COLOUR,
                text_thickness,
                lineType=cv2.LINE_AA,
            )
    return image


class EvidenceWriter:
    """Writes the evidence files of alerts under ``out_dir/evidence/<alert id>/``.

    Clips are encoded incrementally: ``start_clip`` with the frames before the alert (from a
    ``FrameRing``), then ``add_clip_frame`` (or ``feed`` for every open clip at once) with each
    analysed frame after it; a clip is complete once a frame at or past ``alert_t + clip_after_s``
    arrived. ``finish_clip`` / ``finish_all`` close clips (``finish_all`` at the end of a video).
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        clip_before_s: float = 5.0,
        clip_after_s: float = 5.0,
        jpeg_quality: int = 90,
        clip_max_width: int = 960,
        clip_fps: float | None = None,
    ) -> None:
        if clip_before_s < 0 or clip_after_s < 0:
            raise ValueError("clip_before_s and clip_after_s must be >= 0")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be within 1..100")
        self.out_dir = Path(out_dir)
        self.clip_before_s = clip_before_s
        self.clip_after_s = clip_after_s
        self.jpeg_quality = jpeg_quality
        self.clip_max_width = clip_max_width
        self.clip_fps = clip_fps
        self._clips: dict[str, _Clip] = {}
        self._completed: dict[str, EvidenceItem] = {}

    # --- paths -------------------------------------------------------------------------------

    def alert_dir(self, alert_id: str) -> Path:
        directory = self.out_dir / EVIDENCE_DIR / _check_name(str(alert_id), "alert id")
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _item(self, kind: str, alert_id: str, file_name: str, digest: str) -> EvidenceItem:
        path = PurePosixPath(EVIDENCE_DIR, str(alert_id), file_name).as_posix()
        return EvidenceItem(kind=kind, path=path, sha256=digest)

    # --- snapshots ---------------------------------------------------------------------------

    def _write_jpeg(self, path: Path, image: np.ndarray) -> str:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise OSError(f"could not encode {path} as JPEG")
        data = encoded.tobytes()
        write_atomic(path, data)
        return hashlib.sha256(data).hexdigest()

    def snapshot(
        self,
        alert_id: str,
        frame_bgr: np.ndarray,
        *,
        bbox: Sequence[float] | None,
        label: str,
        zone_polygon_px: np.ndarray | None,
        kind: str = "snapshot",
    ) -> list[EvidenceItem]:
        """Write ``<kind>.jpg`` with box, zone and label drawn; for ``kind="snapshot"`` also
        ``snapshot_clean.jpg``, the untouched full-resolution frame. Returns the items written."""
        kind = _check_name(kind, "evidence kind")
        if kind in ("snapshot_clean", "clip"):
            raise ValueError(f"evidence kind {kind!r} is written by the writer itself, not drawn on request")
        directory = self.alert_dir(alert_id)
        items: list[EvidenceItem] = []
        drawn = draw_annotations(frame_bgr, bbox=bbox, label=label, zone_polygon_px=zone_polygon_px)
        file_name = f"{kind}.jpg"
        items.append(self._item(kind, alert_id, file_name, self._write_jpeg(directory / file_name, drawn)))
        if kind == "snapshot":
            clean_name = "snapshot_clean.jpg"
            digest = self._write_jpeg(directory / clean_name, _as_bgr(frame_bgr))
            items.append(self._item("snapshot_clean", alert_id, clean_name, digest))
        return items

    # --- clips -------------------------------------------------------------------------------

    @property
    def open_clips(self) -> tuple[str, ...]:
        return tuple(self._clips)

    def _estimate_fps(self, times: Sequence[float]) -> float:
        if self.clip_fps:
            return self.clip_fps
        steps = [b - a for a, b in itertools.pairwise(times) if b > a]
        if not steps:
            return _DEFAULT_CLIP_FPS
        return min(60.0, max(0.1, 1.0 / statistics.median(steps)))

    def start_clip(
        self,
        alert_id: str,
        frames_before: Iterable[tuple[float, np.ndarray]],
        *,
        alert_t: float | None = None,
    ) -> None:
        """Begin ``clip.mp4`` for an alert with the frames before it (``(t, frame)``, oldest first).

        ``alert_t`` defaults to the newest frame's time; frames older than ``clip_before_s`` before
        it are skipped. Starting a clip that is already open does nothing.
        """
        alert_id = _check_name(str(alert_id), "alert id")
        if alert_id in self._clips:
            return
        before = [(float(t), frame) for t, frame in frames_before]
        if alert_t is None:
            alert_t = before[-1][0] if before else None
        kept = [(t, f) for t, f in before if alert_t is None or t >= alert_t - self.clip_before_s]
        fps = self._estimate_fps([t for t, _ in kept])
        clip = _Clip(self.alert_dir(alert_id) / "clip.mp4", alert_t, fps, self.clip_max_width)
        self._clips[alert_id] = clip
        for t, frame in kept:
            clip.add(t, frame)

    def add_clip_frame(self, alert_id: str, t: float, frame: np.ndarray) -> bool:
        """Add an analysed frame after the alert. Returns True once the clip has covered
        ``clip_after_s`` after the alert (later frames are ignored), False while it still wants more."""
        clip = self._clips.get(str(alert_id))
        if clip is None:
            return True
        if clip.alert_t is None:  # started without frames before: the first frame after is the alert
            clip.alert_t = float(t)
        if clip.last_t is not None and clip.last_t >= clip.alert_t + self.clip_after_s:
            return True
        clip.add(float(t), frame)
        return clip.failed is not None or float(t) >= clip.alert_t + self.clip_after_s

    def feed(self, t: float, frame: np.ndarray) -> dict[str, EvidenceItem]:
        """Add one analysed frame to every open clip; finish the clips that are complete and return
        their items (they are also returned once more by the next ``finish_all``)."""
        finished: dict[str, EvidenceItem] = {}
        for alert_id in list(self._clips):
            if self.add_clip_frame(alert_id, t, frame):
                item = self.finish_clip(alert_id)
                if item is not None:
                    finished[alert_id] = item
        return finished

    add_frame = feed

    def finish_clip(self, alert_id: str) -> EvidenceItem | None:
        """Close a clip and return its item, or None when no frame could be written (or unknown id)."""
        clip = self._clips.pop(str(alert_id), None)
        if clip is None or not clip.close():
            return None
        item = self._item("clip", str(alert_id), clip.path.name, sha256_file(clip.path))
        self._completed[str(alert_id)] = item
        return item

    def finish_all(self) -> dict[str, EvidenceItem]:
        """Close every open clip (end of video). Returns the items of every clip finished since the
        previous ``finish_all``, also those that ``feed`` completed earlier, so a caller that only
        collects at the end still gets every clip."""
        for alert_id in list(self._clips):
            self.finish_clip(alert_id)
        done, self._completed = self._completed, {}
        return done


def _is_url(path: str) -> bool:
    return "://" in path


def verify_evidence(audit_dir: Path) -> list[str]:
    """Check every evidence file named in ``alerts.jsonl`` exists and matches its SHA-256.

    Returns human-readable problems, one per finding; an empty list means the evidence is intact.
    Evidence given as a URL (pushed to a service) cannot be checked offline and is skipped.
    """
    audit_dir = Path(audit_dir)
    alerts_path = audit_dir / ALERTS_FILE
    problems: list[str] = []
    try:
        lines = alerts_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return [f"{alerts_path}: missing"]
    except (OSError, UnicodeDecodeError) as error:
        return [f"{alerts_path}: unreadable: {error}"]
    root = audit_dir.resolve()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{alerts_path}:{number}"
        try:
            record = AlertRecord.model_validate_json(line)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(record)"
            problems.append(f"{where}: not a valid alert record: {field}: {first['msg']}")
            continue
        for item in record.evidence:
            if _is_url(item.path):
                continue
            label = f"{where}: alert {record.id}: {item.kind} {item.path}"
            relative = PurePosixPath(item.path)
            target = (audit_dir / relative).resolve()
            if relative.is_absolute() or not target.is_relative_to(root):
                problems.append(f"{label}: path lies outside the audit directory")
                continue
            try:
                digest = sha256_file(target)
            except FileNotFoundError:
                problems.append(f"{label}: file missing")
                continue
            except OSError as error:
                problems.append(f"{label}: unreadable: {error}")
                continue
            if digest != item.sha256:
                problems.append(f"{label}: SHA-256 mismatch (record {item.sha256[:12]}…, file {digest[:12]}…)")
    return problems
