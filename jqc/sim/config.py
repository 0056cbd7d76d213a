"""The configuration of one simulated run, and the command line that replays it."""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from jqc.errors import InvalidOptionError
from jqc.scaling import ScalingPolicy
from jqc.sim.faults import FaultConfig
from jqc.sim.schedules import ScheduleLoad
from jqc.sim.workload import Arrival, Exponential, JobClass, Poisson, Service

__all__ = ["SimConfig"]


def _fmt(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Everything that decides a run. Times are virtual seconds.

    Workload: ``jobs`` arrive (or arrivals stop after ``duration``) following ``arrival``, each of
    a class drawn from ``mix``, running for a ``service`` time. ``prefill`` jobs are added at time
    0 and ``warmup`` first arrivals are left out of the wait statistics. ``schedules`` add a job of
    the mix's first class on each of their ticks while arrivals last (:mod:`jqc.sim.schedules`).

    Workers: a pool of ``workers`` (or as the ``policy`` decides, within ``min_workers`` and
    ``max_workers``), each holding one job at a time under a ``lock`` renewed every ``heartbeat``;
    one live worker runs the stall check every ``stall_interval``; a crashed worker is replaced
    after ``restart_delay``; a new one is ready after ``startup_delay``.

    Checking: faults stop at ``faults.heal_at`` (default: the last arrival); after that every job
    must finish within ``liveness_bound`` (default: computed from the backlog then, see the
    report). ``max_time`` is a hard stop.
    """

    seed: int = 0
    workers: int = 10
    jobs: int | None = 1000
    duration: float | None = None
    arrival: Arrival = field(default_factory=lambda: Poisson(1.0))
    service: Service = field(default_factory=lambda: Exponential(1.0))
    mix: tuple[JobClass, ...] = field(default_factory=lambda: (JobClass(),))
    faults: FaultConfig = field(default_factory=FaultConfig)
    schedules: tuple[ScheduleLoad, ...] = ()
    prefill: int = 0
    warmup: int = 0
    policy: str = "fixed"
    custom_policy: ScalingPolicy | None = field(default=None, compare=False)
    min_workers: int | None = None
    max_workers: int | None = None
    target_backlog: float = 1.0
    stabilization: float = 300.0
    policy_tick: float = 15.0
    startup_delay: float = 0.0
    drain_grace: float | None = None
    slo_wait: float = 60.0
    lock: float = 30.0
    heartbeat: float | None = None
    stall_interval: float = 15.0
    max_stalls: int = 3
    restart_delay: float = 5.0
    fetch_next: bool = True
    progress: bool = False
    rate_limit: tuple[int, float] | None = None
    idle_poll: float = 5.0
    call_timeout: float = 2.0
    retry_backoff: float = 1.0
    liveness_bound: float | None = None
    max_time: float | None = None
    keep_completed: bool = True
    url: str | None = None
    queue: str = "sim"

    def __post_init__(self) -> None:
        if self.jobs is None and self.duration is None and not hasattr(self.arrival, "at"):
            raise InvalidOptionError("give jobs, duration or a replayed arrival list, or the run never ends")
        if self.jobs is not None and self.jobs < 0:
            raise InvalidOptionError(f"jobs must be >= 0, not {self.jobs!r}")
        if self.workers < 0 or (self.workers == 0 and self.policy == "fixed" and self.custom_policy is None):
            raise InvalidOptionError(f"a fixed pool needs at least one worker, not {self.workers!r}")
        if not self.mix:
            raise InvalidOptionError("the job mix needs at least one class")
        if self.lock <= 0 or not math.isfinite(self.lock):
            raise InvalidOptionError(f"lock must be a positive number of seconds, not {self.lock!r}")
        if self.heartbeat is not None and not 0 < self.heartbeat < self.lock:
            raise InvalidOptionError(
                f"heartbeat must be between 0 and the lock duration ({self.lock!r}), not {self.heartbeat!r}"
            )
        for name in ("stall_interval", "policy_tick", "idle_poll", "call_timeout", "retry_backoff"):
            if getattr(self, name) <= 0:
                raise InvalidOptionError(f"{name} must be positive, not {getattr(self, name)!r}")
        if self.policy not in ("fixed", "hpa", "slo"):
            raise InvalidOptionError(f"unknown policy {self.policy!r}: use fixed, hpa or slo")

    @property
    def heartbeat_s(self) -> float:
        return self.heartbeat if self.heartbeat is not None else self.lock / 3

    @property
    def pool_bounds(self) -> tuple[int, int]:
        if self.policy == "fixed" and self.custom_policy is None:
            low, high = self.workers, self.workers
        else:
            low, high = 1, max(self.workers * 4, 1)
        low = self.min_workers if self.min_workers is not None else low
        high = self.max_workers if self.max_workers is not None else max(high, low)
        return low, high

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe description (the specs in their command-line form)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("arrival", "service"):
                value = value.spec
            elif f.name in ("mix", "schedules"):
                value = [c.spec for c in value]
            elif f.name == "faults":
                value = {"spec": value.spec, **{k: getattr(value, k) for k in ("heal_at", "restart_persist")}}
            elif f.name == "custom_policy":
                value = None if value is None else getattr(value, "name", type(value).__name__)
            elif f.name == "url":
                from jqc.connection import redact

                value = None if value is None else redact(value)
            out[f.name] = value
        return out

    def cli_args(self) -> list[str]:
        """The ``jqc sim`` arguments that reproduce this configuration (non-defaults only)."""
        d = SimConfig()
        args = ["--seed", str(self.seed), "--workers", str(self.workers)]
        args += ["--jobs", str(self.jobs)] if self.jobs is not None else ["--jobs", "0"] if self.duration else []
        if self.duration is not None:
            args += ["--duration", _fmt(self.duration)]
        args += ["--arrival", self.arrival.spec, "--service", self.service.spec]
        if self.mix != d.mix:
            for cls in self.mix:
                args += ["--mix", cls.spec]
        for load in self.schedules:
            args += ["--schedule", load.spec]
        if self.faults.spec:
            args += ["--faults", self.faults.spec]
        if self.faults.heal_at is not None:
            args += ["--heal-at", _fmt(self.faults.heal_at)]
        if self.faults.restart_persist != 1.0:
            args += ["--restart-persist", _fmt(self.faults.restart_persist)]
        simple = [
            ("prefill", "--prefill"),
            ("warmup", "--warmup"),
            ("policy", "--policy"),
            ("min_workers", "--min-workers"),
            ("max_workers", "--max-workers"),
            ("target_backlog", "--target-backlog"),
            ("stabilization", "--stabilization"),
            ("policy_tick", "--tick"),
            ("startup_delay", "--startup-delay"),
            ("drain_grace", "--drain-grace"),
            ("slo_wait", "--slo"),
            ("lock", "--lock"),
            ("heartbeat", "--heartbeat"),
            ("stall_interval", "--stall-interval"),
            ("max_stalls", "--max-stalls"),
            ("restart_delay", "--restart-delay"),
            ("idle_poll", "--idle-poll"),
            ("liveness_bound", "--liveness-bound"),
            ("max_time", "--max-time"),
        ]
        for name, flag in simple:
            value = getattr(self, name)
            if value != getattr(d, name) and value is not None:
                args += [flag, _fmt(value) if isinstance(value, float) else str(value)]
        if self.rate_limit is not None:
            args += ["--rate-limit", f"{self.rate_limit[0]}/{_fmt(self.rate_limit[1])}"]
        if not self.fetch_next:
            args.append("--no-fetch-next")
        if self.progress:
            args.append("--progress")
        if not self.keep_completed:
            args.append("--no-keep-completed")
        return args

    def replay_command(self) -> str:
        from jqc.connection import redact

        cmd = "jqc sim " + shlex.join(self.cli_args() + (["--url", redact(self.url)] if self.url else []))
        if self.custom_policy is not None:
            cmd += "  # with the custom policy given in code"
        return cmd
