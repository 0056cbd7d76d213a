"""The chores that keep a worker's jobs safe: lock renewal and stall recovery.

* Every ``renew_interval`` one ``extend`` call per queue renews the locks of the jobs held there
  whose run is making progress: a handler still running within its timeout plus a margin, or an
  outcome being reported for at most one lock duration after the handler returned (see
  :class:`~jqc.worker.lane.Held`). A job past that bound is not renewed any more, so a stuck
  holder loses the lock and stall recovery takes the job back.
* A running job whose lock is lost is given up at once (its handler cancelled, or told through
  ``ctx.stop_event`` in a thread): when a renewal says its token is stale, and when its lock's
  deadline passes without a renewal (Redis out of reach, the process frozen), since from then on
  another worker may take it back and run it. The renewal loop wakes at the earliest deadline.
* Every ``stall_interval``, on each queue where this worker holds the ``stall`` lease (one worker
  at a time per queue), jobs whose lock expired go back to waiting, or fail after ``max_stalls``.
* At each queue's next schedule tick (and at least every ``schedule_interval``), the worker that
  holds the queue's ``schedule`` lease fires the due ticks (:func:`jqc.workflows.drive`); the
  others look one interval later and take the lease once it ran out, so a dead holder is
  replaced within about one lease duration (``5 * schedule_interval``) plus an interval.

A failed call is logged through the shared reconnect policy and tried again next round.
"""

from __future__ import annotations

from jqc.worker import registry
from jqc.worker.lane import Held, Lane
from jqc.worker.logs import fields
from jqc.worker.shared import Shared
from jqc.workflows import DrivePass, drive

__all__ = ["Chores"]

_MIN_NAP = 0.001  # the shortest wait of the renewal loop (a deadline due now still yields the loop)
#: A ``schedule`` lease lasts this many schedule intervals.
SCHEDULE_LEASE_INTERVALS = 5


#: Seconds between two flow repairs of a queue by one worker's stall check.
REPAIR_EVERY = 60.0


class Chores:
    """Lock renewal and stall recovery for the lanes of one worker."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.repaired_at: dict[str, float] = {}  # lane -> when its flows were last repaired

    async def renew_loop(self) -> None:
        """Renew held locks every ``renew_interval``, and give up running jobs whose lock deadline
        passed unrenewed, until the chores halt."""
        shared, clock = self.shared, self.shared.clock
        interval = shared.options.effective_renew_interval
        next_renewal = clock.now() + interval
        while not await shared.lifecycle.nap(self._nap(next_renewal), shared.lifecycle.signals.halt):
            for lane in shared.lanes:
                self._give_up_expired(lane)
            if clock.now() < next_renewal:
                continue
            next_renewal = clock.now() + interval
            for lane in shared.lanes:
                if lane.held:
                    await self._renew(lane)

    def _nap(self, next_renewal: float) -> float:
        """Seconds until the next renewal, or until the earliest lock deadline of a running job."""
        until = next_renewal
        for lane in self.shared.lanes:
            for held in lane.held.values():
                if held.running and held.lock_until < until:
                    until = held.lock_until
        return max(_MIN_NAP, until - self.shared.clock.now())

    def _give_up_expired(self, lane: Lane) -> None:
        shared = self.shared
        now = shared.clock.now()
        for held in list(lane.held.values()):
            if held.running and held.lock_until <= now:
                shared.log.warning(
                    "worker %s: the lock of job %s in %s expired %.1f s ago without a renewal (Redis out of "
                    "reach, or this process was frozen); giving the job up, stall recovery puts it back",
                    shared.id, held.id, lane.name, now - held.lock_until,
                    extra=fields("lock_lost", worker=shared.id, queue=lane.name, job=held.id, reason="lock expired"),
                )  # fmt: skip
                held.give_up("lock expired without a renewal", hand_back=False)

    async def _renew(self, lane: Lane) -> None:
        shared, clock = self.shared, self.shared.clock
        now = clock.now()
        snapshot: list[Held] = []
        for held in lane.held.values():
            if held.renewable(now):
                snapshot.append(held)
            elif not held.unrenewed:
                held.unrenewed = True
                shared.log.warning(
                    "worker %s: job %s in %s is stuck (%s); no longer renewing its lock, so stall recovery "
                    "can take it back",
                    shared.id, held.id, lane.name,
                    "its outcome could not be reported within one lock duration" if held.settling
                    else "its handler ran past its timeout plus one lock duration",
                )  # fmt: skip
        if not snapshot:
            return
        try:
            renewal = await lane.queue.renew([h.claimed for h in snapshot], lock=shared.options.lock)
        except Exception as exc:
            shared.health.failed(f"renew locks in {lane.name}", exc, since=now)
            return
        shared.health.ok(f"renew locks in {lane.name}")
        renewed = renewal.held
        for held in snapshot:
            if renewed.get(held.id, False):
                held.lock_until = max(held.lock_until, now + shared.options.lock)
                reason = renewal.cancelled.get(held.id)
                if reason is not None and held.running and lane.held.get(held.id) is held:
                    shared.log.info("worker %s: job %s in %s cancelled: %s", shared.id, held.id, lane.name, reason)
                    held.cancel(reason)
                continue
            # A job being reported may have just completed (renewal and completion raced): its
            # write finds out for itself, so only a running handler is given up here.
            if not held.running or lane.held.get(held.id) is not held:
                continue
            shared.log.warning(
                "worker %s: lost the lock of job %s in %s",
                shared.id, held.id, lane.name,
                extra=fields("lock_lost", worker=shared.id, queue=lane.name, job=held.id, reason="renewal rejected"),
            )  # fmt: skip
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
        started = shared.clock.now()
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
                        extra=fields("stalled", worker=shared.id, queue=lane.name, recovered=list(found.recovered),
                                     failed=list(found.failed)),
                    )  # fmt: skip
                for job_id in found.failed:
                    shared.log.warning(
                        "worker %s: job %s in %s stalled more than %d times; dead-lettered",
                        shared.id, job_id, lane.name, shared.options.max_stalls,
                        extra=fields("dead_letter", worker=shared.id, queue=lane.name, job=job_id, reason="stalled"),
                    )  # fmt: skip
                if not found.more:
                    break
            # Flows: finish creations and children's outcomes that a crash left half done (once a
            # minute at most: the repair waits REPAIR_GRACE before touching anything anyway).
            repaired = 0
            if started - self.repaired_at.get(lane.name, -REPAIR_EVERY) >= REPAIR_EVERY:
                self.repaired_at[lane.name] = started
                repaired = await lane.queue.repair_flows()
            if repaired:
                shared.tally["flows_repaired"] += repaired
                shared.log.warning(
                    "worker %s: finished %d half-done flow steps in %s", shared.id, repaired, lane.name,
                    extra=fields("flows_repaired", worker=shared.id, queue=lane.name, count=repaired),
                )  # fmt: skip
        except Exception as exc:
            shared.health.failed(f"stall check of {lane.name}", exc, since=started)
            return
        shared.health.ok(f"stall check of {lane.name}")

    async def schedule_loop(self) -> None:
        """Fire due schedule ticks on every queue where this worker holds the ``schedule`` lease.

        Each lane wakes at its queue's earliest known next tick (a worker that does not hold the
        lease one interval later, so the holder, if alive, has fired it by then), and at least every
        ``schedule_interval`` to notice schedules added or changed meanwhile (every lease duration
        while the queue has none).
        """
        shared, lifecycle, clock = self.shared, self.shared.lifecycle, self.shared.clock
        interval = shared.options.schedule_interval or 1.0
        lease_for = SCHEDULE_LEASE_INTERVALS * interval
        wake = {lane.name: 0.0 for lane in shared.lanes}
        holder = {lane.name: False for lane in shared.lanes}
        while lifecycle.running:
            for lane in shared.lanes:
                if clock.now() < wake[lane.name]:
                    continue
                done = await self._drive(lane, lease_for, 0.0 if holder[lane.name] else interval)
                now = clock.now()
                if done is None:  # the call failed (logged): try again after one interval
                    wake[lane.name] = now + interval
                    continue
                holder[lane.name] = done.held or (holder[lane.name] and done.next_due is not None)
                # A queue without schedules is looked at once per lease duration only.
                wake[lane.name] = now + (interval if done.next_due is not None else lease_for)
                if done.next_due is not None:
                    due = done.next_due / 1000.0 + (0.0 if holder[lane.name] else interval)
                    wake[lane.name] = min(wake[lane.name], max(now, due))
            nap = max(_MIN_NAP, min(wake.values()) - clock.now())
            if await lifecycle.nap(nap, lifecycle.signals.stop):
                return

    async def _drive(self, lane: Lane, lease_for: float, patience: float) -> DrivePass | None:
        shared = self.shared
        started = shared.clock.now()
        try:
            done = await shared.run(lane, drive(lane.queue.ops, shared.id, lease_for, patience=patience))
        except Exception as exc:
            shared.health.failed(f"schedules of {lane.name}", exc, since=started)
            return None
        shared.health.ok(f"schedules of {lane.name}")
        for result in done.fired:
            shared.tally["scheduled"] += len(result.fired)
            if result.fired or result.skipped_missed or result.skipped_overlap:
                shared.log.info(
                    "worker %s: schedule %s of %s fired %d tick(s) (%s), skipped %d missed and %d overlapping",
                    shared.id, result.schedule, lane.name, len(result.fired), ", ".join(result.fired[:5]),
                    result.skipped_missed, result.skipped_overlap,
                    extra=fields("scheduled", worker=shared.id, queue=lane.name, schedule=result.schedule,
                                 jobs=list(result.fired), skipped_missed=result.skipped_missed,
                                 skipped_overlap=result.skipped_overlap),
                )  # fmt: skip
        for name, reason in done.corrupt:
            shared.log.error(
                "worker %s: schedule %s of %s cannot be read, so it does not fire: %s",
                shared.id, name, lane.name, reason,
                extra=fields("schedule_corrupt", worker=shared.id, queue=lane.name, schedule=name, reason=reason),
            )  # fmt: skip
        return done
