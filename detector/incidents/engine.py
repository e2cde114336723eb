"""The incident engine: turns per-frame detections in zones into violations (DESIGN §3.4a).

One incident is one physical violation: one category in one zone at one place. Incidents are keyed
by place, not by tracker id, so a stall whose track id changes after an occlusion stays one
incident, and detections without track ids work the same way.

Life of an incident, with ``t`` the frame timestamp (the only clock here):

* candidate: a detection of the category's object class, inside the zone and outside every
  exclusion mask, that continues no open incident starts one with ``started_t = t`` (or earlier: the
  detection's ``since``, when the stationary-object finder saw the object put down before it could
  tell that it stays);
* continuation: a detection continues an incident of the same zone and category when its box
  overlaps the incident's latest box (IoU >= ``iou_threshold``) or its anchor lies within that box,
  and its anchor stays within half a box width of the incident's reference anchor (stationarity);
  each detection continues at most one incident and each incident takes at most one detection per
  frame (greedy on IoU);
* firing: on the first frame that sees the object at or after ``started_t + dwell`` the incident
  fires with ``alerted_t = started_t + dwell`` (never the sampling time), unless the zone's allowed
  window for its categories covers ``alerted_t``; one alert per incident. With a track score rule
  (:mod:`detector.incidents.track_score`) the incident must also be *confirmed*: the median of its recent
  scores has reached its class threshold at some sighting; until then it is followed (and started) on
  every box above the model's ``min_score`` but never fires;
* end: unseen for more than ``max_gap_s`` -> ends at ``last_seen_t``; an allowed window beginning
  -> ends at the window start; a fired incident emits ``closed``, a candidate is dropped silently.
  Inside an allowed window nothing continues or starts, so an object still there when the window
  ends starts a new candidate then;
* end of an audited video (``finish``): fired incidents seen in the last frame stay open, others
  end at their last sighting; ``close_all`` (stream damage) ends everything at its last sighting.

Why "seen at or after the alert time" rather than "not yet gone at the alert time": an object that
disappears shortly before its dwell is reached was present for less than the dwell, and an alert
that would end before it was raised helps nobody.

Why displaced detections do not continue an incident (instead of restarting it): a slowly moving
cart keeps overlapping its own latest box, so overlap alone would let one incident follow it down
the street. Refusing detections whose anchor left the half-width circle around the incident's
reference anchor keeps every incident stationary by construction: the cart's detections start a
fresh candidate (so a cart that stops becomes a stall one dwell after it stopped), while a fired
stall hit by a single odd box keeps its incident and only ends by the gap rule if it really left.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from detector.incidents.track_score import SCORE_HISTORY, TrackScoreRule
from zones.categories import (
    CONTINUATION_IOU,
    OBJECT_CLASS_OF,
    Category,
    ObjectClass,
)
from zones.detections import CLASS_IDS, Detections, iou_matrix

if TYPE_CHECKING:
    from zones.geometry import CameraZones, Zone

STATE_VERSION: Final[int] = 1

EndReason = Literal["gap", "allowed_window", "end_of_video", "stream_damage"]

Box = tuple[float, float, float, float]
Point = tuple[float, float]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# Floating-point slack for comparisons of frame timestamps (sums like started_t + dwell).
_EPS: Final[float] = 1e-9


_ALERT_ID_NAMESPACE = uuid.UUID("5f1e7b52-93a4-4a43-9d1c-0c5e2a7f6b10")


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Incident:
    """State of one incident; every field is JSON-serialisable (tuples become lists)."""

    id: str
    category: Category
    object_class: ObjectClass
    zone: str
    dwell_s: float
    started_t: float
    """Video/capture seconds when the object was first seen in the zone at this place."""
    last_seen_t: float
    bbox: Box
    """Latest box; place matching uses it."""
    best_bbox: Box
    """Box of the highest-confidence sighting: the evidence frame."""
    best_confidence: float
    best_t: float
    anchor: Point
    """Anchor point (the zone's, see ``Zone.anchor_points``) of the latest sighting."""
    ref_anchor: Point
    """Anchor of the first sighting; stationarity is measured from here."""
    ref_width: float
    """Box width of the first sighting; the stationarity radius is half of max(this, current width)."""
    alerted_t: float | None = None
    ended_t: float | None = None
    end_reason: EndReason | None = None
    max_displacement: float = 0.0
    """Largest anchor distance from ``ref_anchor`` among the sightings taken (pixels)."""
    sightings: int = 1
    track_ids: tuple[int, ...] = ()
    """Tracker ids seen (sorted, informational only: matching never uses them)."""
    scores: tuple[float, ...] = ()
    """The most recent sightings' confidences, oldest first (the track score rule's input)."""
    confirmed: bool = True
    """Whether the track score rule has confirmed the incident (always, without a rule). States saved
    before the rule existed load as confirmed: their detections had passed a per-frame threshold."""

    @property
    def fired(self) -> bool:
        return self.alerted_t is not None

    @property
    def is_open(self) -> bool:
        return self.ended_t is None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("bbox", "best_bbox", "anchor", "ref_anchor", "track_ids", "scores"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Incident:
        values = dict(data)
        for key in ("bbox", "best_bbox"):
            values[key] = _box(values[key])
        for key in ("anchor", "ref_anchor"):
            values[key] = (float(values[key][0]), float(values[key][1]))
        values["track_ids"] = tuple(int(i) for i in values.get("track_ids", ()))
        values["scores"] = tuple(float(v) for v in values.get("scores", ()))
        values["confirmed"] = bool(values.get("confirmed", True))
        return cls(**values)


@dataclass(frozen=True)
class IncidentEvent:
    """Something an alert record is made of: an incident fired (``opened``) or ended (``closed``).

    ``incident`` is a snapshot taken when the event happened; ``t`` is ``alerted_t`` for ``opened``
    and ``ended_t`` for ``closed``.
    """

    kind: Literal["opened", "closed"]
    incident: Incident
    t: float
    reason: EndReason | None = None


def _box(values: Iterable[float]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


class IncidentEngine:
    """Dwell, place and schedule bookkeeping for one camera view.

    ``wall_clock(t)`` turns a frame timestamp into an aware datetime (for allowed windows); it must
    advance one second per second of ``t`` (capture time, or ``--start-time`` plus video offset).
    """

    def __init__(
        self,
        zones: CameraZones,
        *,
        wall_clock: Callable[[float], datetime],
        max_gap_s: float | None = None,
        iou_threshold: float = CONTINUATION_IOU,
        id_factory: Callable[[], str] = _new_id,
        id_namespace: str | None = None,
        score_rule: TrackScoreRule | None = None,
    ) -> None:
        """``id_namespace`` (e.g. the camera id) makes alert ids reproducible: an incident that fires
        gets a UUID derived from the namespace, zone, category, start time and place, so auditing the
        same video again (and pushing it) repeats the same ids instead of creating new cases.

        ``score_rule`` judges confidence per incident (track) instead of per frame; without it every
        detection given counts (the caller filtered them at a per-frame threshold)."""
        if max_gap_s is None:
            max_gap_s = float(zones.config.max_gap_s)
        if not math.isfinite(max_gap_s) or max_gap_s < 0:
            raise ValueError(f"max_gap_s must be a non-negative number, got {max_gap_s!r}")
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold!r}")
        self._zones = zones
        self._wall_clock = wall_clock
        self.max_gap_s = float(max_gap_s)
        self.iou_threshold = float(iou_threshold)
        self._id_factory = id_factory
        self.id_namespace = id_namespace
        self.score_rule = score_rule
        self._zone_by_name: dict[str, Zone] = {z.name: z for z in zones.zones}
        # Class ids a zone cares about: frames without any skip its polygon test.
        self._zone_class_ids: dict[str, IntArray] = {
            z.name: np.array(sorted({CLASS_IDS[OBJECT_CLASS_OF[c]] for c in z.categories}), dtype=np.int64)
            for z in zones.zones
        }
        self._open: list[Incident] = []
        self._last_t: float | None = None
        self._finished = False
        self._fresh_from = -math.inf  # the last damage point: nothing starts before it

    # ------------------------------------------------------------------ public API

    @property
    def open_incidents(self) -> list[Incident]:
        """Snapshots of the incidents still open: fired ones and candidates (``fired`` tells)."""
        return [replace(inc) for inc in self._open]

    @property
    def last_t(self) -> float | None:
        return self._last_t

    def update(self, detections: Detections, t: float) -> list[IncidentEvent]:
        """Feed one analysed frame (also an empty one: gaps are measured on these)."""
        t = float(t)
        self._check_time(t)
        self._last_t = t
        events: list[IncidentEvent] = []

        # Gaps first: an incident unseen for longer than max_gap_s must not take a detection now
        # (a 70 s gap is two incidents).
        for inc in [i for i in self._open if t - i.last_seen_t > self.max_gap_s + _EPS]:
            self._end(inc, inc.last_seen_t, "gap", events)

        n = len(detections)
        usable: BoolArray = np.ones(n, dtype=bool)
        if n:
            usable &= ~np.asarray(self._zones.excluded(detections), dtype=bool)
        now: datetime | None = None

        by_group: dict[tuple[str, str], list[Incident]] = {}
        for inc in self._open:
            by_group.setdefault((inc.zone, inc.category), []).append(inc)

        for zone in self._zones.zones:
            in_zone: BoolArray | None = None
            if n:
                relevant = usable & np.isin(detections.class_id, self._zone_class_ids[zone.name])
                if relevant.any():
                    in_zone = relevant & np.asarray(zone.contains(detections), dtype=bool)
            has_work = any((zone.name, c) in by_group for c in zone.categories)
            if not has_work and (in_zone is None or not in_zone.any()):
                continue
            if now is None:
                now = self._wall_clock(t)
            window_start_t = self._window_start_t(zone, now, t)
            for category in zone.categories:
                object_class = OBJECT_CLASS_OF[category]
                incidents = by_group.get((zone.name, category), [])
                cand: Detections | None = None
                anchors: FloatArray | None = None
                if in_zone is not None:
                    picked = np.flatnonzero(in_zone & (detections.class_id == CLASS_IDS[object_class]))
                    if len(picked):
                        cand = detections[picked]
                        anchors = np.asarray(zone.anchor_points(cand), dtype=np.float64)
                if cand is None or anchors is None:
                    pairs: list[tuple[int, int]] = []
                else:
                    pairs = self._match(cand, anchors, incidents)
                if window_start_t is not None:
                    # Nothing continues or starts inside an allowed window; the match only tells
                    # whether the object is still there (see _enter_window).
                    seen = {inc_i for _, inc_i in pairs}
                    self._enter_window(zone, incidents, seen, window_start_t, events)
                    continue
                if cand is not None and anchors is not None:
                    taken: set[int] = set()
                    for det_i, inc_i in pairs:
                        self._continue(incidents[inc_i], cand, anchors, det_i, t)
                        taken.add(det_i)
                    for det_i in range(len(cand)):
                        if det_i not in taken:
                            new = self._start(zone, category, object_class, cand, anchors, det_i, t)
                            self._open.append(new)
                            incidents.append(new)
                for inc in incidents:
                    if (
                        inc.is_open
                        and not inc.fired
                        and inc.confirmed
                        and inc.last_seen_t + _EPS >= inc.started_t + inc.dwell_s
                    ):
                        self._fire(zone, inc, events)
        events.sort(key=lambda e: e.t)
        return events

    def finish(self) -> list[IncidentEvent]:
        """End of an audited video: fired incidents seen in the last frame stay open.

        Fired incidents last seen earlier end at their last sighting; candidates are dropped. The
        ones left open remain in ``open_incidents`` (their final state for ``alerts.jsonl``).
        """
        events: list[IncidentEvent] = []
        for inc in list(self._open):
            if inc.fired and self._last_t is not None and inc.last_seen_t + _EPS >= self._last_t:
                continue
            self._end(inc, inc.last_seen_t, "end_of_video", events)
        self._finished = True
        events.sort(key=lambda e: e.t)
        return events

    def close_all(self, t: float, reason: EndReason = "stream_damage") -> list[IncidentEvent]:
        """End every open incident at its last sighting (never later than ``t``); nothing continues.

        For a damage point in a stream: later updates start new candidates.
        """
        t = float(t)
        events: list[IncidentEvent] = []
        for inc in list(self._open):
            self._end(inc, min(inc.last_seen_t, t), reason, events)
        if self._last_t is None or t > self._last_t:
            self._last_t = t
        self._fresh_from = max(self._fresh_from, t)
        events.sort(key=lambda e: e.t)
        return events

    def state(self) -> dict[str, Any]:
        """Everything needed to resume after a restart, as plain JSON types."""
        return {
            "version": STATE_VERSION,
            "max_gap_s": self.max_gap_s,
            "iou_threshold": self.iou_threshold,
            "id_namespace": self.id_namespace,
            "track_thresholds": None if self.score_rule is None else dict(self.score_rule.thresholds),
            "last_t": self._last_t,
            "finished": self._finished,
            "incidents": [inc.to_dict() for inc in self._open],
        }

    @classmethod
    def from_state(
        cls,
        zones: CameraZones,
        state: dict[str, Any],
        *,
        wall_clock: Callable[[float], datetime],
        id_factory: Callable[[], str] = _new_id,
    ) -> IncidentEngine:
        version = state.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"incident engine state version {version!r} is not {STATE_VERSION}")
        engine = cls(
            zones,
            wall_clock=wall_clock,
            max_gap_s=float(state["max_gap_s"]),
            iou_threshold=float(state["iou_threshold"]),
            id_factory=id_factory,
            id_namespace=state.get("id_namespace"),
            score_rule=TrackScoreRule.of(state.get("track_thresholds")),
        )
        last_t = state.get("last_t")
        engine._last_t = None if last_t is None else float(last_t)
        engine._finished = bool(state.get("finished", False))
        # Incidents of zones that no longer exist cannot continue; dropping them is the only choice.
        engine._open = [
            inc
            for inc in (Incident.from_dict(d) for d in state.get("incidents", []))
            if inc.zone in engine._zone_by_name
        ]
        return engine

    # ------------------------------------------------------------------ internals

    def _check_time(self, t: float) -> None:
        if self._finished:
            raise RuntimeError("the incident engine was finished; start a new one for a new video")
        if not math.isfinite(t):
            raise ValueError(f"frame time must be finite, got {t!r}")
        if self._last_t is not None and t < self._last_t:
            raise ValueError(f"frame times must not go backwards: {t} after {self._last_t}")

    def _window_start_t(self, zone: Zone, now: datetime, t: float) -> float | None:
        """Frame time when the allowed window covering ``t`` began, or None outside windows."""
        if not zone.allowed_at(now):
            return None
        start = zone.allowed_window_start(now)
        if start is None:
            return t
        # wall_clock runs at one second per second, so the offset carries over to frame time.
        return t + (start - now).total_seconds()

    def _match(self, cand: Detections, anchors: FloatArray, incidents: list[Incident]) -> list[tuple[int, int]]:
        """Greedy one-to-one assignment of one group's detections to its open incidents.

        Returns (detection index, index into ``incidents``) pairs.
        """
        live = [k for k, inc in enumerate(incidents) if inc.is_open]
        if not live:
            return []
        boxes = np.array([incidents[k].bbox for k in live], dtype=np.float64)
        refs = np.array([incidents[k].ref_anchor for k in live], dtype=np.float64)
        ref_w = np.array([incidents[k].ref_width for k in live], dtype=np.float64)
        det_w = cand.xyxy[:, 2] - cand.xyxy[:, 0]

        iou = iou_matrix(cand.xyxy, boxes)
        within = (
            (anchors[:, None, 0] >= boxes[None, :, 0])
            & (anchors[:, None, 0] <= boxes[None, :, 2])
            & (anchors[:, None, 1] >= boxes[None, :, 1])
            & (anchors[:, None, 1] <= boxes[None, :, 3])
        )
        disp = np.hypot(anchors[:, None, 0] - refs[None, :, 0], anchors[:, None, 1] - refs[None, :, 1])
        # Half the larger of the two widths: a box that shrinks under partial occlusion or grows when
        # merged with a neighbour moves its anchor without the object moving.
        radius = 0.5 * np.maximum(det_w[:, None], ref_w[None, :])
        eligible = ((iou >= self.iou_threshold - _EPS) | within) & (disp <= radius + _EPS)
        det_idx, inc_idx = np.nonzero(eligible)
        if len(det_idx) == 0:
            return []
        # Best overlap first; among equal overlaps the smaller displacement, then the older incident.
        order = np.lexsort((inc_idx, disp[det_idx, inc_idx], -iou[det_idx, inc_idx]))
        used_d: set[int] = set()
        used_k: set[int] = set()
        pairs: list[tuple[int, int]] = []
        for o in order:
            d, k = int(det_idx[o]), int(inc_idx[o])
            if d in used_d or k in used_k:
                continue
            used_d.add(d)
            used_k.add(k)
            pairs.append((d, live[k]))
        return pairs

    def _start(
        self,
        zone: Zone,
        category: Category,
        object_class: ObjectClass,
        cand: Detections,
        anchors: FloatArray,
        i: int,
        t: float,
    ) -> Incident:
        box = _box(cand.xyxy[i])
        point = (float(anchors[i, 0]), float(anchors[i, 1]))
        track_ids: tuple[int, ...] = ()
        if cand.tracker_id is not None:
            track_ids = (int(cand.tracker_id[i]),)
        scores = (float(cand.confidence[i]),)
        return Incident(
            id=self._id_factory(),
            category=category,
            object_class=object_class,
            zone=zone.name,
            dwell_s=float(zone.dwell_s(category)),
            started_t=self._start_t(zone, cand, i, t),
            last_seen_t=t,
            bbox=box,
            best_bbox=box,
            best_confidence=float(cand.confidence[i]),
            best_t=t,
            anchor=point,
            ref_anchor=point,
            ref_width=box[2] - box[0],
            track_ids=track_ids,
            scores=scores,
            confirmed=self._confirms(object_class, scores),
        )

    def _confirms(self, object_class: ObjectClass, scores: tuple[float, ...]) -> bool:
        return self.score_rule is None or self.score_rule.confirms(object_class, scores)

    def _start_t(self, zone: Zone, cand: Detections, i: int, t: float) -> float:
        """``t``, or the detection's ``since`` where that is earlier, after the last damage point and not
        inside the zone's allowed window (time there never counts towards a dwell)."""
        if cand.since is None:
            return t
        since = float(cand.since[i])
        if not math.isfinite(since) or since >= t or since < self._fresh_from:
            return t
        if zone.allowed_at(self._wall_clock(since)):
            return t
        return since

    def _continue(self, inc: Incident, cand: Detections, anchors: FloatArray, i: int, t: float) -> None:
        box = _box(cand.xyxy[i])
        inc.bbox = box
        inc.anchor = (float(anchors[i, 0]), float(anchors[i, 1]))
        inc.last_seen_t = t
        inc.sightings += 1
        inc.max_displacement = max(
            inc.max_displacement,
            math.hypot(inc.anchor[0] - inc.ref_anchor[0], inc.anchor[1] - inc.ref_anchor[1]),
        )
        conf = float(cand.confidence[i])
        inc.scores = (*inc.scores, conf)[-SCORE_HISTORY:]
        if not inc.confirmed:
            inc.confirmed = self._confirms(inc.object_class, inc.scores)
        if conf > inc.best_confidence:
            inc.best_confidence = conf
            inc.best_bbox = box
            inc.best_t = t
        if cand.tracker_id is not None:
            tid = int(cand.tracker_id[i])
            if tid not in inc.track_ids:
                inc.track_ids = tuple(sorted((*inc.track_ids, tid)))

    def _fire(self, zone: Zone, inc: Incident, events: list[IncidentEvent]) -> None:
        alerted_t = inc.started_t + inc.dwell_s
        if zone.allowed_at(self._wall_clock(alerted_t)):
            # A whole allowed window fell between two sampled frames: the presence before it does
            # not count (it would have been dropped at the window start), so count from now.
            self._restart(inc)
            return
        inc.alerted_t = alerted_t
        if self.id_namespace is not None:
            inc.id = self._reproducible_id(inc)
        events.append(IncidentEvent("opened", replace(inc), alerted_t))

    def _reproducible_id(self, inc: Incident) -> str:
        started = self._wall_clock(inc.started_t).isoformat(timespec="milliseconds")
        # The start anchor, snapped to 8 px, tells two stalls that appear at the same moment apart.
        place = ",".join(str(round(v / 8)) for v in inc.ref_anchor)
        key = f"{self.id_namespace}|{inc.zone}|{inc.category}|{started}|{place}"
        return str(uuid.uuid5(_ALERT_ID_NAMESPACE, key))

    def _restart(self, inc: Incident) -> None:
        """Make ``inc`` a fresh candidate that starts at its latest sighting."""
        inc.id = self._id_factory()
        inc.started_t = inc.last_seen_t
        inc.best_bbox = inc.bbox
        inc.best_t = inc.last_seen_t
        inc.ref_anchor = inc.anchor
        inc.ref_width = inc.bbox[2] - inc.bbox[0]
        inc.max_displacement = 0.0
        inc.sightings = 1

    def _enter_window(
        self,
        zone: Zone,
        incidents: list[Incident],
        seen: set[int],
        window_start_t: float,
        events: list[IncidentEvent],
    ) -> None:
        """An allowed window covers ``t``: open incidents of the zone end at its start."""
        for k, inc in enumerate(incidents):
            if not inc.is_open:
                continue
            end_t = max(window_start_t, inc.started_t)
            if not inc.fired:
                alerted_t = inc.started_t + inc.dwell_s
                # Sparse sampling: the dwell was reached before the window began and this frame
                # proves the object stayed past it, so the alert is due before the window closes it.
                if k in seen and alerted_t < window_start_t - _EPS and not zone.allowed_at(self._wall_clock(alerted_t)):
                    inc.alerted_t = alerted_t
                    events.append(IncidentEvent("opened", replace(inc), alerted_t))
            self._end(inc, end_t, "allowed_window", events)

    def _end(self, inc: Incident, end_t: float, reason: EndReason, events: list[IncidentEvent]) -> None:
        inc.ended_t = end_t
        inc.end_reason = reason
        self._open.remove(inc)
        if inc.fired:
            events.append(IncidentEvent("closed", replace(inc), end_t, reason))


__all__ = ["STATE_VERSION", "EndReason", "Incident", "IncidentEngine", "IncidentEvent"]
