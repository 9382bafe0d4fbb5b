"""`dsl/` is the pure core: it imports nothing from the rest of Journeyflow and does no I/O
beyond reading its own grammar."""

from __future__ import annotations

import ast
from pathlib import Path

import dsl

PROJECT_PACKAGES = {"engine", "storage", "actions", "builder_ui", "journeyflow"}
IO_MODULES = {"sqlalchemy", "httpx", "socket", "subprocess", "starlette", "arq", "redis"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_dsl_imports_nothing_from_the_project_and_no_io_library() -> None:
    package = Path(dsl.__file__).parent
    offenders = {
        path.name: sorted(imported_roots(path) & (PROJECT_PACKAGES | IO_MODULES))
        for path in package.glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}
