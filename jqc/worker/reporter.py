"""What a worker tells about itself: its counts (:class:`WorkerStats`), its heartbeat, and a
periodic summary in its log.

The heartbeat keeps the worker listed in each queue's worker registry (``P:{Q}:workers``) with its
host, pid, queues, active jobs and concurrency, and what liveness is judged by (when its last claim
reached the server, a hold, the last claim error: see :mod:`jqc.engine.liveness`); the entry lives
three beats, so a worker that stops beating drops out of ``Queue.workers()`` on its own. With a
``health_file`` it also rewrites that file every beat (:mod:`jqc.worker.probe`). Every
``summary_interval`` one INFO line says what the worker did in the interval and how deep its
queues are (see :mod:`jqc.worker.logs`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from jqc.worker import probe, registry
from jqc.worker.logs import fields
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
    scheduled: int = 0  # jobs this worker's schedule driver added (one per fired tick)
    parked: int = 0  # runs that ended waiting for the children they added (ctx.wait_for_children)
    flows_repaired: int = 0  # half-done flow steps this worker's stall checks finished

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

    async def health_file_loop(self, path: str) -> None:
        """Rewrite the health file every ``heartbeat`` seconds until the chores halt, then remove it."""
        shared = self.shared
        try:
            while True:
                try:
                    probe.write(path, probe.snapshot(shared, started_at=self.started_at))
                except OSError as exc:
                    shared.log.error("worker %s: cannot write its health file %s: %s", shared.id, path, exc)
                if await shared.lifecycle.nap(shared.options.heartbeat, shared.lifecycle.signals.halt):
                    return
        finally:
            probe.remove(path)

    async def summary_loop(self) -> None:
        """Log a summary every ``summary_interval`` seconds until the chores halt."""
        shared = self.shared
        interval = shared.options.summary_interval
        if interval is None:
            return
        last = Counter(shared.tally)
        while not await shared.lifecycle.nap(interval, shared.lifecycle.signals.halt):
            now = Counter(shared.tally)
            await self.summarize(interval, now - last)
            last = now

    async def summarize(self, interval: float, delta: Counter[str]) -> None:
        """Log one summary line for the last ``interval`` seconds (``delta``: the tallies in it)."""
        shared = self.shared
        depths: dict[str, dict[str, int] | None] = {}
        for lane in shared.lanes:
            started = shared.clock.now()
            try:
                counts = await lane.queue.counts()
            except Exception as exc:
                shared.health.failed(f"count jobs in {lane.name}", exc, since=started)
                depths[lane.name] = None
                continue
            shared.health.ok(f"count jobs in {lane.name}")
            depths[lane.name] = {"waiting": counts.waiting, "delayed": counts.delayed}
        done, retried = delta["completed"], delta["retried"]
        dead = delta["failed"] + delta["stalled_failed"]
        failed = retried + delta["failed"]
        active = sum(len(lane.held) for lane in shared.lanes)
        known = [depth for depth in depths.values() if depth is not None]
        waiting = sum(depth["waiting"] for depth in known) if known else None
        delayed = sum(depth["delayed"] for depth in known) if known else None
        queues = "; ".join(
            f"{name}: {depth['waiting']} waiting, {depth['delayed']} delayed" if depth else f"{name}: depth unknown"
            for name, depth in depths.items()
        )
        shared.log.info(
            "worker %s: in the last %g s: %d done, %d failed (%d retried, %d dead-lettered); %d active; %s",
            shared.id, interval, done, failed, retried, dead, active, queues,
            extra=fields(
                "summary", worker=shared.id, interval=interval, done=done, failed=failed, retried=retried,
                dead=dead, active=active, waiting=waiting, delayed=delayed, queues=depths,
            ),
        )  # fmt: skip

    async def beat_all(self) -> None:
        """Renew the worker's entry in the registry of each of its queues."""
        shared = self.shared
        queues = [lane.name for lane in shared.lanes]
        for lane in shared.lanes:
            record: dict[str, object] = {
                "name": shared.name,
                "host": self.host,
                "pid": self.pid,
                "queues": queues,
                "active": len(lane.held),
                "concurrency": lane.concurrency,
                "started": int(self.started_at * 1000),
            }
            if lane.claimed_at is not None:
                record["claimed"] = int(lane.claimed_at * 1000)  # when it last got a job
            # Liveness is consuming (jqc.engine.liveness): when a claim last reached the server,
            # whether claiming is held off, why claims fail; written every beat (HSET keeps old fields).
            hold = lane.hold_until(shared.clock.now())
            record["polled"] = 0 if lane.polled_at is None else int(lane.polled_at * 1000)
            record["hold"] = 0 if hold is None else int(hold * 1000)
            record["error"] = lane.claim_error
            record["after"] = int(shared.options.effective_stuck_after * 1000)
            record["stopping"] = 0 if shared.lifecycle.running else 1
            ttl = shared.options.heartbeat_ttl
            started = shared.clock.now()
            try:
                await shared.run(
                    lane, registry.heartbeat(lane.queue.ops, shared.id, record, ttl=ttl, prune_after=10 * ttl)
                )
            except Exception as exc:
                shared.health.failed(f"heartbeat in {lane.name}", exc, since=started)
                continue
            shared.health.ok(f"heartbeat in {lane.name}")
