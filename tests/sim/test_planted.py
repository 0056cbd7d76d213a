"""The simulator finds bugs: plant one in a copy of an engine script and it must report a violation
with a seed that replays it."""

from __future__ import annotations

import pytest

import jqc
from jqc.sim import Exponential, FaultConfig, JobClass, Poisson, SimConfig, run
from tests.sim.helpers import COMPLETE_NO_TOKEN_CHECK, COMPLETE_TOKEN_CHECK, planted

ZOMBIES = SimConfig(
    workers=4,
    jobs=120,
    arrival=Poisson(3.0),
    service=Exponential(1.0),
    lock=2.0,
    stall_interval=1.0,
    mix=(JobClass(attempts=2),),
    faults=FaultConfig(pause=0.1),
)


def first_failing_seed(config: SimConfig, conn: jqc.Connection, seeds: range) -> tuple[int, str, str]:
    for seed in seeds:
        report = run(config.replace(seed=seed), conn)
        if not report.ok:
            return seed, report.event_log_sha256, report.replay_command
    pytest.fail(f"the planted bug went unnoticed for seeds {seeds}")


def test_complete_without_token_check_is_caught(fast: jqc.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    with planted("complete", COMPLETE_TOKEN_CHECK, COMPLETE_NO_TOKEN_CHECK):
        seed, sha, replay = first_failing_seed(ZOMBIES, fast, range(20))
        again = run(ZOMBIES.replace(seed=seed), fast)
    with capsys.disabled():
        print(f"\nplanted bug (complete.lua without its token check) found with seed {seed}: {replay}")
    assert again.event_log_sha256 == sha  # the seed replays the failure exactly
    assert again.invariants["token_fencing"]["violations"] > 0
    assert any("stale token" in e for e in again.violation_examples)
    assert run(ZOMBIES.replace(seed=seed), fast).ok  # and the real script passes the same run


def test_recover_ignoring_lock_deadlines_is_caught(fast: jqc.Connection) -> None:
    deadline_check = "if tonumber(items[i + 1]) > NOW then break end"
    with planted("recover", deadline_check, "if false then break end"):
        report = run(ZOMBIES.replace(seed=1, faults=FaultConfig()), fast)
    assert report.invariants["lock_expiry"]["violations"] > 0
    assert report.invariants["duplicates_traced"]["violations"] > 0  # re-runs no fault explains
    assert not report.ok and "jqc sim --seed 1" in report.replay_command
