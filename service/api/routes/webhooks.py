"""Dispatch endpoints and the outbox as operators see it: backlog, failures, manual retry."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from service import crud
from service.api.deps import (
    ERROR_RESPONSES,
    AdminPrincipal,
    DbDep,
    NowDep,
    OffsetQuery,
    ReviewerPrincipal,
    SessionDep,
    SettingsDep,
    SupervisorPrincipal,
)
from service.schemas import DeliveryList, ErrorOut, WebhookCreate, WebhookCreated, WebhookList, WebhookPublic

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
EndpointId = Annotated[str, Path(max_length=36)]


@router.get("/webhooks", response_model=WebhookList, responses=ERROR_RESPONSES, summary="Endpoints with backlog")
def list_webhooks(principal: ReviewerPrincipal, session: SessionDep) -> WebhookList:
    return WebhookList(items=crud.list_webhooks(session))


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses={**ERROR_RESPONSES, 422: {"model": ErrorOut, "description": "Refused URL (SSRF policy)."}},
    summary="Register a team's endpoint; the answer carries its whsec_ secret once",
)
def add_webhook(
    body: WebhookCreate, principal: AdminPrincipal, db: DbDep, settings: SettingsDep, now: NowDep
) -> WebhookCreated:
    with db.writing() as session:
        endpoint, secret = crud.add_webhook(
            session,
            team=body.team,
            url=str(body.url),
            events=body.events,
            now=now,
            allow_private=settings.webhook_allow_private,
        )
        public = crud.webhook_public(endpoint, {})
    return WebhookCreated(**public.model_dump(), secret=secret)


@router.post(
    "/webhooks/{endpoint_id}/disable",
    response_model=WebhookPublic,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorOut}},
    summary="Stop deliveries to an endpoint (they wait, nothing is dropped)",
)
def disable_webhook(endpoint_id: EndpointId, principal: AdminPrincipal, db: DbDep, now: NowDep) -> WebhookPublic:
    with db.writing() as session:
        return crud.set_webhook_enabled(session, endpoint_id=endpoint_id, enabled=False, now=now)


@router.post(
    "/webhooks/{endpoint_id}/enable",
    response_model=WebhookPublic,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorOut}},
    summary="Resume deliveries (e.g. after a 410 Gone was fixed)",
)
def enable_webhook(
    endpoint_id: EndpointId, principal: AdminPrincipal, db: DbDep, now: NowDep, request: Request
) -> WebhookPublic:
    with db.writing() as session:
        result = crud.set_webhook_enabled(session, endpoint_id=endpoint_id, enabled=True, now=now)
    request.app.state.wake_relay()
    return result


@router.get(
    "/webhooks/deliveries",
    response_model=DeliveryList,
    responses=ERROR_RESPONSES,
    summary="Outbox deliveries; status=failed lists the exhausted ones",
)
def list_deliveries(
    principal: ReviewerPrincipal,
    session: SessionDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    endpoint: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
) -> DeliveryList:
    items, total = crud.list_deliveries(session, status=status, endpoint_id=endpoint, limit=limit, offset=offset)
    return DeliveryList(items=items, total=total)


@router.post(
    "/webhooks/deliveries/{delivery_id}/retry",
    status_code=204,
    responses={**ERROR_RESPONSES, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    summary="Requeue an exhausted delivery with a fresh retry window",
)
def retry_delivery(
    delivery_id: Annotated[str, Path(max_length=36)],
    principal: SupervisorPrincipal,
    db: DbDep,
    now: NowDep,
    request: Request,
) -> None:
    with db.writing() as session:
        crud.retry_delivery(session, delivery_id=delivery_id, now=now)
    request.app.state.wake_relay()
