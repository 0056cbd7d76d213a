"""Scaling policies: fixed and HPA-like, start-up delay, graceful scale-down, and the report."""

from __future__ import annotations

from typing import Any

import jqc
from jqc.scaling import FixedPolicy, HpaPolicy, PoolMetrics
from jqc.sim import Bursts, Fixed, SimConfig, run


def metrics(**kw: Any) -> PoolMetrics:
    base: dict[str, Any] = dict(
        now=0.0, waiting=0, delayed=0, active=0, ready=4, starting=0, draining=0, busy=4, target=4,
        arrival_rate=0.0, completion_rate=0.0, wait_p95=None, oldest_wait=0.0, min_workers=1, max_workers=50,
    )  # fmt: skip
    base.update(kw)
    return PoolMetrics(**base)


def test_hpa_policy_tolerance_and_stabilization() -> None:
    hpa = HpaPolicy(target_backlog=1.0, tolerance=0.1, stabilization=60.0)
    assert hpa.decide(metrics(now=0, waiting=16, active=4)) == 20  # scale up at once
    assert hpa.decide(metrics(now=15, ready=20, waiting=0, active=21)) == 20  # within 10%: keep
    assert hpa.decide(metrics(now=30, ready=20, waiting=0, active=5)) == 20  # down waits for the window
    assert hpa.decide(metrics(now=120, ready=20, waiting=0, active=5)) == 5
    assert FixedPolicy(7).decide(metrics()) == 7


BURSTY = SimConfig(
    seed=5,
    workers=2,
    policy="hpa",
    min_workers=2,
    max_workers=30,
    target_backlog=1.0,
    stabilization=60.0,
    policy_tick=5.0,
    startup_delay=4.0,
    duration=400.0,
    jobs=None,
    arrival=Bursts(rate=0.5, size=150, every=150.0, width=5.0, first=50.0),
    service=Fixed(3.0),
    lock=10.0,
    stall_interval=5.0,
    slo_wait=10.0,
)


def test_hpa_follows_bursts_and_reports_scaling(fast: jqc.Connection) -> None:
    report = run(BURSTY, fast)
    assert report.ok, report.render()
    sc = report.scaling
    assert sc["policy"] == "hpa"
    workers = [row["workers"] for row in report.timeline]
    assert max(workers) > 10  # scaled up for the bursts
    assert min(workers[1:]) <= 5  # and back down between them
    assert sc["direction_reversals"] >= 2
    assert len(sc["drain_after_burst_s"]) >= 2 and all(t >= 0 for t in sc["drain_after_burst_s"])
    assert sc["lost_by_scaling"] == 0 and sc["duplicated_by_scaling"] == 0
    assert sc["worker_seconds"] > 0 and sc["slo_violation_minutes"] >= 1  # start-up delay costs wait
    assert report.completed == report.jobs


def test_fixed_pool_costs_more_worker_seconds_than_hpa(fast: jqc.Connection) -> None:
    hpa = run(BURSTY, fast)
    fixed = run(BURSTY.replace(policy="fixed", workers=30, min_workers=None, max_workers=None), fast)
    assert fixed.ok and hpa.ok
    assert fixed.jobs == hpa.jobs  # same seed, same arrivals
    assert fixed.scaling["worker_seconds"] > hpa.scaling["worker_seconds"]
    assert fixed.wait_p95_s <= hpa.wait_p95_s


def test_scale_down_with_a_grace_period_releases_long_jobs(fast: jqc.Connection) -> None:
    config = BURSTY.replace(
        service=Fixed(40.0), drain_grace=5.0, stabilization=10.0, lock=60.0, duration=300.0, target_backlog=4.0
    )
    report = run(config, fast)
    assert report.ok, report.render()
    assert report.scaling["duplicated_by_scaling"] > 0  # released at the grace deadline, run again
    assert report.scaling["lost_by_scaling"] == 0 and report.lost == 0
