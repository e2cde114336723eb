"""Confidence judged per track, not per frame (DESIGN §4; Frigate's ``min_score`` / ``threshold``).

The model is asked for every box above a class's ``min_score``: such a box starts or continues a track
(here: an incident, which is the place-keyed track the rules count on). The incident may fire only once
its *computed score* has reached the class ``threshold``: the median of its most recent scores, padded
with zeros to three, as Frigate computes it. Once reached, the incident stays confirmed (Frigate's
"true positive" is the top computed score, not the current one).

Why a median of recent scores instead of one frame above a threshold:

* a look-alike that flickers above the threshold in a single frame (a parasol caught at one angle) has a
  median near its usual score and never fires, where a per-frame threshold let that frame through;
* a real object whose frames hover around the threshold (0.60, 0.72, 0.61 …) is followed from its first
  box above ``min_score``, so its incident starts when it appeared, not at the first frame that happened
  to clear the threshold, and the gaps between such frames no longer end it;
* padding to three means one or two boxes alone never confirm anything, whatever their score.

Classes without a threshold (``object``, what the stationary-object finder reports) are confirmed at once:
the finder's own rules (held for ``min_stay_s``, restlessness) already judged them over time.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

SCORE_HISTORY: Final[int] = 10
"""Recent scores kept per incident (Frigate keeps ten)."""
PAD_TO: Final[int] = 3
"""Fewer scores than this are padded with zeros before the median."""


def computed_score(scores: Sequence[float]) -> float:
    """Median of the most recent ``SCORE_HISTORY`` scores, padded with zeros to ``PAD_TO``."""
    recent = list(scores[-SCORE_HISTORY:])
    if len(recent) < PAD_TO:
        recent += [0.0] * (PAD_TO - len(recent))
    return float(statistics.median(recent))


@dataclass(frozen=True)
class TrackScoreRule:
    """Per-class track thresholds (by object class name); a class not named is confirmed at once."""

    thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.thresholds.items():
            if not 0 < float(value) <= 1:
                raise ValueError(f"track threshold of {name!r} must lie in (0, 1], got {value!r}")

    @classmethod
    def of(cls, thresholds: Mapping[str, float] | None) -> TrackScoreRule | None:
        """The rule for these per-class thresholds; None (every detection counts) without them."""
        return None if thresholds is None else cls({str(k): float(v) for k, v in thresholds.items()})

    def confirms(self, object_class: str, scores: Sequence[float]) -> bool:
        """Whether a track of ``object_class`` with these scores (oldest first) is a true positive."""
        threshold = self.thresholds.get(object_class)
        if threshold is None:
            return True
        return computed_score(scores) >= float(threshold) - 1e-9


__all__ = ["PAD_TO", "SCORE_HISTORY", "TrackScoreRule", "computed_score"]
