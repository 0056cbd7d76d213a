"""Hung calls: a worker's report that never returns (a half-open connection, a hung proxy).

The ``hang`` fault hits one attempt's report (``complete`` or ``fail``): the call goes out on a
connection that will never answer. Half the time the request never reached Redis (a half-open
connection swallowed it); the other half it ran there and only its reply is lost, so a
``complete`` that fetched the next job leaves that job held by no one. The virtual worker has
``jqc.worker``'s two defences:

* **the call deadline**: a call still unanswered after :func:`call_deadline` is abandoned (the
  worker sees a timeout, drops the connection) and the report is retried over a new one after
  ``retry_backoff``;
* **bounded renewal**: while its report is under way, the worker keeps renewing the job's lock over
  its other connections, but only for :func:`renewal_bound` (one lock duration) from the start of
  the report; a rejected renewal of a job being reported does not make it give up. Past the bound
  the lock runs out and the stall check takes the job back.

The ``hung_calls`` invariant holds the worker to the defaults it promises (not to what the two
functions above return, which is where a planted bug goes): every hung call is over (abandoned or
answered) by ``call_timeout``, and every job it held (its own, and the one a lost ``complete``
reply fetched) is no longer held by that execution ``lock + stall_interval + min(lock,
call_timeout + retry_backoff)`` after the hang: completed or failed by the worker after it healed,
or taken back by the stall check. Nothing completed twice and nothing lost are the other
invariants' part. When other faults that can hold up recovery are in the run (a crash, a pause, a
partition, a clock fault, a slow window or a restart can delay the stall check itself), a late
recovery is counted as *excused*; the liveness check still catches a job that never finishes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from jqc.engine.operations import QueueOperations
from jqc.sim.checkers import Checker, Exec, Status
from jqc.sim.config import SimConfig
from jqc.sim.events import EventQueue, Journal
from jqc.sim.network import Network
from jqc.sim.state import FaultState
from jqc.sim.workers import BUSY, DEAD, STOPPED, Call, TimedOut, Worker, stamp

__all__ = ["HungCalls", "call_deadline", "recovery_bound", "renewal_bound"]

#: Faults besides hangs that can delay recovery (of an error nothing waits longer).
_DELAYING = ("crash", "pause", "partition", "jump", "skew", "slow", "restart", "failover")
#: Slack for the engine's millisecond stamps and the order of events due at the same instant.
_EPS = 0.01


def call_deadline(cfg: SimConfig) -> float:
    """How long the modelled worker waits for a reply before it abandons the call (seconds)."""
    return cfg.call_timeout


def renewal_bound(cfg: SimConfig) -> float:
    """How long the modelled worker renews the lock of a job whose report is under way (seconds)."""
    return cfg.lock


def recovery_bound(cfg: SimConfig) -> float:
    """The promise the invariant checks: a job held by a hung call is recovered this long after the hang.

    The worker retries its report after the call deadline plus the retry backoff; when that is too
    late (or never comes) the bounded renewal lets the lock run out one lock duration after the
    report began (at most one more lock duration later it expires) and the next stall check takes
    the job back.
    """
    return cfg.lock + cfg.stall_interval + min(cfg.lock, cfg.call_timeout + cfg.retry_backoff)


@dataclass(slots=True, eq=False)
class _Hang:
    """One hung call and what the invariant must see of it."""

    worker: Worker
    ex: Exec
    call: Call
    start: float
    failed_calls: int  # the execution's failed calls when the call hung (the worker counts one more once it gives up)
    worker_checked: bool = False
    jobs_checked: bool = False
    held: list[Exec] = field(default_factory=list)  # executions the call left held: its own, a fetched one


class HungCalls:
    """Arms, hangs and abandons report calls, renews the locks of their jobs, and checks ``hung_calls``."""

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        checker: Checker,
        faults: FaultState,
        network: Network,
        ops: QueueOperations,
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.checker = checker
        self.faults = faults
        self.network = network
        self.ops = ops
        self.hangs: list[_Hang] = []
        f = cfg.faults
        self.excusable = any(getattr(f, k) > 0 for k in _DELAYING) or any(s.kind in _DELAYING for s in f.schedule)

    def arm(self, w: Worker, mode: str = "lost") -> bool:
        """Make the next report of ``w``'s current job hang; False if ``w`` has no report to hang."""
        ex = w.exec
        if ex is None or w.state != BUSY or ex.reporting:
            self.journal.emit(f"fault hang missed {w.id}: no report to hang")
            return False
        ex.hang = mode
        self.journal.emit(f"fault hang armed on {w.id}: its report of {ex.job.id} will hang")
        return True

    def send(self, call: Call) -> None:
        """Send a report: hung if one was armed for its execution (and faults still start), else as usual."""
        ex, w = call.ex, call.worker
        if ex is None or w is None or not ex.hang or self.faults.healed:
            self.network.send(call)
            return
        mode, ex.hang = ex.hang, ""
        now = self.q.now
        call.issued = now
        call.lost_by = "hang"
        ex.tag("hang")
        hang = _Hang(w, ex, call, now, ex.failed_calls, held=[ex])
        self.hangs.append(hang)
        bound = recovery_bound(self.cfg)
        self.faults.until(now + bound)
        self.journal.inject(
            "hang",
            f"{w.id} {call.kind} of {ex.job.id}:{ex.token} "
            + ("ran, its reply is lost" if mode == "ran" else "never reached Redis"),
        )
        if mode == "ran":
            self.network.run_unanswered(call)
            if call.kind == "complete" and call.extra and call.extra[0] is not None:
                hang.held.append(call.extra[0])  # the job it fetched: held, and its worker never knew
        deadline = call_deadline(self.cfg)
        if math.isfinite(deadline):
            self.q.after(deadline, self._abandon, hang)
        self.q.after(self.cfg.heartbeat_s, self._renew, hang)
        self.q.after(self.cfg.call_timeout + _EPS, self._check_worker, hang)
        self.q.after(bound + _EPS, self._check_jobs, hang)

    def _abandon(self, hang: _Hang) -> None:
        """The call deadline passed: the worker gives the call up, and retries its report on a new connection."""
        self.journal.emit(f"hang {hang.worker.id} abandons its {hang.call.kind} of {hang.ex.job.id} at its deadline")
        self.network.deliver(hang.call, TimedOut("the call deadline passed"))

    def _renew(self, hang: _Hang) -> None:
        """Renew the lock of a job being reported, over another connection, up to the renewal bound."""
        w, ex = hang.worker, hang.ex
        if w.exec is not ex or w.state != BUSY:
            return  # the report went through (or the worker gave the job up): nothing left to renew
        now = self.q.now
        if w.frozen_until > now:
            self.q.at(w.frozen_until, self._renew, hang)
            return
        if now >= hang.start + renewal_bound(self.cfg):
            self.journal.emit(f"hang {w.id} stops renewing {ex.job.id}: its report is stuck")
            return
        at = stamp(now, w)
        step = self.ops.extend([(ex.job.id, ex.token)], lock=self.cfg.lock, now=at)
        self.network.send(Call("settle-extend", w, step, at, ex))
        self.q.after(self.cfg.heartbeat_s, self._renew, hang)

    # -- the invariant ------------------------------------------------------------------------------

    def _still_held(self, hang: _Hang) -> list[Exec]:
        """The executions the hung call left holding their job that hold it still."""
        return [ex for ex in hang.held if ex.job.status is Status.HELD and ex.job.exec is ex]

    def _worker_back(self, hang: _Hang) -> bool:
        """True once the worker is no longer stuck in the call: it saw the call fail, or left the job, or is gone."""
        w, ex = hang.worker, hang.ex
        return ex.failed_calls > hang.failed_calls or w.exec is not ex or w.state in (DEAD, STOPPED)

    def finish(self) -> None:
        """The run ended: check the hangs whose bounds had not come yet, where the outcome is known."""
        for hang in self.hangs:
            if not hang.worker_checked and self._worker_back(hang):
                self._check_worker(hang)
            if not hang.jobs_checked and not self._still_held(hang):
                self._check_jobs(hang)

    def _check_worker(self, hang: _Hang) -> None:
        """The call deadline is over: the worker must have given the call up (or be gone)."""
        if hang.worker_checked:
            return
        hang.worker_checked = True
        w = hang.worker
        if self._worker_back(hang):
            self.checker.ok("hung_calls")
            return
        self._violated(
            f"worker {w.id} still waits on its {hang.call.kind} of job {hang.ex.job.id}, "
            f"{self.q.now - hang.start:.3f}s after it hung (call deadline {self.cfg.call_timeout:g}s)"
        )

    def _check_jobs(self, hang: _Hang) -> None:
        """The recovery bound is over: no job the call held may still be held by that execution."""
        if hang.jobs_checked:
            return
        hang.jobs_checked = True
        late = self._still_held(hang)
        if not late:
            self.checker.ok("hung_calls")
            self.journal.reach("hang")
            return
        for ex in late:
            self._violated(
                f"job {ex.job.id} still held under token {ex.token} by {ex.worker}, "
                f"{self.q.now - hang.start:.3f}s after its {hang.call.kind} hung "
                f"(bound {recovery_bound(self.cfg):g}s)"
            )

    def _violated(self, detail: str) -> None:
        if self.excusable:
            self.checker.excuse("hung_calls")
        else:
            self.checker.fail("hung_calls", detail)
