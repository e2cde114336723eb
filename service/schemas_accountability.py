"""API models of the accountability routes: the assessment table (考核), the access log, the bundle key."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from service.schemas import _Out

AssessBy = Literal["team", "grid", "camera", "category"]


class AssessmentRow(_Out):
    group: str = Field(
        description="The team, grid cell code, camera id or category; '(none)' for cases without one (e.g. no grid)."
    )
    reported: int = Field(ge=0, description="Cases alerted in [from, to) (AI reports and reminders alike).")
    filed: int = Field(ge=0, description="… filed (立案) before `to`.")
    rejected: int = Field(ge=0, description="… rejected as false alarms (误报) before `to`.")
    filing_rate: float | None = Field(ge=0, le=1, description="filed / reported; null when nothing was reported.")
    dispatched: int = Field(ge=0, description="… dispatched (派遣) to a team before `to`.")
    handled_on_time: int = Field(
        ge=0,
        description="… whose standing handling (the last `handle` not undone by a `reopen`) came no later than the "
        "category's handling deadline (处置时限, due_at).",
    )
    overdue: int = Field(
        ge=0,
        description="… not rejected nor self-rectified whose standing handling came after due_at, or that had none "
        "when due_at passed (counted only once due_at lies before `to` and now).",
    )
    closed: int = Field(ge=0, description="… closed (核查结案) before `to`.")
    closing_rate: float | None = Field(ge=0, le=1, description="closed / filed; null when nothing was filed.")
    reopened: int = Field(ge=0, description="… reopened at least once (核查不通过), closed again or not.")
    rework_rate: float | None = Field(
        ge=0, le=1, description="reopened / cases handled at least once; null when none was handled."
    )
    self_rectified: int = Field(
        ge=0, description="… the responsible party put right after a reminder (自行整改), closed without an officer."
    )
    median_hours_to_close: float | None = Field(
        ge=0, description="Median hours from alerted_at to the `close` action over the closed cases; null if none."
    )
    repeat_places: int = Field(
        ge=0, description="… at a place where the same category was reported before within the repeat window."
    )


class Assessment(_Out):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    from_: datetime = Field(alias="from", description="Cases alerted at or after this.")
    to: datetime = Field(description="… and before this. The history counts as it stood at min(to, now).")
    as_of: datetime = Field(description="min(to, now): the moment the case history is read at.")
    by: AssessBy = Field(description="What a row groups.")
    items: list[AssessmentRow] = Field(description="One row per group, ordered by group.")
    total: AssessmentRow = Field(description="All cases of the period (group '(all)').")


class AccessLogEntryPublic(_Out):
    seq: int = Field(description="Order of the rows (append-only).")
    at: datetime = Field(description="When.")
    actor: str = Field(description="The token's name ('' for a failed login).")
    role: str = Field(description="The token's role.")
    action: str = Field(
        description="evidence.read | bundle.export | config.change | token.create | token.revoke | login | login.failed"
    )
    target: str = Field(description="What was read or changed, e.g. case/<id>/evidence/0, camera/<id>/config.")
    client: str = Field(description="The client's address.")
    detail: str | None = Field(description="More, where the action has it (the config version stored …).")


class AccessLogList(_Out):
    items: list[AccessLogEntryPublic] = Field(description="Newest first.")
    total: int = Field(ge=0, description="Rows matching the filters.")


class BundleKey(_Out):
    algorithm: Literal["Ed25519"] = Field(description="Signature algorithm of manifest.sig.")
    key_id: str = Field(description="SHA-256 (hex) of the raw public key, as in each manifest.")
    public_key: str = Field(description="The public key, PEM (SubjectPublicKeyInfo).")
