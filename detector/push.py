"""Posting alert records to the service (``--push URL``) without ever losing one.

Each record is posted with retries and backoff; a record the service still does not accept is
appended to a local spool file (JSON Lines) and reported, never dropped. The record id plus event
is the service's idempotency key, so re-sending is always safe.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from zones.alert import AlertRecord

ALERTS_PATH = "/api/v1/alerts"
TOKEN_ENV = "STREETWATCH_TOKEN"


def alerts_url(push: str) -> str:
    """Accepts the service's base URL or the full alerts endpoint."""
    push = push.rstrip("/")
    return push if push.endswith(ALERTS_PATH) else push + ALERTS_PATH


class Pusher:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        spool: Path | None = None,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = alerts_url(url)
        token = token or os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(headers=headers, timeout=timeout_s)
        self._attempts = attempts
        self._backoff_s = backoff_s
        self.spool = spool
        self.sent = 0
        self.errors: list[dict[str, Any]] = []

    def send(self, record: AlertRecord) -> bool:
        body = record.model_dump_json()
        problem = ""
        for attempt in range(self._attempts):
            try:
                response = self._client.post(self.url, content=body, headers={"Content-Type": "application/json"})
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 300:
                    self.sent += 1
                    return True
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the service refuses this record; retrying will not change its mind
            time.sleep(self._backoff_s * 2**attempt)
        self.errors.append({"push": self.url, "alert": str(record.id), "event": record.event, "error": problem})
        if self.spool is not None:
            with self.spool.open("a", encoding="utf-8") as handle:
                handle.write(body + "\n")
        return False

    def close(self) -> None:
        self._client.close()
