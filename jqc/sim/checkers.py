"""What the simulator knows for sure (the model), and the invariants checked against it.

The simulator sees every engine reply as it really was, even one a partition kept from its
worker, so the model tracks the truth: which token holds each job, when each lock expires (in
the stamps the engine compared), which executions of a job ran and what faults touched them.
Each invariant counts how often it was checked and violated; a violation keeps a short example
(with the event that caused it) for the report.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["INVARIANTS", "Checker", "Exec", "Invariant", "JobRecord", "Status"]

#: Invariant name -> what it asserts (shown in reports).
INVARIANTS: dict[str, str] = {
    "single_holder": "a job is never held under two valid tokens, and only waiting jobs are claimed",
    "token_fencing": "a write about a job is accepted exactly when it carries the job's current token",
    "lock_expiry": "the stall check only takes jobs whose lock deadline has passed on its clock",
    "total_queue": "every acknowledged add ends completed, dead-lettered or pending; nothing else appears",
    "duplicates_traced": "every duplicate execution follows an injected fault",
    "max_attempts": "failed attempts never exceed the job's maximum",
    "not_before_due": "no job is claimed before its delay or backoff is due on some claimer's clock",
    "rate_limit": "no more jobs are claimed in one rate window than the limit",
    "liveness": "after the faults heal, every job finishes within the stated bound",
    "failover": "a promoted replica keeps each job in one container its state agrees with, only jobs that were "
    "added and tokens that were handed out, and every job stored before its copy; what it lost is counted",
    "hung_calls": "a call that never returns is abandoned at the worker's call deadline, and every job it held "
    "is recovered within lock + stall interval + min(lock, deadline + retry backoff)",
    "schedule_ticks": "every schedule tick adds at most one job, and ticks go unfired only as the schedule's missed "
    "and overlap policies allow",
    "littles_law": "time-averaged counts equal arrival rate times mean times (L = lambda W, Lq = lambda Wq)",
}


class Status(enum.Enum):
    PENDING = "pending"  # waiting, prioritized or delayed
    HELD = "held"
    COMPLETED = "completed"
    DEAD = "dead"  # failed for good and dead-lettered
    DROPPED = "dropped"  # Redis lost it in a restart without persistence
    LOST = "lost with failover"  # its acknowledged add was in the writes a failover lost


@dataclass(slots=True, eq=False)
class Exec:
    """One execution of a job: from a claim until it is concluded (or abandoned)."""

    job: JobRecord
    token: int
    worker: str
    start: float
    deadline: int  # lock deadline in engine stamps (ms)
    renewed: float  # true time at which the current deadline was stamped, plus the lock = true expiry
    tags: dict[str, None] = field(default_factory=dict)
    concluded: bool = False
    failed_calls: int = 0
    finish_at: float = 0.0
    outcome: str = "ok"
    service: float = 0.0
    report_pause: float = 0.0
    reporting: bool = False
    hang: str = ""  # a hang armed for its report: "ran" (only the reply is lost) or "lost" (nor the request)
    slot: int = -1
    claimed: Any = None
    stamp: int = 0  # the claim's stamp (ms): the job's 'started at' while this execution holds it

    def tag(self, name: str) -> None:
        self.tags[name] = None


@dataclass(slots=True, eq=False)
class JobRecord:
    """The simulator's knowledge of one job it added."""

    id: str
    cls: int
    entered: float  # true time the add ran
    ready: float  # entered + delay
    attempts: int
    due: int = 0  # engine stamp (ms) before which the job may not be claimed
    status: Status = Status.PENDING
    token: int = 0  # current valid token while HELD
    exec: Exec | None = None  # the execution holding the current token
    stalled: Exec | None = None  # an execution the stall check took the job from
    first_start: float | None = None
    finished: float | None = None
    failures: int = 0
    executions: int = 0
    duplicates: int = 0
    record_dropped: bool = False
    measured: bool = True
    service: float = -1.0  # the first attempt's handler time


@dataclass(slots=True)
class Invariant:
    name: str
    checked: int = 0
    violations: int = 0
    excused: int = 0
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        out = {"checked": self.checked, "violations": self.violations}
        if self.excused:
            out["excused"] = self.excused
        return out


class Checker:
    """The invariants of one run and their counters."""

    def __init__(self, *, where: Callable[[], str], max_examples: int = 10) -> None:
        self.inv = {name: Invariant(name) for name in INVARIANTS}
        self._where = where
        self._max_examples = max_examples

    def ok(self, name: str, n: int = 1) -> None:
        self.inv[name].checked += n

    def fail(self, name: str, detail: str) -> None:
        inv = self.inv[name]
        inv.checked += 1
        inv.violations += 1
        if len(inv.examples) < self._max_examples:
            inv.examples.append(f"{detail} [{self._where()}]")

    def excuse(self, name: str) -> None:
        inv = self.inv[name]
        inv.checked += 1
        inv.excused += 1

    @property
    def violations(self) -> int:
        return sum(i.violations for i in self.inv.values())

    def first_violation(self) -> str | None:
        for inv in self.inv.values():
            if inv.examples:
                return f"{inv.name}: {inv.examples[0]}"
        return None

    # -- final total-queue check -------------------------------------------------------------------

    def total_queue(
        self, jobs: Iterable[JobRecord], containers: dict[str, list[str]], *, keep_completed: bool
    ) -> dict[str, int]:
        """Compare the final contents of every container with the model (Jepsen's total-queue check).

        Returns counts: completed, dead_lettered, pending, dropped, lost_with_failover (counted apart:
        a failover took them, see :mod:`~jqc.sim.failover`), lost (an acknowledged job that should be
        stored but is not), unexpected (stored but never added), misplaced.
        """
        where: dict[str, list[str]] = {}
        for name in ("wait", "prio", "delayed", "active", "completed", "failed", "dlq"):
            for job_id in containers.get(name, []):
                where.setdefault(job_id, []).append(name)
        out = dict(
            completed=0, dead_lettered=0, pending=0, dropped=0, lost_with_failover=0, lost=0, unexpected=0, misplaced=0
        )
        known: set[str] = set()
        for job in jobs:
            known.add(job.id)
            found = where.get(job.id, [])
            if job.status is Status.COMPLETED:
                out["completed"] += 1
                expected: tuple[list[str], ...] = (
                    ([], ["completed"]) if (not keep_completed or job.record_dropped) else (["completed"],)
                )
            elif job.status is Status.DEAD:
                out["dead_lettered"] += 1
                expected = (["failed", "dlq"],) if not job.record_dropped else ([], ["failed", "dlq"])
            elif job.status is Status.DROPPED:
                out["dropped"] += 1
                expected = ([],)
            elif job.status is Status.LOST:
                out["lost_with_failover"] += 1
                expected = ([],)
            else:
                out["pending"] += 1
                expected = (["wait"], ["prio"], ["delayed"], ["active"])
            if found in expected:
                self.ok("total_queue")
            elif not found:
                out["lost"] += 1
                self.fail("total_queue", f"job {job.id} ({job.status.value}) is in no container: lost")
            else:
                out["misplaced"] += 1
                self.fail("total_queue", f"job {job.id} is {job.status.value} but stored in {'+'.join(found)}")
        for job_id, found in where.items():
            if job_id not in known:
                out["unexpected"] += 1
                self.fail("total_queue", f"job {job_id} in {'+'.join(found)} was never added")
        return out

    # -- end of run ----------------------------------------------------------------------------------

    def liveness(self, jobs: Iterable[JobRecord], bound: float) -> None:
        """Every job must be finished (completed, dead-lettered, dropped by Redis or lost with failover)."""
        for job in jobs:
            if job.status in (Status.PENDING, Status.HELD):
                self.fail("liveness", f"job {job.id} still {job.status.value} {bound:.0f}s after healing")
            else:
                self.ok("liveness")

    def littles_law(
        self, jobs: Iterable[JobRecord], end: float, area_system: float, area_queue: float
    ) -> dict[str, float]:
        """Little's law on the sample path: time integrals of the counts against per-job sums.

        ``area_system`` is the integral over [0, end] of the number of jobs added and not yet
        finished, ``area_queue`` of those not yet started; each must equal the sum over jobs of
        the time each spent so (cut at ``end``), which is L = lambda W and Lq = lambda Wq.
        """
        done = [(j.entered, j.first_start, j.finished) for j in jobs]
        sys_sum = math.fsum(min(f if f is not None else end, end) - e for e, _, f in done)
        q_sum = math.fsum(min(s if s is not None else (f if f is not None else end), end) - e for e, s, f in done)
        n = len(done)
        span = end if end > 0 else 1.0
        lam = n / span
        for area, total, what in ((area_system, sys_sum, "L"), (area_queue, q_sum, "Lq")):
            if abs(area - total) <= 1e-6 * max(1.0, abs(total)):
                self.ok("littles_law")
            else:
                self.fail("littles_law", f"{what}: time integral {area:.9g} but per-job sum {total:.9g}")
        return {
            "lambda": lam,
            "L": area_system / span,
            "lambda_W": lam * (sys_sum / n if n else 0.0),
            "Lq": area_queue / span,
            "lambda_Wq": lam * (q_sum / n if n else 0.0),
        }
