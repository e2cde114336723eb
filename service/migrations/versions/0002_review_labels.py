"""Review labels: the operator's corrected box and class on file, the false-alarm reason on reject.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_changes", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("label")
