"""Every notebook in notebooks/ runs end to end, so a change that breaks one fails ``make test``.

The notebooks are executed with nbclient on a fresh kernel, with smaller parameters injected after
their ``parameters`` cell (the papermill convention) so the suite stays fast, and figures written to
a temporary directory instead of docs/images. Each notebook checks its own claims (``CHECK = True``)
and raises when one fails, which fails the test. ``make notebooks`` runs them at full size and
refreshes the figures under docs/images.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

# notebooks/run.py (behind `make notebooks`) is a script, not a package module: load it by path.
_spec = importlib.util.spec_from_file_location("jqc_notebooks_run", NOTEBOOKS / "run.py")
assert _spec is not None and _spec.loader is not None
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

FIGURES = {
    "01-sizing.ipynb": ["sizing-hockey-stick.png", "sizing-run-time-spread.png", "sizing-workers.png"],
    "02-bursts-and-failures.ipynb": ["burst-timeline.png", "failure-costs.png"],
    "03-autoscaling.ipynb": ["autoscaling-cost-vs-slo.png", "autoscaling-timeseries.png"],
}

# Smaller than the notebooks' defaults, big enough that their own checks still mean something.
QUICK: dict[str, dict[str, object]] = {
    "01-sizing.ipynb": {
        "SEEDS": 6,
        "JOBS": 800,
        "UTILIZATIONS": (0.6, 0.9),
        "SIGMAS": (1.5,),
        "TAIL_SEEDS": 3,
        "TAIL_JOBS": 400,
    },
    "02-bursts-and-failures.ipynb": {
        "DURATION": 1800.0,
        "CRASH_RATES": (0.0, 0.05),
        "ERROR_RATES": (0.0, 0.3),
        "PAUSE_RATES": (0.0, 0.05),
        "FAILURE_JOBS": 300,
        "FAILURE_SEEDS": 2,
    },
    "03-autoscaling.ipynb": {
        "LOADS": ("step", "burst"),
        "FIXED_FACTORS": (1.0,),
        "HPA_TARGETS": (1.0, 4.0),
        "SLO_AIMS": (0.5,),
    },
}


def test_every_notebook_is_listed() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(QUICK) == sorted(FIGURES)


def test_every_notebook_is_parametrized_and_stored_without_outputs() -> None:
    for name in QUICK:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        for key in QUICK[name]:
            assert f"\n{key} = " in "\n" + tagged[0].source, f"{name} has no parameter {key}"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} has outputs stored"


def test_a_failing_cell_fails_the_run_and_parameters_are_injected(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("X = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("assert X == 1, 'X was changed'")]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    assert runner.execute_notebook(path).cells[1].outputs == []
    with pytest.raises(CellExecutionError, match="X was changed"):
        runner.execute_notebook(path, {"X": 2})


@pytest.mark.parametrize("name", sorted(QUICK))
def test_notebook_runs_and_its_checks_hold(name: str, tmp_path: Path) -> None:
    params = {**QUICK[name], "FIGURE_DIR": str(tmp_path), "CHECK": True}
    executed = runner.execute_notebook(NOTEBOOKS / name, params, timeout=900)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == FIGURES[name]
    errors = [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
