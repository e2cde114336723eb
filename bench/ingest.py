"""Service ingest: alert records per second and request latency on SQLite and on PostgreSQL.

For each backend: a fresh database, a real ``streetwatch serve`` process (uvicorn) on a loopback
port, a camera token from ``streetwatch token create``, and a load generator in this process
(``httpx.AsyncClient``, ``--concurrency`` requests in flight) posting valid alert records
(DESIGN §3.4, each checked against ``zones.alert.AlertRecord`` before it is sent) to
``POST /api/v1/alerts``. Records spread over 4 categories, 64 cameras and the Nanjing city area; a
share of the incidents (``--closed-fraction``) also sends its ``violation.closed`` event a few
requests later, as cameras do. The run stops at ``--alerts`` requests or ``--seconds``, whichever
comes first; a short warm-up before it is not timed. Afterwards ``GET /api/v1/cases`` must hold one
case per accepted ``violation.opened``.

PostgreSQL is a throw-away cluster (bench/pgcluster.py) with stock settings (fsync and
synchronous_commit on) unless ``--pg-fast`` (the test suite's settings). SQLite runs as the service
configures it (WAL, synchronous=NORMAL). The load generator shares the machine with the server:
both CPU figures are printed.

    .venv/bin/python -m bench.ingest                               # 2000 alerts or 60 s per backend
    .venv/bin/python -m bench.ingest --backend sqlite --alerts 300 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, create_token, latency_summary, package_versions, start_serve, tree_cpu_seconds
from bench.pgcluster import TEST_SETTINGS, PgServer, PostgresUnavailable, running_postgres
from zones.alert import AlertRecord
from zones.categories import CATEGORIES, DEFAULT_DWELL_S, OBJECT_CLASS_OF

BACKENDS = ("sqlite", "postgresql")
CST = timezone(timedelta(hours=8))
# Nanjing's central districts: where the records' cameras stand.
LON = (118.70, 118.90)
LAT = (31.95, 32.15)
CAMERAS = 64
TEAMS = 8


# ---- records ---------------------------------------------------------------------------------------


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def opened_record(rng: random.Random, now: datetime) -> dict[str, Any]:
    """A valid ``violation.opened`` record at a random camera, category and place."""
    category = rng.choice(CATEGORIES)
    camera = rng.randrange(CAMERAS)
    alerted = now - timedelta(seconds=rng.uniform(0, 600))
    started = alerted - timedelta(seconds=DEFAULT_DWELL_S[category])
    incident = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    x1, y1 = rng.randrange(0, 1700), rng.randrange(300, 900)
    return {
        "id": incident,
        "event": "violation.opened",
        "camera_id": f"bench-cam-{camera:03d}",
        "category": category,
        "object_class": OBJECT_CLASS_OF[category],
        "zone": f"zone-{rng.randrange(4)}",
        "started_at": started.astimezone(CST).isoformat(),
        "alerted_at": alerted.astimezone(CST).isoformat(),
        "ended_at": None,
        "video_offset_s": None,
        "confidence": round(rng.uniform(0.35, 0.98), 3),
        "bbox": [x1, y1, x1 + rng.randrange(40, 220), y1 + rng.randrange(40, 180)],
        "location": {"type": "Point", "coordinates": [round(rng.uniform(*LON), 7), round(rng.uniform(*LAT), 7)]},
        "location_error_m": round(rng.uniform(0.5, 40), 1),
        "grid": {"code": f"3201020010{camera % 100:02d}", "team": f"team-{camera % TEAMS}"},
        "evidence": [
            {"kind": "snapshot", "path": f"evidence/{incident}/snapshot.jpg", "sha256": _hex(rng)},
            {"kind": "snapshot_clean", "path": f"evidence/{incident}/snapshot_clean.jpg", "sha256": _hex(rng)},
        ],
        "model": {"name": "streetwatch-v1", "sha256": "a" * 64},
        "source": {"uri": f"rtsp://10.0.{camera // 100}.{camera % 100}/stream1", "frame": rng.randrange(10**6)},
    }


def closed_record(opened: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same incident's ``violation.closed``: end time and after-evidence added."""
    alerted = datetime.fromisoformat(opened["alerted_at"])
    record = dict(opened)
    record["event"] = "violation.closed"
    record["ended_at"] = (alerted + timedelta(seconds=rng.uniform(30, 3600))).isoformat()
    record["evidence"] = [
        *opened["evidence"],
        {"kind": "snapshot_after", "path": f"evidence/{opened['id']}/after.jpg", "sha256": _hex(rng)},
    ]
    return record


@dataclass
class Job:
    record: dict[str, Any]
    after: int | None = None
    """Index of the job (its opened event) that must have been answered first."""


def plan(total: int, closed_fraction: float, seed: int, now: datetime, gap: int) -> list[Job]:
    """``total`` requests: opened events, and for a share of them the closed event ``gap`` requests later."""
    rng = random.Random(seed)
    closed = round(total * closed_fraction / (1 + closed_fraction))
    opened = total - closed
    records = [opened_record(rng, now) for _ in range(opened)]
    closing = set(rng.sample(range(opened), closed))
    jobs: list[Job] = []
    waiting: list[tuple[int, int]] = []  # (due position, opened job index)
    for record_index, record in enumerate(records):
        while waiting and waiting[0][0] <= len(jobs):
            _, opener = waiting.pop(0)
            jobs.append(Job(closed_record(jobs[opener].record, rng), after=opener))
        jobs.append(Job(record))
        if record_index in closing:
            waiting.append((len(jobs) + gap, len(jobs) - 1))
    for _, opener in waiting:
        jobs.append(Job(closed_record(jobs[opener].record, rng), after=opener))
    for job in jobs:
        AlertRecord.model_validate(job.record)  # the bench sends only what the contract allows
    return jobs


# ---- load --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    accepted_opened: int = 0
    elapsed_s: float = 0.0
    stopped_by: str = "count"


async def drive(url: str, token: str, jobs: Sequence[Job], *, concurrency: int, seconds: float) -> Outcome:
    """Send the jobs in order with ``concurrency`` in flight until all are sent or ``seconds`` pass."""
    import httpx

    outcome = Outcome()
    answered = [asyncio.Event() for _ in jobs]
    cursor = 0
    started = time.perf_counter()
    deadline = started + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # Plain http on loopback: verify=False skips loading a CA bundle the requests never use.
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=30, verify=False
    ) as client:

        async def worker() -> None:
            nonlocal cursor
            while cursor < len(jobs):
                if time.perf_counter() >= deadline:
                    outcome.stopped_by = "time"
                    return
                index = cursor
                cursor += 1
                job = jobs[index]
                if job.after is not None:
                    await answered[job.after].wait()
                event = job.record["event"]
                sent_at = time.perf_counter()
                try:
                    response = await client.post("/api/v1/alerts", json=job.record)
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                finally:
                    answered[index].set()
                outcome.latencies_s.append(time.perf_counter() - sent_at)
                outcome.statuses[status] += 1
                outcome.sent[event] += 1
                if status == "201" and event == "violation.opened":
                    outcome.accepted_opened += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    outcome.elapsed_s = time.perf_counter() - started
    return outcome


def count_cases(url: str, token: str) -> int:
    import httpx

    response = httpx.get(
        f"{url}/api/v1/cases", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    response.raise_for_status()
    return int(response.json()["total"])


def bench_backend(
    backend: str,
    db: str,
    database: str,
    work: Path,
    *,
    alerts: int,
    seconds: float,
    concurrency: int,
    closed_fraction: float,
    warmup: int,
    seed: int,
    db_pid: int | None = None,
) -> dict[str, Any]:
    camera = create_token(db, "camera", "bench-camera")
    admin = create_token(db, "admin", "bench-admin")
    serve = start_serve(db, work / f"serve-{backend}.log")
    try:
        now = datetime.now(UTC)
        warm = plan(warmup, 0.0, seed + 1, now, gap=0)
        jobs = plan(alerts, closed_fraction, seed, now, gap=4 * concurrency)
        warm_outcome = asyncio.run(drive(serve.url, camera, warm, concurrency=concurrency, seconds=60))
        server_cpu = cpu_seconds(serve.pid)
        client_cpu = time.process_time()
        db_cpu = tree_cpu_seconds(db_pid) if db_pid else 0.0
        outcome = asyncio.run(drive(serve.url, camera, jobs, concurrency=concurrency, seconds=seconds))
        server_cpu = cpu_seconds(serve.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        db_cpu = tree_cpu_seconds(db_pid) - db_cpu if db_pid else 0.0
        cases = count_cases(serve.url, admin)
    finally:
        serve.stop()
    requests = sum(outcome.statuses.values())
    errors = {status: n for status, n in (outcome.statuses + warm_outcome.statuses).items() if status != "201"}
    expected_cases = outcome.accepted_opened + warm_outcome.accepted_opened
    return {
        "backend": backend,
        "database": database,
        "requests": requests,
        "opened": outcome.sent["violation.opened"],
        "closed": outcome.sent["violation.closed"],
        "seconds": round(outcome.elapsed_s, 2),
        "stopped_by": outcome.stopped_by,
        "alerts_per_s": round(outcome.statuses["201"] / outcome.elapsed_s, 1),
        "latency": latency_summary(outcome.latencies_s),
        "errors": sum(errors.values()),
        "errors_by_status": errors,
        "cases_created": cases,
        "cases_expected": expected_cases,
        "server_cpu_cores": round(server_cpu / outcome.elapsed_s, 2),
        "client_cpu_cores": round(client_cpu / outcome.elapsed_s, 2),
        # SQLite runs inside the server process; PostgreSQL in its own processes.
        "database_cpu_cores": round(db_cpu / outcome.elapsed_s, 2) if db_pid else None,
    }


def run(
    *,
    backends: Sequence[str] = BACKENDS,
    alerts: int = 2000,
    seconds: float = 60.0,
    concurrency: int = 12,
    closed_fraction: float = 0.25,
    warmup: int = 50,
    seed: int = 0,
    pg_fast: bool = False,
) -> dict[str, Any]:
    """The figures of one run, per backend (what ``make bench`` can put in its JSON)."""
    results: list[dict[str, Any]] = []
    options: dict[str, Any] = {
        "alerts": alerts,
        "seconds": seconds,
        "concurrency": concurrency,
        "closed_fraction": closed_fraction,
        "warmup": warmup,
        "seed": seed,
    }
    with tempfile.TemporaryDirectory(prefix="sw-bench-ingest-") as tmp:
        work = Path(tmp)
        for backend in backends:
            if backend == "sqlite":
                db = f"sqlite:///{work / 'ingest.db'}"
                database = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
                results.append(bench_backend(backend, db, database, work, **options))
                continue
            settings = TEST_SETTINGS if pg_fast else {"max_connections": "300"}
            try:
                with running_postgres(settings) as pg:
                    durability = "test settings: fsync, synchronous_commit off" if pg_fast else "stock durability"
                    database = f"{pg_version(pg)} ({durability}), Unix socket"
                    url = pg.create_database()
                    results.append(bench_backend(backend, url, database, work, db_pid=pg.pid, **options))
            except PostgresUnavailable as error:
                results.append({"backend": backend, "skipped": str(error)})
    return {
        "options": {**options, "pg_fast": pg_fast},
        "versions": package_versions(["fastapi", "uvicorn", "sqlalchemy", "psycopg", "pydantic", "httpx"]),
        "results": results,
    }


def pg_version(pg: PgServer) -> str:
    # "postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)" -> "PostgreSQL 15.8"
    parts = pg.version.split()
    return f"PostgreSQL {parts[2]}" if len(parts) > 2 else pg.version


def markdown(figures: dict[str, Any], command: str) -> str:
    from bench.__main__ import section_heading

    options = figures["options"]
    lines = [
        *section_heading("service ingest (bench/ingest.py)", figures['versions']),
        f"`{command}`: a real `streetwatch serve` (uvicorn, one process) on loopback per backend, fed by an "
        f"httpx.AsyncClient load generator in one process on the same machine ({options['concurrency']} requests "
        f"in flight) with valid alert records (4 categories, 64 cameras, random places in Nanjing; "
        f"{options['closed_fraction']:.0%} of incidents also send `violation.closed`); bounded by "
        f"{options['alerts']} requests or {options['seconds']:g} s per backend after {options['warmup']} untimed "
        "warm-up requests. Latency is per request as the client saw it.",
        "",
        "| backend | database | requests (opened/closed) | s | alerts/s | p50 ms | p95 ms | p99 ms | max ms "
        "| errors | cases created / expected | CPU cores: server / PostgreSQL / client |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in figures["results"]:
        if "skipped" in r:
            lines.append(f"| {r['backend']} | skipped: {r['skipped']} |" + " |" * 10)
            continue
        lat = r["latency"]
        errors = str(r["errors"]) + (f" {r['errors_by_status']}" if r["errors"] else "")
        lines.append(
            f"| {r['backend']} | {r['database']} | {r['requests']} ({r['opened']}/{r['closed']}) | {r['seconds']} "
            f"| {r['alerts_per_s']} | {lat['p50_ms']} | {lat['p95_ms']} | {lat['p99_ms']} | {lat['max_ms']} "
            f"| {errors} | {r['cases_created']} / {r['cases_expected']} "
            f"| {r['server_cpu_cores']} / {r['database_cpu_cores'] if r['database_cpu_cores'] is not None else '—'} "
            f"/ {r['client_cpu_cores']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--alerts", type=int, default=2000, help="requests per backend (opened + closed)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per backend")
    parser.add_argument("--concurrency", type=int, default=12, help="requests in flight")
    parser.add_argument("--closed-fraction", type=float, default=0.25, help="share of incidents also closed")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests before the run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pg-fast", action="store_true", help="PostgreSQL with fsync/synchronous_commit off")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.alerts < 1 or args.concurrency < 1 or args.seconds <= 0 or not 0 <= args.closed_fraction <= 1:
        parser.error("--alerts and --concurrency must be ≥ 1, --seconds > 0, --closed-fraction within 0..1")
    figures = run(
        backends=BACKENDS if args.backend == "both" else (args.backend,),
        alerts=args.alerts,
        seconds=args.seconds,
        concurrency=args.concurrency,
        closed_fraction=args.closed_fraction,
        warmup=args.warmup,
        seed=args.seed,
        pg_fast=args.pg_fast,
    )
    command = ".venv/bin/python -m bench.ingest " + " ".join(argv if argv is not None else sys.argv[1:])
    print(markdown(figures, command.strip()))
    if args.json:
        print(json.dumps(figures, indent=1))
    ran = [r for r in figures["results"] if "skipped" not in r]
    return 1 if any(r["errors"] or r["cases_created"] != r["cases_expected"] for r in ran) else 0


if __name__ == "__main__":
    sys.exit(main())
