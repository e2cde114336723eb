"""Authentication and authorisation: the route × role matrix generated from the app itself, officer
scoping, revocation, cookie sessions with CSRF, the public allowlist, production secrets."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import event

from service.api.deps import CSRF_HEADER, PUBLIC_PATHS
from service.core.config import Settings
from service.main import create_app
from tests.service.helpers import ROLES, LiveServer, alert, ingest, new_case, settings_for, start_server
from zones.errors import InputError

READERS = {"operator", "officer", "supervisor", "admin"}
REVIEWERS = {"operator", "supervisor", "admin"}
OFFICERS = {"officer", "supervisor", "admin"}
SUPERVISORS = {"supervisor", "admin"}
CAMERAS = {"camera", "admin"}
CONFIG_READERS = {"camera", "operator", "supervisor", "admin"}
EVERYONE = set(ROLES)
PUBLIC = "public"

# Who may call each route. A new route without a line here fails test_matrix_covers_every_route.
ACCESS: dict[tuple[str, str], set[str] | str] = {
    ("POST", "/api/v1/alerts"): CAMERAS,
    ("PUT", "/api/v1/evidence/{sha256}"): CAMERAS,
    ("GET", "/api/v1/cases"): READERS,
    ("GET", "/api/v1/cases/{case_id}"): READERS,
    ("POST", "/api/v1/cases/{case_id}/actions"): READERS,  # then per action: see ACTION_ROLES
    ("GET", "/api/v1/cases/{case_id}/evidence/{index}"): READERS,
    ("POST", "/api/v1/cases/{case_id}/photos"): OFFICERS,
    ("GET", "/api/v1/cases.geojson"): READERS,
    ("GET", "/api/v1/cases/{case_id}/cap"): READERS,
    ("GET", "/api/v1/cameras"): READERS,
    ("GET", "/api/v1/stats/precision"): REVIEWERS,
    ("GET", "/api/v1/stats/assessment"): SUPERVISORS,
    ("GET", "/api/v1/access-log"): SUPERVISORS,
    ("GET", "/api/v1/cases/{case_id}/bundle.zip"): REVIEWERS,
    ("GET", "/api/v1/keys/bundle"): EVERYONE,
    ("GET", "/assessment"): SUPERVISORS,
    ("POST", "/api/v1/cameras/{camera_id}/status"): CAMERAS,
    ("GET", "/api/v1/camera-configs"): CONFIG_READERS,
    ("GET", "/api/v1/cameras/{camera_id}/config"): CONFIG_READERS,
    ("PUT", "/api/v1/cameras/{camera_id}/config"): REVIEWERS,
    ("GET", "/api/v1/cameras/{camera_id}/config.yaml"): CONFIG_READERS,
    ("GET", "/api/v1/cameras/{camera_id}/config/history"): CONFIG_READERS,
    ("PUT", "/api/v1/cameras/{camera_id}/snapshot"): CAMERAS,
    ("GET", "/api/v1/cameras/{camera_id}/snapshot"): REVIEWERS,
    ("POST", "/api/v1/cameras/{camera_id}/config/preview"): REVIEWERS,
    ("GET", "/api/v1/cameras.geojson"): READERS,
    ("GET", "/setup/cameras/{camera_id}"): REVIEWERS,
    ("GET", "/api/v1/events"): READERS,
    ("GET", "/api/v1/whoami"): EVERYONE,
    ("GET", "/api/v1/tokens"): {"admin"},
    ("POST", "/api/v1/tokens"): {"admin"},
    ("DELETE", "/api/v1/tokens/{token_id}"): {"admin"},
    ("GET", "/api/v1/webhooks"): REVIEWERS,
    ("POST", "/api/v1/webhooks"): {"admin"},
    ("POST", "/api/v1/webhooks/{endpoint_id}/disable"): {"admin"},
    ("POST", "/api/v1/webhooks/{endpoint_id}/enable"): {"admin"},
    ("GET", "/api/v1/webhooks/deliveries"): REVIEWERS,
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/retry"): SUPERVISORS,
    ("GET", "/metrics"): SUPERVISORS,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/openapi.json"): EVERYONE,
    ("GET", "/"): READERS,
    ("GET", "/officer"): OFFICERS,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
}


def _api_routes(routes: list) -> list[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI ≥ 0.16x keeps them wrapped)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _api_routes(route.original_router.routes)
    return found


def _routes(app: object) -> set[tuple[str, str]]:
    routes = _api_routes(app.router.routes)  # type: ignore[attr-defined]
    return {(method, route.path) for route in routes for method in route.methods}


def _openapi_operations(schema: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}


def test_matrix_covers_every_route_and_openapi_path(server: LiveServer) -> None:
    with server.client("admin") as admin:
        schema = admin.get("/openapi.json").json()
    documented = _openapi_operations(schema)
    assert documented <= _routes(server.app)
    assert _routes(server.app) == set(ACCESS)
    # Only the allowlist is public, in the table and in the code.
    assert {path for (_, path), who in ACCESS.items() if who == PUBLIC} == set(PUBLIC_PATHS)
    # Every documented operation except the public ones declares bearer security.
    for path, ops in schema["paths"].items():
        for op in ops.values():
            assert ("security" in op) == (path not in PUBLIC_PATHS), path


def _concrete(path: str, case_id: str) -> str:
    values = {
        "case_id": case_id,
        "sha256": "0" * 64,
        "index": "0",
        "camera_id": "cam-x",
        "token_id": str(uuid.uuid4()),
        "endpoint_id": str(uuid.uuid4()),
        "delivery_id": str(uuid.uuid4()),
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(client: httpx.Client, method: str, path: str) -> int:
    """The status; 401 only when it is an authentication refusal (it names the Bearer scheme).

    POST /login without a valid token answers 401 too, but as the login form's error page.
    """
    if path.startswith("/api/v1/events"):
        with client.stream(method, path, params={"after": 0}) as response:
            return response.status_code
    response = client.request(method, path)
    if response.status_code == 401 and response.headers.get("www-authenticate") != "Bearer":
        return -401
    return response.status_code


@pytest.fixture
def unthrottled(sqlite_url: str) -> Iterator[LiveServer]:
    """The app without failed-auth throttling: the matrix sends a forged token to every route, which a
    real client doing so would be throttled for after ten (test_throttle)."""
    live = start_server(settings_for(sqlite_url, auth_failures_max=0))
    yield live
    live.stop()
    live.db.dispose()


def test_every_route_answers_401_without_and_403_for_wrong_roles(unthrottled: LiveServer) -> None:
    """Generated from the app's route table: a route without a line in ACCESS fails here too."""
    server = unthrottled
    case_id = new_case(server, "reported")
    clients = {role: server.client(role) for role in ROLES}
    clients["anonymous"] = server.client()
    clients["forged"] = server.client(headers={"Authorization": "Bearer sw_not-a-token"})
    failures = []
    try:
        for method, template in sorted(_routes(server.app)):
            allowed = ACCESS.get((method, template))
            if allowed is None:
                failures.append(f"{method} {template}: not in ACCESS, who may call it?")
                continue
            path = _concrete(template, case_id)
            status = _call(clients["anonymous"], method, path)
            if allowed == PUBLIC:
                if status in (401, 403):
                    failures.append(f"{method} {path} anonymous → {status}, expected public")
                continue
            if status != 401:
                failures.append(f"{method} {path} anonymous → {status}, expected 401")
            if (status := _call(clients["forged"], method, path)) != 401:
                failures.append(f"{method} {path} forged token → {status}, expected 401")
            for role in ROLES:
                status = _call(clients[role], method, path)
                if role in allowed and status in (401, 403):
                    failures.append(f"{method} {path} as {role} → {status}, expected access")
                if role not in allowed and status != 403:
                    failures.append(f"{method} {path} as {role} → {status}, expected 403")
    finally:
        for client in clients.values():
            client.close()
    assert not failures, "\n".join(failures)


def test_html_requests_without_session_are_sent_to_login(server: LiveServer) -> None:
    with server.client(headers={"Accept": "text/html"}) as browser:
        response = browser.get("/officer")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/officer"


@pytest.fixture
def small_limits(sqlite_url: str) -> Iterator[LiveServer]:
    live = start_server(settings_for(sqlite_url, max_body_bytes=2048, max_upload_bytes=4096))
    yield live
    live.stop()
    live.db.dispose()


def test_oversized_bodies_are_413_on_every_route_that_takes_one(small_limits: LiveServer) -> None:
    """Generated from the route table: every POST/PUT/DELETE route refuses a body over its limit, before
    authentication; upload routes (binary request bodies in the OpenAPI document) have their own limit."""
    server = small_limits
    with server.client("admin") as admin:
        document = admin.get("/openapi.json").json()
    uploads = {
        (method.upper(), path)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if any(media.get("schema", {}).get("format") == "binary"
               for media in op.get("requestBody", {}).get("content", {}).values())
    }  # fmt: skip
    assert uploads == {
        ("PUT", "/api/v1/evidence/{sha256}"),
        ("POST", "/api/v1/cases/{case_id}/photos"),
        ("PUT", "/api/v1/cameras/{camera_id}/snapshot"),
    }
    failures = []
    for method, template in sorted(_routes(server.app)):
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        limit = server.settings.max_upload_bytes if (method, template) in uploads else server.settings.max_body_bytes
        path = _concrete(template, str(uuid.uuid4()))
        for role in ("admin", None):
            with server.client(role) as client:
                over = client.request(method, path, content=b"{" + b" " * limit + b"}")
                if over.status_code != 413:
                    failures.append(f"{method} {path} as {role}: {limit + 2} bytes → {over.status_code}")
        if (method, template) in uploads:
            with server.client("admin") as admin:
                between = admin.request(method, path, content=b"\xff" * 3000, headers={"content-type": "image/jpeg"})
                if between.status_code == 413:
                    failures.append(f"{method} {path}: 3000 bytes is under the upload limit, got 413")
    assert not failures, "\n".join(failures)


# ---- officer scoping -------------------------------------------------------------------------------------


def test_officer_sees_and_handles_only_his_teams_dispatched_cases(server: LiveServer) -> None:
    mine = new_case(server, "dispatched")  # grid team-a
    theirs = new_case(server, "dispatched", grid={"code": "g-2", "team": "team-b"})
    undispatched = new_case(server, "filed")
    with server.client("officer") as officer:
        listed = officer.get("/api/v1/cases", params={"status": ["dispatched", "filed", "reported"]}).json()
        assert [item["id"] for item in listed["items"]] == [mine] and listed["total"] == 1
        features = officer.get("/api/v1/cases.geojson").json()["features"]
        assert [feature["id"] for feature in features] == [mine]
        for case_id in (theirs, undispatched):
            assert officer.get(f"/api/v1/cases/{case_id}").status_code == 404
            assert officer.get(f"/api/v1/cases/{case_id}/cap").status_code == 404
            assert officer.post(f"/api/v1/cases/{case_id}/actions", json={"action": "handle"}).status_code == 404
        assert officer.post(f"/api/v1/cases/{mine}/actions", json={"action": "close"}).status_code == 403
        handled = officer.post(f"/api/v1/cases/{mine}/actions", json={"action": "handle", "note": "cleared"})
        assert handled.status_code == 200
        assert handled.json()["history"][-1]["actor"] == "officer-1"
    with server.client("officer_b") as officer_b:
        assert [item["id"] for item in officer_b.get("/api/v1/cases").json()["items"]] == [theirs]


# ---- tokens ------------------------------------------------------------------------------------------


def test_revoked_token_stops_working_immediately(server: LiveServer) -> None:
    token = server.token("operator", "temp-op")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as temp:
        assert temp.get("/api/v1/cases").status_code == 200
        with server.client("admin") as admin:
            listing = admin.get("/api/v1/tokens").json()["items"]
            assert all("token" not in item and "token_sha256" not in item for item in listing)
            token_id = next(item["id"] for item in listing if item["name"] == "temp-op")
            assert admin.delete(f"/api/v1/tokens/{token_id}").json()["revoked_at"] is not None
        assert temp.get("/api/v1/cases").status_code == 401


def test_admin_creates_tokens_and_officer_tokens_need_a_team(server: LiveServer) -> None:
    with server.client("admin") as admin:
        assert admin.post("/api/v1/tokens", json={"role": "officer", "name": "x"}).status_code == 422
        assert admin.post("/api/v1/tokens", json={"role": "mayor", "name": "x"}).status_code == 422
        created = admin.post("/api/v1/tokens", json={"role": "officer", "name": "o", "team": "team-c"})
    assert created.status_code == 201
    token = created.json()["token"]
    with server.client(headers={"Authorization": f"Bearer {token}"}) as officer:
        assert officer.get("/api/v1/whoami").json() == {"name": "o", "role": "officer", "team": "team-c"}


def test_only_the_token_hash_is_stored(server: LiveServer) -> None:
    import hashlib

    from sqlalchemy import text

    with server.db.reading() as session:
        stored = {row[0] for row in session.execute(text("SELECT token_sha256 FROM api_tokens"))}
        dump = " ".join(str(row) for row in session.execute(text("SELECT * FROM api_tokens")))
    for token in server.tokens.values():
        assert hashlib.sha256(token.encode()).hexdigest() in stored
        assert token not in dump


def test_secrets_are_compared_in_constant_time_and_tokens_looked_up_by_digest(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every secret comparison of a sign-in and a cookie write goes through hmac.compare_digest, and
    the database sees only the token's SHA-256: replacing either with a plain == fails here."""
    compared: list[tuple[object, object]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the server runs in this process, in a thread
    sent: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append(f"{statement} {parameters!r}")

    event.listen(server.db.engine, "before_cursor_execute", capture)
    case_id = new_case(server, "reported")
    token = server.tokens["operator"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    try:
        compared.clear()
        sent.clear()
        with _login(server, token) as browser:
            page = browser.get("/")
            csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
            assert csrf is not None
            url = f"/api/v1/cases/{case_id}/actions"
            assert browser.post(url, json={"action": "file"}, headers={CSRF_HEADER: "0" * 40}).status_code == 403
            assert browser.post(url, json={"action": "file"}, headers={CSRF_HEADER: csrf.group(1)}).status_code == 200
    finally:
        event.remove(server.db.engine, "before_cursor_execute", capture)
    # The token is looked up by its digest; the secret itself never reaches the database.
    lookups = [line for line in sent if "api_tokens" in line]
    assert lookups and all(digest in line for line in lookups)
    assert not any(token in line for line in sent)
    # The stored digest is re-checked, and the CSRF header checked, with compare_digest (both the
    # wrong and the right header), never with ==.
    pairs = {(bytes(a), bytes(b)) for a, b in compared if isinstance(a, bytes) and isinstance(b, bytes)}
    assert (digest.encode(), digest.encode()) in pairs
    assert (b"0" * 40, csrf.group(1).encode()) in pairs
    assert (csrf.group(1).encode(), csrf.group(1).encode()) in pairs


# ---- cookie sessions -------------------------------------------------------------------------------------


@contextmanager
def _login(server: LiveServer, token: str, next_: str = "") -> Iterator[httpx.Client]:
    with server.client(follow_redirects=False) as client:
        response = client.post(
            "/login",
            content=f"token={token}&next={next_}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303, response.text
        yield client


@pytest.mark.parametrize(
    ("role", "next_", "landing"),
    [
        ("operator", "", "/"),
        ("officer", "", "/officer"),
        ("operator", "/officer", "/officer"),
        ("operator", "//evil.example/x", "/"),  # no open redirect
        ("operator", "https://evil.example/", "/"),
    ],
)
def test_login_sets_session_cookie_and_redirects(server: LiveServer, role: str, next_: str, landing: str) -> None:
    with server.client(follow_redirects=False) as fresh:
        answer = fresh.post(
            "/login",
            content=f"token={server.tokens[role]}&next={next_}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert answer.headers["location"] == landing
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


@pytest.mark.parametrize(("token", "status"), [("sw_wrong", 401), ("", 401), ("CAMERA", 403)])
def test_login_refuses_bad_and_camera_tokens(server: LiveServer, token: str, status: int) -> None:
    token = server.tokens["camera"] if token == "CAMERA" else token
    with server.client() as client:
        response = client.post(
            "/login", content=f"token={token}", headers={"content-type": "application/x-www-form-urlencoded"}
        )
    assert response.status_code == status
    assert "set-cookie" not in response.headers


def test_cookie_session_needs_csrf_header_for_writes(server: LiveServer) -> None:
    case_id = new_case(server, "reported")
    with _login(server, server.tokens["operator"]) as browser:
        page = browser.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
        assert csrf is not None
        assert browser.get("/api/v1/cases").json()["total"] == 1
        url = f"/api/v1/cases/{case_id}/actions"
        assert browser.post(url, json={"action": "file"}).status_code == 403
        assert browser.post(url, json={"action": "file"}, headers={CSRF_HEADER: "0" * 40}).status_code == 403
        assert browser.post(url, json={"action": "file"}, headers={CSRF_HEADER: csrf.group(1)}).status_code == 200
        # Logging out needs no CSRF proof and ends the session.
        assert browser.post("/logout").status_code == 303
        assert browser.get("/api/v1/cases").status_code == 401


def test_stale_cookie_still_reaches_the_login_page(server: LiveServer) -> None:
    with server.client(cookies={"streetwatch_session": "sw_revoked"}, follow_redirects=False) as client:
        assert client.get("/login").status_code == 200
        assert client.get("/api/v1/cases").status_code == 401


def test_pages_carry_security_headers_and_local_assets_only(server: LiveServer) -> None:
    with _login(server, server.tokens["operator"]) as browser:
        for path in ("/", "/login", "/static/app.js", "/static/app.css"):
            response = browser.get(path)
            assert response.status_code in (200, 303), path  # /login redirects a signed-in user
            assert "default-src 'self'" in response.headers["content-security-policy"]
            assert response.headers["x-content-type-options"] == "nosniff"
        page = browser.get("/").text
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "no external assets"


@pytest.mark.parametrize(
    ("role", "path"), [("operator", "/"), ("officer", "/officer"), ("supervisor", "/setup/cameras/cam-a")]
)
def test_pages_give_their_scripts_every_category_label(shared_server: LiveServer, role: str, path: str) -> None:
    """SW.CATEGORY (filters, lists, zone categories) comes from the page, in the service's order."""
    with _login(shared_server, shared_server.tokens[role]) as browser:
        page = browser.get(path).text
    found = re.search(r'<meta name="sw-categories" content="([^"]*)">', page)
    assert found is not None
    assert list(json.loads(html.unescape(found.group(1))).items()) == [
        ("street_vending", "占道经营 street vending"),
        ("storefront_overflow", "出店经营 storefront overflow"),
        ("hanging_laundry", "沿街晾晒 hanging laundry"),
        ("illegal_structure", "乱搭乱建 illegal structure"),
        ("sidewalk_obstruction", "占道堆物 sidewalk obstruction"),
    ]


# ---- settings -----------------------------------------------------------------------------------------


def test_prod_mode_refuses_default_secret(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="default secret"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", mode="prod"))
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", mode="prod", secret_key="k" * 40, relay_enabled=False)
    )
    assert app.title == "streetwatch"


def test_camera_token_cannot_read_cases_even_with_ids(server: LiveServer) -> None:
    record = alert()
    with server.client("camera") as camera:
        assert ingest(camera, record).status_code == 201
        assert camera.get(f"/api/v1/cases/{record['id']}").status_code == 403
        assert camera.get("/api/v1/cases").status_code == 403
