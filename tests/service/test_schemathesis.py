"""schemathesis over the whole OpenAPI document of the app, served by uvicorn on loopback, as admin.

Every operation is fuzzed (schemathesis' examples, coverage and fuzzing phases: boundary values, huge
integers, odd Unicode, wrong types, missing and extra fields) and every response must pass its checks:
no 5xx, documented status codes, content types, headers and response schemas, invalid input refused,
valid input accepted. ``STREETWATCH_FUZZ_EXAMPLES`` raises the fuzzing phase's examples per operation
(default 6; ``make fuzz`` runs 2000).

What it found (and what review found next to it) is pinned down, row by row, in ``test_regressions``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import ignored_auth, negative_data_rejection, positive_data_acceptance

from service.core.db import create_database
from service.main import create_app
from tests.conftest import report_count
from tests.service.helpers import LiveServer, alert, new_case, settings_for, start_server
from zones.errors import InputError

EXAMPLES = int(os.environ.get("STREETWATCH_FUZZ_EXAMPLES", "6"))
CAMPAIGN = "STREETWATCH_FUZZ_EXAMPLES" in os.environ
# ignored_auth re-sends every 2xx request without and with a forged token (+60 % requests); by default
# test_auth's route × role matrix covers that, the campaign runs it on every generated case as well.
SKIPPED_CHECKS = [positive_data_acceptance, negative_data_rejection] + ([] if CAMPAIGN else [ignored_auth])

# Operations whose valid-looking requests may still be refused, for rules a JSON Schema cannot state;
# every other operation must accept whatever its schema allows.
SEMANTIC_422: dict[str, str] = {
    "PUT /api/v1/evidence/{sha256}": "the body's SHA-256 must equal the path",
    "POST /api/v1/tokens": "officer tokens need a team",
    "POST /api/v1/webhooks": "the URL must stay within 2048 characters once normalised",
    "POST /api/v1/cases/{case_id}/actions": (
        "reject needs a note or reason, reopen a note; team only with dispatch, label only with file (and x1 < x2, "
        "y1 < y2, a snapshot_clean to refer to), reason only with reject"
    ),
    "PUT /api/v1/cameras/{camera_id}/config": (
        "a camera config's rules beyond its JSON Schema: simple polygons in 0..1 when relative, unique zone names, "
        "4+ non-collinear calibration points, a known IANA timezone, the path's camera id, no grid_cells file, "
        "responsibility units that are not blank and no phone number"
    ),
    "PUT /api/v1/cameras/{camera_id}/snapshot": "the bytes must be the JPEG or PNG the Content-Type says",
    "GET /api/v1/stats/assessment": "to must lie after from, at most 400 days later",
}
# Fields whose rules a JSON Schema cannot state, for operations that must otherwise accept what their
# schema allows: a 422 that names only these fields is a semantic refusal.
SEMANTIC_422_FIELDS: dict[str, tuple[str, str]] = {
    "POST /api/v1/alerts": ("responsible", "a responsibility unit's id and name are not blank and no phone number"),
}
# Operations whose valid requests may meet a precondition that no longer holds (412).
PRECONDITION_412: dict[str, str] = {
    "PUT /api/v1/cameras/{camera_id}/config": "If-Match names a version that is not the current one",
}


# Refusals of schema-valid input that the OpenAPI description announces in words: text no store can
# hold (NUL, lone surrogates) and times outside 1970..9000 UTC.
UNSTORABLE = {"string_unstorable", "datetime_out_of_range"}


def valid_data_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, less the refusals a JSON Schema cannot state."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if response.status_code == 412 and label in PRECONDITION_412:
        return None
    if response.status_code == 422:
        detail = response.json().get("detail")
        types = {item.get("type") for item in detail} if isinstance(detail, list) else set()
        if label in SEMANTIC_422 or (types and types <= UNSTORABLE):
            return None
        field = SEMANTIC_422_FIELDS.get(label, ("",))[0]
        if field and isinstance(detail, list) and all(field in item.get("loc", ()) for item in detail):
            return None
    return positive_data_acceptance(ctx, response, case)


def invalid_data_rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' negative_data_rejection, less negations that never reach the server: the test's own
    Authorization header replaces a generated one, and a query value that serialises to nothing is not sent."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData:
        mutations = getattr(getattr(case.meta, "phase", None), "data", None)
        mutations = getattr(mutations, "mutations", None) or []
        sent_query = parse_qs(urlsplit(str(response.request.url)).query, keep_blank_values=True)

        def never_sent(mutation: Any) -> bool:
            if mutation.parameter_location == ParameterLocation.HEADER:
                return str(mutation.parameter).lower() == "authorization"
            return mutation.parameter_location == ParameterLocation.QUERY and mutation.parameter not in sent_query

        if mutations and all(never_sent(m) for m in mutations):
            return None
        raise


def _openapi() -> dict[str, Any]:
    # The document depends on the routes only; parametrize needs it at import, before fixtures exist.
    with tempfile.TemporaryDirectory() as tmp:
        db = create_database(f"sqlite:///{tmp}/openapi.db")
        try:
            return create_app(settings_for(str(db.engine.url)), db=db).openapi()
        finally:
            db.dispose()


class _AppUnderTest:
    """An ASGI app that forwards to the one the ``live`` fixture plugs in: ``parametrize`` needs an
    app before fixtures exist, and requests then go in-process, without sockets or uvicorn (about
    half the time per request on a busy machine)."""

    def __init__(self) -> None:
        self.app: Any = None
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the live fixture plugs the app in"
        self.requests += scope["type"] == "http"
        await self.app(scope, receive, send)


APP = _AppUnderTest()
schema = schemathesis.openapi.from_dict(_openapi())
schema.app = APP
OPERATIONS = sorted(f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations())

# Ids of seeded rows, filled by the ``live`` fixture: random ids only ever reach "404 not found", so a
# share of the generated requests is pointed at rows that exist (lists, details, actions, evidence).
KNOWN: dict[str, list[str]] = {"case_id": [], "token_id": [], "endpoint_id": [], "delivery_id": []}
SLOTS = 3


def _point_at(case: Any, index: int) -> Any:
    case.path_parameters = {
        name: KNOWN[name][index % len(KNOWN[name])] if KNOWN.get(name) else value
        for name, value in case.path_parameters.items()
    }
    return case


@schema.hook
def flatmap_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
    path = case._meta.components.get(ParameterLocation.PATH) if case._meta is not None else None
    if not case.path_parameters or not set(case.path_parameters) & set(KNOWN) or path is None or path.mode.is_negative:
        return st.just(case)  # a deliberately invalid id stays invalid
    return st.one_of(st.just(case), st.integers(0, SLOTS - 1).map(lambda index: _point_at(case, index)))


def _seed(live: LiveServer) -> None:
    jpeg = b"\xff\xd8\xff\xe0 streetwatch schemathesis seed \xff\xd9"
    sha = hashlib.sha256(jpeg).hexdigest()
    with live.client("admin") as admin:
        assert admin.put(f"/api/v1/evidence/{sha}", content=jpeg, headers={"content-type": "image/jpeg"}).is_success
        hook = admin.post("/api/v1/webhooks", json={"team": "team-a", "url": "http://127.0.0.1:9/hook"})
        KNOWN["endpoint_id"] = [hook.json()["id"]]
        evidence = [
            {"kind": "snapshot", "path": "evidence/s/snapshot.jpg", "sha256": sha},
            {"kind": "snapshot_clean", "path": "evidence/s/snapshot_clean.jpg", "sha256": sha},  # labels refer to it
        ]
        KNOWN["case_id"] = [
            new_case(live, "reported", evidence=evidence),
            new_case(live, "dispatched", evidence=evidence),
            new_case(live, "handled"),
        ]
        KNOWN["delivery_id"] = [item["id"] for item in admin.get("/api/v1/webhooks/deliveries").json()["items"]]
        # Tokens the fuzzer may revoke: never the admin token it runs with.
        KNOWN["token_id"] = [
            admin.post("/api/v1/tokens", json={"role": "operator", "name": f"spare-{n}"}).json()["id"]
            for n in range(SLOTS)
        ]
    assert all(KNOWN.values()), KNOWN


POSTGRES = pytest.param("postgresql", marks=pytest.mark.postgres)
# PostgreSQL refuses what SQLite stores (NUL in text, over-long VARCHARs): the regressions run on both
# backends, the default fuzz on SQLite, the campaign's fuzz on both.
FUZZ_BACKENDS = ["sqlite", POSTGRES] if CAMPAIGN else ["sqlite"]


@pytest.fixture(scope="module", params=["sqlite", POSTGRES])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'streetwatch.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_database()
    # Short SSE streams: GET /api/v1/events is fuzzed like the rest and must end on its own.
    # Throttling off: the campaign's ignored_auth probes send forged tokens by the hundred (test_throttle).
    settings = settings_for(url, sse_max_s=0.05, sse_poll_s=0.02, auth_failures_max=0)
    server = start_server(settings)
    _seed(server)
    APP.app = server.app
    yield server
    server.stop()
    server.db.dispose()


_cases: Counter[str] = Counter()
_seconds: Counter[str] = Counter()
_failed: set[str] = set()
_backends: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if _cases:
        slowest = ", ".join(f"{name} {secs:.1f}s" for name, secs in _seconds.most_common(3))
        report_count(
            f"[fuzz] schemathesis OpenAPI: {len(_cases)}/{len(OPERATIONS)} operations, {sum(_cases.values())} "
            f"cases generated, {APP.requests} requests, {len(_failed)} operations failing "
            f"on {'+'.join(sorted(_backends))} (fuzzing examples per operation {EXAMPLES}; slowest {slowest})"
        )


@schema.parametrize()
@pytest.mark.parametrize("live", FUZZ_BACKENDS, indirect=True)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
def test_openapi_fuzz_conforms(case: Any, live: LiveServer) -> None:
    label = f"{case.operation.method.upper()} {case.operation.path}"
    started = time.perf_counter()
    _cases[label] += 1
    _backends.add(live.db.dialect)
    try:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {live.tokens['admin']}"},
            excluded_checks=SKIPPED_CHECKS,
            additional_checks=[valid_data_accepted, invalid_data_rejected],
            timeout=30,
        )
    except BaseException:
        _failed.add(label)
        raise
    finally:
        _seconds[label] += time.perf_counter() - started


def test_openapi_document_covers_every_api_route() -> None:
    # The fuzz reaches only what the document lists: every route under /api and the exports must be there.
    assert {"POST /api/v1/alerts", "GET /api/v1/events", "GET /metrics", "GET /healthz"} <= set(OPERATIONS)
    assert len(OPERATIONS) == 38, OPERATIONS


# ---- regressions: each line was a finding, now a fixed answer ----------------------------------------


def _long_url() -> str:
    return "http://" + "a" * 60 + "." + ".".join(["b" * 60] * 33) + ".example/"


REGRESSIONS: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    # (what was wrong and who found it, method, path, request kwargs, expected status, text the answer holds)
    ("schemathesis: 405 Allow named only the first route", "OPTIONS", "/api/v1/tokens", {}, 405, "GET, POST"),
    ("schemathesis: non-UTF-8 body was an undocumented 400", "POST", "/api/v1/tokens",
     {"content": b"Y\xff\xfe", "headers": {"content-type": "application/json"}}, 422, "json_invalid"),
    ("schemathesis: numeric string read as a 1970 datetime", "GET", "/api/v1/cases?until=0.5", {}, 422,
     "datetime_iso8601"),
    ("schemathesis: bool read as a number", "POST", "/api/v1/cameras/cam-1/status",
     {"json": {"status": "online", "analysis_fps": False}}, 422, "float_type"),
    ("schemathesis: GeoJSON media type missing from the document", "GET", "/openapi.json", {}, 200,
     "application/geo+json"),
    ("review: counter beyond BIGINT (bind overflow: 500)", "POST", "/api/v1/cameras/cam-1/status",
     {"json": {"status": "online", "frames_dropped": 2**63}}, 422, "less_than_equal"),
    ("review: NUL in a body string (PostgreSQL: 500)", "POST", "/api/v1/tokens",
     {"json": {"role": "operator", "name": "a\x00b"}}, 422, "string_unstorable"),
    ("review: NUL in a path parameter (PostgreSQL: connection dropped)", "GET", "/api/v1/cases/a%00b", {}, 422,
     "string_unstorable"),
    ("schemathesis: a one-value query parameter given twice was cut to its last value", "GET",
     "/api/v1/webhooks/deliveries?endpoint=a&endpoint=", {}, 422, "repeated"),
    ("a repeatable filter may be given twice", "GET", "/api/v1/cases?status=filed&status=dispatched", {}, 200, "items"),
    ("review: NUL in a query parameter (PostgreSQL: 500)", "GET", "/api/v1/cases?camera=a%00b", {}, 422,
     "string_unstorable"),
    ("review: NUL in an alert record (PostgreSQL: connection dropped)", "POST", "/api/v1/alerts",
     {"json": alert(zone="side\x00walk")}, 422, "string_unstorable"),
    ("review: superscript digit as Last-Event-ID (int(): 500)", "GET", "/api/v1/events",
     {"headers": {"last-event-id": b"\xb2"}}, 200, "retry:"),
    ("review: 21-digit Last-Event-ID (bind overflow: 500)", "GET", "/api/v1/events",
     {"headers": {"last-event-id": "9" * 21}}, 200, "retry:"),
    ("review: webhook URL longer than its column (PostgreSQL: 500)", "POST", "/api/v1/webhooks",
     {"json": {"team": "team-a", "url": _long_url()}}, 422, "2048"),
    ("review: time without a UTC equivalent (OverflowError: 500)", "GET",
     "/api/v1/cases?since=0001-01-01T00:00:00%2B14:00", {}, 422, "datetime_out_of_range"),
    ("review: time near year 9999 (deadline overflow: 500)", "POST", "/api/v1/alerts",
     {"json": alert(alerted_at="9999-12-31T23:00:00+00:00")}, 422, "datetime_out_of_range"),
    ("guard: JSON nested past the recursion limit (NUL check)", "GET", "/api/v1/whoami",
     {"content": b"[" * 100_000, "headers": {"content-type": "application/json"}}, 200, "admin"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "method", "path", "kwargs", "status", "text"), REGRESSIONS, ids=[row[0] for row in REGRESSIONS]
)
def test_regressions(
    live: LiveServer, what: str, method: str, path: str, kwargs: dict[str, Any], status: int, text: str
) -> None:
    with live.client("admin") as admin:
        response = admin.request(method, path, **kwargs)
    assert response.status_code == status, (what, response.text)
    assert text in response.text + response.headers.get("allow", ""), (what, response.text)


@pytest.mark.parametrize(
    ("record_change", "status"),
    [
        ({}, 201),
        ({"bbox": [101.0, 388, 230, 512]}, 201),  # JSON Schema's integer includes 101.0
        ({"source": {"uri": "clip.mp4", "frame": False}}, 422),  # was frame 0
        ({"confidence": "0.87"}, 422),  # was a number
        ({"started_at": 12}, 422),  # was 1970-01-01T00:00:12Z
        ({"zone": "side\x00walk"}, 422),  # PostgreSQL cannot store NUL
    ],
)
def test_ingest_takes_exact_json_types(live: LiveServer, record_change: dict[str, Any], status: int) -> None:
    with live.client("camera") as camera:
        response = camera.post("/api/v1/alerts", json=alert(**record_change))
    assert response.status_code == status, response.text


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_in_memory_sqlite_is_refused_with_a_message(url: str) -> None:
    # Found while building this module: create_database crashed with a TypeError on pool arguments.
    with pytest.raises(InputError, match="in-memory SQLite"):
        create_database(url)


def test_the_fuzzed_server_still_works(live: LiveServer) -> None:
    # Whatever the fuzz did (revoked spare tokens, moved cases), the service answers and its data reads.
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.tokens['admin']}"}) as admin:
        assert admin.get("/healthz").json()["status"] == "ok"
        cases = admin.get("/api/v1/cases", params={"limit": 500})
        assert cases.status_code == 200 and cases.json()["total"] >= len(KNOWN["case_id"])
