"""The shape of the package: no import cycle anywhere in jqc.

The layers themselves are import-linter's contract (``[tool.importlinter]`` in pyproject.toml, run
by ``make test`` as ``lint-imports``, type-checking imports included); import-linter does not look
for cycles inside a layer, so this test does, on the same import graph (grimp's). Imports made only
for the type checker (``if TYPE_CHECKING:``) are left out here: a protocol naming the class that
implements it couples nothing at run time.
"""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), the package root excluded:
    ``jqc/__init__.py`` only re-exports the public API, which every layer may be imported through."""
    modules = sorted(m for m in graph.modules if m != "jqc")
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) - {"jqc"}) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, []):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_in_jqc() -> None:
    graph = grimp.build_graph("jqc", exclude_type_checking_imports=True)
    assert len(graph.modules) > 50, "the import graph is empty: the check is broken"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = grimp.build_graph("jqc")
    graph.add_import(importer="jqc.errors", imported="jqc.engine.queue")  # engine.queue reaches errors
    assert any("jqc.errors" in cycle for cycle in _cycles(graph))
