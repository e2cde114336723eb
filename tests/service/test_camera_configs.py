"""Camera configs kept in the service (issue 17): versions and their history, If-Match, unchanged PUTs,
422s that name the field path exactly as ``streetwatch check`` does, roles, the YAML that ``streetwatch
check`` accepts, and each camera's snapshot frame. On SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import re
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import run_cli, run_cli_in_process
from tests.service.helpers import LiveServer, settings_for, start_server
from zones.config import CameraConfig, format_loc, load_camera_config

CONFIG: dict[str, Any] = {
    "id": "cam-x",
    "name": "解放东路 1 号",
    "source": "rtsp://192.0.2.10/stream1",
    "timezone": "Asia/Shanghai",
    "location": {"lon": 118.7969, "lat": 32.0603},
    "grid": {"code": "320102001001", "team": "team-a"},
    "zones": [
        {
            "name": "sidewalk-north",
            "polygon": [[0.05, 0.60], [0.95, 0.60], [0.95, 0.98], [0.05, 0.98]],
            "categories": ["street_vending", "hanging_laundry"],
            "dwell_s": 180,
            "allowed": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "18:00", "to": "22:00"}],
        },
        {
            "name": "shopfront-row",
            "polygon": [[0.0, 0.40], [0.30, 0.40], [0.30, 0.62], [0.0, 0.62]],
            "categories": ["storefront_overflow"],
        },
    ],
    "exclude": [{"polygon": [[0.9, 0.0], [1.0, 0.0], [1.0, 0.1], [0.9, 0.1]], "relative": True}],
}


def config(camera_id: str, **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(CONFIG), "id": camera_id, **changes}


def zone(index: int, **changes: Any) -> Any:
    """A change of zone ``index`` for ``config(…, zones=…)``."""
    zones = copy.deepcopy(CONFIG["zones"])
    zones[index].update(changes)
    return zones


_counter = iter(range(10**6))


def fresh_camera() -> str:
    """Each test row its own camera, so rows share one server per backend."""
    return f"cam-t{next(_counter)}"


def put(client: httpx.Client, camera_id: str, body: Any, **headers: str) -> httpx.Response:
    return client.put(f"/api/v1/cameras/{camera_id}/config", json=body, headers=headers)


@pytest.fixture
def live(shared_any_server: LiveServer) -> LiveServer:
    return shared_any_server


# ---- versions -------------------------------------------------------------------------------------


def test_versions_history_and_old_versions(live: LiveServer) -> None:
    camera = fresh_camera()
    with live.client("operator") as operator, live.client("supervisor") as supervisor:
        assert operator.get(f"/api/v1/cameras/{camera}/config").status_code == 404
        assert operator.get(f"/api/v1/cameras/{camera}/config/history").status_code == 404
        first = put(operator, camera, config(camera))
        assert first.status_code == 200, first.text
        assert first.headers["etag"] == '"1"'
        assert {k: first.json()[k] for k in ("camera_id", "version", "updated_by")} == {
            "camera_id": camera,
            "version": 1,
            "updated_by": "operator-1",
        }
        second = put(supervisor, camera, config(camera, name="renamed"))
        assert second.json()["version"] == 2 and second.json()["updated_by"] == "supervisor-1"
        assert second.json()["config"]["name"] == "renamed"
        current = operator.get(f"/api/v1/cameras/{camera}/config")
        assert current.json() == second.json() and current.headers["etag"] == '"2"'
        old = operator.get(f"/api/v1/cameras/{camera}/config", params={"version": 1}).json()
        assert old["version"] == 1 and old["config"]["name"] == CONFIG["name"]
        assert operator.get(f"/api/v1/cameras/{camera}/config", params={"version": 3}).status_code == 404
        history = operator.get(f"/api/v1/cameras/{camera}/config/history").json()
        assert [(item["version"], item["updated_by"]) for item in history["items"]] == [
            (2, "supervisor-1"),
            (1, "operator-1"),
        ]
        assert history["items"][0]["updated_at"] >= history["items"][1]["updated_at"]
    with live.client("camera") as runner:
        listed = {item["camera_id"]: item["version"] for item in runner.get("/api/v1/camera-configs").json()["items"]}
    assert listed[camera] == 2


# The same config written differently: no new version.
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SAME_CONFIG: list[tuple[str, Any]] = [
    ("identical", lambda c: c),
    ("defaults written out", lambda c: {**c, "view_radius_m": 50, "max_gap_s": 30, "zones": zone(1, relative=True)}),
    ("integral floats", lambda c: {**c, "zones": zone(0, dwell_s=180.0)}),
    ("keys in another order", lambda c: dict(reversed(list(c.items())))),
]  # fmt: skip


@pytest.mark.parametrize(("what", "rewrite"), SAME_CONFIG, ids=[row[0] for row in SAME_CONFIG])
def test_an_unchanged_config_adds_no_version(live: LiveServer, what: str, rewrite: Any) -> None:
    camera = fresh_camera()
    with live.client("operator") as operator:
        assert put(operator, camera, config(camera)).json()["version"] == 1
        again = put(operator, camera, rewrite(config(camera)))
        assert again.status_code == 200, again.text
        assert again.json()["version"] == 1, what
        assert len(operator.get(f"/api/v1/cameras/{camera}/config/history").json()["items"]) == 1


def test_the_stored_config_is_normalised_and_validates_again(live: LiveServer) -> None:
    camera = fresh_camera()
    with live.client("operator") as operator:
        stored = put(operator, camera, config(camera)).json()["config"]
    assert list(stored)[:5] == ["id", "name", "source", "timezone", "location"]
    assert stored["zones"][1] == {
        "name": "shopfront-row",
        "polygon": [[0.0, 0.4], [0.3, 0.4], [0.3, 0.62], [0.0, 0.62]],
        "relative": True,
        "categories": ["storefront_overflow"],
        "min_overlap": 0.5,
        "allowed": [],
    }
    assert "calibration" not in stored and stored["view_radius_m"] == 50.0
    assert CameraConfig.model_validate(stored).model_dump() == CameraConfig.model_validate(config(camera)).model_dump()


# (If-Match sent with the third PUT while version 2 is current, expected status, version afterwards)
IF_MATCH: list[tuple[str, int, int]] = [
    ('"2"', 200, 3),
    ("2", 200, 3),
    ('W/"2"', 200, 3),
    ("*", 200, 3),
    ('"1"', 412, 2),
    ("1", 412, 2),
    ("7", 412, 2),
    ("99999999999", 422, 2),
    ("two", 422, 2),
    ("", 422, 2),
]


@pytest.mark.parametrize(("if_match", "status", "version"), IF_MATCH)
def test_if_match_makes_a_put_conditional(live: LiveServer, if_match: str, status: int, version: int) -> None:
    camera = fresh_camera()
    with live.client("operator") as operator:
        put(operator, camera, config(camera))
        put(operator, camera, config(camera, name="v2"))
        answer = put(operator, camera, config(camera, name="v3"), **{"If-Match": if_match})
        assert answer.status_code == status, answer.text
        if status == 412:
            assert "version 2" in answer.json()["detail"]
        assert operator.get(f"/api/v1/cameras/{camera}/config").json()["version"] == version


def test_if_match_on_a_camera_without_config_is_412(live: LiveServer) -> None:
    camera = fresh_camera()
    with live.client("operator") as operator:
        for tag in ("*", "1"):
            assert put(operator, camera, config(camera), **{"If-Match": tag}).status_code == 412
        assert operator.get(f"/api/v1/cameras/{camera}/config").status_code == 404


def test_an_unchanged_put_with_the_current_if_match_keeps_the_version(live: LiveServer) -> None:
    camera = fresh_camera()
    with live.client("operator") as operator:
        put(operator, camera, config(camera))
        again = put(operator, camera, config(camera), **{"If-Match": '"1"'})
    assert again.status_code == 200 and again.json()["version"] == 1


# ---- refusals: the field path of `streetwatch check` ------------------------------------------------


SELF_INTERSECTING = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]

# (what, the config (from a camera id), expected loc below "body", text of the message, same as the CLI?)
INVALID: list[tuple[str, Any, list[str | int], str, bool]] = [
    ("self-intersecting polygon", lambda c: config(c, zones=zone(0, polygon=SELF_INTERSECTING)),
     ["zones", 0, "polygon"], "not a simple outline (self-intersection at [0.5, 0.5])", True),
    ("unknown top-level field", lambda c: {**config(c), "zonez": []}, ["zonez"], "unknown field", True),
    ("unknown zone field", lambda c: config(c, zones=zone(1, colour="red")), ["zones", 1, "colour"],
     "unknown field", True),
    ("relative point outside 0..1", lambda c: config(c, zones=zone(0, polygon=[[0, 0], [1, 0], [1.5, 1]])),
     ["zones", 0, "polygon", 2], "relative coordinates must lie in 0..1", True),
    ("duplicate zone name", lambda c: config(c, zones=zone(1, name="sidewalk-north")), ["zones", 1, "name"],
     "duplicate zone name", True),
    ("unknown timezone", lambda c: config(c, timezone="Mars/Olympus"), ["timezone"], "unknown IANA timezone", True),
    ("unknown category", lambda c: config(c, zones=zone(0, categories=["jaywalking"])), ["zones", 0, "categories", 0],
     "jaywalking", True),
    ("missing field", lambda c: {k: v for k, v in config(c).items() if k != "name"}, ["name"],
     "required field is missing", True),
    ("collinear calibration", lambda c: config(c, calibration={"points": [
        {"px": [i * 100, i * 100], "lon": 118.7969 + i * 1e-4, "lat": 32.0603 + i * 2e-4} for i in range(4)]}),
     ["calibration", "points"], "collinear", True),
    ("number as a string", lambda c: config(c, zones=zone(0, dwell_s="180")), ["zones", 0, "dwell_s"],
     "valid number", False),
    ("bool as a number", lambda c: config(c, view_radius_m=True), ["view_radius_m"], "valid number", False),
    ("time as a number", lambda c: config(c, zones=zone(0, allowed=[{"days": EVERY_DAY, "from": 1080, "to": "22:00"}])),
     ["zones", 0, "allowed", 0, "from"], '"HH:MM"', False),
    ("day name in capitals", lambda c: config(c, zones=zone(0, allowed=[{"days": ["MON"], "from": "18:00",
                                                                         "to": "22:00"}])),
     ["zones", 0, "allowed", 0, "days", 0], "lower case", False),
    ("id is not the path's", lambda c: config("cam-other"), ["id"], "not the camera in the path", False),
    ("grid cells file", lambda c: config(c, grid_cells="cells.geojson"), ["grid_cells"], "cannot refer to a file",
     False),
    ("not an object", lambda c: [config(c)], [], "JSON object", False),
    ("remind first 0 s", lambda c: config(c, zones=zone(1, remind_first_s=0)), ["zones", 1, "remind_first_s"],
     "greater than or equal to 1", True),
    ("remind first negative", lambda c: config(c, zones=zone(1, remind_first_s=-5)), ["zones", 1, "remind_first_s"],
     "greater than or equal to 1", True),
    ("remind first over a day", lambda c: config(c, zones=zone(1, remind_first_s=86401)),
     ["zones", 1, "remind_first_s"], "less than or equal to 86400", True),
    ("responsible unit empty", lambda c: config(c, zones=zone(1, responsible={"unit": "", "name": "张记"})),
     ["zones", 1, "responsible", "unit"], "at least 1 character", True),
    ("responsible unit 65 chars", lambda c: config(c, zones=zone(1, responsible={"unit": "u" * 65, "name": "张记"})),
     ["zones", 1, "responsible", "unit"], "at most 64 characters", True),
    ("responsible unit a phone number", lambda c: config(c, zones=zone(1, responsible={"unit": "13912345678",
                                                                                        "name": "张记"})),
     ["zones", 1, "responsible", "unit"], "looks like a phone number", True),
]  # fmt: skip


def _cli_error(tmp_path: Path, body: dict[str, Any]) -> tuple[str, str]:
    """(field, message) of `streetwatch check` on the same config as a YAML file."""
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    code, _, err, _ = run_cli_in_process(["check", str(path)])
    assert code == 2, err
    pattern = rf"streetwatch: error: {re.escape(str(path))}: (?P<field>[^:]+): (?P<msg>.*?)( \(line \d+\))?\n"
    match = re.fullmatch(pattern, err)
    assert match is not None, err
    return match["field"], match["msg"]


@pytest.mark.parametrize(("what", "body", "loc", "text", "as_cli"), INVALID, ids=[row[0] for row in INVALID])
def test_an_invalid_config_is_422_naming_the_field_path(
    live: LiveServer, tmp_path: Path, what: str, body: Any, loc: list[str | int], text: str, as_cli: bool
) -> None:
    camera = fresh_camera()
    sent = body(camera)
    with live.client("operator") as operator:
        answer = put(operator, camera, sent)
        assert answer.status_code == 422, answer.text
        [problem, *_] = answer.json()["detail"]
        assert problem["loc"] == ["body", *loc], what
        assert text in problem["msg"]
        assert operator.get(f"/api/v1/cameras/{camera}/config").status_code == 404, "nothing stored"
    if as_cli:
        field, message = _cli_error(tmp_path, sent)
        assert field == format_loc(loc) and message == problem["msg"], "the browser says what the CLI says"


def test_an_invalid_change_keeps_the_current_version(live: LiveServer) -> None:
    camera = fresh_camera()
    with live.client("operator") as operator:
        put(operator, camera, config(camera))
        assert put(operator, camera, config(camera, zones=zone(0, polygon=SELF_INTERSECTING))).status_code == 422
        assert operator.get(f"/api/v1/cameras/{camera}/config").json()["version"] == 1


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (json.dumps(config("cam-x", name="\ud800")).encode(), "application/json", 422),  # no store holds it
        (json.dumps(config("cam-x", name="a\x00b")).encode(), "application/json", 422),
        (b"id: cam-x\n", "text/yaml", 415),
        (b"{}", "text/plain", 415),
        (b'{"id": "cam-x",', "application/json", 422),
        (b"\xff\xfe", "application/json", 422),
        (b'{"id": "cam-x", "zones": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", 422),
        (b'{"id": "cam-x", "zones": ' + b"[" * 600 + b"]" * 600 + b"}", "application/json", 422),
    ],
)
def test_a_body_that_is_not_json_is_refused(live: LiveServer, content: bytes, content_type: str, status: int) -> None:
    with live.client("operator") as operator:
        answer = operator.put("/api/v1/cameras/cam-x/config", content=content, headers={"content-type": content_type})
    assert answer.status_code == status, answer.text


# ---- roles -----------------------------------------------------------------------------------------

# (role or None for no token, method, path template, expected status once cam-r has a config and a snapshot)
ROLES_TABLE: list[tuple[str | None, str, str, int]] = [
    ("camera", "PUT", "/api/v1/cameras/{id}/config", 403),
    ("officer", "PUT", "/api/v1/cameras/{id}/config", 403),
    ("operator", "PUT", "/api/v1/cameras/{id}/config", 200),
    ("supervisor", "PUT", "/api/v1/cameras/{id}/config", 200),
    ("admin", "PUT", "/api/v1/cameras/{id}/config", 200),
    (None, "PUT", "/api/v1/cameras/{id}/config", 401),
    ("camera", "GET", "/api/v1/cameras/{id}/config", 200),
    ("operator", "GET", "/api/v1/cameras/{id}/config", 200),
    ("officer", "GET", "/api/v1/cameras/{id}/config", 403),
    ("camera", "GET", "/api/v1/cameras/{id}/config.yaml", 200),
    ("officer", "GET", "/api/v1/cameras/{id}/config/history", 403),
    ("camera", "GET", "/api/v1/camera-configs", 200),
    ("supervisor", "GET", "/api/v1/camera-configs", 200),
    ("officer", "GET", "/api/v1/camera-configs", 403),
    (None, "GET", "/api/v1/camera-configs", 401),
    ("camera", "PUT", "/api/v1/cameras/{id}/snapshot", 200),
    ("admin", "PUT", "/api/v1/cameras/{id}/snapshot", 200),
    ("operator", "PUT", "/api/v1/cameras/{id}/snapshot", 403),
    ("officer", "PUT", "/api/v1/cameras/{id}/snapshot", 403),
    ("operator", "GET", "/api/v1/cameras/{id}/snapshot", 200),
    ("camera", "GET", "/api/v1/cameras/{id}/snapshot", 403),
    ("officer", "GET", "/api/v1/cameras/{id}/snapshot", 403),
    (None, "GET", "/api/v1/cameras/{id}/snapshot", 401),
]


def png(width: int = 4, height: int = 3, shade: int = 128) -> bytes:
    """A real PNG (grey), built with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"


@pytest.mark.parametrize(("role", "method", "template", "status"), ROLES_TABLE)
def test_who_may_read_and_write(live: LiveServer, role: str | None, method: str, template: str, status: int) -> None:
    camera = fresh_camera()
    with live.client("admin") as admin:
        assert put(admin, camera, config(camera)).status_code == 200
        snapshot = admin.put(f"/api/v1/cameras/{camera}/snapshot", content=JPEG, headers={"content-type": "image/jpeg"})
        assert snapshot.status_code == 200
    path = template.format(id=camera)
    with live.client(role) as client:
        if method == "PUT" and path.endswith("/config"):
            answer = put(client, camera, config(camera, name=f"by {role}"))
        elif method == "PUT":
            answer = client.put(path, content=png(), headers={"content-type": "image/png"})
        else:
            answer = client.get(path)
    assert answer.status_code == status, answer.text


# ---- YAML -----------------------------------------------------------------------------------------


def test_the_yaml_is_what_streetwatch_check_accepts(live: LiveServer, tmp_path: Path) -> None:
    camera = fresh_camera()
    calibrated = config(
        camera,
        calibration={
            "points": [
                {"px": [100, 600], "lon": 118.79680, "lat": 32.06020},
                {"px": [1180, 600], "lon": 118.79720, "lat": 32.06020},
                {"px": [1100, 300], "lon": 118.79715, "lat": 32.06060},
                {"px": [200, 300], "lon": 118.79685, "lat": 32.06060},
            ]
        },
        frame_size=[1280, 720],
    )
    with live.client("operator") as operator:
        put(operator, camera, calibrated)
        put(operator, camera, config(camera, name="second"))
        answers = [
            operator.get(f"/api/v1/cameras/{camera}/config.yaml", params={"version": 1}),
            operator.get(f"/api/v1/cameras/{camera}/config.yaml"),
        ]
        stored = [operator.get(f"/api/v1/cameras/{camera}/config", params={"version": n}).json() for n in (1, 2)]
        assert operator.get(f"/api/v1/cameras/{fresh_camera()}/config.yaml").status_code == 404
    for version, (answer, json_version) in enumerate(zip(answers, stored, strict=True), start=1):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/yaml; charset=utf-8"
        assert answer.headers["etag"] == f'"{version}"'
        assert f"version {version}" in answer.text.splitlines()[0]
        path = tmp_path / f"{camera}.v{version}.yaml"
        path.write_bytes(answer.content)
        checked = run_cli("check", path)  # the real console script, as a user runs it
        assert checked.returncode == 0, checked.stderr
        assert checked.stdout.strip() == f"{path}: camera {camera} is valid (sidewalk-north, shopfront-row)"
        from_yaml = load_camera_config(path)
        assert from_yaml.model_dump() == CameraConfig.model_validate(json_version["config"]).model_dump()
    assert load_camera_config(tmp_path / f"{camera}.v1.yaml").calibration is not None
    assert load_camera_config(tmp_path / f"{camera}.v2.yaml").name == "second"


# ---- snapshots ------------------------------------------------------------------------------------


def test_snapshot_upload_replaces_and_downloads_with_its_capture_time(live: LiveServer) -> None:
    camera = fresh_camera()
    captured = "2026-11-27T09:14:03+08:00"
    with live.client("camera") as runner, live.client("operator") as operator:
        assert operator.get(f"/api/v1/cameras/{camera}/snapshot").status_code == 404
        first = runner.put(
            f"/api/v1/cameras/{camera}/snapshot",
            params={"captured_at": captured},
            content=JPEG,
            headers={"content-type": "image/jpeg"},
        )
        assert first.status_code == 200, first.text
        assert first.json()["content_type"] == "image/jpeg" and first.json()["size"] == len(JPEG)
        served = operator.get(f"/api/v1/cameras/{camera}/snapshot")
        assert served.status_code == 200 and served.content == JPEG
        assert served.headers["content-type"] == "image/jpeg"
        assert datetime.fromisoformat(served.headers["x-captured-at"]) == datetime.fromisoformat(captured)
        before = datetime.now(UTC)
        image = png()
        assert runner.put(f"/api/v1/cameras/{camera}/snapshot", content=image,
                          headers={"content-type": "image/png"}).status_code == 200  # fmt: skip
        replaced = operator.get(f"/api/v1/cameras/{camera}/snapshot")
        assert replaced.content == image and replaced.headers["content-type"] == "image/png"
        assert datetime.fromisoformat(replaced.headers["x-captured-at"]) >= before.replace(microsecond=0)
        assert operator.get(f"/api/v1/cameras/{fresh_camera()}/snapshot").status_code == 404


# (Content-Type, body, expected status): the bytes must be what the type says, by their magic bytes.
BAD_SNAPSHOTS: list[tuple[str, bytes, int]] = [
    ("image/jpeg", png(), 422),
    ("image/png", JPEG, 422),
    ("image/png", b"hello", 422),
    ("image/jpeg", b"", 422),
    ("image/gif", b"GIF89a\x01\x00\x01\x00", 415),
    ("application/octet-stream", JPEG, 415),
    ("text/html", b"<html>", 415),
]


@pytest.mark.parametrize(("content_type", "body", "status"), BAD_SNAPSHOTS)
def test_a_snapshot_must_be_the_image_it_says(live: LiveServer, content_type: str, body: bytes, status: int) -> None:
    camera = fresh_camera()
    with live.client("camera") as runner, live.client("operator") as operator:
        answer = runner.put(f"/api/v1/cameras/{camera}/snapshot", content=body, headers={"content-type": content_type})
        assert answer.status_code == status, answer.text
        assert operator.get(f"/api/v1/cameras/{camera}/snapshot").status_code == 404


@pytest.mark.parametrize("captured_at", ["yesterday", "1700000000", "2026-11-27T09:14:03"])
def test_a_snapshot_capture_time_must_be_iso_8601_with_offset(live: LiveServer, captured_at: str) -> None:
    with live.client("camera") as runner:
        answer = runner.put(
            "/api/v1/cameras/cam-x/snapshot",
            params={"captured_at": captured_at},
            content=JPEG,
            headers={"content-type": "image/jpeg"},
        )
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "captured_at"]


def test_a_snapshot_larger_than_the_upload_limit_is_413(sqlite_url: str) -> None:
    server = start_server(settings_for(sqlite_url, max_upload_bytes=4096))
    try:
        with server.client("camera") as runner:
            big = runner.put("/api/v1/cameras/cam-x/snapshot", content=JPEG + b"\x00" * 4096,
                             headers={"content-type": "image/jpeg"})  # fmt: skip
            fits = runner.put("/api/v1/cameras/cam-x/snapshot", content=JPEG + b"\x00" * 3000,
                              headers={"content-type": "image/jpeg"})  # fmt: skip
    finally:
        server.stop()
        server.db.dispose()
    assert big.status_code == 413 and fits.status_code == 200


# ---- concurrency ------------------------------------------------------------------------------------


@pytest.mark.parametrize("if_match", [None, '"1"'])
def test_concurrent_puts_each_get_a_version_or_a_412(live: LiveServer, if_match: str | None) -> None:
    """Several editors saving at once: without If-Match every change becomes its own version (none lost,
    none a 500); with the same If-Match exactly one wins and the others are told to reload."""
    from concurrent.futures import ThreadPoolExecutor

    camera = fresh_camera()
    with live.client("operator") as operator:
        if if_match is not None:
            put(operator, camera, config(camera))

        def save(n: int) -> httpx.Response:
            headers = {"If-Match": if_match} if if_match else {}
            with live.client("operator") as client:
                return put(client, camera, config(camera, name=f"editor {n}"), **headers)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(save, range(6)))
        history = operator.get(f"/api/v1/cameras/{camera}/config/history").json()["items"]
    codes = sorted(answer.status_code for answer in answers)
    if if_match is None:
        assert codes == [200] * 6
        assert sorted(answer.json()["version"] for answer in answers) == [1, 2, 3, 4, 5, 6]
        assert [item["version"] for item in history] == [6, 5, 4, 3, 2, 1]
    else:
        assert codes == [200] + [412] * 5
        assert [item["version"] for item in history] == [2, 1]
