"""The wait-SLO scaling policy: keep the ``percentile`` of queue wait under an SLO with as few workers
as that takes.

:class:`SloPolicy` implements :class:`~jqc.scaling.metrics.ScalingPolicy`, so the same object is
evaluated in ``jqc sim`` and run live by :class:`jqc.coordinator.autoscale.Coordinator`.

How it decides (the details are in ``docs/autoscaling.md``):

1. It averages the arrival rate over a fast and a slow window and measures the mean run time (or
   takes it from Little's law on the busy workers when the caller does not measure it).
2. While the two averages agree within ``change_sigmas`` Poisson errors the load is steady: the
   slow average sizes the pool, inside a dead band of ``band_sigmas`` errors on either side, so
   noise does not make it flap. A significant change uses the fast average, projected along the
   trend over the start-up time and one tick when rising.
3. **Steady state**: the fewest workers for which Erlang C puts the wait percentile (p95) at
   ``aim * slo``. **Backlog**: when the running workers cannot start every waiting job within the
   SLO, the workers that can, given that new ones help only after ``startup`` seconds.
4. **Burst reserve**: once bursts recur (two or more in ``burst_memory`` seconds, each a run of
   ticks whose arrivals were clipped as a burst and that left a line the running workers could not
   start within the SLO), keep enough servers free on top of the load that the jobs of a repeat of
   the largest one, which arrive before workers asked for then could start, still start within the
   SLO (times ``burst_reserve``; 0 turns it off).
5. **Up at once** to the largest need. **Down slowly**: only to the highest need of the last
   ``scale_down_delay`` seconds, never below the jobs running, at most ``max_down_step`` of the
   pool per tick; the actuator drains the workers it stops (they finish their jobs first).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from jqc.errors import InvalidOptionError

from .checks import check_positive
from .metrics import PoolMetrics
from .theory import servers_for_wait

__all__ = ["SloPolicy"]

_LN2 = math.log(2.0)
_FIRST_SPAN = 15.0  # seconds the first tick's arrival rate is taken to cover


@dataclass(slots=True)
class _Average:
    """An exponentially weighted average over time, normalised by the weight seen so far, so that
    early on it is the plain mean of the few samples there are (no start-up bias toward zero)."""

    halflife: float
    total: float = 0.0
    weight: float = 0.0
    span: float = 0.0

    def add(self, value: float, seconds: float) -> None:
        decay = 0.5 ** (seconds / self.halflife)
        self.total = self.total * decay + (1 - decay) * value
        self.weight = self.weight * decay + (1 - decay)
        self.span += seconds

    @property
    def value(self) -> float:
        return self.total / self.weight if self.weight > 0 else 0.0

    def error(self, rate: float) -> float:
        """The Poisson error of this average of a counted rate: sqrt(r / (2 tau)) once it has seen
        more than a few time constants, sqrt(r / seconds seen) before."""
        tau = self.halflife / _LN2
        return math.sqrt(max(rate, 1e-9) / (2 * tau * -math.expm1(-self.span / (2 * tau)) or 1e-9))


@dataclass(slots=True)
class SloPolicy:
    """Scale a worker pool so that the ``percentile`` of queue wait stays under ``slo`` seconds.

    ``startup``: seconds a new worker needs before it takes jobs. ``concurrency``: jobs one worker
    runs at once (a ``jqc worker`` process with ``--concurrency``). ``aim``: the steady state puts
    the wait percentile at ``aim * slo`` (the rest is margin for noise and reaction time).
    ``service_time``: a known mean run time (default: measured). ``burst_reserve``: the share of
    the free servers that would absorb a repeat of the largest recent burst to keep once bursts
    recur (1: all of them, 0: no reserve), ``burst_memory``: for how long a burst is remembered.
    The other fields tune the estimates and the scale-down (see the module docstring). After each ``decide``,
    :attr:`reasons` says why in words and :attr:`values` holds the numbers.
    """

    slo: float = 60.0
    percentile: float = 95.0
    startup: float = 0.0
    concurrency: int = 1
    aim: float = 0.5
    drain_within: float | None = None
    scale_down_delay: float = 120.0
    band: float = 0.05
    band_sigmas: float = 3.0
    max_down_step: float = 0.25
    fast_halflife: float = 60.0
    slow_halflife: float = 300.0
    service_window: float = 300.0
    change_sigmas: float = 3.0
    service_time: float | None = None
    burst_reserve: float = 1.0
    burst_memory: float = 3600.0
    name: str = "slo"
    reasons: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    _last: float | None = None
    _fast: _Average = field(default_factory=lambda: _Average(60.0))
    _slow: _Average = field(default_factory=lambda: _Average(300.0))
    _busy: deque[tuple[float, float, float]] = field(default_factory=deque)
    _down: deque[tuple[float, int]] = field(default_factory=deque)
    _first: float = 0.0
    _last_up: float = -math.inf
    _excess: float = 0.0
    _episode: list[float] | None = None
    _bursts: deque[tuple[float, float, float]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        check_positive(self.slo, "slo")
        if not 0 < self.percentile < 100:
            raise InvalidOptionError(f"percentile must be in (0, 100), not {self.percentile!r}")
        check_positive(self.startup, "startup", allow_zero=True)
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise InvalidOptionError(f"concurrency must be an int >= 1, not {self.concurrency!r}")
        if not 0 < self.aim <= 1:
            raise InvalidOptionError(f"aim must be in (0, 1], not {self.aim!r}")
        if self.drain_within is not None:
            check_positive(self.drain_within, "drain_within")
        check_positive(self.scale_down_delay, "scale_down_delay", allow_zero=True)
        check_positive(self.band, "band", allow_zero=True)
        check_positive(self.band_sigmas, "band_sigmas", allow_zero=True)
        check_positive(self.change_sigmas, "change_sigmas")
        if not 0 < self.max_down_step <= 1:
            raise InvalidOptionError(f"max_down_step must be in (0, 1], not {self.max_down_step!r}")
        for name in ("fast_halflife", "slow_halflife", "service_window"):
            check_positive(getattr(self, name), name)
        if self.slow_halflife <= self.fast_halflife:
            raise InvalidOptionError("slow_halflife must be longer than fast_halflife")
        if self.service_time is not None:
            check_positive(self.service_time, "service_time")
        check_positive(self.burst_reserve, "burst_reserve", allow_zero=True)
        check_positive(self.burst_memory, "burst_memory", allow_zero=True)

    def reset(self) -> None:
        """Forget every estimate (a coordinator that just took over starts afresh)."""
        self._last = None
        self._busy.clear()
        self._down.clear()
        self._last_up = -math.inf
        self._excess = 0.0
        self._episode = None
        self._bursts.clear()

    # -- estimates ------------------------------------------------------------------------------

    def _rates(self, m: PoolMetrics) -> float | None:
        """Update the moving averages; returns the seconds since the last tick (None at the first).

        A tick's rate is clipped to the fast average plus the larger of itself and four Poisson
        errors, so a burst (a backlog, which the backlog rule handles) does not pass for a lasting
        rise in load, while a real rise still shows within a few ticks.
        """
        rate = max(0.0, m.arrival_rate)
        self._excess = 0.0
        if self._last is None:
            dt = None
            self._fast = _Average(self.fast_halflife)
            self._slow = _Average(self.slow_halflife)
            self._first = m.now
            span = _FIRST_SPAN
        elif m.now <= self._last:
            return None
        else:
            dt = span = m.now - self._last
            fast = self._fast.value
            clipped = min(rate, fast + max(fast, 4 * math.sqrt(max(fast, 1 / dt) / dt)))
            self._excess = (rate - clipped) * dt  # jobs that came in a burst, beyond the load's level
            rate = clipped
        self._fast.add(rate, span)
        self._slow.add(rate, span)
        self._last = m.now
        return dt

    def _service(self, m: PoolMetrics, dt: float | None) -> float | None:
        if self.service_time is not None:
            return self.service_time
        if m.service_time is not None and m.service_time > 0:
            return m.service_time
        if dt is not None and dt > 0:
            self._busy.append((m.now, m.busy * dt, m.completion_rate * dt))
        while self._busy and self._busy[0][0] < m.now - self.service_window:
            self._busy.popleft()
        busy = math.fsum(b for _, b, _ in self._busy)
        done = math.fsum(c for _, _, c in self._busy)
        return busy / done if done >= 3 else None

    def _levels(self, tick: float) -> tuple[float, float, bool]:
        """The rates to size with: (scaling up, scaling down, whether the load changed significantly).

        Arrivals are counted, so an average over a time constant tau of a rate r is off by about
        sqrt(r / (2 tau)) (Poisson). While the fast average stays within ``change_sigmas`` such
        errors of the slow one, the load is taken as steady and the slow average sizes the pool,
        with a dead band of ``band_sigmas`` errors (at least ``band`` of the rate) on each side:
        up when even the low edge needs more workers, down when even the high edge needs fewer.
        A significant change uses the fast average, projected along the trend over the start-up
        time and one tick when rising.
        """
        tau_f = self.fast_halflife / _LN2
        tau_s = self.slow_halflife / _LN2
        fast, slow = self._fast.value, self._slow.value
        noise_s = self._slow.error(slow)
        noise = math.sqrt(self._fast.error(fast) ** 2 + noise_s**2)
        changed = abs(fast - slow) > self.change_sigmas * noise
        if changed:
            up = fast
            if fast > slow:
                up += (fast - slow) / (tau_s - tau_f) * (self.startup + tick)  # the trend, until new workers help
            return up, max(fast, up) * (1 + self.band), True
        half = max(self.band * slow, self.band_sigmas * noise_s)
        return max(0.0, slow - half), slow + half, False

    def _workers(self, servers: float) -> int:
        return math.ceil(servers / self.concurrency - 1e-9)

    # -- the decision ---------------------------------------------------------------------------

    def decide(self, m: PoolMetrics) -> int:
        dt = self._rates(m)
        service = self._service(m, dt)
        current = m.target if m.target > 0 else m.current
        tick = dt if dt is not None else 0.0
        reasons: list[str] = []
        rate_up, rate_down, changed = self._levels(tick)
        wait = self.aim * self.slo
        busy_workers = self._workers(m.busy)
        values: dict[str, Any] = {
            "rate_fast": round(self._fast.value, 6),
            "rate_slow": round(self._slow.value, 6),
            "rate_projected": round(rate_up, 6),
            "rate_changed": changed,
            "service_s": None if service is None else round(service, 6),
            "waiting": m.waiting,
            "busy": m.busy,
            "oldest_wait_s": round(m.oldest_wait, 3),
            "wait_p95_s": m.wait_p95,
            "current": current,
            "startup_s": self.startup,
        }
        if service is None:
            # Nothing finished yet: no run time to size with. Cover the jobs present, one per slot.
            up = self._workers(m.busy + m.waiting)
            down = up
            reasons.append(f"no run time measured yet: {m.busy + m.waiting} job(s) present, one slot each")
        else:
            steady_up = self._workers(servers_for_wait(rate_up, service, wait, self.percentile))
            steady_down = self._workers(servers_for_wait(rate_down, service, wait, self.percentile))
            backlog = self._backlog(m, service, rate_up, tick)
            self._track_bursts(m.now, service, tick, harmful=backlog > steady_up)
            reserve = self._reserve()
            # The reserve comes on top of the load, inside the same dead band as the steady need.
            reserve_need = self._workers(rate_up * service + reserve) if reserve > 0 else 0
            reserve_down = self._workers(rate_down * service + reserve) if reserve > 0 else 0
            up = max(steady_up, backlog, reserve_need)
            down = max(steady_down, up, busy_workers, reserve_down)
            values.update(
                steady=steady_up,
                backlog_need=backlog,
                reserve_servers=round(reserve, 3),
                reserve_need=reserve_need,
                down_need=down,
            )
            reasons.append(
                f"{rate_up:.3g} jobs/s x {service:.3g} s needs {steady_up} worker(s) "
                f"for p{self.percentile:g} wait <= {wait:.3g} s"
            )
            if backlog > steady_up:
                reasons.append(
                    f"{m.waiting} waiting job(s) need {backlog} worker(s) to start within "
                    f"{self._within(service, tick):.3g} s (start-up {self.startup:g} s)"
                )
            if reserve_need > max(steady_up, backlog):
                biggest = max(jobs for _, jobs, _ in self._bursts)
                reasons.append(
                    f"{len(self._bursts)} bursts in the last {self.burst_memory:g} s (the largest {biggest:.0f} "
                    f"job(s)): keep {reserve:.3g} server(s) free on top of the load, {reserve_need} worker(s)"
                )
        self._down.append((m.now, down))
        while self._down and self._down[0][0] < m.now - self.scale_down_delay:
            self._down.popleft()
        target = current
        if up > current:
            target = up
            self._last_up = m.now
            reasons.append(f"scale up {current} -> {up}")
        else:
            settled = min(m.now - self._first, m.now - self._last_up) >= self.scale_down_delay
            highest = max(n for _, n in self._down)
            if highest < current and settled:
                step = max(1, math.floor(self.max_down_step * current))
                target = max(highest, current - step)
                reasons.append(
                    f"scale down {current} -> {target}: at most {highest} needed over the last "
                    f"{self.scale_down_delay:g} s"
                )
            elif highest < current:
                reasons.append(f"hold {current}: {highest} would do, waiting out the scale-down delay")
            else:
                reasons.append(f"hold {current}")
        clamped = min(max(target, m.min_workers), m.max_workers)
        if clamped != target:
            reasons.append(f"clamped to [{m.min_workers}, {m.max_workers}]: {clamped}")
        values["target"] = clamped
        self.reasons = reasons
        self.values = values
        return clamped

    def _within(self, service: float, tick: float) -> float:
        """Seconds the jobs waiting now should start within: the SLO, less one tick of reaction."""
        within = self.drain_within if self.drain_within is not None else self.slo
        return max(within - tick, service)

    def _track_bursts(self, now: float, service: float, tick: float, *, harmful: bool) -> None:
        """Remember the bursts of the last ``burst_memory`` seconds: runs of ticks whose arrivals
        were clipped as a burst (:meth:`_rates`) and that made a line the running workers could not
        start within the SLO. Each is kept as (when it ended, its excess jobs, the servers that a
        repeat of it needs free, :meth:`_protect`)."""
        if self._excess > 0:
            if self._episode is None:
                self._episode = [0.0, 0.0, 0.0]
            episode = self._episode
            episode[0] += self._excess
            episode[1] += tick
            episode[2] = max(episode[2], float(harmful))
        elif self._episode is not None:
            jobs, width, harm = self._episode
            self._episode = None
            if harm:
                self._bursts.append((now, jobs, self._protect(jobs, width, service, tick)))
        while self._bursts and self._bursts[0][0] < now - self.burst_memory:
            self._bursts.popleft()

    def _reserve(self) -> float:
        """Servers to keep free for the next burst: ``burst_reserve`` times what the largest burst
        remembered needs (:meth:`_protect`), once bursts recur (two or more in ``burst_memory``
        seconds); a single one may be a one-off batch, not worth holding workers for."""
        if self.burst_reserve <= 0 or len(self._bursts) < 2:
            return 0.0
        return self.burst_reserve * max(r for _, _, r in self._bursts)

    def _protect(self, jobs: float, width: float, service: float, tick: float) -> float:
        """Free servers that start every job of a burst of ``jobs`` over ``width`` seconds within the SLO.

        Workers asked for when a burst shows up help only after up to one tick plus the start-up;
        the jobs of the burst that arrive more than the SLO before that must be started by servers
        already free. ``r`` free servers start ``r`` jobs at once and ``r / service`` a second
        after, so the ``k``-th of those jobs, arriving at ``a_k``, starts within the SLO when
        ``r * (1 + (a_k + slo) / service) >= k``; the last of them needs the most.
        """
        within = self.drain_within if self.drain_within is not None else self.slo
        gap = tick + self.startup - within
        if gap <= 0:
            return 0.0
        head = min(width, gap)
        exposed = jobs * (head / width if width > 0 else 1.0)
        return exposed / (1 + (head + within) / service)

    def _backlog(self, m: PoolMetrics, service: float, rate: float, tick: float) -> int:
        """Workers that start every job waiting now within :meth:`_within` seconds (FIFO).

        The workers running now start a job every ``service / servers`` seconds. If they get
        through the line in time, nothing more is needed. Otherwise workers asked for now help only
        after the start-up time, by which the line has grown by the arrivals (at ``rate``) less
        what the running workers started; from then on, all of them must work off that line and
        keep up with arrivals by the deadline (or, when start-up alone is longer than the deadline,
        one run time or tick after they are up).
        """
        if m.waiting <= 0:
            return 0
        k = self.concurrency
        running = k * m.ready
        within = self._within(service, tick)
        if running > 0 and m.waiting * service / running <= within:
            return 0
        line = m.waiting + (rate - running / service) * self.startup
        if line <= 0:
            return 0
        deadline = max(within, self.startup + max(service, tick))
        servers = line * service / (deadline - self.startup) + rate * service
        return self._workers(max(servers, running))
