"""Cases over HTTP: lifecycle table, audit trail, deadlines, repeat offences, filters, exports, cameras, SSE."""

from __future__ import annotations

import json
import random
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.core.lifecycle import ACTIONS, STATUSES, TRANSITIONS
from tests.service.helpers import FakeClock, LiveServer, alert, closed, ingest, new_case, settings_for, start_server

# Expected result of every action from every status: the next status, or 409.
LIFECYCLE: dict[tuple[str, str], str | int] = {(status, action): 409 for status in STATUSES for action in ACTIONS} | {
    ("reported", "file"): "filed",
    ("reported", "reject"): "rejected",
    ("filed", "dispatch"): "dispatched",
    ("dispatched", "handle"): "handled",
    ("handled", "close"): "closed",
    ("handled", "reopen"): "dispatched",
}


def test_lifecycle_table_matches_the_code() -> None:
    assert {key: value for key, value in LIFECYCLE.items() if value != 409} == TRANSITIONS


@pytest.mark.parametrize(("status", "action"), sorted(LIFECYCLE))
def test_every_action_from_every_status(shared_server: LiveServer, status: str, action: str) -> None:
    server = shared_server
    case_id = new_case(server, status)
    expected = LIFECYCLE[(status, action)]
    with server.client("admin") as admin:
        before = admin.get(f"/api/v1/cases/{case_id}").json()
        response = admin.post(f"/api/v1/cases/{case_id}/actions", json={"action": action, "note": "because"})
        after = admin.get(f"/api/v1/cases/{case_id}").json()
    if expected == 409:
        assert response.status_code == 409
        assert after["status"] == status and after["history"] == before["history"]
    else:
        assert response.status_code == 200, response.text
        assert after["status"] == expected
        last = after["history"][-1]
        assert (last["action"], last["from_status"], last["to_status"]) == (action, status, expected)
        assert (last["actor"], last["actor_role"], last["note"]) == ("admin-1", "admin", "because")


def test_audit_trail_records_who_when_and_notes(server: LiveServer) -> None:
    case_id = new_case(server, "reported")
    steps = [
        ("operator", {"action": "file", "note": "confirmed on video"}),
        ("operator", {"action": "dispatch", "team": "team-a"}),
        ("officer", {"action": "handle", "note": "vendor moved on"}),
        ("operator", {"action": "reopen", "note": "still there on camera"}),
        ("officer", {"action": "handle", "note": "removed the cart"}),
        ("supervisor", {"action": "close"}),
    ]
    for role, body in steps:
        with server.client(role) as client:
            assert client.post(f"/api/v1/cases/{case_id}/actions", json=body).status_code == 200
    with server.client("operator") as operator:
        case = operator.get(f"/api/v1/cases/{case_id}").json()
    trail = [(h["action"], h["to_status"], h["actor"], h["note"]) for h in case["history"]]
    assert trail == [
        (None, "reported", "camera-1", "violation.opened from cam-jfdl-01"),
        ("file", "filed", "operator-1", "confirmed on video"),
        ("dispatch", "dispatched", "operator-1", None),
        ("handle", "handled", "officer-1", "vendor moved on"),
        ("reopen", "dispatched", "operator-1", "still there on camera"),
        ("handle", "handled", "officer-1", "removed the cart"),
        ("close", "closed", "supervisor-1", None),
    ]
    times = [h["at"] for h in case["history"]]
    assert times == sorted(times)
    assert case["team"] == "team-a" and case["closed_at"] is not None


@pytest.mark.parametrize(
    ("role", "body", "status", "detail"),
    [
        ("operator", {"action": "reject"}, 422, "needs a note or a reason"),
        ("operator", {"action": "reject", "note": "   "}, 422, "needs a note or a reason"),
        ("operator", {"action": "file", "team": "team-a"}, 422, "only accepted with the dispatch"),
        ("operator", {"action": "approve"}, 422, "action"),
        ("operator", {"action": "file", "priority": 1}, 422, "priority"),
        ("officer", {"action": "file"}, 404, "no case"),  # not dispatched to his team: invisible
        ("operator", {"action": "handle"}, 403, "may not handle"),
    ],
)
def test_bad_actions(shared_server: LiveServer, role: str, body: dict[str, Any], status: int, detail: str) -> None:
    server = shared_server
    case_id = new_case(server, "reported")
    with server.client(role) as client:
        response = client.post(f"/api/v1/cases/{case_id}/actions", json=body)
    assert response.status_code == status
    assert detail in json.dumps(response.json())


def test_dispatch_without_grid_needs_a_team(server: LiveServer) -> None:
    case_id = new_case(server, "filed", grid=None)
    with server.client("operator") as operator:
        url = f"/api/v1/cases/{case_id}/actions"
        assert operator.post(url, json={"action": "dispatch"}).status_code == 422
        response = operator.post(url, json={"action": "dispatch", "team": "team-z"})
    assert response.status_code == 200 and response.json()["team"] == "team-z"


# ---- deadlines, overdue, repeats -------------------------------------------------------------------------


def test_deadlines_overdue_flag_and_filter(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 27, 1, 20, tzinfo=UTC))  # alerted 01:17 UTC
    live = start_server(
        settings_for(f"sqlite:///{tmp_path / 'd.db'}", deadlines_s={"street_vending": 600}), clock=clock
    )
    try:
        vending = new_case(live, "dispatched")
        laundry = new_case(live, "reported", category="hanging_laundry", object_class="laundry")
        handled = new_case(live, "handled")
        with live.client("operator") as operator:
            case = operator.get(f"/api/v1/cases/{vending}").json()
            assert case["due_at"] == "2026-11-27T01:27:03Z"  # custom 10 min
            laundry_due = operator.get(f"/api/v1/cases/{laundry}").json()["due_at"]
            assert laundry_due == "2026-11-28T01:17:03Z"  # default 24 h
            assert case["overdue"] is False
            clock.advance(3600)
            overdue = operator.get("/api/v1/cases", params={"overdue": "true"}).json()
            assert [item["id"] for item in overdue["items"]] == [vending]
            assert overdue["items"][0]["overdue"] is True
            on_time = operator.get("/api/v1/cases", params={"overdue": "false"}).json()
            assert {item["id"] for item in on_time["items"]} == {laundry, handled}  # handled: clock stopped
        with live.client("supervisor") as supervisor:
            assert "streetwatch_cases_overdue 1" in supervisor.get("/metrics").text.splitlines()
    finally:
        live.stop()
        live.db.dispose()


# (category, its object class, default handling deadline in hours)
DEFAULT_DEADLINES_H = [
    ("street_vending", "stall", 2),
    ("storefront_overflow", "stall", 4),
    ("hanging_laundry", "laundry", 24),
    ("illegal_structure", "structure", 7 * 24),
    ("sidewalk_obstruction", "object", 4),
]


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, FakeClock]]:
    """A server with default settings and a clock the test sets."""
    clock = FakeClock(datetime(2026, 11, 27, 1, 20, tzinfo=UTC))
    live = start_server(settings_for(f"sqlite:///{tmp_path_factory.mktemp('clocked') / 'c.db'}"), clock=clock)
    yield live, clock
    live.stop()
    live.db.dispose()


@pytest.mark.parametrize(("category", "object_class", "hours"), DEFAULT_DEADLINES_H)
def test_default_deadline_of_each_category_makes_cases_overdue(
    clocked: tuple[LiveServer, FakeClock], category: str, object_class: str, hours: int
) -> None:
    live, clock = clocked
    alerted = datetime(2026, 11, 27, 1, 17, 3, tzinfo=UTC)
    case_id = new_case(live, "dispatched", category=category, object_class=object_class,
                       alerted_at=alerted.isoformat(), camera_id=f"cam-due-{category.replace('_', '-')}")  # fmt: skip
    due = alerted + timedelta(hours=hours)
    seen = []
    with live.client("operator") as operator:
        for now in (due - timedelta(seconds=1), due + timedelta(seconds=1)):
            clock.now = now
            case = operator.get(f"/api/v1/cases/{case_id}").json()
            overdue = operator.get("/api/v1/cases", params={"overdue": "true", "category": category}).json()
            seen.append((case["due_at"], case["overdue"], case_id in [item["id"] for item in overdue["items"]]))
    due_text = due.isoformat().replace("+00:00", "Z")
    assert seen == [(due_text, False, False), (due_text, True, True)]


@pytest.mark.parametrize(
    ("offset_m", "category", "minutes_later", "is_repeat"),
    [
        (5.0, "street_vending", 60, True),
        (19.0, "street_vending", 60, True),
        (25.0, "street_vending", 60, False),  # too far
        (5.0, "hanging_laundry", 60, False),  # other category
        (5.0, "street_vending", 60 * 24 * 40, False),  # outside the 30-day window
    ],
)
def test_repeat_offence_links_earlier_case(
    shared_server: LiveServer, offset_m: float, category: str, minutes_later: int, is_repeat: bool
) -> None:
    server = shared_server
    # A place of its own (~1 km apart per case): cases of other tests on this server are no repeats.
    lon = 118.7 + random.random()
    lat = 32.0 + random.random()
    first = alert(location={"type": "Point", "coordinates": [lon, lat]})
    later = datetime(2026, 11, 27, 1, 17, 3, tzinfo=UTC) + timedelta(minutes=minutes_later)
    second = alert(
        category=category,
        object_class="stall" if category == "street_vending" else "laundry",
        location={"type": "Point", "coordinates": [lon, lat + offset_m / 111_195.0]},
        started_at=(later - timedelta(minutes=3)).isoformat(),
        alerted_at=later.isoformat(),
    )
    with server.client("camera") as camera:
        ingest(camera, first)
        ingest(camera, second)
    with server.client("operator") as operator:
        repeat_of = operator.get(f"/api/v1/cases/{second['id']}").json()["repeat_of"]
    assert repeat_of == (first["id"] if is_repeat else None)


# ---- list, filters, pagination -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def populated(shared_any_server: LiveServer) -> tuple[LiveServer, dict[str, str]]:
    any_server = shared_any_server
    ids = {
        "a": new_case(any_server, "reported", alerted_at="2026-11-27T09:00:00+08:00"),
        "b": new_case(any_server, "filed", category="hanging_laundry", object_class="laundry",
                      alerted_at="2026-11-27T10:00:00+08:00"),
        "c": new_case(any_server, "dispatched", camera_id="cam-other", alerted_at="2026-11-27T11:00:00+08:00"),
        "d": new_case(any_server, "rejected", grid={"code": "g-9", "team": "team-b"},
                      alerted_at="2026-11-27T12:00:00+08:00"),
        "e": new_case(any_server, "reported", category="sidewalk_obstruction", object_class="object",
                      alerted_at="2026-11-27T08:00:00+08:00"),
    }  # fmt: skip
    return any_server, ids


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "dcbae"),  # newest first
        ({"status": "reported"}, "ae"),
        ({"status": ["filed", "dispatched"]}, "cb"),
        ({"category": "hanging_laundry"}, "b"),
        ({"category": "sidewalk_obstruction"}, "e"),
        ({"category": ["sidewalk_obstruction", "hanging_laundry"]}, "be"),
        ({"category": "sidewalk_obstruction", "status": "reported"}, "e"),
        ({"camera": "cam-other"}, "c"),
        ({"grid": "g-9"}, "d"),
        ({"team": "team-a"}, "c"),
        ({"since": "2026-11-27T10:00:00+08:00"}, "dcb"),
        ({"until": "2026-11-27T03:00:00+00:00"}, "bae"),
        ({"since": "2026-11-27T10:00:00+08:00", "until": "2026-11-27T12:00:00+08:00"}, "cb"),
        ({"limit": 2}, "dc"),
        ({"limit": 2, "offset": 2}, "ba"),
        ({"offset": 10}, ""),
    ],
)
def test_list_filters(populated: tuple[LiveServer, dict[str, str]], params: dict[str, Any], expected: str) -> None:
    live, ids = populated
    with live.client("operator") as operator:
        response = operator.get("/api/v1/cases", params=params)
    assert response.status_code == 200
    body = response.json()
    names = {case_id: name for name, case_id in ids.items()}
    assert "".join(names[item["id"]] for item in body["items"]) == expected
    if "limit" not in params and "offset" not in params:
        assert body["total"] == len(expected)
    else:
        assert body["total"] == 5


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"status": "lost"},
        {"category": "graffiti"},
        {"since": "2026-11-27T10:00:00"},  # naive time: ambiguous
        {"overdue": "maybe"},
    ],
)
def test_list_rejects_bad_parameters(shared_server: LiveServer, params: dict[str, Any]) -> None:
    with shared_server.client("operator") as operator:
        assert operator.get("/api/v1/cases", params=params).status_code == 422


def test_case_public_shape_leaks_no_internals(server: LiveServer) -> None:
    record = alert(source={"uri": "rtsp://admin:hunter2@10.1.2.3:554/stream1", "frame": 7})
    with server.client("camera") as camera:
        ingest(camera, record)
    with server.client("operator") as operator:
        case = operator.get("/api/v1/cases").json()["items"][0]
    assert set(case) == {
        "id", "status", "category", "object_class", "zone", "camera_id", "grid", "team", "location",
        "location_error_m", "confidence", "bbox", "evidence", "model", "source", "video_offset_s", "started_at",
        "alerted_at", "ended_at", "cleared_at", "due_at", "overdue", "filed_at", "dispatched_at", "handled_at",
        "closed_at", "created_at", "updated_at", "repeat_of", "responsible", "remind_first_s", "reminded_at",
        "remind_deadline", "mark", "camera_health",
    }  # fmt: skip
    assert case["source"] == {"uri": "rtsp://10.1.2.3:554/stream1", "frame": 7}
    assert "hunter2" not in json.dumps(case)
    assert set(case["evidence"][0]) == {"kind", "stage", "sha256", "url"}
    assert case["location"] == {"type": "Point", "coordinates": [118.79702, 32.06013]}


# ---- exports --------------------------------------------------------------------------------------------


def test_geojson_is_a_feature_collection_in_lon_lat(server: LiveServer) -> None:
    case_id = new_case(server, "filed")
    with server.client("operator") as operator:
        response = operator.get("/api/v1/cases.geojson")
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    (feature,) = body["features"]
    assert feature["type"] == "Feature" and feature["id"] == case_id
    assert feature["geometry"] == {"type": "Point", "coordinates": [118.79702, 32.06013]}
    assert feature["properties"]["status"] == "filed"
    assert feature["properties"]["category"] == "street_vending"


def test_cap_is_valid_cap_1_2_with_lat_lon_circle(server: LiveServer) -> None:
    case_id = new_case(server, "filed", location_error_m=25.0)
    with server.client("operator") as operator:
        response = operator.get(f"/api/v1/cases/{case_id}/cap")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    root = ET.fromstring(response.content)
    assert root.tag == "{urn:oasis:names:tc:emergency:cap:1.2}alert"
    # Required CAP 1.2 elements, in schema order.
    order = ["identifier", "sender", "sent", "status", "msgType", "scope"]
    assert [child.tag.split("}")[1] for child in root][: len(order)] == order
    assert root.findtext("cap:identifier", namespaces=ns) == f"streetwatch-{case_id}"
    sent = root.findtext("cap:sent", namespaces=ns) or ""
    assert sent.endswith("-00:00") and "Z" not in sent and "." not in sent
    info = root.find("cap:info", ns)
    assert info is not None
    for name in ("category", "event", "urgency", "severity", "certainty"):
        assert info.findtext(f"cap:{name}", namespaces=ns)
    assert info.findtext("cap:certainty", namespaces=ns) == "Observed"
    assert info.findtext("cap:area/cap:circle", namespaces=ns) == "32.060130,118.797020 0.025"
    assert info.findtext("cap:expires", namespaces=ns) == "2026-11-27T03:17:03-00:00"


# (category, its object class, CAP event, CAP expires: alerted 01:17:03 UTC + the default deadline)
CAP_EVENTS = [
    ("street_vending", "stall", "占道经营 street vending", "2026-11-27T03:17:03-00:00"),
    ("storefront_overflow", "stall", "出店经营 storefront overflow", "2026-11-27T05:17:03-00:00"),
    ("hanging_laundry", "laundry", "沿街晾晒 hanging laundry", "2026-11-28T01:17:03-00:00"),
    ("illegal_structure", "structure", "乱搭乱建 illegal structure", "2026-12-04T01:17:03-00:00"),
    ("sidewalk_obstruction", "object", "占道堆物 sidewalk obstruction", "2026-11-27T05:17:03-00:00"),
]


@pytest.mark.parametrize(("category", "object_class", "event", "expires"), CAP_EVENTS)
def test_cap_and_geojson_name_each_category(
    shared_server: LiveServer, category: str, object_class: str, event: str, expires: str
) -> None:
    case_id = new_case(shared_server, "filed", category=category, object_class=object_class, zone="人行道-3")
    with shared_server.client("operator") as operator:
        cap = operator.get(f"/api/v1/cases/{case_id}/cap")
        geojson = operator.get("/api/v1/cases.geojson", params={"category": category, "limit": 5000}).json()
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    info = ET.fromstring(cap.content).find("cap:info", ns)
    assert info is not None
    assert info.findtext("cap:event", namespaces=ns) == event
    assert info.findtext("cap:headline", namespaces=ns) == f"{event} — 人行道-3"
    assert info.findtext("cap:eventCode/cap:value", namespaces=ns) == category
    assert info.findtext("cap:expires", namespaces=ns) == expires
    features = {feature["id"]: feature for feature in geojson["features"]}
    assert features[case_id]["properties"]["category"] == category
    assert {feature["properties"]["category"] for feature in features.values()} == {category}


def test_metrics_are_prometheus_text(server: LiveServer) -> None:
    new_case(server, "reported")
    new_case(server, "closed")
    with server.client("supervisor") as supervisor:
        response = supervisor.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    families = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    assert {
        "streetwatch_alerts_stored_total", "streetwatch_ingest_requests_total", "streetwatch_cases",
        "streetwatch_cases_overdue", "streetwatch_outbox_backlog", "streetwatch_webhook_deliveries",
        "streetwatch_webhook_delivery_failures_total", "streetwatch_cameras",
    } <= families  # fmt: skip
    assert 'streetwatch_cases{status="reported"} 1' in lines
    assert 'streetwatch_cases{status="closed"} 1' in lines
    for line in lines:
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])  # every sample has a numeric value


# ---- cameras ---------------------------------------------------------------------------------------------


def test_camera_status_is_reported_and_listed(server: LiveServer) -> None:
    body = {"status": "online", "last_frame_at": "2026-11-27T09:00:00+08:00", "frames_dropped": 3, "analysis_fps": 4.5}
    with server.client("camera") as camera:
        assert camera.post("/api/v1/cameras/cam-a/status", json=body).status_code == 200
        assert camera.post("/api/v1/cameras/cam-b/status", json={"status": "offline"}).status_code == 200
        assert camera.post("/api/v1/cameras/cam-a/status", json={**body, "frames_dropped": 9}).status_code == 200
        assert camera.post("/api/v1/cameras/cam-a/status", json={"status": "dead"}).status_code == 422
        assert camera.post("/api/v1/cameras/cam-a/status", json={**body, "extra": 1}).status_code == 422
        assert camera.post("/api/v1/cameras/CAM A/status", json=body).status_code == 422
    with server.client("operator") as operator:
        items = operator.get("/api/v1/cameras").json()["items"]
    assert [(c["id"], c["status"], c["frames_dropped"]) for c in items] == [
        ("cam-a", "online", 9),
        ("cam-b", "offline", 0),
    ]
    assert items[0]["last_frame_at"] == "2026-11-27T01:00:00Z"
    assert items[0]["analysis_fps"] == 4.5


# ---- SSE -------------------------------------------------------------------------------------------------


def _read_events(client: httpx.Client, count: int, out: list[dict[str, Any]], ready: threading.Event,
                 params: dict[str, Any] | None = None) -> None:  # fmt: skip
    with client.stream("GET", "/api/v1/events", params=params or {}) as response:
        ready.set()
        event: dict[str, Any] = {}
        for line in response.iter_lines():
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and "data" in event:
                out.append(event)
                event = {}
                if len(out) >= count:
                    return


def test_sse_streams_case_changes_scoped_by_team(server: LiveServer) -> None:
    operator_events: list[dict[str, Any]] = []
    officer_events: list[dict[str, Any]] = []
    with server.client("operator") as operator, server.client("officer_b") as officer_b:
        ready = [threading.Event(), threading.Event()]
        threads = [
            threading.Thread(target=_read_events, args=(operator, 5, operator_events, ready[0]), daemon=True),
            threading.Thread(target=_read_events, args=(officer_b, 1, officer_events, ready[1]), daemon=True),
        ]
        for thread in threads:
            thread.start()
        assert all(event.wait(10) for event in ready)
        new_case(server, "dispatched")  # 3 changes, team-a
        new_case(server, "dispatched", grid={"code": "g-2", "team": "team-b"})  # 3 changes, team-b
        for thread in threads:
            thread.join(20)
    assert [e["data"]["to_status"] for e in operator_events] == ["reported", "filed", "dispatched", "reported", "filed"]
    assert all(e["event"] == "case" for e in operator_events)
    ids = [e["id"] for e in operator_events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Officers only see changes of cases dispatched to their team (team-a's dispatch came first).
    assert [(e["data"]["action"], e["data"]["team"], e["data"]["to_status"]) for e in officer_events] == [
        ("dispatch", "team-b", "dispatched")
    ]


def test_sse_resumes_after_last_event_id(server: LiveServer) -> None:
    first = new_case(server, "filed")
    with server.client("operator") as operator:
        history = operator.get(f"/api/v1/cases/{first}").json()["history"]
        events: list[dict[str, Any]] = []
        _read_events(operator, 1, events, threading.Event(), params={"after": history[0]["seq"]})
    assert events[0]["id"] == history[1]["seq"]
    assert events[0]["data"]["action"] == "file"


def test_closed_event_of_dispatched_case_is_logged_for_the_team(server: LiveServer) -> None:
    record = alert()
    with server.client("camera") as camera:
        ingest(camera, record)
    with server.client("admin") as admin:
        for action in ("file", "dispatch"):
            admin.post(f"/api/v1/cases/{record['id']}/actions", json={"action": action})
    with server.client("camera") as camera:
        ingest(camera, closed(record))
    with server.client("officer") as officer:
        history = officer.get(f"/api/v1/cases/{record['id']}").json()["history"]
    assert history[-1]["kind"] == "cleared" and history[-1]["team"] == "team-a"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/cases?offset=32589158477190044731", 422),  # found by schemathesis: was a 500 on SQLite
        ("/api/v1/cases.geojson?offset=32589158477190044731&limit=700", 422),
        ("/api/v1/cases?offset=1000000000000", 200),
        ("/api/v1/events?after=99999999999999999999", 422),
    ],
)
def test_huge_offsets_are_refused_not_500(shared_server: LiveServer, path: str, status: int) -> None:
    with shared_server.client("admin") as admin:
        assert admin.get(path, headers={"Accept": "application/json"}).status_code == status
