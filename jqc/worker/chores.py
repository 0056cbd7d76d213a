"""The chores that keep a worker's jobs safe: lock renewal and stall recovery.

* Every ``renew_interval`` one ``extend`` call per queue renews the locks of every job held there;
  a job whose lock turns out lost is given up (its writes would be rejected anyway).
* Every ``stall_interval``, on each queue where this worker holds the ``stall`` lease (one worker
  at a time per queue), jobs whose lock expired go back to waiting, or fail after ``max_stalls``.

A failed call is logged through the shared reconnect policy and tried again next round.
"""

from __future__ import annotations

from jqc.worker import registry
from jqc.worker.lane import Lane
from jqc.worker.shared import Shared

__all__ = ["Chores"]


class Chores:
    """Lock renewal and stall recovery for the lanes of one worker."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    async def renew_loop(self) -> None:
        """Renew held locks every ``renew_interval`` until the chores halt."""
        shared = self.shared
        interval = shared.options.effective_renew_interval
        while not await shared.lifecycle.nap(interval, shared.lifecycle.signals.halt):
            for lane in shared.lanes:
                if lane.held:
                    await self._renew(lane)

    async def _renew(self, lane: Lane) -> None:
        shared = self.shared
        snapshot = list(lane.held.values())
        try:
            renewed = await lane.queue.extend([h.claimed for h in snapshot], lock=shared.options.lock)
        except Exception as exc:
            shared.health.failed(f"renew locks in {lane.name}", exc)
            return
        shared.health.ok()
        for held in snapshot:
            # A job being reported may have just completed (renewal and completion raced): its
            # write finds out for itself, so only a running handler is given up here.
            if renewed.get(held.id, False) or held.settling or held.abort.done() or lane.held.get(held.id) is not held:
                continue
            shared.log.warning("worker %s: lost the lock of job %s in %s", shared.id, held.id, lane.name)
            held.give_up("lock lost", hand_back=False)

    async def stall_loop(self) -> None:
        """Look for stalled jobs every ``stall_interval`` while the worker claims."""
        shared, lifecycle = self.shared, self.shared.lifecycle
        while lifecycle.running:
            for lane in shared.lanes:
                await self._check_stalled(lane)
            if await lifecycle.nap(shared.options.effective_stall_interval, lifecycle.signals.stop):
                return

    async def _check_stalled(self, lane: Lane) -> None:
        shared, interval = self.shared, self.shared.options.effective_stall_interval
        try:
            if not await shared.run(lane, registry.lease(lane.queue.ops, registry.STALL_LEASE, shared.id, interval)):
                return
            for _ in range(10):
                found = await lane.queue.recover_stalled(max_stalls=shared.options.max_stalls)
                shared.tally["recovered"] += len(found.recovered)
                shared.tally["stalled_failed"] += len(found.failed)
                if found.recovered or found.failed:
                    shared.log.warning(
                        "worker %s: stalled jobs in %s: %d put back (%s), %d failed for stalling too often (%s)",
                        shared.id, lane.name, len(found.recovered), ", ".join(found.recovered[:10]),
                        len(found.failed), ", ".join(found.failed[:10]),
                    )  # fmt: skip
                if not found.more:
                    break
        except Exception as exc:
            shared.health.failed(f"stall check of {lane.name}", exc)
            return
        shared.health.ok()
