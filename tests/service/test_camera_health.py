"""Camera health at the service (issue #26): the five statuses and the stream's last error in
``GET /api/v1/cameras``, ``camera.health`` events on ``/api/v1/events`` (not for officers), a Standard Webhook
to the camera-health team's endpoints on each change (verified with the reference ``standardwebhooks``
package on a real receiver), and cases that keep the record's ``camera_health`` without any message sent."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from service import crud
from service.core.security import Principal
from service.models import OutboxMessage
from service.relay import Relay
from tests.service.helpers import LiveServer, alert, ingest
from tests.service.test_cases import _read_events
from tests.service.test_relay import Receiver

OFFICER = Principal(token_id="t", name="officer-a", role="officer", team="team-a", token_sha256="0" * 64)
REPORTS: list[tuple[str, str | None]] = [
    ("online", None),
    ("online", None),  # no change: no event
    ("view_moved", None),
    ("obstructed", None),
    ("offline", "HTTPServerError: Server returned 5XX Server Error reply"),
    ("offline", "ConnectionRefusedError: Connection refused"),  # the error changed, the status did not
    ("online", None),
    ("blurred", None),
]
CHANGES = [("online", "view_moved"), ("view_moved", "obstructed"), ("obstructed", "offline"), ("offline", "online"),
           ("online", "blurred")]  # fmt: skip


def _report(live: LiveServer, camera: str, status: str, error: str | None) -> dict[str, Any]:
    with live.client("camera") as client:
        response = client.post(f"/api/v1/cameras/{camera}/status", json={"status": status, "last_error": error})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_statuses_events_and_webhooks(server: LiveServer) -> None:
    receiver = Receiver()
    with server.db.writing() as session:
        _, receiver.secret = crud.add_webhook(
            session,
            team=server.settings.camera_health_team,
            url=receiver.url,
            now=datetime.now(UTC),
            allow_private=True,
        )
    events: list[dict[str, Any]] = []
    ready = threading.Event()
    with server.client("operator") as operator:
        reader = threading.Thread(target=_read_events, args=(operator, len(CHANGES), events, ready), daemon=True)
        reader.start()
        assert ready.wait(10)
        for status, error in REPORTS:
            shown = _report(server, "cam-h", status, error)
            assert shown["status"] == status and shown["last_error"] == error
            with server.client("operator") as client:
                listed = {c["id"]: c for c in client.get("/api/v1/cameras").json()["items"]}
            assert listed["cam-h"]["status"] == status and listed["cam-h"]["last_error"] == error
        reader.join(15)
    assert [(e["data"]["previous"], e["data"]["status"]) for e in events] == CHANGES
    assert {e["event"] for e in events} == {"camera.health"}
    assert events[2]["data"]["last_error"].startswith("HTTPServerError")
    with server.db.reading() as session:
        assert not crud.changes_after(session, after=0, actor=OFFICER), "officers' feeds carry only their cases"
    relay = Relay(server.db, server.settings, owner="test")
    try:
        while relay.run_once():
            pass
    finally:
        relay.close()
    receiver.close()
    delivered = sorted(receiver.payloads.values(), key=lambda p: p["data"]["at"])
    assert receiver.bad_signatures == 0
    assert [(p["type"], p["data"]["previous"], p["data"]["status"]) for p in delivered] == [
        ("camera.health", *change) for change in CHANGES
    ]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"status": "moved"}, id="unknown status"),
        pytest.param({"status": "online", "last_error": "x" * 501}, id="error too long"),
        pytest.param({"status": "online", "extra": 1}, id="unknown field"),
    ],
)
def test_bad_status_reports_are_422(server: LiveServer, body: dict[str, Any]) -> None:
    with server.client("camera") as client:
        assert client.post("/api/v1/cameras/cam-x/status", json=body).status_code == 422


@pytest.mark.parametrize("health", [None, "view_moved", "obstructed", "blurred", "offline"])
def test_a_case_keeps_the_camera_health_and_sends_nothing(server: LiveServer, health: str | None) -> None:
    record = alert(**({"camera_health": health} if health else {}))
    with server.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
    with server.client("operator") as operator:
        case = operator.get(f"/api/v1/cases/{record['id']}").json()
    assert case["camera_health"] == health
    with server.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
