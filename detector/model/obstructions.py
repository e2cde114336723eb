"""What the stationary-object finder's regions are: the model's class on a crop, a person, or an ``object``.

Each region the finder holds (something new that stays, ``detector/video/stationary.py``) is judged once,
when it is first held and again whenever it grows:

1. the model runs on a crop around it (a distant stall gets more pixels than in the whole frame): a
   stall, laundry or structure found there, overlapping the region, joins the frame's detections as
   that class with the model's confidence;
2. otherwise it is an ``object`` (class id 3), the ``sidewalk_obstruction`` category's class, with the
   share of its box found new and still as confidence.

Either way the detection carries the region's first sighting (``since``): the incident starts when the
object was put down, not when the finder could tell that it stays (``min_stay_s`` later).

A region the frame's own detections already cover (IoU ≥ ``COVERED_IOU``) adds nothing: the model saw it.
A region first judged while a confident box of the frame covers it is that box's object, without a crop
(the crop would only repeat the frame's answer at the cost of a second inference); the remembered box
stands in on later frames where the frame's model misses it (someone in front), as a crop's would.
People and vehicles are nobody's obstruction: a region that keeps stirring (``restless``: head and
arms of someone standing or sitting there) is not judged at all, and one the distractor model
(``detector/model/people_vehicles.py``) finds a person, bicycle, car, motorcycle, bus or truck on
(IoU ≥ ``COVERED_IOU``, after the default model found no stall, laundry or structure there) adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from detector.video.stationary import FinderSettings, StationaryFinder, StationaryRegion
from zones.categories import OBJECT_CLASS_OF
from zones.config import CameraConfig
from zones.detections import CLASS_IDS, Detections, iou_matrix

OBSTRUCTION: Final = "sidewalk_obstruction"
OBJECT_CLASS_ID: Final = CLASS_IDS[OBJECT_CLASS_OF[OBSTRUCTION]]
COVERED_IOU: Final = 0.3
"""A region overlapping a detection of the frame this much is that detection's object."""
CROP_MARGIN: Final = 0.5
"""Context around a region in its crop, as a share of the region's size on each side."""
MIN_CROP_PX: Final = 96
TOO_DARK_SHARE: Final = 0.5
"""A warning is given when more than this share of the analysed frames were too dark."""
MAX_RESTLESS: Final = 5.0
"""Regions whose look keeps changing more than this (grey levels, ``StationaryRegion.restless``) are
people standing or sitting, not objects."""

Image = npt.NDArray[np.uint8]
Verdict = Literal["model", "object", "person_or_vehicle"]


class CropModel(Protocol):
    def predict(self, images: list[Image]) -> list[Detections]: ...


class PeopleVehiclesModel(Protocol):
    def find(self, image: Image) -> npt.NDArray[np.float64]: ...


@dataclass(frozen=True)
class _Judgement:
    box: tuple[float, float, float, float]
    verdict: Verdict
    found: Detections  # the model's detection on the crop (verdict "model"), in frame pixels


def wanted(config: CameraConfig) -> bool:
    """Whether any zone of the camera opts in to ``sidewalk_obstruction`` (the finder runs only then)."""
    return any(OBSTRUCTION in zone.categories for zone in config.zones)


@dataclass
class ObstructionFinder:
    """One camera's finder and the judge of its regions; ``detections(image, t, seen)`` per analysed frame."""

    finder: StationaryFinder
    model: CropModel | None = None
    people_vehicles: PeopleVehiclesModel | None = None
    _judged: dict[int, _Judgement] = field(default_factory=dict)
    crops_inferred: int = 0
    people_vehicles_dismissed: int = 0
    """Regions judged to be a person or vehicle (counted at each judgement)."""

    @classmethod
    def for_frames(
        cls,
        width: int,
        height: int,
        model: CropModel | None,
        settings: FinderSettings | None = None,
        people_vehicles: PeopleVehiclesModel | None = None,
    ) -> ObstructionFinder:
        return cls(StationaryFinder(width, height, settings or FinderSettings()), model, people_vehicles)

    def detections(self, image: Image, t: float, seen: Detections) -> Detections:
        """The detections the regions add to ``seen`` (the frame's own) at frame time ``t``."""
        if not self.finder.usable:
            return Detections.empty()
        # A restless region is someone standing or sitting there; one held only a moment is not judged yet.
        regions = [
            r for r in self.finder.update(image, t).regions if r.restless is not None and r.restless <= MAX_RESTLESS
        ]
        self._judged = {r.region_id: self._judgement(r, image, seen) for r in regions}
        added = [self._judged[r.region_id] for r in regions]
        parts = [
            replace(j.found, since=np.full(len(j.found), r.first_seen_t))
            for r, j in zip(regions, added, strict=True)
            if j.verdict == "model"
        ]
        objects = [r for r, j in zip(regions, added, strict=True) if j.verdict == "object"]
        if objects:
            parts.append(
                Detections(
                    xyxy=np.array([r.xyxy for r in objects], dtype=np.float64),
                    confidence=np.array([max(r.fill, 0.05) for r in objects]),
                    class_id=np.full(len(objects), OBJECT_CLASS_ID, dtype=np.int64),
                    since=np.array([r.first_seen_t for r in objects], dtype=np.float64),
                )
            )
        if not parts:
            return Detections.empty()
        extra = Detections.concatenate(parts)
        if len(seen) and len(extra):
            covered = np.asarray((iou_matrix(extra.xyxy, seen.xyxy) >= COVERED_IOU).any(axis=1), dtype=bool)
            extra = extra[~covered]
        return extra

    def warnings(self) -> list[str]:
        """Why this camera's frames may hide obstructions (for the audit summary), if they may."""
        finder = self.finder
        problems = []
        if not finder.usable:
            problems.append(
                f"frames are {finder.frame_width}x{finder.frame_height}: lower than "
                f"{finder.settings.min_height} px, too small to find objects that stay"
            )
        if self.model is not None and self.people_vehicles is None:
            problems.append(
                "the people-and-vehicles model did not load: a person or vehicle that stays may be reported"
            )
        if finder.frames_seen and finder.frames_too_dark / finder.frames_seen > TOO_DARK_SHARE:
            problems.append(
                f"{finder.frames_too_dark} of {finder.frames_seen} analysed frames were too dark "
                f"(median grey below {finder.settings.min_median:g}) to find objects that stay"
            )
        return problems

    def _judgement(self, region: StationaryRegion, image: Image, seen: Detections) -> _Judgement:
        known = self._judged.get(region.region_id)
        if known is not None and known.box == region.xyxy:
            return known
        # One look forms no track: only a box at the track threshold names the region.
        confident = getattr(self.model, "confident", None) if self.model is not None else None
        named = _on_region(confident(seen) if confident is not None else seen, region.xyxy)
        if named is not None:
            # The frame's own model already named what is there, at the full frame: a crop would cost a
            # second inference (~100 ms, more than the finder's whole update) to say so again. Remembered,
            # it stands in for the frame's box on the frames where someone hides part of the object.
            return _Judgement(region.xyxy, "model", named)
        crop, (ox, oy) = _crop(image, region.xyxy)
        if self.model is not None:
            self.crops_inferred += 1
            found = self.model.predict([crop])[0]
            if confident is not None:
                found = confident(found)
            placed = replace(found, xyxy=found.xyxy + np.array([ox, oy, ox, oy], dtype=np.float64))
            hit = _on_region(placed, region.xyxy)
            if hit is not None:
                return _Judgement(region.xyxy, "model", hit)
        if self.people_vehicles is not None:
            found_boxes = self.people_vehicles.find(crop)
            if len(found_boxes):
                shifted = found_boxes + np.array([ox, oy, ox, oy], dtype=np.float64)
                if (iou_matrix(shifted, np.array([region.xyxy]))[:, 0] >= COVERED_IOU).any():
                    self.people_vehicles_dismissed += 1
                    return _Judgement(region.xyxy, "person_or_vehicle", Detections.empty())
        return _Judgement(region.xyxy, "object", Detections.empty())


def _on_region(found: Detections, xyxy: tuple[float, float, float, float]) -> Detections | None:
    """The most confident of ``found`` that is the region's object (IoU ≥ ``COVERED_IOU``), if one is."""
    if not len(found):
        return None
    on_region = iou_matrix(found.xyxy, np.array([xyxy]))[:, 0] >= COVERED_IOU
    if not on_region.any():
        return None
    best = int(np.argmax(np.where(on_region, found.confidence, -1.0)))
    return Detections(
        xyxy=found.xyxy[best : best + 1],
        confidence=found.confidence[best : best + 1],
        class_id=found.class_id[best : best + 1],
    )


def _crop(image: Image, xyxy: tuple[float, float, float, float]) -> tuple[Image, tuple[int, int]]:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = xyxy
    side_x = max((x2 - x1) * (1 + 2 * CROP_MARGIN), MIN_CROP_PX)
    side_y = max((y2 - y1) * (1 + 2 * CROP_MARGIN), MIN_CROP_PX)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = max(0, round(cx - side_x / 2)), max(0, round(cy - side_y / 2))
    right, bottom = min(width, round(cx + side_x / 2)), min(height, round(cy + side_y / 2))
    return np.ascontiguousarray(image[top:bottom, left:right]), (left, top)
