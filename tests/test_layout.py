"""The only-downward import rule (DESIGN §2), read from the source files' own imports.

Each room of ``detector/`` names on the second line of its ``__init__`` docstring ("May import: …") the
rooms it may import; this test holds the code to those lines, so the docstrings cannot drift.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DETECTOR = REPO / "detector"
ROOMS = sorted(p.parent.name for p in DETECTOR.glob("*/__init__.py"))
TOP_LEVEL_MODULES = {"__init__", "__main__", "cli", "demo"}
HEAVY = {"cv2", "torch", "torchvision", "ultralytics"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


def room_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "detector" and parts[1] in ROOMS else None


def allowed_rooms(room: str) -> set[str]:
    doc = ast.get_docstring(ast.parse((DETECTOR / room / "__init__.py").read_text(encoding="utf-8"))) or ""
    lines = doc.splitlines()
    assert len(lines) == 2, f"detector/{room}/__init__.py: the docstring must be two lines (what, may import)"
    assert lines[1].startswith("May import:"), f"detector/{room}/__init__.py: second line must say 'May import:'"
    return set(re.findall(r"detector\.([a-z_]+)", lines[1]))


def test_rooms_exist() -> None:
    assert set(ROOMS) >= {"video", "model", "incidents", "evidence", "audit", "live", "training"}
    loose = {p.stem for p in DETECTOR.glob("*.py")} - TOP_LEVEL_MODULES
    assert not loose, f"modules outside a room in detector/: {sorted(loose)}"


@pytest.mark.parametrize("room", ROOMS)
def test_room_imports_only_what_its_init_allows(room: str) -> None:
    allowed = allowed_rooms(room)
    assert room not in allowed
    for path in python_files(f"detector/{room}"):
        for name in imported_modules(path):
            assert top(name) != "service", f"{path.relative_to(REPO)} imports {name}: nothing imports service"
            other = room_of(name)
            if other is not None and other != room:
                assert other in allowed, f"{path.relative_to(REPO)} imports {name}, not allowed for detector.{room}"
            top_level = name == "detector" or (top(name) == "detector" and other is None)
            assert not top_level, f"{path.relative_to(REPO)} imports {name}: rooms never import the top-level CLI"


def test_room_order_has_no_cycle() -> None:
    graph = {room: allowed_rooms(room) for room in ROOMS}
    for room in ROOMS:
        seen, todo = set(), list(graph[room])
        while todo:
            current = todo.pop()
            assert current != room, f"detector.{room} can reach itself through the allowed imports: {graph}"
            if current not in seen:
                seen.add(current)
                todo.extend(graph.get(current, ()))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("zones", {"detector", "service", "torch", "torchvision", "ultralytics"}),
        ("service", {"detector"} | HEAVY),
    ],
)
def test_lower_rooms_never_import_upward(package: str, forbidden: set[str]) -> None:
    for path in python_files(package):
        bad = {name for name in imported_modules(path) if top(name) in forbidden}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_only_model_and_training_import_ultralytics_or_torch() -> None:
    for path in python_files("detector"):
        heavy = {name for name in imported_modules(path) if top(name) in {"torch", "torchvision", "ultralytics"}}
        if heavy:
            assert room_of(".".join(path.relative_to(REPO).with_suffix("").parts)) in {"model", "training"}, (
                f"{path.relative_to(REPO)} imports {sorted(heavy)}"
            )

