"""Training data mixes, hold-out splits by source photograph, and `streetwatch train`/`eval` on them."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from detector.training.mix import DataSource, label_path, source_group, split_images, write_holdout, write_mix
from zones.errors import InputError

OURS = ["stall", "laundry", "structure"]
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
COCO_V8N = SHARED / "pretrained" / "yolov8n-coco.pt"
BOGOTA = SHARED / "realdata" / "bogota-street-vendors" / "train" / "images"
STREETWATCH = [sys.executable, "-m", "detector"]


@pytest.mark.parametrize(
    ("spec", "expected", "error"),
    [
        ("gen.yaml", (Path("gen.yaml"), 1.0), None),
        ("real.yaml:0.3", (Path("real.yaml"), 0.3), None),
        ("dir/real.yaml:2", (Path("dir/real.yaml"), 2.0), None),
        ("real.yaml:x", None, "must be a number"),
        ("real.yaml:0", None, "in (0, 100]"),
        ("real.yaml:-1", None, "in (0, 100]"),
        ("real.yaml:nan", None, "in (0, 100]"),
        ("real.yaml:1000", None, "in (0, 100]"),
    ],
)
def test_data_source_parse(spec: str, expected: tuple[Path, float] | None, error: str | None) -> None:
    if error is not None:
        with pytest.raises(InputError, match=error.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
            DataSource.parse(spec)
        return
    source = DataSource.parse(spec)
    assert (source.path, source.weight) == expected


def _dataset(root: Path, names: list[str], labels: dict[str, list[str]], *, val: bool = True) -> Path:
    """A YOLO dataset folder: one 8x8 image per label entry, in train (and val, the same files)."""
    for split in ("train", "val") if val else ("train",):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for stem, rows in labels.items():
            cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), np.zeros((8, 8, 3), np.uint8))
            (root / "labels" / split / f"{stem}.txt").write_text("".join(f"{r}\n" for r in rows))
    data: dict[str, object] = {"path": str(root), "train": "images/train", "names": dict(enumerate(names))}
    if val:
        data["val"] = "images/val"
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


def _labels_of(mix_dir: Path, split: str, prefix: str) -> list[list[str]]:
    files = sorted((mix_dir / "labels" / split).glob(f"{prefix}_*.txt"))
    return [f.read_text().splitlines() for f in files]


def test_mix_maps_names_weights_images_and_drops_unknown_classes(tmp_path: Path) -> None:
    gen = _dataset(
        tmp_path / "gen",
        ["laundry", "stall", "structure", "car"],  # our names in another order, plus one we do not have
        {f"g{i}": ["0 .5 .5 .1 .1", "3 .2 .2 .1 .1", "1 .4 .4 .2 .2"] for i in range(4)},
    )
    real = _dataset(
        tmp_path / "real",
        ["vendedor_ambulante"],
        {f"r{i}": ["0 .5 .5 .3 .3"] if i % 2 else [] for i in range(10)},
        val=False,
    )
    report = write_mix(
        [DataSource(gen, 2.0), DataSource(real, 0.3)],
        tmp_path / "mix",
        OURS,
        names_map={"vendedor_ambulante": "stall"},
    )
    mix = tmp_path / "mix"
    cfg = yaml.safe_load(report.data_yaml.read_text())
    assert cfg["names"] == dict(enumerate(OURS))
    # Weight 2: every generated image twice; weight 0.3: 3 of the 10 real ones; val only from datasets that have one.
    assert len(list((mix / "images" / "train").glob("d0_*"))) == 8
    assert len(list((mix / "images" / "train").glob("d1_*"))) == 3
    assert len(list((mix / "images" / "val").iterdir())) == 4
    assert all(p.is_symlink() for p in (mix / "images" / "train").iterdir())
    # laundry(0) -> 1, stall(1) -> 0, car dropped; vendedor_ambulante -> stall (0).
    assert all(rows == ["1 .5 .5 .1 .1", "0 .4 .4 .2 .2"] for rows in _labels_of(mix, "train", "d0"))
    assert all(rows in ([], ["0 .5 .5 .3 .3"]) for rows in _labels_of(mix, "train", "d1"))
    assert report.labels_dropped["car"] == 8 + 4
    assert report.renamed == {"vendedor_ambulante": "stall"}
    # Written again (e.g. a new run in the same folder): no stale files of the previous mix stay.
    write_mix([DataSource(real, 1.0)], mix, OURS, names_map={"vendedor_ambulante": "stall"})
    assert len(list((mix / "images" / "train").iterdir())) == 10
    assert len(list((mix / "images" / "val").iterdir())) == 10  # the first dataset has no val: its train


@pytest.mark.parametrize(
    ("names_map", "label_row", "error"),
    [
        ({"vendedor_ambulante": "cart"}, "0 .5 .5 .1 .1", "not our classes"),
        ({}, "0 .5 .5", "4 finite box values"),
        ({}, "x .5 .5 .1 .1", "not 'class cx cy w h'"),
        ({}, "0 .5 .5 inf .1", "4 finite box values"),
    ],
)
def test_mix_bad_input_names_the_file(tmp_path: Path, names_map: dict[str, str], label_row: str, error: str) -> None:
    data = _dataset(tmp_path / "d", ["vendedor_ambulante", "stall"], {"a": ["1 .5 .5 .1 .1", label_row]})
    with pytest.raises(InputError, match=error) as caught:
        write_mix([DataSource(data)], tmp_path / "mix", OURS, names_map=names_map)
    assert str(tmp_path / "d") in str(caught.value)


def test_split_forms_and_label_paths(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "d", OURS, {"a": [], "b": []})
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'd' / 'images' / 'train' / 'a.jpg'}\n\n")
    cfg = {"path": str(tmp_path / "d"), "train": ["images/train", str(listing)], "names": OURS}
    images = split_images(data, cfg, "train")
    assert [p.name for p in images] == ["a.jpg", "b.jpg", "a.jpg"]
    assert label_path(images[0]) == tmp_path / "d" / "labels" / "train" / "a.txt"
    with pytest.raises(InputError, match="neither an image folder nor a list"):
        split_images(data, {**cfg, "train": "missing"}, "train")


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("girardot_reample_chip_14_32_png.rf.4664138e8e9dbfa4cd27d239690e9473.jpg", "girardot_reample_chip_14_32"),
        ("girardot_reample_chip_14_32_png.rf.cf9e43bb68f8760e639460bcfdc13d6b.jpg", "girardot_reample_chip_14_32"),
        ("street_01.jpg", "street_01"),
        ("photo_jpg.rf.00.jpg", "photo"),
    ],
)
def test_source_group(name: str, group: str) -> None:
    assert source_group(Path(name)) == group


def test_holdout_keeps_copies_of_one_photograph_together(tmp_path: Path) -> None:
    images = tmp_path / "train" / "images"
    images.mkdir(parents=True)
    for photo in range(60):
        for copy in ("aa", "bb", "cc"):
            cv2.imwrite(str(images / f"chip_{photo}_png.rf.{copy}{photo}.jpg"), np.zeros((4, 4, 3), np.uint8))
    data = write_holdout(images, tmp_path / "split", names=["vendedor_ambulante"], val_fraction=0.1, test_fraction=0.2)
    cfg = yaml.safe_load(data.read_text())
    groups = {split: {source_group(p) for p in split_images(data, cfg, split)} for split in ("train", "val", "test")}
    assert not (groups["train"] & groups["test"]) and not (groups["train"] & groups["val"])
    assert not (groups["val"] & groups["test"])
    assert sum(len(g) for g in groups.values()) == 60
    assert 4 <= len(groups["test"]) <= 20  # about 20 % of 60 photographs
    # A pure function of the source name: the same split again, and old photographs stay put when new ones come.
    cv2.imwrite(str(images / "chip_new_png.rf.aa.jpg"), np.zeros((4, 4, 3), np.uint8))
    again = write_holdout(images, tmp_path / "split2", names=["x"], val_fraction=0.1, test_fraction=0.2)
    cfg2 = yaml.safe_load(again.read_text())
    test2 = {source_group(p) for p in split_images(again, cfg2, "test")}
    assert groups["test"] <= test2


def _tiny_gen_dataset(root: Path, *, with_test: bool) -> Path:
    """Four rendered scenes (real generator output) as train/val[/test]."""
    from detector.training.dataset import write_dataset

    return write_dataset(
        root,
        train_seeds=range(4),
        val_seeds=range(1_000_000, 1_000_002),
        test_seeds=range(1_500_000, 1_500_002) if with_test else None,
        workers=1,
        imgsz_range=(160, 192),
    )


def test_eval_without_test_split_falls_back_to_val(tmp_path: Path) -> None:
    data = _tiny_gen_dataset(tmp_path / "d", with_test=False)
    proc = subprocess.run(
        [*STREETWATCH, "eval", "--data", str(data), "--imgsz", "160", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no 'test' split; evaluating on 'val'" in proc.stderr
    result = yaml.safe_load(proc.stdout.strip().splitlines()[-1])
    assert set(result["per_class"]) == set(OURS)
    # An explicit split the dataset lacks is still invalid input.
    proc = subprocess.run(
        [*STREETWATCH, "eval", "--data", str(data), "--split", "test"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "no 'test' split" in proc.stderr and str(data) in proc.stderr


def _train_args(data: Path, project: Path, *extra: str) -> list[str]:
    return [
        *STREETWATCH,
        "train",
        "--data",
        str(data),
        "--imgsz",
        "64",
        "--batch",
        "2",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--project",
        str(project),
        "--name",
        "run",
        *extra,
    ]


def _epochs_done(run: Path) -> int:
    results = run / "results.csv"
    if not results.is_file():
        return 0
    with results.open() as f:
        return sum(1 for _ in csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("damage_last", [False, True], ids=["killed", "killed-while-saving"])
def test_train_init_freeze_and_resume_after_a_kill(tmp_path: Path, damage_last: bool) -> None:
    """Start from our shipped weights, kill the run after a checkpoint, resume it to the end.

    ``killed-while-saving``: ultralytics writes ``last.pt`` in place, so a kill can leave it truncated;
    the resume then continues from the whole copy of the epoch before."""
    data = _tiny_gen_dataset(tmp_path / "d", with_test=True)
    init = REPO / "models" / "streetwatch-v2.pt"
    args = _train_args(data, tmp_path / "runs", "--epochs", "4", "--init", str(init), "--freeze", "10")
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    weights = tmp_path / "runs" / "run" / "weights"
    deadline = time.monotonic() + 300
    while not (weights / "last.safe.pt").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    output = proc.communicate(timeout=60)[0]
    assert "tensors loaded, the rest initialised" in output, output[-2000:]
    loaded = output.split("tensors loaded")[0].rsplit(":", 1)[-1].split()
    assert int(loaded[0]) == int(loaded[2]) > 300  # same classes and architecture: every tensor carries over
    done = _epochs_done(tmp_path / "runs" / "run")
    assert (weights / "last.safe.pt").is_file() and done < 4, f"the run was not interrupted ({done} epochs)"
    if damage_last:
        data_bytes = (weights / "last.pt").read_bytes()
        (weights / "last.pt").write_bytes(data_bytes[: len(data_bytes) // 2])
    resumed = subprocess.run([*args, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert ("is damaged (interrupted while saving): resuming from" in resumed.stdout) == damage_last
    assert "starting a new run" not in resumed.stderr
    assert _epochs_done(tmp_path / "runs" / "run") == 4
    assert "best weights:" in resumed.stdout


@pytest.mark.slow
@pytest.mark.skipif(not COCO_V8N.is_file(), reason=f"COCO weights not present at {COCO_V8N} (../shared absent)")
def test_train_from_coco_weights_on_a_real_photo_mix(tmp_path: Path) -> None:
    """COCO-initialised yolov8n on renders mixed with real labelled photographs (names mapped to ours)."""
    if not BOGOTA.is_dir():
        pytest.skip(f"real photographs not present at {BOGOTA} (../shared absent)")
    gen = _tiny_gen_dataset(tmp_path / "gen", with_test=False)
    real = write_holdout(BOGOTA, tmp_path / "bogota", names=["vendedor_ambulante"])
    names_map = tmp_path / "names.yaml"
    names_map.write_text("vendedor_ambulante: stall\n")
    args = _train_args(gen, tmp_path / "runs", "--epochs", "1", "--init", str(COCO_V8N), "--freeze", "10")
    args += ["--data", f"{real}:0.01", "--names-map", str(names_map), "--set", "val=False"]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "349 of 355 tensors loaded" in proc.stdout  # all but the class logits (80 COCO classes -> our 3)
    assert "classes mapped: vendedor_ambulante -> stall" in proc.stderr
    assert (tmp_path / "runs" / "run" / "weights" / "best.pt").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--init", "missing.pt"], "initial weights not found"),
        (["--data", "missing.yaml"], "dataset yaml not found"),
        (["--data", "x.yaml:zero"], "must be a number"),
        (["--names-map", "missing-map.yaml"], "cannot read the names map"),
        (["--set", "novalue"], "--set expects KEY=VALUE"),
    ],
)
def test_train_bad_input_exits_2(tmp_path: Path, extra: list[str], message: str) -> None:
    data = _dataset(tmp_path / "d", OURS, {"a": []})
    proc = subprocess.run(
        _train_args(data, tmp_path / "runs", "--epochs", "1", *extra), cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
