"""The access log (admins and supervisors): who read or changed what, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service import crud
from service.api.deps import ERROR_RESPONSES, OffsetQuery, SessionDep, SupervisorPrincipal
from service.schemas import IsoDatetime
from service.schemas_accountability import AccessLogEntryPublic, AccessLogList

router = APIRouter(prefix="/api/v1", tags=["access-log"])


@router.get(
    "/access-log",
    response_model=AccessLogList,
    responses=ERROR_RESPONSES,
    summary="Who read or changed what (append-only)",
    description=(
        "Every evidence read, bundle export, camera config change, token creation or revocation and "
        "login, with the token's name and role, the time and the client's address. Rows older than "
        "`STREETWATCH_ACCESS_LOG_DAYS` (365) are purged by the service. Supervisors and admins."
    ),
)
def access_log(
    principal: SupervisorPrincipal,
    session: SessionDep,
    actor: Annotated[str | None, Query(max_length=128, description="Token name.")] = None,
    action: Annotated[list[str] | None, Query(description="Repeatable: evidence.read, login, …")] = None,
    target: Annotated[str | None, Query(max_length=256, description="Target prefix, e.g. case/<id>.")] = None,
    since: Annotated[IsoDatetime | None, Query(description="at ≥ since.")] = None,
    until: Annotated[IsoDatetime | None, Query(description="at < until.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> AccessLogList:
    filters = crud.AccessLogFilter(actor=actor, action=tuple(action or ()), target=target, since=since, until=until)
    rows, total = crud.list_access_log(session, filters=filters, limit=limit, offset=offset)
    return AccessLogList(items=[AccessLogEntryPublic.model_validate(row) for row in rows], total=total)
