"""How the finder's regions are judged (``detector/model/obstructions.py``), with a scripted finder and model.

A region that a confident box of the frame already names is that box's object, without a crop inference
(issue #25: the crop cost a second inference per region, more than the finder's whole update); a region
the frame's model did not name confidently is looked at on a crop, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from detector.model.obstructions import OBJECT_CLASS_ID, ObstructionFinder
from detector.video.stationary import FinderSettings, FinderStep, StationaryFinder, StationaryRegion
from zones.detections import CLASS_IDS, Detections

REGION = (400.0, 300.0, 600.0, 500.0)
FIRST_SEEN_T = 3.0
TRACK_THRESHOLD = 0.5
STALL = CLASS_IDS["stall"]
IMAGE = np.zeros((720, 1280, 3), dtype=np.uint8)


@dataclass
class _Finder(StationaryFinder):
    """Holds one still region from the first frame on (what the real finder reports after ``min_stay_s``)."""

    def update(self, image: np.ndarray, t: float) -> FinderStep:
        return FinderStep([StationaryRegion(1, REGION, FIRST_SEEN_T, t, 0.8, 2.0)], scene_changed=False)


@dataclass
class _Model:
    """Finds ``on_crop`` on every crop; ``confident`` keeps boxes at the track threshold, as Detector's does."""

    on_crop: Detections
    crops: list[tuple[int, int]] = field(default_factory=list)

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        self.crops += [image.shape[:2] for image in images]
        return [self.on_crop for _ in images]

    def confident(self, detections: Detections) -> Detections:
        return detections[detections.confidence >= TRACK_THRESHOLD]


def _boxes(*boxes: tuple[tuple[float, float, float, float], float]) -> Detections:
    if not boxes:
        return Detections.empty()
    return Detections(
        xyxy=np.array([box for box, _ in boxes], dtype=np.float64),
        confidence=np.array([score for _, score in boxes]),
        class_id=np.full(len(boxes), STALL, dtype=np.int64),
    )


ON_REGION = (410.0, 290.0, 610.0, 505.0)  # IoU 0.84 with REGION
BESIDE_REGION = (560.0, 300.0, 760.0, 500.0)  # IoU 0.11
STALL_ON_CROP = _boxes(((110.0, 90.0, 300.0, 300.0), 0.7))  # crop pixels: the crop starts at (300, 200)


CROP_BOX = (410.0, 290.0, 600.0, 500.0)  # STALL_ON_CROP in frame pixels


@pytest.mark.parametrize(
    ("first_frame", "first_added", "crops", "then_box"),
    [
        pytest.param(_boxes((ON_REGION, 0.8)), 0, 0, ON_REGION, id="named-by-a-confident-frame-box: no crop"),
        pytest.param(_boxes((ON_REGION, 0.3)), 0, 1, CROP_BOX, id="low-score-frame-box: crop"),
        pytest.param(_boxes((BESIDE_REGION, 0.9)), 1, 1, CROP_BOX, id="confident-box-beside: crop"),
        pytest.param(_boxes(), 1, 1, CROP_BOX, id="nothing-seen: crop"),
    ],
)
def test_a_region_is_judged_once_by_the_frame_or_a_crop(
    first_frame: Detections, first_added: int, crops: int, then_box: tuple[float, float, float, float]
) -> None:
    model = _Model(STALL_ON_CROP)
    finder = ObstructionFinder(_Finder(1280, 720, FinderSettings()), model)
    # On the first frame a box of the frame's own that covers the region keeps the judgement out.
    assert len(finder.detections(IMAGE, 10.0, first_frame)) == first_added
    # Later frames where the frame's model misses it (someone in front): the remembered judgement stands in.
    later = [finder.detections(IMAGE, t, Detections.empty()) for t in (14.0, 18.0)]
    assert len(model.crops) == crops == finder.crops_inferred
    for added in later:
        assert added.class_id.tolist() == [STALL]
        np.testing.assert_allclose(added.xyxy[0], then_box)
        assert added.since is not None and added.since.tolist() == [FIRST_SEEN_T]


def test_a_region_no_model_names_is_an_object() -> None:
    model = _Model(Detections.empty())
    finder = ObstructionFinder(_Finder(1280, 720, FinderSettings()), model)
    added = finder.detections(IMAGE, 10.0, _boxes((ON_REGION, 0.3)))  # a low-score frame box covers it
    assert finder.crops_inferred == 1
    assert len(added) == 0  # covered on this frame by the frame's own box
    added = finder.detections(IMAGE, 14.0, Detections.empty())
    assert added.class_id.tolist() == [OBJECT_CLASS_ID]
    np.testing.assert_allclose(added.xyxy[0], REGION)
    assert finder.crops_inferred == 1  # judged once while its box stays
