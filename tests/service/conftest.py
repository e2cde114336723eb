"""Fixtures for the service tests: real databases (a SQLite file; a throw-away PostgreSQL cluster started
from Debian's binaries), the app served by uvicorn on a loopback port with tokens for every role."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.pgcluster import TEST_SETTINGS, pg_bindir, running_postgres
from tests.service.helpers import LiveServer, PgCluster, settings_for, start_server


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if pg_bindir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries missing (apt-get install postgresql) and CI=true")
        pytest.skip("PostgreSQL binaries not installed (/usr/lib/postgresql/*/bin)")
    # Durability off: the tests are about behaviour, not about surviving a power cut.
    with running_postgres(TEST_SETTINGS) as server:
        yield PgCluster(socket_dir=server.socket_dir)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'streetwatch.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'streetwatch.db'}"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[LiveServer]:
    """The app on SQLite without a relay."""
    live = start_server(settings_for(sqlite_url))
    yield live
    live.stop()
    live.db.dispose()


@pytest.fixture
def any_server(database_url: str) -> Iterator[LiveServer]:
    """The app on each backend (SQLite, PostgreSQL), without a relay."""
    live = start_server(settings_for(database_url))
    yield live
    live.stop()
    live.db.dispose()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One SQLite-backed app for a whole module: for tests that only touch their own cases."""
    path = tmp_path_factory.mktemp("shared") / "streetwatch.db"
    live = start_server(settings_for(f"sqlite:///{path}"))
    yield live
    live.stop()
    live.db.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_any_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One app per backend for a whole module."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'streetwatch.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_database()
    live = start_server(settings_for(url))
    yield live
    live.stop()
    live.db.dispose()
