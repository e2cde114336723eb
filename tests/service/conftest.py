"""Fixtures for the service tests: real databases (a SQLite file; a throw-away PostgreSQL cluster started
from Debian's binaries), the app served by uvicorn on a loopback port with tokens for every role."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.helpers import LiveServer, PgCluster, pg_bindir, settings_for, start_server


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = pg_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL binaries missing (apt-get install postgresql) and CI=true")
        pytest.skip("PostgreSQL binaries not installed (/usr/lib/postgresql/*/bin)")
    base = tempfile.mkdtemp(prefix="sw-pg-")
    prefix: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the cluster as Debian's postgres user.
        pg = pwd.getpwnam("postgres")
        os.chown(base, pg.pw_uid, pg.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(base, "data")
    log = os.path.join(base, "server.log")
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync"],
        **run,
    )  # fmt: skip
    options = (
        f"-k {base} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300"
    )
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", data, "-l", log, "-w", "-o", options, "start"], **run)
    try:
        yield PgCluster(socket_dir=base)
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "stop"], check=False,
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


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
