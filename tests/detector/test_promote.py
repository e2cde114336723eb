"""`streetwatch model promote`: the gate between a retrained candidate and the default model.

The shipped default (models/streetwatch-v2) is the "current" model, always from a copy in a tmp models
folder; the city's dataset is rendered scenes (small images). Candidates: the very same weights (equal on
every class, so promoted, also when thresholds calibrated on the split would change a sample clip: then
the current thresholds are used), a yolov8n trained from its yaml for one epoch at 64 px (worse, refused),
and bad input (exit 2). The commands run in this process so that each model's evaluation and clip audits are done
once (``detector.training.promote`` remembers them) however many cases use it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import detector.training.promote as promote_module
from detector.audit.sample_clips import ClipCheck, compare, sample_clips
from detector.model.wrapper import MODELS_DIR, default_card, read_card, sha256_of
from detector.training.dataset import TEST_SEED0, VAL_SEED0, write_dataset
from detector.training.promote import (
    MIN_CALIBRATION_IMAGES,
    ClassRow,
    ClipResult,
    Outcome,
    Thresholds,
    Trial,
    default_name,
    newest_created,
    settle_thresholds,
)
from tests.conftest import run_cli, run_cli_in_process
from zones.errors import InputError

CURRENT = read_card(MODELS_DIR / "streetwatch-v2.yaml")
CLIPS = [clip.name for clip in sample_clips()]
SMALL = (320, 480)


# --- the truth comparison shared with the sample-clip gate ---------------------------------------------------


def _alert(category: str, zone: str, start: float) -> dict[str, Any]:
    return {"category": category, "zone": zone, "video_offset_s": {"start": start, "alert": start + 20, "end": None}}


def _incident(category: str, zone: str, start: float) -> dict[str, Any]:
    return {"category": category, "zone": zone, "start_s": start, "end_s": None, "lonlat": None}


@pytest.mark.parametrize(
    ("alerts", "incidents", "missed", "unexpected", "text"),
    [
        ([], [], 0, 0, "match (0 incidents)"),
        ([_alert("street_vending", "a", 12.0)], [_incident("street_vending", "a", 8.0)], 0, 0, "match (1 incident)"),
        # 5 s is the tolerance: 5.5 s late is another incident
        ([_alert("street_vending", "a", 13.5)], [_incident("street_vending", "a", 8.0)], 1, 1, "missed street_vending"),
        # right time, wrong zone or wrong category
        ([_alert("street_vending", "b", 8.0)], [_incident("street_vending", "a", 8.0)], 1, 1, "not in the truth"),
        ([_alert("hanging_laundry", "a", 8.0)], [_incident("street_vending", "a", 8.0)], 1, 1, "hanging_laundry in a"),
        # one alert cannot stand for two incidents; an extra alert is a mismatch
        ([_alert("street_vending", "a", 8.0)], [_incident("street_vending", "a", 8.0)] * 2, 1, 0, "mismatch: missed"),
        ([_alert("street_vending", "a", 8.0)] * 2, [_incident("street_vending", "a", 8.0)], 0, 1, "from 8 s"),
    ],
)
def test_compare_with_truth(
    alerts: list[dict[str, Any]], incidents: list[dict[str, Any]], missed: int, unexpected: int, text: str
) -> None:
    check = compare(alerts, incidents)
    assert (len(check.missed), len(check.unexpected)) == (missed, unexpected)
    assert check.matches == (missed == unexpected == 0)
    assert text in check.describe()


# --- the decision, the name and the date of the new card -----------------------------------------------------


def _clips(clips_match: Sequence[bool]) -> list[ClipResult]:
    return [
        ClipResult(f"clip{i}", ClipCheck() if ok else ClipCheck([_incident("street_vending", "a", 1.0)], expected=1))
        for i, ok in enumerate(clips_match)
    ]


KEPT = {"stall": 0.65, "laundry": 0.55, "structure": 0.65}
CALIBRATED = {"stall": 0.5, "laundry": 0.45, "structure": 0.7}


def _outcome(rows: list[tuple[float, float]], clips_match: list[bool], set_aside: list[bool] | None = None) -> Outcome:
    """``set_aside``: how the clips fared at calibrated thresholds that were then set aside for the current
    ones (None: no fallback, ``clips_match`` are the clips at the only thresholds tried)."""
    return Outcome(
        name="x",
        candidate=Path("c.pt"),
        sha256="0" * 64,
        parent=CURRENT,
        data=Path("d.yaml"),
        split="val",
        split_note="",
        images=16,
        objects=30,
        imgsz=640,
        rows=[ClassRow(f"class{i}", 5, current, candidate) for i, (current, candidate) in enumerate(rows)],
        overall=(0.5, 0.5),
        thresholds=Thresholds(KEPT, calibrated=False, note="kept"),
        clips=_clips(clips_match),
        dry_run=False,
        set_aside=None
        if set_aside is None
        else Trial(Thresholds(CALIBRATED, calibrated=True, note="calibrated"), _clips(set_aside)),
    )


@pytest.mark.parametrize(
    ("rows", "clips_match", "set_aside", "reasons"),
    [
        ([(0.6, 0.6), (0.4, 0.4)], [True, True], None, []),  # equal counts as not worse
        ([(0.6, 0.7), (0.4, 0.9)], [True], None, []),
        ([(0.6, 0.6 - 1e-9), (0.4, 0.9)], [True], None, ["class0: candidate mAP50"]),  # no tolerance
        ([(0.6, 0.7)], [True, False], None, ["sample clip clip1: mismatch"]),
        ([(0.6, 0.1), (0.4, 0.3)], [False], None, ["class0", "class1", "sample clip clip0"]),
        # the calibrated thresholds changed clip0, the current ones reproduce every clip: promoted with those
        ([(0.6, 0.6)], [True, True], [False, True], []),
        # ... but the fallback does not excuse a worse class
        ([(0.6, 0.5)], [True], [False], ["class0: candidate mAP50"]),
        # neither the calibrated thresholds nor the current ones reproduce the clips: both are reported
        (
            [(0.6, 0.6)],
            [True, False],
            [False, False],
            [
                "sample clip clip0 at the calibrated thresholds: mismatch",
                "sample clip clip1 at the calibrated thresholds: mismatch",
                "sample clip clip1 at streetwatch-v2's thresholds: mismatch",
            ],
        ),
    ],
)
def test_decision(
    rows: list[tuple[float, float]], clips_match: list[bool], set_aside: list[bool] | None, reasons: list[str]
) -> None:
    outcome = _outcome(rows, clips_match, set_aside)
    assert outcome.accepted == (not reasons)
    assert outcome.fell_back == (set_aside is not None)
    assert len(outcome.reasons) == len(reasons)
    for reason, expected in zip(outcome.reasons, reasons, strict=True):
        assert reason.startswith(expected)
    lines = outcome.lines()
    decision = next(line for line in lines if line.startswith("decision: "))
    assert decision.startswith("decision: refused" if reasons else "decision: promoted")
    thresholds = next(line for line in lines if line.startswith("thresholds: "))
    assert thresholds == "thresholds: stall 0.65, laundry 0.55, structure 0.65 (kept)"  # the judged ones
    if set_aside is None:
        assert not any("calibrated" in line or "fallback" in line for line in lines)
        return
    changed = ", ".join(f"clip{i}" for i, ok in enumerate(set_aside) if not ok)
    assert "calibrated thresholds: stall 0.50, laundry 0.45, structure 0.70 (calibrated)" in lines
    assert (
        f"fallback: the calibrated thresholds change sample clip {changed}, so the candidate is judged at the "
        "current thresholds of streetwatch-v2:" in lines
    )
    if not reasons:
        assert decision.endswith(
            f"with the current thresholds of streetwatch-v2 (the calibrated ones changed sample clip {changed})"
        )


def _audit_by(results: dict[str, list[bool]], calls: list[str]) -> Any:
    """A fake clip audit: the clips' results at each named set of thresholds, recording the calls."""
    named = {"calibrated": CALIBRATED, "kept": KEPT}

    def audit(confidence: dict[str, float]) -> list[ClipResult]:
        key = next(name for name, value in named.items() if value == confidence)
        calls.append(key)
        return _clips(results[key])

    return audit


@pytest.mark.parametrize(
    ("chosen", "results", "judged", "calls", "note"),
    [
        # calibrated thresholds under which every clip matches: they stand, one audit
        ("calibrated", {"calibrated": [True, True]}, "calibrated", ["calibrated"], "calibrated"),
        # a clip changes at the calibrated thresholds, the current ones reproduce all: the current ones
        (
            "calibrated",
            {"calibrated": [True, False], "kept": [True, True]},
            "kept",
            ["calibrated", "kept"],
            "kept from streetwatch-v2: the thresholds calibrated on the split (stall 0.50, laundry 0.45, "
            "structure 0.70) change sample clip clip1, and streetwatch-v2's reproduce every clip",
        ),
        # no match at either: judged (and refused) at the current ones, with both on record
        (
            "calibrated",
            {"calibrated": [False, True], "kept": [True, False]},
            "kept",
            ["calibrated", "kept"],
            "a clip does not match either",
        ),
        # thresholds that were kept already are not audited twice
        ("kept", {"kept": [False, True]}, "kept", ["kept"], "kept"),
    ],
)
def test_settle_thresholds_falls_back_to_the_current_ones(
    chosen: str, results: dict[str, list[bool]], judged: str, calls: list[str], note: str
) -> None:
    first = (
        Thresholds(CALIBRATED, calibrated=True, note="calibrated")
        if chosen == "calibrated"
        else Thresholds(KEPT, calibrated=False, note="kept")
    )
    made: list[str] = []
    trial, set_aside = settle_thresholds(first, KEPT, "streetwatch-v2", _audit_by(results, made))
    assert made == calls
    assert trial.thresholds.confidence == (CALIBRATED if judged == "calibrated" else KEPT)
    assert trial.thresholds.calibrated == (judged == "calibrated")
    assert note in trial.thresholds.note
    assert trial.matches == all(results[judged])
    if len(calls) == 1:
        assert set_aside is None
    else:
        assert set_aside is not None and set_aside.thresholds is first and not set_aside.matches


def test_settle_thresholds_never_audits_equal_thresholds_twice() -> None:
    """Calibration that lands on the current thresholds: a failing clip is not audited again."""
    made: list[str] = []
    chosen = Thresholds(dict(KEPT), calibrated=True, note="calibrated")
    trial, set_aside = settle_thresholds(chosen, KEPT, "streetwatch-v2", _audit_by({"kept": [False]}, made))
    assert (made, set_aside, trial.thresholds) == (["kept"], None, chosen)


def test_default_name() -> None:
    now = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    assert default_name("17ffadae6b3f" + "0" * 52, now) == "streetwatch-city-2026-12-03-17ffadae"


NOW = datetime(2026, 12, 3, 9, 55, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "2026-12-03T09:55:01+00:00"),  # now, rounded up to the second
        (["2026-11-27"], "2026-12-03T09:55:01+00:00"),
        (["2026-11-27", "2026-12-03"], "2026-12-03T09:55:01+00:00"),
        # a card dated after now (a clock behind): one second after it
        (["2027-01-01"], "2027-01-01T00:00:01+00:00"),
        (["2026-12-03T09:59:59.2+00:00"], "2026-12-03T10:00:01+00:00"),
        # 18:00+08:00 is 10:00 UTC, but as a string it sorts after any 10:xx UTC: past both
        (["2026-12-03T18:00:00+08:00"], "2026-12-03T18:00:01+00:00"),
        # 05:00-05:00 is 10:00 UTC: the instant is the later one
        (["2026-12-03T05:00:00-05:00"], "2026-12-03T10:00:01+00:00"),
    ],
)
def test_newest_created_is_later_than_every_card(tmp_path: Path, existing: list[str], expected: str) -> None:
    for index, created in enumerate(existing):
        card = {"name": f"m{index}", "weights": f"m{index}.pt", "created": created}
        (tmp_path / f"m{index}.yaml").write_text(yaml.safe_dump(card))
    (tmp_path / "names.yaml").write_text("vendedor_ambulante: stall\n")  # not a card
    created = newest_created(tmp_path, NOW)
    assert created == expected
    assert all(created > read_card(tmp_path / f"m{i}.yaml").created for i in range(len(existing)))


def test_newest_created_refuses_a_card_it_cannot_date_after(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"name": "m", "weights": "m.pt", "created": "someday"}))
    with pytest.raises(InputError, match=r"m\.yaml: created: .*'someday'"):
        newest_created(tmp_path, NOW)


# --- the command end to end ----------------------------------------------------------------------------------


def _render(root: Path, val: int, *, test: int = 0, train: int = 0) -> Path:
    return write_dataset(
        root,
        train_seeds=range(train),
        val_seeds=range(VAL_SEED0, VAL_SEED0 + val),
        test_seeds=range(TEST_SEED0, TEST_SEED0 + test) if test else None,
        workers=2,
        imgsz_range=SMALL,
    )


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The city's export: 4 training images, 16 held-out (too few to calibrate on)."""
    return _render(tmp_path_factory.mktemp("city"), 16, train=4).parent


@pytest.fixture(scope="module")
def city_with_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset with a test split (given as the yaml's path): the held-out split is test, not val."""
    return _render(tmp_path_factory.mktemp("city-test"), 4, test=16)


@pytest.fixture(scope="module")
def city_large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough held-out frames to calibrate the candidate's thresholds on."""
    root = tmp_path_factory.mktemp("city-large")
    return write_dataset(
        root,
        train_seeds=range(0),
        val_seeds=range(VAL_SEED0 + 100, VAL_SEED0 + 100 + MIN_CALIBRATION_IMAGES + 4),
        workers=2,
        imgsz_range=SMALL,
    )


@pytest.fixture(scope="module")
def same_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("same") / "best.pt"
    shutil.copyfile(CURRENT.weights, path)
    return path


@pytest.fixture(scope="module")
def worse_weights(tmp_path_factory: pytest.TempPathFactory, city: Path) -> Path:
    """A yolov8n from its yaml (random weights) trained for one epoch at 64 px on the city's 4 images."""
    runs = tmp_path_factory.mktemp("runs")
    done = run_cli(
        "train",
        "--data",
        city / "data.yaml",
        "--model-yaml",
        "yolov8n.yaml",
        "--epochs",
        "1",
        "--imgsz",
        "64",
        "--batch",
        "4",
        "--workers",
        "0",
        "--project",
        runs,
        "--name",
        "worse",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    best = runs / "worse" / "weights" / "best.pt"
    assert best.is_file()
    return best


@pytest.fixture(scope="module", autouse=True)
def shipped_models_untouched() -> Iterator[None]:
    """Every promotion here goes to a tmp folder: the shipped models/ is the same after the module."""
    before = _listing(MODELS_DIR)
    yield
    assert _listing(MODELS_DIR) == before


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A copy of the shipped default model: the real models/ folder is never written."""
    folder = tmp_path / "models"
    folder.mkdir()
    for suffix in (".pt", ".yaml"):
        shutil.copyfile(MODELS_DIR / f"streetwatch-v2{suffix}", folder / f"streetwatch-v2{suffix}")
    return folder


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted(folder.iterdir())}


def _promote(candidate: Path, data: Path, models: Path, *extra: str) -> tuple[int, str, str]:
    code, out, err, _ = run_cli_in_process(
        ["model", "promote", str(candidate), "--data", str(data), "--models-dir", str(models), *extra]
    )
    return code, out, err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("candidate", "data", "extra", "code", "promoted", "expected"),
    [
        # the very same weights: equal on every class, every clip matches
        ("same_weights", "city", ["--dry-run"], 0, False, ["would promote as streetwatch-city-", "+0.000"]),
        ("same_weights", "city", [], 0, True, ["decision: promoted as streetwatch-city-", "parent streetwatch-v2"]),
        ("same_weights", "city", ["--name", "city-a"], 0, True, ["promoted as city-a"]),
        # a test split is the held-out one, and the output says so
        ("same_weights", "city_with_test", ["--dry-run"], 0, False, ["'test' split: used instead of 'val'"]),
        # one epoch from random weights: worse on every class and the clips miss their incidents
        ("worse_weights", "city", [], 1, False, ["decision: refused", "stall: candidate mAP50", "sample clip"]),
        ("worse_weights", "city", ["--dry-run"], 0, False, ["would refuse", "worse"]),
    ],
)
def test_promote(
    request: pytest.FixtureRequest,
    models_dir: Path,
    candidate: str,
    data: str,
    extra: list[str],
    code: int,
    promoted: bool,
    expected: list[str],
) -> None:
    weights: Path = request.getfixturevalue(candidate)
    dataset: Path = request.getfixturevalue(data)
    before = _listing(models_dir)
    got, out, err = _promote(weights, dataset, models_dir, *extra)
    assert got == code, out + err
    for text in expected:
        assert text in out, out
    assert (
        "thresholds: stall 0.65, laundry 0.55, structure 0.65 (kept from streetwatch-v2: calibration impossible" in out
    )
    for clip in CLIPS:
        assert f"  {clip}: " in out
    if not promoted:
        assert _listing(models_dir) == before
        return
    new = default_card(models_dir)
    assert new.name != CURRENT.name and new.name in out
    assert new.weights == (models_dir / f"{new.name}.pt").resolve()
    assert sha256_of(new.weights) == sha256_of(weights)
    assert set(_listing(models_dir)) == {*before, f"{new.name}.pt", f"{new.name}.yaml"}
    assert new.created > CURRENT.created and datetime.fromisoformat(new.created).tzinfo is not None
    assert (new.imgsz, new.confidence) == (CURRENT.imgsz, CURRENT.confidence)
    card = yaml.safe_load((models_dir / f"{new.name}.yaml").read_text())
    assert card["sha256"] == sha256_of(weights)
    assert card["lineage"] == {
        "candidate": str(weights.resolve()),
        "sha256": sha256_of(weights),
        "parent": "streetwatch-v2",
        "promoted_by": "streetwatch model promote",
    }
    metrics = card["metrics"]
    assert (metrics["dataset"], metrics["split"], metrics["images"]) == (str(dataset / "data.yaml"), "val", 16)
    assert metrics["per_class"] and all(row["delta"] == 0.0 for row in metrics["per_class"].values())
    assert all(row["instances"] > 0 for row in metrics["per_class"].values())
    assert set(metrics["sample_clips"]) == set(CLIPS)
    assert card["calibration"]["calibrated"] is False
    # The same candidate again under the same name: refused as input, nothing overwritten.
    after = _listing(models_dir)
    again, _, err = _promote(weights, dataset, models_dir, "--name", new.name)
    assert again == 2 and f"{new.name}.pt: already exists" in err
    assert _listing(models_dir) == after


def _threshold_values(line: str, prefix: str) -> list[float]:
    return [float(part.split()[1]) for part in line.removeprefix(prefix).split(" (")[0].split(", ")]


@pytest.mark.slow
def test_promote_calibrates_thresholds_when_the_split_allows(
    models_dir: Path, same_weights: Path, city_large: Path
) -> None:
    """With enough frames the candidate's thresholds are calibrated on the split and used, on the clips too,
    as long as every clip still matches with them; else the current ones are. Either way the very same
    weights are accepted: equal mAP, and the current thresholds reproduce the current clip results."""
    before = _listing(models_dir)
    code, out, _ = _promote(same_weights, city_large, models_dir, "--dry-run")
    assert code == 0, out
    lines = out.splitlines()
    assert any(line.startswith("decision (dry run, nothing written): would promote as ") for line in lines), out
    calibrated = f"(calibrated on 'val', {MIN_CALIBRATION_IMAGES + 4} images: precision >= 0.8 per class"
    line = next(line for line in lines if line.startswith(("calibrated thresholds: ", "thresholds: ")))
    assert calibrated in line, out
    prefix = "calibrated thresholds: " if line.startswith("calibrated") else "thresholds: "
    assert all(abs(v * 20 - round(v * 20)) < 1e-9 for v in _threshold_values(line, prefix)), line  # 0.05 grid
    clip_lines = [row for row in lines if row.startswith(tuple(f"  {clip}: " for clip in CLIPS))]
    if prefix == "thresholds: ":  # the calibrated thresholds stand: every clip matches with them
        assert len(clip_lines) == len(CLIPS) and all(": match (" in row for row in clip_lines), out
        assert "fallback" not in out
    else:  # a clip changed with them: audited again, and judged, at the current thresholds
        assert len(clip_lines) == 2 * len(CLIPS), out
        assert any(": mismatch" in row for row in clip_lines[: len(CLIPS)]), out
        assert all(": match (" in row for row in clip_lines[len(CLIPS) :]), out
        assert "thresholds: stall 0.65, laundry 0.55, structure 0.65 (kept from streetwatch-v2: " in out
    assert _listing(models_dir) == before


@pytest.mark.slow
def test_promote_falls_back_to_the_current_thresholds_when_calibrated_ones_change_a_clip(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path, same_weights: Path, city: Path
) -> None:
    """The flaw this rule fixes: on a small split calibration can pick thresholds at which even the very
    same weights miss a clip's incident. Here calibration "picks" 0.999 for every class (no detection
    survives it): the clips are audited again at the current thresholds, match there, and the candidate
    is promoted with those; the table and the card say so."""

    def calibrate(detector: Any, data: Path, *, fallback: Any, split: str) -> dict[str, Any]:
        per_class = {
            name: {"threshold": 0.999, "precision": 1.0, "recall": 0.0, "false_per_image": 0.0, "instances": 1}
            for name in ("stall", "laundry", "structure")
        }
        return {
            "confidence": dict.fromkeys(("stall", "laundry", "structure"), 0.999),
            "per_class": per_class,
            "false_per_image": 0.0,
            "images": 16,
            "limits": {"max_false_per_image": 0.03, "min_precision": 0.8},
        }

    monkeypatch.setattr(promote_module, "calibrate", calibrate)
    monkeypatch.setattr(promote_module, "MIN_CALIBRATION_IMAGES", 1)
    code, out, err = _promote(same_weights, city, models_dir, "--name", "city-fallback")
    assert code == 0, out + err
    lines = out.splitlines()
    assert "calibrated thresholds: stall 1.00, laundry 1.00, structure 1.00 (calibrated on 'val', 16 images" in out
    changed = [clip for clip in CLIPS if _truth_incidents(clip)]  # the clips with incidents miss them all
    assert f"fallback: the calibrated thresholds change sample clip {', '.join(changed)}, so the candidate" in out
    assert any(
        line.startswith(
            "thresholds: stall 0.65, laundry 0.55, structure 0.65 (kept from streetwatch-v2: the "
            "thresholds calibrated on the split"
        )
        for line in lines
    ), out
    decision = next(line for line in lines if line.startswith("decision: "))
    assert decision.startswith("decision: promoted as city-fallback")
    assert decision.endswith(
        f"with the current thresholds of streetwatch-v2 (the calibrated ones changed sample clip {', '.join(changed)})"
    )
    new = default_card(models_dir)
    assert new.name == "city-fallback" and new.confidence == CURRENT.confidence
    text = (models_dir / "city-fallback.yaml").read_text()
    assert "# Thresholds: the current ones of streetwatch-v2" in text
    card = yaml.safe_load(text)
    calibration = card["calibration"]
    assert (calibration["calibrated"], calibration["thresholds"]) == (False, "kept from streetwatch-v2")
    aside = calibration["set_aside"]
    assert aside["confidence"] == dict.fromkeys(("stall", "laundry", "structure"), 0.999)
    assert set(aside["sample_clips"]) == set(CLIPS)
    assert [clip for clip, result in aside["sample_clips"].items() if result.startswith("mismatch")] == changed
    assert all(result.startswith("match (") for result in card["metrics"]["sample_clips"].values())


def _truth_incidents(clip: str) -> list[dict[str, Any]]:
    return next(c for c in sample_clips() if c.name == clip).truth()["incidents"]


def _dataset(root: Path, *, labels: str | None, images: bool = True, val: bool = True) -> Path:
    """A one-image dataset: ``labels`` is the label file's text (None: no label file)."""
    import cv2
    import numpy as np

    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    if images:
        cv2.imwrite(str(root / "images" / "val" / "a.jpg"), np.full((64, 64, 3), 127, np.uint8))
        if labels is not None:
            (root / "labels" / "val" / "a.txt").write_text(labels)
    config: dict[str, Any] = {
        "path": str(root),
        "train": "images/val",
        "names": {0: "stall", 1: "laundry", 2: "structure"},
    }
    if val:
        config["val"] = "images/val"
    (root / "data.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing candidate", "missing.pt: candidate weights not found"),
        ("not a model", "notes.pt: cannot load model"),
        ("no data.yaml", "data.yaml: dataset yaml (data.yaml) not found"),
        ("no val split", "data.yaml: test: neither a 'test' nor a 'val' split"),
        ("no images", "no images in the 'val' split"),
        ("no labelled images", "no labelled images"),
        ("bad name", "--name '../evil'"),
        ("name taken", "streetwatch-v2.pt: already exists"),
        ("no model card", "no model card"),
    ],
)
def test_bad_input_is_exit_2_naming_the_file(
    tmp_path: Path, models_dir: Path, same_weights: Path, case: str, message: str
) -> None:
    candidate, models, extra = same_weights, models_dir, []
    data = _dataset(tmp_path / "data", labels="0 0.5 0.5 0.2 0.2\n")
    if case == "missing candidate":
        candidate = tmp_path / "missing.pt"
    elif case == "not a model":
        candidate = tmp_path / "notes.pt"
        candidate.write_text("not a checkpoint\n")
    elif case == "no data.yaml":
        (data / "data.yaml").unlink()
    elif case == "no val split":
        data = _dataset(tmp_path / "noval", labels="0 0.5 0.5 0.2 0.2\n", val=False)
    elif case == "no images":
        data = _dataset(tmp_path / "empty", labels=None, images=False)
    elif case == "no labelled images":
        data = _dataset(tmp_path / "unlabelled", labels="")
    elif case == "bad name":
        extra = ["--name", "../evil"]
    elif case == "name taken":
        extra = ["--name", "streetwatch-v2"]
    elif case == "no model card":
        models = tmp_path / "no-models"
        models.mkdir()
    before = _listing(models_dir)
    code, out, err = _promote(candidate, data, models, *extra)
    assert code == 2, out + err
    assert message in err, err
    assert err.startswith("streetwatch: error: ") and "Traceback" not in err
    assert _listing(models_dir) == before


def test_promote_help_documents_the_exit_codes() -> None:
    done = run_cli("model", "promote", "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "1 refused, which is a decision and not a bug" in text
    assert "--dry-run" in text and "--models-dir" in text and "--name" in text
