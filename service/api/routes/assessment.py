"""The assessment table (考核): per team, grid, camera or category over a period, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from service import crud
from service.api.deps import ERROR_RESPONSES, NowDep, SessionDep, SupervisorPrincipal
from service.schemas import IsoDatetime
from service.schemas_accountability import AssessBy, Assessment, AssessmentRow

router = APIRouter(prefix="/api/v1", tags=["stats"])

MAX_PERIOD_DAYS: Final = 400
CSV_COLUMNS: Final = tuple(AssessmentRow.model_fields)


def assessment_csv(table: Assessment) -> str:
    """The table's rows, then the total row ('(all)'), with the JSON field names as the header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in [*table.items, table.total]:
        values = row.model_dump()
        writer.writerow(["" if values[name] is None else values[name] for name in CSV_COLUMNS])
    return out.getvalue()


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


@router.get(
    "/stats/assessment",
    response_model=Assessment,
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The table (JSON or CSV)."},
    },
    summary="Assessment (考核) per team, grid, camera or category over a period",
    description=(
        "One row per group over the cases alerted in [from, to), computed from the case history as it stood at "
        "min(to, now): reported, filed, rejected, filing rate, dispatched, handled on time (before the category's "
        "处置时限), overdue, closed, closing rate, reopened (核查不通过) and rework rate, self-rectified, median "
        "hours alert→closed, repeat places; README 'Assessment' defines each. CSV with `format=csv` or "
        f"`Accept: text/csv` (the total row last). At most {MAX_PERIOD_DAYS} days. Supervisors and admins."
    ),
)
def assessment(
    principal: SupervisorPrincipal,
    session: SessionDep,
    now: NowDep,
    request: Request,
    start: Annotated[IsoDatetime, Query(alias="from", description="Cases alerted at or after this (ISO 8601).")],
    end: Annotated[IsoDatetime, Query(alias="to", description="… and before this.")],
    by: Annotated[AssessBy, Query(description="What a row groups.")] = "team",
    fmt: Annotated[Literal["json", "csv"] | None, Query(alias="format", description="csv: text/csv.")] = None,
) -> Response | Assessment:
    if end <= start or (end - start).days > MAX_PERIOD_DAYS:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "to"),
                    "msg": f"to must lie after from, at most {MAX_PERIOD_DAYS} days later",
                    "type": "period_invalid",
                }
            ]
        )
    table = crud.assess(session, start=start, end=end, by=by, now=now)
    if _wants_csv(request, fmt):
        name = f"assessment-{by}-{start.date().isoformat()}-{end.date().isoformat()}.csv"
        return Response(
            assessment_csv(table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return table
