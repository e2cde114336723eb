"""Team webhook endpoints and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.core.errors import Conflict, Invalid, NotFound
from service.core.security import new_webhook_secret
from service.core.ssrf import check_webhook_url
from service.crud.common import _new_id
from service.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from service.schemas import (
    DEFAULT_WEBHOOK_EVENTS,
    MAX_URL_LENGTH,
    WEBHOOK_EVENTS,
    DeliveryPublic,
    WebhookEvent,
    WebhookPublic,
)

# ---- webhooks -------------------------------------------------------------------------------------


def endpoint_events(endpoint: WebhookEndpoint) -> list[WebhookEvent]:
    """The message types an endpoint gets (None stored: the defaults of endpoints from before §3.7)."""
    return list(endpoint.events) if endpoint.events is not None else list(DEFAULT_WEBHOOK_EVENTS)
def queue_message(
    session: Session, *, message_id: str, type_: str, team: str, case_id: str | None, body: str, now: datetime
) -> bool:
    """Outbox: the message and one delivery per live endpoint of ``team``, in the caller's transaction.
    Returns whether any delivery was queued."""
    session.add(OutboxMessage(id=message_id, type=type_, team=team, case_id=case_id, payload=body, created_at=now))
    session.flush()  # PostgreSQL checks the deliveries' foreign key per statement
    # Case messages go to the endpoints that subscribe to their type (DESIGN §3.7); camera.health goes to
    # every endpoint of its team (the admins').
    endpoints = [
        endpoint
        for endpoint in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.team == team, WebhookEndpoint.disabled_at.is_(None))
        )
        if type_ not in WEBHOOK_EVENTS or type_ in endpoint_events(endpoint)
    ]
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                id=_new_id(),
                message_id=message_id,
                endpoint_id=endpoint.id,
                status="pending",
                attempts=0,
                failures=0,
                retry_from=now,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return bool(endpoints)


def add_webhook(
    session: Session,
    *,
    team: str,
    url: str,
    now: datetime,
    allow_private: bool,
    events: Sequence[WebhookEvent] | None = None,
) -> tuple[WebhookEndpoint, str]:
    if len(url) > MAX_URL_LENGTH:
        # Normalising (IDNA, percent-encoding) can lengthen a URL past the column that stores it.
        raise Invalid(f"webhook URL is longer than {MAX_URL_LENGTH} characters once normalised")
    check_webhook_url(url, allow_private=allow_private)
    secret = new_webhook_secret()
    row = WebhookEndpoint(
        id=_new_id(),
        team=team,
        url=url,
        secret=secret,
        created_at=now,
        events=None if events is None else list(dict.fromkeys(events)),
    )
    session.add(row)
    session.flush()
    return row, secret


def _endpoint_counts(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count()).group_by(
            WebhookDelivery.endpoint_id, WebhookDelivery.status
        )
    ).all()
    return {(endpoint_id, status): count for endpoint_id, status, count in rows}


def webhook_public(endpoint: WebhookEndpoint, counts: dict[tuple[str, str], int]) -> WebhookPublic:
    return WebhookPublic(
        id=endpoint.id,
        team=endpoint.team,
        url=endpoint.url,
        created_at=endpoint.created_at,
        disabled_at=endpoint.disabled_at,
        disabled_reason=endpoint.disabled_reason,
        paused_until=endpoint.paused_until,
        events=endpoint_events(endpoint),
        pending=counts.get((endpoint.id, "pending"), 0),
        failed=counts.get((endpoint.id, "failed"), 0),
        delivered=counts.get((endpoint.id, "delivered"), 0),
    )


def list_webhooks(session: Session) -> list[WebhookPublic]:
    counts = _endpoint_counts(session)
    endpoints = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.team, WebhookEndpoint.created_at))
    return [webhook_public(endpoint, counts) for endpoint in endpoints]


def set_webhook_enabled(
    session: Session, *, endpoint_id: str, enabled: bool, now: datetime, reason: str | None = None
) -> WebhookPublic:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    if enabled:
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
        endpoint.paused_until = None
    elif endpoint.disabled_at is None:
        endpoint.disabled_at = now
        endpoint.disabled_reason = reason or "disabled by an operator"
    session.flush()
    return webhook_public(endpoint, _endpoint_counts(session))


def list_deliveries(
    session: Session,
    *,
    status: Literal["pending", "delivered", "failed"] | None,
    endpoint_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[DeliveryPublic], int]:
    conditions = []
    if status is not None:
        conditions.append(WebhookDelivery.status == status)
    if endpoint_id is not None:
        conditions.append(WebhookDelivery.endpoint_id == endpoint_id)
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(*conditions)) or 0
    rows = session.execute(
        select(WebhookDelivery, OutboxMessage, WebhookEndpoint)
        .join(OutboxMessage, OutboxMessage.id == WebhookDelivery.message_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(*conditions)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    ).all()
    items = [
        DeliveryPublic(
            id=delivery.id,
            message_id=message.id,
            type=message.type,
            case_id=message.case_id,
            endpoint_id=endpoint.id,
            team=endpoint.team,
            url=endpoint.url,
            status=delivery.status,  # type: ignore[arg-type]
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_attempt_at=delivery.last_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )
        for delivery, message, endpoint in rows
    ]
    return items, total


def retry_delivery(session: Session, *, delivery_id: str, now: datetime) -> None:
    """Requeue an exhausted delivery with a fresh retry window."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    if delivery.status != "failed":
        raise Conflict(f"delivery is {delivery.status}; only failed deliveries can be retried")
    delivery.status = "pending"
    delivery.retry_from = now
    delivery.next_attempt_at = now
    delivery.lease_owner = None
    delivery.lease_until = None
