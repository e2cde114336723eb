"""Ingest: alert records (DESIGN §3.4) and their evidence files from cameras/detectors."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from service import crud
from service.api.deps import ERROR_RESPONSES, CameraPrincipal, DbDep, NowDep, SettingsDep
from service.core.db import Database
from service.core.errors import Conflict
from service.core.metrics import IngestCounters
from service.core.security import Principal
from service.schemas import ErrorOut, UploadedEvidence, integral_floats_as_ints, time_out_of_range
from zones.alert import AlertRecord

router = APIRouter(prefix="/api/v1", tags=["alerts"])
upload_router = APIRouter(prefix="/api/v1", tags=["alerts"])

_INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    200: {"model": AlertRecord, "description": "Already received with the same payload: the stored record."},
    409: {"model": ErrorOut, "description": "Same id and event already received with a different payload."},
    413: {"model": ErrorOut, "description": "Body larger than the limit (default 1 MiB)."},
    422: {"description": "Not a valid alert record (unknown fields included)."},
}


async def exact_alert_record(record: AlertRecord, request: Request) -> AlertRecord:
    """The body as an alert record with exactly the JSON types its schema names.

    FastAPI validates bodies in pydantic's lax Python mode, where ``"frame": false`` is frame 0,
    ``"confidence": "0.9"`` a number and ``"started_at": 12`` a time in 1970 (found by schemathesis).
    ``record`` keeps the documented schema and the first validation; the body is then validated
    again in strict JSON mode, where ISO strings still are datetimes and UUIDs.
    """
    exact = json.dumps(integral_floats_as_ints(json.loads(await request.body())))
    try:
        exact_record = AlertRecord.model_validate_json(exact, strict=True)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False)]
        ) from None
    times = {
        "started_at": exact_record.started_at,
        "alerted_at": exact_record.alerted_at,
        "ended_at": exact_record.ended_at,
    }
    errors = [
        {"loc": ("body", name), "msg": problem, "type": "datetime_out_of_range"}
        for name, value in times.items()
        if value is not None and (problem := time_out_of_range(value)) is not None
    ]
    if errors:
        raise RequestValidationError(errors)
    return exact_record


ExactAlertRecord = Annotated[AlertRecord, Depends(exact_alert_record)]


@router.post(
    "/alerts",
    status_code=201,
    response_model=AlertRecord,
    responses=_INGEST_RESPONSES,
    summary="Ingest one alert record",
    description=(
        "Idempotent on (id, event): the first delivery answers 201 and creates or updates the case; "
        "the same record again answers 200 with the stored record; the same id and event with a "
        "different payload answers 409. `violation.opened` creates a case in status `reported`; "
        "`violation.closed` attaches the end time and after-evidence and sets `cleared_at` "
        "(creating the case if its opened event was lost)."
    ),
)
def post_alert(
    record: ExactAlertRecord,
    principal: CameraPrincipal,
    db: DbDep,
    settings: SettingsDep,
    now: NowDep,
    request: Request,
) -> Response:
    counters: IngestCounters = request.app.state.ingest_counters
    try:
        outcome = crud.ingest_alert(db=db, record=record, actor=principal, now=now, settings=settings)
    except Conflict:
        counters.inc("conflict")
        raise
    counters.inc("created" if outcome.created else "duplicate")
    if outcome.queued:
        request.app.state.wake_relay()
    return Response(
        content=outcome.payload,
        status_code=201 if outcome.created else 200,
        media_type="application/json",
        headers={"Location": f"/api/v1/cases/{outcome.case_id}"},
    )


def _store(db: Database, data: bytes, content_type: str, sha256: str, now: datetime) -> UploadedEvidence:
    with db.writing() as session:
        blob = crud.store_blob(session, data=data, content_type=content_type, now=now, expected_sha256=sha256)
        return UploadedEvidence(sha256=blob.sha256, size=blob.size, content_type=blob.content_type)


@upload_router.put(
    "/evidence/{sha256}",
    response_model=UploadedEvidence,
    responses={**ERROR_RESPONSES, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    summary="Upload an evidence file named in an alert record",
    description=(
        "Raw body (image/jpeg, image/png, image/webp or video/mp4) whose SHA-256 must equal the path. "
        "Idempotent. Cases then serve it at their evidence URLs."
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def put_evidence(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    request: Request,
    principal: CameraPrincipal,
    db: DbDep,
    now: NowDep,
    content_type: Annotated[str, Header()] = "application/octet-stream",
) -> UploadedEvidence:
    _: Principal = principal
    data = await request.body()
    try:
        return await run_in_threadpool(_store, db, data, content_type, sha256, now)
    except IntegrityError:  # the same blob raced in from a concurrent upload
        return await run_in_threadpool(_store, db, data, content_type, sha256, now)
