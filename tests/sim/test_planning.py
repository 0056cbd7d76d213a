"""jqc.sim.planning: the capacity-planning helpers the notebooks are built on."""

from __future__ import annotations

import math
import statistics

import pytest

from jqc.scaling import p_wait_longer, wait_quantile
from jqc.sim import Exponential, FaultConfig, JobClass, LogNormal, SimConfig
from jqc.sim.planning import (
    Interval,
    band_coverage,
    erlang_c_workers,
    interval,
    measure,
    measure_many,
    pool_config,
    pooled_quantile,
    run_many,
    size_pool,
    t_quantile,
)
from tests.conftest import REDIS_URL, open_backend

# Student t quantiles from published tables.
T_TABLE = [
    (0.975, 3, 3.182),
    (0.975, 5, 2.571),
    (0.975, 9, 2.262),
    (0.975, 30, 2.042),
    (0.995, 5, 4.032),
    (0.995, 9, 3.250),
    (0.995, 30, 2.750),
    (0.95, 4, 2.132),
]


@pytest.mark.parametrize(("p", "df", "expected"), T_TABLE)
def test_t_quantile_matches_the_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, rel=2e-3)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, rel=2e-3)


def test_t_quantile_is_exact_for_one_and_two_degrees_of_freedom() -> None:
    assert t_quantile(0.975, 1) == pytest.approx(12.706, rel=1e-4)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, rel=1e-4)


@pytest.mark.parametrize(("p", "df"), [(0.0, 5), (1.0, 5), (0.5, 0)])
def test_t_quantile_rejects_bad_input(p: float, df: int) -> None:
    with pytest.raises(ValueError):
        t_quantile(p, df)


def test_interval_is_the_student_t_interval() -> None:
    values = [1.0, 2.0, 4.0, 7.0]
    band = interval(values, 0.95)
    half = 3.182 * statistics.stdev(values) / 2
    assert band.mean == pytest.approx(3.5)
    assert band.half_width == pytest.approx(half, rel=2e-3)
    assert band.low + band.half_width == pytest.approx(band.mean)
    assert band.contains(3.5 + half * 0.99) and not band.contains(3.5 + half * 1.01)
    assert interval(values, 0.99).half_width > band.half_width


@pytest.mark.parametrize("values", [[], [1.0]])
def test_interval_needs_two_samples(values: list[float]) -> None:
    with pytest.raises(ValueError, match="two samples"):
        interval(values)


def test_interval_rejects_a_bad_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        interval([1.0, 2.0], 1.0)


def test_exponential_pools_start_in_steady_state_and_measure_every_arrival() -> None:
    cfg = pool_config(rate=1.0, service=Exponential(8.0), workers=11, jobs=500, seed=3)
    assert cfg.warmup == 0 and cfg.jobs == 500
    prefills = {
        pool_config(rate=1.0, service=Exponential(8.0), workers=11, jobs=500, seed=s).prefill for s in range(20)
    }
    assert len(prefills) > 3  # drawn per seed from the stationary distribution
    assert cfg.lock == 3600.0  # fault-free: no renewals


def test_other_pools_start_empty_and_leave_out_a_warm_up() -> None:
    for cfg in (
        pool_config(rate=1.0, service=LogNormal(8.0, 1.0), workers=11, jobs=500, seed=1),
        pool_config(rate=1.0, service=Exponential(8.0), workers=11, jobs=500, seed=1, steady_start=False),
        pool_config(rate=1.0, service=Exponential(8.0), workers=11, jobs=500, seed=1, mix=(JobClass(attempts=3),)),
    ):
        assert cfg.prefill == 0 and cfg.warmup == 100 and cfg.jobs == 600


def test_faulty_pools_keep_real_locks_and_stall_checks() -> None:
    cfg = pool_config(
        rate=1.0, service=Exponential(8.0), workers=11, jobs=100, seed=1, faults=FaultConfig(crash=0.01), lock=20.0
    )
    assert cfg.lock == 20.0 and cfg.stall_interval == SimConfig().stall_interval and cfg.prefill == 0


@pytest.mark.parametrize(("rate", "workers", "jobs"), [(0.0, 1, 10), (1.0, 0, 10), (1.0, 1, 0)])
def test_pool_config_rejects_bad_input(rate: float, workers: int, jobs: int) -> None:
    with pytest.raises(ValueError):
        pool_config(rate=rate, service=Exponential(1.0), workers=workers, jobs=jobs, seed=0)


@pytest.mark.parametrize("backend", ["fake", "redis"])
def test_measure_summarizes_the_measured_waits(backend: str) -> None:
    if backend == "redis":
        open_backend("redis").close()  # fails in CI (skips elsewhere) when the server is down
    url = REDIS_URL if backend == "redis" else None
    cfg = pool_config(rate=1.2, service=Exponential(8.0), workers=11, jobs=400, seed=5, url=url)
    sample = measure(cfg, [0.0, 5.0])
    assert sample.ok and sample.jobs == 400 and len(sample.waits) == 400
    waits = sample.waits
    assert list(waits) == sorted(waits)
    assert sample.wait_mean == pytest.approx(math.fsum(waits) / len(waits))
    assert sample.p_over(0.0) == sample.p_wait > 0
    assert sample.p_over(5.0) == sum(1 for w in waits if w > 5.0) / 400
    assert sample.wait_p95 == waits[379]
    assert sample.executions_per_job == 1.0 and sample.duplicates == 0
    assert sample.finish_mean > sample.wait_mean  # finishing includes running


def test_measure_is_the_same_on_both_backends() -> None:
    open_backend("redis").close()
    fake = measure(pool_config(rate=1.2, service=Exponential(8.0), workers=11, jobs=300, seed=7))
    real = measure(pool_config(rate=1.2, service=Exponential(8.0), workers=11, jobs=300, seed=7, url=REDIS_URL))
    assert fake.waits == real.waits and fake.finish_p95 == real.finish_p95


def test_measure_counts_extra_runs_of_crashed_workers() -> None:
    cfg = pool_config(
        rate=1.0, service=Exponential(8.0), workers=12, jobs=300, seed=2, faults=FaultConfig(crash=0.05), lock=10.0
    )
    sample = measure(cfg)
    assert sample.ok and sample.duplicates > 0 and sample.executions_per_job > 1.0


def test_measure_many_gives_the_same_answers_in_parallel() -> None:
    configs = [pool_config(rate=1.0, service=Exponential(8.0), workers=11, jobs=200, seed=s) for s in range(3)]
    one = measure_many(configs, [5.0])
    two = measure_many(configs, [5.0], processes=2)
    assert [s.waits for s in one] == [s.waits for s in two]
    assert [s.seed for s in two] == [0, 1, 2]
    reports = run_many(configs, processes=2)
    assert [r.wait_mean_s for r in reports] == pytest.approx([s.wait_mean for s in one])


def test_pooled_quantile_takes_every_wait_together() -> None:
    configs = [pool_config(rate=1.0, service=Exponential(8.0), workers=11, jobs=200, seed=s) for s in range(2)]
    samples = measure_many(configs)
    together = sorted(samples[0].waits + samples[1].waits)
    assert pooled_quantile(samples, 0.95) == together[379]
    finishes = sorted(samples[0].finishes + samples[1].finishes)
    assert pooled_quantile(samples, 0.95, of="finishes") == finishes[math.ceil(0.95 * len(finishes)) - 1]
    assert all(f >= w for f, w in zip(finishes, together, strict=True))  # order statistics: finishing includes waiting
    with pytest.raises(ValueError):
        pooled_quantile(samples, 0.95, of="service")


def test_erlang_c_workers_is_the_smallest_pool_meeting_the_slo() -> None:
    c = erlang_c_workers(1.0, 8.0, 5.0)
    assert wait_quantile(0.95, 1.0, 1 / 8.0, c) <= 5.0 < wait_quantile(0.95, 1.0, 1 / 8.0, c - 1)


def test_size_pool_tries_sizes_around_erlang_c_and_recommends_the_first_that_meets_the_slo() -> None:
    sizing = size_pool(rate=1.0, service=Exponential(8.0), slo=5.0, seeds=range(3), jobs=300)
    assert sizing.erlang_c_workers == 11
    assert [p.workers for p in sizing.points] == [9, 10, 11, 12]
    first_ok = next(p.workers for p in sizing.points if p.meets_slo)
    assert sizing.simulated_workers == first_ok
    p11 = sizing.point(11)
    assert isinstance(p11.p_over_slo, Interval) and p11.p_over_slo.n == 3
    assert p11.theory_p_over_slo == pytest.approx(p_wait_longer(5.0, 1.0, 1 / 8.0, 11))
    assert p11.utilization == pytest.approx(8 / 11)
    assert all(s.ok for p in sizing.points for s in p.samples)
    # fewer workers, more waiting: the estimates fall as the pool grows
    means = [p.p_over_slo.mean for p in sizing.points]
    assert means == sorted(means, reverse=True)


def test_size_pool_has_no_theory_for_other_run_times() -> None:
    sizing = size_pool(rate=1.0, service=LogNormal(8.0, 0.5), slo=5.0, seeds=range(2), jobs=150, sizes=[10, 12])
    assert [p.workers for p in sizing.points] == [10, 12]
    assert all(p.theory_p_over_slo is None and p.theory_wait_mean is None for p in sizing.points)


def test_band_coverage_is_near_nominal_for_long_enough_runs() -> None:
    coverage = band_coverage(rate=1.0, mean_service=8.0, workers=11, slo=5.0, seeds=6, jobs=1500, replications=60)
    assert set(coverage) == {"wait_mean", "p_over_slo"}
    # measured: about 0.9 for a nominal 0.95 (heavy-traffic waits are skewed); far lower would mean a wrong band
    assert all(0.8 <= v <= 1.0 for v in coverage.values()), coverage


def test_band_coverage_drops_for_runs_far_too_short() -> None:
    # 20 jobs per seed: most seeds see no wait over the SLO, the band collapses onto 0 and misses the truth.
    short = band_coverage(rate=1.0, mean_service=8.0, workers=11, slo=5.0, seeds=6, jobs=20, replications=60)
    long = band_coverage(rate=1.0, mean_service=8.0, workers=11, slo=5.0, seeds=6, jobs=1500, replications=60)
    assert short["p_over_slo"] < long["p_over_slo"]
