"""Review verdicts and precision, and the store's metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from service.core.lifecycle import OPEN_STATUSES
from service.models import AlertRecordRow, Camera, Case, CaseChange, WebhookDelivery, WebhookEndpoint
from service.schemas import PrecisionRow

# ---- review verdicts and precision ----------------------------------------------------------------

VERDICTS: Final[dict[str, Literal["filed", "rejected"]]] = {"file": "filed", "reject": "rejected"}
"""Actions that are a review verdict on an AI report, and the verdict each gives."""


def iso_week(value: datetime) -> str:
    """ISO 8601 week of ``value`` in UTC, e.g. ``2026-W48``."""
    year, week, _ = value.astimezone(UTC).isocalendar()
    return f"{year:04d}-W{week:02d}"


def _latest_verdicts() -> Subquery:
    """(case_id, seq) of each case's verdict: its latest change of kind action that files or rejects it."""
    return (
        select(CaseChange.case_id, func.max(CaseChange.seq).label("seq"))
        .where(CaseChange.kind == "action", CaseChange.action.in_(list(VERDICTS)))
        .group_by(CaseChange.case_id)
        .subquery()
    )


@dataclass(frozen=True)
class PrecisionFilter:
    camera_id: str | None = None
    category: Sequence[str] = ()
    since: datetime | None = None  # verdict time (pending reports: alerted_at) >= since
    until: datetime | None = None  # … < until


def precision_by_week(session: Session, *, filters: PrecisionFilter) -> list[PrecisionRow]:
    """Filed / rejected verdicts per camera, category and ISO week of the verdict (UTC), with the reports
    still awaiting review counted in the week they were alerted; ordered by camera, category, week."""
    latest = _latest_verdicts()
    conditions: list[Any] = []
    if filters.camera_id is not None:
        conditions.append(Case.camera_id == filters.camera_id)
    if filters.category:
        conditions.append(Case.category.in_(list(filters.category)))
    verdict_time = [
        *([CaseChange.at >= filters.since] if filters.since else []),
        *([CaseChange.at < filters.until] if filters.until else []),
    ]
    alert_time = [
        *([Case.alerted_at >= filters.since] if filters.since else []),
        *([Case.alerted_at < filters.until] if filters.until else []),
    ]
    verdicts = session.execute(
        select(Case.camera_id, Case.category, CaseChange.action, CaseChange.at)
        .join(latest, latest.c.seq == CaseChange.seq)
        .join(Case, Case.id == CaseChange.case_id)
        .where(*conditions, *verdict_time)
    )
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for camera_id, category, action, at in verdicts:
        key = (camera_id, category, iso_week(at))
        bucket = counts.setdefault(key, {"filed": 0, "rejected": 0, "pending": 0})
        bucket[VERDICTS[str(action)]] += 1
    # Only reported cases can still await review: no transition leads back to reported.
    pending = session.execute(
        select(Case.camera_id, Case.category, Case.alerted_at).where(
            Case.status == "reported", *conditions, *alert_time
        )
    )
    for camera_id, category, alerted_at in pending:
        key = (camera_id, category, iso_week(alerted_at))
        counts.setdefault(key, {"filed": 0, "rejected": 0, "pending": 0})["pending"] += 1
    rows = []
    for (camera_id, category, week), bucket in sorted(counts.items()):
        decided = bucket["filed"] + bucket["rejected"]
        rows.append(
            PrecisionRow(
                camera_id=camera_id,
                category=category,  # type: ignore[arg-type]
                week=week,
                filed=bucket["filed"],
                rejected=bucket["rejected"],
                pending=bucket["pending"],
                precision=bucket["filed"] / decided if decided else None,
            )
        )
    return rows


def verdict_counts(session: Session) -> dict[tuple[str, str, str], int]:
    """All-time verdicts: (camera_id, category, "filed" | "rejected") → cases."""
    latest = _latest_verdicts()
    rows = session.execute(
        select(Case.camera_id, Case.category, CaseChange.action, func.count())
        .join(latest, latest.c.seq == CaseChange.seq)
        .join(Case, Case.id == CaseChange.case_id)
        .group_by(Case.camera_id, Case.category, CaseChange.action)
    ).all()
    return {(camera_id, category, VERDICTS[str(action)]): int(n) for camera_id, category, action, n in rows}


# ---- metrics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreMetrics:
    alerts: dict[str, int]
    cases: dict[str, int]
    overdue: int
    deliveries: dict[str, int]
    delivery_failures: int
    endpoints_disabled: int
    cameras: dict[str, int]
    verdicts: dict[tuple[str, str, str], int]  # (camera, category, "filed" | "rejected") → cases


def store_metrics(session: Session, *, now: datetime) -> StoreMetrics:
    alerts = dict(session.execute(select(AlertRecordRow.event, func.count()).group_by(AlertRecordRow.event)).all())
    cases = dict(session.execute(select(Case.status, func.count()).group_by(Case.status)).all())
    overdue = session.scalar(
        select(func.count()).select_from(Case).where(Case.status.in_(list(OPEN_STATUSES)), Case.due_at < now)
    )
    deliveries = dict(
        session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
    )
    failures = session.scalar(select(func.coalesce(func.sum(WebhookDelivery.failures), 0)))
    disabled = session.scalar(
        select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_not(None))
    )
    cameras = dict(session.execute(select(Camera.status, func.count()).group_by(Camera.status)).all())
    return StoreMetrics(
        alerts={str(k): int(v) for k, v in alerts.items()},
        cases={str(k): int(v) for k, v in cases.items()},
        overdue=int(overdue or 0),
        deliveries={str(k): int(v) for k, v in deliveries.items()},
        delivery_failures=int(failures or 0),
        endpoints_disabled=int(disabled or 0),
        cameras={str(k): int(v) for k, v in cameras.items()},
        verdicts=verdict_counts(session),
    )


def ping(session: Session) -> None:
    session.execute(select(1))
