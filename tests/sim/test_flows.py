"""The flow workload of the simulator: clean over many seeds with crashes between any two calls, a
seed replays exactly, and bugs planted in the flow scripts are caught by its invariants."""

from __future__ import annotations

import dataclasses

import pytest

from jqc.sim.flows import FlowSimConfig, FlowSimReport, run_flows
from tests.cli.test_commands import run
from tests.sim.helpers import planted

SMALL = FlowSimConfig(flows=5, workers=3)


def first_failure(config: FlowSimConfig, seeds: range) -> FlowSimReport:
    for seed in seeds:
        report = run_flows(dataclasses.replace(config, seed=seed))
        if not report.ok:
            return report
    pytest.fail(f"the planted bug went unnoticed for seeds {seeds}")


def test_flows_stay_whole_across_crashes_for_many_seeds() -> None:
    crashes = 0
    for seed in range(40):
        report = run_flows(dataclasses.replace(SMALL, seed=seed))
        assert report.ok, (seed, report.violations, report.examples)
        assert report.jobs > 0
        crashes += report.crashes
    assert crashes > 40  # the runs did crash, often


def test_a_seed_replays_exactly() -> None:
    one, two = (run_flows(dataclasses.replace(SMALL, seed=7)) for _ in range(2))
    assert (one.jobs, one.crashes, one.repaired, one.seconds) == (two.jobs, two.crashes, two.repaired, two.seconds)


def test_a_parent_moved_before_its_last_child_is_caught() -> None:
    early = ("if not rec.hd and pending_children(kids) == 0 then", "if not rec.hd and pending_children(kids) <= 1 then")
    with planted("flow_deliver", *early):
        report = first_failure(SMALL, range(30))
    assert report.violations.get("parent_early", 0) > 0


def test_a_completion_that_forgets_its_parent_is_caught() -> None:
    with planted("complete", "flow_notify(id, rec, 'c', result)", "-- forgotten"):
        report = first_failure(SMALL, range(30))
    assert report.violations.get("stuck_parent", 0) + report.violations.get("unfinished", 0) > 0


def test_a_parent_never_moved_is_caught() -> None:
    with planted("flow_deliver", "if not rec.hd and pending_children(kids) == 0 then", "if false then"):
        report = first_failure(SMALL, range(30))
    assert report.violations.get("stuck_parent", 0) > 0


def test_the_cli_runs_seeds_and_exits_1_on_a_violation(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(None, "sim", "--flows", "3", "--seeds", "1-3", "--workers", "2")
    assert code == 0 and "OK: 3 seed(s)" in capsys.readouterr().out
    with planted("flow_deliver", "if not rec.hd and pending_children(kids) == 0 then", "if false then"):
        code, _ = run(None, "sim", "--flows", "5", "--seeds", "0-4", "--workers", "3")
    out = capsys.readouterr().out
    assert code == 1 and "stuck_parent" in out and "replay: jqc sim --flows 5 --seed" in out
