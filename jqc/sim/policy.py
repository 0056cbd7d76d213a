"""Scaling policies: each tick a policy sees the queue and the pool and sets a target worker count.

The simulator clamps the target to ``[min_workers, max_workers]``, starts new workers after a
start-up delay, and scales down gracefully: starting workers are cancelled first, then idle ones
stop, then busy ones drain (finish their job without taking another).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["FixedPolicy", "HpaPolicy", "PoolMetrics", "ScalingPolicy", "make_policy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolMetrics:
    """What a policy sees at one tick.

    Queue counts come from the engine (``Queue.counts``); pool figures and rates from the last
    tick interval come from the simulator, as a real controller would get them from its platform.
    """

    now: float
    waiting: int
    delayed: int
    active: int
    ready: int  # workers running (idle or busy), draining ones excluded
    starting: int
    draining: int
    busy: int
    target: int  # the current target
    arrival_rate: float
    completion_rate: float
    wait_p95: float | None  # of the jobs that started during the last interval
    oldest_wait: float  # age of the oldest waiting job, seconds
    min_workers: int
    max_workers: int
    service_time: float | None = None  # mean run time of recent jobs, when the caller measures it

    @property
    def current(self) -> int:
        """Replicas as the Kubernetes HPA counts them: running plus starting."""
        return self.ready + self.starting


@runtime_checkable
class ScalingPolicy(Protocol):
    """Decides the worker count. ``decide`` may keep state between ticks (stabilization)."""

    name: str

    def decide(self, m: PoolMetrics) -> int: ...


@dataclass(slots=True)
class FixedPolicy:
    """Always the same number of workers."""

    workers: int
    name: str = "fixed"

    def decide(self, m: PoolMetrics) -> int:
        return self.workers


@dataclass(slots=True)
class HpaPolicy:
    """Like the Kubernetes HPA on a backlog metric (KEDA's Redis list scaler).

    metric = (waiting + active) / current workers; desired = ceil(current * metric / target), i.e.
    ceil(backlog / target). No change while metric / target is within ``tolerance`` of 1. Scale-up
    acts at once; scale-down takes the highest desired count of the last ``stabilization``
    seconds, so a brief lull does not shed workers that the next burst needs.
    """

    target_backlog: float = 1.0
    tolerance: float = 0.1
    stabilization: float = 300.0
    name: str = "hpa"
    _history: deque[tuple[float, int]] | None = None

    def decide(self, m: PoolMetrics) -> int:
        if self._history is None:
            self._history = deque()
        current = max(m.current, 1)
        backlog = m.waiting + m.active
        ratio = backlog / current / self.target_backlog
        desired = current if abs(ratio - 1.0) <= self.tolerance else math.ceil(backlog / self.target_backlog)
        desired = min(max(desired, m.min_workers), m.max_workers)
        history = self._history
        history.append((m.now, desired))
        while history and history[0][0] < m.now - self.stabilization:
            history.popleft()
        if desired < current:
            return min(current, max(d for _, d in history))
        return desired


def make_policy(
    name: str,
    workers: int,
    *,
    target_backlog: float = 1.0,
    stabilization: float = 300.0,
    slo: float = 60.0,
    startup: float = 0.0,
) -> ScalingPolicy:
    """A policy by its command-line name: ``fixed``, ``hpa`` or ``slo`` (``jqc.coordinator.autoscale.SloPolicy``)."""
    if name == "fixed":
        return FixedPolicy(workers)
    if name == "hpa":
        return HpaPolicy(target_backlog=target_backlog, stabilization=stabilization)
    if name == "slo":
        from jqc.coordinator.autoscale import SloPolicy

        return SloPolicy(slo=slo, startup=startup, scale_down_delay=stabilization)
    raise ValueError(f"unknown policy {name!r}: use fixed, hpa or slo")
