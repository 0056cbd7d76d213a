"""Failovers that lose the last writes: the master dies, and a replica that lagged behind takes over.

Redis replicates asynchronously: a write is acknowledged once the master has it, and a replica
receives it a moment later. When the master dies and a replica is promoted (by Sentinel, or by
the Cluster), the writes of that moment are gone. The ``failover`` fault models this: the
replica stops receiving writes ``lag`` seconds before the failover (a :class:`~jqc.sim.replica.Copy`
of the queue's keys is taken then); at the failover the queue's keys are replaced by that copy
and every call is refused for ``duration`` seconds (the election, and clients reconnecting).
A rate (``failover=R`` per virtual second, lags drawn from ``failover_lag``, outages from
``failover_down``) or a schedule (``failover@T:by=LAG:duration=D``) sets when.

What may happen after a failover, counted in the report, never silently:

* an acknowledged add of the lost window is gone: the job is **lost with failover**;
* a completion or a failure for good of the lost window is undone: the job runs again (at least
  once, as after a stall), as does a job whose claim, renewal or recovery was undone;
* the counters of the lost window go back with it: failed attempts, a retry's backoff, a rate
  window's count (so a window may admit more than its limit: ``rate_limit`` is excused for it).

What may not (the ``failover`` invariant, checked at each failover on what the promoted replica
serves, read through the engine): a job it keeps in two containers, or in a container its
record's state disagrees with; a job it keeps that was never added; an active job no execution
of it ever held (by its worker and claim time); a job that was stored before the copy was
taken and is missing from it. Tokens must not repeat afterwards
(``token_fencing``: every claim's token is new), and the final total-queue check holds on what
survived, lost jobs counted apart.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from jqc.engine.calls import CommandCall
from jqc.engine.job import Job, JobState
from jqc.engine.operations import QueueOperations
from jqc.engine.replies import as_strs
from jqc.sim.checkers import Checker, Exec, JobRecord, Status
from jqc.sim.config import SimConfig
from jqc.sim.events import EventQueue, Journal
from jqc.sim.faults import ScheduledFault
from jqc.sim.network import Network
from jqc.sim.replica import Copy, copy_op, restore_op
from jqc.sim.state import FaultState, Model
from jqc.sim.workers import true_time

__all__ = ["COUNTS", "Failovers"]

#: What the report counts about failovers, and what each count means.
COUNTS = {
    "failovers": "failovers injected",
    "adds_lost": "acknowledged adds lost with failover",
    "completions_undone": "completed jobs that will run again",
    "failures_undone": "jobs failed for good that will run again",
    "claims_undone": "claims undone: the job waits again, its holder's writes are rejected",
    "renewals_undone": "lock renewals undone: the lock expires earlier than its holder thinks",
    "other_undone": "other transitions undone (a retry, a recovery, a release)",
}
_CONTAINERS = ("wait", "prio", "delayed", "active", "completed", "failed", "dlq")
_STATE = {
    "wait": JobState.WAITING,
    "prio": JobState.WAITING,
    "delayed": JobState.DELAYED,
    "active": JobState.ACTIVE,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
}
_ALLOWED: tuple[list[str], ...] = (
    [],
    ["wait"],
    ["prio"],
    ["delayed"],
    ["active"],
    ["completed"],
    ["failed"],
    ["failed", "dlq"],
    ["dlq"],
)


class Failovers:
    """Schedules failovers, takes the replica's copy, promotes it, and reconciles the model with it.

    ``hand_out(n)``: wake idle workers once Redis serves again.
    """

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        checker: Checker,
        model: Model,
        faults: FaultState,
        network: Network,
        ops: QueueOperations,
        rng: random.Random,
        *,
        hand_out: Callable[[int], None],
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.checker = checker
        self.model = model
        self.faults = faults
        self.network = network
        self.ops = ops
        self.rng = rng
        self.hand_out = hand_out
        self.counts = dict.fromkeys(COUNTS, 0)
        self._copy: Copy | None = None
        self._copy_at = 0.0
        self._skip = False  # the copy under way was voided: its promotion does nothing

    @property
    def enabled(self) -> bool:
        f = self.cfg.faults
        return f.failover > 0 or any(s.kind == "failover" for s in f.schedule)

    def start(self) -> None:
        """Plan the scheduled failovers and the first one drawn from the rate."""
        for fault in self.cfg.faults.schedule:
            if fault.kind == "failover":
                self.scheduled(fault)
        if self.cfg.faults.failover > 0:
            self._draw()

    def scheduled(self, fault: ScheduledFault) -> None:
        """Plan one failover of the schedule (its copy is taken ``by`` seconds before it)."""
        lag = fault.by if fault.by is not None else 0.5
        down = fault.duration if fault.duration is not None else 5.0
        self._plan(fault.at, max(0.0, lag), down)

    def _draw(self) -> None:
        f = self.cfg.faults
        at = self.q.now + self.rng.expovariate(f.failover)
        self._plan(at, self.rng.uniform(*f.failover_lag), self.rng.uniform(*f.failover_down), drawn=True)

    def _plan(self, at: float, lag: float, down: float, *, drawn: bool = False) -> None:
        self.q.at(max(self.q.now, at - lag), self._take_copy, at, lag, down, drawn)

    def forget_copy(self) -> None:
        """Redis lost its data in a restart: the copy under way is void (its failover is skipped)."""
        if self._copy is not None:
            self._copy = None
            self._skip = True

    # -- the fault ------------------------------------------------------------------------------------

    def _take_copy(self, at: float, lag: float, down: float, drawn: bool) -> None:
        """The replica stops receiving writes: what it has is the queue as it is now."""
        if self.faults.healed:
            return
        if self._copy is not None:
            self.journal.emit("failover skipped: another one is under way")
            if drawn:
                self._draw()
            return
        self._copy = self.network.engine(copy_op(self.ops.keys))
        self._copy_at = self.q.now
        self.faults.until(at + down)
        self.q.at(at, self._promote, lag, down, drawn)

    def _promote(self, lag: float, down: float, drawn: bool) -> None:
        """The master dies; the replica, ``lag`` seconds behind, is promoted."""
        copy, self._copy = self._copy, None
        if copy is None or self._skip:
            self._skip = False
            self.journal.emit("failover skipped: Redis lost its data since the copy")
            if drawn and not self.faults.healed:
                self._draw()
            return
        now = self.q.now
        self.counts["failovers"] += 1
        faults = self.faults
        faults.down_until = max(faults.down_until, now + down)
        faults.until(faults.down_until)
        self.journal.inject("failover", f"replica {lag:.3f}s behind ({copy.keys} keys), down {down:.3f}s")
        self.network.engine(restore_op(self.ops.keys, copy))
        self._reconcile()
        for job in self.model.jobs.values():
            self._tag(job.exec)  # the outage holds up its renewals: its lock may run out meanwhile
        self.model.rate_windows.clear()  # the windows' counts went back too: judge them afresh
        faults.failovers_awaiting_work += 1
        self.q.at(faults.down_until, self._back)
        if drawn and not faults.healed:
            self._draw()

    def _back(self) -> None:
        if self.faults.down(self.q.now):
            return  # a later outage overlapped this one; its end takes over
        self.journal.emit("Redis is back on the promoted replica")
        pending = sum(1 for j in self.model.jobs.values() if j.status is Status.PENDING)
        self.hand_out(pending)

    # -- what the replica kept, against what the model knows ---------------------------------------------

    def _kept(self) -> tuple[dict[str, list[str]], dict[str, dict[str, float]]]:
        """Where the promoted replica keeps each job (container names, in order), and the scores of
        the sorted sets (lock deadlines, due times), read through the engine's own keys."""
        keys = self.ops.keys
        where: dict[str, list[str]] = {}
        scores: dict[str, dict[str, float]] = {}
        for name in _CONTAINERS:
            if name == "wait":
                members = self.network.engine(CommandCall(("LRANGE", keys.key(name), 0, -1), as_strs))
            else:
                flat = self.network.engine(CommandCall(("ZRANGE", keys.key(name), 0, -1, "WITHSCORES"), as_strs))
                members = flat[::2]
                scores[name] = {m: float(v) for m, v in zip(flat[::2], flat[1::2], strict=True)}
            for job_id in members:
                where.setdefault(job_id, []).append(name)
        return where, scores

    def _reconcile(self) -> None:
        ck, model = self.checker, self.model
        where, scores = self._kept()
        stored: dict[str, Job | None] = {}
        for job_id, found in where.items():
            job = stored[job_id] = self.network.engine(self.ops.get_job(job_id))
            state = _STATE.get(found[0])
            if found not in _ALLOWED:
                ck.fail("failover", f"the replica keeps job {job_id} in {'+'.join(found)}")
            elif job_id not in model.jobs:
                ck.fail("failover", f"the replica keeps job {job_id}, which was never added")
            elif state is not None and (job is None or job.state is not state):
                got = "no record" if job is None else f"state {job.state.value}"
                ck.fail("failover", f"the replica keeps job {job_id} in {found[0]} with {got}")
            else:
                ck.ok("failover")
        for record in list(model.jobs.values()):
            self._job(record, where.get(record.id, []), stored.get(record.id), scores)

    def _job(self, job: JobRecord, found: list[str], kept: Job | None, scores: dict[str, dict[str, float]]) -> None:
        status, now = job.status, self.q.now
        if status in (Status.DROPPED, Status.LOST):
            return
        if not found:
            if status in (Status.COMPLETED, Status.DEAD):
                job.record_dropped = job.record_dropped or job.entered >= self._copy_at
            elif job.entered >= self._copy_at:
                self._tag(job.exec)
                self.counts["adds_lost"] += 1
                self.model.lost_failover += 1
                self.model.settle(job, Status.LOST, now)
                self.journal.emit(f"failover lost {job.id}")
            else:
                self.checker.fail("failover", f"job {job.id} was stored before the copy, and the replica lacks it")
            return
        if found[0] in ("completed", "failed", "dlq"):
            outcome = Status.COMPLETED if found[0] == "completed" else Status.DEAD
            if status is not outcome:
                self.checker.fail("failover", f"the replica has job {job.id} {outcome.value}, the model {status.value}")
            return
        if kept is None:
            return  # counted above: a job in a container without its record
        job.failures = kept.failed_attempts
        if found[0] == "active":
            self._held(job, kept, round(scores["active"][job.id]))
            return
        # waiting, prioritized or delayed on the replica
        if status is Status.PENDING:
            job.due = round(scores["delayed"][job.id]) if found[0] == "delayed" else 0
            return
        last = self._undo(job)
        job.status = Status.PENDING
        job.exec = None
        job.token = 0
        job.due = 0
        job.stalled = last
        self.journal.emit(f"failover undid {job.id}: waiting again")

    def _held(self, job: JobRecord, kept: Job, deadline: int) -> None:
        """The replica has ``job`` active: claimed by ``kept.worker`` at ``kept.started_at``, locked to ``deadline``."""
        started = round((kept.started_at or 0.0) * 1000)
        runs = self.model.execs.get(job.id, []) if self.model.execs is not None else []
        holder = next((ex for ex in reversed(runs) if ex.worker == kept.worker and ex.stamp == started), None)
        if holder is None:
            self.checker.fail("failover", f"the replica has job {job.id} held by {kept.worker}, which never claimed it")
            return
        if job.status is Status.HELD and job.exec is holder:
            if deadline < holder.deadline:
                self.counts["renewals_undone"] += 1
                self._set_deadline(holder, deadline)
            return
        if job.status is Status.HELD:
            self._tag(job.exec)  # its claim is undone: that execution's writes are rejected from now on
            self.counts["claims_undone"] += 1
        else:
            self._undo(job)
        self._tag(holder)
        job.status = Status.HELD
        job.exec = holder
        job.token = holder.token
        job.stalled = None
        self._set_deadline(holder, deadline)
        self.journal.emit(f"failover undid {job.id}: held again under {holder.token}")

    def _set_deadline(self, ex: Exec, deadline: int) -> None:
        ex.tag("failover")
        ex.deadline = deadline
        ex.renewed = min(ex.renewed, true_time(deadline / 1000.0, None) - self.cfg.lock)

    def _undo(self, job: JobRecord) -> Exec | None:
        """Take back what happened to ``job`` since the copy; returns its last execution (tagged)."""
        model, now = self.model, self.q.now
        runs = model.execs.get(job.id) if model.execs is not None else None
        last = runs[-1] if runs else None
        self._tag(last)
        if job.status is Status.HELD:
            self._tag(job.exec)
            self.counts["claims_undone"] += 1
        elif job.status in (Status.COMPLETED, Status.DEAD):
            self.counts["completions_undone" if job.status is Status.COMPLETED else "failures_undone"] += 1
            model.unfinish(job, now)
        else:
            self.counts["other_undone"] += 1
        return last

    @staticmethod
    def _tag(ex: Exec | None) -> None:
        if ex is not None:
            ex.tag("failover")
