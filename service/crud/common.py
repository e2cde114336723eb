"""Helpers every store module shares: canonical JSON and new ids."""

from __future__ import annotations

import json
import uuid
from typing import Any


def canonical_json(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON; storing them would break every reader later.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _new_id() -> str:
    return str(uuid.uuid4())
