"""Detections file fuzz (issue #8): mutated JSON Lines through ``streetwatch audit --detections-from``.

A valid file (meta line, a minute of frames with tracked and untracked boxes) is mutated one line at a time:
cut short, wrong JSON types, NaN/Infinity, huge and negative numbers, missing and extra fields, binary
garbage, meta lines in the wrong place, time going backwards, and encodings that keep it valid (BOM, CRLF,
blank lines, other key order). Each mutation says what it must give: exit 0 (still valid; the audit is
written), or exit 2 with one paragraph naming the file and the line. A second campaign stacks several wild
mutations and only demands a typed outcome. ``main()`` runs in-process (``SystemExit`` caught); a few
files also go through the real console script. ``STREETWATCH_FUZZ_EXAMPLES`` scales the campaign.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import fuzz_settings, report_count, run_cli, run_cli_in_process

FUZZ = fuzz_settings(20)
EXAMPLES: int = FUZZ.max_examples
RUN_LIMIT_S = 30.0
MESSAGE_LIMIT = 4000
SECONDS = 40

CAMERA_YAML = """\
id: cam-fuzz-01
name: detections fuzz
source: clip.mp4
timezone: Asia/Shanghai
location: {lon: 118.7969, lat: 32.0603}
frame_size: [640, 360]
zones:
  - name: sidewalk
    polygon: [[0.0, 0.3], [1.0, 0.3], [1.0, 1.0], [0.0, 1.0]]
    relative: true
    categories: [street_vending, hanging_laundry]
    dwell_s: 5
"""


def _seed() -> list[dict[str, Any]]:
    """Meta, then one line a second: two tracked stalls, a laundry item; the last stretch untracked."""
    lines: list[dict[str, Any]] = [
        {
            "meta": {
                "video": "clip.mp4",
                "fps": 25.0,
                "width": 640,
                "height": 360,
                "classes": ["stall", "laundry", "structure"],
                "model": {"name": "fuzz", "sha256": "0" * 64},
            }
        }
    ]
    for second in range(SECONDS):
        detections: list[dict[str, Any]] = [
            {"xyxy": [100.0, 200.0, 180.0, 300.0], "class": "stall", "conf": 0.9, "track_id": 1},
            {"xyxy": [400.5, 180.0, 470.0, 260.25], "class": "laundry", "conf": 0.55, "track_id": 2},
        ]
        if 10 <= second < 25:
            detections.append({"xyxy": [250.0, 220.0, 330.0, 330.0], "class": "stall", "conf": 0.7, "track_id": 3})
        if second >= 30:
            for detection in detections:
                del detection["track_id"]  # the pipeline runs its own tracker on these
        lines.append({"frame": second * 25, "t": float(second), "detections": detections if second != 5 else []})
    return lines


SEED = _seed()
TRACKED_LINES = 31  # the meta line and the seconds before the untracked stretch
COUNTS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts(workdir: Path) -> Iterator[None]:
    """This module's counts, printed in the run's "reliability counts" section."""
    yield
    tried = sum(n for key, n in COUNTS.items() if key.startswith("mutation"))
    kinds = ", ".join(f"{key} ×{n}" for key, n in sorted(COUNTS.items()))
    report_count(f"detections JSONL fuzz: {tried} mutated files; {kinds}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("detections-fuzz")
    (root / "camera.yaml").write_text(CAMERA_YAML, encoding="utf-8")
    return root


_run = run_cli_in_process


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # NaN and Infinity are written as JSON's common extension


@dataclass
class Mutated:
    kind: str
    data: bytes
    line: int | None = None  # exit 2 naming this line; None: still valid
    fragment: str = ""  # and saying this
    frames: int = SECONDS  # frame lines an accepted file holds


NOT_NUMBERS: list[Any] = ["1", "abc", True, False, [], {}, None, [1.0]]
NOT_INTEGERS: list[Any] = [*NOT_NUMBERS, 2.5, 25.0]
NUMBER_FIELDS = ("t", "conf", "xyxy.0", "xyxy.3")
NON_FINITE = [math.nan, math.inf, -math.inf]


def _lines(lines: list[str], *, ending: str = "\n") -> bytes:
    return "".join(line + ending for line in lines).encode("utf-8")


@st.composite
def single_mutations(draw: st.DrawFn) -> Mutated:
    """One mutation with a known outcome."""
    lines = [dict(line) for line in json.loads(json.dumps(SEED))]
    frame_index = draw(st.integers(min_value=1, max_value=SECONDS))  # a frame line (line 1 is meta)
    line_no = frame_index + 1
    frame = lines[frame_index]
    detection = frame["detections"][0] if frame["detections"] else None
    kind = draw(
        st.sampled_from(
            [
                "truncate", "wrong-type", "non-finite", "huge", "negative", "missing-field", "extra-field",
                "binary", "bom", "crlf", "blank-lines", "key-order", "backwards", "meta-moved", "meta-bad",
                "unknown-class", "reversed-box", "huge-integer-text", "nested",
            ]
        )
    )  # fmt: skip
    text = [_dump(line) for line in lines]

    def invalid(fragment: str, at: int = line_no) -> Mutated:
        return Mutated(kind, _lines(text), at, fragment)

    if kind == "truncate":
        text[frame_index] = text[frame_index][: draw(st.integers(min_value=1, max_value=len(text[frame_index]) - 1))]
        return invalid("invalid JSON")
    if kind in ("wrong-type", "non-finite", "huge", "negative") and detection is not None:
        field = draw(st.sampled_from(["frame", "track_id", *NUMBER_FIELDS]))
        if kind == "wrong-type":
            choices = NOT_INTEGERS if field in ("frame", "track_id") else NOT_NUMBERS
            value = draw(st.sampled_from([c for c in choices if not (field == "track_id" and c is None)]))
        elif kind == "non-finite":
            value = draw(st.sampled_from(NON_FINITE))
        elif kind == "huge":
            value = draw(st.sampled_from([10**20, 1e300, 2**64, 1e10]))
        else:
            value = draw(st.sampled_from([-1, -0.5, -1e9]))
            if field.startswith("xyxy"):
                value = -1e9  # small negative coordinates are fine (boxes leave the frame)
        _set(frame, detection, field, value)
        text[frame_index] = _dump(frame)
        return invalid(field.split(".")[0])
    if kind == "missing-field":
        field = draw(st.sampled_from(["frame", "t", "detections", "xyxy", "class", "conf", "track_id"]))
        if field in ("frame", "t", "detections"):
            del frame[field]
        elif detection is not None:
            detection.pop(field, None)  # some seed detections carry no track_id at all
        text[frame_index] = _dump(frame)
        if field == "track_id" or (detection is None and field not in ("frame", "t", "detections")):
            return Mutated(kind, _lines(text))  # track_id may be absent
        return invalid(field)
    if kind == "extra-field":
        frame[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in frame and k != "meta"))] = draw(wild)
        if detection is not None:
            detection["x_note"] = draw(wild)
        lines[0]["meta"]["x_source"] = "fuzz"
        text = [_dump(line) for line in lines]
        return Mutated(kind, _lines(text))
    if kind == "binary":
        garbage = draw(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and not _is_utf8(b)))
        data = _lines(text[:frame_index]) + garbage + b"\n" + _lines(text[frame_index + 1 :])
        return Mutated(kind, data, line_no, "not UTF-8")
    if kind == "bom":
        return Mutated(kind, b"\xef\xbb\xbf" + _lines(text))
    if kind == "crlf":
        return Mutated(kind, _lines(text, ending="\r\n"))
    if kind == "blank-lines":
        text.insert(frame_index, draw(st.sampled_from(["", " ", "\t", "  \t "])))
        return Mutated(kind, _lines(text))
    if kind == "key-order":
        text = [json.dumps(line, sort_keys=True, indent=None, separators=(" , ", " : ")) for line in lines]
        return Mutated(kind, _lines(text))
    if kind == "backwards" and frame_index > 1:
        frame["t"] = lines[frame_index - 1]["t"] - 0.5
        text[frame_index] = _dump(frame)
        return invalid("goes back in time")
    if kind == "meta-moved" and frame_index > 1:
        text.insert(frame_index, text.pop(0))
        return invalid("meta must be the first line")
    if kind == "meta-bad":
        field, value = draw(
            st.sampled_from(
                [("fps", -25), ("fps", 0), ("fps", math.inf), ("fps", 1e300), ("width", 0), ("width", 10**9),
                 ("height", "360"), ("video", "x" * 5000), ("model", {"name": "n" * 500}), ("model", {"sha256": 5}),
                 ("model", "fuzz")]
            )
        )  # fmt: skip
        lines[0]["meta"][field] = value
        text[0] = _dump(lines[0])
        return invalid(f"meta.{field}", 1)
    if kind == "unknown-class" and detection is not None:
        detection["class"] = draw(st.sampled_from(["car", "Stall", "", "x" * 10_000, "stall "]))
        text[frame_index] = _dump(frame)
        return invalid("unknown class")
    if kind == "reversed-box" and detection is not None:
        x1, y1, x2, y2 = detection["xyxy"]
        detection["xyxy"] = [x2, y1, x1, y2]
        text[frame_index] = _dump(frame)
        return invalid("x1 <= x2")
    if kind == "huge-integer-text":
        text[frame_index] = text[frame_index].replace('"frame": ', '"frame": ' + "9" * 5000, 1)
        return invalid("invalid JSON")
    if kind == "nested":
        text[frame_index] = "[" * 100_000 + "]" * 100_000
        return invalid("JSON nested too deeply")
    return Mutated("unchanged", _lines(text))


def _set(frame: dict[str, Any], detection: dict[str, Any], field: str, value: Any) -> None:
    if field in ("frame", "t"):
        frame[field] = value
    elif field.startswith("xyxy"):
        detection["xyxy"][int(field.split(".")[1])] = value
    else:
        detection[field] = value


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["stall", "laundry", "structure", "meta", "frame", "\ufeff", "\x00"])
)
wild = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def wild_mutations(draw: st.DrawFn) -> bytes:
    """Several mutations stacked: any value anywhere, lines cut, swapped, doubled or replaced by bytes."""
    lines: list[Any] = json.loads(json.dumps(SEED))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        target = lines[index]
        kind = draw(st.sampled_from(["value", "key", "line", "swap", "double"]))
        if kind == "value" and isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            inner = target[key]
            if isinstance(inner, list) and inner and isinstance(inner[0], dict) and draw(st.booleans()):
                inner[0][draw(st.sampled_from(["xyxy", "class", "conf", "track_id"]))] = draw(wild)
            else:
                target[key] = draw(wild)
        elif kind == "key" and isinstance(target, dict):
            target[draw(st.text(max_size=6))] = draw(wild)
        elif kind == "line":
            lines[index] = draw(wild)
        elif kind == "swap":
            other = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        else:
            lines.insert(index, lines[index])
    body = "".join(_dump(line) + "\n" for line in lines).encode("utf-8", errors="surrogatepass")
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    return body[:cut] + draw(st.binary(max_size=8)) + body[cut:] if draw(st.booleans()) else body


coordinate = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.sampled_from([0.0, -0.0, 1e6, -1e6, 640.0])


@st.composite
def odd_boxes(draw: st.DrawFn) -> dict[str, Any]:
    x1, x2 = sorted(draw(st.tuples(coordinate, coordinate)))
    y1, y2 = sorted(draw(st.tuples(coordinate, coordinate)))
    if draw(st.booleans()):
        x2, y2 = x1, y1  # a box of no size
    box: dict[str, Any] = {
        "xyxy": [x1, y1, x2, y2],
        "class": draw(st.sampled_from(["stall", "laundry", "structure"])),
        "conf": draw(st.sampled_from([0.0, 1.0, 5e-324]) | st.floats(min_value=0, max_value=1)),
    }
    track = draw(st.none() | st.sampled_from([0, 1, 2**53]) | st.integers(min_value=0, max_value=2**53))
    if track is not None:
        box["track_id"] = track
    return box


@st.composite
def odd_but_valid(draw: st.DrawFn) -> tuple[bytes, int]:
    """Files the contract allows, with values at its edges: boxes of no size or at the bounds, the same track
    id twice in a frame or changing class, repeated times, huge time jumps, many boxes, frames out of order."""
    lines: list[dict[str, Any]] = [SEED[0]]
    t = 0.0
    for _ in range(draw(st.integers(min_value=1, max_value=25))):
        t += draw(st.sampled_from([0.0, 1e-9, 0.04, 1.0, 30.0, 1e6]))
        t = min(t, 1e9)
        boxes = draw(st.lists(odd_boxes(), max_size=6))
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            boxes = boxes * 40  # a crowded frame
        lines.append({"frame": draw(st.integers(min_value=0, max_value=2**53)), "t": t, "detections": boxes})
    return _lines([_dump(line) for line in lines]), len(lines) - 1


@settings(FUZZ, max_examples=max(5, EXAMPLES // 2))
@given(case=odd_but_valid())
def test_fuzz_detections_file_odd_but_valid_values_audit(workdir: Path, case: tuple[bytes, int]) -> None:
    data, frames = case
    COUNTS["mutation odd-but-valid"] += 1
    _, code, _, stderr = _audit(workdir, data)
    assert code == 0, stderr
    summary = json.loads((workdir / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["frames_analysed"] == frames
    for line in (workdir / "out" / "alerts.jsonl").read_text(encoding="utf-8").splitlines():
        json.loads(line, parse_constant=_not_json)  # records stay strict JSON: no NaN or Infinity


def _not_json(token: str) -> None:
    raise AssertionError(f"alert record holds {token}, which is not JSON")


def _audit(workdir: Path, data: bytes) -> tuple[Path, int, str, str]:
    path = workdir / "detections.jsonl"
    path.write_bytes(data)
    out = workdir / "out"
    code, stdout, stderr, seconds = _run(
        ["audit", "--detections-from", str(path), "--camera", str(workdir / "camera.yaml"), "--out", str(out)]
    )
    COUNTS[f"exit {code}"] += 1
    assert "Traceback" not in stderr, stderr
    assert code in (0, 2), (code, stderr)
    assert seconds < RUN_LIMIT_S
    if code == 2:
        assert stderr.startswith("streetwatch: error: ") and len(stderr) < MESSAGE_LIMIT, stderr
        assert stderr.strip().count("\n") == 0, stderr  # one paragraph
    return path, code, stdout, stderr


@FUZZ
@given(mutated=single_mutations())
def test_fuzz_detections_file_mutation_gives_its_outcome(workdir: Path, mutated: Mutated) -> None:
    COUNTS[f"mutation {mutated.kind}"] += 1
    path, code, _, stderr = _audit(workdir, mutated.data)
    if mutated.line is None:
        assert code == 0, (mutated.kind, stderr)
        summary = json.loads((workdir / "out" / "summary.json").read_text(encoding="utf-8"))
        assert summary["frames_analysed"] == mutated.frames
        assert sum(summary["alerts"].values()) >= 2  # the stall and the laundry item stay all along
    else:
        assert code == 2, mutated.kind
        prefix = f"streetwatch: error: {path}: line {mutated.line}: "
        assert stderr.startswith(prefix) and mutated.fragment in stderr, (mutated.kind, stderr)


@FUZZ
@given(data=wild_mutations())
def test_fuzz_detections_file_wild_mutations_give_typed_outcomes(workdir: Path, data: bytes) -> None:
    COUNTS["mutation wild"] += 1
    path, code, _, stderr = _audit(workdir, data)
    if code == 2:
        assert str(path) in stderr or "frame size is unknown" in stderr, stderr


CONSOLE_ROWS = [
    # Tracked lines only, so that the run needs no tracker (and no torch import).
    ("bom-crlf", b"\xef\xbb\xbf" + _lines([_dump(line) for line in SEED[:TRACKED_LINES]], ending="\r\n"), 0, ""),
    ("binary", bytes(range(256)) * 8, 2, "line 1: "),
    ("nested", _lines([_dump(SEED[0]), "[" * 100_000 + "]" * 100_000]), 2, "line 2: JSON nested too deeply"),
    ("huge-int", _lines([_dump(SEED[0]), '{"frame": ' + "9" * 5000 + ', "t": 0, "detections": []}']), 2, "line 2: "),
]


@pytest.mark.parametrize(
    ("data", "code", "fragment"), [row[1:] for row in CONSOLE_ROWS], ids=[row[0] for row in CONSOLE_ROWS]
)
def test_fuzz_detections_file_through_the_console_script(tmp_path: Path, data: bytes, code: int, fragment: str) -> None:
    camera = tmp_path / "camera.yaml"
    camera.write_text(CAMERA_YAML, encoding="utf-8")
    detections = tmp_path / "detections.jsonl"
    detections.write_bytes(data)
    done = run_cli(
        "audit", "--detections-from", detections, "--camera", camera, "--out", tmp_path / "out", timeout=RUN_LIMIT_S
    )
    COUNTS[f"console exit {done.returncode}"] += 1
    assert done.returncode == code and "Traceback" not in done.stderr, done.stderr
    if code == 2:
        assert done.stderr.startswith(f"streetwatch: error: {detections}: {fragment}"), done.stderr
    else:
        assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames_analysed"] == TRACKED_LINES - 1
