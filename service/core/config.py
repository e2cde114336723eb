"""Service settings: environment variables with the ``STREETWATCH_`` prefix, or explicit values.

Examples: ``STREETWATCH_DATABASE_URL=postgresql://sw@db/sw``, ``STREETWATCH_MODE=prod``,
``STREETWATCH_SECRET_KEY=…``, ``STREETWATCH_WEBHOOK_ALLOW_PRIVATE=1``,
``STREETWATCH_DEADLINES_S='{"street_vending": 3600}'``, ``STREETWATCH_EVIDENCE_DIR=/srv/audits``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
}

THREE_DAYS_S = 3 * 24 * 3600.0
MAX_DEADLINE_S = 10 * 366 * 24 * 3600.0  # keeps alerted_at + deadline within datetime's range


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
    sse_max_s: float = Field(default=300.0, gt=0, description="SSE streams end after this; clients resume.")
    sse_poll_s: float = Field(default=0.5, gt=0, description="SSE poll interval of the change log.")

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
