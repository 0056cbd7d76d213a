#!/usr/bin/env python3
"""Execute the capacity-planning notebooks, optionally with parameters overridden.

    python notebooks/run.py                       # every notebook at its defaults; figures -> docs/images
    python notebooks/run.py 01-sizing.ipynb --set SEEDS=10 --set "RATE=2.5"
    python notebooks/run.py --save                # also write the executed notebooks (with outputs) back

Parameters are injected as a cell right after the one tagged ``parameters`` (the papermill
convention), so a notebook opened in Jupyter runs the same code with its own defaults. Notebooks run
with ``notebooks/`` as their working directory, where their default ``FIGURE_DIR`` points to
``../docs/images``.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def inject(nb: Any, params: dict[str, Any]) -> Any:
    """Insert a cell assigning ``params`` after the cell tagged ``parameters`` (which must exist)."""
    if not params:
        return nb
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    source = "# injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)
    return nb


def execute_notebook(path: Path, params: dict[str, Any] | None = None, *, timeout: int = 1800) -> Any:
    """Run the notebook at ``path`` on a fresh kernel and return it with its outputs.

    Raises ``nbclient.exceptions.CellExecutionError`` when a cell raises.
    """
    nb = inject(nbformat.read(path, as_version=4), params or {})
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook file names (default: all in notebooks/)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a parameter (a Python literal)"
    )
    parser.add_argument("--save", action="store_true", help="write the executed notebooks back with their outputs")
    args = parser.parse_args(argv)
    params: dict[str, Any] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        try:
            params[name.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name.strip()] = value
    paths = [HERE / n for n in args.names] if args.names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        started = time.perf_counter()
        nb = execute_notebook(path, params)
        print(f"{path.name}: ran in {time.perf_counter() - started:.0f} s")
        if args.save:
            nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
