"""Damaged input through the real console script (DESIGN §3.4b, issue #8).

The corpus is made at test time (no binaries in git) from one FFmpeg test clip per container: whole files,
files cut at 50 % and 90 %, files with 4 KB of random bytes written over them at 40 % and 60 %, random
bytes, an empty file, a JPEG named .mp4, a missing file, and an image folder with one corrupt image.
Where each file is damaged is worked out independently of the code under test, from ffprobe's packet
table of the whole file (byte position → video time), so the tests can check that no incident is
carried past a damage point.

Single files are audited with ``--detections-from`` (no model, so each run costs about a second); the
multi-file run uses the untrained model so the ordinary decode path (key frames only) is covered too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from detector.video.sources import VideoFile, open_fast_source, open_source
from tests.conftest import STREETWATCH, make_test_video, report_count, run_cli

CLIP_S = 20
FPS = 25
WIDTH, HEIGHT = 320, 180
DWELL_S = 2
TIMEOUT_S = 60
START = "2026-11-27T09:00:00+08:00"
# Frames around a damaged packet may show its damage too (B-frames are displayed before the packet they
# reference), and decoding is one frame late to notice it: times are compared within this margin.
MARGIN_S = 0.25
OVERWRITE_AT = (0.4, 0.6)
OVERWRITE_BYTES = 4096
FOLDER_IMAGES = 7
CORRUPT_IMAGE = 3
MULTI_SAMPLE_FPS = 0.5  # the multi-file audit runs the (untrained) model: few frames keep it quick

# One stall stays the whole clip; five short-lived stalls appear one after another elsewhere.
LONG_BOX = [270.0, 30.0, 310.0, 90.0]


def _short_box(k: int) -> list[float]:
    return [10.0 + 50 * k, 80.0, 50.0 + 50 * k, 140.0]


def _visible(t: float) -> list[dict[str, Any]]:
    detections = [{"xyxy": LONG_BOX, "class": "stall", "conf": 0.9, "track_id": 1}]
    k = int(t // 4)
    if k < 5:
        detections.append({"xyxy": _short_box(k), "class": "stall", "conf": 0.9, "track_id": 10 + k})
    return detections


# What a whole clip must give: (start, alert, end) per incident; end null when seen in the last frame.
WHOLE_CLIP_ALERTS = sorted(
    [(0.0, float(DWELL_S), None)] + [(4.0 * k, 4.0 * k + DWELL_S, 4.0 * k + 3 if k < 4 else None) for k in range(5)],
    key=lambda row: (row[1], row[0]),
)


@dataclass
class Damaged:
    """One corpus file and what is known about its damage from the outside."""

    path: Path
    replay: Path
    damage_s: list[float] = field(default_factory=list)  # video times where damage begins
    cut_s: float | None = None  # the file breaks off here


@dataclass
class Corpus:
    root: Path
    camera: Path
    files: dict[str, Damaged]
    packets: dict[str, list[tuple[float, int, int, bool]]]


def _packets(video: Path) -> list[tuple[float, int, int, bool]]:
    """(pts seconds, byte position, size, is key frame) of every video packet, from ffprobe."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe is not installed")
    fields = "packet=pts_time,pos,size,flags"
    probe = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", fields, "-of", "json", str(video)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [
        (float(p["pts_time"]), int(p["pos"]), int(p["size"]), "K" in p.get("flags", ""))
        for p in json.loads(probe.stdout)["packets"]
        if p.get("pts_time") not in (None, "N/A") and p.get("pos") not in (None, "N/A")
    ]


def _first_damaged_t(packets: list[tuple[float, int, int, bool]], start: int, end: int) -> float | None:
    """Earliest time among packets that overlap bytes [start, end)."""
    hit = [t for t, pos, size, _ in packets if pos < end and pos + size > start]
    return min(hit) if hit else None


def _write_replay(path: Path, times: list[float], frame_of: Any) -> Path:
    lines: list[dict[str, Any]] = [{"meta": {"video": "clip", "fps": float(FPS), "width": WIDTH, "height": HEIGHT}}]
    lines += [{"frame": frame_of(t), "t": t, "detections": _visible(t)} for t in times]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("damage")
    camera = root / "camera.yaml"
    config = {
        "id": "cam-damage-01",
        "name": "damage corpus",
        "source": "clip.mp4",
        "timezone": "Asia/Shanghai",
        "location": {"lon": 118.7969, "lat": 32.0603},
        "zones": [
            {
                "name": "sidewalk",
                "polygon": [[0.0, 0.1], [1.0, 0.1], [1.0, 1.0], [0.0, 1.0]],
                "relative": True,
                "categories": ["street_vending"],
                "dwell_s": DWELL_S,
            }
        ],
    }
    camera.write_text(yaml.safe_dump(config), encoding="utf-8")
    video_replay = _write_replay(root / "video.jsonl", [float(s) for s in range(CLIP_S)], lambda t: round(t * FPS))
    folder_replay = _write_replay(root / "folder.jsonl", [float(i) for i in range(FOLDER_IMAGES)], round)
    rng = random.Random(8)
    files: dict[str, Damaged] = {}
    packet_tables: dict[str, list[tuple[float, int, int, bool]]] = {}
    for suffix, codec in (("mp4", "libx264"), ("avi", "mpeg4")):
        whole = make_test_video(
            root / f"whole.{suffix}", seconds=CLIP_S, size=f"{WIDTH}x{HEIGHT}", fps=FPS, codec=codec
        )
        data = whole.read_bytes()
        packets = packet_tables[suffix] = _packets(whole)
        files[whole.name] = Damaged(whole, video_replay)
        for keep in (0.5, 0.9):
            cut = root / f"cut{round(keep * 100)}.{suffix}"
            cut.write_bytes(data[: int(len(data) * keep)])
            cut_s = _first_damaged_t(packets, int(len(data) * keep), len(data))
            files[cut.name] = Damaged(cut, video_replay, damage_s=[cut_s or CLIP_S], cut_s=cut_s)
        overwritten = bytearray(data)
        damage: list[float] = []
        for where in OVERWRITE_AT:
            at = int(len(data) * where)
            overwritten[at : at + OVERWRITE_BYTES] = rng.randbytes(OVERWRITE_BYTES)
            first = _first_damaged_t(packets, at, at + OVERWRITE_BYTES)
            damage += [first] if first is not None else []
        (root / f"overwritten.{suffix}").write_bytes(bytes(overwritten))
        files[f"overwritten.{suffix}"] = Damaged(root / f"overwritten.{suffix}", video_replay, damage_s=damage)
    (root / "random.mp4").write_bytes(rng.randbytes(64 * 1024))
    (root / "empty.mp4").write_bytes(b"")
    (root / "jpeg.mp4").write_bytes(cv2.imencode(".jpg", np.zeros((HEIGHT, WIDTH, 3), np.uint8))[1].tobytes())
    for name in ("random.mp4", "empty.mp4", "jpeg.mp4", "missing.mp4"):
        files[name] = Damaged(root / name, video_replay)
    for name, corrupt in (("frames", CORRUPT_IMAGE), ("frames-first-bad", 0)):
        frames = root / name
        frames.mkdir()
        for i in range(FOLDER_IMAGES):
            cv2.imwrite(str(frames / f"{i:03d}.jpg"), np.full((HEIGHT, WIDTH, 3), 30 * i, np.uint8))
        (frames / f"{corrupt:03d}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
        files[name] = Damaged(frames, folder_replay, damage_s=[float(corrupt)])
    return Corpus(root, camera, files, packet_tables)


_OUTCOMES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _print_counts(corpus: Corpus) -> Iterator[None]:
    yield
    if _OUTCOMES:
        outcomes = ", ".join(f"{key} ×{n}" for key, n in sorted(_OUTCOMES.items()))
        report_count(f"damaged input via CLI: {len(corpus.files)} corpus files; outcomes: {outcomes}")


def _alerts(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]


def _spans(alerts: list[dict[str, Any]]) -> list[tuple[float, float, float | None]]:
    return sorted(
        ((a["video_offset_s"]["start"], a["video_offset_s"]["alert"], a["video_offset_s"]["end"]) for a in alerts),
        key=lambda row: (row[1], row[0]),
    )


def _nothing_carried_past(spans: list[tuple[float, float, float | None]], damage_s: float) -> list[Any]:
    """Incidents that were open before the damage point and still going (or alerting) after it."""
    return [
        (start, alert, end)
        for start, alert, end in spans
        if start < damage_s - MARGIN_S and (end is None or end > damage_s + MARGIN_S or alert > damage_s + MARGIN_S)
    ]


# file, exit code, what summary.json errors (exit 0) or stderr (exit 2) must say
ROWS = [
    ("whole.mp4", 0, None),
    ("whole.avi", 0, None),
    ("cut50.mp4", 0, "truncated"),
    ("cut90.mp4", 0, "truncated"),
    ("cut50.avi", 0, "truncated"),
    ("cut90.avi", 0, "truncated"),
    ("overwritten.mp4", 0, "corrupt"),
    ("overwritten.avi", 0, "corrupt"),
    ("frames", 0, "corrupt"),
    ("frames-first-bad", 0, "corrupt"),
    ("random.mp4", 2, "cannot open video"),
    ("empty.mp4", 2, "the file is empty"),
    ("jpeg.mp4", 2, "still image"),
    ("missing.mp4", 2, "file not found"),
]


@pytest.mark.parametrize(("name", "code", "expected"), ROWS, ids=[row[0] for row in ROWS])
def test_damaged_file_alone(corpus: Corpus, tmp_path: Path, name: str, code: int, expected: str | None) -> None:
    item = corpus.files[name]
    out = tmp_path / "out"
    started = time.monotonic()
    done = run_cli(
        "audit", item.path, "--detections-from", item.replay, "--camera", corpus.camera, "--out", out,
        "--start-time", START, timeout=TIMEOUT_S,
    )  # fmt: skip
    _OUTCOMES[f"exit {done.returncode}" + (f" {expected}" if done.returncode == 0 and expected else "")] += 1
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, done.stderr
    assert time.monotonic() - started < TIMEOUT_S
    if code == 2:
        assert str(item.path) in done.stderr and expected in done.stderr, done.stderr
        return
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (out / "report.html").is_file()
    spans = _spans(_alerts(out))
    if expected is None:
        assert summary["errors"] == []
        assert spans == WHOLE_CLIP_ALERTS
        return
    [error] = summary["errors"]
    # DESIGN §3.4b: every part-way break is "truncated"; "damage" says what was met.
    assert error["video"] == str(item.path) and error["error"] == "truncated" and error["damage"] == expected, error
    assert 0 < error["frames_read"] <= error["frames_expected"]
    assert str(item.path) in done.stderr  # the warning names the damaged file
    assert spans, "the readable part was not audited"
    if expected == "truncated":
        assert item.cut_s is not None and error["frames_read"] < error["frames_expected"]
        # Nothing is reported from past the damage point, and nothing is left open across it.
        late = [s for s in spans if s[1] > item.cut_s + MARGIN_S or s[2] is None or s[2] > item.cut_s + MARGIN_S]
        assert late == [], f"incidents past the damage point {item.cut_s:.2f} s: {late}"
    for damage_s in item.damage_s:
        carried = _nothing_carried_past(spans, damage_s)
        assert carried == [], f"incidents carried across the damage at {damage_s:.2f} s: {carried}"


def test_one_bad_file_never_stops_the_others(corpus: Corpus, tmp_path: Path, untrained_model: Path) -> None:
    """Bad files first, between and last; every readable file is audited to its end.

    An explicit ``--sample-fps`` makes the frames each file gives known in advance (the default path's
    key-frame spacing and detection reuse are tuning that may change); the key-frame path is checked
    on its own below."""
    order = [
        "random.mp4", "whole.mp4", "cut50.mp4", "empty.mp4", "jpeg.mp4", "overwritten.avi", "missing.mp4",
        "frames", "cut90.avi", "whole.avi", "overwritten.mp4", "random.mp4",
    ]  # fmt: skip
    paths = [corpus.files[name].path for name in order]
    out = tmp_path / "out"
    done = run_cli(
        "audit", *paths, "--camera", corpus.camera, "--out", out, "--model", untrained_model, "--start-time", START,
        "--sample-fps", str(MULTI_SAMPLE_FPS), timeout=2 * TIMEOUT_S,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["videos"] == [str(p) for p in paths]
    kinds = {
        "random.mp4": "unreadable",
        "empty.mp4": "unreadable",
        "jpeg.mp4": "unreadable",
        "missing.mp4": "unreadable",
        "cut50.mp4": "truncated",
        "cut90.avi": "truncated",
        "overwritten.avi": "corrupt",
        "overwritten.mp4": "corrupt",
        "frames": "corrupt",
    }
    expected_errors = [(str(corpus.files[n].path), kinds[n]) for n in order if n in kinds]
    assert [(e["video"], e.get("damage", e["error"])) for e in summary["errors"]] == expected_errors
    assert all(e["error"] == ("unreadable" if "damage" not in e else "truncated") for e in summary["errors"])
    for name in {n for n in order if kinds.get(n) == "unreadable"}:
        assert str(corpus.files[name].path) in done.stderr
    # Every readable file was decoded to its end: the analysed frames are those its source yields alone.
    readable = [corpus.files[n].path for n in order if kinds.get(n) != "unreadable"]
    assert summary["frames_analysed"] == sum(_frames_alone(path) for path in readable)
    assert (out / "report.html").is_file() and (out / "alerts.jsonl").is_file()
    _OUTCOMES[f"multi-file exit {done.returncode}: {len(paths)} inputs, {len(summary['errors'])} errors"] += 1


def _frames_alone(path: Path) -> int:
    return sum(1 for _ in open_source(path, sample_fps=MULTI_SAMPLE_FPS).frames())


@pytest.mark.parametrize("suffix", ["mp4", "avi"])
@pytest.mark.parametrize("keep", [0.3, 0.5, 0.7, 0.9, 0.97])
def test_key_frame_path_keeps_every_key_frame_before_the_cut(
    corpus: Corpus, tmp_path: Path, suffix: str, keep: float
) -> None:
    """The default decode path (key frames only) yields exactly the key frames stored whole before the cut.

    Found by this corpus: with frame-threaded decoding, the failed decode of the cut-off packet also threw
    away the key frames still queued in the decoder, i.e. the last seconds before the damage point.
    """
    data = corpus.files[f"whole.{suffix}"].path.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    source = open_fast_source(cut, fallback_fps=1.0)
    assert isinstance(source, VideoFile) and source.keyframes_only
    yielded = [round(frame.t, 2) for frame in source.frames()]
    whole = [t for t, pos, size, key in corpus.packets[suffix] if key and pos + size <= len(data) * keep]
    assert yielded == [round(t - whole[0], 2) for t in whole]
    assert source.report.error == "truncated" and source.report.damage_t is not None
    assert yielded[-1] <= source.report.damage_t


# --- decompression bomb -----------------------------------------------------------------------------

BOMB_SIDE = 20000
# Decoded as BGR the bomb is 1.2 GB; the audit process without a model stays far below this.
RSS_LIMIT_BYTES = 600 * 1024 * 1024


def _png_bomb(path: Path, side: int = BOMB_SIDE) -> Path:
    """A valid 1-bit greyscale side×side PNG of one colour, streamed through zlib: tens of KB on disk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


# Measuring the audit's own peak RSS needs a small parent: a child forked from this test process starts with
# this process's high-water mark (Linux carries it across fork and exec), so getrusage or wait4 here would
# report the test session's memory, not the audit's. The launcher is small, so its children's peak is the audit's.
_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, timeout=float(sys.argv[1])).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def _run_measured(args: list[str], timeout: float) -> tuple[int, str, int, float]:
    """Runs the console script; returns exit code, stderr, the audit's peak RSS (bytes) and seconds."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(timeout), STREETWATCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        env=dict(os.environ, YOLO_OFFLINE="1"),
        check=False,
    )
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    return done.returncode, done.stderr, peak_kib * 1024, time.monotonic() - started


@pytest.mark.parametrize("good_images", [0, 4], ids=["bomb-alone", "bomb-among-good"])
def test_decompression_bomb_is_refused_without_decoding_it(corpus: Corpus, tmp_path: Path, good_images: int) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(good_images):
        cv2.imwrite(str(folder / f"{2 * i:03d}.jpg"), np.full((HEIGHT, WIDTH, 3), 40, np.uint8))
    bomb = _png_bomb(folder / "001.png" if good_images else folder / "000.png")
    assert bomb.stat().st_size < 1024 * 1024
    code, stderr, peak_rss, seconds = _run_measured(
        ["audit", str(folder), "--detections-from", str(corpus.files["frames"].replay), "--camera", str(corpus.camera),
         "--out", str(tmp_path / "out"), "--start-time", START],
        timeout=TIMEOUT_S,
    )  # fmt: skip
    _OUTCOMES[f"bomb exit {code}"] += 1
    assert "Traceback" not in stderr, stderr
    assert seconds < TIMEOUT_S
    assert peak_rss < RSS_LIMIT_BYTES, f"peak RSS {peak_rss / 2**20:.0f} MiB: the bomb was decoded"
    if good_images == 0:
        assert code == 2, stderr
        assert f"{bomb}: cannot decode the first image" in stderr
    else:
        assert code == 0, stderr
        [error] = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))["errors"]
        assert error["error"] == "truncated" and error["damage"] == "corrupt" and bomb.name in error["detail"]
        assert error["frames_read"] == good_images
