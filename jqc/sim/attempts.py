"""Running a job: one attempt from the claim to its report, with heartbeats and releases.

A busy worker draws the attempt's run time and outcome, and the faults that hit it; it renews its
lock every heartbeat until it starts reporting (a hung report keeps renewing it for a while, see
:mod:`~jqc.sim.hang`); it reports ``complete`` (fetching the next job
unless it drains) or ``fail`` (with the job's backoff). Every write about a held job is checked
against the model's current token (``token_fencing``). A draining worker whose job outlives the
drain grace releases it.
"""

from __future__ import annotations

from typing import Any

from jqc.engine.job import ClaimedJob
from jqc.engine.operations import QueueOperations
from jqc.errors import BackendError, LockLostError
from jqc.sim.checkers import Checker, Exec, Status
from jqc.sim.config import SimConfig
from jqc.sim.dispatch import Dispatcher
from jqc.sim.events import EventQueue, Journal
from jqc.sim.faults import plan_attempt
from jqc.sim.hang import HungCalls
from jqc.sim.inject import FaultInjector
from jqc.sim.network import Network
from jqc.sim.pool import Pool
from jqc.sim.rng import SimRandom
from jqc.sim.state import FaultState, Model, ScalingStats, TimeAverages
from jqc.sim.workers import BUSY, CLAIMING, Call, Worker, awake_on, stamp, true_time

__all__ = ["Attempts"]


class Attempts:
    """The handlers of a busy worker: start, finish, report, heartbeat and release.

    ``scaling``: a scaling policy runs, so finished attempts' run times are kept for its ticks.
    """

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        checker: Checker,
        model: Model,
        averages: TimeAverages,
        faults: FaultState,
        stats: ScalingStats,
        network: Network,
        ops: QueueOperations,
        pool: Pool,
        dispatch: Dispatcher,
        injector: FaultInjector,
        hung: HungCalls,
        rand: SimRandom,
        *,
        scaling: bool,
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.checker = checker
        self.model = model
        self.averages = averages
        self.faults = faults
        self.stats = stats
        self.network = network
        self.ops = ops
        self.pool = pool
        self.dispatch = dispatch
        self.injector = injector
        self.hung = hung
        self.scaling = scaling
        self.r_service, self.r_outcome = rand.stream("service"), rand.stream("outcome")
        self.r_faults, self.r_backoff = rand.stream("faults"), rand.stream("backoff")
        self.lock_ms = round(cfg.lock * 1000)
        self.hb = cfg.heartbeat_s
        network.handle("complete", self._t_complete, self._reported)
        network.handle("fail", self._t_fail, self._reported)
        network.handle("extend", self._t_extend, self._r_extend)
        # A renewal while the job is being reported: a rejection does not make the worker give up
        # (as in jqc.worker, the report finds out for itself).
        network.handle("settle-extend", self._t_extend, lambda call, result: None)
        network.handle("progress", self._t_progress, lambda call, result: None)
        network.guess("extend", self._g_extend)
        network.guess("settle-extend", self._g_extend)
        network.handle("release", self._t_release, self._r_release)

    # -- running a job ------------------------------------------------------------------------------

    def start(self, w: Worker, ex: Exec) -> None:
        """``w`` runs the execution ``ex``: draw its run time, outcome and faults, and schedule them."""
        cfg = self.cfg
        now = self.q.now
        self.averages.change(now, busy=1)
        w.state = BUSY
        w.exec = ex
        cls = cfg.mix[ex.job.cls]
        service = (cls.service or cfg.service).sample(self.r_service)
        u = self.r_outcome.random()
        ex.outcome = "permanent" if u < cls.permanent else "transient" if u < cls.permanent + cls.transient else "ok"
        if (
            ex.outcome == "ok"
            and not self.faults.healed
            and cfg.faults.error > 0
            and self.r_faults.random() < cfg.faults.error
        ):
            ex.outcome = "error"
        if w.fail_next:
            w.fail_next = False
            ex.outcome = "error"
        if ex.outcome == "error":
            self.journal.inject("error", f"{w.id} {ex.job.id}")
        ex.service = service
        if ex.job.service < 0:
            ex.job.service = service
        ex.finish_at = now + service
        if not self.faults.healed:
            for fault in plan_attempt(cfg.faults, self.r_faults, service, cfg.lock):
                if fault.kind == "pause" and fault.mode == "report":
                    ex.report_pause = fault.duration
                elif fault.kind == "hang":
                    ex.hang = fault.mode
                else:
                    self.q.at(now + fault.at, self.injector.attempt_fault, w, ex, fault)
        self.q.at(ex.finish_at, self._finish, w, ex)
        self.q.at(now + self.hb, self._heartbeat, w, ex)

    def _finish(self, w: Worker, ex: Exec) -> None:
        if not awake_on(self.q, w, ex, self._finish):
            return
        now = self.q.now
        if now < ex.finish_at:  # the handler was paused meanwhile
            self.q.at(ex.finish_at, self._finish, w, ex)
            return
        if ex.report_pause > 0 and not self.faults.healed:
            pause, ex.report_pause = ex.report_pause, 0.0
            self.faults.until(now + pause)
            ex.tag("pause")
            self.journal.inject("pause", f"{w.id} for {pause:.3f}s before reporting {ex.job.id}")
            w.frozen_until = now + pause
        self._report(w, ex)

    def _report(self, w: Worker, ex: Exec) -> None:
        ex.reporting = True
        if not awake_on(self.q, w, ex, self._report):
            return
        now = stamp(self.q.now, w)
        cj: ClaimedJob = ex.claimed
        if ex.outcome == "ok":
            fetch = 0 if (w.draining or not self.cfg.fetch_next) else 1
            done = self.ops.complete(cj, None, fetch_next=fetch, lock=self.cfg.lock, worker=w.id, now=now)
            self.hung.send(Call("complete", w, done, now, ex))
            return
        retry = ex.outcome != "permanent"
        delay = self.ops.retry_delay(cj, rng=self.r_backoff) if retry else 0.0
        call = Call("fail", w, self.ops.fail(cj, ex.outcome, retry=retry, delay=delay, worker=w.id, now=now), now, ex)
        call.extra = delay
        self.hung.send(call)

    def _write(self, what: str, ex: Exec, accepted: bool) -> None:
        """Check one write about a held job against the model's current token."""
        job = ex.job
        current = job.status is Status.HELD and job.token == ex.token
        if accepted == current:
            self.checker.ok("token_fencing")
        elif accepted:
            self.checker.fail(
                "token_fencing",
                f"{what} of job {job.id} with stale token {ex.token} accepted (job {job.status.value}"
                + (f", current token {job.token})" if job.status is Status.HELD else ")"),
            )
        else:
            self.checker.fail("token_fencing", f"{what} of job {job.id} with its current token {ex.token} rejected")

    def _ran(self, ex: Exec) -> None:
        if self.scaling:
            self.stats.recent_runs.append((self.q.now, self.q.now - ex.start))

    def _t_complete(self, call: Call, result: Any, reply: bool) -> None:
        ex = call.ex
        assert ex is not None and call.worker is not None
        accepted = not isinstance(result, LockLostError)
        self._write("complete", ex, accepted)
        ex.concluded = True
        self.journal.emit(f"complete {call.worker.id} {ex.job.id}:{ex.token} {'ok' if accepted else 'rejected'}")
        if accepted:
            if ex.job.status is Status.HELD:
                self._ran(ex)
                self.model.settle(ex.job, Status.COMPLETED, self.q.now)
            nxt = self.dispatch.claimed(call.worker, result, call, reply)
            call.extra = (nxt[0] if nxt else None, result)

    def _t_fail(self, call: Call, result: Any, reply: bool) -> None:
        ex = call.ex
        assert ex is not None and call.worker is not None
        job = ex.job
        accepted = not isinstance(result, LockLostError)
        self._write("fail", ex, accepted)
        ex.concluded = True
        self.journal.emit(
            f"fail {call.worker.id} {job.id}:{ex.token} {ex.outcome} {result if accepted else 'rejected'}"
        )
        if not accepted or job.status is not Status.HELD:
            return
        self._ran(ex)
        job.failures += 1
        ck = self.checker
        if job.failures > job.attempts:
            ck.fail("max_attempts", f"job {job.id} failed {job.failures} times, maximum {job.attempts}")
        elif (result == "retry") != (ex.outcome != "permanent" and job.failures < job.attempts):
            ck.fail("max_attempts", f"job {job.id} answered {result!r} after failure {job.failures} of {job.attempts}")
        else:
            ck.ok("max_attempts")
        if ex.outcome == "error":
            self.journal.reach("error")
        if result == "retry":
            job.status = Status.PENDING
            job.exec = None
            job.token = 0
            delay: float = call.extra
            job.due = call.stamp + round(delay * 1000) if delay > 0 else 0
        else:
            self.model.settle(job, Status.DEAD, self.q.now)

    def _reported(self, call: Call, result: Any) -> None:
        w, ex = call.worker, call.ex
        assert w is not None and ex is not None
        if w.exec is not ex:
            return
        if isinstance(result, BackendError):
            ex.failed_calls += 1
            self.q.after(self.cfg.retry_backoff, self._report, w, ex)
            return
        self._conclude(w, ex)
        if isinstance(result, LockLostError):
            self._fenced(ex)
            self._next_claim(w)
            return
        if ex.failed_calls and "partition" in ex.tags:
            self.journal.reach("partition")
        dispatch = self.dispatch
        if call.kind == "fail":
            if result == "retry":
                delay: float = call.extra
                if delay > 0:
                    dispatch.arm(self.q.now + delay)
                else:
                    dispatch.hand_out(1)
            self._next_claim(w)
            return
        nxt, following = call.extra
        if nxt is not None:
            self.start(w, nxt)
            return
        if following is not None and following.retry_at:
            dispatch.arm(true_time(following.retry_at, w))
        if self.cfg.fetch_next and following is not None:
            dispatch.go_idle(w)
        else:
            self._next_claim(w)

    def _fenced(self, ex: Exec) -> None:
        """A worker learnt that it lost its job (a write rejected or a renewal refused)."""
        self.journal.emit(f"fenced {ex.worker} {ex.job.id}:{ex.token}")
        for kind in ("pause", "partition", "jump", "skew", "slow"):
            if kind in ex.tags:
                self.journal.reach(kind)

    def _next_claim(self, w: Worker) -> None:
        if w.draining:
            self.pool.stop(w)
            return
        w.state = CLAIMING
        self.dispatch.wake(w, False)

    def _conclude(self, w: Worker, ex: Exec) -> None:
        w.exec = None
        w.state = CLAIMING
        self.averages.change(self.q.now, busy=-1)

    # -- heartbeats ---------------------------------------------------------------------------------

    def _heartbeat(self, w: Worker, ex: Exec) -> None:
        if ex.reporting or not awake_on(self.q, w, ex, self._heartbeat):
            return
        now = stamp(self.q.now, w)
        lock = self.cfg.lock
        self.network.send(Call("extend", w, self.ops.extend([(ex.job.id, ex.token)], lock=lock, now=now), now, ex))
        if self.cfg.progress:
            self.network.send(Call("progress", w, self.ops.progress(ex.claimed, self.q.now - ex.start), now, ex))
        self.q.after(self.hb, self._heartbeat, w, ex)

    def _t_extend(self, call: Call, result: dict[str, bool], reply: bool) -> None:
        ex = call.ex
        assert ex is not None and call.worker is not None
        ok = bool(result.get(ex.job.id))
        self._write("extend", ex, ok)
        if ok:
            if call.delayed and self.q.now > ex.renewed + self.cfg.lock:
                ex.tag("slow")
                self.journal.reach("slow")
            ex.deadline = call.stamp + self.lock_ms
            ex.renewed = true_time(call.stamp / 1000.0, call.worker)
        self.journal.emit(f"extend {call.worker.id} {ex.job.id}:{ex.token} {'ok' if ok else 'lost'}")

    @staticmethod
    def _g_extend(call: Call) -> dict[str, bool]:
        """What a renewal answers when fencing holds: held exactly when the model says this token holds
        the job (``token_fencing`` checks the same, so a different reply fails the run either way)."""
        ex = call.ex
        assert ex is not None
        job = ex.job
        return {job.id: job.status is Status.HELD and job.token == ex.token}

    def _r_extend(self, call: Call, result: Any) -> None:
        w, ex = call.worker, call.ex
        assert w is not None and ex is not None
        if w.exec is not ex or w.state != BUSY or isinstance(result, BackendError):
            return
        if not result.get(ex.job.id):
            self._conclude(w, ex)
            self._fenced(ex)
            self._next_claim(w)

    def _t_progress(self, call: Call, result: Any, reply: bool) -> None:
        assert call.ex is not None
        self._write("progress", call.ex, not isinstance(result, LockLostError))

    # -- releasing (graceful scale-down with a grace period) ----------------------------------------

    def drain_deadline(self, w: Worker, ex: Exec) -> None:
        """The drain grace of ``w`` is over and it still runs ``ex``: hand the job back."""
        if w.exec is not ex or w.state != BUSY:
            return
        now = stamp(self.q.now, w)
        self.network.send(Call("release", w, self.ops.release(ex.claimed, now=now), now, ex))

    def _t_release(self, call: Call, result: Any, reply: bool) -> None:
        ex = call.ex
        assert ex is not None
        accepted = not isinstance(result, LockLostError)
        self._write("release", ex, accepted)
        ex.concluded = True
        self.journal.emit(f"release {ex.worker} {ex.job.id}:{ex.token} {'ok' if accepted else 'rejected'}")
        if accepted and ex.job.status is Status.HELD:
            ex.job.status = Status.PENDING
            ex.job.exec = None
            ex.job.token = 0
            ex.job.due = 0
            self.stats.released_by_scaling += 1

    def _r_release(self, call: Call, result: Any) -> None:
        w, ex = call.worker, call.ex
        assert w is not None and ex is not None
        if w.exec is not ex:
            return
        if isinstance(result, BackendError):
            self.q.after(self.cfg.retry_backoff, self.drain_deadline, w, ex)
            return
        self._conclude(w, ex)
        if not isinstance(result, LockLostError):
            self.dispatch.hand_out(1)
        self.pool.stop(w)
