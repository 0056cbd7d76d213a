"""One drain (or perform_job, or inline run): its workers, what they ran, its limits and its faults.

A drain goes in phases. Each phase runs a real :class:`jqc.Worker` in burst mode
(``run_until_empty``) until nothing is waiting or active; the clock autojumps meanwhile, so a
handler's timeout, a lock expiry or a rate-limit pause passes in no time. Between phases, with
``advance_time``, the clock jumps straight to the next delayed job's due time (a delay, a retry's
backoff), skipping the idle worker's chores, so a day's delay costs one jump rather than thousands
of heartbeats. A crashed worker is replaced by a new one, as a process supervisor would.

The session is the workers' :class:`~jqc.worker.JobObserver`: it records every run, injects the
faults (:mod:`jqc.testing.injection`) and, at the start of each run, checks the drain's limits
(:mod:`jqc.testing.limits`). A run past a limit is held back: its handler is not called and the job
is handed back to waiting without counting an attempt, so ``max_runs=n`` runs at most n handlers.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import dataclasses
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from jqc.clock import VirtualClock
from jqc.connection import Connection
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.job import Job, JobState
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError
from jqc.testing.faults import Fault, Network, WorkerConnection
from jqc.testing.handlers import Handlers, HoldingExecutor, Withheld, prepare
from jqc.testing.injection import Injector, RunKey
from jqc.testing.limits import Limits, holds
from jqc.testing.report import DrainResult, JobReport, Run, add_stats
from jqc.testing.seeding import current_rng
from jqc.testing.ticks import Ticks
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.execute import Kind, Outcome
from jqc.worker.jobs import HandlerTable
from jqc.worker.options import WorkerOptions
from jqc.worker.runtime import Worker, WorkerStats

__all__ = ["RUNNING_ON", "QueueLike", "Session", "check_worker_options"]

QueueLike: TypeAlias = Queue | AsyncQueue

_RESERVED = ("observer",)
_STOPPED_JOIN = 5.0  # seconds of wall time given to a drain's tasks to wind down after a timeout
_PENDING_SHOWN = 20
_SNAP = 0.001  # an `until` stop this close after the time snaps back to it (the stop timer's last ulp)
_ATTEMPT_ENDS = (Kind.ERROR, Kind.TIMEOUT, Kind.RETRY)

#: The clocks of the sessions running in this context (their handlers, in threads too, see them).
RUNNING_ON: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "jqc_testing_running_on", default=frozenset()
)


def check_worker_options(options: Mapping[str, Any]) -> None:
    """Refuse unknown :class:`jqc.Worker` options and bad values before anything runs."""
    known = [name for name in inspect.signature(Worker).parameters if name not in ("queues", "handler")]
    for name in _RESERVED:
        if name in options:
            raise InvalidOptionError(f"{name}= is set by jqc.testing itself")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InvalidOptionError(f"unknown worker option(s) {', '.join(unknown)}; jqc.Worker takes {', '.join(known)}")
    tunables = {f.name for f in dataclasses.fields(WorkerOptions)}
    if "options" not in options:
        WorkerOptions(**{name: value for name, value in options.items() if name in tunables})


class Session:
    """One drain: queues, handlers and worker options, its faults and its limits."""

    def __init__(
        self,
        queues: Sequence[QueueLike],
        handlers: Handlers,
        options: Mapping[str, Any],
        *,
        faults: Sequence[Fault] = (),
        limits: Limits | None = None,
        stop_after: int | None = None,
        target: tuple[str, str] | None = None,
        clock: VirtualClock | None = None,
    ) -> None:
        if not queues:
            raise InvalidOptionError("drain needs at least one queue")
        check_worker_options(options)
        self.network = Network()
        proxies: dict[int, WorkerConnection] = {}
        self.bases: dict[str, QueueLike] = {}
        self.twins: list[AsyncQueue] = []
        for queue in queues:
            if not isinstance(queue, (Queue, AsyncQueue)):
                raise InvalidOptionError(f"drain runs jqc.Queue or jqc.AsyncQueue objects, not {queue!r}")
            if queue.name in self.bases:
                raise InvalidOptionError(f"queue {queue.name!r} is listed twice")
            proxy = proxies.setdefault(id(queue.connection), WorkerConnection.of(queue.connection, self.network))
            twin = AsyncQueue(queue.name, proxy)
            if clock is None:
                twin.ops = queue.ops  # the same call builder: the same clock, prefix and settings
            else:
                twin.ops = copy.copy(queue.ops)  # the same settings on a clock of the run's own
                twin.ops.clock = clock
            self.bases[queue.name] = queue
            self.twins.append(twin)
        HandlerTable(handlers)  # bad handlers are refused before anything runs
        self.proxies = list(proxies.values())
        self.clock = self.twins[0].clock
        self.limits = limits or Limits()
        self.handlers = prepare(handlers, self.clock, self)
        # The drain fires schedule ticks itself (jqc.testing.ticks), its workers do not.
        self.options: dict[str, Any] = {"concurrency": 1, "name": "jqc-test", "schedule_interval": None, **options}
        self.options.setdefault("rng", current_rng())  # one seeded stream: backoff jitter replays
        self.executor: HoldingExecutor | None = None
        if "executor" not in self.options:
            concurrency = int(self.options["concurrency"]) if isinstance(self.options["concurrency"], int) else 1
            self.executor = HoldingExecutor(self.clock, max(1, concurrency) * len(self.twins))
            self.options["executor"] = self.executor
        self.injector = Injector(self, faults)
        self.ticks = Ticks(self.twins)
        self.stop_after = stop_after
        self.target = target

        self.runs: list[Run] = []
        self.jobs: dict[tuple[str, str], tuple[str, Any]] = {}  # (queue, id) -> (name, data), by first run
        self.active: dict[RunKey, int] = {}  # run -> index in runs
        self.withheld_keys: set[RunKey] = set()
        self.withheld_runs = 0
        self.finished_jobs: set[tuple[str, str]] = set()
        self.tasks: set[asyncio.Future[Any]] = set()
        self.workers: list[Worker] = []
        self.stopping = False
        self.overflow = False
        self.timed_out = False
        self.failure: BaseException | None = None  # an until= predicate that raised
        self.ended_by = "idle"
        self.started_at = self.clock.now()

    # -- checks ----------------------------------------------------------------------------------

    def check_clock(self, advance_time: bool) -> None:
        if (advance_time or self.injector.faults) and not isinstance(self.clock, VirtualClock):
            raise InvalidOptionError(
                "advancing time and injecting faults need queues on a jqc.VirtualClock: use the jqc_clock "
                "fixture (jqc_connection runs on it) or jqc.connect(clock=jqc.VirtualClock()); with "
                "advance_time=False a drain runs only the jobs due now, in real time"
            )

    def withheld(self, ctx: JobContext | SyncJobContext) -> bool:
        """The :class:`~jqc.testing.handlers.Gate`: True for a run held back at its start."""
        return (ctx.queue, ctx.id, ctx.token) in self.withheld_keys

    # -- the JobObserver protocol ----------------------------------------------------------------

    async def started(self, worker: Worker, ctx: JobContext | SyncJobContext) -> None:
        key = (ctx.queue, ctx.id, ctx.token)
        if await self._past_limit():
            self.withheld_keys.add(key)
            self._stop(worker)
            return
        self.jobs.setdefault((ctx.queue, ctx.id), (ctx.name, ctx.data))
        index = len(self.runs)
        self.runs.append(
            Run(
                queue=ctx.queue,
                job_id=ctx.id,
                attempt=ctx.attempt,
                token=ctx.token,
                worker=worker.id,
                started_at=self.clock.now(),
            )
        )
        self.active[key] = index
        await self.injector.run_started(worker, ctx, index)

    async def finished(self, worker: Worker, ctx: JobContext | SyncJobContext, outcome: Outcome) -> None:
        key = (ctx.queue, ctx.id, ctx.token)
        if key in self.withheld_keys and isinstance(outcome.error, Withheld):
            self.withheld_keys.discard(key)
            self.withheld_runs += 1
            return
        index = self.active.pop(key, None)
        self.injector.run_ended(key)
        if index is None:
            return
        self.runs[index] = dataclasses.replace(
            self.runs[index],
            finished_at=self.clock.now(),
            outcome=outcome.kind.value,
            result=outcome.result,
            reason=outcome.reason,
            traceback=outcome.traceback,
            error=outcome.error,
        )
        await self.injector.run_finished(worker, ctx, key, index)
        if self._finishes(ctx, outcome, self.runs[index]):
            self.finished_jobs.add((ctx.queue, ctx.id))
        jobs = self.limits.jobs
        if jobs is not None and len(self.finished_jobs) >= jobs:
            self.ended_by = "jobs"
            self._stop(worker)
        if self.stop_after is not None and len(self.runs) >= self.stop_after:
            self._stop(worker)
        if self.target is not None and (ctx.queue, ctx.id) == self.target:
            self._stop(worker)

    # -- limits ----------------------------------------------------------------------------------

    @staticmethod
    def _finishes(ctx: JobContext | SyncJobContext, outcome: Outcome, run: Run) -> bool:
        """True when this run ends its job for good: completed, or failed with no attempt left."""
        if run.fault is not None:
            return False
        if outcome.kind in (Kind.DONE, Kind.FAIL):
            return True
        return outcome.kind in _ATTEMPT_ENDS and ctx.attempt >= ctx.job.options.attempts

    async def _past_limit(self) -> bool:
        """Whether a run starting now is past one of the drain's limits (noting which)."""
        limits = self.limits
        if self.stopping:
            return True
        if len(self.runs) >= limits.max_runs:
            self.overflow, self.ended_by = True, "max_runs"
            return True
        if limits.jobs is not None and len(self.finished_jobs) >= limits.jobs:
            self.ended_by = "jobs"
            return True
        if limits.until_time is not None and self.clock.now() > limits.until_time:
            self.ended_by = "until"
            return True
        return await self._predicate_holds()

    async def _predicate_holds(self) -> bool:
        predicate = self.limits.until_true
        if predicate is None:
            return False
        try:
            if not await holds(predicate):
                return False
        except Exception as exc:
            self.failure = exc
        self.ended_by = "until"
        return True

    def _stop(self, worker: Worker) -> None:
        self.stopping = True
        self.tasks.add(asyncio.ensure_future(worker.close()))

    async def _until_timer(self, until: float) -> None:
        """Stop the drain's worker once the clock passes ``until`` (a pause, a lock expiry, a handler's sleep)."""
        await self.clock.sleep(math.nextafter(until, math.inf) - self.clock.now())
        self.ended_by = "until"
        if self.workers:
            self._stop(self.workers[-1])
        else:
            self.stopping = True

    # -- driving ---------------------------------------------------------------------------------

    async def run(self, *, advance_time: bool) -> None:
        clock = self.clock
        previous = clock.autojump if isinstance(clock, VirtualClock) else None
        if isinstance(clock, VirtualClock):
            clock.autojump = True
        self.started_at = clock.now()
        token = RUNNING_ON.set(RUNNING_ON.get() | {id(clock)})  # (copied into the tasks made below)
        try:
            task = asyncio.ensure_future(self._drive(advance_time))
            done, _ = await asyncio.wait({task}, timeout=self.limits.wall_timeout)
            if task in done:
                task.result()
                return
            self.timed_out = self.stopping = True
            self.ended_by = "wall_timeout"
            for worker in self.workers:
                await worker.kill()
            task.cancel()
            await asyncio.wait({task}, timeout=_STOPPED_JOIN)
        finally:
            RUNNING_ON.reset(token)
            if isinstance(clock, VirtualClock) and previous is not None:
                clock.autojump = previous

    async def _drive(self, advance_time: bool) -> None:
        until = self.limits.until_time
        if await self._predicate_holds():
            return
        timer = asyncio.ensure_future(self._until_timer(until)) if until is not None else None
        try:
            await self._phases(advance_time, until)
        finally:
            if timer is not None:
                timer.cancel()
                await asyncio.gather(timer, return_exceptions=True)
        if until is not None and self.ended_by == "until" and until < self.clock.now() <= until + _SNAP:
            assert isinstance(self.clock, VirtualClock)
            self.clock.move_to(until)  # (stopped by the timer, a hair past `until`: nothing ran since)

    async def _phases(self, advance_time: bool, until: float | None) -> None:
        while not self.stopping:
            ran = len(self.runs)
            ticked = await self.ticks.fire_past(self.limits.max_runs)
            await self._phase()
            if self.stopping or await self._predicate_holds():
                return
            if self.ticks.fired >= self.limits.max_runs:
                self.overflow, self.ended_by = True, "max_runs"
                return
            if ticked:
                continue
            if not advance_time:
                return
            due = await self._next_due()
            tick = await self.ticks.next_due(until)
            if tick is not None and (due is None or tick < due):
                due = tick
            now = self.clock.now()
            if until is not None and (due is None or due > until):
                if isinstance(self.clock, VirtualClock) and now < until:
                    self.clock.move_to(until)
                self.ended_by = "until"
                return
            if due is None or (due <= now and len(self.runs) == ran):
                return
            if due > now and isinstance(self.clock, VirtualClock):
                self.clock.move_to(due)

    async def _phase(self) -> None:
        """Run workers in burst mode until nothing is waiting or active (a crashed one is replaced)."""
        while True:
            worker = Worker(self.twins, self.handlers, observer=self, **self.options)
            self.workers.append(worker)
            await worker.run_until_empty(delayed=False)
            if await self.injector.after_phase() and not self.stopping:
                continue
            return

    async def _next_due(self) -> float | None:
        """The clock time at which the first delayed job of a queue that is not paused falls due."""
        due_ms: int | None = None
        for twin in self.twins:
            counts = await twin.counts()
            if counts.paused or not counts.delayed:
                continue
            page = await twin.list_jobs("delayed", 0, 1)
            if page.jobs:
                ms = round(page.jobs[0].ready_at * 1000)
                due_ms = ms if due_ms is None else min(due_ms, ms)
        if due_ms is None:
            return None
        when = due_ms / 1000.0
        while int(when * 1000) < due_ms:  # the scripts' whole-ms "now" must reach the due time
            when = math.nextafter(when, math.inf)
        return when

    # -- reporting -------------------------------------------------------------------------------

    async def report(self) -> DrainResult:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.injector.wind_down()
        if self.executor is not None and self.executor.pending:
            # A handler thread the worker gave up on (a lost lock) may still be running: let it end,
            # so it cannot act after the test has looked.
            waits = [asyncio.wrap_future(f) for f in self.executor.pending]
            await asyncio.wait(waits, timeout=self.limits.wall_timeout)
        by_name = {twin.name: twin for twin in self.twins}
        reports: list[JobReport] = []
        for (queue, job_id), (name, data) in self.jobs.items():
            twin = by_name[queue]
            reports.append(
                JobReport(
                    queue=queue,
                    id=job_id,
                    name=name,
                    data=data,
                    runs=tuple(run for run in self.runs if run.queue == queue and run.job_id == job_id),
                    job=await twin.get_job(job_id),
                    logs=tuple(await twin.job_logs(job_id)),
                    origin=self.started_at,
                )
            )
        stats = WorkerStats()
        for worker in self.workers:
            stats = add_stats(stats, worker.stats)
        stats = dataclasses.replace(stats, released=max(0, stats.released - self.withheld_runs))
        return DrainResult(
            jobs=tuple(reports),
            stats=stats,
            started_at=self.started_at,
            finished_at=self.clock.now(),
            faults=self.injector.fired_descriptions(),
            ended_by=self.ended_by,
            pending=await self._pending(),
        )

    async def _pending(self) -> tuple[Job, ...]:
        """The jobs still waiting, delayed or active in the drained queues (at most a few per queue)."""
        found: list[Job] = []
        for twin in self.twins:
            for state in (JobState.ACTIVE, JobState.WAITING, JobState.DELAYED):
                page = await twin.list_jobs(state.value, 0, _PENDING_SHOWN)
                found.extend(page.jobs)
        return tuple(found)

    async def close(self) -> None:
        for proxy in self.proxies:
            await proxy.aclose()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def base_connections(self) -> list[Connection]:
        return [proxy.base for proxy in self.proxies]
