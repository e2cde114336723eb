"""Property tests (hypothesis): ingest never fails with 500 on any JSON, idempotency ignores formatting,
retry delays stay within their jitter bounds. ``STREETWATCH_FUZZ_EXAMPLES`` raises the example count."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.config import Settings
from service.relay import Relay
from tests.service.helpers import LiveServer, alert

EXAMPLES = int(os.environ.get("STREETWATCH_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = sorted(alert())


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    record = alert()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["replace", "delete", "add"]))
        field = draw(st.sampled_from(FIELDS))
        if kind == "replace":
            record[field] = draw(json_values)
        elif kind == "delete":
            record.pop(field, None)
        else:
            record[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    return record


@pytest.fixture(scope="module")
def camera(shared_server: LiveServer) -> Any:
    with shared_server.client("camera") as client:
        yield client


@FUZZ
@given(record=mutated_records())
def test_fuzz_ingest_answers_4xx_never_5xx(camera: httpx.Client, record: dict[str, Any]) -> None:
    response = camera.post("/api/v1/alerts", content=json.dumps(record), headers={"content-type": "application/json"})
    assert response.status_code in (200, 201, 409, 422), response.text
    if response.status_code == 422:
        assert isinstance(response.json()["detail"], list)


@FUZZ
@given(data=st.data())
def test_fuzz_key_order_and_whitespace_do_not_break_idempotency(camera: httpx.Client, data: st.DataObject) -> None:
    record = alert()
    assert camera.post("/api/v1/alerts", json=record).status_code == 201
    keys = data.draw(st.permutations(list(record)))
    indent = data.draw(st.sampled_from([None, 0, 2]))
    body = json.dumps({key: record[key] for key in keys}, indent=indent, ensure_ascii=data.draw(st.booleans()))
    again = camera.post("/api/v1/alerts", content=body, headers={"content-type": "application/json"})
    assert again.status_code == 200


@FUZZ
@given(
    attempts=st.integers(min_value=1, max_value=60),
    seed=st.integers(),
    base=st.floats(0.01, 100),
    cap=st.floats(1, 1e5),
)
def test_fuzz_backoff_stays_within_jitter_bounds(attempts: int, seed: int, base: float, cap: float) -> None:
    relay = Relay.__new__(Relay)  # only the backoff arithmetic, no database or threads
    relay.settings = Settings(retry_base_s=base, retry_cap_s=cap)
    relay.rng = random.Random(seed)
    nominal = min(cap, base * 2 ** (attempts - 1))
    assert nominal / 2 <= relay.backoff_s(attempts) <= nominal
