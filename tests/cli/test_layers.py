"""The command line is jqc's top layer: no module of the library imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import jqc

PACKAGE = Path(jqc.__file__).parent
ENTRY_POINTS = {PACKAGE / "__main__.py"}  # `python -m jqc` runs the command line, as the `jqc` script does


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved (``from jqc import cli`` gives ``jqc.cli``)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts if parts[-1] == "__init__" else parts[:-1]
    package = [p for p in package if p != "__init__"]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_nothing_outside_jqc_cli_imports_it() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "cli") or path in ENTRY_POINTS:
            continue
        bad = sorted(m for m in _imported(path) if m == "jqc.cli" or m.startswith("jqc.cli."))
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE.parent)}: {', '.join(bad)}")
    assert offenders == []


def test_the_import_scan_sees_absolute_and_relative_imports() -> None:
    assert "jqc.cli.main" in _imported(PACKAGE / "__main__.py")  # `from jqc.cli import main`
    pool = _imported(PACKAGE / "coordinator" / "pool.py")  # `from .autoscale import ...`, `from jqc.errors ...`
    assert "jqc.errors" in pool and "jqc.coordinator.autoscale.Coordinator" in pool
    assert "jqc.cli.output.show" in _imported(PACKAGE / "cli" / "queues.py")  # `from .output import show`
