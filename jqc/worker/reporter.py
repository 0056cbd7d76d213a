"""What a worker tells about itself: its counts (:class:`WorkerStats`) and its heartbeat.

The heartbeat keeps the worker listed in each queue's worker registry (``P:{Q}:workers``) with its
host, pid, queues, active jobs and concurrency; the entry lives three beats, so a worker that
stops beating drops out of ``Queue.workers()`` on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from jqc.worker import registry
from jqc.worker.shared import Shared

__all__ = ["Reporter", "WorkerStats"]


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """What one worker did, counted since it started."""

    completed: int = 0
    retried: int = 0  # failed attempts that will run again
    failed: int = 0  # jobs failed for good by this worker
    released: int = 0  # handed back without counting an attempt (rate limited, shutdown)
    lost: int = 0  # jobs given up because their lock was lost (a write was rejected)
    timed_out: int = 0
    recovered: int = 0  # stalled jobs this worker's stall checks put back to waiting
    stalled_failed: int = 0  # stalled jobs failed for good for stalling too often
    reconnects: int = 0  # outages of Redis this worker rode out

    @property
    def processed(self) -> int:
        """Jobs whose run ended in a report: completed, retried or failed for good."""
        return self.completed + self.retried + self.failed


class Reporter:
    """Counts and heartbeats of one worker, listed as ``host``/``pid`` from ``started_at`` on."""

    def __init__(self, shared: Shared, *, host: str, pid: int) -> None:
        self.shared = shared
        self.host = host
        self.pid = pid
        self.started_at = 0.0  # clock time the worker started (set by Worker.start)

    def stats(self) -> WorkerStats:
        """The counts so far (reconnects: the outages the shared backoff saw)."""
        counts = dict(self.shared.tally)
        counts["reconnects"] = self.shared.health.outages
        return WorkerStats(**counts)

    async def heartbeat_loop(self) -> None:
        """Beat every ``heartbeat`` seconds until the chores halt."""
        shared = self.shared
        while not await shared.lifecycle.nap(shared.options.heartbeat, shared.lifecycle.signals.halt):
            await self.beat_all()

    async def beat_all(self) -> None:
        """Renew the worker's entry in the registry of each of its queues."""
        shared = self.shared
        queues = [lane.name for lane in shared.lanes]
        for lane in shared.lanes:
            record = {
                "name": shared.name,
                "host": self.host,
                "pid": self.pid,
                "queues": queues,
                "active": len(lane.held),
                "concurrency": lane.concurrency,
                "started": int(self.started_at * 1000),
            }
            ttl = shared.options.heartbeat_ttl
            try:
                await shared.run(
                    lane, registry.heartbeat(lane.queue.ops, shared.id, record, ttl=ttl, prune_after=10 * ttl)
                )
            except Exception as exc:
                shared.health.failed(f"heartbeat in {lane.name}", exc)
                continue
            shared.health.ok()
