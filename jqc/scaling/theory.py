"""Queueing theory (M/M/c, Erlang C): what the autoscaler sizes a pool with, what capacity planning
compares its simulated estimates with, and what the simulator is checked against.

``lam`` is the arrival rate (jobs/s), ``mu`` the service rate of one worker (1 / mean service
time), ``c`` the number of workers; the offered load is ``a = lam / mu`` and the utilisation
``rho = a / c``, which must be below 1 for a steady state to exist.
"""

from __future__ import annotations

import heapq
import math
import random

from jqc.errors import InvalidInputError

__all__ = [
    "erlang_c",
    "fcfs_waits",
    "mean_wait",
    "p_wait_longer",
    "servers_for_wait",
    "stationary_in_system",
    "wait_quantile",
]


def _check(lam: float, mu: float, c: int) -> float:
    if lam <= 0 or mu <= 0 or c < 1:
        raise InvalidInputError(f"need lam > 0, mu > 0 and c >= 1, not lam={lam!r}, mu={mu!r}, c={c!r}")
    a = lam / mu
    if a >= c:
        raise InvalidInputError(f"load {a / c:.3f} >= 1: no steady state")
    return a


def _log_terms(a: float, c: int) -> tuple[list[float], float]:
    # log(a^k / k!) for k < c, and log(a^c / c! * c / (c - a)); logs keep c = 1000 finite.
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    return logs, top


def erlang_c(lam: float, mu: float, c: int) -> float:
    """Probability that an arriving job has to wait (all ``c`` workers busy)."""
    a = _check(lam, mu, c)
    logs, top = _log_terms(a, c)
    peak = max([*logs, top])
    below = sum(math.exp(x - peak) for x in logs)
    return math.exp(top - peak) / (below + math.exp(top - peak))


def mean_wait(lam: float, mu: float, c: int) -> float:
    """Mean time in the queue before service starts, E[Wq] = C / (c mu - lam)."""
    return erlang_c(lam, mu, c) / (c * mu - lam)


def p_wait_longer(t: float, lam: float, mu: float, c: int) -> float:
    """P(Wq > t) = C exp(-(c mu - lam) t) for t >= 0."""
    return erlang_c(lam, mu, c) * math.exp(-(c * mu - lam) * max(0.0, t))


def wait_quantile(q: float, lam: float, mu: float, c: int) -> float:
    """The q-quantile of the wait (0 when at least a share q of jobs does not wait at all)."""
    if not 0 < q < 1:
        raise InvalidInputError(f"q must be in (0, 1), not {q!r}")
    cw = erlang_c(lam, mu, c)
    if cw <= 1 - q:
        return 0.0
    return math.log(cw / (1 - q)) / (c * mu - lam)


def servers_for_wait(rate: float, service: float, wait: float, percentile: float = 95.0, limit: int = 100_000) -> int:
    """The fewest servers for which M/M/c (Erlang C) puts the ``percentile`` of wait at ``wait`` seconds or less.

    ``rate`` in jobs/s, ``service`` the mean run time in seconds. 0 when nothing arrives; at most
    ``limit``.
    """
    if rate <= 0 or service <= 0:
        return 0
    a = rate * service
    c = max(1, math.floor(a * (1 + 1e-9)) + 1)  # a stable queue needs c > a, rounding included
    q = percentile / 100.0
    floor = c
    while c < limit:
        if wait_quantile(q, rate, 1.0 / service, c) <= wait:
            while c > floor and wait_quantile(q, rate, 1.0 / service, c - 1) <= wait:
                c -= 1  # a long stride may have passed the answer
            return c
        # Far from the answer, stride: the square-root staffing rule grows like sqrt(a).
        c += 1 if c > a + 3 * math.sqrt(a) else max(1, int(math.sqrt(a) / 8))
    return limit


def stationary_in_system(lam: float, mu: float, c: int, rng: random.Random) -> int:
    """Draw the number of jobs in an M/M/c system in steady state (for a warm start)."""
    a = _check(lam, mu, c)
    logs, _ = _log_terms(a, c)
    log_pc = c * math.log(a) - math.lgamma(c + 1)  # P(n) for n >= c is P(c) * rho^(n - c)
    rho = a / c
    peak = max([*logs, log_pc])
    weights = [math.exp(x - peak) for x in logs]
    tail = math.exp(log_pc - peak) / (1 - rho)
    u = rng.random() * (sum(weights) + tail)
    for n, w in enumerate(weights):
        if u < w:
            return n
        u -= w
    # Geometric tail: n = c + k with P(k) = (1 - rho) rho^k.
    v = 1.0 - rng.random()
    return c + int(math.log(v) / math.log(rho))


def fcfs_waits(arrivals: list[float], services: list[float], c: int) -> list[float]:
    """Waits of a first-come-first-served queue with ``c`` servers (the G/G/c recursion).

    ``arrivals`` must be sorted; job i arrives at ``arrivals[i]`` and needs ``services[i]``. The
    simulator, fault-free with one job class, must reproduce these waits exactly (a test checks it
    job by job), which ties its Erlang C agreement to this reference.
    """
    free = [0.0] * c  # when each server is next free (a heap)
    waits = []
    for arrival, service in zip(arrivals, services, strict=True):
        earliest = free[0]
        start = arrival if arrival >= earliest else earliest
        waits.append(start - arrival)
        heapq.heapreplace(free, start + service)
    return waits
