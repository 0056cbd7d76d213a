"""Each fault reaches the recovery path it targets, and every invariant holds while it does."""

from __future__ import annotations

import pytest

import jqc
from jqc.sim import (
    Exponential,
    FaultConfig,
    Fixed,
    JobClass,
    Poisson,
    SimConfig,
    Simulator,
    parse_faults,
    run,
)
from jqc.sim.report import Report

BASE = SimConfig(
    seed=11,
    workers=6,
    jobs=200,
    arrival=Poisson(4.0),
    service=Exponential(1.0),
    lock=3.0,
    stall_interval=1.0,
    mix=(JobClass(attempts=3, backoff=0.2),),
)


def run_logged(config: SimConfig, conn: jqc.Connection) -> tuple[Report, list[str]]:
    sim = Simulator(config, conn, keep_log=True)
    report = sim.run()
    assert sim.log.lines is not None
    return report, sim.log.lines


def assert_healthy(report: Report) -> None:
    assert report.ok, report.render()
    assert report.lost == 0
    assert report.invariants["liveness"]["checked"] == report.jobs
    assert report.pending == 0


@pytest.mark.parametrize(
    ("kind", "rate", "cause"),
    [
        ("crash", 0.05, "crash"),
        ("pause", 0.08, "pause"),
        ("partition", 0.08, "partition"),
        ("jump", 0.08, "jump"),
    ],
)
def test_attempt_fault_reaches_its_recovery_path(kind: str, rate: float, cause: str, fast: jqc.Connection) -> None:
    report, log = run_logged(BASE.replace(faults=parse_faults(f"{kind}={rate}")), fast)
    assert_healthy(report)
    assert report.faults_injected[kind] >= 3
    assert report.coverage[kind]["reached"] >= 1, report.render()
    assert report.invariants["duplicates_traced"]["violations"] == 0
    assert all(cause in c.split("+") for c in report.duplicate_causes), report.duplicate_causes
    if kind == "crash":
        assert any(" recover " in line and "stalled" in line for line in log)
    if kind == "pause":  # a zombie wrote after its job was taken from it, and was fenced
        assert any(line.split()[1] in ("complete", "fail") and line.endswith("rejected") for line in log)


def test_skewed_clocks_recover_early_but_fencing_keeps_one_holder(fast: jqc.Connection) -> None:
    config = BASE.replace(faults=FaultConfig(skew=0.5, skew_locks=2.0), jobs=300, service=Exponential(2.0))
    report = run(config, fast)
    assert_healthy(report)
    assert report.faults_injected["skew"] >= 2
    assert report.coverage["skew"]["reached"] >= 1
    assert report.duplicates >= 1 and all("skew" in c for c in report.duplicate_causes)
    assert report.invariants["single_holder"]["violations"] == 0


def test_slow_redis_late_renewals(fast: jqc.Connection) -> None:
    config = BASE.replace(faults=parse_faults("slow@5:duration=30:by=2.5"), service=Fixed(4.0), arrival=Poisson(1.0))
    report = run(config, fast)
    assert_healthy(report)
    assert report.faults_injected["slow"] == 1
    assert report.coverage["slow"]["reached"] >= 1


def test_handler_failures_retry_then_dead_letter(fast: jqc.Connection) -> None:
    mix = (
        JobClass(name="flaky", attempts=3, backoff=0.5, exponential=True, transient=0.4),
        JobClass(name="broken", weight=0.2, attempts=5, permanent=1.0),
    )
    report = run(BASE.replace(mix=mix, faults=FaultConfig(error=0.1)), fast)
    assert_healthy(report)
    assert report.coverage["error"]["reached"] >= 1
    assert report.dead_lettered >= 20  # every "broken" job, some "flaky" ones
    assert report.invariants["max_attempts"]["checked"] > report.jobs
    assert report.invariants["not_before_due"]["checked"] > 0  # backoff delays were due-checked
    assert report.completed + report.dead_lettered == report.jobs


def test_restart_with_persistence_loses_nothing(fast: jqc.Connection) -> None:
    report = run(BASE.replace(faults=parse_faults("restart@10:duration=4")), fast)
    assert_healthy(report)
    assert report.faults_injected["restart"] == 1
    assert report.dropped_by_redis == 0 and report.completed + report.dead_lettered == report.jobs
    assert report.coverage["restart"]["reached"] == 1


def test_restart_without_persistence_separates_dropped_from_lost(fast: jqc.Connection) -> None:
    config = BASE.replace(arrival=Poisson(8.0), faults=parse_faults("restart@10:duration=2:persist=0"))
    report = run(config, fast)
    assert_healthy(report)
    assert report.dropped_by_redis > 0  # Redis dropped them: not an engine bug
    assert report.lost == 0
    assert report.completed + report.dead_lettered + report.dropped_by_redis == report.jobs


def test_scheduled_faults_of_every_kind(fast: jqc.Connection) -> None:
    schedule = (
        "crash@5/0,pause@6/1:duration=8,partition@7/2:duration=6,skew@1/3:by=4,jump@9/4:by=-5,"
        "error@10/5,slow@12:duration=5:by=1,restart@20:duration=1"
    )
    report = run(BASE.replace(faults=parse_faults(schedule)), fast)
    assert_healthy(report)
    assert set(report.faults_injected) >= {"crash", "partition", "skew", "jump", "slow", "restart"}


def test_rate_limit_is_never_exceeded(fast: jqc.Connection) -> None:
    report = run(BASE.replace(rate_limit=(3, 1.0), arrival=Poisson(6.0), jobs=120), fast)
    assert_healthy(report)
    assert report.invariants["rate_limit"]["checked"] >= 100
    assert report.throughput_per_s <= 3.0 + 1e-9


def test_delayed_jobs_never_run_early(fast: jqc.Connection) -> None:
    mix = (JobClass(name="later", delay=5.0), JobClass(name="now", weight=2.0, priority=3))
    report = run(BASE.replace(mix=mix, jobs=150), fast)
    assert_healthy(report)
    assert report.invariants["not_before_due"]["checked"] >= 30
