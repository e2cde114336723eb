"""A throw-away PostgreSQL cluster from Debian's binaries (initdb + pg_ctl), listening on a Unix socket only.

The same steps as the ``pg_cluster`` fixture of tests/service/conftest.py, as a plain context manager
so that benchmarks (and, if the lead wires it, that fixture) can share them::

    with running_postgres() as pg:              # stock settings: fsync and synchronous_commit on
        url = pg.create_database()               # postgresql://postgres@/sw_…?host=/tmp/sw-pg-…

    with running_postgres(TEST_SETTINGS) as pg:  # what the tests use: durability off, 300 connections
        …

Standard library only (``create_database`` imports psycopg, which the service needs anyway).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The tests trade durability for speed; a benchmark that reports throughput should say which it ran.
TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (Debian: ``apt-get install postgresql``)."""


def pg_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin that has initdb."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@dataclass
class PgServer:
    socket_dir: str
    data_dir: str
    settings: dict[str, str]
    version: str

    @property
    def pid(self) -> int:
        """The postmaster's pid (its backends are its children)."""
        return int(Path(self.data_dir, "postmaster.pid").read_text().split()[0])

    def url(self, database: str) -> str:
        """A service ``--db`` URL (psycopg 3 via the service's normalisation) over the Unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        name = name or f"sw_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host={self.socket_dir} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def running_postgres(settings: Mapping[str, str] | None = None, *, timeout_s: float = 120) -> Iterator[PgServer]:
    """Start a fresh cluster in a temporary folder, yield it, stop it (immediate) and delete it."""
    bindir = pg_bindir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    base = tempfile.mkdtemp(prefix="sw-pg-")
    prefix: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the cluster as Debian's postgres user.
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(base, "data")
    log = os.path.join(base, "server.log")
    chosen = dict(settings or {})
    initdb = [str(bindir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]
    started = False
    try:
        subprocess.run([*prefix, *initdb, "--no-sync"], check=True, capture_output=True, timeout=timeout_s)
        options = " ".join([f"-k {base}", "-c listen_addresses=''", *(f"-c {k}={v}" for k, v in chosen.items())])
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", data, "-l", log, "-w", "-o", options, "start"],
            check=True,
            capture_output=True,
            timeout=timeout_s,
        )
        started = True
        version = subprocess.run(
            [str(bindir / "postgres"), "--version"], check=True, capture_output=True, text=True, timeout=30
        ).stdout.strip()
        yield PgServer(socket_dir=base, data_dir=data, settings=chosen, version=version)
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                check=False,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)
