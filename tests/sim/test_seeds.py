"""``jqc sim --seeds N-M --parallel P``: many seeds over processes, one merged report that does not
depend on the number of processes, failing seeds listed with a replay command that reproduces them."""

from __future__ import annotations

import json
import shlex

import pytest

from jqc.errors import InvalidOptionError
from jqc.sim import Poisson, SimConfig, run
from jqc.sim.seeds import SeedRun, parse_seeds, run_seeds
from tests.sim.test_cli_and_workload import build_config, main, parse

SMALL = SimConfig(workers=3, jobs=30, arrival=Poisson(2.0), lock=3.0, stall_interval=1.5)
#: Every seed fails its liveness check: no run finishes 30 jobs within 10 ms of the heal.
FAILING = SMALL.replace(liveness_bound=0.01)


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("4", [4]), ("1-5", [1, 2, 3, 4, 5]), ("9, 3-4,3", [3, 4, 9]), ("0-0", [0])],
)
def test_seed_lists(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "says"),
    [("", "expected N, N-M"), ("a-3", "expected N, N-M"), ("5-2", "up to a larger one"), ("-3", "expected N"),
     ("0-2000000", "at most 1,000,000 seeds")],
)  # fmt: skip
def test_bad_seed_lists_are_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidOptionError, match=says):
        parse_seeds(text)


def test_two_processes_give_the_report_one_gives_and_each_seed_its_own_log() -> None:
    seeds = [3, 1, 2, 5, 4]
    one = run_seeds(SMALL, seeds, parallel=1)
    done: list[SeedRun] = []
    two = run_seeds(SMALL, seeds, parallel=2, on_done=done.append)
    assert one.ok and two.ok and two.parallel == 2
    assert [r.seed for r in two.runs] == [1, 2, 3, 4, 5] and sorted(r.seed for r in done) == [1, 2, 3, 4, 5]
    assert [(r.seed, r.event_log_sha256, r.jobs, r.lifecycles) for r in one.runs] == [
        (r.seed, r.event_log_sha256, r.jobs, r.lifecycles) for r in two.runs
    ]
    assert one.digest == two.digest
    assert two.runs[0].event_log_sha256 == run(SMALL.replace(seed=1)).event_log_sha256
    assert len({r.event_log_sha256 for r in two.runs}) == 5


def test_failing_seeds_are_listed_with_a_replay_command_that_reproduces_them() -> None:
    report = run_seeds(FAILING, [7, 8], parallel=2)
    assert not report.ok and [r.seed for r in report.failed] == [7, 8]
    text = report.render()
    for r in report.failed:
        assert "liveness" in r.failed_invariants
        assert f"seed {r.seed}: " in text and f"replay: {r.replay_command}" in text
        again = run(build_config(parse(shlex.split(r.replay_command)[2:])))
        assert not again.ok and again.event_log_sha256 == r.event_log_sha256


def test_cli_merged_json_report_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    argv = "--workers 3 --jobs 30 --arrival poisson:rate=2 --lock 3 --stall-interval 1.5 --seeds 1-3 --parallel 2"
    assert main(parse(shlex.split(argv + " --json -"))) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["seeds"] == 3 and out["failed"] == [] and len(out["runs"]) == 3
    assert out["digest"] == run_seeds(SMALL, [1, 2, 3]).digest
    assert main(parse(shlex.split(argv + " --liveness-bound 0.01 --quiet"))) == 1
    captured = capsys.readouterr()
    assert "3 of 3 FAILED" in captured.out
    assert captured.err.count("replay with: jqc sim --seed ") == 3


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ("--seeds 1-3 --seed 2", "give --seed or --seeds, not both"),
        ("--seeds 1-3 --log x.log", "--log writes one run's event log"),
        ("--seeds 1-3 --parallel 0", "--parallel must be at least 1"),
        ("--seeds 3-1", "up to a larger one"),
        ("--parallel 2", "give --seeds"),
    ],
)
def test_bad_sweep_arguments_exit_2(argv: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(parse(shlex.split(argv))) == 2
    assert says in capsys.readouterr().err


def test_run_seeds_refuses_what_it_cannot_run() -> None:
    with pytest.raises(InvalidOptionError, match="at least 1 process"):
        run_seeds(SMALL, [1], parallel=0)
    with pytest.raises(InvalidOptionError, match="no seeds"):
        run_seeds(SMALL, [])
