"""Tracking through ultralytics' ByteTrack (we do not write a tracker).

Every detection is kept: boxes the tracker has not (yet) confirmed get ``tracker_id`` -1, because
the incident engine keys incidents by place and must not lose the first sighting of an object.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from zones.detections import Detections


class Tracker:
    def __init__(self, *, track_buffer_frames: int = 60) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        settings = SimpleNamespace(
            tracker_type="bytetrack",
            track_high_thresh=0.25,
            track_low_thresh=0.1,
            new_track_thresh=0.25,
            track_buffer=track_buffer_frames,
            match_thresh=0.8,
            fuse_score=True,
        )
        self._tracker = BYTETracker(settings)

    def update(self, detections: Detections, shape: tuple[int, int]) -> Detections:
        """Assign track ids; ``shape`` is the frame's (height, width)."""
        from ultralytics.engine.results import Boxes

        data = np.concatenate(
            [detections.xyxy, detections.confidence[:, None], detections.class_id[:, None].astype(np.float64)],
            axis=1,
        ).astype(np.float32)
        tracked = self._tracker.update(Boxes(data, shape))
        track_ids = np.full(len(detections), -1, dtype=np.int64)
        if len(tracked):
            track_ids[tracked[:, -1].astype(np.int64)] = tracked[:, 4].astype(np.int64)
        return replace(detections, tracker_id=track_ids)
