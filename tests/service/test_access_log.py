"""The access log: each evidence read, bundle export, config change, token creation and login adds exactly one
row with the reader's token name; only supervisors and admins read it; the service's own job purges rows
older than the retention."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service import crud
from service.core.security import Principal
from service.models import AccessLogEntry
from tests.service.helpers import FakeClock, LiveServer, new_case, settings_for, start_server


def rows(live: LiveServer) -> list[AccessLogEntry]:
    with live.db.reading() as session:
        return list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.seq)))


def test_one_evidence_get_adds_exactly_one_row_with_the_readers_name(any_server: LiveServer) -> None:
    data = b"\xff\xd8\xff" + b"jpeg" * 16
    sha = hashlib.sha256(data).hexdigest()
    case_id = new_case(any_server, "dispatched", evidence=[{"kind": "snapshot", "path": "s.jpg", "sha256": sha}])
    with any_server.client("camera") as camera:
        assert camera.put(f"/api/v1/evidence/{sha}", content=data, headers={"Content-Type": "image/jpeg"}).is_success
    reader = any_server.token("operator", "wang-fang")
    before = rows(any_server)
    with any_server.client(headers={"Authorization": f"Bearer {reader}"}) as client:
        response = client.get(f"/api/v1/cases/{case_id}/evidence/0")
    assert response.status_code == 200
    added = rows(any_server)[len(before) :]
    assert [(r.actor, r.role, r.action, r.target, r.client) for r in added] == [
        ("wang-fang", "operator", "evidence.read", f"case/{case_id}/evidence/0", "127.0.0.1")
    ]
    with any_server.client("admin") as admin:
        listed = admin.get("/api/v1/access-log", params={"action": "evidence.read", "target": f"case/{case_id}"}).json()
    assert listed["total"] == 1 and listed["items"][0]["actor"] == "wang-fang"
    # A refused read (not found) leaves no row: only what was actually handed out is logged.
    with any_server.client(headers={"Authorization": f"Bearer {reader}"}) as client:
        assert client.get(f"/api/v1/cases/{case_id}/evidence/5").status_code == 404
    assert len(rows(any_server)) == len(before) + 1


@pytest.mark.parametrize(
    ("role", "status"), [("officer", 403), ("camera", 403), ("operator", 403), ("supervisor", 200), ("admin", 200)]
)
def test_who_may_read_the_log(shared_server: LiveServer, role: str, status: int) -> None:
    with shared_server.client(role) as client:
        assert client.get("/api/v1/access-log").status_code == status


def test_changes_and_logins_are_logged(server: LiveServer) -> None:
    with server.client("admin") as admin:
        created = admin.post("/api/v1/tokens", json={"role": "operator", "name": "zhao"}).json()
        admin.delete(f"/api/v1/tokens/{created['id']}")
    with server.client() as anonymous:
        assert anonymous.post("/login", data={"token": server.tokens["supervisor"]}).status_code == 303
        assert anonymous.post("/login", data={"token": "sw_wrong"}).status_code == 401
    got = [(r.actor, r.action, r.target) for r in rows(server)]
    assert got == [
        ("admin-1", "token.create", f"token/{created['id']}"),
        ("admin-1", "token.revoke", f"token/{created['id']}"),
        ("supervisor-1", "login", "/login"),
        ("", "login.failed", "/login"),
    ]


def test_filters_and_pages(server: LiveServer) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with server.db.writing() as session:
        for i in range(5):
            actor = Principal(token_id="t", name=f"user-{i % 2}", role="operator", team=None, token_sha256="")
            crud.record_access(
                session, actor=actor, action="evidence.read", target=f"case/c{i}/evidence/0", client="10.0.0.1",
                now=now + timedelta(minutes=i),
            )  # fmt: skip
    with server.client("supervisor") as client:
        page = client.get("/api/v1/access-log", params={"actor": "user-0", "limit": 2}).json()
        rest = client.get("/api/v1/access-log", params={"actor": "user-0", "limit": 2, "offset": 2}).json()
        window = client.get(
            "/api/v1/access-log",
            params={"since": "2026-12-01T00:01:00+00:00", "until": "2026-12-01T00:03:00+00:00"},
        ).json()
        prefix = client.get("/api/v1/access-log", params={"target": "case/c_"}).json()
    assert page["total"] == 3 and [r["target"] for r in page["items"]] == ["case/c4/evidence/0", "case/c2/evidence/0"]
    assert [r["target"] for r in rest["items"]] == ["case/c0/evidence/0"]
    assert [r["target"] for r in window["items"]] == ["case/c2/evidence/0", "case/c1/evidence/0"]
    assert prefix["total"] == 0  # "_" is a character here, not a LIKE wildcard


@pytest.mark.parametrize("days", [1, 365])
def test_rows_older_than_the_retention_are_purged_by_the_services_job(tmp_path: object, days: int) -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    url = f"sqlite:///{tmp_path}/r.db"  # type: ignore[str-bytes-safe]
    from service.core.db import open_database

    db = open_database(url)
    ages = [days + 30, days + 1, days - 0.5, 0.1]  # days before now
    with db.writing() as session:
        for age in ages:
            crud.record_access(
                session,
                actor=None,
                action="login.failed",
                target=f"age {age}",
                client="x",
                now=now - timedelta(days=age),
            )
    db.dispose()
    live = start_server(settings_for(url, access_log_days=days, access_log_purge_every_s=0.2), clock=FakeClock(now))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with live.db.reading() as session:
                left = sorted(session.scalars(select(AccessLogEntry.target)))
            if len(left) == 2:
                break
            time.sleep(0.1)
        assert left == sorted([f"age {days - 0.5}", "age 0.1"])
        assert live.app.state.retention.purged == 2
        with live.db.reading() as session:
            assert session.scalar(select(func.count()).select_from(AccessLogEntry)) == 2
    finally:
        live.stop()
        live.db.dispose()


def test_rows_cannot_be_changed_in_the_database(any_server: LiveServer) -> None:
    """Append-only below the service too: an UPDATE through any connection is refused by a trigger."""
    from sqlalchemy import update
    from sqlalchemy.exc import DatabaseError

    with any_server.db.writing() as session:
        crud.record_access(
            session, actor=None, action="login.failed", target="/login", client="x", now=datetime.now(UTC)
        )
    with pytest.raises(DatabaseError, match="append-only"), any_server.db.writing() as session:
        session.execute(update(AccessLogEntry).values(actor="someone else"))
    assert [r.actor for r in rows(any_server)] == [""]
