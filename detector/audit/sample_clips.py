"""The sample clips and their truth (DESIGN §3.6a): which incidents an audit of a clip must report.

Each clip in ``sample_videos/`` is ``<clip>.mp4`` + ``<clip>.camera.yaml`` + ``<clip>.truth.json``. An
audit of the clip with ``--start-time`` = the truth's ``start_time`` must report exactly the truth's
incidents: each one matched by category, zone and a start within ``START_TOLERANCE_S``, and nothing else.
The metric gate (``tests/detector/test_sample_clips.py``) and ``streetwatch model promote`` both judge
a model with ``compare``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from zones.errors import InputError

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "sample_videos"
START_TOLERANCE_S = 5.0


@dataclass(frozen=True)
class SampleClip:
    """One demo clip: its video, camera config and truth file."""

    name: str
    folder: Path

    @property
    def video(self) -> Path:
        return self.folder / f"{self.name}.mp4"

    @property
    def camera(self) -> Path:
        return self.folder / f"{self.name}.camera.yaml"

    @property
    def truth_file(self) -> Path:
        return self.folder / f"{self.name}.truth.json"

    def truth(self) -> dict[str, Any]:
        """The truth file: ``{"start_time": ISO 8601, "incidents": [{category, zone, start_s, …}]}``."""
        try:
            truth = json.loads(self.truth_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read the truth file: {error}", file=str(self.truth_file)) from None
        if not isinstance(truth, dict) or not isinstance(truth.get("incidents"), list):
            raise InputError("a truth file needs an 'incidents' list", file=str(self.truth_file), field="incidents")
        return truth

    def start_time(self) -> datetime:
        """The wall-clock time of the clip's first frame (``--start-time`` of its audit)."""
        value = self.truth().get("start_time")
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            raise InputError(f"{value!r} is not ISO 8601", file=str(self.truth_file), field="start_time") from None


def sample_clips(folder: Path = SAMPLES_DIR) -> list[SampleClip]:
    """The clips in ``folder`` (one per ``<clip>.camera.yaml``), by name."""
    if not folder.is_dir():
        return []
    return [SampleClip(p.name.removesuffix(".camera.yaml"), folder) for p in sorted(folder.glob("*.camera.yaml"))]


@dataclass(frozen=True)
class ClipCheck:
    """How an audit's alerts compare with a clip's truth."""

    missed: list[dict[str, Any]] = field(default_factory=list)
    """Truth incidents that no alert matched."""
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    """Alerts that match no truth incident."""
    expected: int = 0

    @property
    def matches(self) -> bool:
        return not self.missed and not self.unexpected

    def describe(self) -> str:
        """``match (2 incidents)`` or ``mismatch: missed …; not in the truth: …``."""
        if self.matches:
            return f"match ({self.expected} incident{'s' if self.expected != 1 else ''})"
        parts = []
        if self.missed:
            parts.append(
                "missed "
                + ", ".join(f"{i['category']} in {i['zone']} from {float(i['start_s']):g} s" for i in self.missed)
            )
        if self.unexpected:
            parts.append(
                "not in the truth "
                + ", ".join(
                    f"{a['category']} in {a['zone']} from {float(a['video_offset_s']['start']):g} s"
                    for a in self.unexpected
                )
            )
        return "mismatch: " + "; ".join(parts)


def compare(
    alerts: Sequence[dict[str, Any]],
    incidents: Sequence[dict[str, Any]],
    *,
    tolerance_s: float = START_TOLERANCE_S,
) -> ClipCheck:
    """Match each truth incident to an alert of its category and zone that started within ``tolerance_s``
    (first come, each alert used once); what is left on either side is the mismatch."""
    unmatched = list(alerts)
    missed = []
    for incident in incidents:
        match = next(
            (
                alert
                for alert in unmatched
                if alert["category"] == incident["category"]
                and alert["zone"] == incident["zone"]
                and abs(float(alert["video_offset_s"]["start"]) - float(incident["start_s"])) <= tolerance_s
            ),
            None,
        )
        if match is None:
            missed.append(dict(incident))
        else:
            unmatched.remove(match)
    return ClipCheck(missed=missed, unexpected=unmatched, expected=len(incidents))


def read_alerts(audit_dir: Path) -> list[dict[str, Any]]:
    """The alert records of an audit's ``alerts.jsonl``."""
    text = (audit_dir / "alerts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
