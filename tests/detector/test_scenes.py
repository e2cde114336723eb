"""The synthetic training-data generator, the dataset writer and the demo clips' ground truth."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from detector.training import clips
from detector.training.dataset import (
    NEGATIVES_SEED0,
    TEST_SEED0,
    VAL_SEED0,
    image_size,
    write_dataset,
    write_negatives,
)
from detector.training.scenes import CLASS_NAMES, build_scene, render_scene
from detector.training.train import _aligned_data, _count_instances
from zones.config import load_camera_config

SAMPLE_VIDEOS = Path(__file__).resolve().parents[2] / "sample_videos"


@pytest.mark.parametrize(("seed", "size"), [(3, (320, 180)), (11, (288, 384)), (2_000_001, (400, 300))])
def test_same_seed_same_image_and_labels(seed: int, size: tuple[int, int]) -> None:
    img1, labels1 = render_scene(seed, *size)
    img2, labels2 = render_scene(seed, *size)
    assert img1.shape == (size[1], size[0], 3) and img1.dtype == np.uint8
    assert np.array_equal(img1, img2)
    assert labels1 == labels2


def test_different_seeds_differ() -> None:
    a, _ = render_scene(5, 320, 180)
    b, _ = render_scene(6, 320, 180)
    assert not np.array_equal(a, b)


def test_labels_are_normalised_non_degenerate_boxes() -> None:
    all_labels = []
    for seed in range(10):
        w, h = 384, 216
        _, labels = render_scene(seed, w, h)
        for cls, cx, cy, bw, bh in labels:
            assert cls in (0, 1, 2)
            assert 0 < bw <= 1 and 0 < bh <= 1
            # Inside the frame, corners included (tiny float slack).
            assert cx - bw / 2 >= -1e-9 and cx + bw / 2 <= 1 + 1e-9
            assert cy - bh / 2 >= -1e-9 and cy + bh / 2 <= 1 + 1e-9
            # Not smaller than the documented minimum (10 px at a 640 long side).
            assert min(bw * w, bh * h) >= 10 * max(w, h) / 640 - 1e-6
        all_labels += labels
    # The generator must actually produce every class over a handful of scenes.
    assert {c for c, *_ in all_labels} == {0, 1, 2}


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_negatives_only_has_no_positives(seed: int) -> None:
    scene = build_scene(seed, 320, 180, negatives_only=True)
    assert all(o.cls < 0 for o in scene.objects)
    assert len(scene.objects) > 0  # distractors are there
    _, labels = render_scene(seed, 320, 180, negatives_only=True)
    assert labels == []


@pytest.mark.parametrize("seed", range(0, 40, 7))
def test_image_size_in_range(seed: int) -> None:
    w, h = image_size(seed, (480, 1280))
    assert 480 // 16 * 16 <= max(w, h) <= 1280
    assert min(w, h) >= max(w, h) // 2
    assert w % 2 == 0 and h % 2 == 0


def _read_labels(path: Path) -> list[list[float]]:
    return [[float(v) for v in row.split()] for row in path.read_text().splitlines() if row.strip()]


def test_dataset_writer_makes_ultralytics_layout(tmp_path: Path) -> None:
    data = write_dataset(
        tmp_path / "ds",
        train_seeds=range(0, 4),
        val_seeds=range(VAL_SEED0, VAL_SEED0 + 2),
        test_seeds=range(TEST_SEED0, TEST_SEED0 + 2),
        workers=1,
        imgsz_range=(256, 320),
        negatives_fraction=0.25,
    )
    cfg = yaml.safe_load(data.read_text())
    assert cfg["names"] == {0: "stall", 1: "laundry", 2: "structure"}
    assert tuple(cfg["names"].values()) == CLASS_NAMES
    root = Path(cfg["path"])
    expected = {"train": 4, "val": 2, "test": 2}
    n_boxes = 0
    for split, n in expected.items():
        assert cfg[split] == f"images/{split}"
        images = sorted((root / "images" / split).glob("*.jpg"))
        labels = sorted((root / "labels" / split).glob("*.txt"))
        assert [p.stem for p in images] == [p.stem for p in labels]
        assert len(images) == n
        for img_path, lbl_path in zip(images, labels, strict=True):
            img = cv2.imread(str(img_path))
            assert img is not None
            assert (img.shape[1], img.shape[0]) == image_size(int(img_path.stem), (256, 320))
            for row in _read_labels(lbl_path):
                assert len(row) == 5 and int(row[0]) in (0, 1, 2)
                assert all(0 <= v <= 1 for v in row[1:]) and row[3] > 0 and row[4] > 0
                n_boxes += 1
    assert n_boxes > 0
    neg = write_negatives(
        tmp_path / "neg", range(NEGATIVES_SEED0, NEGATIVES_SEED0 + 2), workers=1, imgsz_range=(256, 320)
    )
    assert len(list(neg.glob("*.jpg"))) == 2
    assert all(p.read_text() == "" for p in (tmp_path / "neg" / "labels").glob("*.txt"))


@pytest.mark.parametrize(
    ("arguments", "expected_files"),
    [
        ([], ["images/val/01000000.jpg", "negatives/images/02000000.jpg"]),
        (
            ["--val-seed0", "1100000", "--negatives-seed0", "2100000"],
            ["images/val/01100000.jpg", "negatives/images/02100000.jpg"],
        ),
    ],
)
def test_dataset_command_seeds(tmp_path: Path, arguments: list[str], expected_files: list[str]) -> None:
    """A calibration set takes seeds of its own: the command's first validation and distractor-only seeds."""
    from detector.training.dataset import main

    sizes = ["--min-size", "128", "--max-size", "160", "--workers", "1"]
    main(["--out", str(tmp_path), "--train", "0", "--val", "1", "--test", "0", "--negatives", "1", *sizes, *arguments])
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.jpg"))
    assert written == expected_files


@pytest.mark.parametrize(
    ("dataset_names", "model_names", "rows", "expected_rows", "expected_counts"),
    [
        # Same order: labels untouched, the original yaml is used.
        (["stall", "laundry", "structure"], ["stall", "laundry", "structure"], ["1 .5 .5 .1 .1"], None, [0, 1, 0]),
        # Reordered dataset: ids follow the model's names.
        (
            ["structure", "stall", "laundry"],
            ["stall", "laundry", "structure"],
            ["0 .5 .5 .1 .1", "2 .4 .4 .1 .1"],
            ["2 .5 .5 .1 .1", "1 .4 .4 .1 .1"],
            [0, 1, 1],
        ),
        # A dataset class the model does not know is dropped.
        (
            ["car", "laundry"],
            ["stall", "laundry", "structure"],
            ["0 .5 .5 .1 .1", "1 .4 .4 .1 .1"],
            ["1 .4 .4 .1 .1"],
            [0, 1, 0],
        ),
    ],
)
def test_eval_matches_classes_by_name(
    tmp_path: Path,
    dataset_names: list[str],
    model_names: list[str],
    rows: list[str],
    expected_rows: list[str] | None,
    expected_counts: list[int],
) -> None:
    (tmp_path / "images" / "test").mkdir(parents=True)
    (tmp_path / "labels" / "test").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "test" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "labels" / "test" / "a.txt").write_text("\n".join(rows) + "\n")
    data = tmp_path / "data.yaml"
    data.write_text(
        yaml.safe_dump(
            {
                "path": str(tmp_path),
                "train": "images/test",
                "val": "images/test",
                "test": "images/test",
                "names": dict(enumerate(dataset_names)),
            }
        )
    )
    work = tmp_path / "aligned"
    out, id_map = _aligned_data(data, "test", model_names, work)
    if expected_rows is None:
        assert out == data
    else:
        cfg = yaml.safe_load(out.read_text())
        assert list(cfg["names"].values()) == model_names
        assert (work / "labels" / "test" / "000000_a.txt").read_text().splitlines() == expected_rows
    assert _count_instances([tmp_path / "labels" / "test" / "a.txt"], len(model_names), id_map) == expected_counts


CLIP_NAMES = sorted(clips.CLIPS)


def test_at_least_three_clips() -> None:
    assert len(CLIP_NAMES) >= 3
    for name in CLIP_NAMES:
        for suffix in (".mp4", ".camera.yaml", ".truth.json"):
            assert (SAMPLE_VIDEOS / f"{name}{suffix}").is_file(), (
                f"{name}{suffix} missing; run python -m detector.training.clips"
            )


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_clip_truth_matches_camera_zones(name: str) -> None:
    config = load_camera_config(SAMPLE_VIDEOS / f"{name}.camera.yaml")
    assert config.resolve_source() == str(SAMPLE_VIDEOS / f"{name}.mp4")
    assert Path(config.resolve_source()).is_file()
    truth = json.loads((SAMPLE_VIDEOS / f"{name}.truth.json").read_text())
    start = datetime.fromisoformat(truth["start_time"])
    assert start.utcoffset() is not None and start.utcoffset().total_seconds() == 8 * 3600
    zones = {z.name: z for z in config.zones}
    for inc in truth["incidents"]:
        assert inc["zone"] in zones, f"{name}: truth zone {inc['zone']} not in the camera config"
        assert inc["category"] in zones[inc["zone"]].categories
        assert inc["start_s"] >= 0
        assert inc["end_s"] is None or inc["end_s"] > inc["start_s"]
        if inc["lonlat"] is not None:
            lon, lat = inc["lonlat"]
            # Within a street's reach of the camera.
            assert abs(lon - config.location.lon) < 0.001 and abs(lat - config.location.lat) < 0.001
    assert config.calibration is not None and len(config.calibration.points) >= 4


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_committed_clip_files_match_the_generator(tmp_path: Path, name: str) -> None:
    paths = clips.write_clip(name, tmp_path, video=False)
    assert paths["camera"].read_text() == (SAMPLE_VIDEOS / f"{name}.camera.yaml").read_text()
    assert paths["truth"].read_text() == (SAMPLE_VIDEOS / f"{name}.truth.json").read_text()


def test_clip_video_is_h264_at_25_fps() -> None:
    import av

    for name in CLIP_NAMES:
        with av.open(str(SAMPLE_VIDEOS / f"{name}.mp4")) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert float(stream.average_rate) == clips.FPS
            assert (stream.width, stream.height) == (clips.WIDTH, clips.HEIGHT)
            duration = float(stream.duration * stream.time_base)
            assert 30 <= duration <= 120


@pytest.mark.slow
@pytest.mark.parametrize(("start", "keeps_weights"), [("checkpoint", True), ("yaml", False)])
def test_training_from_our_checkpoint_keeps_its_weights(
    tmp_path: Path, untrained_model: Path, start: str, keeps_weights: bool
) -> None:
    """A city fine-tunes from a .pt of ours: training must start from those weights, not a fresh model.

    With a zero learning rate nothing moves, so the result equals the starting checkpoint exactly when the
    checkpoint was used (ultralytics silently discards loaded weights when ``pretrained`` is False).
    """
    import torch

    from detector.training.train import train

    data = write_dataset(
        tmp_path / "ds",
        train_seeds=range(0, 4),
        val_seeds=range(VAL_SEED0, VAL_SEED0 + 2),
        workers=1,
        imgsz_range=(128, 160),
    )
    best = train(
        data,
        epochs=1,
        imgsz=64,
        model_yaml=str(untrained_model) if start == "checkpoint" else "yolov8n.yaml",
        batch=4,
        device="cpu",
        project=tmp_path / "runs",
        name="ft",
        workers=0,
        optimizer="SGD",
        lr0=0.0,
        momentum=0.0,
        weight_decay=0.0,
        warmup_epochs=0,
        warmup_bias_lr=0.0,
        val=False,
    )

    def first_conv(path: Path) -> torch.Tensor:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        model = ckpt.get("ema") or ckpt["model"]
        return model.float().state_dict()["model.0.conv.weight"]

    same = torch.allclose(first_conv(best), first_conv(untrained_model), atol=1e-3)
    assert same is keeps_weights
