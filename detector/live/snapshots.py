"""Camera snapshots: the clean analysed frame (JPEG) the browser setup page draws zones on, sent to
``PUT /api/v1/cameras/<id>/snapshot`` every ``--snapshot-every-s``, at a camera's first analysed frame, and
at once when its view check's status changes (a moved view is what the operator re-draws the zones on).

Snapshots are not events: only the newest frame of a camera matters, and a megabyte upload must not hold
the ordered spool's alerts up. So ``SnapshotUploader`` sends them beside the spool, best effort: the
newest frame per camera waits in memory, a newer one replaces it, failures are retried with backoff and
logged once per outage.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from detector.live.push import AUTH_STATUSES, Outcome, ServiceClient

log = logging.getLogger("streetwatch.push")

DEFAULT_SNAPSHOT_EVERY_S = 300.0
SNAPSHOT_JPEG_QUALITY = 85


def encode_snapshot(image: npt.NDArray[np.uint8]) -> bytes | None:
    """The clean frame as JPEG (what the setup page draws zones on)."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_JPEG_QUALITY])
    return encoded.tobytes() if ok else None


def snapshot_path(camera_id: str, captured_at: datetime) -> str:
    return f"/api/v1/cameras/{camera_id}/snapshot?captured_at={quote(captured_at.isoformat())}"


class SnapshotUploader:
    """Uploads each camera's newest frame (JPEG) in a background thread, best effort.

    ``offer`` never blocks: the frame replaces any frame of that camera still waiting. A failed upload
    is retried (backoff from ``min_backoff_s`` doubling to ``max_backoff_s``, or the service's
    ``Retry-After``) unless a newer frame arrived meanwhile, which is then sent instead; a refusal
    (4xx other than 408/429) drops that frame. The first failure of an outage is logged as a warning,
    the recovery as info. Nothing is kept across restarts: the next run uploads a fresh frame.
    """

    def __init__(self, client: ServiceClient, *, min_backoff_s: float = 1.0, max_backoff_s: float = 60.0) -> None:
        self.client = client
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.uploaded = 0
        self.last_error: str | None = None
        self._waiting: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot-uploader", daemon=True)

    def offer(self, camera_id: str, jpeg: bytes, captured_at: datetime) -> None:
        with self._lock:
            self._waiting[camera_id] = (jpeg, captured_at)
        self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._waiting)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _next(self) -> tuple[str, bytes, datetime] | None:
        with self._lock:
            if not self._waiting:
                return None
            camera_id = next(iter(self._waiting))
            jpeg, captured_at = self._waiting.pop(camera_id)
            return camera_id, jpeg, captured_at

    def _run(self) -> None:
        backoff = self.min_backoff_s
        failing = False
        while not self._stop.is_set():
            item = self._next()
            if item is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            camera_id, jpeg, captured_at = item
            delivery = self.client.put_bytes(snapshot_path(camera_id, captured_at), jpeg, "image/jpeg")
            if delivery.outcome is Outcome.DELIVERED:
                self.uploaded += 1
                if failing:
                    log.info("snapshot.uploading camera=%s (the service takes snapshots again)", camera_id)
                failing = False
                backoff = self.min_backoff_s
                continue
            self.last_error = delivery.problem
            if delivery.outcome is Outcome.REJECTED and delivery.status not in AUTH_STATUSES:
                log.warning("snapshot.refused camera=%s problem=%r (frame dropped)", camera_id, delivery.problem)
                continue
            if not failing:
                log.warning(
                    "snapshot.failed camera=%s problem=%r (retrying with backoff; alerts are not affected)",
                    camera_id,
                    delivery.problem,
                )
            failing = True
            with self._lock:  # retry this frame unless a newer one came meanwhile
                self._waiting.setdefault(camera_id, (jpeg, captured_at))
            wait = delivery.retry_after_s if delivery.retry_after_s is not None else backoff
            self._stop.wait(min(wait, self.max_backoff_s))
            backoff = min(self.max_backoff_s, backoff * 2)
