"""Policy ticks and the figures the scaling report is made of.

Each ``policy_tick`` the scaler reads the queue's counts through the engine (a real call, which a
Redis restart refuses), builds the :class:`~jqc.scaling.metrics.PoolMetrics` a live coordinator
would see, asks the policy and sets the pool's target. Every minute it records the p95 wait of the
jobs started and the oldest wait (SLO minutes, the timeline); after each burst, how long the
backlog took to drain.
"""

from __future__ import annotations

from collections.abc import Iterator

from jqc.engine.operations import Counts, QueueOperations
from jqc.errors import BackendError
from jqc.scaling import PoolMetrics, ScalingPolicy
from jqc.sim.config import SimConfig
from jqc.sim.events import EventQueue
from jqc.sim.network import Network
from jqc.sim.pool import Pool
from jqc.sim.report import percentile
from jqc.sim.state import Model, ScalingStats, TimeAverages, WorkerSlots
from jqc.sim.workers import LIVE, STARTING, Call, stamp

__all__ = ["RUN_WINDOW", "Scaler"]

#: Seconds of finished attempts whose mean run time a policy sees (as a live coordinator reads it
#: from the engine's run-time histogram over its metrics window).
RUN_WINDOW = 300.0


class Scaler:
    """Runs the policy ticks and keeps the per-minute and per-burst figures in :class:`ScalingStats`."""

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        model: Model,
        slots: WorkerSlots,
        averages: TimeAverages,
        stats: ScalingStats,
        network: Network,
        ops: QueueOperations,
        pool: Pool,
        policy: ScalingPolicy,
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.model = model
        self.slots = slots
        self.averages = averages
        self.stats = stats
        self.network = network
        self.ops = ops
        self.pool = pool
        self.policy = policy
        self.bursts: Iterator[tuple[float, float]] = cfg.arrival.bursts()
        network.handle("counts", lambda call, result, reply: None, self.counted)

    # -- policy ticks -------------------------------------------------------------------------------

    def tick(self) -> None:
        """Read the queue's counts (the policy decides when they arrive)."""
        self.q.after(self.cfg.policy_tick, self.tick)
        if self.network.faults.down(self.q.now):
            return
        self.network.send(Call("counts", None, self.ops.counts(), stamp(self.q.now, None)))

    def counted(self, call: Call, result: Counts | BackendError) -> None:
        """A policy tick got the queue's counts: decide and apply the target."""
        if isinstance(result, BackendError):
            return
        now = self.q.now
        stats, slots = self.stats, self.slots
        then, completions, arrivals = stats.last_tick
        span = max(now - then, 1e-9)
        states = [w.state for w in slots.workers()]
        draining = sum(1 for w in slots.workers() if w.draining and w.state in LIVE)
        waits = sorted(stats.tick_waits)
        service_time = stats.mean_run(now, RUN_WINDOW)
        metrics = PoolMetrics(
            now=now,
            waiting=result.waiting,
            delayed=result.delayed,
            active=result.active,
            ready=sum(1 for s in states if s in LIVE) - draining,
            starting=states.count(STARTING),
            draining=draining,
            busy=self.averages.n_busy,
            target=slots.target,
            arrival_rate=(self.model.arrived - arrivals) / span,
            completion_rate=(self.model.completions - completions) / span,
            wait_p95=percentile(waits, 0.95) if waits else None,
            oldest_wait=stats.oldest_wait(now),
            min_workers=slots.bounds[0],
            max_workers=slots.bounds[1],
            service_time=service_time,
        )
        stats.last_tick = (now, self.model.completions, self.model.arrived)
        stats.tick_waits = []
        self.pool.set_target(int(self.policy.decide(metrics)))

    # -- minutes and bursts -------------------------------------------------------------------------

    def minute(self) -> None:
        """Record one minute: the p95 of the waits of the jobs started in it, the oldest wait, the pool."""
        self.q.after(60.0, self.minute)
        stats, averages = self.stats, self.averages
        waits = sorted(stats.minute_waits)
        p95 = percentile(waits, 0.95) if waits else 0.0
        oldest = stats.oldest_wait(self.q.now)
        bad = p95 > self.cfg.slo_wait or oldest > self.cfg.slo_wait
        stats.slo_minutes += bad
        stats.timeline.append(
            {
                "minute": round(self.q.now / 60.0),
                "started": len(waits),
                "wait_p95_s": round(p95, 6),
                "oldest_wait_s": round(oldest, 6),
                "waiting": averages.n_queue,
                "workers": averages.n_pool,
                "busy": averages.n_busy,
                "target": self.slots.target,
            }
        )
        stats.minute_waits = []

    def next_burst(self) -> None:
        """Schedule the end of the next burst of the arrival process (if it comes before arrivals end)."""
        for start, end in self.bursts:
            if self.cfg.duration is not None and start > self.cfg.duration:
                return
            self.q.at(end, self._burst_end, end)
            return

    def _burst_end(self, end: float) -> None:
        model = self.model
        if model.arrivals_done and end > model.arrivals_end:
            return
        self.stats.burst_ends.append(end)
        if self.averages.n_queue == 0:
            self.stats.drained(self.q.now)
        self.next_burst()
