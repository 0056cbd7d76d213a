"""What a scaling policy sees and what it must do: :class:`PoolMetrics` in, a worker count out.

The simulator builds the metrics from its model of the pool each policy tick; a live coordinator
builds them from queue snapshots (:class:`jqc.coordinator.autoscale.LiveMetrics`). Either way the
same policy object decides, so what ``jqc sim`` evaluates is what ``jqc pool`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["PoolMetrics", "ScalingPolicy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolMetrics:
    """What a policy sees at one tick.

    Queue counts come from the engine (``Queue.counts``); pool figures and rates from the last
    tick interval come from the caller (the simulator, or a coordinator's platform), as a real
    controller would get them.
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
    not_consuming: int = 0  # live workers connected but not consuming while work waits (jqc.engine.liveness)

    @property
    def current(self) -> int:
        """Replicas as the Kubernetes HPA counts them: running plus starting."""
        return self.ready + self.starting


@runtime_checkable
class ScalingPolicy(Protocol):
    """Decides the worker count. ``decide`` may keep state between ticks (stabilization)."""

    name: str

    def decide(self, m: PoolMetrics) -> int: ...
