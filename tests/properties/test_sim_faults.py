"""Hypothesis generates small workloads and fault schedules; every invariant must hold. With a bug
planted in the engine, hypothesis must find a failing schedule and shrink it to a short one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import jqc
from jqc.sim import Exponential, JobClass, Poisson, ScheduledFault, SimConfig, run
from jqc.sim.faults import FAULT_KINDS, FaultConfig
from tests.sim.helpers import COMPLETE_NO_TOKEN_CHECK, COMPLETE_TOKEN_CHECK, fast_connection, planted

tenths = st.integers(0, 150).map(lambda n: n / 10)  # 0.0 .. 15.0 s, shrinks towards 0
faults = st.builds(
    ScheduledFault,
    kind=st.sampled_from(FAULT_KINDS),
    at=tenths,
    worker=st.integers(0, 3),
    duration=st.none() | st.integers(1, 150).map(lambda n: n / 10),
    by=st.none() | st.integers(-80, 80).map(lambda n: n / 10),
    persist=st.booleans().map(lambda b: not b),  # shrinks to True, the default
)
cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 1000),
        "workers": st.integers(1, 3),
        "jobs": st.integers(1, 8),
        "rate": st.sampled_from([1.0, 2.0, 4.0]),
        "attempts": st.integers(1, 3),
        "schedule": st.lists(faults, max_size=5),
    }
)


@pytest.fixture(scope="module")
def conn() -> Iterator[jqc.Connection]:
    connection = fast_connection()  # runs are identical on both backends; use the faster
    yield connection
    connection.close()


def config(case: dict[str, Any]) -> SimConfig:
    return SimConfig(
        seed=case["seed"],
        workers=case["workers"],
        jobs=case["jobs"],
        arrival=Poisson(case["rate"]),
        service=Exponential(1.0),
        lock=3.0,
        stall_interval=1.0,
        mix=(JobClass(attempts=case["attempts"], backoff=0.5, transient=0.1),),
        faults=FaultConfig(schedule=tuple(sorted(case["schedule"], key=lambda f: f.at)), heal_at=30.0),
    )


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_invariants_hold_under_any_fault_schedule(conn: jqc.Connection, case: dict[str, Any]) -> None:
    report = run(config(case), conn)
    assert report.ok, f"{report.render()}\nreplay: {report.replay_command}"
    assert report.lost == 0


def test_planted_bug_is_found_and_shrunk_to_a_short_schedule(conn: jqc.Connection) -> None:
    """Expected to find the bug: with complete.lua's token check removed, hypothesis must find a
    failing case and shrink it to one or two faults. The search is derandomized (repeatable); a
    last pass drops any fault whose removal still fails (hypothesis can stop at a schedule
    holding a fault that does nothing, such as a second crash of a worker already dead)."""

    def fails(case: dict[str, Any]) -> bool:
        return not run(config(case), conn).ok

    with planted("complete", COMPLETE_TOKEN_CHECK, COMPLETE_NO_TOKEN_CHECK):
        minimal: dict[str, Any] = find(
            cases, fails, settings=settings(max_examples=1000, database=None, deadline=None, derandomize=True)
        )
        schedule = list(minimal["schedule"])
        for fault in list(schedule):
            fewer = [f for f in schedule if f is not fault]
            if fewer and fails({**minimal, "schedule": fewer}):
                schedule = fewer
        minimal = {**minimal, "schedule": schedule}
        assert fails(minimal)
        replay = config(minimal).replay_command()
    print(f"\nshrunk to {len(schedule)} fault(s): {replay}")
    assert 1 <= len(schedule) <= 2
