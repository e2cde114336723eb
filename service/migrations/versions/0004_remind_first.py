"""Remind first (DESIGN §3.7): the zone's responsibility unit and reminder on each case, the marks, and
the message types each webhook endpoint subscribes to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("responsible_unit", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("responsible_name", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("remind_first_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("remind_deadline", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("mark", sa.String(length=16), nullable=True))
        batch.create_index("ix_cases_responsible_unit", ["responsible_unit"])
        batch.create_index("ix_cases_reminded_at", ["reminded_at"])
        batch.create_index("ix_cases_remind_deadline", ["remind_deadline"])
        batch.create_index("ix_cases_mark", ["mark"])
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("events", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("events")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_mark")
        batch.drop_index("ix_cases_remind_deadline")
        batch.drop_index("ix_cases_reminded_at")
        batch.drop_index("ix_cases_responsible_unit")
        for column in ("mark", "remind_deadline", "reminded_at", "remind_first_s"):
            batch.drop_column(column)
        batch.drop_column("responsible_name")
        batch.drop_column("responsible_unit")
