"""Camera YAML fuzz (issue #8): mutated configs through ``streetwatch check`` and ``audit``.

Seeds are the sample clips' configs and the tests' valid config. Mutations act on the data (delete keys,
other types, huge/negative/NaN numbers, unicode, deep nesting, shared anchors) and on the text (YAML syntax
characters, cut lines, wrong indentation, other encodings, BOM, CRLF). Every outcome must be typed: exit 0,
or exit 2 with one paragraph on stderr naming the file; never a traceback, another exit code or a hang.
Where a mutation certainly breaks the config (a required key deleted, NaN for a number, an unknown key)
exit 2 must name the field; where it certainly keeps it valid (BOM, CRLF) exit 0 is required.

The console script's ``main()`` runs in-process for speed (``SystemExit`` caught); a few of the nastiest
inputs also go through the real console script. ``STREETWATCH_FUZZ_EXAMPLES`` scales the campaign.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, fuzz_settings, report_count, run_cli, run_cli_in_process
from tests.zones.conftest import valid_config

FUZZ = fuzz_settings(30)
EXAMPLES: int = FUZZ.max_examples
# Each run of check or audit must end well within this, whatever the input.
RUN_LIMIT_S = 20.0
MESSAGE_LIMIT = 4000
REQUIRED = ("id", "name", "source", "timezone", "location")


def _seeds() -> list[tuple[str, str]]:
    seeds = [(path.name, path.read_text(encoding="utf-8")) for path in sorted(REPO.glob("sample_videos/*.camera.yaml"))]
    seeds.append(("tests-valid", yaml.safe_dump(valid_config(), allow_unicode=True, sort_keys=False)))
    minimal = {"id": "cam-min", "name": "m", "source": 0, "timezone": "UTC", "location": {"lon": 0, "lat": 0}}
    seeds.append(("minimal", yaml.safe_dump(minimal)))
    return seeds


SEEDS = _seeds()
COUNTS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    """This module's counts, printed in the run's "reliability counts" section."""
    yield
    lines = ", ".join(f"{key} ×{n}" for key, n in sorted(COUNTS.items()))
    report_count(
        f"camera YAML fuzz: {sum(v for k, v in COUNTS.items() if k.startswith('mutation'))} mutations; {lines}"
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("config-fuzz")
    replay = [{"meta": {"video": "clip.mp4", "fps": 25.0, "width": 960, "height": 540}}]
    for second in range(30):
        boxes = [[300.0, 300.0, 380.0, 420.0], [600.0, 200.0, 700.0, 330.0]]
        replay.append(
            {
                "frame": second * 25,
                "t": float(second),
                "detections": [
                    {"xyxy": box, "class": cls, "conf": 0.8, "track_id": i + 1}
                    for i, (box, cls) in enumerate(zip(boxes, ("stall", "laundry"), strict=True))
                ],
            }
        )
    (root / "replay.jsonl").write_text("\n".join(json.dumps(line) for line in replay) + "\n", encoding="utf-8")
    return root


_run = run_cli_in_process


def _assert_typed(code: int, out: str, err: str, seconds: float, path: Path) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    assert seconds < RUN_LIMIT_S
    if code == 2:
        assert err.startswith(f"streetwatch: error: {path}"), err
        assert len(err) < MESSAGE_LIMIT and err.strip().count("\n") == 0, err  # one bounded paragraph


# --- data mutations -------------------------------------------------------------------------------------------

NASTY_TEXT = [
    "", " ", "18:00", "24:00", "25:61", "mon", "street_vending", "overlap", "-1", "1e309", "NaN", ".nan",
    "\u202eevil", "💥", "\x00", "\x1b[31m", "a" * 5000, "Asia/Shanghai", "../../etc/passwd", "rtsp://x", "0",
    "null", "~", "yes", "解放东路",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from([1e308, -1e308, math.inf, -math.inf, math.nan, -0.0, 0.5, 1e-320])
    | st.text(max_size=20)
    | st.sampled_from(NASTY_TEXT)
)


def _nested(depth: int) -> Any:
    value: Any = [0.5, 0.5]
    for _ in range(depth):
        value = [value]
    return value


wild = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
) | st.integers(min_value=20, max_value=400).map(_nested)  # fmt: skip


_MAX_PATH_DEPTH = 12
"""Deeper than any real field of a camera config; an earlier mutation may have nested 400 levels."""


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if len(prefix) >= _MAX_PATH_DEPTH:
        return found
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@dataclass
class Mutation:
    seed: str
    text: str | bytes
    ops: list[str]
    invalid_field: str | None = None  # the config certainly fails, naming this field
    stays_valid: bool = False  # the config certainly still passes


@st.composite
def data_mutations(draw: st.DrawFn) -> Mutation:
    seed, text = draw(st.sampled_from(SEEDS))
    data = yaml.safe_load(text)
    ops: list[str] = []
    invalid: str | None = None
    count = draw(st.integers(min_value=1, max_value=3))
    for _ in range(count):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        parent, key = _get(data, path[:-1]), path[-1]
        old = parent[key]
        kind = draw(st.sampled_from(["delete", "replace", "unknown-key", "not-a-number", "share"]))
        if kind == "delete":
            del parent[key]
            if path in {(k,) for k in REQUIRED} or path in {("location", "lon"), ("location", "lat")}:
                invalid = ".".join(map(str, path))
        elif kind == "replace":
            parent[key] = draw(wild)
        elif kind == "unknown-key" and isinstance(old, dict):
            old[f"x_fuzz_{draw(st.text(max_size=6))}"] = draw(scalars)
            invalid = invalid or "unknown"
        elif kind == "not-a-number" and isinstance(old, float | int) and not isinstance(old, bool):
            parent[key] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
            invalid = invalid or "number"
        elif kind == "share" and isinstance(old, dict | list):
            # The same object twice: safe_dump writes an anchor and an alias.
            other = draw(st.sampled_from(paths))
            target_parent = _get(data, other[:-1])
            if isinstance(target_parent, dict | list) and other[: len(path)] != path:  # no cycles
                target_parent[other[-1]] = old
        ops.append(f"{kind} {'.'.join(map(str, path))}")
    dumped = yaml.safe_dump(data, allow_unicode=True, sort_keys=draw(st.booleans()))
    # Only a single operation has a certain outcome: a later one could delete what an earlier one broke.
    return Mutation(seed, dumped, ops, invalid_field=invalid if count == 1 else None)


OPTIONAL = ("view_radius_m", "calibration", "grid", "exclude", "frame_size", "zones")
ZONE_OPTIONAL = ("dwell_s", "anchor", "allowed", "relative")


@st.composite
def benign_mutations(draw: st.DrawFn) -> Mutation:
    """Changes that usually keep a config valid, so that audits run on unusual but valid configs."""
    seed, text = draw(st.sampled_from(SEEDS))
    data = yaml.safe_load(text)
    ops: list[str] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["drop-optional", "rename", "dwell", "share-window", "zone-copy"]))
        zones = data.get("zones") or []
        zone = draw(st.sampled_from(zones)) if zones else None
        if kind == "drop-optional":
            data.pop(draw(st.sampled_from(OPTIONAL)), None)
        elif kind == "rename" and zone is not None:
            zone["name"] = draw(st.text(min_size=1, max_size=40).filter(str.strip))
            data["name"] = draw(st.text(min_size=1, max_size=60).filter(str.strip))
        elif kind == "dwell" and zone is not None:
            zone["dwell_s"] = draw(st.floats(min_value=0.001, max_value=7 * 86400))
        elif kind == "share-window" and zones:
            window = {"days": ["mon", "sun"], "from": "23:00", "to": "01:00"}
            for other in zones:
                other["allowed"] = [window]  # one object: dumped as an anchor and aliases
        elif kind == "zone-copy" and zone is not None:
            twin = copy.deepcopy(zone)
            twin["name"] = f"{zone['name']}-twin"
            zones.append(twin)
        ops.append(kind)
    dumped = yaml.safe_dump(data, allow_unicode=True, sort_keys=draw(st.booleans()))
    ending = draw(st.sampled_from(["", "bom", "crlf"]))
    if ending == "bom":
        dumped = "\ufeff" + dumped
    elif ending == "crlf":
        dumped = dumped.replace("\n", "\r\n")
    return Mutation(seed, dumped, [*ops, ending] if ending else ops)


# --- text mutations -------------------------------------------------------------------------------------------

YAML_TOKENS = [
    ":", ": ", "- ", "[", "]", "{", "}", ",", "&x ", "*x", "*undefined", "!!python/object/apply:os.system ['true'] ",
    "!!binary ", "%YAML 1.2\n", "|", ">", "\t", "'", '"', "#", "\x00", "\x07", "\u2028", "\ufeff", "? ", "<<: *x\n",
    "---\n", "...\n", "\n", "  ", "@", "`", "&a [*a]",
]  # fmt: skip


@st.composite
def text_mutations(draw: st.DrawFn) -> Mutation:
    seed, text = draw(st.sampled_from(SEEDS))
    kind = draw(
        st.sampled_from(["insert", "delete", "truncate", "duplicate-line", "indent", "encoding", "bom", "crlf"])
    )
    at = draw(st.integers(min_value=0, max_value=len(text)))
    lines = text.splitlines(keepends=True)
    line = draw(st.integers(min_value=0, max_value=len(lines) - 1))
    mutated: str | bytes
    stays_valid = False
    if kind == "insert":
        mutated = text[:at] + draw(st.sampled_from(YAML_TOKENS) | st.text(max_size=4)) + text[at:]
    elif kind == "delete":
        mutated = text[:at] + text[at + draw(st.integers(min_value=1, max_value=40)) :]
    elif kind == "truncate":
        mutated = text[:at]
    elif kind == "duplicate-line":
        mutated = "".join(lines[: line + 1] + lines[line:])
    elif kind == "indent":
        shift = draw(st.sampled_from([" ", "   ", "\t"]))
        lines[line] = shift + lines[line] if draw(st.booleans()) else lines[line].lstrip(" ")
        mutated = "".join(lines)
    elif kind == "encoding":
        mutated = text.encode(draw(st.sampled_from(["utf-16", "utf-32", "gb18030", "latin-1"])), errors="replace")
    elif kind == "bom":
        mutated, stays_valid = "\ufeff" + text, True
    else:
        mutated, stays_valid = text.replace("\n", "\r\n"), True
    return Mutation(seed, mutated, [kind], stays_valid=stays_valid)


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass"))
    return path


def _check(mutation: Mutation, path: Path) -> int:
    code, out, err, seconds = _run(["check", str(path)])
    COUNTS["mutation " + ("data" if mutation.ops[0].split()[0] in _DATA_KINDS else "text")] += 1
    COUNTS[f"check exit {code}"] += 1
    _assert_typed(code, out, err, seconds, path)
    if code == 0:
        assert f"{path}: camera " in out and "is valid" in out
    if mutation.stays_valid:
        assert code == 0, (mutation.ops, err)
    if mutation.invalid_field is not None:
        assert code == 2, mutation.ops
        if mutation.invalid_field not in ("unknown", "number"):
            assert f": {mutation.invalid_field}: " in err, (mutation.ops, err)
    return code


_DATA_KINDS = {"delete", "replace", "unknown-key", "not-a-number", "share"}
_DATA_KINDS |= {"drop-optional", "rename", "dwell", "share-window", "zone-copy"}


@FUZZ
@given(mutation=data_mutations())
def test_fuzz_camera_yaml_data_mutations_give_typed_outcomes(workdir: Path, mutation: Mutation) -> None:
    _check(mutation, _write(workdir / "camera.yaml", mutation.text))


@FUZZ
@given(mutation=text_mutations())
def test_fuzz_camera_yaml_text_mutations_give_typed_outcomes(workdir: Path, mutation: Mutation) -> None:
    _check(mutation, _write(workdir / "camera.yaml", mutation.text))


@settings(FUZZ, max_examples=max(5, EXAMPLES // 3))
@given(mutation=benign_mutations() | data_mutations())
def test_fuzz_camera_yaml_that_passes_check_also_audits(workdir: Path, mutation: Mutation) -> None:
    """A config that ``check`` accepts must also drive an audit: exit 0, or a typed error (e.g. calibration
    pixels outside this video's frame)."""
    camera = _write(workdir / "audited.camera.yaml", mutation.text)
    if _check(mutation, camera) != 0:
        return
    out_dir = workdir / "out"
    code, _, err, seconds = _run(
        ["audit", "--detections-from", str(workdir / "replay.jsonl"), "--camera", str(camera), "--out", str(out_dir)]
    )
    COUNTS[f"audit exit {code}"] += 1
    assert "Traceback" not in err, err
    assert code in (0, 2) and seconds < RUN_LIMIT_S, (code, err)
    if code == 0:
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        assert summary["frames_analysed"] == 30
    else:
        assert err.startswith("streetwatch: error: ") and str(camera) in err, err


# --- the nastiest, through the real console script ------------------------------------------------------------


def _laughs(levels: int = 10) -> str:
    lines = [SEEDS[-1][1].rstrip("\n"), 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join([*lines, f"zones: *a{levels - 1}"]) + "\n"


CONSOLE_ROWS = [
    ("billion-laughs", _laughs(), "expands to more than"),
    ("recursive-alias", "id: &a [*a]\nname: x\n", "refers to itself"),
    ("deep-nesting", "id: cam-1\nzones: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("python-tag", "!!python/object/apply:os.system ['touch pwned']\n", "YAML syntax error"),
    ("binary", bytes(range(256)) * 16, "not UTF-8"),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in CONSOLE_ROWS], ids=[row[0] for row in CONSOLE_ROWS])
def test_fuzz_nasty_camera_yaml_through_the_console_script(tmp_path: Path, text: str | bytes, expected: str) -> None:
    camera = _write(tmp_path / "camera.yaml", text)
    started = time.monotonic()
    done = run_cli("check", camera, cwd=tmp_path, timeout=RUN_LIMIT_S)
    COUNTS[f"console check exit {done.returncode}"] += 1
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"streetwatch: error: {camera}: ") and expected in done.stderr, done.stderr
    assert time.monotonic() - started < RUN_LIMIT_S
    assert not (tmp_path / "pwned").exists()


def test_fuzz_billion_laughs_through_audit(tmp_path: Path, workdir: Path) -> None:
    camera = _write(tmp_path / "camera.yaml", _laughs())
    done = run_cli(
        "audit", "--detections-from", workdir / "replay.jsonl", "--camera", camera, "--out", tmp_path / "out",
        timeout=RUN_LIMIT_S,
    )  # fmt: skip
    COUNTS[f"console audit exit {done.returncode}"] += 1
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{camera}: the YAML expands to more than" in done.stderr


def test_seeds_are_valid(workdir: Path) -> None:
    """The fuzz starts from configs that pass (else 'stays valid' would prove nothing)."""
    for name, text in SEEDS:
        path = _write(workdir / f"seed-{name}.yaml", text)
        code, out, err, _ = _run(["check", str(path)])
        assert code == 0 and "is valid" in out, (name, err)
