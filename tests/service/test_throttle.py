"""Throttling of failed authentication per client address: the sliding window itself (table-driven, on
the service's fake clock), then the real app over loopback HTTP, each client from its own 127.0.0.x."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from service.core.throttle import AuthThrottle
from tests.service.helpers import FakeClock, LiveServer, settings_for, start_server

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

# ---- the window --------------------------------------------------------------------------------------

# Steps: ("fail", client) records a failure, ("wait", seconds) moves the clock, ("check", client, expected)
# asserts retry_after_s (None: not blocked).
WINDOW_CASES: dict[str, tuple[int, list[tuple[Any, ...]]]] = {
    "nine failures are not blocked": (10, [*[("fail", "a")] * 9, ("check", "a", None)]),
    "the tenth blocks for the window": (10, [*[("fail", "a")] * 10, ("check", "a", 60)]),
    "the block shrinks as time passes": (10, [*[("fail", "a")] * 10, ("wait", 45.5), ("check", "a", 15)]),
    "and ends when the oldest failure leaves": (10, [*[("fail", "a")] * 10, ("wait", 60), ("check", "a", None)]),
    "spread failures never block": (10, [*[("fail", "a"), ("wait", 7)] * 12, ("check", "a", None)]),
    "the window slides, it does not reset": (
        10,
        [
            *[("fail", "a")] * 5,
            ("wait", 50),
            *[("fail", "a")] * 5,
            ("check", "a", 10),
            ("wait", 10),
            ("check", "a", None),
            ("fail", "a"),
            ("wait", 49),
            ("fail", "a"),
            ("check", "a", None),
        ],
    ),
    "other clients are not affected": (10, [*[("fail", "a")] * 10, ("check", "b", None), ("check", "a", 60)]),
    "a limit of 0 turns it off": (0, [*[("fail", "a")] * 50, ("check", "a", None)]),
    "a limit of 1 blocks at once": (1, [("fail", "a"), ("check", "a", 60)]),
}


@pytest.mark.parametrize(("limit", "steps"), list(WINDOW_CASES.values()), ids=list(WINDOW_CASES))
def test_window(limit: int, steps: list[tuple[Any, ...]]) -> None:
    clock = FakeClock(START)
    throttle = AuthThrottle(max_failures=limit, window_s=60, clock=clock)
    for step in steps:
        if step[0] == "fail":
            throttle.record_failure(step[1])
        elif step[0] == "wait":
            clock.advance(step[1])
        else:
            assert throttle.retry_after_s(step[1]) == step[2], step


def test_memory_stays_bounded_under_a_spray_of_addresses() -> None:
    throttle = AuthThrottle(max_failures=3, window_s=60, clock=FakeClock(START), max_clients=100)
    for n in range(1000):
        throttle.record_failure(f"10.0.{n // 256}.{n % 256}")
    assert throttle.tracked_clients() == 100
    for _ in range(3):
        throttle.record_failure("10.0.3.231")  # the newest addresses are kept
    assert throttle.retry_after_s("10.0.3.231") == 60


# ---- the app -----------------------------------------------------------------------------------------

_addresses = (f"127.0.0.{n}" for n in itertools.count(2))


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, clock: FakeClock) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("throttle") / "streetwatch.db"
    server = start_server(
        settings_for(f"sqlite:///{path}", auth_failures_max=10, auth_failure_window_s=60), clock=clock
    )
    yield server
    server.stop()
    server.db.dispose()


def client_from(live: LiveServer, address: str, token: str | None = None, **kwargs: Any) -> httpx.Client:
    """A client whose connections come from ``address`` (Linux routes all of 127/8 to loopback)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=live.url, headers=headers, transport=transport, timeout=30, **kwargs)


def _bearer(live: LiveServer, client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})


def _cookie(live: LiveServer, client: httpx.Client, token: str) -> httpx.Response:
    client.cookies.set("streetwatch_session", token)
    try:
        return client.get("/api/v1/whoami")
    finally:
        client.cookies.clear()


def _login_form(live: LiveServer, client: httpx.Client, token: str) -> httpx.Response:
    return client.post(
        "/login", content=f"token={token}", headers={"content-type": "application/x-www-form-urlencoded"}
    )


CHANNELS = {"bearer token": _bearer, "session cookie": _cookie, "login form": _login_form}
# (channel, status of a failed attempt, status of a good one): the login form answers a redirect.
EXPECTED = {"bearer token": (401, 200), "session cookie": (401, 200), "login form": (401, 303)}


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_ten_failures_in_a_minute_block_the_address_until_the_window_passes(
    live: LiveServer, clock: FakeClock, channel: str
) -> None:
    attempt = CHANNELS[channel]
    failed, good = EXPECTED[channel]
    address, neighbour = next(_addresses), next(_addresses)
    with client_from(live, address) as client, client_from(live, neighbour) as other:
        statuses = [attempt(live, client, "sw_guess-" + str(n)).status_code for n in range(10)]
        assert statuses == [failed] * 10
        clock.advance(20)
        blocked = attempt(live, client, "sw_guess-11")
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "40"
        # Blocked means blocked: even the right token is not looked up from this address ...
        assert attempt(live, client, live.tokens["operator"]).status_code == 429
        # ... while another address signs in as usual, and may fail on its own account.
        assert attempt(live, other, live.tokens["operator"]).status_code == good
        assert attempt(live, other, "sw_wrong").status_code == failed
        clock.advance(40)
        assert attempt(live, client, live.tokens["operator"]).status_code == good


@pytest.mark.parametrize(
    ("what", "request_kwargs"),
    [
        ("successful requests", {"method": "GET", "url": "/api/v1/whoami", "headers": "VALID"}),
        ("requests without credentials", {"method": "GET", "url": "/api/v1/cases"}),
        ("the login page with a stale cookie", {"method": "GET", "url": "/login", "cookies": "STALE"}),
        ("public health checks", {"method": "GET", "url": "/healthz"}),
    ],
)
def test_only_failed_authentication_counts(live: LiveServer, what: str, request_kwargs: dict[str, Any]) -> None:
    kwargs = dict(request_kwargs)
    if kwargs.get("headers") == "VALID":
        kwargs["headers"] = {"Authorization": f"Bearer {live.tokens['camera']}"}
    if kwargs.get("cookies") == "STALE":
        kwargs.pop("cookies")
        kwargs["headers"] = {"Cookie": "streetwatch_session=sw_stale"}
    with client_from(live, next(_addresses)) as client:
        statuses = {client.request(**kwargs).status_code for _ in range(30)}
        assert 429 not in statuses, what
        assert _bearer(live, client, live.tokens["operator"]).status_code == 200, what


def test_a_blocked_address_still_reaches_the_login_page(live: LiveServer) -> None:
    with client_from(live, next(_addresses)) as client:
        for n in range(10):
            _bearer(live, client, f"sw_guess-{n}")
        assert _bearer(live, client, "sw_guess").status_code == 429
        page = client.get("/login")
        assert page.status_code == 200
        refused = _login_form(live, client, live.tokens["operator"])
        assert refused.status_code == 429 and "Try again in" in refused.text and "retry-after" in refused.headers


def test_every_secured_operation_documents_429_with_retry_after(live: LiveServer) -> None:
    with client_from(live, next(_addresses), live.tokens["admin"]) as admin:
        document = admin.get("/openapi.json").json()
    secured = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()
               if "security" in op]  # fmt: skip
    assert len(secured) > 20
    for path, method, op in secured:
        assert "Retry-After" in op["responses"]["429"]["headers"], (method, path)
