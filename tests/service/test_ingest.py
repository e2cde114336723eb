"""POST /api/v1/alerts over real HTTP: idempotency, conflicts, validation, body limits, concurrency."""

from __future__ import annotations

import hashlib
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.helpers import LiveServer, alert, closed, ingest, settings_for, start_server


def test_first_post_creates_then_same_payload_is_200_with_stored_record(any_server: LiveServer) -> None:
    record = alert()
    with any_server.client("camera") as camera:
        first = ingest(camera, record)
        again = ingest(camera, record)
    assert first.status_code == 201
    assert again.status_code == 200
    assert first.headers["location"] == f"/api/v1/cases/{record['id']}"
    assert again.json() == first.json()
    assert again.json()["id"] == record["id"]
    assert again.json()["started_at"] == "2026-11-27T09:14:03+08:00"  # stored verbatim, offset kept


@pytest.mark.parametrize(
    ("category", "object_class"),
    [
        ("street_vending", "stall"),
        ("storefront_overflow", "stall"),
        ("hanging_laundry", "laundry"),
        ("illegal_structure", "structure"),
        ("sidewalk_obstruction", "object"),  # 占道堆物: found by the stationary-object finder
    ],
)
def test_every_category_becomes_a_case_of_it(shared_server: LiveServer, category: str, object_class: str) -> None:
    record = alert(category=category, object_class=object_class)
    with shared_server.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
    with shared_server.client("operator") as operator:
        case = operator.get(f"/api/v1/cases/{record['id']}").json()
        listed = operator.get("/api/v1/cases", params={"category": category, "limit": 500}).json()["items"]
    assert (case["status"], case["category"], case["object_class"]) == ("reported", category, object_class)
    assert record["id"] in [item["id"] for item in listed]
    assert {item["category"] for item in listed} == {category}


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("confidence", 0.5),
        ("zone", "another-zone"),
        ("bbox", [1, 2, 3, 4]),
        ("started_at", "2026-11-27T01:14:03+00:00"),  # same instant, different payload
    ],
)
def test_same_id_and_event_with_different_payload_is_409(server: LiveServer, change: str, value: Any) -> None:
    record = alert()
    with server.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
        response = ingest(camera, {**record, change: value})
        assert response.status_code == 409
        assert "different payload" in response.json()["detail"]
        assert ingest(camera, record).status_code == 200  # the original still stands


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda r: r.update(extra_field=1), "extra_field"),
        (lambda r: r["grid"].update(owner="x"), "owner"),
        (lambda r: r.update(category="jaywalking"), "category"),
        (lambda r: r.update(category="sidewalk_obstruction", object_class="rubbish"), "object_class"),
        (lambda r: r.update(confidence=1.5), "confidence"),
        (lambda r: r.update(started_at="2026-11-27T09:14:03"), "started_at"),  # no UTC offset
        (lambda r: r.update(id="not-a-uuid"), "id"),
        (lambda r: r.pop("camera_id"), "camera_id"),
        (lambda r: r.update(video_offset_s={"start": float("inf"), "alert": 1.0, "end": None}), "video_offset_s"),
        (lambda r: r.update(confidence=float("nan")), "confidence"),
    ],
)
def test_invalid_records_are_422_and_create_nothing(server: LiveServer, mutate: Any, where: str) -> None:
    record = alert()
    mutate(record)
    with server.client("camera") as camera:
        # json.dumps writes NaN/Infinity tokens (not JSON, but Python's parser accepts them).
        response = camera.post(
            "/api/v1/alerts", content=json.dumps(record), headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert where in json.dumps(response.json()["detail"])
    with server.client("operator") as operator:
        assert operator.get("/api/v1/cases").json()["total"] == 0


def test_sixteen_concurrent_duplicates_make_exactly_one_case(any_server: LiveServer) -> None:
    record = alert()
    with any_server.client("camera") as camera, ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: ingest(camera, record).status_code, range(16)))
    assert sorted(codes) == [200] * 15 + [201]
    with any_server.client("admin") as admin:
        cases = admin.get("/api/v1/cases").json()
        assert cases["total"] == 1
        history = admin.get(f"/api/v1/cases/{record['id']}").json()["history"]
    assert [h["kind"] for h in history] == ["created"]


def test_concurrent_opened_and_closed_of_one_incident_make_one_case(any_server: LiveServer) -> None:
    records = []
    for _ in range(6):
        opened = alert()
        records += [opened, closed(opened)]
    with any_server.client("camera") as camera, ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda r: ingest(camera, r).status_code, records))
    assert codes == [201] * 12
    with any_server.client("admin") as admin:
        cases = admin.get("/api/v1/cases", params={"limit": 500}).json()
    assert cases["total"] == 6
    assert all(case["cleared_at"] is not None for case in cases["items"])


def test_opened_creates_reported_case_and_closed_attaches_end_and_after_evidence(server: LiveServer) -> None:
    opened = alert()
    with server.client("camera") as camera:
        ingest(camera, opened)
        with server.client("admin") as admin:
            case = admin.get(f"/api/v1/cases/{opened['id']}").json()
            assert case["status"] == "reported"
            assert case["ended_at"] is None and case["cleared_at"] is None
            assert [e["kind"] for e in case["evidence"]] == ["snapshot"]
            assert ingest(camera, closed(opened)).status_code == 201
            case = admin.get(f"/api/v1/cases/{opened['id']}").json()
    assert case["status"] == "reported"  # clearing suggests verification, it does not change status
    assert case["ended_at"] == "2026-11-27T01:40:00Z"
    assert case["cleared_at"] is not None
    assert [(e["kind"], e["stage"]) for e in case["evidence"]] == [("snapshot", "opened"), ("snapshot_after", "closed")]
    assert case["video_offset_s"]["end"] == 1569.0
    assert [h["kind"] for h in case["history"]] == ["created", "cleared"]


def test_closed_for_unknown_id_creates_the_case(server: LiveServer) -> None:
    opened = alert()
    with server.client("camera") as camera:
        assert ingest(camera, closed(opened)).status_code == 201
        assert ingest(camera, opened).status_code == 201  # the late opened event is still stored
        assert ingest(camera, opened).status_code == 200
    with server.client("admin") as admin:
        case = admin.get(f"/api/v1/cases/{opened['id']}").json()
    assert case["status"] == "reported"
    assert case["cleared_at"] is not None
    assert [h["kind"] for h in case["history"]] == ["created", "cleared", "reported"]


# ---- body limit ---------------------------------------------------------------------------------------


def _raw_post(url: str, head: bytes, chunks: list[bytes]) -> int:
    """Send a request by hand (httpx always adds Content-Length to bytes bodies); return the status."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        reply = b""
        while b"\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    return int(reply.split(b" ", 2)[1])


def _chunked(body: bytes, size: int = 64 * 1024) -> list[bytes]:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts] + [b"0\r\n\r\n"]


def _big_record() -> bytes:
    return json.dumps(alert(zone="z" * (1 << 20 + 1))).encode()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_limit_is_413(server: LiveServer, framing: str) -> None:
    body = _big_record()
    assert len(body) > server.settings.max_body_bytes
    token = server.tokens["camera"]
    head = (
        "POST /api/v1/alerts HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\n"
    ).encode()
    if framing == "content-length":
        status = _raw_post(server.url, head + f"Content-Length: {len(body)}\r\n\r\n".encode(), [body])
    else:
        status = _raw_post(server.url, head + b"Transfer-Encoding: chunked\r\n\r\n", _chunked(body))
    assert status == 413


def test_chunked_body_under_limit_is_accepted(server: LiveServer) -> None:
    record = alert()
    body = json.dumps(record).encode()
    head = (
        "POST /api/v1/alerts HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Authorization: Bearer {server.tokens['camera']}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    assert _raw_post(server.url, head, _chunked(body, 100)) == 201


def test_metrics_count_ingest_results(server: LiveServer) -> None:
    record = alert()
    with server.client("camera") as camera:
        ingest(camera, record)
        ingest(camera, record)
        ingest(camera, {**record, "confidence": 0.1})
        ingest(camera, {**record, "bogus": 1})
        camera.post("/api/v1/alerts", content=_big_record(), headers={"content-type": "application/json"})
    with server.client("supervisor") as supervisor:
        text = supervisor.get("/metrics").text
    for line in [
        'streetwatch_ingest_requests_total{result="created"} 1',
        'streetwatch_ingest_requests_total{result="duplicate"} 1',
        'streetwatch_ingest_requests_total{result="conflict"} 1',
        'streetwatch_ingest_requests_total{result="invalid"} 1',
        'streetwatch_ingest_requests_total{result="too_large"} 1',
        'streetwatch_alerts_stored_total{event="violation.opened"} 1',
        'streetwatch_cases{status="reported"} 1',
    ]:
        assert line in text.splitlines(), line


# ---- evidence -------------------------------------------------------------------------------------------

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)


def test_uploaded_evidence_is_served_at_the_case_evidence_url(server: LiveServer) -> None:
    digest = hashlib.sha256(PNG).hexdigest()
    record = alert(evidence=[{"kind": "snapshot", "path": "evidence/a/snapshot.png", "sha256": digest}])
    with server.client("camera") as camera:
        ingest(camera, record)
        wrong = camera.put(f"/api/v1/evidence/{'0' * 64}", content=PNG, headers={"content-type": "image/png"})
        html = camera.put(f"/api/v1/evidence/{digest}", content=PNG, headers={"content-type": "text/html"})
        ok = camera.put(f"/api/v1/evidence/{digest}", content=PNG, headers={"content-type": "image/png"})
        again = camera.put(f"/api/v1/evidence/{digest}", content=PNG, headers={"content-type": "image/png"})
    assert (wrong.status_code, html.status_code, ok.status_code, again.status_code) == (422, 422, 200, 200)
    with server.client("operator") as operator:
        url = operator.get(f"/api/v1/cases/{record['id']}").json()["evidence"][0]["url"]
        image = operator.get(url)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == PNG


def test_evidence_served_from_evidence_dir_never_outside(tmp_path: Path) -> None:
    root = tmp_path / "audit"
    (root / "evidence" / "a").mkdir(parents=True)
    (root / "evidence" / "a" / "snapshot.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(b"secret")
    live = start_server(settings_for(f"sqlite:///{tmp_path / 'db.sqlite'}", evidence_dir=root))
    try:
        inside = alert(evidence=[{"kind": "snapshot", "path": "evidence/a/snapshot.png", "sha256": "1" * 64}])
        outside = alert(evidence=[{"kind": "snapshot", "path": "../secret.png", "sha256": "2" * 64}])
        with live.client("camera") as camera:
            ingest(camera, inside)
            ingest(camera, outside)
        with live.client("operator") as operator:
            assert operator.get(f"/api/v1/cases/{inside['id']}/evidence/0").content == PNG
            assert operator.get(f"/api/v1/cases/{outside['id']}/evidence/0").status_code == 404
            assert operator.get(f"/api/v1/cases/{inside['id']}/evidence/5").status_code == 404
    finally:
        live.stop()
        live.db.dispose()


def test_ingest_answers_plain_httpx_client_with_keepalive(server: LiveServer) -> None:
    # Many sequential posts on one connection: nothing leaks between requests.
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.tokens['camera']}"}) as c:
        codes = [c.post("/api/v1/alerts", json=alert()).status_code for _ in range(20)]
    assert codes == [201] * 20
