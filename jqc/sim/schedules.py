"""Schedules in a simulated run: every live worker drives them, racing, and the ticks' jobs join
the workload.

``--schedule every=30,missed=all,overlap=allow`` (:class:`ScheduleLoad`) declares a schedule of the
run's queue at time 0. Every ``every / 4`` seconds, two live workers (picked at random) run a driver
pass each on their own clock, skew included, without the lease, so that the compare-and-set is
what keeps a tick to one job: the first reads and plans, the second runs a whole pass, then the
first sends its now stale fire. With the crash fault on, a driver sometimes dies between its read
and its write and never fires. Each tick's job is a job of the mix's first class.

The ``schedule_ticks`` invariant: the engine never reports a tick's job added twice; at the end,
every tick from the schedule's start to its next tick is fired or counted as skipped (none
vanishes), a fired tick's job is in the model, ``missed="all"`` skipped none as missed and
``overlap="allow"`` none as overlapping, and the schedule kept up (its next tick is the first
after the last pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jqc.clock import VIRTUAL_EPOCH, VirtualClock
from jqc.engine.calls import CommandCall, Op, ScriptCall, run_sync
from jqc.engine.operations import QueueOperations
from jqc.engine.ops_schedules import FireResult
from jqc.errors import InvalidOptionError
from jqc.sim.checkers import Checker, JobRecord
from jqc.sim.workers import stamp
from jqc.workflows import fire_due

if TYPE_CHECKING:  # (the run's parts import the config, which imports this module)
    from jqc.sim.dispatch import Dispatcher
    from jqc.sim.events import EventQueue, Journal
    from jqc.sim.state import FaultState, Model, ScalingStats, WorkerSlots

__all__ = ["ScheduleDrivers", "ScheduleLoad", "parse_schedule"]


@dataclass(frozen=True, slots=True)
class ScheduleLoad:
    """One schedule of a simulated run: a tick every ``every`` seconds, with its policies."""

    every: float = 30.0
    missed: str = "all"
    overlap: str = "allow"

    def __post_init__(self) -> None:
        if not self.every >= 1:
            raise InvalidOptionError(f"a simulated schedule ticks every 1 s or more, not {self.every!r}")
        if self.missed not in ("once", "all", "skip") or self.overlap not in ("allow", "skip"):
            raise InvalidOptionError(f"unknown schedule policy in {self.spec!r}")

    @property
    def spec(self) -> str:
        """The command-line form."""
        every = repr(float(self.every)).removesuffix(".0")
        return f"every={every},missed={self.missed},overlap={self.overlap}"


def parse_schedule(text: str) -> ScheduleLoad:
    """``every=30,missed=all,overlap=allow`` (any part may be left out)."""
    fields: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in ("every", "missed", "overlap"):
            raise InvalidOptionError(
                f"a schedule is every=SECONDS,missed=once|all|skip,overlap=allow|skip, not {text!r}"
            )
        try:
            fields[key] = float(value) if key == "every" else value
        except ValueError:
            raise InvalidOptionError(f"every must be a number of seconds, not {value!r}") from None
    return ScheduleLoad(**fields)


class ScheduleDrivers:
    """Declares the run's schedules and lets its workers race to fire them."""

    def __init__(
        self,
        loads: tuple[ScheduleLoad, ...],
        q: EventQueue,
        journal: Journal,
        checker: Checker,
        model: Model,
        slots: WorkerSlots,
        faults: FaultState,
        stats: ScalingStats,
        ops: QueueOperations,
        dispatch: Dispatcher,
        clock: VirtualClock,
        backend: Any,
        rand: Any,
        *,
        job: str,
        attempts: int,
        crash: float,
        data_may_vanish: bool,
    ) -> None:
        self.loads, self.q, self.journal, self.checker, self.model = loads, q, journal, checker, model
        self.slots, self.stats, self.ops, self.dispatch, self.clock = slots, stats, ops, dispatch, clock
        self.faults = faults
        self.backend, self.rand, self.job, self.attempts, self.crash = backend, rand, job, attempts, crash
        self.last_pass = 0.0
        self.data_may_vanish = data_may_vanish  # Redis may restart without its data

    def start(self) -> None:
        """Declare the schedules (at time 0) and the first driver round."""
        if not self.loads:
            return
        self.clock.move_to(VIRTUAL_EPOCH + self.q.now)
        for i, load in enumerate(self.loads):
            run_sync(
                self.backend,
                self.ops.schedule(f"s{i}", every=load.every, job=self.job, missed=load.missed, overlap=load.overlap,
                                  max_catch_up=1000, grace=load.every),
            )  # fmt: skip
        self.q.after(self._period(), self.round)

    def _period(self) -> float:
        return min(load.every for load in self.loads) / 4

    def round(self) -> None:
        """Two live workers drive at once: one plans, the other passes, then the first fires."""
        if self.model.arrivals_done:
            return
        running = self.slots.running()
        if running and not self.faults.down(self.q.now):
            first, second = self.rand.choice(running), self.rand.choice(running)
            stale = fire_due(self.ops, now=stamp(self.q.now, first))
            fire = self._read(stale)  # the first has read and planned ...
            self._run(fire_due(self.ops, now=stamp(self.q.now, second)))  # ... the second passes ...
            if fire is not None and self.rand.random() >= self.crash:  # ... (or the first died here)
                self._finish(stale, fire)  # ... and the first fires what it read
            self.last_pass = self.q.now
        self.q.after(self._period(), self.round)

    def _read(self, op: Op[Any]) -> ScriptCall[Any] | None:
        """Run a pass up to its first fire, which is returned unsent (None: the pass ended first)."""
        try:
            call = next(op)
            while not isinstance(call, ScriptCall):
                assert isinstance(call, CommandCall)  # (a pass reads with plain commands)
                call = op.send(run_sync(self.backend, call))
        except StopIteration as stop:
            self._record(stop.value.fired)
            return None
        return call

    def _finish(self, op: Op[Any], call: ScriptCall[Any]) -> None:
        """Send a pass's held-back fire, then run the rest of the pass."""
        step: Any = call
        try:
            while True:
                step = op.send(run_sync(self.backend, step))
        except StopIteration as stop:
            self._record(stop.value.fired)

    def _run(self, op: Op[Any]) -> None:
        self._record(run_sync(self.backend, op).fired)

    def _record(self, results: tuple[FireResult, ...]) -> None:
        now = self.q.now
        added = 0
        for result in results:
            for job_id in result.fired:
                if job_id in self.model.jobs:
                    self.checker.fail("schedule_ticks", f"tick job {job_id} of schedule {result.schedule} added twice")
                    continue
                self.checker.ok("schedule_ticks")
                rec = JobRecord(job_id, 0, now, now, self.attempts)
                self.model.enter(rec, now)
                self.stats.waiting(rec)
                self.journal.emit(f"tick {job_id}")
                added += 1
        if added:
            self.dispatch.hand_out(added)

    def check(self) -> None:
        """The end-of-run accounting of every schedule's ticks (see the module docstring)."""
        for i, load in enumerate(self.loads):
            name = f"s{i}"
            s = run_sync(self.backend, self.ops.get_schedule(name))
            if s is None and self.data_may_vanish:
                self.checker.excuse("schedule_ticks")
                continue
            if s is None or s.start is None or s.next_at is None:
                self.checker.fail("schedule_ticks", f"schedule {name} is gone or never fires again")
                continue
            ticks = round((s.next_at - s.start) / load.every) - 1  # from the first tick to next_at, exclusive
            jobs = [j for j in self.model.jobs if j.startswith(f"s:{name}:")]
            problems = []
            if len(jobs) != s.fired:
                problems.append(f"{len(jobs)} tick jobs in the model but {s.fired} fired by the engine's count")
            if s.fired + s.skipped_missed + s.skipped_overlap != ticks:
                problems.append(
                    f"{ticks} ticks up to the next one, but {s.fired} fired, {s.skipped_missed} skipped as missed "
                    f"and {s.skipped_overlap} as overlapping"
                )
            if load.missed == "all" and s.skipped_missed:
                problems.append(f"{s.skipped_missed} ticks skipped as missed under missed=all")
            if load.overlap == "allow" and s.skipped_overlap:
                problems.append(f"{s.skipped_overlap} ticks skipped as overlapping under overlap=allow")
            behind = VIRTUAL_EPOCH + self.last_pass - s.next_at
            if self.last_pass and behind > load.every + 1:
                problems.append(f"its next tick is {behind:.0f} s behind the last pass: it stopped firing")
            for problem in problems:
                self.checker.fail("schedule_ticks", f"schedule {name} ({load.spec}): {problem}")
            if not problems:
                self.checker.ok("schedule_ticks")
