"""Frame sources: container timestamps, sampling, damage detection (DESIGN §3.4b)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.video.sources import ImageFolder, Sampler, VideoFile, open_source
from tests.conftest import make_test_video
from zones.errors import VideoError


@pytest.mark.parametrize(
    ("sample_fps", "timestamps", "expected"),
    [
        (1.0, [i / 25 for i in range(75)], [0.0, 1.0, 2.0]),
        (2.0, [i / 10 for i in range(20)], [0.0, 0.5, 1.0, 1.5]),
        (None, [0.0, 0.04, 0.08], [0.0, 0.04, 0.08]),
        # variable frame rate: a gap skips the grid points it covers without bunching afterwards
        (1.0, [0.0, 0.5, 3.2, 3.7, 4.1, 4.6, 5.0], [0.0, 3.2, 4.1, 5.0]),
    ],
)
def test_sampler_follows_timestamps(sample_fps: float | None, timestamps: list[float], expected: list[float]) -> None:
    sampler = Sampler(sample_fps)
    assert [t for t in timestamps if sampler.take(t)] == pytest.approx(expected)


def test_whole_video_yields_sampled_frames_from_container_time(tmp_path: Path) -> None:
    video = VideoFile(make_test_video(tmp_path / "ok.mp4", seconds=6), sample_fps=1.0)
    frames = list(video.frames())
    assert [round(f.t, 2) for f in frames] == [0, 1, 2, 3, 4, 5]
    assert [f.index for f in frames] == [0, 25, 50, 75, 100, 125]
    assert frames[0].image.shape == (360, 640, 3)
    assert video.report.error is None
    assert video.report.frames_read == video.report.frames_expected == 150


@pytest.mark.parametrize(
    ("sample_fps", "expected_t"),
    [
        # 12 s clip, key frames every 2 s (GOP 50 at 25 fps)
        (None, [0, 2, 4, 6, 8, 10]),
        (0.25, [0, 4, 8]),  # the audit's 4 s stride: the key frames in between are never decoded
        (0.2, [0, 6, 10]),  # a 5 s stride: the first key frame at or after each point of its grid
    ],
)
def test_key_frames_the_stride_passes_over_are_not_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_fps: float | None, expected_t: list[float]
) -> None:
    video = VideoFile(make_test_video(tmp_path / "gop50.mp4", seconds=12), sample_fps=sample_fps)
    video.keyframes_only = True
    decoded_keys: list[float] = []
    decode = VideoFile._decode

    def counting(self: VideoFile, packet: object) -> list[object]:
        if packet is not None and getattr(packet, "is_keyframe", False):
            decoded_keys.append(round(self._packet_t(packet), 2))  # type: ignore[arg-type]
        return decode(self, packet)  # type: ignore[arg-type]

    monkeypatch.setattr(VideoFile, "_decode", counting)
    frames = list(video.frames())
    assert [round(f.t, 2) for f in frames] == expected_t
    assert decoded_keys == expected_t
    assert video.report.error is None and video.report.frames_read == 300


@pytest.mark.parametrize(("suffix", "codec"), [("mp4", "libx264"), ("avi", "mpeg4")])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_video_is_read_in_part_and_flagged(tmp_path: Path, suffix: str, codec: str, keep: float) -> None:
    whole = make_test_video(tmp_path / f"whole.{suffix}", seconds=20, codec=codec)
    cut = tmp_path / f"cut.{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    video = VideoFile(cut, sample_fps=1.0)
    frames = list(video.frames())
    assert video.report.error == "truncated"
    assert 0 < video.report.frames_read < video.report.frames_expected
    assert frames[-1].t <= 20 * keep + 1.5


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "cannot open video"),
        (bytes(range(256)) * 80, "cannot open video"),
        (cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes(), "video"),
    ],
)
def test_undecodable_file_is_a_video_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=expected) as error:
        source = open_source(path, sample_fps=1.0)
        list(source.frames())
    assert str(path) in str(error.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="file not found"):
        open_source(tmp_path / "missing.mp4", sample_fps=1.0)


def test_image_folder_skips_a_corrupt_image_and_reports_it(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), np.full((40, 60, 3), i * 40, np.uint8))
    (tmp_path / "003.jpg").write_bytes(b"not a jpeg")
    folder = ImageFolder(tmp_path, sample_fps=0.5)
    frames = list(folder.frames())
    assert [f.t for f in frames] == [0.0, 2.0, 4.0]
    assert folder.report.error == "corrupt"
    assert "003.jpg" in (folder.report.detail or "")


def _png_bomb(path: Path, side: int = 20000) -> Path:
    """A 1-bit 20000×20000 PNG: about 50 KB on disk, 400 million pixels once decoded."""
    import struct
    import zlib

    row = b"\x00" + b"\x00" * ((side + 7) // 8)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * side, 9)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_decompression_bomb_in_an_image_folder_is_refused_not_decoded(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "000.jpg"), np.zeros((40, 60, 3), np.uint8))
    _png_bomb(tmp_path / "001.png")
    folder = ImageFolder(tmp_path, sample_fps=1.0)
    assert [f.index for f in folder.frames()] == [0]
    assert folder.report.error == "corrupt" and "001.png" in (folder.report.detail or "")


def test_decompression_bomb_alone_exits_2(tmp_path: Path, untrained_model: Path) -> None:
    from tests.conftest import run_cli

    folder = tmp_path / "frames"
    folder.mkdir()
    _png_bomb(folder / "000.png")
    camera = tmp_path / "camera.yaml"
    camera.write_text(
        "id: cam-1\nname: c\nsource: x\ntimezone: UTC\nlocation: {lon: 0, lat: 0}\nzones: []\n", encoding="utf-8"
    )
    done = run_cli("audit", folder, "--camera", camera, "--out", tmp_path / "out", "--model", untrained_model)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "000.png: cannot decode the first image" in done.stderr
