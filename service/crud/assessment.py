"""The assessment table (考核) per team, grid, camera or category, computed from the case history.

Every figure is read from the audit trail (``case_changes``: each action with its time) as it stood at
``as_of`` = min(to, now), never from today's status alone: a case reopened and closed again counts as
reworked and as closed, and a report for a past month gives the same figures whenever it is asked for.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Case, CaseChange
from service.schemas_accountability import AssessBy, Assessment, AssessmentRow

NONE_GROUP: Final = "(none)"
ALL_GROUP: Final = "(all)"
SELF_RECTIFIED: Final = "self_rectified"
"""The remind-first status (and action) of a case the responsible party put right (DESIGN §3.7)."""


@dataclass
class _CaseFacts:
    """What the history says about one case as of the assessment's moment."""

    alerted_at: datetime
    due_at: datetime
    repeat: bool
    team: str | None
    filed: bool = False
    rejected: bool = False
    dispatched: bool = False
    ever_handled: bool = False
    standing_handle: datetime | None = None  # the last handle not undone by a reopen
    closed_at: datetime | None = None
    reopened: bool = False
    self_rectified: bool = False

    def apply(self, change: CaseChange) -> None:
        if change.team is not None:
            self.team = change.team
        if change.to_status == SELF_RECTIFIED or change.action == SELF_RECTIFIED:
            self.self_rectified = True
        if change.kind != "action":
            return
        action = change.action
        if action == "file":
            self.filed = True
        elif action == "reject":
            self.rejected = True
        elif action == "dispatch":
            self.dispatched = True
        elif action == "handle":
            self.ever_handled = True
            self.standing_handle = change.at
        elif action == "reopen":
            self.reopened = True
            self.standing_handle = None
        elif action == "close":
            self.closed_at = change.at


@dataclass
class _Tally:
    reported: int = 0
    filed: int = 0
    rejected: int = 0
    dispatched: int = 0
    handled_on_time: int = 0
    overdue: int = 0
    closed: int = 0
    reopened: int = 0
    handled: int = 0
    self_rectified: int = 0
    repeat_places: int = 0
    hours_to_close: list[float] = field(default_factory=list)

    def add(self, facts: _CaseFacts, as_of: datetime) -> None:
        self.reported += 1
        self.filed += facts.filed
        self.rejected += facts.rejected
        self.dispatched += facts.dispatched
        self.handled += facts.ever_handled
        self.reopened += facts.reopened
        self.self_rectified += facts.self_rectified
        self.repeat_places += facts.repeat
        if facts.standing_handle is not None and facts.standing_handle <= facts.due_at:
            self.handled_on_time += 1
        elif not (facts.rejected or facts.self_rectified):
            handled_or_still_open = facts.standing_handle or as_of
            if handled_or_still_open > facts.due_at:
                self.overdue += 1
        if facts.closed_at is not None:
            self.closed += 1
            self.hours_to_close.append((facts.closed_at - facts.alerted_at).total_seconds() / 3600)

    def row(self, group: str) -> AssessmentRow:
        def rate(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        return AssessmentRow(
            group=group,
            reported=self.reported,
            filed=self.filed,
            rejected=self.rejected,
            filing_rate=rate(self.filed, self.reported),
            dispatched=self.dispatched,
            handled_on_time=self.handled_on_time,
            overdue=self.overdue,
            closed=self.closed,
            closing_rate=rate(self.closed, self.filed),
            reopened=self.reopened,
            rework_rate=rate(self.reopened, self.handled),
            self_rectified=self.self_rectified,
            median_hours_to_close=statistics.median(self.hours_to_close) if self.hours_to_close else None,
            repeat_places=self.repeat_places,
        )


def _group_of(case: Case, facts: _CaseFacts, by: AssessBy) -> str:
    if by == "team":
        value = facts.team or case.grid_team  # not dispatched yet: the grid's team answers for it
    elif by == "grid":
        value = case.grid_code
    elif by == "camera":
        value = case.camera_id
    else:
        value = case.category
    return value or NONE_GROUP


def _changes(session: Session, case_ids: Sequence[str], as_of: datetime) -> Iterable[CaseChange]:
    for start in range(0, len(case_ids), 500):  # bounded IN lists on both backends
        chunk = list(case_ids[start : start + 500])
        yield from session.scalars(
            select(CaseChange).where(CaseChange.case_id.in_(chunk), CaseChange.at < as_of).order_by(CaseChange.seq)
        )


def assess(session: Session, *, start: datetime, end: datetime, by: AssessBy, now: datetime) -> Assessment:
    """The table over cases alerted in ``[start, end)``, their history read as of min(end, now)."""
    as_of = min(end, now)
    cases = session.scalars(
        select(Case).where(Case.alerted_at >= start, Case.alerted_at < end).order_by(Case.alerted_at, Case.id)
    ).all()
    facts = {
        case.id: _CaseFacts(
            alerted_at=case.alerted_at, due_at=case.due_at, repeat=case.repeat_of is not None, team=None
        )
        for case in cases
    }
    for change in _changes(session, list(facts), as_of):
        if change.case_id is not None:  # camera.health changes belong to no case
            facts[change.case_id].apply(change)
    groups: dict[str, _Tally] = defaultdict(_Tally)
    total = _Tally()
    for case in cases:
        groups[_group_of(case, facts[case.id], by)].add(facts[case.id], as_of)
        total.add(facts[case.id], as_of)
    return Assessment.model_validate(
        {
            "from": start,
            "to": end,
            "as_of": as_of,
            "by": by,
            "items": [tally.row(group) for group, tally in sorted(groups.items())],
            "total": total.row(ALL_GROUP),
        }
    )
