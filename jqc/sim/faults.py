"""Faults to inject, each with a rate or on a schedule.

Rates (``FaultConfig``):

* per job attempt: ``crash`` (the worker dies mid-run; its lock must expire and the job be
  recovered), ``pause`` (the worker freezes for longer than the lock, then wakes up as a zombie
  whose late writes must be rejected by its stale token), ``partition`` (the worker loses Redis for
  a while: requests or replies are dropped), ``jump`` (the worker's clock jumps), ``error``
  (the handler raises: a transient failure, retried while attempts remain) and ``hang`` (the
  attempt's report call never returns, as on a half-open connection, until the worker's call
  deadline abandons it; see :mod:`~jqc.sim.hang`);
* per worker start: ``skew`` (the share of workers whose clock is off by up to ``skew_locks``
  lock durations, either way);
* per virtual second, for the whole system: ``slow`` (a window during which every call takes
  extra latency), ``restart`` (Redis is down for a moment, and with probability
  ``1 - restart_persist`` comes back without the queue's data) and ``failover`` (a replica that
  lagged ``failover_lag`` seconds behind is promoted: the writes of that lag are lost, and calls
  fail for ``failover_down`` seconds; see :mod:`~jqc.sim.failover`).

A schedule (``ScheduledFault``) pins a fault to a virtual time and a worker slot; hypothesis
generates and shrinks schedules. A scheduled pause of a busy worker hits when its handler returns,
before it reports (the classic zombie); of an idle worker, at once. A scheduled hang of a busy
worker hits its report (the request never reaches Redis); an idle worker has no call to hang, so
it misses. A scheduled failover takes ``by`` as the replica's lag (the seconds of writes it
loses, default 0.5) and ``duration`` as the outage (default 5). Its text form is
``kind@time[/slot][:key=value...]``, for example ``pause@40/2:duration=90``,
``restart@300:duration=5:persist=0`` or ``failover@120:by=0.8:duration=3``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from jqc.errors import InvalidOptionError

__all__ = [
    "ATTEMPT_FAULTS",
    "FAULT_KINDS",
    "AttemptFault",
    "FaultConfig",
    "ScheduledFault",
    "parse_faults",
]

ATTEMPT_FAULTS = ("crash", "pause", "partition", "jump", "error", "hang")
FAULT_KINDS = (*ATTEMPT_FAULTS, "skew", "slow", "restart", "failover")

#: What each fault is meant to exercise; the report counts how often each target was reached.
TARGETS = {
    "crash": "lock expired and the job was recovered by the stall check",
    "pause": "the zombie was fenced: a late write rejected or the lost lock noticed",
    "partition": "a call failed and the worker retried it or was fenced afterwards",
    "jump": "a lock was judged expired early (or late) and fencing kept one holder",
    "skew": "a lock was judged expired early (or late) and fencing kept one holder",
    "slow": "a lock renewal arrived after its deadline",
    "error": "the failed attempt was retried or dead-lettered",
    "restart": "work resumed after Redis came back",
    "hang": "the hung call was abandoned at its deadline, and its job recovered within its bound",
    "failover": "work resumed on the promoted replica, every write it lost accounted for",
}


def _fmt(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledFault:
    """One fault at virtual time ``at`` (seconds).

    ``worker`` is a worker slot (taken modulo the pool size; None draws one) for worker faults.
    ``duration`` is how long a pause, partition, slow window or restart lasts; ``by`` is the clock
    offset of a skew or jump, or the extra latency of a slow window (seconds). ``persist`` says
    whether Redis keeps its data across a restart.
    """

    kind: str
    at: float
    worker: int | None = None
    duration: float | None = None
    by: float | None = None
    persist: bool = True

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InvalidOptionError(f"unknown fault {self.kind!r}: use one of {', '.join(FAULT_KINDS)}")
        if not (math.isfinite(self.at) and self.at >= 0):
            raise InvalidOptionError(f"a fault time must be >= 0, not {self.at!r}")
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration >= 0):
            raise InvalidOptionError(f"a fault duration must be >= 0, not {self.duration!r}")
        if self.worker is not None and self.worker < 0:
            raise InvalidOptionError(f"a worker slot must be >= 0, not {self.worker!r}")

    @property
    def spec(self) -> str:
        out = f"{self.kind}@{_fmt(self.at)}"
        if self.worker is not None:
            out += f"/{self.worker}"
        if self.duration is not None:
            out += f":duration={_fmt(self.duration)}"
        if self.by is not None:
            out += f":by={_fmt(self.by)}"
        if not self.persist and self.kind == "restart":
            out += ":persist=0"
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultConfig:
    """Fault rates (see the module docstring for their units), a schedule, and fault sizes.

    Sizes given in *locks* are multiples of the run's lock duration. No fault starts after
    ``heal_at`` (default: when the last job has arrived); the liveness check starts there.
    """

    crash: float = 0.0
    pause: float = 0.0
    partition: float = 0.0
    jump: float = 0.0
    error: float = 0.0
    hang: float = 0.0
    skew: float = 0.0
    slow: float = 0.0
    restart: float = 0.0
    failover: float = 0.0
    schedule: tuple[ScheduledFault, ...] = ()
    pause_locks: tuple[float, float] = (1.5, 3.0)
    partition_locks: tuple[float, float] = (0.5, 3.0)
    skew_locks: float = 1.5
    jump_locks: float = 2.0
    slow_locks: tuple[float, float] = (0.2, 1.2)
    slow_window: tuple[float, float] = (30.0, 300.0)
    restart_down: tuple[float, float] = (1.0, 10.0)
    restart_persist: float = 1.0
    failover_lag: tuple[float, float] = (0.05, 2.0)
    failover_down: tuple[float, float] = (1.0, 10.0)
    heal_at: float | None = None

    def __post_init__(self) -> None:
        for name in (*ATTEMPT_FAULTS, "skew", "restart_persist"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise InvalidOptionError(f"fault {name} must be a probability in [0, 1], not {value!r}")
        for name in ("slow", "restart", "failover"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InvalidOptionError(f"fault {name} must be a rate >= 0 per virtual second, not {value!r}")
        for name in ("failover_lag", "failover_down"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
                raise InvalidOptionError(f"{name} must be (low, high) seconds, 0 <= low <= high, not {(low, high)!r}")

    @property
    def any(self) -> bool:
        return bool(self.schedule) or any(getattr(self, k) > 0 for k in FAULT_KINDS)

    @property
    def clock_faults(self) -> bool:
        """True when clocks may disagree (rate-window and due-time checks are then excused)."""
        return self.skew > 0 or self.jump > 0 or any(f.kind in ("skew", "jump") for f in self.schedule)

    @property
    def spec(self) -> str:
        items = [f"{k}={_fmt(getattr(self, k))}" for k in FAULT_KINDS if getattr(self, k) > 0]
        items += [f.spec for f in self.schedule]
        return ",".join(items)


def parse_faults(text: str, base: FaultConfig | None = None) -> FaultConfig:
    """Read ``kind=rate`` and ``kind@time[/slot][:key=value...]`` items, separated by commas."""
    rates: dict[str, float] = {}
    schedule: list[ScheduledFault] = list(base.schedule) if base else []
    for item in filter(None, (p.strip() for p in text.split(","))):
        if "@" in item:
            schedule.append(_parse_scheduled(item))
            continue
        kind, eq, value = item.partition("=")
        kind = kind.strip()
        if not eq or kind not in FAULT_KINDS:
            raise InvalidOptionError(
                f"faults: expected kind=rate or kind@time with kind in {', '.join(FAULT_KINDS)}: {item!r}"
            )
        try:
            rates[kind] = float(value)
        except ValueError:
            raise InvalidOptionError(f"faults: the rate of {kind} must be a number, not {value!r}") from None
    fields = {k: getattr(base, k) for k in FaultConfig.__dataclass_fields__} if base else {}
    fields.update(rates)
    fields["schedule"] = tuple(sorted(schedule, key=lambda f: f.at))
    return FaultConfig(**fields)


def _number(value: str, key: str, item: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidOptionError(f"faults: in {item!r}, {key} must be a number, not {value!r}") from None


def _parse_scheduled(item: str) -> ScheduledFault:
    head, *params = item.split(":")
    kind, _, where = head.partition("@")
    when, _, slot = where.partition("/")
    kwargs: dict[str, float] = {}
    for p in params:
        key, eq, value = p.partition("=")
        if not eq or key not in ("duration", "by", "persist"):
            raise InvalidOptionError(f"faults: in {item!r}, expected duration=, by= or persist=, not {p!r}")
        kwargs[key] = _number(value, key, item)
    try:
        at = float(when)
        worker = int(slot) if slot else None
    except ValueError:
        raise InvalidOptionError(f"faults: in {item!r}, expected kind@time[/slot] with numbers") from None
    return ScheduledFault(
        kind=kind.strip(),
        at=at,
        worker=worker,
        duration=kwargs.get("duration"),
        by=kwargs.get("by"),
        persist=bool(kwargs.get("persist", 1.0)),
    )


@dataclass(slots=True)
class AttemptFault:
    """A fault that hits one job attempt ``at`` seconds after it starts."""

    kind: str
    at: float
    duration: float = 0.0
    by: float = 0.0
    mode: str = ""


def plan_attempt(cfg: FaultConfig, rng: random.Random, service: float, lock: float) -> list[AttemptFault]:
    """Draw the faults that hit one attempt of ``service`` seconds (in a fixed order)."""
    out: list[AttemptFault] = []
    if cfg.crash > 0 and rng.random() < cfg.crash:
        out.append(AttemptFault("crash", rng.random() * service))
    if cfg.pause > 0 and rng.random() < cfg.pause:
        # Half the pauses freeze the handler (the heartbeat notices the loss on waking), half hit
        # between the handler's return and the report (the late write must be fenced).
        mode = "report" if rng.random() < 0.5 else "handler"
        at = service if mode == "report" else rng.random() * service
        out.append(AttemptFault("pause", at, lock * rng.uniform(*cfg.pause_locks), mode=mode))
    if cfg.partition > 0 and rng.random() < cfg.partition:
        out.append(AttemptFault("partition", rng.random() * service, lock * rng.uniform(*cfg.partition_locks)))
    if cfg.jump > 0 and rng.random() < cfg.jump:
        out.append(AttemptFault("jump", rng.random() * service, by=lock * cfg.jump_locks * rng.uniform(-1.0, 1.0)))
    if cfg.hang > 0 and rng.random() < cfg.hang:
        # Half the hung reports never reached Redis (a half-open connection swallowed the request),
        # half ran there and only the reply is lost (a hung proxy, a reply that never arrives).
        out.append(AttemptFault("hang", service, mode="ran" if rng.random() < 0.5 else "lost"))
    return out


def schedule_kinds(schedule: Iterable[ScheduledFault]) -> set[str]:
    return {f.kind for f in schedule}
