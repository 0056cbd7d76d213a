"""Workloads: when jobs arrive, how long they run, and what kinds of job there are.

Each arrival process, service-time distribution and job class is a frozen dataclass that draws
from a stream it is given, and has a text form for the command line (``spec``) that
:mod:`jqc.sim.specs` reads back.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from jqc.engine.job import Backoff, JobOptions
from jqc.errors import InvalidOptionError

__all__ = [
    "Arrival",
    "Bursts",
    "Daily",
    "Empirical",
    "Exponential",
    "Fixed",
    "JobClass",
    "LogNormal",
    "Poisson",
    "Replay",
    "Service",
    "Step",
]


def _fmt(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def _positive(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InvalidOptionError(f"{name} must be a positive number, not {value!r}")
    return float(value)


def _non_negative(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise InvalidOptionError(f"{name} must be a number >= 0, not {value!r}")
    return float(value)


def _probability(value: float, name: str) -> float:
    if not (isinstance(value, (int, float)) and 0 <= value <= 1):
        raise InvalidOptionError(f"{name} must be a probability in [0, 1], not {value!r}")
    return float(value)


# -- arrivals --------------------------------------------------------------------------------------


class Arrival(Protocol):
    """A process of arrival times (seconds from the start, non-decreasing, possibly endless)."""

    def times(self, rng: random.Random) -> Iterator[float]: ...

    def bursts(self) -> Iterator[tuple[float, float]]:
        """(start, end) of each burst, for measuring the time to drain after it."""
        ...

    @property
    def spec(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Poisson:
    """Jobs arrive one by one at ``rate`` per second on average, independently."""

    rate: float

    def __post_init__(self) -> None:
        _positive(self.rate, "poisson rate")

    def times(self, rng: random.Random) -> Iterator[float]:
        t = 0.0
        while True:
            t += rng.expovariate(self.rate)
            yield t

    def bursts(self) -> Iterator[tuple[float, float]]:
        return iter(())

    @property
    def spec(self) -> str:
        return f"poisson:rate={_fmt(self.rate)}"


@dataclass(frozen=True, slots=True)
class Bursts:
    """Poisson arrivals at ``rate``, plus ``size`` extra jobs spread evenly over ``width`` seconds
    every ``every`` seconds (the first burst at ``first``, default ``every``)."""

    rate: float
    size: int
    every: float
    width: float = 0.0
    first: float | None = None

    def __post_init__(self) -> None:
        _non_negative(self.rate, "burst base rate")
        if not isinstance(self.size, int) or self.size < 1:
            raise InvalidOptionError(f"burst size must be an int >= 1, not {self.size!r}")
        _positive(self.every, "burst period")
        _non_negative(self.width, "burst width")

    def _starts(self) -> Iterator[float]:
        t = self.every if self.first is None else self.first
        while True:
            yield t
            t += self.every

    def bursts(self) -> Iterator[tuple[float, float]]:
        return ((s, s + self.width) for s in self._starts())

    def times(self, rng: random.Random) -> Iterator[float]:
        base = Poisson(self.rate).times(rng) if self.rate > 0 else iter(())
        step = self.width / self.size
        burst = (s + i * step for s in self._starts() for i in range(self.size))
        next_base = next(base, math.inf)
        next_burst = next(burst)
        while True:
            if next_base <= next_burst:
                yield next_base
                next_base = next(base, math.inf)
            else:
                yield next_burst
                next_burst = next(burst)

    @property
    def spec(self) -> str:
        out = f"bursts:rate={_fmt(self.rate)},size={self.size},every={_fmt(self.every)},width={_fmt(self.width)}"
        return out if self.first is None else out + f",first={_fmt(self.first)}"


def _thinned(rate_at: object, peak: float, rng: random.Random) -> Iterator[float]:
    """A non-homogeneous Poisson process by thinning (Lewis and Shedler)."""
    assert callable(rate_at)
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if rng.random() * peak <= rate_at(t):
            yield t


@dataclass(frozen=True, slots=True)
class Step:
    """Poisson arrivals at ``rate`` until ``at`` seconds, then at ``to``."""

    rate: float
    to: float
    at: float

    def __post_init__(self) -> None:
        _non_negative(self.rate, "step rate")
        _non_negative(self.to, "step target rate")
        _non_negative(self.at, "step time")
        if self.rate == 0 and self.to == 0:
            raise InvalidOptionError("a step needs a positive rate on one side (rate or to)")

    def times(self, rng: random.Random) -> Iterator[float]:
        return _thinned(lambda t: self.rate if t < self.at else self.to, max(self.rate, self.to), rng)

    def bursts(self) -> Iterator[tuple[float, float]]:
        return iter(())

    @property
    def spec(self) -> str:
        return f"step:rate={_fmt(self.rate)},to={_fmt(self.to)},at={_fmt(self.at)}"


@dataclass(frozen=True, slots=True)
class Daily:
    """A daily cycle: rate ``mean * (1 + amp * sin(2 pi (t / period - phase)))``."""

    mean: float
    amp: float = 0.5
    period: float = 86400.0
    phase: float = 0.0

    def __post_init__(self) -> None:
        _positive(self.mean, "daily mean rate")
        _probability(self.amp, "daily amplitude")
        _positive(self.period, "daily period")

    def rate_at(self, t: float) -> float:
        return self.mean * (1 + self.amp * math.sin(2 * math.pi * (t / self.period - self.phase)))

    def times(self, rng: random.Random) -> Iterator[float]:
        return _thinned(self.rate_at, self.mean * (1 + self.amp), rng)

    def bursts(self) -> Iterator[tuple[float, float]]:
        return iter(())

    @property
    def spec(self) -> str:
        return f"daily:mean={_fmt(self.mean)},amp={_fmt(self.amp)},period={_fmt(self.period)},phase={_fmt(self.phase)}"


@dataclass(frozen=True, slots=True)
class Replay:
    """Arrivals at exactly the given times (seconds from the start; sorted on construction)."""

    at: tuple[float, ...]
    source: str | None = None

    def __post_init__(self) -> None:
        if any(not (isinstance(x, (int, float)) and math.isfinite(x) and x >= 0) for x in self.at):
            raise InvalidOptionError("replayed arrival times must be finite numbers >= 0")
        object.__setattr__(self, "at", tuple(sorted(float(x) for x in self.at)))

    def times(self, rng: random.Random) -> Iterator[float]:
        return iter(self.at)

    def bursts(self) -> Iterator[tuple[float, float]]:
        return iter(())

    @property
    def spec(self) -> str:
        return f"replay:{self.source}" if self.source else "replay:" + "/".join(_fmt(x) for x in self.at)


# -- service times ---------------------------------------------------------------------------------


class Service(Protocol):
    """A distribution of handler run times in seconds."""

    def sample(self, rng: random.Random) -> float: ...

    @property
    def mean(self) -> float: ...

    @property
    def spec(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    value: float

    def __post_init__(self) -> None:
        _non_negative(self.value, "fixed service time")

    def sample(self, rng: random.Random) -> float:
        return self.value

    @property
    def mean(self) -> float:
        return self.value

    @property
    def spec(self) -> str:
        return f"fixed:{_fmt(self.value)}"


@dataclass(frozen=True, slots=True)
class Exponential:
    mean_s: float

    def __post_init__(self) -> None:
        _positive(self.mean_s, "exponential mean")

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean_s)

    @property
    def mean(self) -> float:
        return self.mean_s

    @property
    def spec(self) -> str:
        return f"exp:mean={_fmt(self.mean_s)}"


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Log-normal run times with the given mean (seconds) and sigma of the underlying normal."""

    mean_s: float
    sigma: float

    def __post_init__(self) -> None:
        _positive(self.mean_s, "lognormal mean")
        _non_negative(self.sigma, "lognormal sigma")

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.mean_s) - self.sigma**2 / 2, self.sigma)

    @property
    def mean(self) -> float:
        return self.mean_s

    @property
    def spec(self) -> str:
        return f"lognormal:mean={_fmt(self.mean_s)},sigma={_fmt(self.sigma)}"


@dataclass(frozen=True, slots=True)
class Empirical:
    """Run times drawn uniformly from a list (for example, measured ones)."""

    values: tuple[float, ...]
    source: str | None = None

    def __post_init__(self) -> None:
        if not self.values:
            raise InvalidOptionError("an empirical service distribution needs at least one value")
        for v in self.values:
            _non_negative(v, "listed service time")

    def sample(self, rng: random.Random) -> float:
        return self.values[int(rng.random() * len(self.values))]

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / len(self.values)

    @property
    def spec(self) -> str:
        return f"list:{self.source}" if self.source else "list:" + "/".join(_fmt(x) for x in self.values)


# -- job mix ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobClass:
    """One kind of job in the mix, chosen with probability proportional to ``weight``.

    ``transient`` and ``permanent`` are the chances that one attempt fails and may be retried, or
    fails for good. ``backoff`` is the retry delay in seconds (doubling each attempt when
    ``exponential``). ``service`` overrides the run's service-time distribution for this class.
    """

    name: str = "job"
    weight: float = 1.0
    priority: int = 0
    delay: float = 0.0
    attempts: int = 1
    backoff: float = 0.0
    exponential: bool = False
    transient: float = 0.0
    permanent: float = 0.0
    service: Service | None = None
    options: JobOptions = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _positive(self.weight, "job class weight")
        _probability(self.transient, "transient failure probability")
        _probability(self.permanent, "permanent failure probability")
        if self.transient + self.permanent > 1:
            raise InvalidOptionError(
                f"transient + permanent failure probabilities exceed 1: {self.transient!r} + {self.permanent!r}"
            )
        _non_negative(self.backoff, "backoff")
        backoff = None
        if self.backoff > 0:
            backoff = Backoff.exponential(self.backoff) if self.exponential else Backoff.fixed(self.backoff)
        opts = JobOptions(delay=self.delay, priority=self.priority, attempts=self.attempts, backoff=backoff)
        object.__setattr__(self, "options", opts)

    @property
    def spec(self) -> str:
        parts = [f"weight={_fmt(self.weight)}"]
        for key, value, default in (
            ("priority", self.priority, 0),
            ("delay", self.delay, 0.0),
            ("attempts", self.attempts, 1),
            ("backoff", self.backoff, 0.0),
            ("transient", self.transient, 0.0),
            ("permanent", self.permanent, 0.0),
        ):
            if value != default:
                parts.append(f"{key}={_fmt(value) if isinstance(value, float) else value}")
        if self.exponential:
            parts.append("exponential=1")
        if self.service is not None:
            parts.append(f"service={self.service.spec.replace(',', ';')}")
        return f"{self.name}:{','.join(parts)}"
