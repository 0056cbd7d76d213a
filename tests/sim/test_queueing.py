"""Queueing theory: with Poisson arrivals, exponential service and no faults, the simulator is an
M/M/c queue that agrees with Erlang C, and Little's law holds on every run.

How, soundly and fast:

1. Every run starts in steady state: the number of jobs present at time 0 is drawn from the M/M/c
   stationary distribution, busy workers' remaining service is exponential again (memoryless),
   and only jobs arriving after time 0 are measured, so estimates are unbiased from the first job
   (PASTA) and no warm-up is discarded.
2. ``test_engine_runs_are_exactly_fcfs``: driving the real engine, each job's wait equals, to the
   last bit, the wait the first-come-first-served c-server recursion (``theory.fcfs_waits``) gives
   for the same arrival and service times. So the engine-driven simulator *is* an M/M/c FCFS queue
   on its random streams, for every combination of c and load.
3. ``test_erlang_c``: mean wait, P(wait > 0) and P(wait > theoretical p95) (= 0.05, the unbiased
   way to check a quantile) are compared with Erlang C by a 99% Student-t interval over 10 seeds
   of 20,000 arrivals each, drawn from the simulator's own streams and queued by that recursion.
   Smaller runs are not sound: heavy-traffic waits are so correlated and skewed that with a few
   hundred jobs per seed the interval misses far more often than 1% (measured offline: up to 55%
   for c = 100, rho = 0.8), and 10 x 20,000 jobs on the engine take minutes, not seconds.
4. ``make soak`` (the ``soak`` marker) runs the same statistical check on the engine itself (the per-seed job count
   is ``JQC_SIM_SOAK_JOBS``, default 20,000), on a real Redis when one answers.
"""

from __future__ import annotations

import math
import os
import random
import statistics

import pytest

import jqc
from jqc.scaling import erlang_c, fcfs_waits, mean_wait, stationary_in_system, wait_quantile
from jqc.sim import Exponential, Poisson, SimConfig, run
from jqc.sim.rng import SimRandom
from jqc.sim.runner import Simulator

SOAK_JOBS = int(os.environ.get("JQC_SIM_SOAK_JOBS", "20000"))
SEEDS = range(10)
LOADS = [0.5, 0.8, 0.9]
SIZES = [1, 10, 100]
T_995_DF9 = 3.250  # Student t quantile for a two-sided 99% interval with 10 samples


def prefill(c: int, rho: float, seed: int) -> int:
    return stationary_in_system(rho * c, 1.0, c, random.Random(f"prefill:{c}:{rho}:{seed}"))


def mmc(c: int, rho: float, seed: int, jobs: int) -> SimConfig:
    return SimConfig(
        seed=seed,
        workers=c,
        jobs=jobs,
        arrival=Poisson(rho * c),
        service=Exponential(1.0),
        prefill=prefill(c, rho, seed),
        lock=3600.0,  # fault-free: no renewals or stall checks needed
        stall_interval=3600.0,
        idle_poll=3600.0,
        keep_completed=False,
    )


def theory(c: int, rho: float) -> dict[str, float]:
    lam = rho * c
    return {
        "wait_mean": mean_wait(lam, 1.0, c),
        "p_wait": erlang_c(lam, 1.0, c),
        "p_over_p95": min(0.05, erlang_c(lam, 1.0, c)),
    }


def estimates(waits: list[float], c: int, rho: float) -> dict[str, float]:
    p95 = wait_quantile(0.95, rho * c, 1.0, c)
    return {
        "wait_mean": math.fsum(waits) / len(waits),
        "p_wait": sum(1 for w in waits if w > 0) / len(waits),
        "p_over_p95": sum(1 for w in waits if w > p95) / len(waits),
    }


def check(c: int, rho: float, per_seed: list[dict[str, float]]) -> None:
    for metric, expected in theory(c, rho).items():
        values = [e[metric] for e in per_seed]
        mean = statistics.fmean(values)
        half = T_995_DF9 * statistics.stdev(values) / math.sqrt(len(values))
        assert mean - half - 1e-6 <= expected <= mean + half + 1e-6, (
            f"c={c} rho={rho}: {metric} theory {expected:.6f} outside the 99% interval "
            f"[{mean - half:.6f}, {mean + half:.6f}] of {[round(v, 6) for v in values]}"
        )


def reference_waits(c: int, rho: float, seed: int, jobs: int) -> list[float]:
    """The measured waits of ``run(mmc(c, rho, seed, jobs))``, from its streams and the FCFS recursion."""
    streams = SimRandom(seed)
    arrivals_iter = Poisson(rho * c).times(streams.stream("arrivals"))
    first = prefill(c, rho, seed)
    arrivals = [0.0] * first + [next(arrivals_iter) for _ in range(jobs)]
    service = Exponential(1.0)
    draw = streams.stream("service")
    services = [service.sample(draw) for _ in arrivals]  # FCFS: jobs start in arrival order
    return fcfs_waits(arrivals, services, c)[first:]


@pytest.mark.parametrize("rho", LOADS)
@pytest.mark.parametrize("c", SIZES)
def test_engine_runs_are_exactly_fcfs(c: int, rho: float, fast: jqc.Connection) -> None:
    sim = Simulator(mmc(c, rho, seed=1, jobs=150), fast)
    report = sim.run()
    assert report.ok, report.render()
    assert report.completed == report.jobs and report.lost == 0 and report.duplicates == 0
    assert report.invariants["littles_law"] == {"checked": 2, "violations": 0}
    jobs = list(sim.jobs.values())  # in the order they were added
    expected = fcfs_waits([j.entered for j in jobs], [j.service for j in jobs], c)
    assert [j.first_start - j.entered for j in jobs] == expected  # type: ignore[operator]
    # and the streams replay: the reference built from the seed alone gives the same waits
    measured = [j.first_start - j.ready for j in jobs if j.measured]  # type: ignore[operator]
    assert measured == reference_waits(c, rho, 1, 150)


@pytest.mark.parametrize("rho", LOADS)
@pytest.mark.parametrize("c", SIZES)
def test_erlang_c(c: int, rho: float) -> None:
    check(c, rho, [estimates(reference_waits(c, rho, seed, 20_000), c, rho) for seed in SEEDS])


@pytest.mark.soak  # minutes to hours: `make soak` runs it, `make test` deselects it
@pytest.mark.parametrize("rho", LOADS)
@pytest.mark.parametrize("c", SIZES)
def test_erlang_c_on_the_engine(c: int, rho: float, fast: jqc.Connection) -> None:
    per_seed = []
    for seed in SEEDS:
        sim = Simulator(mmc(c, rho, seed, SOAK_JOBS), fast)
        report = sim.run()
        assert report.ok, report.render()
        waits = [j.first_start - j.ready for j in sim.jobs.values() if j.measured]  # type: ignore[operator]
        assert report.wait_mean_s == pytest.approx(math.fsum(waits) / len(waits))
        per_seed.append(estimates(waits, c, rho))
    check(c, rho, per_seed)


def test_littles_law_and_utilization_on_engine_runs(fast: jqc.Connection) -> None:
    reports = [run(mmc(10, 0.8, seed, 300), fast) for seed in range(3)]
    for r in reports:
        assert r.invariants["littles_law"] == {"checked": 2, "violations": 0}
        assert r.littles_law["Lq"] == pytest.approx(r.littles_law["lambda_Wq"], rel=1e-9, abs=1e-12)
        assert r.littles_law["L"] == pytest.approx(r.littles_law["lambda_W"], rel=1e-9)
    assert statistics.fmean(r.utilization for r in reports) == pytest.approx(0.8, abs=0.1)


def test_theory_helpers() -> None:
    assert erlang_c(0.5, 1.0, 1) == pytest.approx(0.5)
    assert erlang_c(8.0, 1.0, 10) == pytest.approx(0.40918, abs=1e-5)
    assert mean_wait(9.0, 1.0, 10) == pytest.approx(0.66873, abs=1e-5)
    assert wait_quantile(0.95, 0.9, 1.0, 1) == pytest.approx(math.log(0.9 / 0.05) / 0.1)
    assert wait_quantile(0.95, 5.0, 1.0, 10) == 0.0
    rng = random.Random(1)
    draws = [stationary_in_system(0.5, 1.0, 1, rng) for _ in range(20000)]
    assert statistics.fmean(draws) == pytest.approx(1.0, rel=0.05)  # M/M/1: E[N] = rho / (1 - rho)
    assert fcfs_waits([0.0, 0.0, 1.0], [2.0, 2.0, 1.0], 1) == [0.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        erlang_c(10.0, 1.0, 10)
    with pytest.raises(jqc.InvalidInputError, match="no steady state"):
        erlang_c(10.0, 1.0, 10)
    with pytest.raises(jqc.InvalidInputError, match="q must be in"):
        wait_quantile(1.5, 0.5, 1.0, 1)
