"""Schedules in the simulator: racing drivers (and drivers dying between their read and their
write) never add a tick twice, ticks go unfired only by policy, and planted bugs in the fire script
are caught by the schedule_ticks invariant with a seed that replays them."""

from __future__ import annotations

import pytest

import jqc
from jqc.sim import Exponential, FaultConfig, Poisson, SimConfig, run
from jqc.sim.schedules import ScheduleLoad, parse_schedule
from tests.sim.helpers import planted

TICKS = SimConfig(
    workers=4,
    jobs=200,
    arrival=Poisson(1.0),
    service=Exponential(1.0),
    schedules=(ScheduleLoad(every=5), ScheduleLoad(every=3, missed="once", overlap="skip")),
    faults=FaultConfig(crash=0.02, jump=0.01, skew=0.02),
)

CAS = "if (not cur[1]) or cur[1] ~= ARGV[4] or cur[2] ~= ARGV[5] or (cur[3] or '') ~= ARGV[6] then"
SEEN = "if tick <= last_tick or redis.call('HEXISTS', K_JOBS, id) == 1 then"
ADVANCE = "redis.call('HSET', K_RECORD, 'nx', ARGV[7])\n  redis.call('ZADD', K_SCHEDULES, tonumber(ARGV[7]), name)"


def test_racing_and_crashing_drivers_fire_each_tick_once(fast: jqc.Connection) -> None:
    for seed in range(3):
        report = run(TICKS.replace(seed=seed), fast)
        assert report.ok, report.violation_examples
        ticks = report.invariants["schedule_ticks"]
        assert ticks["violations"] == 0 and ticks["checked"] > 60  # every tick job, and each schedule's count


def test_a_schedule_run_replays_from_its_seed(fast: jqc.Connection) -> None:
    report = run(TICKS.replace(seed=7), fast, self_check=True)
    assert report.self_check is not None and report.self_check["equal"]
    assert "--schedule every=5,missed=all,overlap=allow" in report.replay_command


def test_fire_without_its_compare_and_set_is_caught(fast: jqc.Connection) -> None:
    with planted("schedule_fire", CAS, "if not cur[1] then"), planted("schedule_fire", SEEN, "if false then"):
        report = run(TICKS.replace(seed=1, faults=FaultConfig()), fast)
    assert report.invariants["schedule_ticks"]["violations"] > 0
    assert any("added twice" in e for e in report.violation_examples)
    assert not report.ok and "jqc sim --seed 1" in report.replay_command
    assert run(TICKS.replace(seed=1, faults=FaultConfig()), fast).ok  # the real script passes the same run


def test_fire_that_never_moves_the_next_tick_on_is_caught(fast: jqc.Connection) -> None:
    stuck = "redis.call('HSET', K_RECORD, 'nx', ARGV[5])\n  redis.call('ZADD', K_SCHEDULES, tonumber(ARGV[5]), name)"
    with planted("schedule_fire", ADVANCE, stuck):
        report = run(TICKS.replace(seed=2, faults=FaultConfig()), fast)
    assert report.invariants["schedule_ticks"]["violations"] > 0
    assert any("stopped firing" in e for e in report.violation_examples)


def test_schedule_specs_parse_and_bad_ones_are_refused() -> None:
    assert parse_schedule("every=30,missed=skip") == ScheduleLoad(30.0, "skip", "allow")
    assert parse_schedule("every=2.5").spec == "every=2.5,missed=all,overlap=allow"
    for bad in ("every=0.5", "often=3", "every=x", "missed=never", "every"):
        with pytest.raises(jqc.InvalidOptionError):
            parse_schedule(bad)
