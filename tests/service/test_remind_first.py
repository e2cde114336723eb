"""Remind first (DESIGN §3.7) end to end: real ``streetwatch serve`` processes, real webhook receivers on
loopback that verify every Standard Webhooks signature, live records posted as ``streetwatch run`` posts them.

Two receivers stand for the grid team's two systems: the city's notifier (``--events case.reminder``) and
the officers' dispatch system (registered without ``--events``: case.dispatched and case.updated).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.core.db import Database, open_database
from service.models import CaseChange, OutboxMessage, WebhookDelivery
from tests.conftest import streetwatch_command
from tests.service.helpers import alert, closed
from tests.service.test_replicas import (
    Delivery,
    Receiver,
    Replica,
    _env,
    add_webhook,
    make_tokens,
    poll_until,
    replicas,
)

TEAM = "team-a"  # the grid team of helpers.alert()
POLL_S = 0.2  # STREETWATCH_REMIND_POLL_S in these tests
# What one round of the reminder job may add to its poll interval on a loaded 2-core machine.
ROUND_SLACK_S = 0.5



def live(
    remind_first_s: int | None = 3, *, unit: str | None = None, place: int = 0, **overrides: Any
) -> dict[str, Any]:
    """A live record (video_offset_s null) as ``streetwatch run`` pushes it, alerted now, at a place of its
    own (``place`` steps of ~110 m, beyond the 20 m repeat radius)."""
    now = datetime.now(UTC).astimezone()
    record = alert(
        started_at=(now - timedelta(seconds=180)).isoformat(),
        alerted_at=now.isoformat(),
        video_offset_s=None,
        location={"type": "Point", "coordinates": [118.79702 + 0.001 * place, 32.06013]},
        **overrides,
    )
    if remind_first_s is not None:
        record["remind_first_s"] = remind_first_s
    if unit is not None:
        record["responsible"] = {"unit": unit, "name": f"{unit} 水果店"}
    return record


def ended(record: dict[str, Any], at: datetime) -> dict[str, Any]:
    return closed(record, video_offset_s=None, ended_at=at.astimezone().isoformat())


def post(replica: Replica, token: str, record: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{replica.url}/api/v1/alerts",
        json=record,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=False,
    )


def get_case(replica: Replica, token: str, case_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{replica.url}/api/v1/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30, verify=False
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def act(replica: Replica, token: str, case_id: str, action: str) -> httpx.Response:
    return httpx.post(
        f"{replica.url}/api/v1/cases/{case_id}/actions",
        json={"action": action, "note": "seen"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        verify=False,
    )


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def messages(db: Database) -> list[OutboxMessage]:
    with db.reading() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def payloads(receiver: Receiver, type_: str) -> list[dict[str, Any]]:
    return [r.payload for r in receiver.snapshot() if r.payload is not None and r.payload["type"] == type_]


def escalations(db: Database, case_id: str) -> list[CaseChange]:
    with db.reading() as session:
        return list(
            session.scalars(select(CaseChange).where(CaseChange.case_id == case_id, CaseChange.kind == "escalated"))
        )


@pytest.fixture
def sqlite_db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sw.db'}"


# ---- (a) (b) (c), audit records: one serve on SQLite -----------------------------------------------------


def test_remind_first_flow_on_a_real_serve(sqlite_db_url: str, tmp_path: Path) -> None:
    env = _env(relay_poll_s=0.1, remind_poll_s=POLL_S, retry_base_s=0.2, retry_cap_s=1)
    notifier, dispatcher = Receiver(), Receiver()
    db: Database | None = None
    try:
        with replicas(sqlite_db_url, tmp_path, env, names=("A",)) as (serve,):
            notifier.secret = add_webhook(sqlite_db_url, notifier.url, env, "case.reminder")
            dispatcher.secret = add_webhook(sqlite_db_url, dispatcher.url, env)
            db = open_database(sqlite_db_url)
            tokens = make_tokens(db)
            camera, operator = tokens["camera"], tokens["operator"]

            # (a) the unit clears it before the deadline: one reminder, self-rectified, no officer.
            gone = live(4, unit="shop-a", place=1)
            assert post(serve, camera, gone).status_code == 201
            case = get_case(serve, operator, gone["id"])
            assert case["status"] == "reminded" and case["mark"] is None
            assert case["responsible"] == {"unit": "shop-a", "name": "shop-a 水果店"}
            deadline = at(case["remind_deadline"])
            assert deadline == at(case["reminded_at"]) + timedelta(seconds=4)
            poll_until(lambda: len(payloads(notifier, "case.reminder")) == 1, 10, "the reminder reaches the notifier")
            [reminder] = payloads(notifier, "case.reminder")
            data = reminder["data"]
            assert data["case_id"] == gone["id"] and data["responsible"]["unit"] == "shop-a"
            assert (data["category"], data["zone"], data["camera_id"]) == (
                "street_vending",
                "sidewalk-north",
                "cam-jfdl-01",
            )
            assert data["location"] == gone["location"]
            assert at(data["deadline"]) == deadline
            assert "shop-a 水果店" in data["notice"] and "占道经营" in data["notice"]
            assert data["snapshot_url"] == f"/api/v1/cases/{gone['id']}/evidence/0"
            assert post(serve, camera, ended(gone, deadline - timedelta(seconds=1))).status_code == 201
            case = get_case(serve, operator, gone["id"])
            assert case["status"] == "self_rectified" and case["closed_at"] is not None
            assert {e["stage"] for e in case["evidence"]} == {"opened", "closed"}  # before and after kept

            # (b) it stays: one reminder, then reported marked reminder_ignored at the deadline.
            stays = live(3, unit="shop-b", place=2)
            assert post(serve, camera, stays).status_code == 201
            deadline_b = at(get_case(serve, operator, stays["id"])["remind_deadline"])
            poll_until(lambda: get_case(serve, operator, stays["id"])["status"] == "reported", 15, "escalation")
            case = get_case(serve, operator, stays["id"])
            assert case["mark"] == "reminder_ignored"
            [escalated] = [h for h in case["history"] if h["kind"] == "escalated"]
            late_s = (at(escalated["at"]) - deadline_b).total_seconds()
            print(f"(b) escalated {late_s:.3f} s after the deadline (poll interval {POLL_S} s)")
            assert 0 <= late_s <= POLL_S + ROUND_SLACK_S
            assert (escalated["from_status"], escalated["actor_role"]) == ("reminded", "system")
            for action in ("file", "dispatch"):
                assert act(serve, operator, stays["id"], action).status_code == 200
            poll_until(lambda: len(payloads(dispatcher, "case.dispatched")) == 1, 10, "case.dispatched delivered")

            # (a) still: its deadline passed long ago and it stayed self-rectified.
            assert get_case(serve, operator, gone["id"])["status"] == "self_rectified"

            # (c) the same unit again, elsewhere, within 30 days: no reminder, reported marked repeat.
            again = live(3, unit="shop-b", place=3)
            assert post(serve, camera, again).status_code == 201
            case = get_case(serve, operator, again["id"])
            assert (case["status"], case["mark"], case["reminded_at"]) == ("reported", "repeat", None)
            assert case["unit_record"]["unit"] == "shop-b"
            assert (
                case["unit_record"]["reminded"],
                case["unit_record"]["reminder_ignored"],
                case["unit_record"]["repeat"],
            ) == (1, 1, 1)
            # … and the same place without a unit: the repeat rule's place (same category within 20 m).
            same_place = live(3, place=1)
            assert post(serve, camera, same_place).status_code == 201
            assert get_case(serve, operator, same_place["id"])["mark"] == "repeat"

            # An audit record (historical video) with remind_first_s never reminds.
            audit = alert(
                remind_first_s=3, responsible={"unit": "shop-z", "name": "z"}, location=live(place=9)["location"]
            )
            assert post(serve, camera, audit).status_code == 201
            case = get_case(serve, operator, audit["id"])
            assert (case["status"], case["mark"], case["reminded_at"]) == ("reported", None, None)

            time.sleep(1.0)  # anything still on its way arrives
            assert [m.type for m in messages(db)] == ["case.reminder", "case.reminder", "case.dispatched"]
            reminders = payloads(notifier, "case.reminder")
            assert sorted(p["data"]["case_id"] for p in reminders) == sorted([gone["id"], stays["id"]])
            assert all(r.payload is not None for r in notifier.snapshot() + dispatcher.snapshot())
            assert {p["type"] for p in (r.payload for r in notifier.snapshot()) if p} == {"case.reminder"}
            assert {p["type"] for p in (r.payload for r in dispatcher.snapshot()) if p} == {"case.dispatched"}
            assert [p["data"]["case"]["id"] for p in payloads(dispatcher, "case.dispatched")] == [stays["id"]]

            metrics = httpx.get(
                f"{serve.url}/metrics", headers={"Authorization": f"Bearer {make_admin(db)}"}, timeout=30, verify=False
            ).text
            for outcome, count in (("sent", 2), ("self_rectified", 1), ("reminder_ignored", 1), ("repeat", 2)):
                assert f'streetwatch_reminders_total{{outcome="{outcome}"}} {count}' in metrics, metrics
            listed = httpx.get(
                f"{serve.url}/api/v1/cases",
                params={"mark": "repeat"},
                headers={"Authorization": f"Bearer {operator}"},
                timeout=30,
                verify=False,
            ).json()
            assert sorted(item["id"] for item in listed["items"]) == sorted([again["id"], same_place["id"]])
            assert "Traceback" not in serve.log_text(), serve.log_text()
    finally:
        notifier.close()
        dispatcher.close()
        if db is not None:
            db.dispose()


def make_admin(db: Database) -> str:
    from service import crud

    with db.writing() as session:
        _, token = crud.create_token(session, role="admin", name="admin", team=None, now=datetime.now(UTC))
    return token


# ---- (d) the notifier fails for a while ------------------------------------------------------------------


def test_a_failing_notifier_is_retried_and_the_deadline_counts_from_the_first_attempt(
    sqlite_db_url: str, tmp_path: Path
) -> None:
    env = _env(relay_poll_s=0.1, remind_poll_s=POLL_S, retry_base_s=0.3, retry_cap_s=1)
    arrivals: list[float] = []

    def answer(request: Delivery) -> int:
        """500 for the first 2 s after the first attempt (the deadline is 4 s after the reminder)."""
        arrivals.append(time.time())
        return 500 if arrivals[-1] - arrivals[0] < 2.0 else 200

    notifier = Receiver(answer=answer)
    db: Database | None = None
    try:
        with replicas(sqlite_db_url, tmp_path, env, names=("A",)) as (serve,):
            notifier.secret = add_webhook(sqlite_db_url, notifier.url, env, "case.reminder")
            db = open_database(sqlite_db_url)
            tokens = make_tokens(db)
            record = live(4, unit="shop-d")
            assert post(serve, tokens["camera"], record).status_code == 201
            case = get_case(serve, tokens["operator"], record["id"])
            deadline = at(case["remind_deadline"])
            poll_until(
                lambda: get_case(serve, tokens["operator"], record["id"])["status"] == "reported",
                15,
                "escalation after the deadline",
            )
            poll_until(lambda: delivered(db), 15, "the reminder delivered once the notifier recovers")
            requests = notifier.snapshot()
            assert len({r.webhook_id for r in requests}) == 1, "one message, retried under one webhook-id"
            assert all(r.payload is not None for r in requests)
            with db.reading() as session:
                row = session.scalars(select(WebhookDelivery)).one()
            first = datetime.fromtimestamp(arrivals[0], UTC)
            print(
                f"(d) {len(requests)} attempts ({row.failures} answered 500), first attempt "
                f"{(first - at(case['reminded_at'])).total_seconds():.3f} s after the reminder was written, "
                f"delivered {(row.delivered_at - first).total_seconds():.3f} s after it; deadline - first attempt "  # type: ignore[operator]
                f"= {(deadline - first).total_seconds():.3f} s"
            )
            assert row.failures >= 2 and row.status == "delivered" and row.attempts == len(requests)
            # The deadline counts from the reminder (written, then first sent at once), not from the delivery.
            assert at(case["reminded_at"]) <= first <= at(case["reminded_at"]) + timedelta(seconds=3)
            assert deadline == at(case["reminded_at"]) + timedelta(seconds=4)
            [escalated] = escalations(db, record["id"])
            assert 0 <= (escalated.at - deadline).total_seconds() <= POLL_S + ROUND_SLACK_S
            assert get_case(serve, tokens["operator"], record["id"])["mark"] == "reminder_ignored"
    finally:
        notifier.close()
        if db is not None:
            db.dispose()


def delivered(db: Database) -> bool:
    with db.reading() as session:
        rows = list(session.scalars(select(WebhookDelivery)))
    return bool(rows) and all(row.status == "delivered" for row in rows)


# ---- (e) kill -9 during the reminder window, two replicas on PostgreSQL --------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="the receiver tells senders apart through /proc")
def test_kill_9_during_the_reminder_window_escalates_once(pg_cluster: Any, tmp_path: Path) -> None:
    """Ten cases reminded through two replicas; both are killed with SIGKILL inside the reminder window
    (one of them while the relay may be mid-send) and started again after the deadlines passed. Every
    case is escalated exactly once, by whichever replica's job took it, and every reminder reaches the
    notifier (duplicates only for a request a killed relay had in flight, same webhook-id)."""
    db_url = pg_cluster.new_database()
    env = _env(relay_poll_s=0.1, relay_lease_s=2, remind_poll_s=POLL_S, retry_base_s=0.2, retry_cap_s=1)
    notifier = Receiver(delay_s=0.05)
    db: Database | None = None
    count, remind_s = 10, 20  # a window that a loaded 2-core machine does not overrun
    try:
        with replicas(db_url, tmp_path, env) as both:
            notifier.senders = {replica.process.pid: replica.name for replica in both}
            notifier.secret = add_webhook(db_url, notifier.url, env, "case.reminder")
            db = open_database(db_url)
            tokens = make_tokens(db)
            records = [live(remind_s, unit=f"shop-e{i}", place=10 + i) for i in range(count)]
            lock = threading.Lock()

            def one(i: int) -> None:
                response = post(both[i % 2], tokens["camera"], records[i])
                with lock:
                    assert response.status_code == 201, response.text

            threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            deadlines = [at(get_case(both[0], tokens["operator"], r["id"])["remind_deadline"]) for r in records]
            poll_until(lambda: len(notifier.seen()) >= count // 2, 10, "some reminders delivered")
            for replica in both:
                os.kill(replica.process.pid, signal.SIGKILL)
                assert replica.process.wait(10) == -signal.SIGKILL
            killed_at = datetime.now(UTC)
            assert killed_at < min(deadlines), "the kill must land inside the reminder window"
            with db.reading() as session:
                assert session.scalars(select(CaseChange).where(CaseChange.kind == "escalated")).first() is None
        time.sleep(max(0.0, (max(deadlines) - datetime.now(UTC)).total_seconds()) + 0.5)
        with replicas(db_url, tmp_path, env) as again:
            notifier.senders.update({replica.process.pid: replica.name + "'" for replica in again})
            poll_until(lambda: all(len(escalations(db, r["id"])) == 1 for r in records), 20, "every case escalated")
            poll_until(lambda: delivered(db), 20, "every reminder delivered")
            time.sleep(3 * POLL_S)  # a second escalation, if there were one, would show now
            for record in records:
                assert len(escalations(db, record["id"])) == 1
                assert get_case(again[0], tokens["operator"], record["id"])["mark"] == "reminder_ignored"
            reminder_ids = {m.id for m in messages(db)}
            assert len(reminder_ids) == count and {m.type for m in messages(db)} == {"case.reminder"}
            seen = notifier.seen()
            assert set(seen) == reminder_ids, "a reminder was lost"
            twice = {webhook_id: n for webhook_id, n in seen.items() if n > 1}
            print(
                f"(e) killed {(min(deadlines) - killed_at).total_seconds():.2f} s before the first deadline; "
                f"escalations per case {Counter(len(escalations(db, r['id'])) for r in records)}; "
                f"reminders received {sum(seen.values())} for {count} messages, re-sent in-flight: {len(twice)}"
            )
            assert len(twice) <= 2 * 8, "only what the killed relays had leased may come twice"
            for replica in again:
                assert "Traceback" not in replica.log_text(), replica.log_text()
    finally:
        notifier.close()
        if db is not None:
            db.dispose()


def test_webhook_add_events_flag(sqlite_db_url: str) -> None:
    env = _env()
    add_webhook(sqlite_db_url, "http://127.0.0.1:9/notify", env, "case.reminder")
    add_webhook(sqlite_db_url, "http://127.0.0.1:9/dispatch", env)
    add_webhook(sqlite_db_url, "http://127.0.0.1:9/both", env, "case.reminder,case.dispatched")
    listed = subprocess.run(
        [*streetwatch_command(), "webhook", "list", "--db", sqlite_db_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    events = {line.split("\t")[2]: line.rsplit("events=", 1)[1] for line in listed.stdout.splitlines()}
    assert events == {
        "http://127.0.0.1:9/notify": "case.reminder",
        "http://127.0.0.1:9/dispatch": "case.dispatched,case.updated",
        "http://127.0.0.1:9/both": "case.reminder,case.dispatched",
    }
    bad = subprocess.run(
        [
            *streetwatch_command(),
            "webhook",
            "add",
            "--team",
            TEAM,
            "--url",
            "http://127.0.0.1:9/x",
            "--events",
            "case.reminded",
            "--db",
            sqlite_db_url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "--events" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


# ---- records from a real `streetwatch run` -----------------------------------------------------------------


def _run_camera(path: Path, camera_id: str, lon: float, zone: list[list[float]], unit: str) -> Path:
    config = {
        "id": camera_id,
        "name": camera_id,
        "source": "clip.mp4",  # a file: `run` loops it like a stream
        "timezone": "Asia/Shanghai",
        "location": {"lon": lon, "lat": 32.0603},
        "grid": {"code": "320102001001", "team": TEAM},
        "max_gap_s": 1,
        "zones": [
            {
                "name": "shopfront",
                "polygon": zone,
                "categories": ["storefront_overflow"],
                "dwell_s": 1,
                "responsible": {"unit": unit, "name": f"{unit} 商店"},
                "remind_first_s": 30,
            }
        ],
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_records_from_a_real_run(sqlite_db_url: str, tmp_path: Path) -> None:
    """Two file-loop cameras under one `streetwatch run` (detections replayed, so no model is needed): the
    goods in front of shop-left go in 20 s after the camera starts (its reminder gave it 30 s), those of
    shop-right stay."""
    from tests.conftest import STREETWATCH, make_test_video

    make_test_video(tmp_path / "clip.mp4", seconds=120, size="160x120", fps=10)  # outlasts the test
    left = _run_camera(tmp_path / "left.yaml", "cam-left", 118.79, [[0, 0], [0.5, 0], [0.5, 1], [0, 1]], "shop-left")
    right = _run_camera(
        tmp_path / "right.yaml", "cam-right", 118.80, [[0.5, 0], [1, 0], [1, 1], [0.5, 1]], "shop-right"
    )
    boxes = {"left": [10, 30, 60, 100], "right": [100, 30, 150, 100]}
    lines: list[dict[str, Any]] = [{"meta": {"video": "clip.mp4", "fps": 10.0, "width": 160, "height": 120}}]
    for tenth in range(0, 1200):
        t = tenth / 10
        shown = [boxes["right"]] + ([boxes["left"]] if t < 20 else [])
        lines.append(
            {
                "frame": tenth,
                "t": t,
                "detections": [
                    {"xyxy": box, "class": "stall", "conf": 0.9, "track_id": i + 1} for i, box in enumerate(shown)
                ],
            }
        )
    replay = tmp_path / "replay.jsonl"
    replay.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")

    env = _env(relay_poll_s=0.1, remind_poll_s=POLL_S, retry_base_s=0.2, retry_cap_s=1)
    notifier, dispatcher = Receiver(), Receiver()
    db: Database | None = None
    runner: subprocess.Popen[bytes] | None = None
    try:
        with replicas(sqlite_db_url, tmp_path, env, names=("A",)) as (serve,):
            notifier.secret = add_webhook(sqlite_db_url, notifier.url, env, "case.reminder")
            dispatcher.secret = add_webhook(sqlite_db_url, dispatcher.url, env)
            db = open_database(sqlite_db_url)
            tokens = make_tokens(db)
            log = tmp_path / "run.log"
            runner = subprocess.Popen(
                [
                    STREETWATCH,
                    "run",
                    "--camera",
                    str(left),
                    "--camera",
                    str(right),
                    "--push",
                    serve.url,
                    "--detections-from",
                    str(replay),
                    "--analysis-fps",
                    "5",
                    "--state-dir",
                    str(tmp_path / "state"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log.open("wb"),
                cwd=tmp_path,
                env={**env, "STREETWATCH_TOKEN": tokens["camera"]},
            )

            def cases() -> dict[str, dict[str, Any]]:
                listed = httpx.get(
                    f"{serve.url}/api/v1/cases",
                    params={"status": ["reminded", "self_rectified", "reported"]},
                    headers={"Authorization": f"Bearer {tokens['operator']}"},
                    timeout=30,
                    verify=False,
                ).json()
                return {item["camera_id"]: item for item in listed["items"]}

            def settled() -> bool:
                found = cases()
                return (found.get("cam-left", {}).get("status"), found.get("cam-right", {}).get("status")) == (
                    "self_rectified",
                    "reported",
                )

            try:
                poll_until(settled, 120, "left self-rectified, right reported")
            except AssertionError:
                raise AssertionError(f"{cases()}\n{log.read_text(errors='replace')[-3000:]}") from None
            found = cases()
            assert found["cam-right"]["mark"] == "reminder_ignored"
            assert found["cam-left"]["responsible"]["unit"] == "shop-left"
            assert found["cam-left"]["video_offset_s"] is None  # live records
            left_ended = at(found["cam-left"]["ended_at"])
            assert left_ended <= at(found["cam-left"]["remind_deadline"])
            right_id = found["cam-right"]["id"]
            for action in ("file", "dispatch"):
                assert act(serve, tokens["operator"], right_id, action).status_code == 200
            poll_until(lambda: len(payloads(dispatcher, "case.dispatched")) == 1, 10, "case.dispatched delivered")
            time.sleep(1.0)
            reminders = payloads(notifier, "case.reminder")
            assert sorted(p["data"]["responsible"]["unit"] for p in reminders) == ["shop-left", "shop-right"]
            assert [p["data"]["case"]["id"] for p in payloads(dispatcher, "case.dispatched")] == [right_id]
            assert not payloads(notifier, "case.dispatched") and not payloads(dispatcher, "case.reminder")
            escalated = escalations(db, right_id)
            print(
                f"(run) left: ended {left_ended.isoformat()}, deadline {found['cam-left']['remind_deadline']}; "
                f"right escalated {(escalated[0].at - at(found['cam-right']['remind_deadline'])).total_seconds():.3f}"
                " s after its deadline"
            )
            assert len(escalated) == 1
    finally:
        if runner is not None and runner.poll() is None:
            runner.send_signal(signal.SIGINT)
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                runner.kill()
        notifier.close()
        dispatcher.close()
        if db is not None:
            db.dispose()
