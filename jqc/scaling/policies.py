"""The simple scaling policies (a fixed pool, an HPA-like backlog rule) and :func:`make_policy`, which
picks a policy by its command-line name.

Each tick a policy sees the queue and the pool (:class:`~jqc.scaling.metrics.PoolMetrics`) and
sets a target worker count. Whoever runs it (the simulator, a coordinator) clamps the target to
``[min_workers, max_workers]``, starts new workers after a start-up delay, and scales down
gracefully: starting workers are cancelled first, then idle ones stop, then busy ones drain
(finish their job without taking another).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from jqc.errors import InvalidOptionError

from .metrics import PoolMetrics, ScalingPolicy
from .slo import SloPolicy

__all__ = ["FixedPolicy", "HpaPolicy", "make_policy"]


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
    """A policy by its command-line name: ``fixed``, ``hpa`` or ``slo`` (:class:`~jqc.scaling.slo.SloPolicy`).

    ``workers`` sizes a fixed pool; ``target_backlog`` and ``stabilization`` tune the HPA (the
    SLO policy takes ``stabilization`` as its scale-down delay); ``slo`` and ``startup`` tell the SLO
    policy its wait target and the seconds a new worker needs.
    """
    if name == "fixed":
        return FixedPolicy(workers)
    if name == "hpa":
        return HpaPolicy(target_backlog=target_backlog, stabilization=stabilization)
    if name == "slo":
        return SloPolicy(slo=slo, startup=startup, scale_down_delay=stabilization)
    raise InvalidOptionError(f"unknown policy {name!r}: use fixed, hpa or slo")
