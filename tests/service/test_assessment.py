"""The assessment table (考核) over a constructed case history whose answers are known, on SQLite and
PostgreSQL: on time, late, reopened and closed again, rejected, still open at `to`, self-rectified, a repeat,
a case outside the period; JSON and CSV agree; officers and cameras are refused."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service import crud
from service.core.db import open_database
from service.core.security import Principal
from service.models import Case, CaseChange
from service.schemas import ActionRequest
from tests.service.helpers import FakeClock, LiveServer, alert, settings_for, start_server
from zones.alert import AlertRecord

FROM = "2026-11-01T00:00:00+00:00"
TO = "2026-12-01T00:00:00+00:00"
NOW = datetime(2026, 12, 10, tzinfo=UTC)
ADMIN = Principal(token_id="t-admin", name="admin-1", role="admin", team=None, token_sha256="0" * 64)
LON, LAT = 118.79702, 32.06013


def t(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# name: (category, grid team, alerted at, place index, [(action, at), …])
HISTORY: dict[str, tuple[str, str, datetime, int, list[tuple[str, datetime]]]] = {
    "A on time, closed": ("street_vending", "team-a", t(10, 8), 0, [
        ("file", t(10, 8, 10)), ("dispatch", t(10, 8, 20)), ("handle", t(10, 9)), ("close", t(10, 9, 30))]),
    "B handled late, closed": ("street_vending", "team-a", t(11, 8), 1, [
        ("file", t(11, 8, 10)), ("dispatch", t(11, 8, 20)), ("handle", t(11, 11)), ("close", t(11, 12))]),
    "C reopened, closed again": ("hanging_laundry", "team-a", t(12, 8), 2, [
        ("file", t(12, 8, 10)), ("dispatch", t(12, 8, 20)), ("handle", t(12, 10)), ("reopen", t(12, 11)),
        ("handle", t(12, 15)), ("close", t(12, 16))]),
    "H repeat of A, never reviewed": ("street_vending", "team-a", t(10, 9), 0, []),
    "D rejected": ("street_vending", "team-b", t(13, 8), 3, [("reject", t(13, 8, 5))]),
    "E still open at to, overdue": ("street_vending", "team-b", t(29, 8), 4, [
        ("file", t(29, 8, 10)), ("dispatch", t(29, 8, 20))]),
    "F still open at to, handled after to": ("hanging_laundry", "team-b", t(30, 23), 5, [
        ("file", t(30, 23, 10)), ("dispatch", t(30, 23, 20)), ("handle", t(1, 1, month=12)),
        ("close", t(1, 2, month=12))]),
    "I self-rectified": ("hanging_laundry", "team-b", t(20, 8), 6, []),
    "G outside the period": ("street_vending", "team-a", t(31, 8, month=10), 7, [("file", t(31, 9, month=10))]),
}  # fmt: skip


def row(group: str, **values: Any) -> dict[str, Any]:
    zero = dict.fromkeys(
        ("reported", "filed", "rejected", "dispatched", "handled_on_time", "overdue", "closed", "reopened",
         "self_rectified", "repeat_places"), 0,
    )  # fmt: skip
    rates = dict.fromkeys(("filing_rate", "closing_rate", "rework_rate", "median_hours_to_close"))
    return {"group": group, **zero, **rates, **values}


TEAM_A = row(
    "team-a", reported=4, filed=3, filing_rate=0.75, dispatched=3, handled_on_time=2, overdue=2, closed=3,
    closing_rate=1.0, reopened=1, rework_rate=1 / 3, median_hours_to_close=4.0, repeat_places=1,
)  # fmt: skip
TEAM_B = row(
    "team-b", reported=4, filed=2, rejected=1, filing_rate=0.5, dispatched=2, overdue=1, closing_rate=0.0,
    self_rectified=1,
)  # fmt: skip
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "team": [TEAM_A, TEAM_B],
    "grid": [{**TEAM_A, "group": "G-A"}, {**TEAM_B, "group": "G-B"}],
    "category": [
        row("hanging_laundry", reported=3, filed=2, filing_rate=2 / 3, dispatched=2, handled_on_time=1, closed=1,
            closing_rate=0.5, reopened=1, rework_rate=1.0, median_hours_to_close=8.0, self_rectified=1),
        row("street_vending", reported=5, filed=3, rejected=1, filing_rate=0.6, dispatched=3, handled_on_time=1,
            overdue=3, closed=2, closing_rate=2 / 3, rework_rate=0.0, median_hours_to_close=2.75, repeat_places=1),
    ],
    "camera": [row(
        "cam-1", reported=8, filed=5, rejected=1, filing_rate=5 / 8, dispatched=5, handled_on_time=2, overdue=3,
        closed=3, closing_rate=0.6, reopened=1, rework_rate=1 / 3, median_hours_to_close=4.0, self_rectified=1,
        repeat_places=1,
    )],
}  # fmt: skip
TOTAL = {**EXPECTED["camera"][0], "group": "(all)"}


def build_history(database_url: str) -> dict[str, str]:
    """The cases of HISTORY, each through the store's own ingest and actions at the given times."""
    db = open_database(database_url)
    settings = settings_for(database_url)
    ids: dict[str, str] = {}
    for name, (category, team, alerted, place, actions) in HISTORY.items():
        record = alert(
            id=str(uuid.uuid4()),
            camera_id="cam-1",
            category=category,
            object_class="laundry" if category == "hanging_laundry" else "stall",
            started_at=(alerted - timedelta(minutes=3)).isoformat(),
            alerted_at=alerted.isoformat(),
            grid={"code": "G-A" if team == "team-a" else "G-B", "team": team},
            location={"type": "Point", "coordinates": [LON + place * 0.001, LAT]},
        )
        crud.ingest_alert(db=db, record=AlertRecord.model_validate(record), actor=ADMIN, now=alerted, settings=settings)
        ids[name] = record["id"]
        for action, at in actions:
            with db.writing() as session:
                request = ActionRequest(action=action, note="ok")  # type: ignore[arg-type]
                crud.apply_action(session, case_id=record["id"], request=request, actor=ADMIN, now=at)
    # Remind first (DESIGN §3.7) marks a case the responsible party put right as self_rectified in its history.
    with db.writing() as session:
        case = session.get(Case, ids["I self-rectified"])
        assert case is not None
        session.add(
            CaseChange(
                case_id=case.id, at=t(20, 9), kind="cleared", action=None, from_status="reminded",
                to_status="self_rectified", actor="cam", actor_role="camera", note=None, team=None,
            )
        )  # fmt: skip
    db.dispose()
    return ids


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def assessed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('assess') / 'streetwatch.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_database()
    build_history(url)
    live = start_server(settings_for(url), clock=FakeClock(NOW))
    yield live
    live.stop()
    live.db.dispose()


def approx_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("by", list(EXPECTED))
def test_assessment_table_has_the_known_answers(assessed: LiveServer, by: str) -> None:
    with assessed.client("supervisor") as client:
        response = client.get("/api/v1/stats/assessment", params={"from": FROM, "to": TO, "by": by})
    assert response.status_code == 200, response.text
    table = response.json()
    assert table["by"] == by
    assert table["as_of"].startswith("2026-12-01T00:00:00")
    assert table["items"] == approx_rows(EXPECTED[by])
    assert table["total"] == approx_rows([TOTAL])[0]


def test_history_is_read_as_of_now_when_to_lies_ahead(tmp_path: Any) -> None:
    """Asked on 30 Nov 23:30 for a period running to 1 Dec, F has been dispatched but is not overdue yet."""
    url = f"sqlite:///{tmp_path / 'now.db'}"
    build_history(url)
    live = start_server(settings_for(url), clock=FakeClock(t(30, 23, 30)))
    try:
        with live.client("admin") as client:
            table = client.get("/api/v1/stats/assessment", params={"from": FROM, "to": TO, "by": "team"}).json()
    finally:
        live.stop()
        live.db.dispose()
    assert table["as_of"].startswith("2026-11-30T23:30:00")
    team_b = table["items"][1]
    assert (team_b["dispatched"], team_b["overdue"], team_b["handled_on_time"]) == (2, 1, 0)


@pytest.mark.parametrize("how", ["format", "accept"])
def test_csv_has_the_same_rows(assessed: LiveServer, how: str) -> None:
    params = {"from": FROM, "to": TO, "by": "team"}
    headers = {}
    if how == "format":
        params["format"] = "csv"
    else:
        headers["Accept"] = "text/csv"
    with assessed.client("admin") as client:
        response = client.get("/api/v1/stats/assessment", params=params, headers=headers)
        table = client.get("/api/v1/stats/assessment", params={"from": FROM, "to": TO, "by": "team"}).json()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = [*table["items"], table["total"]]
    assert [r["group"] for r in rows] == [e["group"] for e in expected]
    for got, want in zip(rows, expected, strict=True):
        for key, value in want.items():
            if value is None:
                assert got[key] == "", key
            elif isinstance(value, float):
                assert float(got[key]) == pytest.approx(value), key
            else:
                assert got[key] == str(value), key


@pytest.mark.parametrize(
    ("role", "status"), [("officer", 403), ("camera", 403), ("operator", 403), ("supervisor", 200), ("admin", 200)]
)
def test_assessment_is_for_supervisors_and_admins(assessed: LiveServer, role: str, status: int) -> None:
    with assessed.client(role) as client:
        response = client.get("/api/v1/stats/assessment", params={"from": FROM, "to": TO})
    assert response.status_code == status


@pytest.mark.parametrize(
    "params",
    [
        {"from": TO, "to": FROM},
        {"from": FROM, "to": FROM},
        {"from": "2024-01-01T00:00:00+00:00", "to": TO},
        {"from": FROM},
        {"from": FROM, "to": TO, "by": "street"},
        {"from": "2026-11-01", "to": TO},
    ],
)
def test_bad_periods_are_422(assessed: LiveServer, params: dict[str, str]) -> None:
    with assessed.client("admin") as client:
        assert client.get("/api/v1/stats/assessment", params=params).status_code == 422
