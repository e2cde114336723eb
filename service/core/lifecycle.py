"""Case lifecycle after GB/T 30428: which action moves which status where, and who may do it."""

from __future__ import annotations

from typing import Final, Literal, get_args

from service.core.security import Role

Status = Literal["reminded", "self_rectified", "reported", "filed", "rejected", "dispatched", "handled", "closed"]
Action = Literal["file", "reject", "dispatch", "handle", "close", "reopen"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

TRANSITIONS: Final[dict[tuple[Status, Action], Status]] = {
    ("reported", "file"): "filed",  # 立案
    ("reported", "reject"): "rejected",  # 误报
    ("filed", "dispatch"): "dispatched",  # 派遣
    ("dispatched", "handle"): "handled",  # 处置反馈
    ("handled", "close"): "closed",  # 核查结案
    ("handled", "reopen"): "dispatched",  # 核查不通过
}

_REVIEW: Final[frozenset[Role]] = frozenset({"operator", "supervisor", "admin"})
ACTION_ROLES: Final[dict[Action, frozenset[Role]]] = {
    "file": _REVIEW,
    "reject": _REVIEW,
    "dispatch": _REVIEW,
    "handle": frozenset({"officer", "supervisor", "admin"}),
    "close": _REVIEW,
    "reopen": _REVIEW,
}

# Actions whose note is the reason and therefore required.
NOTE_REQUIRED: Final[frozenset[Action]] = frozenset({"reopen"})
# Actions that need a note or one of the listed reasons (schemas.RejectReason) instead.
NOTE_OR_REASON_REQUIRED: Final[frozenset[Action]] = frozenset({"reject"})

# Remind first (DESIGN §3.7): ``reminded`` waits for the unit until the reminder's deadline, moved on by
# the camera (violation.closed in time: ``self_rectified``) or the reminder job (``reported``); no
# person acts on it, so no action leads out of it. ``self_rectified`` is closed.
Mark = Literal["reminder_ignored", "repeat"]
MARKS: Final[tuple[Mark, ...]] = get_args(Mark)
"""Why a case with a remind-first zone went to an operator: the reminder ran out, or the place had one
within STREETWATCH_REMIND_REPEAT_DAYS."""

# Statuses in which the handling deadline still runs (overdue can only be flagged here).
OPEN_STATUSES: Final[frozenset[Status]] = frozenset({"reported", "filed", "dispatched"})


def next_status(status: Status, action: Action) -> Status | None:
    return TRANSITIONS.get((status, action))
