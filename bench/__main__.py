"""``make bench``: run the benchmarks and append the figures to bench/RESULTS.md with the machine."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench import audit_throughput

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{name} {version(name)}" for name in ("ultralytics", "torch", "av", "opencv-python-headless"))
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}"


def main() -> None:
    figures = {"audit_throughput": audit_throughput.run()}
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"\n## {stamp}\n\nMachine: {machine()}\n\n```json\n{json.dumps(figures, indent=2)}\n```\n"
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(block)
    print(block)


if __name__ == "__main__":
    main()
