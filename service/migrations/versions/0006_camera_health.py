"""Camera health (issue #26): a camera's last stream error, the camera status an incident opened under
(``camera_health`` on its case), camera status changes in the change log (SSE ``camera.health``) and
``camera.health`` messages in the outbox (no case).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("camera_health", sa.String(length=16), nullable=True))
    with op.batch_alter_table("case_changes") as batch:
        batch.add_column(sa.Column("camera_id", sa.String(length=64), nullable=True))
        batch.alter_column("case_id", existing_type=sa.String(length=36), nullable=True)
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("case_id", existing_type=sa.String(length=36), nullable=True)


def downgrade() -> None:
    op.execute(
        "DELETE FROM webhook_deliveries WHERE message_id IN (SELECT id FROM outbox_messages WHERE case_id IS NULL)"
    )
    op.execute("DELETE FROM outbox_messages WHERE case_id IS NULL")
    op.execute("DELETE FROM case_changes WHERE case_id IS NULL")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.alter_column("case_id", existing_type=sa.String(length=36), nullable=False)
    with op.batch_alter_table("case_changes") as batch:
        batch.alter_column("case_id", existing_type=sa.String(length=36), nullable=False)
        batch.drop_column("camera_id")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("camera_health")
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("last_error")
