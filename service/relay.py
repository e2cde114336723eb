"""Outbox relay: leases due webhook deliveries, sends Standard Webhooks-signed POSTs, retries.

Safe with several relays on one database (several serve processes or replicas): a delivery is
leased before it is sent, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and one atomic
``UPDATE … WHERE id IN (due, unleased)`` on SQLite (whose writers are serialised anyway). A relay
that dies mid-send loses nothing: its lease expires and another relay sends the message again with
the same ``webhook-id``, which receivers dedupe on (at-least-once delivery).

All time comes from the injected clock, so tests can walk through three days of retries.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx
from sqlalchemy import or_, select, update

from service.core.clock import Clock, utc_now
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import Invalid
from service.core.security import webhook_headers
from service.core.ssrf import Resolver, check_webhook_url
from service.models import OutboxMessage, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("streetwatch.relay")
_OWNER_MAX = 64 - 13  # WebhookDelivery.lease_owner is String(64); a token adds ":" + 12 hex


@dataclass(frozen=True)
class Lease:
    delivery_id: str
    token: str
    message_id: str
    body: str
    endpoint_id: str
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    kind: Literal["delivered", "retry", "gone"]
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class Relay:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
        resolve: Resolver = socket.getaddrinfo,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.resolve = resolve
        # Cut to fit: a lease token is the owner plus 13 characters, in lease_owner VARCHAR(64); a longer
        # host name (Kubernetes pod names reach 63) made every lease fail on PostgreSQL.
        self.owner = (owner or f"{socket.gethostname()[: _OWNER_MAX - 9]}:{uuid.uuid4().hex[:8]}")[:_OWNER_MAX]
        self._client = client or httpx.Client(timeout=settings.relay_timeout_s, follow_redirects=False)
        self._owns_client = client is None
        self._pool = ThreadPoolExecutor(max_workers=settings.relay_batch, thread_name_prefix="relay-send")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- leasing --------------------------------------------------------------------------------

    def lease(self) -> list[Lease]:
        now = self.clock()
        token = f"{self.owner}:{uuid.uuid4().hex[:12]}"
        due = (
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
                WebhookEndpoint.disabled_at.is_(None),
                or_(WebhookEndpoint.paused_until.is_(None), WebhookEndpoint.paused_until <= now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(self.settings.relay_batch)
        )
        until = now + timedelta(seconds=self.settings.relay_lease_s)
        with self.db.reading() as session:
            # Cheap read first: an idle relay should not take SQLite's write lock every poll.
            if session.execute(due.limit(1)).first() is None:
                return []
        with self.db.writing() as session:
            if self.db.dialect == "postgresql":
                ids = list(session.scalars(due.with_for_update(skip_locked=True, of=WebhookDelivery)).all())
                if not ids:
                    return []
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(ids))
                    .values(lease_owner=token, lease_until=until)
                )
            else:
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(due.scalar_subquery()))
                    .values(lease_owner=token, lease_until=until)
                    .execution_options(synchronize_session=False)
                )
            rows = session.execute(
                select(WebhookDelivery.id, OutboxMessage.id, OutboxMessage.payload, WebhookEndpoint)
                .join(OutboxMessage, OutboxMessage.id == WebhookDelivery.message_id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.lease_owner == token)
            ).all()
        return [
            Lease(
                delivery_id=delivery_id,
                token=token,
                message_id=message_id,
                body=body,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                secret=endpoint.secret,
            )
            for delivery_id, message_id, body, endpoint in rows
        ]

    # ---- sending --------------------------------------------------------------------------------

    def send(self, lease: Lease) -> Outcome:
        now = self.clock()
        try:
            # Again at send time: DNS may have changed since the endpoint was registered.
            check_webhook_url(lease.url, allow_private=self.settings.webhook_allow_private, resolve=self.resolve)
        except Invalid as refused:
            return Outcome("retry", error=f"refused: {refused.detail}")
        headers = webhook_headers(lease.secret, lease.message_id, int(now.timestamp()), lease.body)
        try:
            response = self._client.post(lease.url, content=lease.body.encode("utf-8"), headers=headers)
        except httpx.HTTPError as error:
            return Outcome("retry", error=f"{type(error).__name__}: {error}"[:500])
        if 200 <= response.status_code < 300:
            return Outcome("delivered", status_code=response.status_code)
        if response.status_code == 410:
            return Outcome("gone", status_code=410, error="410 Gone: receiver retired this endpoint")
        return Outcome(
            "retry",
            status_code=response.status_code,
            error=f"HTTP {response.status_code}",
            retry_after_s=parse_retry_after(response.headers.get("retry-after"), now),
        )

    def backoff_s(self, attempts: int) -> float:
        """Exponential backoff with equal jitter: uniform in [d/2, d], d = base·2^(n-1) capped."""
        # attempts keeps counting across operator requeues; 2**1024 no longer fits a float, so the
        # exponent stops at 1023 (float products overflow to inf, which the cap then bounds).
        exponent = min(max(0, attempts - 1), 1023)
        delay = min(self.settings.retry_cap_s, self.settings.retry_base_s * 2.0**exponent)
        return delay / 2 + self.rng.uniform(0, delay / 2)

    def record(self, lease: Lease, outcome: Outcome) -> None:
        now = self.clock()
        with self.db.writing() as session:
            delivery = session.get(WebhookDelivery, lease.delivery_id, with_for_update=True)
            if delivery is None or delivery.lease_owner != lease.token or delivery.status != "pending":
                # Our lease expired and another relay took over; it will record its own attempt.
                log.warning("lost lease on delivery %s", lease.delivery_id)
                return
            # Fresh window: nothing has failed since the delivery was written or requeued (both set
            # next_attempt_at = retry_from; after a failure next_attempt_at lies past it).
            fresh_window = delivery.next_attempt_at <= delivery.retry_from
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            delivery.lease_owner = None
            delivery.lease_until = None
            if outcome.kind == "delivered":
                delivery.status = "delivered"
                delivery.delivered_at = now
                return
            delivery.failures += 1
            if fresh_window:
                # The retry window runs from the first failed attempt, not from when the message was
                # written: time the relay itself was down (or busy with a backlog) must not use up the
                # receiver's 3 days, or one failed attempt after a long relay outage would kill a message.
                delivery.retry_from = now
            endpoint = session.get(WebhookEndpoint, lease.endpoint_id, with_for_update=True)
            if outcome.kind == "gone":
                # The delivery stays pending: re-enabling the endpoint resumes it, with a fresh window
                # (the days the endpoint stayed disabled are not the receiver failing).
                if endpoint is not None and endpoint.disabled_at is None:
                    endpoint.disabled_at = now
                    endpoint.disabled_reason = "receiver answered 410 Gone"
                delivery.next_attempt_at = delivery.retry_from = now
                return
            if (now - delivery.retry_from).total_seconds() >= self.settings.retry_for_s:
                delivery.status = "failed"
                log.error("delivery %s to %s exhausted after %d attempts", delivery.id, lease.url, delivery.attempts)
                return
            delay = self.backoff_s(delivery.attempts)
            if outcome.retry_after_s is not None:
                wait = min(outcome.retry_after_s, self.settings.retry_after_cap_s)
                delay = max(delay, wait)
                if endpoint is not None:
                    paused = now + timedelta(seconds=wait)
                    if endpoint.paused_until is None or endpoint.paused_until < paused:
                        endpoint.paused_until = paused
            delivery.next_attempt_at = now + timedelta(seconds=delay)

    def run_once(self) -> int:
        """Lease one batch, send it concurrently, record every outcome; returns the batch size."""
        leases = self.lease()
        if not leases:
            return 0
        outcomes = list(self._pool.map(self.send, leases))
        for lease, outcome in zip(leases, outcomes, strict=True):
            self.record(lease, outcome)
        return len(leases)

    # ---- background thread ---------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a database hiccup must not kill the relay
                log.exception("relay round failed")
                busy = 0
            if not busy:
                self._wake.wait(self.settings.relay_poll_s)
                self._wake.clear()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"relay-{self.owner}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in flight, then stop. Leases are released by recording outcomes."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True)
        if self._owns_client:
            self._client.close()
