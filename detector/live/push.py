"""Posting to the service (``--push URL``) without ever losing a record.

``ServiceClient`` is the one HTTP path to the service, shared by the audit's ``Pusher`` (post with
retries now, append what still fails to a JSON Lines file) and by live mode's durable spool
(``detector.live.spool``: store first, deliver in order, delete after a 2xx). Both classify answers the
same way (``classify``). The record id plus event is the service's idempotency key, so re-sending
is always safe. Camera snapshots go beside the spool (``detector.live.snapshots``).
"""

from __future__ import annotations

import enum
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from zones.alert import AlertRecord
from zones.errors import InputError

ALERTS_PATH = "/api/v1/alerts"
TOKEN_ENV = "STREETWATCH_TOKEN"

log = logging.getLogger("streetwatch.push")


EVIDENCE_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".mp4": "video/mp4"}


def evidence_content_type(path: Path) -> str:
    return EVIDENCE_CONTENT_TYPES.get(path.suffix.lower(), "image/jpeg")


def evidence_upload_path(sha256: str) -> str:
    return f"/api/v1/evidence/{sha256}"


def alerts_url(push: str) -> str:
    """Accepts the service's base URL or the full alerts endpoint."""
    push = push.rstrip("/")
    return push if push.endswith(ALERTS_PATH) else push + ALERTS_PATH


def service_base(push: str, option: str = "--push", endpoint: str = ALERTS_PATH) -> str:
    """The service's base URL from ``--push`` (the base itself or the full alerts endpoint); ``option``
    and ``endpoint`` for other options that name the service (``--config-from``)."""
    parts = urlsplit(push)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"{option} {push!r} must be an http:// or https:// URL of the service")
    return push.rstrip("/").removesuffix(endpoint)


def resolve_token(token: str | None) -> str | None:
    return token or os.environ.get(TOKEN_ENV) or None


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """Not delivered, try again later: network error, 5xx, 408, 429."""
    REJECTED = "rejected"
    """The service refuses this body (4xx); sending it again will not change its mind."""


# Auth problems are fixed by an operator (a new token), not by the record: a durable sender keeps
# such records and retries slowly instead of giving up on them.
AUTH_STATUSES = frozenset({401, 403})


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status >= 500 or status in (408, 429):
        return Outcome.RETRY
    return Outcome.REJECTED


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    status: int | None
    problem: str = ""
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Fetched:
    """A GET's answer: ``data`` (parsed JSON) when ``status`` is 200, else ``problem`` says why not."""

    status: int | None
    data: Any = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.problem


class ServiceClient:
    """POSTs JSON bodies to the service with the bearer token; never raises for transport errors."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        token = resolve_token(token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["Content-Type"] = "application/json"  # PUT of a file overrides it
        self._client = httpx.Client(headers=headers, timeout=timeout_s)

    def url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    def post_json(self, path: str, body: str) -> Delivery:
        return self._send("POST", path, body.encode("utf-8"))

    def put_bytes(self, path: str, data: bytes, content_type: str) -> Delivery:
        """Uploads a file (evidence) with its content type."""
        return self._send("PUT", path, data, {"Content-Type": content_type})

    def get_json(self, path: str) -> Fetched:
        """GET a JSON document (camera configs); never raises for transport errors or bad answers."""
        try:
            response = self._client.get(self.url(path), headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            return Fetched(None, problem=f"{type(error).__name__}: {error}")
        if response.status_code != 200:
            return Fetched(response.status_code, problem=f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            return Fetched(200, response.json())
        except ValueError:
            return Fetched(200, problem="the answer is not JSON")

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, data: bytes, headers: dict[str, str] | None = None) -> Delivery:
        try:
            response = self._client.request(method, self.url(path), content=data, headers=headers)
        except httpx.HTTPError as error:
            return Delivery(Outcome.RETRY, None, f"{type(error).__name__}: {error}")
        outcome = classify(response.status_code)
        if outcome is Outcome.DELIVERED:
            return Delivery(outcome, response.status_code)
        return Delivery(
            outcome,
            response.status_code,
            f"HTTP {response.status_code}: {response.text[:200]}",
            _retry_after(response.headers.get("Retry-After")),
        )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from our service, the normal backoff applies


class Pusher:
    """Audit ``--push``: each record is posted with retries now; one that still fails goes to a file."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        spool: Path | None = None,
        evidence_root: Path | None = None,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = alerts_url(url)
        self._service = ServiceClient(service_base(url), token, timeout_s=timeout_s)
        self._attempts = attempts
        self._backoff_s = backoff_s
        self.spool = spool
        self.evidence_root = evidence_root
        self._uploaded: set[str] = set()
        self.sent = 0
        self.errors: list[dict[str, Any]] = []

    def send(self, record: AlertRecord) -> bool:
        """Uploads the record's evidence files (so the service can show them), then the record."""
        body = record.model_dump_json()
        problem = ""
        uploads = self._evidence_uploads(record)
        for attempt in range(self._attempts):
            while uploads:
                path, data, content_type = uploads[0]
                delivery = self._service.put_bytes(path, data, content_type)
                if delivery.outcome is not Outcome.DELIVERED:
                    break
                self._uploaded.add(path)
                uploads.pop(0)
            delivery = self._service.post_json(self.url, body)
            if delivery.outcome is Outcome.DELIVERED:
                self.sent += 1
                return True
            problem = delivery.problem
            if delivery.outcome is Outcome.REJECTED:
                break
            time.sleep(self._backoff_s * 2**attempt)
        self.errors.append({"push": self.url, "alert": str(record.id), "event": record.event, "error": problem})
        if self.spool is not None:
            with self.spool.open("a", encoding="utf-8") as handle:
                handle.write(body + "\n")
        return False

    def _evidence_uploads(self, record: AlertRecord) -> list[tuple[str, bytes, str]]:
        if self.evidence_root is None:
            return []
        uploads = []
        for item in record.evidence:
            path = evidence_upload_path(item.sha256)
            file = self.evidence_root / item.path
            if "://" in item.path or path in self._uploaded or not file.is_file():
                continue
            uploads.append((path, file.read_bytes(), evidence_content_type(file)))
        return uploads

    def close(self) -> None:
        self._service.close()
