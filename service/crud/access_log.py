"""The access log: append a row per evidence read, bundle export, config change, token creation and login;
list them; purge those past the retention. Nothing here updates a row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.core.security import Principal
from service.models import AccessLogEntry

ACCESS_ACTIONS: Final = (
    "evidence.read",
    "bundle.export",
    "config.change",
    "token.create",
    "token.revoke",
    "login",
    "login.failed",
)
"""What an access-log row records (``action``)."""


def record_access(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    target: str,
    client: str,
    now: datetime,
    detail: str | None = None,
) -> AccessLogEntry:
    row = AccessLogEntry(
        at=now,
        actor=actor.name if actor else "",
        role=actor.role if actor else "",
        token_id=actor.token_id if actor else None,
        action=action,
        target=target[:256],
        client=client[:64],
        detail=detail[:512] if detail else None,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AccessLogFilter:
    actor: str | None = None
    action: Sequence[str] = ()
    target: str | None = None  # prefix: "case/<id>" finds every read of that case
    since: datetime | None = None
    until: datetime | None = None


def list_access_log(
    session: Session, *, filters: AccessLogFilter, limit: int, offset: int
) -> tuple[Sequence[AccessLogEntry], int]:
    """Newest first."""
    conditions = []
    if filters.actor is not None:
        conditions.append(AccessLogEntry.actor == filters.actor)
    if filters.action:
        conditions.append(AccessLogEntry.action.in_(list(filters.action)))
    if filters.target:
        escaped = filters.target.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(AccessLogEntry.target.like(escaped + "%", escape="\\"))
    if filters.since is not None:
        conditions.append(AccessLogEntry.at >= filters.since)
    if filters.until is not None:
        conditions.append(AccessLogEntry.at < filters.until)
    total = session.scalar(select(func.count()).select_from(AccessLogEntry).where(*conditions)) or 0
    rows = session.scalars(
        select(AccessLogEntry)
        .where(*conditions)
        .order_by(AccessLogEntry.at.desc(), AccessLogEntry.seq.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, int(total)


def purge_access_log(session: Session, *, before: datetime) -> int:
    """Delete the rows older than ``before`` (the retention job); returns how many."""
    result = session.execute(delete(AccessLogEntry).where(AccessLogEntry.at < before))
    return int(getattr(result, "rowcount", 0) or 0)
