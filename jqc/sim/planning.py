"""Capacity planning on the simulator: how many workers an arrival rate and a wait SLO need, with
confidence intervals from independent seeds, set beside what queueing theory (Erlang C) says.

Every estimate here comes from simulated runs of the real engine scripts (``jqc.sim``), never from a
formula; the formulas in :mod:`jqc.scaling.theory` are what the estimates are compared with. A run of
exponential service starts in the M/M/c steady state (jobs present at time 0 drawn from the
stationary distribution), so each seed's mean wait and share of jobs waiting longer than the SLO are
unbiased and seeds can be combined by a Student-t interval. Other service distributions have no
such warm start: their runs leave a share of the first arrivals out of the statistics instead.

Quantiles are estimated the unbiased way: "is the p95 wait within the SLO" is asked as "is
P(wait > SLO) at most 5%" (the share of jobs over the SLO is an unbiased estimate; a short run's
sample p95 reads low). That is also how Erlang C's answer is defined, so the two recommendations
are comparable.

    >>> from jqc.sim.planning import size_pool
    >>> from jqc.sim import Exponential
    >>> sizing = size_pool(rate=1.0, service=Exponential(8.0), slo=5.0, seeds=range(6), jobs=1500)
    >>> sizing.erlang_c_workers, sizing.simulated_workers
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from jqc.errors import InvalidInputError
from jqc.scaling import fcfs_waits, mean_wait, p_wait_longer, servers_for_wait, stationary_in_system, wait_quantile
from jqc.sim.checkers import Status
from jqc.sim.config import SimConfig
from jqc.sim.faults import FaultConfig
from jqc.sim.report import Report
from jqc.sim.runner import Simulator
from jqc.sim.workload import Exponential, JobClass, Poisson, Service

__all__ = [
    "Interval",
    "SizingPoint",
    "Sizing",
    "WaitSample",
    "band_coverage",
    "erlang_c_workers",
    "interval",
    "measure",
    "measure_many",
    "pool_config",
    "pooled_quantile",
    "run_many",
    "size_pool",
    "t_quantile",
]


# --- statistics -------------------------------------------------------------------------------------


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (no SciPy needed).

    Cornish-Fisher expansion around the normal quantile (Abramowitz & Stegun 26.7.5); within 0.2% of
    the exact value for df >= 3 at the usual levels (90-99.9%), which is far below the noise of any
    interval built from it.
    """
    if not 0 < p < 1:
        raise InvalidInputError("p must be in (0, 1)")
    if df < 1:
        raise InvalidInputError("df must be >= 1")
    if df == 1:  # Cauchy: exact
        return math.tan(math.pi * (p - 0.5))
    if df == 2:  # exact
        a = 4 * p * (1 - p)
        return (2 * p - 1) * math.sqrt(2 / a)
    z = statistics.NormalDist().inv_cdf(p)
    n = float(df)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / n + g2 / n**2 + g3 / n**3 + g4 / n**4


@dataclass(frozen=True)
class Interval:
    """A mean over independent samples (one per seed) with its two-sided Student-t interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    def contains(self, value: float, *, slack: float = 1e-9) -> bool:
        return self.low - slack <= value <= self.high + slack

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Student-t interval for the mean of ``values`` (independent, e.g. one per seed)."""
    xs = [float(v) for v in values]
    if len(xs) < 2:
        raise InvalidInputError("an interval needs at least two samples")
    if not 0 < confidence < 1:
        raise InvalidInputError("confidence must be in (0, 1)")
    mean = math.fsum(xs) / len(xs)
    half = t_quantile(0.5 + confidence / 2, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return Interval(mean, mean - half, mean + half, len(xs), confidence)


# --- one pool, one seed -----------------------------------------------------------------------------


def pool_config(
    *,
    rate: float,
    service: Service,
    workers: int,
    jobs: int,
    seed: int,
    steady_start: bool = True,
    warmup_share: float = 0.2,
    url: str | None = None,
    faults: FaultConfig | None = None,
    mix: tuple[JobClass, ...] | None = None,
    **overrides: object,
) -> SimConfig:
    """A simulated pool of ``workers`` fed Poisson arrivals at ``rate`` jobs/s for ``jobs`` arrivals.

    With exponential service, no faults and ``steady_start``, the run starts in the M/M/c steady
    state and every arrival is measured. Otherwise the first ``warmup_share`` of arrivals is left
    out of the wait statistics (the pool starts empty). Locks and stall checks are set long unless
    faults are injected, so a fault-free run spends no engine calls on renewals.
    """
    if rate <= 0 or workers < 1 or jobs < 1:
        raise InvalidInputError("need rate > 0, workers >= 1 and jobs >= 1")
    faulty = faults is not None and bool(faults.spec)
    prefill = warmup = 0
    mean_service = service.mean
    stable = rate * mean_service < workers
    if isinstance(service, Exponential) and steady_start and not faulty and stable and mix is None:
        prefill = stationary_in_system(rate, 1.0 / mean_service, workers, random.Random(f"jqc-plan:{seed}"))
    else:
        warmup = int(jobs * warmup_share)
    quiet: dict[str, object] = {} if faulty else {"lock": 3600.0, "stall_interval": 3600.0, "idle_poll": 3600.0}
    settings: dict[str, object] = {
        "seed": seed,
        "workers": workers,
        "jobs": jobs + warmup,
        "arrival": Poisson(rate),
        "service": service,
        "prefill": prefill,
        "warmup": warmup,
        "keep_completed": False,
        "url": url,
        **quiet,
    }
    if faults is not None:
        settings["faults"] = faults
    if mix is not None:
        settings["mix"] = mix
    settings.update(overrides)
    return SimConfig(**settings)  # type: ignore[arg-type]


@dataclass(frozen=True)
class WaitSample:
    """What one simulated run says about queue waits (measured jobs only), plus its health."""

    seed: int
    workers: int
    rate: float
    jobs: int
    wait_mean: float
    wait_p95: float
    p_wait: float
    over: dict[float, float]  # threshold (s) -> share of jobs that waited longer
    finish_mean: float  # ready -> finished, completed measured jobs (retries and recoveries included)
    finish_p95: float
    executions_per_job: float  # handler runs per measured job (1.0 when nothing ran twice or retried)
    duplicates: int
    dead_lettered: int
    ok: bool
    wall_seconds: float
    replay_command: str
    waits: tuple[float, ...] = field(default=(), repr=False)  # sorted
    finishes: tuple[float, ...] = field(default=(), repr=False)  # ready -> finished, sorted

    def p_over(self, threshold: float) -> float:
        return self.over[threshold]


def measure(config: SimConfig, thresholds: Sequence[float] = ()) -> WaitSample:
    """Run ``config`` once and summarize the waits of its measured jobs (first start minus ready time)."""
    sim = Simulator(config)
    report = sim.run()
    waits = sorted(j.first_start - j.ready for j in sim.jobs.values() if j.measured and j.first_start is not None)
    n = len(waits)
    if n == 0:
        raise InvalidInputError(f"the run measured no job: {report.replay_command}")
    over = {float(t): sum(1 for w in waits if w > t) / n for t in thresholds}
    measured = [j for j in sim.jobs.values() if j.measured]
    finish = sorted(j.finished - j.ready for j in measured if j.finished is not None and j.status is Status.COMPLETED)
    return WaitSample(
        seed=config.seed,
        workers=config.workers,
        rate=getattr(config.arrival, "rate", math.nan),
        jobs=n,
        wait_mean=math.fsum(waits) / n,
        wait_p95=waits[min(n - 1, math.ceil(0.95 * n) - 1)],
        p_wait=sum(1 for w in waits if w > 0) / n,
        over=over,
        finish_mean=math.fsum(finish) / len(finish) if finish else math.nan,
        finish_p95=finish[min(len(finish) - 1, math.ceil(0.95 * len(finish)) - 1)] if finish else math.nan,
        executions_per_job=sum(j.executions for j in measured) / len(measured),
        duplicates=report.duplicates,
        dead_lettered=report.dead_lettered,
        ok=report.ok,
        wall_seconds=report.wall_seconds,
        replay_command=report.replay_command,
        waits=tuple(waits),
        finishes=tuple(finish),
    )


def _measure_args(args: tuple[SimConfig, tuple[float, ...]]) -> WaitSample:
    return measure(*args)


def measure_many(
    configs: Sequence[SimConfig], thresholds: Sequence[float] = (), *, processes: int = 1
) -> list[WaitSample]:
    """:func:`measure` every configuration, in order; ``processes`` > 1 runs them side by side.

    Each process drives its own embedded backend (or its own connection to ``config.url``), so
    results are the same whatever ``processes`` is: a run depends only on its configuration.
    """
    work = [(c, tuple(float(t) for t in thresholds)) for c in configs]
    if processes <= 1 or len(work) <= 1:
        return [_measure_args(w) for w in work]
    with ProcessPoolExecutor(max_workers=min(processes, len(work))) as pool:
        return list(pool.map(_measure_args, work))


def _run_config(config: SimConfig) -> Report:
    return Simulator(config).run()


def run_many(configs: Sequence[SimConfig], *, processes: int = 1) -> list[Report]:
    """Run every configuration and return the reports, in order; ``processes`` > 1 runs them side by side.

    A configuration holding a ``custom_policy`` must hold its own instance (policies keep state).
    """
    if processes <= 1 or len(configs) <= 1:
        return [_run_config(c) for c in configs]
    with ProcessPoolExecutor(max_workers=min(processes, len(configs))) as pool:
        return list(pool.map(_run_config, configs))


# --- sizing -------------------------------------------------------------------------------------------


def erlang_c_workers(rate: float, mean_service: float, slo: float, percentile: float = 95.0) -> int:
    """The fewest workers for which M/M/c puts the ``percentile`` of queue wait at ``slo`` or less."""
    return servers_for_wait(rate, mean_service, slo, percentile)


@dataclass(frozen=True)
class SizingPoint:
    """One pool size: the simulated estimates over seeds and, when the pool is M/M/c, Erlang C's values."""

    workers: int
    utilization: float
    p_over_slo: Interval
    wait_mean: Interval
    wait_p95_pooled: float  # the p95 of every seed's waits together
    theory_p_over_slo: float | None
    theory_wait_mean: float | None
    theory_wait_p95: float | None
    samples: tuple[WaitSample, ...]
    allowance: float = 0.05  # the share of jobs allowed over the SLO (1 - percentile)

    @property
    def meets_slo(self) -> bool:
        """The simulated share of jobs over the SLO is within the allowance (the point estimate)."""
        return self.p_over_slo.mean <= self.allowance


@dataclass(frozen=True)
class Sizing:
    """The answer to "how many workers": the simulator's and Erlang C's, with every point tried."""

    rate: float
    service: str
    slo: float
    percentile: float
    erlang_c_workers: int
    simulated_workers: int | None  # None: no size tried met the SLO
    points: tuple[SizingPoint, ...] = field(default=())

    def point(self, workers: int) -> SizingPoint:
        return next(p for p in self.points if p.workers == workers)


def pooled_quantile(samples: Sequence[WaitSample], q: float, *, of: str = "waits") -> float:
    """The ``q`` quantile of every sample's ``waits`` (or ``finishes``) taken together.

    Closer to the truth than the mean of each short run's own quantile, which reads low.
    """
    if of not in ("waits", "finishes"):
        raise InvalidInputError("of must be 'waits' or 'finishes'")
    values: list[float] = sorted(v for s in samples for v in (s.waits if of == "waits" else s.finishes))
    if not values:
        raise InvalidInputError(f"no {of} to take a quantile of")
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def size_pool(
    *,
    rate: float,
    service: Service,
    slo: float,
    percentile: float = 95.0,
    seeds: Iterable[int] = range(6),
    jobs: int = 1500,
    sizes: Iterable[int] | None = None,
    confidence: float = 0.95,
    processes: int = 1,
    url: str | None = None,
    max_extra: int = 40,
) -> Sizing:
    """Find the smallest pool whose simulated share of waits over ``slo`` is at most ``1 - percentile``.

    Tries ``sizes`` if given, else from two below Erlang C's answer (never an unstable size) upward
    until the simulated answer is found and one more size above it, at most ``max_extra`` sizes past
    Erlang C's. Each size is simulated once per seed; the estimates' intervals come from the seeds.
    """
    seeds = list(seeds)
    allowance = 1 - percentile / 100.0
    mean_service = service.mean
    mmc = isinstance(service, Exponential)
    theory_c = erlang_c_workers(rate, mean_service, slo, percentile)
    stable_floor = math.floor(rate * mean_service * (1 + 1e-9)) + 1

    def evaluate(candidates: list[int]) -> list[SizingPoint]:
        configs = [
            pool_config(rate=rate, service=service, workers=c, jobs=jobs, seed=s, url=url)
            for c in candidates
            for s in seeds
        ]
        samples = measure_many(configs, [slo], processes=processes)
        out = []
        for i, c in enumerate(candidates):
            mine = tuple(samples[i * len(seeds) : (i + 1) * len(seeds)])
            lam, mu = rate, 1.0 / mean_service
            out.append(
                SizingPoint(
                    workers=c,
                    utilization=rate * mean_service / c,
                    p_over_slo=interval([s.p_over(slo) for s in mine], confidence),
                    wait_mean=interval([s.wait_mean for s in mine], confidence),
                    wait_p95_pooled=pooled_quantile(mine, percentile / 100.0),
                    theory_p_over_slo=p_wait_longer(slo, lam, mu, c) if mmc else None,
                    theory_wait_mean=mean_wait(lam, mu, c) if mmc else None,
                    theory_wait_p95=wait_quantile(percentile / 100.0, lam, mu, c) if mmc else None,
                    samples=mine,
                    allowance=allowance,
                )
            )
        return out

    if sizes is not None:
        points = evaluate(sorted(set(sizes)))
    else:
        first = max(stable_floor, theory_c - 2)
        points = evaluate(list(range(first, theory_c + 2)))
        while not any(p.meets_slo for p in points) and points[-1].workers < theory_c + max_extra:
            nxt = points[-1].workers + 1
            points += evaluate([nxt, nxt + 1])
    found = next((p.workers for p in points if p.meets_slo), None)
    return Sizing(rate, getattr(service, "spec", str(service)), slo, percentile, theory_c, found, tuple(points))


# --- how far to trust a band ------------------------------------------------------------------------------


def band_coverage(
    *,
    rate: float,
    mean_service: float,
    workers: int,
    slo: float,
    seeds: int,
    jobs: int,
    replications: int = 200,
    confidence: float = 0.95,
    base_seed: int = 0,
) -> dict[str, float]:
    """How often the interval :func:`size_pool` draws for ``workers`` covers Erlang C's value.

    Uses the first-come-first-served recursion (:func:`jqc.scaling.theory.fcfs_waits`), which the test
    suite shows gives the engine-driven simulator's waits bit for bit, on ``replications`` fresh
    sets of ``seeds`` runs of ``jobs`` arrivals each, warm-started like :func:`pool_config`. A
    coverage well below ``confidence`` says the runs are too short for the band to be trusted.
    """
    lam, mu = rate, 1.0 / mean_service
    truth = {"wait_mean": mean_wait(lam, mu, workers), "p_over_slo": p_wait_longer(slo, lam, mu, workers)}
    hits = {k: 0 for k in truth}
    for rep in range(replications):
        per_seed: dict[str, list[float]] = {k: [] for k in truth}
        for s in range(seeds):
            rng = random.Random(f"jqc-plan-coverage:{base_seed}:{rep}:{s}")
            first = stationary_in_system(lam, mu, workers, rng)
            t, arrivals = 0.0, [0.0] * first
            for _ in range(jobs):
                t += rng.expovariate(lam)
                arrivals.append(t)
            services = [rng.expovariate(mu) for _ in arrivals]
            waits = fcfs_waits(arrivals, services, workers)[first:]
            per_seed["wait_mean"].append(math.fsum(waits) / len(waits))
            per_seed["p_over_slo"].append(sum(1 for w in waits if w > slo) / len(waits))
        for k, values in per_seed.items():
            if interval(values, confidence).contains(truth[k]):
                hits[k] += 1
    return {k: v / replications for k, v in hits.items()}
