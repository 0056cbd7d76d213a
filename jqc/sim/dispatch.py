"""Handing out work and claiming it.

Idle workers make no calls: they wait until the simulator hands them work (a job was added,
retried, released or recovered: one idle worker per job, the longest idle first), a delayed job
falls due (the claim reply says when; one timer holds the earliest such time), or the slow
fallback poll of one idle worker. A woken worker claims through the engine; what the claim (or a
complete that fetched the next job) handed out is checked against the model here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from jqc.engine.codes import Code
from jqc.engine.operations import ClaimResult, QueueOperations
from jqc.errors import BackendError
from jqc.sim.checkers import Checker, Exec, JobRecord, Status
from jqc.sim.config import SimConfig
from jqc.sim.events import EventQueue, Journal
from jqc.sim.network import Network
from jqc.sim.pool import Pool
from jqc.sim.state import FaultState, Model, ScalingStats, TimeAverages, WorkerSlots
from jqc.sim.workers import CLAIMING, IDLE, Call, Worker, stamp, true_time

__all__ = ["Dispatcher"]


class Dispatcher:
    """Wakes idle workers to claim, sends their claims and records what each claim handed out.

    ``start(w, ex)``: ``w`` got the execution ``ex`` and must run it.
    """

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        checker: Checker,
        model: Model,
        slots: WorkerSlots,
        averages: TimeAverages,
        faults: FaultState,
        stats: ScalingStats,
        network: Network,
        ops: QueueOperations,
        pool: Pool,
        *,
        start: Callable[[Worker, Exec], None],
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.checker = checker
        self.model = model
        self.slots = slots
        self.averages = averages
        self.faults = faults
        self.stats = stats
        self.network = network
        self.ops = ops
        self.pool = pool
        self.start = start
        self.lock_ms = round(cfg.lock * 1000)
        self.timer_at = math.inf  # when the delayed-job timer fires next
        self.timer_seq = 0
        network.handle("claim", self._t_claim, self._r_claim)

    # -- handing out work ---------------------------------------------------------------------------

    def hand_out(self, n: int, *, cascade: bool = False) -> None:
        """Wake up to ``n`` idle workers (the longest idle first) to claim."""
        idle = self.slots.idle
        while n > 0 and idle:
            slot = next(iter(idle))
            w = idle.pop(slot)
            w.state = CLAIMING
            self.q.at(self.q.now, self.wake, w, cascade)
            n -= 1

    def arm(self, when: float) -> None:
        """A job falls due at ``when``: wake an idle worker then (unless the timer fires earlier)."""
        when = max(when, self.q.now + 0.001)
        if when < self.timer_at - 1e-9:
            self.timer_at = when
            self.timer_seq += 1
            self.q.at(when, self._timer, self.timer_seq)

    def _timer(self, seq: int) -> None:
        if seq != self.timer_seq:
            return
        self.timer_at = math.inf
        self.hand_out(1, cascade=True)

    def idle_poll(self) -> None:
        """The slow fallback: while jobs are unfinished, wake one idle worker every ``idle_poll``."""
        self.q.after(self.cfg.idle_poll, self.idle_poll)
        if self.model.unfinished and self.slots.idle:
            self.hand_out(1, cascade=True)

    def go_idle(self, w: Worker) -> None:
        """``w`` found nothing to claim: it waits (or leaves, if it is draining)."""
        if w.draining:
            self.pool.stop(w)
            return
        w.state = IDLE
        self.slots.idle[w.slot] = w

    # -- claiming -----------------------------------------------------------------------------------

    def wake(self, w: Worker, cascade: bool) -> None:
        """``w`` claims a job (``cascade``: if it gets one, wake the next idle worker too)."""
        if w.state != CLAIMING:
            return
        if w.frozen_until > self.q.now:
            self.q.at(w.frozen_until, self.wake, w, cascade)
            return
        now = stamp(self.q.now, w)
        call = Call("claim", w, self.ops.claim(w.id, count=1, lock=self.cfg.lock, now=now), now)
        call.extra = cascade
        self.network.send(call)

    def _t_claim(self, call: Call, result: ClaimResult, reply: bool) -> None:
        w = call.worker
        assert w is not None
        execs = self.claimed(w, result, call, reply)
        call.ex = execs[0] if execs else None
        if result.status != Code.OK:
            self.journal.emit(f"claim {w.id} {result.status.name.lower()}")

    def claimed(self, w: Worker, result: ClaimResult | None, call: Call, reply: bool) -> list[Exec]:
        """Record what a claim (or a complete that fetched the next job) handed out."""
        model, faults, ck = self.model, self.faults, self.checker
        now = self.q.now
        call_stamp = call.stamp
        if call_stamp > model.max_claim_stamp:
            model.max_claim_stamp = call_stamp
        if result is None or not result.jobs:
            return []
        if self.cfg.rate_limit is not None:
            self._check_rate(call_stamp, len(result.jobs))
        if faults.restarts_awaiting_work:
            self.journal.reach("restart")
            faults.restarts_awaiting_work -= 1
        if faults.failovers_awaiting_work:
            self.journal.reach("failover")
            faults.failovers_awaiting_work -= 1
        out = []
        for cj in result.jobs:
            job = model.jobs.get(cj.id)
            self.journal.emit(f"claim {w.id} {cj.id}:{cj.token}")
            if job is None:
                ck.fail("total_queue", f"job {cj.id} was claimed but never added")
                job = JobRecord(cj.id, 0, now, now, 1, measured=False)
                model.enter(job, now)
            if job.status is Status.PENDING:
                ck.ok("single_holder")
            else:
                ck.fail(
                    "single_holder",
                    f"job {job.id} claimed under token {cj.token} while {job.status.value}"
                    + (f" under token {job.token}" if job.status is Status.HELD else ""),
                )
            if cj.job.failed_attempts < job.attempts:
                ck.ok("max_attempts")
            else:
                made = cj.job.failed_attempts
                ck.fail("max_attempts", f"job {job.id} claimed after {made} of {job.attempts} failed attempts")
            if job.due:
                if model.max_claim_stamp >= job.due:
                    ck.ok("not_before_due")
                else:
                    ck.fail("not_before_due", f"job {job.id} claimed at {call_stamp}, due at {job.due} on every clock")
            ex = Exec(job, cj.token, w.id, now, call_stamp + self.lock_ms, true_time(call_stamp / 1000.0, w))
            ex.claimed = cj
            ex.stamp = call_stamp
            ex.slot = w.slot
            if not reply:
                ex.tag(call.lost_by)
            if call.delayed:
                ex.tag("slow")
            if faults.down(now):
                ex.tag("restart")
            job.status = Status.HELD
            job.token = cj.token
            job.exec = ex
            job.executions += 1
            if model.tokens is not None:  # a run with failovers: a token must never come back
                before = model.executed(ex)
                if before is None:
                    ck.ok("token_fencing")
                elif faults.clock_faulted:
                    ck.excuse("token_fencing")  # a clock behind may stamp a token below one handed out
                else:
                    ck.fail("token_fencing", f"token {cj.token} of job {cj.id} was handed out before (job {before})")
            if job.stalled is not None:
                self._trace_duplicate(job)
            if job.first_start is None:
                self._first_start(job)
            out.append(ex)
        return out

    def _check_rate(self, call_stamp: int, claimed: int) -> None:
        assert self.cfg.rate_limit is not None
        model, ck = self.model, self.checker
        limit, width = self.cfg.rate_limit
        width_ms = round(width * 1000)
        window = call_stamp - call_stamp % width_ms
        used = model.rate_windows[window] = model.rate_windows.get(window, 0) + claimed
        if len(model.rate_windows) > 16:
            del model.rate_windows[min(model.rate_windows)]
        if used <= limit:
            ck.ok("rate_limit")
        elif self.faults.clock_faulted:
            ck.excuse("rate_limit")
        else:
            ck.fail("rate_limit", f"{used} jobs claimed in the window starting {window}, limit {limit}")

    def _trace_duplicate(self, job: JobRecord) -> None:
        """``job`` runs again after the stall check took it from an execution: count it and say why."""
        assert job.stalled is not None
        model = self.model
        causes = "+".join(sorted(job.stalled.tags))
        model.duplicates += 1
        job.duplicates += 1
        if causes:
            self.checker.ok("duplicates_traced")
            model.duplicate_causes[causes] = model.duplicate_causes.get(causes, 0) + 1
        else:
            self.checker.fail("duplicates_traced", f"job {job.id} runs again after an execution no fault touched")
        job.stalled = None

    def _first_start(self, job: JobRecord) -> None:
        now = self.q.now
        job.first_start = now
        self.averages.change(now, queue=-1)
        if job.measured:
            self.stats.started(now - job.ready)
        if self.averages.n_queue == 0 and self.stats.burst_ends:
            self.stats.drained(now)

    def _r_claim(self, call: Call, result: Any) -> None:
        w = call.worker
        assert w is not None
        if w.state != CLAIMING:
            return
        if isinstance(result, BackendError):
            self.q.after(self.cfg.retry_backoff, self.wake, w, False)
            return
        if call.ex is not None:
            self.start(w, call.ex)
            if call.extra:
                self.hand_out(1, cascade=True)
            return
        if result.retry_at:
            self.arm(true_time(result.retry_at, w))
        self.go_idle(w)
