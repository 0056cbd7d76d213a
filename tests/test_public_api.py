"""The public API says what it is: every name exported from ``jqc`` and ``jqc_pytest``, and every
public method and property of the exported classes, has a docstring; and the docs use only the
public API (no ``jqc.<internal module>`` imports in examples)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import jqc
import jqc_pytest

ROOT = Path(__file__).resolve().parents[1]


def _missing_docs(name: str, obj: object) -> list[str]:
    missing = [] if (inspect.getdoc(obj) or "").strip() else [name]
    if inspect.isclass(obj):
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            target = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            target = target.fget if isinstance(target, property) else target
            if callable(target) and not (getattr(target, "__doc__", None) or "").strip():
                missing.append(f"{name}.{attr}")
    return missing


def test_every_public_name_has_a_docstring() -> None:
    missing: list[str] = []
    for name in jqc.__all__:
        if not name.startswith("__"):
            missing += _missing_docs(name, getattr(jqc, name))
    for name in dir(jqc_pytest):
        obj = getattr(jqc_pytest, name)
        defined_here = getattr(obj, "__module__", None) == "jqc_pytest"
        if not name.startswith("_") and defined_here and (inspect.isfunction(obj) or inspect.isclass(obj)):
            missing += _missing_docs(f"jqc_pytest.{name}", obj)
    assert len(jqc.__all__) > 40
    assert missing == []


def test_the_dashboard_names_have_docstrings() -> None:
    import jqc.dashboard

    documented = [name for name in jqc.dashboard.__all__ if name != "AuthHook"]  # a type alias, documented in place
    missing = [m for name in documented for m in _missing_docs(name, getattr(jqc.dashboard, name))]
    assert set(jqc.dashboard.__all__) == {"AuthHook", "app", "basic_auth"} and missing == []


def test_the_checker_notices_a_missing_docstring() -> None:
    class Undocumented:
        def method(self) -> None:
            pass

    assert _missing_docs("Undocumented", Undocumented) == ["Undocumented", "Undocumented.method"]


# Modules a user's code may import besides ``jqc`` itself: documented entry points of their own.
PUBLIC_MODULES = {
    "jqc",
    "jqc.testing",
    "jqc.sim",
    "jqc.scaling",
    "jqc.coordinator",
    "jqc.worker.tracing",
    "jqc.dashboard",
    "jqc_pytest",
}
IMPORT = re.compile(r"^\s*(?:from\s+(jqc[\w.]*)\s+import\s+([\w, ]+)|import\s+(jqc[\w.]*))", re.MULTILINE)


def test_docs_import_only_the_public_api() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found: dict[str, set[str]] = {}
    for page in pages:
        for block in re.findall(r"```(?:python|py)?\n(.*?)```", page.read_text("utf-8"), re.DOTALL):
            for match in IMPORT.finditer(block):
                source, names, plain = match.groups()
                if plain is not None:
                    used = {plain}
                else:  # ``from jqc.worker import tracing`` imports the module jqc.worker.tracing
                    used = {f"{source}.{n.strip()}" if f"{source}.{n.strip()}" in PUBLIC_MODULES else source
                            for n in names.split(",")}  # fmt: skip
                for module in used - PUBLIC_MODULES:
                    found.setdefault(page.name, set()).add(module)
    assert found == {}
