"""Review with labels and precision from verdicts: file with the operator's corrected box, reject with a
reason, the stored audit row (the contract ``streetwatch dataset export`` reads), precision per camera,
category and ISO week, and the verdict metrics. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.models import CaseChange
from tests.service.helpers import FakeClock, LiveServer, alert, ingest, new_case, settings_for, start_server

CLEAN = [
    {"kind": "snapshot", "path": "evidence/x/snapshot.jpg", "sha256": "5" * 64},
    {"kind": "snapshot_clean", "path": "evidence/x/snapshot_clean.jpg", "sha256": "7" * 64},
]
SNAPSHOT_ONLY = CLEAN[:1]
STALL = {"bbox": [101, 388, 230, 512], "object_class": "stall"}


def _verdict_row(live: LiveServer, case_id: str) -> CaseChange | None:
    """The case's verdict exactly as the contract defines it: its latest CaseChange of kind action with
    action file or reject."""
    with live.db.reading() as session:
        return session.scalars(
            select(CaseChange)
            .where(CaseChange.case_id == case_id, CaseChange.kind == "action")
            .where(CaseChange.action.in_(["file", "reject"]))
            .order_by(CaseChange.seq.desc())
            .limit(1)
        ).first()


# (case status, its evidence, request body (a dict, or raw JSON text), expected status,
#  then for 200 the stored (label, reason, note), for errors a text the answer holds)
ACTIONS: list[tuple[str, list[dict[str, Any]], dict[str, Any] | str, int, Any]] = [
    ("reported", CLEAN, {"action": "file", "label": STALL}, 200,
     ({"bbox": [101.0, 388.0, 230.0, 512.0], "object_class": "stall"}, None, None)),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [10.5, 20.25, 30.75, 40], "object_class": "laundry"},
                         "note": "box was too wide"}, 200,
     ({"bbox": [10.5, 20.25, 30.75, 40.0], "object_class": "laundry"}, None, "box was too wide")),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [0, 0, 100000, 100000], "object_class": "structure"}},
     200, ({"bbox": [0.0, 0.0, 100000.0, 100000.0], "object_class": "structure"}, None, None)),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [10, 20, 30, 40], "object_class": "object"}}, 200,
     ({"bbox": [10.0, 20.0, 30.0, 40.0], "object_class": "object"}, None, None)),  # 占道堆物's class
    ("reported", CLEAN, {"action": "file"}, 200, (None, None, None)),
    ("reported", CLEAN, {"action": "reject", "reason": "parked_vehicle"}, 200, (None, "parked_vehicle", None)),
    ("reported", CLEAN, {"action": "reject", "reason": "other", "note": "a film crew's prop stall"}, 200,
     (None, "other", "a film crew's prop stall")),
    ("reported", CLEAN, {"action": "reject", "reason": "shadow", "note": "  "}, 200, (None, "shadow", None)),
    ("reported", CLEAN, {"action": "reject", "note": "legal market day"}, 200, (None, None, "legal market day")),
    # refused: the box
    ("reported", SNAPSHOT_ONLY, {"action": "file", "label": STALL}, 422, "no snapshot_clean evidence"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [5, 1, 5, 9], "object_class": "stall"}}, 422,
     "bbox_empty"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [1, 9, 5, 2], "object_class": "stall"}}, 422,
     "bbox_empty"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [-1, 0, 5, 9], "object_class": "stall"}}, 422,
     "greater_than_equal"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [0, 0, 100000.5, 9], "object_class": "stall"}}, 422,
     "less_than_equal"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [0, 0, 5], "object_class": "stall"}}, 422, "missing"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [0, 0, 5, 9, 9], "object_class": "stall"}}, 422,
     "too_long"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": ["0", 0, 5, 9], "object_class": "stall"}}, 422,
     "float_type"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [True, 0, 5, 9], "object_class": "stall"}}, 422,
     "float_type"),
    ("reported", CLEAN, '{"action": "file", "label": {"bbox": [NaN, 0, 5, 9], "object_class": "stall"}}', 422,
     "finite_number"),
    ("reported", CLEAN, '{"action": "file", "label": {"bbox": [0, 0, Infinity, 9], "object_class": "stall"}}', 422,
     "finite_number"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [0, 0, 5, 9], "object_class": "car"}}, 422,
     "literal_error"),
    ("reported", CLEAN, {"action": "file", "label": {"bbox": [0, 0, 5, 9]}}, 422, "missing"),
    ("reported", CLEAN, {"action": "file", "label": {**STALL, "score": 1}}, 422, "extra_forbidden"),
    # refused: the field does not fit the action
    ("reported", CLEAN, {"action": "reject", "reason": "person", "label": STALL}, 422, "label_not_allowed"),
    ("filed", CLEAN, {"action": "dispatch", "label": STALL}, 422, "label_not_allowed"),
    ("reported", CLEAN, {"action": "file", "reason": "shadow"}, 422, "reason_not_allowed"),
    ("handled", CLEAN, {"action": "reopen", "note": "still there", "reason": "other"}, 422, "reason_not_allowed"),
    # refused: the reason
    ("reported", CLEAN, {"action": "reject"}, 422, "needs a note or a reason"),
    ("reported", CLEAN, {"action": "reject", "note": " "}, 422, "needs a note or a reason"),
    ("reported", CLEAN, {"action": "reject", "reason": "dog"}, 422, "literal_error"),
    ("reported", CLEAN, {"action": "reject", "reason": None}, 422, "needs a note or a reason"),
    ("handled", CLEAN, {"action": "reopen"}, 422, "needs a note giving the reason"),
    # the lifecycle still comes first: a label on a case no longer reported
    ("filed", CLEAN, {"action": "file", "label": STALL}, 409, "cannot file a case that is filed"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "evidence", "body", "code", "expected"), ACTIONS)
def test_review_label_and_reason(
    shared_any_server: LiveServer,
    status: str,
    evidence: list[dict[str, Any]],
    body: dict[str, Any] | str,
    code: int,
    expected: Any,
) -> None:
    live = shared_any_server
    case_id = new_case(live, status, evidence=evidence)
    url = f"/api/v1/cases/{case_id}/actions"
    with live.client("operator") as operator:
        before = operator.get(f"/api/v1/cases/{case_id}").json()["history"]
        if isinstance(body, str):
            response = operator.post(url, content=body, headers={"content-type": "application/json"})
        else:
            response = operator.post(url, json=body)
    assert response.status_code == code, response.text
    if code != 200:
        assert expected in json.dumps(response.json())
        with live.client("operator") as operator:
            assert operator.get(f"/api/v1/cases/{case_id}").json()["history"] == before  # nothing written
        return
    label, reason, note = expected
    last = response.json()["history"][-1]
    assert (last["label"], last["reason"], last["note"]) == (label, reason, note)
    assert all(h["label"] is None and h["reason"] is None for h in response.json()["history"][:-1])
    # The stored row, as the dataset exporter reads it.
    row = _verdict_row(live, case_id)
    assert row is not None
    assert (row.action, row.label, row.reason, row.note) == (body["action"], label, reason, note)  # type: ignore[index]
    assert (row.actor, row.actor_role) == ("operator-1", "operator")
    if label is not None:
        assert all(isinstance(value, float) for value in row.label["bbox"])  # type: ignore[index]


def test_verdict_is_the_latest_file_or_reject(server: LiveServer) -> None:
    """The contract's definition, for rows a future lifecycle (or a data fix) may add: the latest wins."""
    case_id = new_case(server, "rejected")
    with server.db.writing() as session:
        first = session.scalars(select(CaseChange).where(CaseChange.case_id == case_id)).all()[-1]
        session.add(
            CaseChange(
                case_id=case_id, at=datetime(2026, 11, 30, 1, tzinfo=UTC), kind="action", action="file",
                from_status="rejected", to_status="filed", actor="supervisor-1", actor_role="supervisor",
                label={"bbox": [1.0, 2.0, 3.0, 4.0], "object_class": "stall"},
            )
        )  # fmt: skip
    assert first.action == "reject"
    row = _verdict_row(server, case_id)
    assert row is not None and (row.action, row.actor) == ("file", "supervisor-1")
    with server.client("operator") as operator:
        items = operator.get("/api/v1/stats/precision").json()["items"]
    assert [(i["week"], i["filed"], i["rejected"]) for i in items] == [("2026-W49", 1, 0)]


# ---- precision from verdicts ------------------------------------------------------------------------

# (camera, category, when the verdict is given (UTC) or None: stays reported, verdict, then more actions)
SCENARIO: list[tuple[str, str, str | None, str, tuple[str, ...]]] = [
    ("cam-a", "street_vending", "2026-11-27T02:00:00", "file", ()),
    ("cam-a", "street_vending", "2026-11-27T03:00:00", "file", ("dispatch", "handle", "close")),  # still filed
    ("cam-a", "street_vending", "2026-11-29T23:30:00", "reject", ()),  # Sunday in UTC, Monday in Nanjing
    ("cam-a", "street_vending", "2026-11-30T00:10:00", "file", ()),
    ("cam-a", "street_vending", "2026-11-30T01:00:00", "reject", ()),
    ("cam-a", "street_vending", "2026-11-30T02:00:00", "reject", ()),
    ("cam-a", "hanging_laundry", None, "", ()),  # alerted 2026-11-27 (W48), awaiting review
    ("cam-b", "street_vending", "2027-01-01T00:00:00", "reject", ()),  # ISO year 2026, week 53
    ("cam-b", "street_vending", "2027-01-04T00:00:00", "file", ()),
    ("cam-b", "illegal_structure", "2026-11-27T05:00:00", "file", ()),
    ("cam-b", "illegal_structure", None, "", ()),
    ("cam-c", "sidewalk_obstruction", "2026-11-27T06:00:00", "file", ()),
    ("cam-c", "sidewalk_obstruction", "2026-11-27T07:00:00", "reject", ()),
    ("cam-c", "sidewalk_obstruction", "2026-11-28T08:00:00", "file", ("dispatch",)),  # still filed
    ("cam-c", "sidewalk_obstruction", None, "", ()),
]
OBJECT = {"street_vending": "stall", "hanging_laundry": "laundry", "illegal_structure": "structure",
          "sidewalk_obstruction": "object"}  # fmt: skip

# (camera, category, week, filed, rejected, pending, precision)
ALL = [
    ("cam-a", "hanging_laundry", "2026-W48", 0, 0, 1, None),
    ("cam-a", "street_vending", "2026-W48", 2, 1, 0, 2 / 3),
    ("cam-a", "street_vending", "2026-W49", 1, 2, 0, 1 / 3),
    ("cam-b", "illegal_structure", "2026-W48", 1, 0, 1, 1.0),
    ("cam-b", "street_vending", "2026-W53", 0, 1, 0, 0.0),
    ("cam-b", "street_vending", "2027-W01", 1, 0, 0, 1.0),
    ("cam-c", "sidewalk_obstruction", "2026-W48", 2, 1, 1, 2 / 3),
]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def verdicts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('verdicts') / 'streetwatch.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_database()
    clock = FakeClock(datetime(2026, 11, 27, 1, 20, tzinfo=UTC))
    live = start_server(settings_for(url, auth_failures_max=0), clock=clock)
    with live.client("camera") as camera, live.client("operator") as operator, live.client("admin") as admin:
        for camera_id, category, when, action, then in SCENARIO:
            record = alert(camera_id=camera_id, category=category, object_class=OBJECT[category], evidence=CLEAN)
            assert ingest(camera, record).status_code == 201
            if when is None:
                continue
            clock.now = datetime.fromisoformat(when).replace(tzinfo=UTC)
            body = {"action": action, **({"reason": "parked_vehicle"} if action == "reject" else {})}
            assert operator.post(f"/api/v1/cases/{record['id']}/actions", json=body).status_code == 200
            for step in then:
                clock.advance(3600)
                step_body = {"action": step, "note": "ok"}
                assert admin.post(f"/api/v1/cases/{record['id']}/actions", json=step_body).status_code == 200
    yield live
    live.stop()
    live.db.dispose()


def _rows(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (i["camera_id"], i["category"], i["week"], i["filed"], i["rejected"], i["pending"],
         None if i["precision"] is None else round(i["precision"], 9))
        for i in items
    ]  # fmt: skip


def _expected(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(*row[:-1], None if row[-1] is None else round(row[-1], 9)) for row in rows]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ALL),
        ({"camera": "cam-b"}, ALL[3:6]),
        ({"camera": "cam-c"}, ALL[6:]),
        ({"camera": "cam-none"}, []),
        ({"category": "street_vending"}, [ALL[1], ALL[2], ALL[4], ALL[5]]),
        ({"category": ["hanging_laundry", "illegal_structure"]}, [ALL[0], ALL[3]]),
        ({"category": "sidewalk_obstruction"}, [ALL[6]]),
        ({"category": ["sidewalk_obstruction", "illegal_structure"]}, [ALL[3], ALL[6]]),
        ({"camera": "cam-a", "category": "hanging_laundry"}, [ALL[0]]),  # only pending: precision null
        # since/until bound the verdict time (pending reports: alerted_at), since inclusive, until not
        ({"since": "2026-11-30T00:00:00Z"}, [ALL[2], ALL[4], ALL[5]]),
        ({"until": "2026-11-30T08:00:00+08:00"},
         [ALL[0], ALL[1], ("cam-b", "illegal_structure", "2026-W48", 1, 0, 1, 1.0), ALL[6]]),
        ({"since": "2026-11-29T23:30:00Z", "until": "2026-11-30T00:10:00Z"},
         [("cam-a", "street_vending", "2026-W48", 0, 1, 0, 0.0)]),
        ({"since": "2026-12-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}, []),
    ],
)  # fmt: skip
def test_precision_counts_weeks_and_filters(
    verdicts: LiveServer, params: dict[str, Any], expected: list[tuple[Any, ...]]
) -> None:
    with verdicts.client("operator") as operator:
        response = operator.get("/api/v1/stats/precision", params=params)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items"}
    assert _rows(response.json()["items"]) == _expected(expected)


@pytest.mark.parametrize(
    ("role", "params", "status"),
    [
        (None, {}, 401),
        ("camera", {}, 403),
        ("officer", {}, 403),
        ("operator", {}, 200),
        ("supervisor", {}, 200),
        ("admin", {}, 200),
        ("operator", {"category": "graffiti"}, 422),
        ("operator", {"since": "2026-11-30T00:00:00"}, 422),  # naive: ambiguous
        ("operator", {"until": "0.5"}, 422),
        ("operator", {"camera": "c" * 65}, 422),
        ("operator", {"camera": ["cam-a", "cam-b"]}, 422),  # one value only
        ("operator", {"week": "2026-W48"}, 200),  # unknown query parameters are ignored, as elsewhere
    ],
)
def test_precision_auth_and_parameters(
    verdicts: LiveServer, role: str | None, params: dict[str, Any], status: int
) -> None:
    with verdicts.client(role) as client:
        assert client.get("/api/v1/stats/precision", params=params).status_code == status


def test_verdict_and_precision_metrics(verdicts: LiveServer) -> None:
    with verdicts.client("supervisor") as supervisor:
        lines = supervisor.get("/metrics").text.splitlines()
    samples = {line for line in lines if line.startswith(("streetwatch_verdicts_total", "streetwatch_precision"))}
    assert samples == {
        'streetwatch_verdicts_total{camera="cam-a",category="street_vending",verdict="filed"} 3',
        'streetwatch_verdicts_total{camera="cam-a",category="street_vending",verdict="rejected"} 3',
        'streetwatch_verdicts_total{camera="cam-b",category="illegal_structure",verdict="filed"} 1',
        'streetwatch_verdicts_total{camera="cam-b",category="street_vending",verdict="filed"} 1',
        'streetwatch_verdicts_total{camera="cam-b",category="street_vending",verdict="rejected"} 1',
        'streetwatch_precision{camera="cam-a",category="street_vending"} 0.5',
        'streetwatch_precision{camera="cam-b",category="illegal_structure"} 1',
        'streetwatch_precision{camera="cam-b",category="street_vending"} 0.5',
        'streetwatch_verdicts_total{camera="cam-c",category="sidewalk_obstruction",verdict="filed"} 2',
        'streetwatch_verdicts_total{camera="cam-c",category="sidewalk_obstruction",verdict="rejected"} 1',
        'streetwatch_precision{camera="cam-c",category="sidewalk_obstruction"} 0.666667',
    }  # hanging_laundry has no verdict yet: no precision sample rather than NaN
    assert "# TYPE streetwatch_verdicts_total counter" in lines
    assert "# TYPE streetwatch_precision gauge" in lines


def test_precision_of_an_empty_store(tmp_path: Path) -> None:
    live = start_server(settings_for(f"sqlite:///{tmp_path / 'empty.db'}"))
    try:
        with live.client("admin") as admin:
            assert admin.get("/api/v1/stats/precision").json() == {"items": []}
            metrics = admin.get("/metrics").text
        assert "# TYPE streetwatch_precision gauge" in metrics and "streetwatch_precision{" not in metrics
    finally:
        live.stop()
        live.db.dispose()
