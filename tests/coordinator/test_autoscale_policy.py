"""The wait-SLO scaling policy on hand-made metrics (pure), and in the simulator (real engine)."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import random
from collections import Counter
from typing import Any

import pytest

import jqc
from jqc.cli.sim import add_parser, build_config
from jqc.coordinator.autoscale import LiveMetrics, PoolState
from jqc.coordinator.metrics import QueueSnapshot
from jqc.engine.metrics import Histogram, Metrics, MinuteMetrics, bucket_of
from jqc.engine.operations import Counts
from jqc.scaling import PoolMetrics, SloPolicy, make_policy, servers_for_wait, wait_quantile
from jqc.sim import Bursts, Fixed, LogNormal, SimConfig, Step, run


def metrics(**kw: Any) -> PoolMetrics:
    base: dict[str, Any] = dict(
        now=0.0, waiting=0, delayed=0, active=0, ready=4, starting=0, draining=0, busy=0, target=4,
        arrival_rate=0.0, completion_rate=0.0, wait_p95=None, oldest_wait=0.0, min_workers=1, max_workers=200,
        service_time=30.0,
    )  # fmt: skip
    base.update(kw)
    return PoolMetrics(**base)


class Pool:
    """Feeds a policy a steady load tick by tick, the way the simulator's pool would (no queueing)."""

    def __init__(self, policy: SloPolicy, *, workers: int, tick: float = 15.0, seed: int = 1) -> None:
        self.policy = policy
        self.target = workers
        self.tick = tick
        self.now = 0.0
        self.rng = random.Random(seed)
        self.history: list[int] = [workers]

    def step(self, rate: float, *, waiting: int = 0, service: float = 30.0, busy: int | None = None) -> int:
        self.now += self.tick
        arrivals = sum(1 for _ in self._poisson(rate * self.tick))
        m = metrics(
            now=self.now,
            waiting=waiting,
            ready=self.target,
            busy=min(self.target, round(rate * service)) if busy is None else busy,
            target=self.target,
            arrival_rate=arrivals / self.tick,
            completion_rate=rate,
            service_time=service,
        )
        self.target = self.policy.decide(m)
        self.history.append(self.target)
        return self.target

    def _poisson(self, mean: float) -> range:
        # Knuth's method is fine for the small means used here.
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return range(k)
            k += 1

    @property
    def reversals(self) -> int:
        changes = [b - a for a, b in zip(self.history, self.history[1:], strict=False) if b != a]
        return sum(1 for a, b in itertools.pairwise(changes) if (a > 0) != (b > 0))


# -- Erlang C sizing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "service", "wait"), [(0.6, 30.0, 30.0), (0.2, 30.0, 10.0), (50.0, 1.0, 0.05), (33.3, 30.0, 5.0)]
)
def test_servers_for_wait_is_the_fewest_that_meet_the_percentile(rate: float, service: float, wait: float) -> None:
    c = servers_for_wait(rate, service, wait, 95.0)
    assert c > rate * service  # stable
    assert wait_quantile(0.95, rate, 1 / service, c) <= wait
    if c - 1 > rate * service:
        assert wait_quantile(0.95, rate, 1 / service, c - 1) > wait


def test_servers_for_wait_edge_cases() -> None:
    assert servers_for_wait(0.0, 30.0, 10.0) == 0
    assert servers_for_wait(1.0, 0.0, 10.0) == 0
    assert servers_for_wait(10_000.0, 30.0, 1.0, limit=500) == 500


# -- the policy ------------------------------------------------------------------------------------


def test_steady_load_settles_near_erlang_and_never_flaps() -> None:
    policy = SloPolicy(slo=60.0, startup=60.0, scale_down_delay=120.0)
    pool = Pool(policy, workers=5, seed=7)
    for _ in range(4 * 60 * 4):  # four hours of 15-second ticks at 0.6 jobs/s of 30 s jobs
        pool.step(0.6)
    erlang = servers_for_wait(0.6, 30.0, 30.0)  # p95 wait at aim * slo
    settled = pool.history[-200:]
    assert all(erlang - 1 <= n <= erlang + 3 for n in settled), (erlang, Counter(settled))
    assert pool.reversals == 0, pool.history


def test_a_backlog_scales_up_at_once_and_a_longer_start_up_asks_for_more() -> None:
    def first_decision(startup: float) -> int:
        policy = SloPolicy(slo=60.0, startup=startup)
        policy.decide(metrics(now=0.0, arrival_rate=0.2, busy=4))
        return policy.decide(metrics(now=15.0, waiting=150, oldest_wait=20.0, arrival_rate=0.2, busy=4))

    quick, slow = first_decision(0.0), first_decision(90.0)
    assert quick > 4 and slow > quick
    policy = SloPolicy(slo=60.0, startup=30.0)
    policy.decide(metrics(now=0.0, arrival_rate=0.2, busy=4))
    assert policy.decide(metrics(now=15.0, waiting=150, arrival_rate=0.2, busy=4, max_workers=40)) == 40  # capped
    assert any("waiting job(s) need" in r for r in policy.reasons) and any("scale up" in r for r in policy.reasons)
    assert policy.values["backlog_need"] > 40


def test_a_short_line_the_running_workers_clear_in_time_adds_nobody() -> None:
    policy = SloPolicy(slo=60.0, startup=60.0)
    policy.decide(metrics(now=0.0, ready=20, target=20, arrival_rate=0.5, busy=15))
    target = policy.decide(metrics(now=15.0, ready=20, target=20, waiting=10, arrival_rate=0.5, busy=20))
    assert target == 20  # 10 jobs x 30 s / 20 workers = 15 s < the SLO
    assert policy.values["backlog_need"] == 0


def test_scale_down_waits_out_the_delay_then_drains_in_steps() -> None:
    policy = SloPolicy(slo=60.0, startup=30.0, scale_down_delay=120.0, max_down_step=0.25)
    pool = Pool(policy, workers=60)
    seen = [pool.step(0.1) for _ in range(40)]
    assert seen[: int(120 / 15) - 1] == [60] * (int(120 / 15) - 1)  # nothing before the delay
    drops = [a - b for a, b in zip([60, *seen], seen, strict=False) if b < a]
    assert drops and all(d <= 15 for d in drops)  # at most a quarter of the pool per tick
    assert servers_for_wait(0.1, 30.0, 30.0) <= seen[-1] <= servers_for_wait(0.1 * 1.5, 30.0, 30.0)
    assert all(b <= a for a, b in itertools.pairwise(seen))  # only down, no flap


def test_never_below_the_jobs_in_progress_nor_outside_min_max() -> None:
    policy = SloPolicy(slo=60.0, scale_down_delay=0.0, concurrency=4)
    policy.decide(metrics(now=0.0, ready=30, target=30, busy=100))
    target = policy.decide(metrics(now=15.0, ready=30, target=30, busy=100, arrival_rate=0.0))
    assert target >= 25  # 100 jobs running, 4 per worker; at most a quarter drained per tick
    policy = SloPolicy(slo=60.0)
    assert policy.decide(metrics(now=0.0, ready=1, target=1, min_workers=3)) == 3
    policy = SloPolicy(slo=60.0)
    assert policy.decide(metrics(now=0.0, ready=1, target=1, waiting=500, max_workers=7)) == 7


def test_concurrency_divides_the_servers_into_workers() -> None:
    one = SloPolicy(slo=60.0)
    ten = SloPolicy(slo=60.0, concurrency=10)
    m = metrics(now=0.0, ready=1, target=1, arrival_rate=2.0, busy=60)
    assert ten.decide(m) == math.ceil(one.decide(m) / 10)


def test_without_a_run_time_it_covers_the_jobs_present() -> None:
    policy = SloPolicy(slo=60.0)
    target = policy.decide(metrics(now=0.0, ready=2, target=2, waiting=5, busy=2, service_time=None))
    assert target == 7
    assert "no run time measured yet" in policy.reasons[0]


def test_run_time_from_littles_law_when_not_measured() -> None:
    policy = SloPolicy(slo=60.0)
    for i in range(30):
        m = metrics(now=15.0 * i, ready=20, target=20, busy=18, completion_rate=0.6, arrival_rate=0.6)
        policy.decide(dataclasses.replace(m, service_time=None))
    assert policy.values["service_s"] == pytest.approx(30.0)


def test_a_burst_is_not_taken_for_a_lasting_rise_in_load() -> None:
    policy = SloPolicy(slo=60.0, startup=30.0)
    pool = Pool(policy, workers=10)
    for _ in range(40):
        pool.step(0.2)
    policy.decide(metrics(now=pool.now + 15, ready=10, target=10, arrival_rate=200 / 15, waiting=190, busy=10))
    assert policy.values["rate_slow"] < 0.5  # 200 jobs in one tick moved the long average little


def test_a_rising_load_is_projected_over_the_start_up() -> None:
    def after_step(startup: float) -> float:
        policy = SloPolicy(slo=60.0, startup=startup)
        pool = Pool(policy, workers=10, seed=3)
        for _ in range(40):
            pool.step(0.2)
        for _ in range(4):
            pool.step(1.0)
        assert policy.values["rate_changed"]
        return float(policy.values["rate_projected"])

    assert after_step(120.0) > after_step(0.0) > 0.4


def burst(pool: Pool, jobs: int, *, rate: float = 0.3) -> int:
    """One tick in which ``jobs`` arrive at once and wait (more than the running workers start in time)."""
    pool.now += pool.tick
    m = metrics(
        now=pool.now, waiting=jobs, ready=pool.target, busy=pool.target, target=pool.target,
        arrival_rate=rate + jobs / pool.tick, completion_rate=rate, oldest_wait=pool.tick,
    )  # fmt: skip
    pool.target = pool.policy.decide(m)
    pool.history.append(pool.target)
    return pool.target


def test_recurring_bursts_keep_a_reserve_that_a_single_burst_does_not() -> None:
    policy = SloPolicy(slo=60.0, startup=60.0, scale_down_delay=120.0, burst_memory=3600.0)
    pool = Pool(policy, workers=12, seed=5)
    steady = servers_for_wait(0.3, 30.0, 30.0)
    for _ in range(40):
        pool.step(0.3)
    assert burst(pool, 200) > steady  # the backlog rule scales up at once
    for _ in range(80):  # 20 minutes: back down, and no reserve for a single burst
        pool.step(0.3)
    assert pool.target <= steady + 2, pool.history[-10:]
    assert policy.values["reserve_servers"] == 0
    burst(pool, 200)
    for _ in range(80):
        pool.step(0.3)
    # A repeat would arrive before new workers could start (tick 15 s + start-up 60 s > SLO 60 s):
    # the jobs of its first 15 s must be started by servers already free, r * (1 + 75 / 30) >= ~200.
    reserve = policy.values["reserve_servers"]
    assert 45 < reserve < 60
    assert pool.target >= steady + 40
    assert policy.values["reserve_need"] <= pool.target <= policy.values["down_need"]  # inside the dead band
    assert any("bursts in the last 3600 s" in r for r in policy.reasons)
    for _ in range(4 * 80):  # the first burst is forgotten after burst_memory: the reserve goes
        pool.step(0.3)
    assert policy.values["reserve_servers"] == 0 and pool.target <= steady + 2


def test_no_reserve_when_new_workers_start_in_time_or_when_switched_off() -> None:
    for policy in (
        SloPolicy(slo=60.0, startup=30.0),  # tick + start-up < SLO: new workers are in time
        SloPolicy(slo=60.0, startup=60.0, burst_reserve=0.0),
    ):
        pool = Pool(policy, workers=12, seed=5)
        for _ in range(3):
            for _ in range(40):
                pool.step(0.3)
            burst(pool, 200)
        for _ in range(40):
            pool.step(0.3)
        assert policy.values["reserve_servers"] == 0
        assert pool.target <= servers_for_wait(0.3, 30.0, 30.0) + 2


def test_a_steady_or_stepping_load_never_counts_as_bursts() -> None:
    policy = SloPolicy(slo=60.0, startup=60.0)
    pool = Pool(policy, workers=5, seed=11)
    for i in range(4 * 240):  # four hours: Poisson noise, then a step to four times the rate
        pool.step(0.2 if i < 480 else 0.8)
    assert not policy._bursts and policy.values["reserve_servers"] == 0


def test_reset_forgets_the_estimates() -> None:
    policy = SloPolicy(slo=60.0)
    policy.decide(metrics(now=0.0, arrival_rate=5.0))
    policy.reset()
    policy.decide(metrics(now=100.0, arrival_rate=0.1))
    assert policy.values["rate_slow"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "options",
    [
        {"slo": 0},
        {"percentile": 100},
        {"startup": -1},
        {"concurrency": 0},
        {"aim": 1.5},
        {"max_down_step": 0},
        {"fast_halflife": 600, "slow_halflife": 300},
        {"service_time": -2},
        {"change_sigmas": 0},
        {"burst_reserve": -1},
        {"burst_memory": -5},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        SloPolicy(**options)


# -- live metrics from snapshots -------------------------------------------------------------------


def snapshot(at: float, *, waiting: int, active: int, done_by_minute: dict[int, int], run_ms: float) -> QueueSnapshot:
    minutes = tuple(
        MinuteMetrics(minute, done, 0, 0, Histogram({}), Histogram({bucket_of(run_ms): done}))
        for minute, done in sorted(done_by_minute.items())
    )
    counts = Counts(waiting, 0, active, 0, 0, 0, False)
    return QueueSnapshot("q", at, 5, counts, Metrics(minutes, 5), 12.5 if waiting else None, 3, None)


def test_live_metrics_rates_from_minute_counters_and_the_change_in_jobs_present() -> None:
    live = LiveMetrics()
    minute = 29_000_000
    t0 = minute * 60 + 30.0  # half way through a minute
    first = live.metrics(
        snapshot(t0, waiting=10, active=5, done_by_minute={minute - 1: 30, minute: 15}, run_ms=2000),
        PoolState(3, 1, 0),
        target=4,
        min_workers=1,
        max_workers=9,
    )
    assert first.completion_rate == pytest.approx(45 / 90)  # previous minute and this half minute
    assert first.arrival_rate == pytest.approx(first.completion_rate)  # nothing to compare with yet
    assert (first.ready, first.starting, first.busy, first.waiting) == (3, 1, 5, 10)
    assert first.service_time == pytest.approx(2.0, rel=0.1)
    assert first.oldest_wait == 12.5
    second = live.metrics(
        snapshot(t0 + 15, waiting=25, active=5, done_by_minute={minute - 1: 30, minute: 25}, run_ms=2000),
        PoolState(4),
        target=4,
        min_workers=1,
        max_workers=9,
    )
    assert second.completion_rate == pytest.approx(55 / 105)
    assert second.arrival_rate == pytest.approx(55 / 105 + 15 / 15)


# -- in the simulator ------------------------------------------------------------------------------


def test_the_simulator_runs_the_slo_policy_by_name() -> None:
    policy = make_policy("slo", 4, slo=30.0, startup=10.0, stabilization=90.0)
    assert isinstance(policy, SloPolicy)
    assert (policy.slo, policy.startup, policy.scale_down_delay) == (30.0, 10.0, 90.0)
    with pytest.raises(jqc.InvalidOptionError, match="unknown policy 'magic'"):
        make_policy("magic", 4)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["sim", "--policy", "slo", "--slo", "30", "--startup-delay", "10"])
    assert build_config(args).policy == "slo"


def test_slo_policy_in_the_simulator_follows_a_step_without_violations() -> None:
    config = SimConfig(
        seed=3,
        workers=3,
        jobs=None,
        duration=600.0,
        arrival=Step(0.1, 0.6, 200.0),
        service=LogNormal(10.0, 0.5),
        policy="slo",
        min_workers=2,
        max_workers=30,
        startup_delay=10.0,
        slo_wait=30.0,
        stabilization=120.0,
        policy_tick=10.0,
        lock=30.0,
        keep_completed=False,
    )
    report = run(config)
    assert report.ok, report.render()
    sc = report.scaling
    assert sc["policy"] == "slo" and sc["slo_violation_minutes"] == 0
    assert max(row["workers"] for row in report.timeline) > 6  # scaled up for the step
    fixed = run(config.replace(policy="fixed", workers=30, min_workers=None, max_workers=None, service=Fixed(10.0)))
    assert fixed.ok and sc["worker_seconds"] < fixed.scaling["worker_seconds"]


def test_the_burst_reserve_in_the_simulator_shortens_the_waits_of_recurring_bursts() -> None:
    def burst_run(reserve: float) -> Any:
        config = SimConfig(
            seed=2,
            workers=3,
            jobs=None,
            duration=1500.0,
            arrival=Bursts(rate=0.1, size=60, every=400.0, width=10.0, first=200.0),
            service=LogNormal(10.0, 0.5),
            policy="slo",
            min_workers=2,
            max_workers=40,
            startup_delay=30.0,  # tick 10 s + start-up 30 s > SLO 20 s: only free workers are in time
            slo_wait=20.0,
            policy_tick=10.0,
            lock=30.0,
            keep_completed=False,
            custom_policy=SloPolicy(slo=20.0, startup=30.0, scale_down_delay=60.0, burst_reserve=reserve),
        )
        report = run(config)
        assert report.ok, report.render()
        return report

    without, with_reserve = burst_run(0.0), burst_run(1.0)

    def worst_late_p95(report: Any) -> float:  # the bursts at minutes 16.7 and 23.3 (after two were seen)
        return max(row["wait_p95_s"] for row in report.timeline if row["minute"] >= 17)

    assert worst_late_p95(with_reserve) < 0.75 * worst_late_p95(without)
    assert with_reserve.scaling["slo_violation_minutes"] < without.scaling["slo_violation_minutes"]
    assert with_reserve.scaling["worker_seconds"] > without.scaling["worker_seconds"]  # what it costs
