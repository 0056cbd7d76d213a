"""Stall checks: one live worker, picked at random each ``stall_interval``, recovers expired locks.

The model checks every job the check took: it must have been held (``single_holder``) and its
lock deadline past on the checker's clock (``lock_expiry``). A job taken while its lock had not
expired on the true clock is traced to the clock faults that made the checker think so.
"""

from __future__ import annotations

import random
from typing import Any

from jqc.engine.operations import QueueOperations, RecoverResult
from jqc.errors import BackendError
from jqc.sim.checkers import Checker, Status
from jqc.sim.config import SimConfig
from jqc.sim.dispatch import Dispatcher
from jqc.sim.events import EventQueue, Journal
from jqc.sim.network import Network
from jqc.sim.state import Model, WorkerSlots
from jqc.sim.workers import LIVE, Call, Worker, stamp

__all__ = ["StallChecks"]


class StallChecks:
    """Runs the periodic stall check and records what it recovered."""

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        checker: Checker,
        model: Model,
        slots: WorkerSlots,
        network: Network,
        ops: QueueOperations,
        dispatch: Dispatcher,
        pick_rng: random.Random,
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.checker = checker
        self.model = model
        self.slots = slots
        self.network = network
        self.ops = ops
        self.dispatch = dispatch
        self.pick_rng = pick_rng
        network.handle("recover", self._t_recover, self._r_recover)

    def check(self) -> None:
        """Pick a live, awake worker to run the stall check (and schedule the next check)."""
        self.q.after(self.cfg.stall_interval, self.check)
        now = self.q.now
        live = [w for w in self.slots.workers() if w.state in LIVE and w.frozen_until <= now]
        if live:
            self._recover(live[int(self.pick_rng.random() * len(live))])

    def _recover(self, w: Worker) -> None:
        now = stamp(self.q.now, w)
        step = self.ops.recover_stalled(limit=1000, max_stalls=self.cfg.max_stalls, now=now)
        self.network.send(Call("recover", w, step, now))

    def _t_recover(self, call: Call, result: RecoverResult, reply: bool) -> None:
        w = call.worker
        assert w is not None
        ck, journal, slots = self.checker, self.journal, self.slots.slots
        for ids, status in ((result.recovered, Status.PENDING), (result.failed, Status.DEAD)):
            for job_id in ids:
                job = self.model.jobs.get(job_id)
                journal.emit(f"recover {w.id} {job_id} {'stalled' if status is Status.PENDING else 'failed'}")
                if job is None or job.status is not Status.HELD or job.exec is None:
                    ck.fail("single_holder", f"the stall check took job {job_id}, which was not held")
                    continue
                ex = job.exec
                if call.stamp >= ex.deadline:
                    ck.ok("lock_expiry")
                else:
                    ck.fail("lock_expiry", f"job {job_id} recovered at {call.stamp}, its lock ran to {ex.deadline}")
                if self.q.now < ex.renewed + self.cfg.lock:  # not expired on the true clock
                    holder = slots[ex.slot] if 0 <= ex.slot < len(slots) else None
                    for tag in w.clock_tags:
                        ex.tag(tag)
                    if holder is not None and holder.id == ex.worker:
                        for tag in holder.clock_tags:
                            ex.tag(tag)
                    for kind in ("skew", "jump"):
                        if kind in ex.tags:
                            journal.reach(kind)
                if "crash" in ex.tags:
                    journal.reach("crash")
                if "slow" in ex.tags:
                    journal.reach("slow")
                if "partition" in ex.tags and not ex.failed_calls:
                    journal.reach("partition")
                if status is Status.PENDING:
                    job.status = Status.PENDING
                    job.exec = None
                    job.token = 0
                    job.due = 0
                    job.stalled = ex
                else:
                    self.model.settle(job, Status.DEAD, self.q.now)
        call.extra = result

    def _r_recover(self, call: Call, result: Any) -> None:
        if isinstance(result, BackendError):
            return
        if result.recovered:
            self.dispatch.hand_out(len(result.recovered))
        if result.more and call.worker is not None and call.worker.state in LIVE:
            self._recover(call.worker)
