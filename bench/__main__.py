"""``make bench``: run the benchmarks and append the figures to bench/RESULTS.md with the machine."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

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


def section_heading(title: str, detail: str | None = None) -> list[str]:
    """The first lines of a RESULTS.md section: time, title, machine (and ``detail`` after it)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [f"## {stamp} — {title}", "", f"Machine: {machine()}" + (f"; {detail}" if detail else ""), ""]


BENCHES = (
    "audit_throughput", "inference", "model_compare", "ingest", "live_capacity", "live_gate", "view_check", "ray_audit",
)  # fmt: skip


def _block(name: str, figures: dict[str, Any], command: str) -> str:
    """Markdown for one benchmark: its own table where it has one, else its figures as JSON."""
    module = importlib.import_module(f"bench.{name}")
    render = getattr(module, "markdown", None)
    if render is None:
        return f"### {name}\n\n```json\n{json.dumps(figures, indent=2)}\n```"
    params = inspect.signature(render).parameters
    return str(render(figures, command) if len(params) > 1 else render(figures))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"which to run (default all: {', '.join(BENCHES)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    names = args.names or list(BENCHES)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    blocks = [f"\n## {stamp}\n\nMachine: {machine()}\n"]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        figures = module.run()
        blocks.append(_block(name, figures, f"python -m bench {name}"))
        # Each benchmark's figures are kept as soon as they exist: a later one failing loses nothing.
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(("\n".join(blocks) if len(blocks) == 2 else blocks[-1]) + "\n")
        print(blocks[-1], flush=True)


if __name__ == "__main__":
    main()
