"""Pieces the service and live benchmarks share: a real ``streetwatch serve`` process with tokens,
process CPU from /proc, latency percentiles, version lines for the machine facts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from bench.live_memory import free_port, wait_until

BIN = Path(sys.executable).parent
STREETWATCH = str(BIN / "streetwatch")
_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def package_versions(names: Sequence[str]) -> str:
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """Count and p50/p95/p99/max in milliseconds (linear interpolation between ranks, numpy's default)."""
    if not seconds:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(seconds, dtype=float) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "n": len(seconds),
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its live children (e.g. a PostgreSQL postmaster and its backends)."""
    total = cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICK
    return total


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (``comm``) summed over the live threads of a process. FFmpeg names its
    decoder threads ``av:<codec>:…``, the live capture its threads ``capture-<camera>``; other Python
    threads keep the process name."""
    totals: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _CLOCK_TICK
    return totals


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat, for a utilisation between two reads."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def create_token(db: str, role: str, name: str) -> str:
    done = subprocess.run(
        [STREETWATCH, "token", "create", "--role", role, "--name", name, "--db", db],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"streetwatch token create failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Serve:
    """A ``streetwatch serve`` child process on a loopback port."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


def start_serve(db: str, log: Path, *, env: dict[str, str] | None = None, timeout_s: float = 60) -> Serve:
    import httpx

    port = free_port()
    environment = dict(os.environ, STREETWATCH_LOG_LEVEL="warning", YOLO_OFFLINE="1", **(env or {}))
    process = subprocess.Popen(
        [STREETWATCH, "serve", "--port", str(port), "--db", db],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"streetwatch serve exited with {process.returncode}:\n{tail(log)}")
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200

    try:
        wait_until(up, timeout_s)
    except SystemExit as error:
        stop_process(process)
        raise SystemExit(f"streetwatch serve did not start ({error}); log {log}:\n{tail(log)}") from None
    return Serve(process=process, url=url, log=log)


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 20) -> None:
    """SIGTERM this child (by its own pid), then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
