"""Cases: list, detail with audit trail, lifecycle actions, evidence, officers' photos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from service import crud
from service.api.access import AccessLogDep
from service.api.deps import (
    ERROR_RESPONSES,
    CaseFilterDep,
    DbDep,
    NowDep,
    OfficerPrincipal,
    OffsetQuery,
    ReaderPrincipal,
    SessionDep,
    SettingsDep,
)
from service.core.db import Database
from service.core.security import Principal
from service.schemas import ActionRequest, CaseDetail, CaseList, ErrorOut

router = APIRouter(prefix="/api/v1", tags=["cases"])
upload_router = APIRouter(prefix="/api/v1", tags=["cases"])

CaseId = Annotated[str, Path(max_length=64, description="Case id (the alert record's UUID).")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such case (or not your team's)."}
}


@router.get("/cases", response_model=CaseList, responses=ERROR_RESPONSES, summary="List cases")
def list_cases(
    principal: ReaderPrincipal,
    session: SessionDep,
    filters: CaseFilterDep,
    now: NowDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
) -> CaseList:
    """Newest first (by alerted_at). Officers see only cases dispatched to their team."""
    rows, total = crud.list_cases(session, filters=filters, actor=principal, now=now, limit=limit, offset=offset)
    return CaseList(items=[crud.case_public(row, now=now) for row in rows], total=total)


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    responses={**ERROR_RESPONSES, **_NOT_FOUND},
    summary="One case with its audit trail",
)
def get_case(
    case_id: CaseId, principal: ReaderPrincipal, session: SessionDep, settings: SettingsDep, now: NowDep
) -> CaseDetail:
    """With ``unit_record`` for cases with a responsibility unit (not for officers: it lists the unit's other
    cases, which may be other teams')."""
    case = crud.get_case(session, case_id=case_id, actor=principal)
    days = settings.remind_repeat_days if principal.role != "officer" else None
    return crud.case_detail(session, case=case, now=now, unit_days=days)


@router.post(
    "/cases/{case_id}/actions",
    response_model=CaseDetail,
    responses={
        **ERROR_RESPONSES,
        **_NOT_FOUND,
        409: {"model": ErrorOut, "description": "Action not allowed from the case's current status."},
        422: {
            "model": ErrorOut,
            "description": "Missing note or reason, no team to dispatch to, label without a clean snapshot, bad body.",
        },
    },
    summary="Move a case through its lifecycle",
    description=(
        "reported →file→ filed | →reject→ rejected; filed →dispatch→ dispatched (to `team`, default the "
        "grid's team; sends `case.dispatched` to the team's webhooks); dispatched →handle→ handled; "
        "handled →close→ closed | →reopen→ dispatched (核查不通过). reopen needs a note, reject a note or a "
        "`reason`. `file` may carry a `label`: the operator's corrected box and class in pixels of the case's "
        "`snapshot_clean` evidence (the case must have one). `team` only with dispatch, `label` only with file, "
        "`reason` only with reject. Every step is recorded in the case history, label and reason included."
    ),
)
def act_on_case(
    case_id: CaseId, body: ActionRequest, principal: ReaderPrincipal, db: DbDep, now: NowDep, request: Request
) -> CaseDetail:
    with db.writing() as session:
        case, queued = crud.apply_action(session, case_id=case_id, request=body, actor=principal, now=now)
        detail = crud.case_detail(session, case=case, now=now)
    if queued:
        request.app.state.wake_relay()
    return detail


@router.get(
    "/cases/{case_id}/evidence/{index}",
    response_class=Response,
    responses={
        **ERROR_RESPONSES,
        **_NOT_FOUND,
        200: {"content": {"image/jpeg": {}, "image/png": {}, "video/mp4": {}}, "description": "The file."},
    },
    summary="One evidence file of a case",
)
def get_evidence(
    case_id: CaseId,
    index: Annotated[int, Path(ge=0, le=64)],
    principal: ReaderPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    access: AccessLogDep,
) -> Response:
    case = crud.get_case(session, case_id=case_id, actor=principal)
    found = crud.evidence_file(session, case=case, index=index, evidence_dir=settings.evidence_dir)
    access(principal, "evidence.read", f"case/{case.id}/evidence/{index}", detail=case.evidence[index]["kind"])
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    if found.path is not None:
        return FileResponse(found.path, media_type=found.content_type, headers=headers)
    return Response(content=found.data, media_type=found.content_type, headers=headers)


def _add_photo(
    db: Database, case_id: str, data: bytes, content_type: str, actor: Principal, now: datetime
) -> CaseDetail:
    with db.writing() as session:
        case = crud.add_case_photo(session, case_id=case_id, data=data, content_type=content_type, actor=actor, now=now)
        return crud.case_detail(session, case=case, now=now)


@upload_router.post(
    "/cases/{case_id}/photos",
    response_model=CaseDetail,
    responses={
        **ERROR_RESPONSES,
        **_NOT_FOUND,
        409: {"model": ErrorOut, "description": "Case is not dispatched or handled."},
        413: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
    summary="Attach an officer's handling photo (raw image body)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def add_photo(
    case_id: CaseId,
    request: Request,
    principal: OfficerPrincipal,
    db: DbDep,
    now: NowDep,
    content_type: Annotated[str, Header()] = "application/octet-stream",
) -> CaseDetail:
    data = await request.body()
    return await run_in_threadpool(_add_photo, db, case_id, data, content_type, principal, now)
