"""One camera's path from detections to alert records (DESIGN §2), shared by ``audit`` and ``run``.

frame detections (+ what the stationary-object finder adds) ─► tracker (when untracked) ─► incident engine
─► alert records (+ evidence)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from detector.evidence.writer import EvidenceWriter, FrameRing
from detector.incidents.engine import Incident, IncidentEngine, IncidentEvent
from detector.incidents.track_score import TrackScoreRule
from detector.model.obstructions import ObstructionFinder
from detector.model.postprocess import drop_nested
from detector.model.tracking import Tracker
from zones.alert import AlertRecord, CameraHealth, EvidenceItem, GeoPoint, ModelRef, SourceRef, VideoOffsets
from zones.categories import OBJECT_CLASS_OF
from zones.config import CameraConfig
from zones.detections import Detections
from zones.geo import Geolocator
from zones.geometry import CameraZones
from zones.grid import resolve_grid

WallClock = Callable[[float], datetime]
# Frame-index entries kept before pruning to the best frames of open incidents.
_FRAME_INDEX_LIMIT = 512
Mode = Literal["audit", "live"]


def offset_clock(start: datetime) -> WallClock:
    """Frame timestamps (seconds from the first frame) to wall-clock times."""
    return lambda t: start + timedelta(seconds=t)


@dataclass(frozen=True)
class PipelineContext:
    config: CameraConfig
    width: int
    height: int
    wall_clock: WallClock
    model: ModelRef
    source_uri: str
    mode: Mode
    track_thresholds: Mapping[str, float] | None = None
    """Per-class track thresholds of the model (its card's ``confidence``) when its detections were taken
    at ``min_score``: incidents fire only once their track score reaches them. None: every detection counts."""


class CameraPipeline:
    """Feeds one camera's frames through tracker and engine and turns incident events into records.

    ``records`` holds each incident's latest record (its final state once the video ends).
    """

    def __init__(
        self,
        context: PipelineContext,
        *,
        evidence: EvidenceWriter | None = None,
        engine: IncidentEngine | None = None,
        obstructions: ObstructionFinder | None = None,
    ) -> None:
        self.context = context
        config = context.config
        self.zones = CameraZones(config, context.width, context.height)
        self.engine = engine or IncidentEngine(
            self.zones,
            wall_clock=context.wall_clock,
            max_gap_s=config.max_gap_s,
            id_namespace=config.id,
            score_rule=TrackScoreRule.of(context.track_thresholds),
        )
        self.geolocator = Geolocator.from_config(config, context.width, context.height)
        self.grid_index = config.grid_index()
        self._zone_configs = {zone.name: zone for zone in config.zones}
        self.evidence = evidence
        self.obstructions = obstructions
        self.ring = FrameRing(max_seconds=evidence.clip_before_s + 1.0) if evidence else None
        self._tracker: Tracker | None = None
        self._frame_of_t: dict[float, int] = {}
        self._evidence_of: dict[str, list[EvidenceItem]] = {}
        self.records: dict[str, AlertRecord] = {}
        self.camera_health: CameraHealth | None = None
        """The camera's status when it is not online (set by the caller before ``process``): incidents that
        open meanwhile carry it on their records (DESIGN §3.4), so the operator judges them."""
        self._health_of: dict[str, CameraHealth] = {}

    def process(
        self, frame_index: int, t: float, detections: Detections, image: npt.NDArray[np.uint8] | None = None
    ) -> list[AlertRecord]:
        detections = drop_nested(detections)
        if self.obstructions is not None and image is not None and detections.tracker_id is None:
            found = self.obstructions.detections(image, t, detections)
            if len(found):
                detections = Detections.concatenate([detections, found])
        if detections.tracker_id is None and len(detections):
            if self._tracker is None:
                self._tracker = Tracker()
            detections = self._tracker.update(detections, (self.context.height, self.context.width))
        self._frame_of_t[t] = frame_index
        if image is not None and self.evidence is not None and self.ring is not None:
            self.ring.push(t, frame_index, image)
            for alert_id, item in self.evidence.add_frame(t, image).items():
                self._attach(alert_id, [item])  # a clip just completed: later records carry it
        events = self.engine.update(detections, t)
        records = [self._emit(event, image) for event in events]
        if len(self._frame_of_t) > _FRAME_INDEX_LIMIT:
            self._prune_frame_index()
        return records

    def _prune_frame_index(self) -> None:
        # Only the best frames of open incidents are ever looked up again; without pruning the map
        # grows by one entry per analysed frame, which a live camera running for weeks cannot afford.
        keep = {incident.best_t for incident in self.engine.open_incidents}
        self._frame_of_t = {t: i for t, i in self._frame_of_t.items() if t in keep}

    def forget(self, alert_id: str) -> None:
        """Drop a finished incident's record and evidence list (live mode: they were sent)."""
        self.records.pop(alert_id, None)
        self._evidence_of.pop(alert_id, None)
        self._health_of.pop(alert_id, None)

    def close_all(self, t: float) -> list[AlertRecord]:
        """End every incident now (damage point of a broken video): nothing continues past it."""
        return [self._emit(event, None) for event in self.engine.close_all(t)]

    def finish(self) -> list[AlertRecord]:
        records = [self._emit(event, None) for event in self.engine.finish()]
        if self.evidence is not None:
            for alert_id, item in self.evidence.finish_all().items():
                self._attach(alert_id, [item])
        return records

    def _emit(self, event: IncidentEvent, image: npt.NDArray[np.uint8] | None) -> AlertRecord:
        incident = event.incident
        if event.kind == "opened" and self.camera_health is not None:
            self._health_of[incident.id] = self.camera_health
        if self.evidence is not None and image is not None:
            if event.kind == "opened":
                items = self.evidence.snapshot(
                    incident.id,
                    image,
                    bbox=incident.bbox,
                    label=f"{incident.category} {incident.best_confidence:.2f}",
                    zone_polygon_px=np.asarray(self.zones.zone(incident.zone).polygon.exterior.coords),
                )
                assert self.ring is not None
                self.evidence.start_clip(incident.id, self.ring.frames())
            else:
                items = self.evidence.snapshot(
                    incident.id,
                    image,
                    bbox=incident.bbox,
                    label=f"{incident.category} cleared",
                    zone_polygon_px=np.asarray(self.zones.zone(incident.zone).polygon.exterior.coords),
                    kind="snapshot_after",
                )
            self._attach(incident.id, items)
        record = self._record(event)
        self.records[incident.id] = record
        return record

    def _attach(self, alert_id: str, items: list[EvidenceItem]) -> None:
        known = self._evidence_of.setdefault(alert_id, [])
        known.extend(item for item in items if item.path not in {k.path for k in known})
        if alert_id in self.records:
            self.records[alert_id] = self.records[alert_id].model_copy(update={"evidence": list(known)})

    def _record(self, event: IncidentEvent) -> AlertRecord:
        incident: Incident = event.incident
        context = self.context
        x1, _, x2, y2 = incident.bbox
        anchor = np.array([[(x1 + x2) / 2, y2]])
        lonlat, error_m = self.geolocator.locate(anchor)
        lon, lat = float(lonlat[0, 0]), float(lonlat[0, 1])
        grid = resolve_grid(context.config, self.grid_index, lon, lat)
        alerted_t = incident.alerted_t if incident.alerted_t is not None else incident.started_t
        closed = event.kind == "closed"
        ended_t = incident.ended_t if closed else None
        best = incident.best_bbox
        zone = self._zone_configs[incident.zone]
        return AlertRecord(
            id=incident.id,  # type: ignore[arg-type]
            event="violation.closed" if closed else "violation.opened",
            camera_id=context.config.id,
            category=incident.category,  # type: ignore[arg-type]
            object_class=OBJECT_CLASS_OF[incident.category],  # type: ignore[index]
            zone=incident.zone,
            started_at=context.wall_clock(incident.started_t),
            alerted_at=context.wall_clock(alerted_t),
            ended_at=context.wall_clock(ended_t) if ended_t is not None else None,
            video_offset_s=(
                VideoOffsets(
                    start=round(incident.started_t, 3),
                    alert=round(alerted_t, 3),
                    end=round(ended_t, 3) if ended_t is not None else None,
                )
                if context.mode == "audit"
                else None
            ),
            confidence=round(float(incident.best_confidence), 4),
            bbox=(round(best[0]), round(best[1]), round(best[2]), round(best[3])),
            location=GeoPoint(type="Point", coordinates=(round(lon, 7), round(lat, 7))),
            location_error_m=round(float(error_m[0]), 2),
            grid=grid,
            # Copied on audits too: the record tells what the zone says; the service never reminds on
            # an audit record (video_offset_s set), DESIGN §3.7.
            responsible=zone.responsible,
            remind_first_s=zone.remind_first_s,
            evidence=list(self._evidence_of.get(incident.id, [])),
            model=context.model,
            source=SourceRef(uri=context.source_uri, frame=self._frame_of_t.get(incident.best_t, 0)),
            camera_health=self._health_of.get(incident.id),
        )
