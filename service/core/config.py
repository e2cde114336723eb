"""Service settings: environment variables with the ``STREETWATCH_`` prefix, or explicit values.

Examples: ``STREETWATCH_DATABASE_URL=postgresql://sw@db/sw``, ``STREETWATCH_MODE=prod``,
``STREETWATCH_SECRET_KEY=…``, ``STREETWATCH_WEBHOOK_ALLOW_PRIVATE=1``,
``STREETWATCH_DEADLINES_S='{"street_vending": 3600}'``, ``STREETWATCH_EVIDENCE_DIR=/srv/audits``.

Accountability: ``STREETWATCH_ACCESS_LOG_DAYS=365`` (access-log retention), ``STREETWATCH_SIGNING_KEY`` (the
Ed25519 key that signs case bundles: PEM text or a PEM file's path; by default made on first start).

Map tiles (the pages' basemap; none by default, and then the maps are a plain scale view):
``STREETWATCH_TILE_URL='https://tile.openstreetmap.org/{z}/{x}/{y}.png'`` (an XYZ template; ``{s}`` in
the first host label for subdomains), ``STREETWATCH_TILE_ATTRIBUTION='© OpenStreetMap contributors'``
(plain text), ``STREETWATCH_TILE_GCJ02=1`` for Chinese basemaps drawn in GCJ-02 (AMap/Tencent): positions
stay WGS84 everywhere and are shifted only when drawn. The tile host is the one foreign origin the pages'
Content-Security-Policy lets images come from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zones.categories import CATEGORIES, Category
from zones.errors import InputError

DEFAULT_DATABASE_URL = "sqlite:///./streetwatch.db"
DEFAULT_SECRET_KEY = "dev-insecure-secret-change-me"

# 处置时限 defaults: how long from the AI report until the violation must be handled.
DEFAULT_DEADLINES_S: dict[Category, float] = {
    "street_vending": 2 * 3600.0,
    "storefront_overflow": 4 * 3600.0,
    "hanging_laundry": 24 * 3600.0,
    "illegal_structure": 7 * 24 * 3600.0,
    "sidewalk_obstruction": 4 * 3600.0,
}

THREE_DAYS_S = 3 * 24 * 3600.0
MAX_DEADLINE_S = 10 * 366 * 24 * 3600.0  # keeps alerted_at + deadline within datetime's range


_TILE_PLACEHOLDER = re.compile(r"\{[a-z-]+\}")


def tile_origin(url: str) -> str:
    """The CSP source of an XYZ tile template: ``https://{s}.tile.example.org/{z}/{x}/{y}.png`` ->
    ``https://*.tile.example.org``. ValueError when the template is not a usable http(s) tile URL."""
    for needed in ("{z}", "{x}", "{y}"):
        if needed not in url:
            raise ValueError(f"a tile URL template needs {needed}, e.g. https://tile.example.org/{{z}}/{{x}}/{{y}}.png")
    if any(c.isspace() or c in "'\";," for c in url):
        raise ValueError("a tile URL cannot contain spaces, quotes, commas or semicolons")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("a tile URL must start with http:// or https:// and name a host")
    if "@" in parts.netloc:
        raise ValueError("a tile URL cannot carry credentials")
    host, _, port = parts.netloc.partition(":")
    if port and not port.isdigit():
        raise ValueError(f"tile URL port {port!r} is not a number")
    labels = host.split(".")
    if _TILE_PLACEHOLDER.search(labels[0]):
        labels[0] = "*"  # subdomains {s}: CSP wildcards only the leftmost label
        if len(labels) < 3:
            raise ValueError("a placeholder in the tile host must stand in a subdomain (e.g. {s}.tile.example.org)")
    if any(_TILE_PLACEHOLDER.search(label) or "{" in label or "}" in label for label in labels):
        raise ValueError("a placeholder may only stand in the first label of the tile host")
    if not all(label == "*" or re.fullmatch(r"[A-Za-z0-9-]+", label) for label in labels):
        raise ValueError(f"tile host {host!r} is not a plain host name or IPv4 address")
    return f"{parts.scheme}://{'.'.join(labels).lower()}" + (f":{port}" if port else "")


def normalise_database_url(url: str) -> str:
    """Pick psycopg 3 for plain ``postgresql://`` URLs; SQLAlchemy's default driver is psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Everything the service can be configured with; see the module docstring for the environment."""

    model_config = SettingsConfigDict(env_prefix="STREETWATCH_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; postgresql://… uses psycopg 3. Default: streetwatch.db in the cwd.",
    )
    mode: Literal["dev", "prod"] = Field(default="dev", description="prod refuses default secrets.")
    secret_key: str = Field(
        default=DEFAULT_SECRET_KEY,
        min_length=16,
        description="Server secret (CSRF tokens for cookie sessions). Must be changed in prod.",
    )
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Limit for JSON request bodies.")
    max_upload_bytes: int = Field(default=10 << 20, ge=1024, description="Limit for evidence/photo uploads.")
    evidence_dir: Path | None = Field(
        default=None,
        description="Root that alert-record evidence paths are relative to (an audit --out DIR).",
    )
    deadlines_s: dict[Category, float] = Field(
        default_factory=lambda: dict(DEFAULT_DEADLINES_S),
        description="Handling deadline per category in seconds (missing categories use the defaults).",
    )
    repeat_radius_m: float = Field(default=20.0, ge=0, description="Repeat offence: same category within this.")
    repeat_window_s: float = Field(default=30 * 24 * 3600.0, ge=0, description="… and within this time.")
    remind_repeat_days: float = Field(
        default=30.0,
        ge=0,
        le=3660,
        description="Remind first (§3.7): a place (same unit, or same place by the repeat rule) reminded within "
        "this many days gets no second reminder; its case goes to an operator marked repeat.",
    )
    remind_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the reminder job looks for reminders that ran out."
    )
    remind_batch: int = Field(default=100, ge=1, le=1000, description="Reminders escalated per transaction.")
    reminders_enabled: bool = Field(default=True, description="Run the reminder job inside the serve process.")
    public_url: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="The service's external base URL (https://host[/prefix]); links in messages (the "
        "reminder's snapshot) are absolute with it, else paths.",
    )
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhook endpoints on loopback/private addresses (demo, tests)."
    )
    relay_enabled: bool = Field(default=True, description="Run the outbox relay inside the serve process.")
    relay_poll_s: float = Field(default=1.0, gt=0, description="Relay idle poll interval.")
    relay_batch: int = Field(default=8, ge=1, le=100, description="Deliveries leased per relay round.")
    relay_lease_s: float = Field(default=60.0, gt=0, description="Lease on a delivery while it is being sent.")
    relay_timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout of one webhook POST.")
    retry_base_s: float = Field(default=5.0, gt=0, description="First retry delay; doubles per attempt.")
    retry_cap_s: float = Field(default=6 * 3600.0, gt=0, description="Largest delay between two attempts.")
    retry_for_s: float = Field(
        default=THREE_DAYS_S, ge=0, description="Keep retrying a message at least this long, then give up."
    )
    retry_after_cap_s: float = Field(default=24 * 3600.0, gt=0, description="Largest Retry-After honoured.")
    auth_failures_max: int = Field(
        default=10, ge=0, description="Failed logins/invalid tokens per client address before 429 (0: off)."
    )
    auth_failure_window_s: float = Field(
        default=60.0, gt=0, le=24 * 3600, description="… counted over this sliding window."
    )
    camera_health_team: str = Field(
        default="admins",
        min_length=1,
        max_length=64,
        description="The webhook team whose endpoints get camera.health messages (a camera's status changed).",
    )
    sse_max_s: float = Field(default=300.0, gt=0, description="SSE streams end after this; clients resume.")
    sse_poll_s: float = Field(default=0.5, gt=0, description="SSE poll interval of the change log.")
    tile_url: str | None = Field(
        default=None,
        max_length=1024,
        description="XYZ tile URL template of the pages' basemap ({z}/{x}/{y}, optional {s}); "
        "none: a plain scale view.",
    )
    tile_attribution: str = Field(default="", max_length=512, description="Attribution shown on the map (text).")
    tile_gcj02: bool = Field(
        default=False, description="The basemap is drawn in GCJ-02 (Chinese basemaps): shift positions when drawn."
    )
    access_log_days: int = Field(
        default=365, ge=1, le=100 * 366, description="Keep access-log rows this many days; older ones are purged."
    )
    access_log_purge_every_s: float = Field(
        default=3600.0, gt=0, le=7 * 24 * 3600, description="How often the service purges the access log."
    )
    signing_key: str | None = Field(
        default=None,
        description="Ed25519 private key that signs case bundles: PEM text, or the path of a PEM file. "
        "Unset: made on first start and kept beside the SQLite database (PostgreSQL: in the database).",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("deadlines_s")
    @classmethod
    def _fill_deadlines(cls, value: dict[Category, float]) -> dict[Category, float]:
        merged: dict[Category, float] = dict(DEFAULT_DEADLINES_S)
        for category, seconds in value.items():
            if not 0 < seconds <= MAX_DEADLINE_S:
                raise ValueError(f"deadline for {category} must be positive and at most 10 years")
            merged[category] = float(seconds)
        return merged

    @field_validator("tile_url")
    @classmethod
    def _tile_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        tile_origin(value.strip())
        return value.strip()

    @property
    def tile_origin(self) -> str | None:
        """The tile host as a CSP source (``https://*.tile.example.org``), None without tiles."""
        return tile_origin(self.tile_url) if self.tile_url else None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_startable(self) -> None:
        """Refuse to run production with the well-known development secret."""
        if self.mode == "prod" and self.secret_key == DEFAULT_SECRET_KEY:
            raise InputError(
                "refusing to start in prod mode with the default secret key; "
                "set STREETWATCH_SECRET_KEY to a long random value",
                field="STREETWATCH_SECRET_KEY",
            )
        missing = set(CATEGORIES) - set(self.deadlines_s)
        if missing:
            raise InputError(f"no handling deadline for {sorted(missing)}", field="STREETWATCH_DEADLINES_S")
