"""Shared fixtures: the console script, generated videos, an offline environment."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("STREETWATCH_WEBHOOK_ALLOW_PRIVATE", "1")
# Tests build many throwaway models; exporting each to ONNX/OpenVINO would cost 15-30 s apiece. Tests of
# the backends (and the sample-clip gate, which runs the default like a user) choose theirs explicitly.
os.environ.setdefault("STREETWATCH_BACKEND", "pytorch")

REPO = Path(__file__).resolve().parent.parent
STREETWATCH = str(Path(sys.executable).with_name("streetwatch"))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (for servers the tests start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def streetwatch_command() -> list[str]:
    """The console script beside this Python (the venv's), else the one on PATH."""
    if Path(STREETWATCH).exists():
        return [STREETWATCH]
    found = shutil.which("streetwatch")
    assert found, "the streetwatch console script is not installed (pip install -e .)"
    return [found]


def run_cli_in_process(args: list[str]) -> tuple[int, str, str, float]:
    """``streetwatch ARGS`` in this process (fast, for fuzz campaigns): exit code, stdout, stderr, seconds.
    Exceptions other than the exit propagate."""
    import io
    import time
    from contextlib import redirect_stderr, redirect_stdout

    import detector.cli

    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            detector.cli.main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        else:
            code = 0
    return code, out.getvalue(), err.getvalue(), time.monotonic() - started


def fuzz_settings(default_examples: int) -> Any:
    """hypothesis settings for a fuzz test: ``STREETWATCH_FUZZ_EXAMPLES`` (``make fuzz``) or the default."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=int(os.environ.get("STREETWATCH_FUZZ_EXAMPLES", str(default_examples))),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


def run_cli(
    *args: str | Path, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the real console script, as a user would (``env`` adds to or overrides the test environment)."""
    return subprocess.run(
        [STREETWATCH, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "YOLO_OFFLINE": "1", **(env or {})},
        check=False,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


def make_test_video(
    path: Path, *, seconds: float, size: str = "640x360", fps: int = 25, codec: str = "libx264"
) -> Path:
    """A real H.264 (or other codec) clip from FFmpeg's test source."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}"]
    args += ["-t", str(seconds), "-c:v", codec, "-g", "50"]
    if codec == "libx264":
        args += ["-pix_fmt", "yuv420p", "-movflags", "+faststart"]
    subprocess.run([*args, "-y", str(path)], check=True, timeout=120)
    return path


def build_untrained_model(path: Path, names: dict[int, str]) -> Path:
    """A yolov8n built from its yaml (no download) with random weights and the given class names."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=len(names), verbose=False)
    model.names = names
    torch.save({"model": model, "train_args": {}, "epoch": -1}, path)
    return path


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_untrained_model(
        tmp_path_factory.mktemp("models") / "untrained.pt", {0: "stall", 1: "laundry", 2: "structure"}
    )


def screenshot_page(page: Path, tmp_path: Path, *, size: tuple[int, int] = (1280, 2000)) -> Path:
    """A headless Debian Chromium screenshot of a local page (skipped without Chromium, except in CI)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI")
        pytest.skip("chromium is not installed")
    png = tmp_path / f"{page.stem}.png"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--screenshot={png}",
        f"--window-size={size[0]},{size[1]}",
        page.resolve().as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert png.is_file(), "chromium wrote no screenshot"
    return png


# Counts that the reliability tests report (inputs tried, faults injected, messages delivered): issue #8 wants
# them visible in every run's output, so they are collected here and printed in pytest's terminal summary.
_COUNTS: list[str] = []


def report_count(line: str) -> None:
    """Record one summary line, e.g. ``report_count("camera YAML fuzz: 200 mutations, 200 exit 2")``."""
    _COUNTS.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _COUNTS:
        terminalreporter.section("reliability counts")
        for line in _COUNTS:
            terminalreporter.write_line(line)
