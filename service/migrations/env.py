"""Alembic environment: always driven from code (service.core.db.migrate) with a live connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from service.models import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through service.core.db.migrate(), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables for future migrations.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
