"""Helpers for the service tests: fake clock, live uvicorn server, tokens, alert records."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn

from service import crud
from service.core.config import Settings
from service.core.db import Database, open_database
from service.main import GracefulServer, create_app
from service.relay import Relay

ROLES = ("camera", "operator", "officer", "supervisor", "admin")


# ---- clock ----------------------------------------------------------------------------------------


class FakeClock:
    """A settable clock; thread-safe enough for tests (assignments of one reference)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


# ---- PostgreSQL -------------------------------------------------------------------------------------


@dataclass
class PgCluster:
    socket_dir: str
    _counter: int = 0

    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@/postgres?host={self.socket_dir}"

    def new_database(self) -> str:
        import psycopg

        name = f"sw_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host={self.socket_dir} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@/{name}?host={self.socket_dir}"


# ---- live server ------------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    db: Database
    settings: Settings
    tokens: dict[str, str]
    app: Any
    _server: uvicorn.Server
    _thread: threading.Thread
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        headers.update(kwargs.pop("headers", {}))
        # Plain http on loopback: skip loading the CA bundle, which costs ~60 ms per client.
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=False, **kwargs)

    def token(self, role: str, name: str, team: str | None = None) -> str:
        with self.db.writing() as session:
            _, token = crud.create_token(session, role=role, name=name, team=team, now=datetime.now(UTC))  # type: ignore[arg-type]
        return token

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)


def make_tokens(db: Database) -> dict[str, str]:
    tokens: dict[str, str] = {}
    with db.writing() as session:
        for role in ROLES:
            team = "team-a" if role == "officer" else None
            _, tokens[role] = crud.create_token(session, role=role, name=f"{role}-1", team=team, now=datetime.now(UTC))  # type: ignore[arg-type]
        _, tokens["officer_b"] = crud.create_token(
            session, role="officer", name="officer-b", team="team-b", now=datetime.now(UTC)
        )
    return tokens


def start_server(
    settings: Settings, *, clock: Callable[[], datetime] | None = None, relay: Relay | None = None
) -> LiveServer:
    db = open_database(settings.database_url)
    app = create_app(settings, db=db, relay=relay, **({"clock": clock} if clock else {}))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    server = GracefulServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(
        url=f"http://127.0.0.1:{port}",
        db=db,
        settings=settings,
        tokens=make_tokens(db),
        app=app,
        _server=server,
        _thread=thread,
    )


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "relay_enabled": False, "webhook_allow_private": True}
    values.update(overrides)
    return Settings(**values)


# ---- alert records ----------------------------------------------------------------------------------

SNAPSHOT_SHA = "5" * 64


def alert(**overrides: Any) -> dict[str, Any]:
    """A valid alert record (DESIGN §3.4); overrides replace top-level fields."""
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event": "violation.opened",
        "camera_id": "cam-jfdl-01",
        "category": "street_vending",
        "object_class": "stall",
        "zone": "sidewalk-north",
        "started_at": "2026-11-27T09:14:03+08:00",
        "alerted_at": "2026-11-27T09:17:03+08:00",
        "ended_at": None,
        "video_offset_s": {"start": 12.0, "alert": 192.0, "end": None},
        "confidence": 0.87,
        "bbox": [101, 388, 230, 512],
        "location": {"type": "Point", "coordinates": [118.79702, 32.06013]},
        "location_error_m": 1.8,
        "grid": {"code": "320102001001", "team": "team-a"},
        "evidence": [{"kind": "snapshot", "path": "evidence/x/snapshot.jpg", "sha256": SNAPSHOT_SHA}],
        "model": {"name": "streetwatch-v1", "sha256": "a" * 64},
        "source": {"uri": "clip.mp4", "frame": 4800},
    }
    record.update(overrides)
    return record


def closed(opened: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    record = dict(opened)
    record.update(
        event="violation.closed",
        ended_at="2026-11-27T09:40:00+08:00",
        video_offset_s={"start": 12.0, "alert": 192.0, "end": 1569.0},
        evidence=[
            *opened["evidence"],
            {"kind": "snapshot_after", "path": "evidence/x/after.jpg", "sha256": "6" * 64},
        ],
    )
    record.update(overrides)
    return record


def ingest(client: httpx.Client, record: dict[str, Any]) -> httpx.Response:
    return client.post("/api/v1/alerts", json=record)


def new_case(live: LiveServer, status: str = "reported", **overrides: Any) -> str:
    """Create a case via ingest and drive it to ``status`` through the API (admin)."""
    if status in ("reminded", "self_rectified"):
        # A live record from a remind-first zone (DESIGN §3.7), at a place of its own (a place reminded
        # before gets no second reminder); closed in time, the unit cleared it.
        spot = uuid.uuid4().int
        where = {"type": "Point", "coordinates": [100 + spot % 10**5 / 10**4, 20 + spot // 10**5 % 10**5 / 10**4]}
        overrides = {"video_offset_s": None, "remind_first_s": 600, "location": where, **overrides}
    path = {
        "reminded": [],
        "self_rectified": [],
        "reported": [],
        "filed": ["file"],
        "rejected": ["reject"],
        "dispatched": ["file", "dispatch"],
        "handled": ["file", "dispatch", "handle"],
        "closed": ["file", "dispatch", "handle", "close"],
    }[status]
    record = alert(**overrides)
    with live.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
        if status == "self_rectified":
            assert ingest(camera, closed(record, video_offset_s=None)).status_code == 201
    with live.client("admin") as admin:
        for action in path:
            response = admin.post(f"/api/v1/cases/{record['id']}/actions", json={"action": action, "note": "ok"})
            assert response.status_code == 200, response.text
    return str(record["id"])


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps dialling out of this closed network.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1400,1000",
    "--lang=zh-CN",
)  # fmt: skip


def start_chromium(*extra_flags: str) -> Any:
    """Debian's headless Chromium under Selenium; skips (fails on CI) when it or selenium is missing."""
    import os
    from pathlib import Path

    import pytest

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test needs {missing}")
        pytest.skip(f"browser test needs {missing}")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, *extra_flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    return driver
