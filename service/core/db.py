"""Engine, sessions and schema migrations.

SQLite runs in WAL mode with a busy timeout. Write transactions start with ``BEGIN IMMEDIATE``:
with SQLite's default deferred BEGIN, two transactions that both read and then write deadlock on
the lock upgrade and one fails at once with "database is locked" instead of waiting.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from zones.errors import InputError

_MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_BEGIN_OPTION = "streetwatch_sqlite_begin"
# Arbitrary constant: the PostgreSQL advisory lock that serialises concurrent migrators.
_MIGRATION_LOCK_KEY = 0x5357_0001
_sqlite_migration_lock = threading.Lock()


@dataclass(frozen=True)
class Database:
    """One engine and the two session factories built on it."""

    engine: Engine
    read: sessionmaker[Session]
    write: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on error."""
        with self.write() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.read() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN instead of the sqlite3 module.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        # NORMAL in WAL mode is durable against process crashes (kill -9), not power loss.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def create_database(url: str, *, echo: bool = False) -> Database:
    """Open (not migrate) the database at ``url``; raise InputError for a malformed URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise InputError(f"not a database URL: {url!r} ({error})", field="--db") from None
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
            # Each pooled connection would get its own empty database (and SQLAlchemy's in-memory
            # pool takes no pool_size: a TypeError traceback before this check).
            raise InputError(
                f"in-memory SQLite ({url!r}) cannot hold the service's store; give a file: sqlite:///path.db",
                field="--db",
            )
        parent = Path(database).expanduser().resolve().parent
        if not parent.is_dir():
            raise InputError(f"directory {parent} does not exist", field="--db")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        kwargs["pool_size"] = 20
        kwargs["max_overflow"] = 20
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 20
        kwargs["pool_pre_ping"] = True
    else:
        raise InputError(f"unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql", field="--db")
    try:
        engine = create_engine(parsed, **kwargs)
    except (ImportError, ArgumentError) as error:
        raise InputError(f"cannot open database {url!r}: {error}", field="--db") from None
    writer: Engine = engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
        writer = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
    return Database(
        engine=engine,
        read=sessionmaker(engine, expire_on_commit=False),
        write=sessionmaker(writer, expire_on_commit=False),
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code; the scripts live inside the package."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", "")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(db: Database) -> None:
    """Bring the schema to the newest revision; safe when several processes start at once."""
    try:
        with db.engine.connect() as connection:
            if db.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                connection.commit()
                try:
                    command.upgrade(alembic_config(connection), "head")
                    connection.commit()
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                    connection.commit()
            else:
                # One migrator per process; across processes the IMMEDIATE write lock below.
                with _sqlite_migration_lock:
                    immediate = connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
                    with immediate.begin():
                        command.upgrade(alembic_config(immediate), "head")
    except OperationalError as error:
        raise InputError(f"cannot reach database {db.engine.url!r}: {error.orig}", field="--db") from None


def open_database(url: str) -> Database:
    """Open and migrate: what the CLI commands and the server do at start."""
    db = create_database(url)
    migrate(db)
    return db
