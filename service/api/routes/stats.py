"""Review statistics: how often each camera's AI reports hold up (precision from operators' verdicts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service import crud
from service.api.deps import ERROR_RESPONSES, ReviewerPrincipal, SessionDep
from service.schemas import IsoDatetime, PrecisionList
from zones.categories import Category

router = APIRouter(prefix="/api/v1", tags=["stats"])


@router.get(
    "/stats/precision",
    response_model=PrecisionList,
    responses=ERROR_RESPONSES,
    summary="Precision of AI reports per camera, category and week, from review verdicts",
    description=(
        "A case's verdict is its latest `file` (立案, a true report) or `reject` (误报, a false alarm) action; "
        "`week` is the ISO week of the verdict in UTC. `precision` = filed / (filed + rejected), null when "
        "a row holds only reports still awaiting review (`pending`, counted in the week they were alerted). "
        "`since`/`until` bound the verdict time (for pending reports: alerted_at). Operators, supervisors, admins."
    ),
)
def precision(
    principal: ReviewerPrincipal,
    session: SessionDep,
    camera: Annotated[str | None, Query(max_length=64, description="Camera id.")] = None,
    category: Annotated[list[Category] | None, Query(description="Repeatable.")] = None,
    since: Annotated[IsoDatetime | None, Query(description="Verdict time ≥ since (ISO 8601 with offset).")] = None,
    until: Annotated[IsoDatetime | None, Query(description="Verdict time < until.")] = None,
) -> PrecisionList:
    filters = crud.PrecisionFilter(camera_id=camera, category=tuple(category or ()), since=since, until=until)
    return PrecisionList(items=crud.precision_by_week(session, filters=filters))
