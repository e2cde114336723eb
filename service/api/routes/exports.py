"""Read-only views for other systems: GeoJSON, CAP 1.2, Prometheus metrics, health, OpenAPI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from service import crud
from service.api.deps import (
    ERROR_RESPONSES,
    CaseFilterDep,
    CurrentPrincipal,
    DbDep,
    NowDep,
    OffsetQuery,
    ReaderPrincipal,
    SessionDep,
    SupervisorPrincipal,
)
from service.core.lifecycle import STATUSES
from service.core.metrics import render
from service.models import Case
from service.schemas import ErrorOut, Feature, FeatureCollection, Health
from zones.categories import CATEGORY_LABELS

router = APIRouter(tags=["exports"])

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"


@router.get("/healthz", response_model=Health, responses={503: {"model": ErrorOut}}, summary="Liveness (no auth)")
def healthz(db: DbDep) -> Health:
    try:
        with db.reading() as session:
            crud.ping(session)
    except SQLAlchemyError as error:
        raise HTTPException(503, f"database unavailable: {type(error).__name__}") from None
    return Health(status="ok", database=db.dialect)


@router.get(
    "/metrics",
    response_class=Response,
    responses={**ERROR_RESPONSES, 200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics (scrape with a supervisor token)",
)
def metrics(principal: SupervisorPrincipal, session: SessionDep, now: NowDep, request: Request) -> Response:
    store = crud.store_metrics(session, now=now)
    text = render(store, request.app.state.ingest_counters.snapshot(), STATUSES)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/openapi.json", include_in_schema=False)
def openapi(principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


def _properties(case: Case, now: datetime) -> dict[str, Any]:
    public = crud.case_public(case, now=now)
    return {
        "status": public.status,
        "category": public.category,
        "zone": public.zone,
        "camera_id": public.camera_id,
        "grid": public.grid.code if public.grid else None,
        "team": public.team,
        "alerted_at": public.alerted_at.isoformat(),
        "due_at": public.due_at.isoformat(),
        "overdue": public.overdue,
        "repeat_of": public.repeat_of,
        "location_error_m": public.location_error_m,
    }


class GeoJSONResponse(JSONResponse):
    # Named as response_class so that the OpenAPI document lists the media type actually sent
    # (it said application/json; found by schemathesis) with the FeatureCollection schema.
    media_type = "application/geo+json"


@router.get(
    "/api/v1/cases.geojson",
    response_model=FeatureCollection,
    response_class=GeoJSONResponse,
    responses=ERROR_RESPONSES,
    summary="Cases as a GeoJSON FeatureCollection ([lon, lat])",
)
def cases_geojson(
    principal: ReaderPrincipal,
    session: SessionDep,
    filters: CaseFilterDep,
    now: NowDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: OffsetQuery = 0,
) -> Response:
    rows, _ = crud.list_cases(session, filters=filters, actor=principal, now=now, limit=limit, offset=offset)
    collection = FeatureCollection(
        features=[
            Feature(
                id=row.id,
                geometry=crud.case_public(row, now=now).location,
                properties=_properties(row, now),
            )
            for row in rows
        ]
    )
    return Response(collection.model_dump_json(), media_type=GeoJSONResponse.media_type)


def _cap_time(value: datetime) -> str:
    # CAP 1.2 §3.3.2: no "Z"; UTC is written "-00:00".
    text = value.astimezone(UTC).replace(microsecond=0).isoformat()
    return text.replace("+00:00", "-00:00")


def cap_xml(case: Case, *, now: datetime) -> bytes:
    public = crud.case_public(case, now=now)
    ET.register_namespace("", CAP_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        if text is not None:
            element.text = text
        return element

    alert = ET.Element(f"{{{CAP_NS}}}alert")
    sub(alert, "identifier", f"streetwatch-{public.id}")
    sub(alert, "sender", "streetwatch")
    sub(alert, "sent", _cap_time(now))
    sub(alert, "status", "Actual")
    sub(alert, "msgType", "Alert")
    sub(alert, "scope", "Restricted")
    sub(alert, "restriction", "city management staff")
    info = sub(alert, "info")
    sub(info, "language", "zh-CN")
    sub(info, "category", "Other")
    sub(info, "event", CATEGORY_LABELS.get(public.category, public.category))
    sub(info, "urgency", "Expected")
    sub(info, "severity", "Minor")
    certainty = {"reported": "Likely", "rejected": "Unlikely"}.get(public.status, "Observed")
    sub(info, "certainty", certainty)
    code = sub(info, "eventCode")
    sub(code, "valueName", "streetwatch:category")
    sub(code, "value", public.category)
    sub(info, "effective", _cap_time(public.alerted_at))
    sub(info, "expires", _cap_time(public.due_at))
    sub(info, "senderName", "streetwatch")
    sub(info, "headline", f"{CATEGORY_LABELS.get(public.category, public.category)} — {public.zone}")
    sub(
        info,
        "description",
        f"Camera {public.camera_id}, zone {public.zone}, case status {public.status}, "
        f"confidence {public.confidence:.2f}, first seen {public.started_at.isoformat()}.",
    )
    for name, value in (("status", public.status), ("camera", public.camera_id), ("zone", public.zone)):
        parameter = sub(info, "parameter")
        sub(parameter, "valueName", f"streetwatch:{name}")
        sub(parameter, "value", value)
    area = sub(info, "area")
    sub(area, "areaDesc", f"{public.grid.code if public.grid else 'no grid'} / {public.zone}")
    lon, lat = public.location.coordinates
    radius_km = max(public.location_error_m, 1.0) / 1000.0
    sub(area, "circle", f"{lat:.6f},{lon:.6f} {radius_km:.3f}")
    if public.grid is not None:
        geocode = sub(area, "geocode")
        sub(geocode, "valueName", "grid")
        sub(geocode, "value", public.grid.code)
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True)


@router.get(
    "/api/v1/cases/{case_id}/cap",
    response_class=Response,
    responses={
        **ERROR_RESPONSES,
        404: {"model": ErrorOut},
        200: {"content": {"application/xml": {}}, "description": "CAP 1.2 alert."},
    },
    summary='A case as a CAP 1.2 alert (area circle "lat,lon radius_km")',
)
def case_cap(
    case_id: Annotated[str, Path(max_length=64)], principal: ReaderPrincipal, session: SessionDep, now: NowDep
) -> Response:
    case = crud.get_case(session, case_id=case_id, actor=principal)
    return Response(cap_xml(case, now=now), media_type="application/xml")
