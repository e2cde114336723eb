"""``streetwatch dataset export|import``: operators' verdicts → training data, labelled exports → YOLO.

The case store is built the way production builds it: alert records and evidence go in through the
ingest API, verdicts (with the operator's corrected box or the false-alarm reason) through the actions
API; the export then runs through the real ``streetwatch`` console script or its typer app."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import typer
import yaml
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from service.cli import dataset_app
from service.dataset import CLASS_NAMES, ls_rectangle, split_for
from tests.service.helpers import FakeClock, LiveServer, alert, ingest, settings_for, start_server
from zones.errors import InputError

SCRIPT = str(Path(sys.executable).with_name("streetwatch"))
WIDTH, HEIGHT = 640, 360
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the service clock: after every alert below


def jpeg(seed: int, size: tuple[int, int] = (WIDTH, HEIGHT), fmt: str = "JPEG") -> bytes:
    image = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    ImageDraw.Draw(image).rectangle((10 + seed, 10, 60 + seed, 50), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env, timeout=180)


@dataclass
class Invoked:
    exception: BaseException | None
    stdout: str
    stderr: str


def invoke(*args: str) -> Invoked:
    """In-process run of the ``dataset`` commands, as detector.cli registers them."""
    app = typer.Typer()
    app.add_typer(dataset_app, name="dataset")
    result = CliRunner().invoke(app, ["dataset", *args])
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return Invoked(exception=error, stdout=result.stdout, stderr=result.stderr)


# ---- building a case store through the API ---------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One case: how it is reported and reviewed, and what the export must make of it."""

    name: str
    actions: tuple[tuple[str, dict[str, Any]], ...]
    verdict: str | None  # filed | rejected | None (not exported)
    label: str  # the YOLO label file's text
    camera: str = "cam-c"
    started_at: str = "2026-11-27T09:14:03+08:00"
    category: str = "street_vending"
    object_class: str = "stall"
    bbox: tuple[int, int, int, int] = (64, 36, 192, 144)
    evidence: str = "blob"  # blob: uploaded; dir: a file under the evidence root; none: no snapshot_clean
    day: str = "2026-11-27"
    reason: str | None = None
    reviewer_role: str = "operator"
    manifest_bbox: tuple[float, float, float, float] | None = None  # default: bbox
    manifest_class: str | None = None  # default: object_class
    skipped: bool = False  # filed with a class the model has not (object): in the manifest only


FILE: tuple[str, dict[str, Any]] = ("file", {})
MODEL_BOX_LABEL = "0 0.200000 0.250000 0.200000 0.300000\n"  # (64, 36, 192, 144) on 640x360

ROWS = [
    Row("filed-model-box", (FILE,), "filed", MODEL_BOX_LABEL),
    Row(
        "filed-operator-label",
        (("file", {"label": {"bbox": [320, 180, 480, 300], "object_class": "laundry"}}),),
        "filed",
        "1 0.625000 0.666667 0.250000 0.333333\n",
        manifest_bbox=(320.0, 180.0, 480.0, 300.0),
        manifest_class="laundry",
    ),
    Row("rejected-shadow", (("reject", {"reason": "shadow"}),), "rejected", "", reason="shadow"),
    Row(
        "filed-then-closed",
        (FILE, ("dispatch", {}), ("handle", {"note": "moved"}), ("close", {})),
        "filed",
        "2 0.250000 0.250000 0.500000 0.500000\n",
        category="illegal_structure",
        object_class="structure",
        bbox=(0, 0, 320, 180),
    ),
    Row("reported-only", (), None, ""),
    Row(
        "bbox-clipped-to-the-image",
        (FILE,),
        "filed",
        "0 0.968750 0.916667 0.062500 0.166667\n",
        bbox=(600, 300, 700, 400),
        manifest_bbox=(600.0, 300.0, 640.0, 360.0),
    ),
    Row("evidence-under-evidence-dir", (FILE,), "filed", MODEL_BOX_LABEL, evidence="dir"),
    Row(
        # 07:30 in Shanghai is still the 27th in UTC: the split key is the camera's local day.
        "other-camera-local-day",
        (("reject", {"reason": "legal_awning", "note": "licensed awning"}),),
        "rejected",
        "",
        camera="cam-b",
        started_at="2026-11-28T07:30:00+08:00",
        day="2026-11-28",
        reason="legal_awning",
    ),
    Row(
        "other-camera-same-day-by-supervisor",
        (FILE,),
        "filed",
        "1 0.200000 0.250000 0.200000 0.300000\n",
        camera="cam-b",
        started_at="2026-11-28T18:00:00+08:00",
        category="hanging_laundry",
        object_class="laundry",
        day="2026-11-28",
        reviewer_role="supervisor",
    ),
]


@dataclass
class Store:
    live: LiveServer
    clock: FakeClock
    evidence_dir: Path
    ids: dict[str, str] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    verdict_at: dict[str, datetime] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.live.settings.database_url

    def add_case(
        self,
        name: str,
        *,
        camera: str = "cam-c",
        started_at: str = "2026-11-27T09:14:03+08:00",
        category: str = "street_vending",
        object_class: str = "stall",
        bbox: tuple[int, int, int, int] = (64, 36, 192, 144),
        evidence: str = "blob",
        image: bytes | None = None,
        record_sha: str | None = None,
    ) -> str:
        """Ingest a case with a clean snapshot (uploaded, on disk, or absent) and return its id."""
        case_id = str(uuid.uuid4())
        data = image if image is not None else jpeg(len(self.ids) + 1)
        path = f"evidence/{case_id}/snapshot_clean.jpg"
        items = [{"kind": "snapshot", "path": f"evidence/{case_id}/snapshot.jpg", "sha256": "5" * 64}]
        if evidence != "none":
            items.append({"kind": "snapshot_clean", "path": path, "sha256": record_sha or sha(data)})
        started = datetime.fromisoformat(started_at)
        record = alert(
            id=case_id,
            camera_id=camera,
            category=category,
            object_class=object_class,
            bbox=list(bbox),
            started_at=started.isoformat(),
            alerted_at=(started + timedelta(minutes=3)).isoformat(),
            evidence=items,
        )
        with self.live.client("camera") as client:
            assert ingest(client, record).status_code == 201
            if evidence == "blob":
                put = client.put(f"/api/v1/evidence/{sha(data)}", content=data, headers={"Content-Type": "image/jpeg"})
                assert put.status_code == 200, put.text
        if evidence == "dir":
            (self.evidence_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (self.evidence_dir / path).write_bytes(data)
        self.ids[name] = case_id
        self.images[name] = data
        return case_id

    def act(self, name: str, action: str, body: dict[str, Any] | None = None, role: str = "operator") -> None:
        self.clock.advance(3600)
        if action in ("file", "reject"):
            self.verdict_at[name] = self.clock()
        if action in ("dispatch", "handle", "close"):
            role = "admin"
        with self.live.client(role) as client:
            response = client.post(f"/api/v1/cases/{self.ids[name]}/actions", json={"action": action, **(body or {})})
        assert response.status_code == 200, response.text


def open_store(tmp: Path) -> Store:
    clock = FakeClock(T0)
    live = start_server(settings_for(f"sqlite:///{tmp / 'streetwatch.db'}"), clock=clock)
    evidence_dir = tmp / "audit"
    evidence_dir.mkdir()
    return Store(live=live, clock=clock, evidence_dir=evidence_dir)


@contextmanager
def store_of(tmp: Path, rows: Sequence[Row] = ()) -> Iterator[Store]:
    """A running store holding ``rows``, reported and reviewed; stopped on leaving."""
    built = open_store(tmp)
    try:
        for row in rows:
            built.add_case(
                row.name,
                camera=row.camera,
                started_at=row.started_at,
                category=row.category,
                object_class=row.object_class,
                bbox=row.bbox,
                evidence=row.evidence,
            )
            for action, body in row.actions:
                built.act(row.name, action, body, role=row.reviewer_role)
        yield built
    finally:
        built.live.stop()
        built.live.db.dispose()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with store_of(tmp_path_factory.mktemp("store"), ROWS) as built:
        yield built


@pytest.fixture
def fresh_store(tmp_path: Path) -> Iterator[Store]:
    with store_of(tmp_path) as built:
        yield built


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def exported(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "verdicts"
    result = run("dataset", "export", "--db", store.url, "--out", str(out), "--evidence-dir", str(store.evidence_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "data.yaml")
    assert "exported 8 new verdict(s) (6 filed, 2 rejected)" in result.stderr
    return out


# ---- export: YOLO ----------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_export_writes_each_verdict(store: Store, exported: Path, row: Row) -> None:
    case_id = store.ids[row.name]
    entries = {entry["case_id"]: entry for entry in manifest(exported)}
    images = list(exported.glob(f"images/*/{case_id}.*"))
    if row.verdict is None:
        assert case_id not in entries and images == [] and list(exported.glob(f"labels/*/{case_id}.txt")) == []
        return
    entry = entries[case_id]
    split = entry["split"]
    assert images == [exported / "images" / split / f"{case_id}.jpg"]
    assert images[0].read_bytes() == store.images[row.name]  # the clean snapshot, byte for byte
    assert (exported / "labels" / split / f"{case_id}.txt").read_text() == row.label
    assert entry == expected_entry(store, row)


def expected_entry(store: Store, row: Row, fmt: str = "yolo") -> dict[str, Any]:
    """The manifest line the export in ``fmt`` must write for ``row``."""
    case_id = store.ids[row.name]
    split = split_for(row.camera, row.day, 0.2)
    image = f"images/{split}/{case_id}.jpg" if fmt == "yolo" else f"images/{case_id}.jpg"
    return {
        "case_id": case_id,
        "camera_id": row.camera,
        "time": store.verdict_at[row.name].isoformat(),
        "day": row.day,
        "split": split,
        "image": None if row.skipped else image,
        "sha256": None if row.skipped else sha(store.images[row.name]),
        "width": None if row.skipped else WIDTH,
        "height": None if row.skipped else HEIGHT,
        "verdict": row.verdict,
        "reviewer": {"operator": "operator-1", "supervisor": "supervisor-1"}[row.reviewer_role],
        "reviewer_role": row.reviewer_role,
        "reason": row.reason,
        "object_class": row.manifest_class or row.object_class,
        "bbox": list(row.manifest_bbox or map(float, row.bbox)),
        "label_from": "operator" if row.manifest_class else "model",
        "skipped": (
            "object class 'object' is not a class of the model (stall, laundry, structure), so the case is left "
            "out of the dataset"
            if row.skipped
            else None
        ),
    }


def test_export_is_an_ultralytics_dataset(exported: Path) -> None:
    data = yaml.safe_load((exported / "data.yaml").read_text())
    assert data == {
        "path": str(exported),
        "train": "images/train",
        "val": "images/val",
        "names": {0: "stall", 1: "laundry", 2: "structure"},
    }
    entries = manifest(exported)
    images = sorted(p.relative_to(exported).as_posix() for p in exported.glob("images/*/*"))
    assert images == sorted(entry["image"] for entry in entries)
    for entry in entries:  # ultralytics pairs images/<split>/x.jpg with labels/<split>/x.txt
        assert (exported / entry["image"].replace("images/", "labels/", 1)).with_suffix(".txt").is_file()
    leftovers = [p.name for p in exported.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_split_keeps_each_camera_day_together(exported: Path) -> None:
    groups: dict[tuple[str, str], set[str]] = {}
    for entry in manifest(exported):
        groups.setdefault((entry["camera_id"], entry["day"]), set()).add(entry["split"])
        assert entry["split"] == split_for(entry["camera_id"], entry["day"], 0.2)
    # cam-b's 07:30 case is on the 27th in UTC, which would have put it in train with cam-b's other day.
    assert groups == {("cam-c", "2026-11-27"): {"train"}, ("cam-b", "2026-11-28"): {"val"}}
    assert split_for("cam-b", "2026-11-27", 0.2) == "train"


@pytest.mark.parametrize(("fraction", "low", "high"), [(0.0, 0.0, 0.0), (0.2, 0.17, 0.23), (0.5, 0.46, 0.54),
                                                        (1.0, 1.0, 1.0)])  # fmt: skip
def test_split_for_sends_the_asked_share_to_val(fraction: float, low: float, high: float) -> None:
    keys = [(f"cam-{i % 37}", f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}") for i in range(3000)]
    splits = [split_for(camera, day, fraction) for camera, day in keys]
    share = splits.count("val") / len(splits)
    assert low <= share <= high
    assert splits == [split_for(camera, day, fraction) for camera, day in keys]  # a pure function


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--camera", "cam-b"), {"other-camera-local-day", "other-camera-same-day-by-supervisor"}),
        (("--camera", "cam-c", "--camera", "cam-b"), {row.name for row in ROWS if row.verdict}),
        (("--camera", "cam-z"), set()),
        (("--since", "SINCE:bbox-clipped-to-the-image"), {"bbox-clipped-to-the-image", "evidence-under-evidence-dir",
                                                          "other-camera-local-day",
                                                          "other-camera-same-day-by-supervisor"}),
        (("--since", "2030-01-01T00:00:00+08:00"), set()),
        (("--since", "SINCE:other-camera-local-day", "--camera", "cam-c"), set()),
    ],
)  # fmt: skip
def test_since_and_camera_select_verdicts(
    store: Store, tmp_path: Path, args: tuple[str, ...], expected: set[str]
) -> None:
    args = tuple(
        store.verdict_at[a.removeprefix("SINCE:")].astimezone(UTC).isoformat() if a.startswith("SINCE:") else a
        for a in args
    )
    out = tmp_path / "subset"
    result = invoke("export", "--db", store.url, "--out", str(out), "--evidence-dir", str(store.evidence_dir), *args)
    assert result.exception is None, result.exception
    assert {entry["case_id"] for entry in manifest(out)} == {store.ids[name] for name in expected}


def test_export_is_incremental_and_never_moves_old_items(fresh_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "incremental"
    first = fresh_store.add_case("first")
    fresh_store.act("first", "file")
    fresh_store.add_case("second", camera="cam-b")
    fresh_store.act("second", "reject", {"reason": "person"})
    args = ("export", "--db", fresh_store.url, "--out", str(out), "--val-fraction", "0")
    assert invoke(*args).exception is None
    before = (out / "manifest.jsonl").read_bytes()
    stats = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert {entry["split"] for entry in manifest(out)} == {"train"}

    again = invoke(*args)
    assert again.exception is None and "exported 0 new verdict(s)" in again.stderr and "2 already" in again.stderr
    assert (out / "manifest.jsonl").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in stats} == stats  # nothing re-written

    fresh_store.add_case("third", started_at="2026-11-29T10:00:00+08:00")
    fresh_store.act("third", "file")
    # Everything new goes to val now; what was exported stays where it was.
    third = invoke("export", "--db", fresh_store.url, "--out", str(out), "--val-fraction", "1")
    assert third.exception is None and "exported 1 new verdict(s) (1 filed)" in third.stderr
    after = (out / "manifest.jsonl").read_bytes()
    assert after.startswith(before) and len(after.splitlines()) == 3
    assert [(e["case_id"], e["split"]) for e in manifest(out)][::2] == [
        (first, "train"),
        (fresh_store.ids["third"], "val"),
    ]
    assert (out / "images/train" / f"{first}.jpg").is_file()
    assert (out / "labels/val" / f"{fresh_store.ids['third']}.txt").read_text() == MODEL_BOX_LABEL


# ---- export: classes the model has not (占道堆物 sidewalk_obstruction: object) ------------------------

OBSTRUCTION = {"category": "sidewalk_obstruction", "object_class": "object"}
OBSTRUCTION_ROWS = [
    Row("obstruction-filed", (FILE,), "filed", "", skipped=True, **OBSTRUCTION),
    # skipped cases are not read: a snapshot never uploaded stops nothing
    Row("obstruction-filed-never-uploaded", (FILE,), "filed", "", evidence="none-uploaded", skipped=True,
        **OBSTRUCTION),
    Row("obstruction-filed-then-dispatched", (FILE, ("dispatch", {})), "filed", "", skipped=True, **OBSTRUCTION),
    Row("obstruction-filed-as-stall",
        (("file", {"label": {"bbox": [320, 180, 480, 300], "object_class": "stall"}}),), "filed",
        "0 0.625000 0.666667 0.250000 0.333333\n", manifest_bbox=(320.0, 180.0, 480.0, 300.0),
        manifest_class="stall", **OBSTRUCTION),
    Row("stall-filed-as-object",
        (("file", {"label": {"bbox": [320, 180, 480, 300], "object_class": "object"}}),), "filed", "",
        manifest_bbox=(320.0, 180.0, 480.0, 300.0), manifest_class="object", skipped=True),
    # a rejected obstruction is a hard negative like any rejected case
    Row("obstruction-rejected", (("reject", {"reason": "parked_vehicle"}),), "rejected", "",
        reason="parked_vehicle", **OBSTRUCTION),
    Row("stall-filed", (FILE,), "filed", MODEL_BOX_LABEL),
]  # fmt: skip


@pytest.fixture(scope="module")
def obstruction_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with store_of(tmp_path_factory.mktemp("obstruction"), OBSTRUCTION_ROWS) as built:
        yield built


@pytest.fixture(scope="module")
def obstruction_exports(obstruction_store: Store, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The store exported in both formats through the console script; a second run adds nothing."""
    folders = {}
    for fmt, main in (("yolo", "data.yaml"), ("label-studio", "tasks.json")):
        out = tmp_path_factory.mktemp(fmt) / "obstruction"
        args = ("dataset", "export", "--db", obstruction_store.url, "--out", str(out), "--format", fmt)
        result = run(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(out / main)
        assert (
            "exported 3 new verdict(s) (2 filed, 1 rejected); skipped 4 filed case(s) of classes the model has "
            "none of (4 object); 0 already in manifest.jsonl; dataset now: train 3" in result.stderr
        ), result.stderr
        again = run(*args)
        assert again.returncode == 0 and "exported 0 new verdict(s) (none); 7 already" in again.stderr, again.stderr
        assert "dataset now: train 3" in again.stderr  # skipped cases are counted in no split
        folders[fmt] = out
    return folders


@pytest.mark.parametrize("row", OBSTRUCTION_ROWS, ids=[row.name for row in OBSTRUCTION_ROWS])
def test_export_skips_filed_cases_of_classes_the_model_has_not(
    obstruction_store: Store, obstruction_exports: dict[str, Path], row: Row
) -> None:
    case_id = obstruction_store.ids[row.name]
    for fmt, out in obstruction_exports.items():
        entries = {entry["case_id"]: entry for entry in manifest(out)}
        assert entries[case_id] == expected_entry(obstruction_store, row, fmt), fmt
        images = [p.relative_to(out).as_posix() for p in out.glob(f"images/**/{case_id}.*")]
        tasks_file = out / "tasks.json"
        tasks = {t["data"]["case_id"]: t for t in json.loads(tasks_file.read_text())} if tasks_file.exists() else {}
        labels = list(out.glob(f"labels/*/{case_id}.txt"))
        if row.skipped:
            assert (images, labels, case_id in tasks) == ([], [], False), fmt
        elif fmt == "yolo":
            assert images == [f"images/{entries[case_id]['split']}/{case_id}.jpg"]
            assert [label.read_text() for label in labels] == [row.label]
        else:
            assert images == [f"images/{case_id}.jpg"] and labels == []
            # pre-annotated only with a class of the label config (the model's): none for an obstruction
            results = [result for p in tasks[case_id]["predictions"] for result in p["result"]]
            classes = [result["value"]["rectanglelabels"] for result in results]
            assert classes == ([] if row.category == "sidewalk_obstruction" else [[row.object_class]])


def test_export_of_obstructions_is_still_a_three_class_dataset(obstruction_exports: dict[str, Path]) -> None:
    out = obstruction_exports["yolo"]
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "stall", 1: "laundry", 2: "structure"}
    label_classes = {line.split()[0] for path in out.glob("labels/*/*.txt") for line in path.read_text().splitlines()}
    assert label_classes == {"0"}
    config = ElementTree.fromstring((obstruction_exports["label-studio"] / "label_config.xml").read_text())
    assert [label.get("value") for label in config.iter("Label")] == ["stall", "laundry", "structure"]


# ---- export: broken stores -------------------------------------------------------------------------


@dataclass(frozen=True)
class Breakage:
    name: str
    make: Callable[[Store], str]  # adds the broken case (with its verdict), returns its id
    message: str


def _never_uploaded(store: Store) -> str:
    case_id = store.add_case("broken", evidence="none-uploaded")
    store.act("broken", "file")
    return case_id


def _wrong_bytes_on_disk(store: Store) -> str:
    case_id = store.add_case("broken", evidence="dir", record_sha="0" * 64)
    store.act("broken", "file")
    return case_id


def _not_an_image(store: Store) -> str:
    case_id = store.add_case("broken", image=b"\xff\xd8 this is no jpeg at all")
    store.act("broken", "reject", {"reason": "other"})
    return case_id


def _no_clean_snapshot(store: Store) -> str:
    case_id = store.add_case("broken", evidence="none")
    store.act("broken", "file")
    return case_id


def _degenerate_label(store: Store) -> str:
    case_id = store.add_case("broken")
    store.act("broken", "file", {"label": {"bbox": [5000, 5000, 6000, 6000], "object_class": "stall"}})
    return case_id


def _degenerate_model_box(store: Store) -> str:
    case_id = store.add_case("broken", bbox=(700, 10, 800, 50))  # right of the 640 px wide snapshot
    store.act("broken", "file")
    return case_id


BREAKAGES = [
    Breakage("never-uploaded", _never_uploaded, "was never uploaded"),
    Breakage("sha256-mismatch", _wrong_bytes_on_disk, "but the record says 0000"),
    Breakage("not-an-image", _not_an_image, "is not a readable image"),
    Breakage("no-snapshot-clean", _no_clean_snapshot, "has no snapshot_clean evidence"),
    Breakage(
        "degenerate-label", _degenerate_label, "verdict label bbox [5000.0, 5000.0, 6000.0, 6000.0] is degenerate"
    ),
    Breakage("degenerate-model-box", _degenerate_model_box, "case bbox [700, 10, 800, 50] is degenerate"),
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.name for b in BREAKAGES])
def test_broken_store_exits_2_naming_the_case_and_writes_nothing(
    fresh_store: Store, tmp_path: Path, breakage: Breakage
) -> None:
    out = tmp_path / "out"
    good = fresh_store.add_case("good")
    fresh_store.act("good", "file")
    args = ("dataset", "export", "--db", fresh_store.url, "--out", str(out), "--evidence-dir",
            str(fresh_store.evidence_dir))  # fmt: skip
    assert run(*args).returncode == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    late = fresh_store.add_case("late-good")
    fresh_store.act("late-good", "file")
    broken = breakage.make(fresh_store)
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert f"case {broken}: " in result.stderr and breakage.message in result.stderr
    assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    assert late not in result.stderr  # only broken cases are named
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # not even the good new case; no staging left behind
    assert good in (out / "manifest.jsonl").read_text()

    fresh_out = tmp_path / "never-made"
    assert run(*args[:5], str(fresh_out)).returncode == 2
    assert not fresh_out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "--since: 'yesterday' is not ISO 8601"),
        (("--since", "2026-11-27T00:00:00"), "--since: '2026-11-27T00:00:00' needs a UTC offset"),
        (("--db", "mysql://u@h/x"), "unsupported database"),
    ],
)
def test_bad_export_options_are_input_errors(
    sqlite_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke("export", "--out", str(tmp_path / "x"), "--db", sqlite_url, *args)
    assert isinstance(result.exception, InputError), result.exception
    assert message in str(result.exception)


@pytest.mark.parametrize(("args", "message"), [(("--val-fraction", "1.5"), "--val-fraction"),
                                               (("--format", "coco"), "--format")])  # fmt: skip
def test_bad_option_values_exit_2(sqlite_url: str, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run("dataset", "export", "--db", sqlite_url, "--out", str(tmp_path / "x"), *args)
    assert result.returncode == 2 and message in result.stderr


# ---- export: Label Studio, and back --------------------------------------------------------------


@pytest.fixture(scope="module")
def label_studio(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ls") / "review"
    result = run("dataset", "export", "--db", store.url, "--out", str(out), "--format", "label-studio",
                 "--evidence-dir", str(store.evidence_dir))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "tasks.json")
    return out


@pytest.mark.parametrize("row", [row for row in ROWS if row.verdict], ids=[row.name for row in ROWS if row.verdict])
def test_label_studio_task_carries_the_model_box(store: Store, label_studio: Path, row: Row) -> None:
    tasks = {task["data"]["case_id"]: task for task in json.loads((label_studio / "tasks.json").read_text())}
    case_id = store.ids[row.name]
    task = tasks[case_id]
    assert task["data"]["image"] == f"/data/local-files/?d=review/images/{case_id}.jpg"
    assert (label_studio / "images" / f"{case_id}.jpg").read_bytes() == store.images[row.name]
    assert (task["data"]["verdict"], task["data"]["camera_id"], task["data"]["day"]) == (
        row.verdict,
        row.camera,
        row.day,
    )
    [prediction] = task["predictions"]
    assert prediction["model_version"] == "streetwatch-v1"
    [result] = prediction["result"]
    x1, y1, x2, y2 = (min(max(v, 0), m) for v, m in zip(row.bbox, (WIDTH, HEIGHT, WIDTH, HEIGHT), strict=True))
    assert {k: result[k] for k in ("from_name", "to_name", "type", "original_width", "original_height")} == {
        "from_name": "label", "to_name": "image", "type": "rectanglelabels",
        "original_width": WIDTH, "original_height": HEIGHT,
    }  # fmt: skip
    value = result["value"]
    assert value["rectanglelabels"] == [row.object_class]  # the model's class, for the reviewer to correct
    assert value["x"] == pytest.approx(100 * x1 / WIDTH) and value["y"] == pytest.approx(100 * y1 / HEIGHT)
    assert value["width"] == pytest.approx(100 * (x2 - x1) / WIDTH)
    assert value["height"] == pytest.approx(100 * (y2 - y1) / HEIGHT)


def test_label_studio_config_matches_the_tasks(label_studio: Path) -> None:
    root = ElementTree.fromstring((label_studio / "label_config.xml").read_text())
    image = root.find("Image")
    rectangles = root.find("RectangleLabels")
    assert image is not None and rectangles is not None
    assert (image.get("name"), image.get("value")) == ("image", "$image")
    assert (rectangles.get("name"), rectangles.get("toName")) == ("label", "image")
    assert [label.get("value") for label in rectangles.findall("Label")] == list(CLASS_NAMES)


def test_label_studio_round_trip_gives_back_the_yolo_labels(
    store: Store, exported: Path, label_studio: Path, tmp_path: Path
) -> None:
    """Reviewers accept each filed box (as corrected by the operator) and clear rejected ones; their
    Label Studio export imported again gives the very labels of the YOLO export, in the same split."""
    entries = {entry["case_id"]: entry for entry in manifest(exported)}
    tasks = json.loads((label_studio / "tasks.json").read_text())
    for number, task in enumerate(tasks, 1):
        entry = entries[task["data"]["case_id"]]
        result = (
            [ls_rectangle(tuple(entry["bbox"]), entry["object_class"], entry["width"], entry["height"])]
            if entry["verdict"] == "filed"
            else []
        )
        task.update(
            id=number, annotations=[{"id": 1, "result": [], "was_cancelled": True}, {"id": 2, "result": result}]
        )
    source = tmp_path / "project-1-at-2026-12-01.json"
    source.write_text(json.dumps(tasks))
    out = tmp_path / "back"
    result = invoke("import", str(source), "--out", str(out), "--images", str(label_studio / "images"))
    assert result.exception is None, result.exception
    for case_id, entry in entries.items():
        theirs = (out / "labels" / entry["split"] / f"{case_id}.txt").read_text().split()
        ours = (exported / "labels" / entry["split"] / f"{case_id}.txt").read_text().split()
        assert theirs[:1] == ours[:1] and [float(v) for v in theirs[1:]] == pytest.approx([float(v) for v in ours[1:]])
        assert (out / "images" / entry["split"] / f"{case_id}.jpg").read_bytes() == store.images[
            next(name for name, i in store.ids.items() if i == case_id)
        ]
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "stall", 1: "laundry", 2: "structure"}


# ---- import --------------------------------------------------------------------------------------


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return archive


def cvat_yolo_zip(tmp: Path) -> Path:
    src = tmp / "cvat"
    write(src / "obj.names", "Stall\nperson\nlaundry\n")
    write(src / "obj.data", "classes = 3\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n")
    write(src / "train.txt", "data/obj_train_data/f1.jpg\ndata/obj_train_data/f2.jpg\n")
    write(src / "obj_train_data/f1.jpg", jpeg(1))
    write(src / "obj_train_data/f1.txt", "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.1 0.1\n2 0.3 0.3 0.2 0.4\n")
    write(src / "obj_train_data/f2.jpg", jpeg(2))
    write(src / "obj_train_data/f2.txt", "")
    return zip_folder(src, tmp / "task_1-2026_12_01-yolo 1.1.zip")


def roboflow_folder(tmp: Path) -> Path:
    src = tmp / "roboflow"
    write(
        src / "data.yaml",
        "train: ../train/images\nval: ../valid/images\nnc: 3\nnames: ['cart', 'structure', 'awning']\n",
    )
    write(src / "train/images/r1.jpg", jpeg(3))
    write(src / "train/labels/r1.txt", "0 0.5 0.5 0.2 0.2\n1 0.25 0.25 0.5 0.5\n2 0.9 0.9 0.1 0.1\n")
    write(src / "valid/images/r2.jpg", jpeg(4))
    write(src / "valid/labels/r2.txt", "1 0.1 0.1 0.5 0.1 0.5 0.6 0.1 0.6\n")  # a polygon: its bounding box
    write(tmp / "names.yaml", "cart: stall\nawning: null\n")
    return src


def ultralytics_folder(tmp: Path) -> Path:
    src = tmp / "ultra"
    write(src / "dataset.yaml", "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: laundry\n  1: stall\n")
    write(src / "images/train/u1.png", jpeg(5, fmt="PNG"))
    write(src / "labels/train/u1.txt", "1 0.5 0.5 0.5 0.5\n")
    write(src / "images/val/u2.jpg", jpeg(6))  # no label file: background
    return src


def label_studio_json(tmp: Path) -> Path:
    write(tmp / "ls/images/ls1.jpg", jpeg(7))
    write(tmp / "ls/images/ls2.jpg", jpeg(8))
    box = {"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 200,
           "original_height": 100}  # fmt: skip
    tasks = [
        {
            "id": 1,
            "data": {"image": "/data/upload/1/0a1b2c3d-ls1.jpg"},
            "annotations": [
                {"id": 1, "was_cancelled": True, "result": []},
                {"id": 2, "result": [
                    {**box, "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rectanglelabels": ["Stall"]}},
                    {**box, "value": {"x": 50, "y": 10, "width": 10, "height": 20, "rotation": 90,
                                      "rectanglelabels": ["laundry"]}},
                    {**box, "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["car"]}},
                    {"type": "choices", "from_name": "q", "to_name": "image", "value": {"choices": ["ok"]}},
                ]},
            ],
        },
        {"id": 2, "data": {"image": "/data/local-files/?d=street/images/ls2.jpg"}, "annotations": []},
    ]  # fmt: skip
    return write(tmp / "ls/export.json", json.dumps(tasks))


@dataclass(frozen=True)
class Source:
    name: str
    make: Callable[[Path], Path]
    args: tuple[str, ...]
    labels: dict[str, tuple[str | None, list[str]]]  # stem → (split or None: hashed, label lines)
    dropped: dict[str, int]


SOURCES = [
    Source("cvat-yolo-1.1-zip", cvat_yolo_zip, (), {
        "f1": ("train", ["0 0.500000 0.500000 0.200000 0.200000", "1 0.300000 0.300000 0.200000 0.400000"]),
        "f2": ("train", []),
    }, {"person": 1}),
    Source("roboflow-folder-with-names-map", roboflow_folder, ("--names-map", "NAMES"), {
        "r1": ("train", ["0 0.500000 0.500000 0.200000 0.200000", "2 0.250000 0.250000 0.500000 0.500000"]),
        "r2": ("val", ["2 0.300000 0.350000 0.400000 0.500000"]),
    }, {"awning": 1}),
    Source("ultralytics-folder", ultralytics_folder, (), {
        "u1": ("train", ["0 0.500000 0.500000 0.500000 0.500000"]),
        "u2": ("val", []),
    }, {}),
    Source("label-studio-json", label_studio_json, (), {
        "ls1": (None, ["0 0.250000 0.400000 0.300000 0.400000", "1 0.450000 0.200000 0.100000 0.200000"]),
    }, {"car": 1}),
]  # fmt: skip


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_import_writes_a_yolo_dataset_with_our_names(tmp_path: Path, source: Source) -> None:
    path = source.make(tmp_path)
    args = [a.replace("NAMES", str(tmp_path / "names.yaml")) for a in source.args]
    out = tmp_path / "imported"
    result = invoke("import", str(path), "--out", str(out), *args)
    assert result.exception is None, result.exception
    assert result.stdout.strip() == str(out / "data.yaml")
    found = {p.stem: p for p in out.glob("labels/*/*.txt")}
    assert set(found) == set(source.labels)
    for stem, (split, lines) in source.labels.items():
        label = found[stem]
        expected_split = split or split_for("import", stem, 0.2)
        assert label.parent.name == expected_split
        assert sorted(label.read_text().splitlines()) == sorted(lines)
        [image] = list(out.glob(f"images/{expected_split}/{stem}.*"))
        with Image.open(image) as opened:
            opened.verify()
    for name, count in source.dropped.items():
        assert f"{name} {count}" in result.stderr and "unknown classes" in result.stderr
    names = {0: "stall", 1: "laundry", 2: "structure"}
    data = {"path": str(out), "train": "images/train", "val": "images/val", "names": names}
    assert yaml.safe_load((out / "data.yaml").read_text()) == data
    again = invoke("import", str(path), "--out", str(out), *args)  # idempotent: same files, no duplicates
    assert again.exception is None and {p.stem for p in out.glob("labels/*/*.txt")} == set(source.labels)


def _ls(tmp: Path, tasks: Any) -> Path:
    return write(tmp / "export.json", tasks if isinstance(tasks, str) else json.dumps(tasks))


def _task(value: dict[str, Any], image: str = "a.jpg") -> list[dict[str, Any]]:
    return [{"data": {"image": image}, "annotations": [{"result": [{"type": "rectanglelabels", "value": value}]}]}]


def _yolo(tmp: Path, label: str, names: str = "names: [stall, laundry]\n", image: bytes | None = None) -> Path:
    write(tmp / "ds/data.yaml", names)
    write(tmp / "ds/images/train/a.jpg", image if image is not None else jpeg(1))
    write(tmp / "ds/labels/train/a.txt", label)
    return tmp / "ds"


GOOD_BOX = {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["stall"]}
BAD_FILES: list[tuple[str, Callable[[Path], Path], tuple[str, ...], list[str]]] = [
    ("ls-not-json", lambda t: _ls(t, "[{broken"), (), ["export.json: line 1 column 3: not JSON"]),
    ("ls-not-a-list", lambda t: _ls(t, {"tasks": []}), (), ["export.json: (top level)"]),
    ("ls-no-image", lambda t: _ls(t, [{"data": {}, "annotations": []}]), (), ["export.json: [0].data.image"]),
    ("ls-x-not-a-number", lambda t: _ls(t, _task({**GOOD_BOX, "x": "10"})), (),
     ["export.json: [0].annotations[0].result[0].value.x", "finite number"]),
    ("ls-no-labels", lambda t: _ls(t, _task({**GOOD_BOX, "rectanglelabels": []})), (),
     ["[0].annotations[0].result[0].value.rectanglelabels"]),
    ("ls-image-missing", lambda t: _ls(t, _task(dict(GOOD_BOX), image="/data/upload/1/gone.jpg")), (),
     ["export.json: [0].data.image", "not found"]),
    ("yolo-short-line", lambda t: _yolo(t, "0 0.5 0.5 0.2\n"), (), ["a.txt: line 1", "class cx cy w h"]),
    ("yolo-class-out-of-range", lambda t: _yolo(t, "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n"), (),
     ["a.txt: line 2: class", "not one of 0..1"]),
    ("yolo-not-normalised", lambda t: _yolo(t, "0 320 180 64 36\n"), (), ["a.txt: line 1", "normalised"]),
    ("yolo-bad-names", lambda t: _yolo(t, "", names="names: 7\n"), (), ["data.yaml: names"]),
    ("yolo-no-names", lambda t: write(t / "bare/images/a.jpg", jpeg(1)).parent.parent, (), ["bare: no class names"]),
    ("yolo-unreadable-image", lambda t: _yolo(t, "", image=b"not an image"), (), ["a.jpg: not a readable image"]),
    ("corrupt-zip", lambda t: write(t / "export.zip", b"PK\x03\x04 truncated"), (), ["export.zip: not a readable zip"]),
    ("names-map-to-unknown", lambda t: (write(t / "map.yaml", "cart: truck\n"), _yolo(t, ""))[1],
     ("--names-map", "MAP"), ["map.yaml: cart: maps to 'truck'"]),
    ("not-a-dataset", lambda t: write(t / "notes.txt", "hello"), (), ["notes.txt: expected a Label Studio .json"]),
    ("missing-source", lambda t: t / "nowhere.json", (), ["nowhere.json: does not exist"]),
]  # fmt: skip


@pytest.mark.parametrize(("make", "args", "fragments"), [row[1:] for row in BAD_FILES], ids=[r[0] for r in BAD_FILES])
def test_bad_import_files_are_input_errors(
    tmp_path: Path, make: Callable[[Path], Path], args: tuple[str, ...], fragments: list[str]
) -> None:
    source = make(tmp_path)
    out = tmp_path / "out"
    result = invoke(
        "import", str(source), "--out", str(out), *(a.replace("MAP", str(tmp_path / "map.yaml")) for a in args)
    )
    assert isinstance(result.exception, InputError), result.exception
    for fragment in fragments:
        assert fragment in str(result.exception)
    assert not out.exists()  # nothing partial


def test_bad_import_exits_2_through_the_console_script(tmp_path: Path) -> None:
    source = _ls(tmp_path, [{"data": {"image": "a.jpg"}, "annotations": "yes"}])
    result = run("dataset", "import", str(source), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "export.json: [0].annotations: must be a list" in result.stderr
    assert "Traceback" not in result.stderr


def test_unsafe_zip_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    result = invoke("import", str(archive), "--out", str(tmp_path / "out"))
    assert isinstance(result.exception, InputError) and "unsafe path" in str(result.exception)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_dataset_commands_stay_out_of_pixels_and_models() -> None:
    code = (
        "import sys\n"
        "import service.dataset, service.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('cv2', 'torch', 'ultralytics', 'detector'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stderr
    assert "dataset" in run("--help").stdout


def test_label_studio_image_url_prefix(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "ls"
    prefix = "https://files.example/sw/"
    result = invoke("export", "--db", store.url, "--out", str(out), "--format", "label-studio",
                    "--evidence-dir", str(store.evidence_dir), "--image-url-prefix", prefix)  # fmt: skip
    assert result.exception is None, result.exception
    images = [task["data"]["image"] for task in json.loads((out / "tasks.json").read_text())]
    assert len(images) == 8
    assert all(image.startswith(f"{prefix}images/") for image in images)
    assert invoke("export", "--db", store.url, "--out", str(out), "--format", "label-studio",
                  "--evidence-dir", str(store.evidence_dir)).exception is None  # fmt: skip
    assert len(json.loads((out / "tasks.json").read_text())) == 8  # nothing added twice


@pytest.mark.parametrize(("first", "second"), [("label-studio", "yolo"), ("yolo", "label-studio")])
def test_one_folder_holds_one_export_format(sqlite_url: str, tmp_path: Path, first: str, second: str) -> None:
    out = tmp_path / "mixed"
    assert invoke("export", "--db", sqlite_url, "--out", str(out), "--format", first).exception is None
    error = invoke("export", "--db", sqlite_url, "--out", str(out), "--format", second).exception
    assert isinstance(error, InputError) and "already holds a" in str(error) and str(out) in str(error)
