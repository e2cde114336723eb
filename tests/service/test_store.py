"""The store on SQLite and on a real PostgreSQL: migrations, concurrent starts, time zones, SQLite mode."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from service import crud
from service.core.config import Settings, normalise_database_url
from service.core.db import alembic_config, create_database, migrate, open_database
from service.models import Base, Camera
from service.schemas import CameraStatusIn


def test_migrations_produce_exactly_the_models_schema(database_url: str) -> None:
    db = open_database(database_url)
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
        tables = set(inspect(connection).get_table_names())
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    db.dispose()
    assert diff == []
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert revision == ScriptDirectory.from_config(alembic_config()).get_current_head()  # one head, applied


def test_concurrent_first_starts_migrate_once(database_url: str) -> None:
    """Several processes (serve replicas, a CLI command) opening an empty database at the same moment."""
    code = "import sys; from service.core.db import open_database; open_database(sys.argv[1]).dispose()"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, database_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, errors
    db = create_database(database_url)
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    migrate(db)  # and once more: a no-op
    db.dispose()


def test_timestamps_come_back_aware_and_in_utc(database_url: str) -> None:
    db = open_database(database_url)
    shanghai = timezone(timedelta(hours=8))
    seen = datetime(2026, 11, 27, 9, 14, 3, 123456, tzinfo=shanghai)
    with db.writing() as session:
        crud.record_camera_status(
            session, camera_id="cam-1", status=CameraStatusIn(status="online", last_frame_at=seen), now=seen
        )
    with db.reading() as session:
        camera = session.get(Camera, "cam-1")
    db.dispose()
    assert camera is not None and camera.last_frame_at is not None
    assert camera.last_frame_at == seen
    assert camera.last_frame_at.utcoffset() == timedelta(0)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgresql_urls_use_psycopg_3(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected
    assert Settings(database_url=given).database_url == expected


DEFAULT_DEADLINES_S = {
    "street_vending": 2 * 3600.0,
    "storefront_overflow": 4 * 3600.0,
    "hanging_laundry": 24 * 3600.0,
    "illegal_structure": 7 * 24 * 3600.0,
    "sidewalk_obstruction": 4 * 3600.0,
}


@pytest.mark.parametrize("category", sorted(DEFAULT_DEADLINES_S))
def test_deadline_defaults_and_overrides(category: str) -> None:
    assert Settings().deadlines_s == DEFAULT_DEADLINES_S
    settings = Settings(deadlines_s={category: 60})
    assert settings.deadlines_s == {**DEFAULT_DEADLINES_S, category: 60.0}
    with pytest.raises(ValueError, match="positive"):
        Settings(deadlines_s={category: 0})


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETWATCH_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("STREETWATCH_DEADLINES_S", '{"hanging_laundry": 7200}')
    monkeypatch.setenv("STREETWATCH_DATABASE_URL", "postgresql://sw@db/sw")
    settings = Settings()
    assert settings.webhook_allow_private is True
    assert settings.deadlines_s["hanging_laundry"] == 7200.0
    assert settings.database_url == "postgresql+psycopg://sw@db/sw"


def test_uuid_case_ids_and_utc_columns_survive_a_round_trip(database_url: str) -> None:
    from service.core.security import Principal
    from tests.service.helpers import alert
    from zones.alert import AlertRecord

    db = open_database(database_url)
    settings = Settings(database_url=database_url)
    actor = Principal(token_id="t", name="cam", role="camera", team=None, token_sha256="0" * 64)
    record = AlertRecord.model_validate(alert())
    now = datetime.now(UTC)
    first = crud.ingest_alert(db=db, record=record, actor=actor, now=now, settings=settings)
    again = crud.ingest_alert(db=db, record=record, actor=actor, now=now, settings=settings)
    assert (first.created, again.created) == (True, False)
    with db.reading() as session:
        case = crud.get_case(session, case_id=str(record.id), actor=actor.__class__(
            token_id="t", name="op", role="operator", team=None, token_sha256="0" * 64))  # fmt: skip
    db.dispose()
    assert case.alerted_at == record.alerted_at and case.alerted_at.tzinfo is not None
    assert case.due_at - case.alerted_at == timedelta(hours=2)
