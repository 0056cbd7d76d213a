"""Running jobs in tests: ``drain`` (burst workers on the virtual clock) and ``perform_job``.

Both run the real :class:`jqc.Worker`, so handlers are called, timed out, retried and reported
exactly as in production; what they add is a :class:`~jqc.worker.JobObserver` that records every
run (and injects faults), and a driver for virtual time.

A drain goes in phases. Each phase runs a worker in burst mode (``run_until_empty``) until nothing
is waiting or active; the clock autojumps meanwhile, so a handler's timeout, a lock expiry or a
rate-limit pause passes in no time. Between phases, with ``advance_time``, the clock jumps straight
to the next delayed job's due time (a delay, a retry's backoff), skipping the idle worker's chores,
so a day's delay costs one jump rather than thousands of heartbeats. A crashed worker is replaced
by a new one, as a process supervisor would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeAlias, TypeVar, Unpack

from jqc.clock import Clock, VirtualClock, hold
from jqc.connection import Connection, connect
from jqc.engine.job import JobOptions
from jqc.engine.operations import OptionArgs
from jqc.engine.queue import AsyncQueue, Queue
from jqc.errors import InvalidOptionError
from jqc.testing.faults import Fault, Network, WorkerConnection
from jqc.testing.report import DrainError, DrainResult, JobReport, Run, add_stats, failure_message, plural
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.execute import AsyncHandler, Handler, Outcome, is_async
from jqc.worker.runtime import Worker, WorkerStats

__all__ = ["BurstWorker", "Handlers", "QueueLike", "adrain", "aperform_job", "drain", "perform_job"]

QueueLike: TypeAlias = Queue | AsyncQueue
Handlers: TypeAlias = Handler | Mapping[str, Handler]
P = ParamSpec("P")
R = TypeVar("R")

_RESERVED = ("observer",)
_PERFORMS = itertools.count(1)
_PERFORMER = "jqc.testing.perform_job"
_STOPPED_JOIN = 5.0  # seconds of wall time given to a drain's tasks to wind down after a timeout


def _no_running_loop(call: str, instead: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{call} blocks and cannot run inside an event loop; in async code use `{instead}`")


class _HoldingExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs plain-function handlers in threads, holding the virtual clock while one runs.

    So a handler's real duration never moves virtual time (nor expires its lock), and a test's
    times come out the same on every run. Must be submitted to from the event loop's thread (as
    ``loop.run_in_executor`` does).
    """

    def __init__(self, clock: Clock, max_workers: int) -> None:
        super().__init__(max_workers, thread_name_prefix="jqc-test")
        self._clock = clock
        self.pending: set[concurrent.futures.Future[Any]] = set()

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[R]:
        loop = asyncio.get_running_loop()
        held = hold(self._clock)
        held.__enter__()
        fut = super().submit(fn, *args, **kwargs)
        self.pending.add(fut)

        def release(done: concurrent.futures.Future[Any]) -> None:
            self.pending.discard(done)
            held.__exit__(None, None, None)

        def on_done(done: concurrent.futures.Future[Any]) -> None:
            try:
                loop.call_soon_threadsafe(release, done)
            except RuntimeError:  # the loop is gone (a handler thread outlived its drain): no race left
                with contextlib.suppress(Exception):
                    release(done)

        # Registered once run_in_executor has added its own callback (the one that wakes the awaiting
        # task), so that the hold ends only after that wake-up is scheduled: the thread may be
        # preempted between two callbacks, and autojump must not find the loop idle in between.
        loop.call_soon(fut.add_done_callback, on_done)
        return fut


def _busy(handlers: Handlers, clock: Clock) -> Handlers:
    """Async handlers wrapped to hold the virtual clock while they work (see VirtualClock.busy).

    Time then stands still while a handler awaits real I/O (a database, a test server), so its
    timeout and lock are judged on virtual time alone; it moves while the handler sleeps on the
    clock. Plain-function handlers get the same from the executor.
    """
    if not isinstance(clock, VirtualClock):
        return handlers

    def wrap(fn: Any) -> Any:
        if not callable(fn) or not is_async(fn):
            return fn
        handler: AsyncHandler = fn

        async def busy_handler(ctx: JobContext) -> Any:
            __tracebackhide__ = True  # (and left out of the history's tracebacks)
            with clock.busy():
                return await handler(ctx)

        return busy_handler

    if isinstance(handlers, Mapping):
        return {name: wrap(fn) for name, fn in handlers.items()}
    wrapped: Handlers = wrap(handlers)
    return wrapped


class _Session:
    """One drain (or perform_job): its workers, what they ran, and the faults to inject."""

    def __init__(
        self,
        queues: Sequence[QueueLike],
        handlers: Handlers,
        options: Mapping[str, Any],
        *,
        faults: Sequence[Fault] = (),
        max_runs: int = 10_000,
        stop_after: int | None = None,
    ) -> None:
        if not queues:
            raise InvalidOptionError("drain needs at least one queue")
        for name in _RESERVED:
            if name in options:
                raise InvalidOptionError(f"{name}= is set by jqc.testing itself")
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
            twin.ops = queue.ops  # the same call builder: the same clock, prefix and settings
            self.bases[queue.name] = queue
            self.twins.append(twin)
        self.proxies = list(proxies.values())
        self.clock = self.twins[0].clock
        self.handlers = _busy(handlers, self.clock)
        self.options: dict[str, Any] = {"concurrency": 1, "name": "jqc-test", **options}
        self.options.setdefault("rng", random.Random(0))  # one seeded stream for every worker: backoff jitter replays
        self.executor: _HoldingExecutor | None = None
        if "executor" not in self.options:
            concurrency = int(self.options["concurrency"]) if isinstance(self.options["concurrency"], int) else 1
            self.executor = _HoldingExecutor(self.clock, max(1, concurrency) * len(self.twins))
            self.options["executor"] = self.executor
        for fault in faults:
            if not isinstance(fault, Fault):
                raise InvalidOptionError(
                    f"faults are made by crash_worker(), expire_lock() or drop_connection(), not {fault!r}"
                )
        self.faults = list(faults)
        self.hits = [0] * len(self.faults)  # runs of matching jobs seen, per fault
        self.fired = [False] * len(self.faults)
        self.max_runs = max_runs
        self.stop_after = stop_after

        self.runs: list[Run] = []
        self.jobs: dict[tuple[str, str], tuple[str, Any]] = {}  # (queue, id) -> (name, data), by first run
        self.active: dict[tuple[str, str, int], int] = {}  # (queue, id, token) -> index in runs
        self.armed: dict[tuple[str, str, int], list[int]] = {}  # faults to inject when the run ends
        self.timers: dict[tuple[str, str, int], list[asyncio.Task[None]]] = {}
        self.tasks: set[asyncio.Future[Any]] = set()
        self.workers: list[Worker] = []
        self.kill_task: asyncio.Future[None] | None = None
        self.stopping = False
        self.overflow = False
        self.timed_out = False
        self.started_at = self.clock.now()

    # -- checks ----------------------------------------------------------------------------------

    def check_clock(self, advance_time: bool) -> None:
        if (advance_time or self.faults) and not isinstance(self.clock, VirtualClock):
            raise InvalidOptionError(
                "advancing time and injecting faults need queues on a jqc.VirtualClock: use the jqc_clock "
                "fixture (jqc_connection runs on it) or jqc.connect(clock=jqc.VirtualClock()); with "
                "advance_time=False a drain runs only the jobs due now, in real time"
            )

    # -- the JobObserver protocol ----------------------------------------------------------------

    async def started(self, worker: Worker, ctx: JobContext | SyncJobContext) -> None:
        key = (ctx.queue, ctx.id, ctx.token)
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
        if len(self.runs) > self.max_runs:
            self.overflow = True
            self._stop(worker)
        for i, fault in enumerate(self.faults):
            if self.fired[i] or not fault.matches(ctx.name, ctx.id):
                continue
            self.hits[i] += 1
            if self.hits[i] != fault.run:
                continue
            if fault.at == "start":
                await self._inject(i, worker, ctx, index, blocking=True)
            elif fault.at == "end":
                self.armed.setdefault(key, []).append(i)
            else:
                timer = asyncio.ensure_future(self._timer(i, float(fault.at), worker, ctx, index))
                self.timers.setdefault(key, []).append(timer)
                self.tasks.add(timer)

    async def finished(self, worker: Worker, ctx: JobContext | SyncJobContext, outcome: Outcome) -> None:
        key = (ctx.queue, ctx.id, ctx.token)
        index = self.active.pop(key, None)
        for timer in self.timers.pop(key, []):
            timer.cancel()
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
        for i in self.armed.pop(key, []):
            await self._inject(i, worker, ctx, index, blocking=True)
        if self.stop_after is not None and len(self.runs) >= self.stop_after:
            self._stop(worker)

    # -- faults ----------------------------------------------------------------------------------

    async def _timer(self, i: int, after: float, worker: Worker, ctx: JobContext | SyncJobContext, index: int) -> None:
        await self.clock.sleep(after)
        if (ctx.queue, ctx.id, ctx.token) in self.active and worker.running:
            await self._inject(i, worker, ctx, index, blocking=False)

    async def _inject(
        self, i: int, worker: Worker, ctx: JobContext | SyncJobContext, index: int, *, blocking: bool
    ) -> None:
        fault = self.faults[i]
        self.fired[i] = True
        self.runs[index] = dataclasses.replace(self.runs[index], fault=fault.describe())
        if fault.kind == "crash":
            if self.kill_task is None:
                self.kill_task = asyncio.ensure_future(worker.kill())
            if blocking:  # the worker dies here: this task is cancelled, nothing is reported
                await asyncio.get_running_loop().create_future()
        elif fault.kind == "expire_lock":
            self._expire(ctx, worker)
        else:
            self.network.drop()
            restore = asyncio.ensure_future(self._restore(fault.duration))
            self.tasks.add(restore)

    def _expire(self, ctx: JobContext | SyncJobContext, worker: Worker) -> None:
        """Move the job's lock deadline into the past and let a stall check recover it.

        The deadline moves through a renewal stamped by a clock one second behind (what a lagging
        host would send), with the run's own token; then ``recover_stalled`` revokes the token. Both
        are sync calls, so no renewal of the worker's can slip in between.
        """
        base = self.bases[ctx.queue]
        now = self.clock.now()
        Queue(base.name, base.connection, clock=VirtualClock(now - 1.0)).extend([ctx.claimed], lock=0.001)
        current = Queue(base.name, base.connection)
        current.ops = base.ops
        current.recover_stalled(max_stalls=worker.max_stalls)

    async def _restore(self, after: float) -> None:
        try:
            await self.clock.sleep(after)
        finally:
            self.network.restore()

    def _stop(self, worker: Worker) -> None:
        self.stopping = True
        self.tasks.add(asyncio.ensure_future(worker.close()))

    # -- driving ---------------------------------------------------------------------------------

    async def run(self, *, advance_time: bool, wall_timeout: float | None) -> None:
        clock = self.clock
        previous = clock.autojump if isinstance(clock, VirtualClock) else None
        if isinstance(clock, VirtualClock):
            clock.autojump = True
        self.started_at = clock.now()
        try:
            task = asyncio.ensure_future(self._drive(advance_time))
            done, _ = await asyncio.wait({task}, timeout=wall_timeout)
            if task in done:
                task.result()
                return
            self.timed_out = self.stopping = True
            for worker in self.workers:
                await worker.kill()
            task.cancel()
            await asyncio.wait({task}, timeout=_STOPPED_JOIN)
        finally:
            if isinstance(clock, VirtualClock) and previous is not None:
                clock.autojump = previous

    async def _drive(self, advance_time: bool) -> None:
        while not self.stopping:
            ran = len(self.runs)
            await self._phase()
            if self.stopping or not advance_time:
                return
            due = await self._next_due()
            if due is None or (due <= self.clock.now() and len(self.runs) == ran):
                return
            if due > self.clock.now() and isinstance(self.clock, VirtualClock):
                self.clock.move_to(due)

    async def _phase(self) -> None:
        """Run workers in burst mode until nothing is waiting or active (a crashed one is replaced)."""
        while True:
            worker = Worker(self.twins, self.handlers, observer=self, **self.options)
            self.workers.append(worker)
            await worker.run_until_empty(delayed=False)
            if self.kill_task is not None:
                killing, self.kill_task = self.kill_task, None
                await killing
                if not self.stopping:
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

    async def report(self, wall_timeout: float | None) -> DrainResult:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.network.down = 0  # (an outage still on when the drain ended is over)
        if self.executor is not None and self.executor.pending:
            # A handler thread the worker gave up on (a lost lock) may still be running: let it end,
            # so it cannot act after the test has looked.
            waits = [asyncio.wrap_future(f) for f in self.executor.pending]
            await asyncio.wait(waits, timeout=wall_timeout)
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
        return DrainResult(
            jobs=tuple(reports),
            stats=stats,
            started_at=self.started_at,
            finished_at=self.clock.now(),
            faults=tuple(fault.describe() for fault, fired in zip(self.faults, self.fired, strict=True) if fired),
        )

    def unfired(self) -> list[Fault]:
        return [fault for fault, fired in zip(self.faults, self.fired, strict=True) if not fired]

    async def close(self) -> None:
        for proxy in self.proxies:
            await proxy.aclose()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def base_connections(self) -> list[Connection]:
        return [proxy.base for proxy in self.proxies]


def _queues(queues: QueueLike | Iterable[QueueLike]) -> list[QueueLike]:
    if isinstance(queues, (Queue, AsyncQueue)):
        return [queues]
    return list(queues)


class BurstWorker:
    """A :class:`jqc.Worker` for tests: runs the queues' jobs in burst mode on their virtual clock.

    ``worker_options`` are :class:`jqc.Worker` options (``concurrency`` defaults to 1 here, so jobs
    run one at a time in queue order; ``rng`` to a seeded ``random.Random`` so backoff jitter
    replays). :meth:`run` (sync tests) and :meth:`arun` (async tests) drain the queues like
    :func:`drain`, and may be called again; :attr:`last` is the last run's result.
    """

    def __init__(self, queues: QueueLike | Sequence[QueueLike], handlers: Handlers, **worker_options: Any) -> None:
        self.queues = _queues(queues)
        if not self.queues:
            raise InvalidOptionError("a worker needs at least one queue")
        self.handlers = handlers
        self.worker_options = worker_options
        self.last: DrainResult | None = None

    def __repr__(self) -> str:
        return f"BurstWorker({[q.name for q in self.queues]!r})"

    async def arun(
        self,
        *,
        advance_time: bool = True,
        raise_on_failure: bool = True,
        faults: Sequence[Fault] = (),
        max_runs: int = 10_000,
        wall_timeout: float | None = 60.0,
    ) -> DrainResult:
        """Run every due job (and, with ``advance_time``, every delayed one and every retry, moving
        virtual time to each due time) until nothing is left; see :func:`drain`."""
        __tracebackhide__ = True
        result, error = await self._drain(advance_time, raise_on_failure, faults, max_runs, wall_timeout)
        if error is not None:
            raise error
        return result

    def run(
        self,
        *,
        advance_time: bool = True,
        raise_on_failure: bool = True,
        faults: Sequence[Fault] = (),
        max_runs: int = 10_000,
        wall_timeout: float | None = 60.0,
    ) -> DrainResult:
        """:meth:`arun` for synchronous tests (it runs its own event loop)."""
        __tracebackhide__ = True
        _no_running_loop("BurstWorker.run() and drain()", "await worker.arun()` / `await adrain(...)")
        connections = {id(q.connection): q.connection for q in self.queues}.values()

        async def main() -> tuple[DrainResult, DrainError | None]:
            try:
                return await self._drain(advance_time, raise_on_failure, faults, max_runs, wall_timeout)
            finally:
                for connection in connections:  # clients that handlers opened on this loop die with it
                    await connection.aclose()

        result, error = asyncio.run(main())
        if error is not None:
            raise error  # from here, so that the traceback ends in the test, not in asyncio
        return result

    async def _drain(
        self,
        advance_time: bool,
        raise_on_failure: bool,
        faults: Sequence[Fault],
        max_runs: int,
        wall_timeout: float | None,
    ) -> tuple[DrainResult, DrainError | None]:
        session = _Session(self.queues, self.handlers, self.worker_options, faults=faults, max_runs=max_runs)
        session.check_clock(advance_time)
        try:
            await session.run(advance_time=advance_time, wall_timeout=wall_timeout)
            result = await session.report(wall_timeout)
        finally:
            await session.close()
        self.last = result
        return result, _verdict(session, result, self.queues, raise_on_failure, max_runs, wall_timeout)


def _verdict(
    session: _Session,
    result: DrainResult,
    queues: Sequence[QueueLike],
    raise_on_failure: bool,
    max_runs: int,
    wall_timeout: float | None,
) -> DrainError | None:
    """The error a drain ends with, if any."""
    names = ", ".join(repr(q.name) for q in queues)
    if session.timed_out:
        still = [f"{r.job_id} ({r.queue})" for r in session.runs if r.finished_at is None]
        return DrainError(
            failure_message(
                f"the drain of {names} did not finish within {wall_timeout:g} s of wall time "
                f"(a handler waiting for something that never comes?); runs not finished: "
                f"{', '.join(still) or 'none'}",
                tuple(r for r in result.jobs if not r.succeeded),
                result,
            ),
            result=result,
        )
    if session.overflow:
        return DrainError(
            f"the drain of {names} stopped after max_runs={max_runs} runs: jobs keep coming "
            f"(a job that enqueues itself?)\n\n{result.summary()}",
            result=result,
        )
    missed = session.unfired()
    if missed:
        ran = ", ".join(f"{r.name!r} ({plural(len(r.runs), 'run')})" for r in result.jobs) or "no job"
        return DrainError(
            f"fault(s) never injected: {', '.join(f.describe() for f in missed)}; no matching run "
            f"(or it ended before the fault's time). The drain ran: {ran}",
            result=result,
        )
    if raise_on_failure and result.failed:
        if len(result.jobs) == 1:
            headline = f"the job drained from {names} failed"
        else:
            headline = f"{len(result.failed)} of the {len(result.jobs)} jobs drained from {names} failed"
        return DrainError(
            failure_message(headline + " (pass raise_on_failure=False to inspect instead):", result.failed, result),
            result=result,
            reports=result.failed,
        )
    return None


async def adrain(
    queues: QueueLike | Sequence[QueueLike],
    handlers: Handlers,
    *,
    advance_time: bool = True,
    raise_on_failure: bool = True,
    faults: Sequence[Fault] = (),
    max_runs: int = 10_000,
    wall_timeout: float | None = 60.0,
    **worker_options: Any,
) -> DrainResult:
    """:func:`drain` for async tests."""
    __tracebackhide__ = True
    return await BurstWorker(queues, handlers, **worker_options).arun(
        advance_time=advance_time,
        raise_on_failure=raise_on_failure,
        faults=faults,
        max_runs=max_runs,
        wall_timeout=wall_timeout,
    )


def drain(
    queues: QueueLike | Sequence[QueueLike],
    handlers: Handlers,
    *,
    advance_time: bool = True,
    raise_on_failure: bool = True,
    faults: Sequence[Fault] = (),
    max_runs: int = 10_000,
    wall_timeout: float | None = 60.0,
    **worker_options: Any,
) -> DrainResult:
    """Run every job of ``queues`` with ``handlers`` until nothing is left, and report each one.

    ``handlers`` is a handler or a mapping of job names to handlers, as for :class:`jqc.Worker`.
    With ``advance_time`` (the default) virtual time moves to each delayed job's due time, through
    delays, backoff and retries, until no job is waiting, delayed or active; without it only the
    jobs due now run (time still passes while a run waits on the clock: a timeout, a rate limit).
    With ``raise_on_failure`` (the default) a :class:`DrainError` tells the history of every job
    that failed (failed for good, or had a failed attempt and did not complete). ``faults`` (from
    :func:`crash_worker`, :func:`expire_lock`, :func:`drop_connection`) are injected into the runs
    they match. ``max_runs`` and ``wall_timeout`` (seconds of real time) stop a drain that would not
    end. Other keyword arguments are :class:`jqc.Worker` options. Returns a :class:`DrainResult`.
    """
    __tracebackhide__ = True
    return BurstWorker(queues, handlers, **worker_options).run(
        advance_time=advance_time,
        raise_on_failure=raise_on_failure,
        faults=faults,
        max_runs=max_runs,
        wall_timeout=wall_timeout,
    )


async def aperform_job(
    handler: Handler,
    data: Any = None,
    *,
    name: str = "job",
    attempt: int = 1,
    connection: Connection | None = None,
    clock: VirtualClock | None = None,
    raise_on_failure: bool = True,
    worker_options: Mapping[str, Any] | None = None,
    **options: Unpack[OptionArgs],
) -> JobReport:
    """:func:`perform_job` for async tests."""
    __tracebackhide__ = True
    report, error = await _perform(
        handler, data, name, attempt, connection, clock, raise_on_failure, worker_options, options
    )
    if error is not None:
        raise error
    assert report is not None
    return report


def perform_job(
    handler: Handler,
    data: Any = None,
    *,
    name: str = "job",
    attempt: int = 1,
    connection: Connection | None = None,
    clock: VirtualClock | None = None,
    raise_on_failure: bool = True,
    worker_options: Mapping[str, Any] | None = None,
    **options: Unpack[OptionArgs],
) -> JobReport:
    """Run ``handler`` once on a job with ``data``, as a worker would, and report what happened.

    The job (named ``name``, with the given job ``options``) is added to a fresh queue and run by a
    real :class:`jqc.Worker`, so the handler gets a real job context: ``ctx.attempt`` is
    ``attempt`` (earlier attempts are recorded as failed), ``ctx.progress()`` and ``ctx.log()``
    are stored, a ``timeout`` applies. It runs on ``connection`` (the queue is removed afterwards)
    or on a private embedded one with ``clock`` (a new :class:`jqc.VirtualClock` if None).

    Returns the :class:`JobReport` (``.result``, ``.state``, ``.progress``, ``.logs``...). If the
    job does not complete and ``raise_on_failure`` is set, the handler's exception is raised
    again (``jqc.Retry``, ``jqc.Fail`` and ``jqc.RateLimited`` included) with the job's history as
    a note, or a :class:`DrainError` when the handler raised nothing.
    """
    __tracebackhide__ = True
    _no_running_loop("perform_job()", "await aperform_job(...)")

    async def main() -> tuple[JobReport | None, BaseException | None]:
        try:
            return await _perform(
                handler, data, name, attempt, connection, clock, raise_on_failure, worker_options, options
            )
        finally:
            if connection is not None:
                await connection.aclose()

    report, error = asyncio.run(main())
    if error is not None:
        raise error  # from here, so that the traceback goes from the test to the handler
    assert report is not None
    return report


async def _perform(
    handler: Handler,
    data: Any,
    name: str,
    attempt: int,
    connection: Connection | None,
    clock: VirtualClock | None,
    raise_on_failure: bool,
    worker_options: Mapping[str, Any] | None,
    options: OptionArgs,
) -> tuple[JobReport | None, BaseException | None]:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise InvalidOptionError(f"attempt counts from 1, not {attempt!r}")
    attempts = options.get("attempts")
    if attempts is None:
        options["attempts"] = attempt
    elif isinstance(attempts, int) and attempt > attempts:
        raise InvalidOptionError(f"attempt {attempt} is past the job's attempts={attempts}")
    options["delay"] = 0.0  # performed now, whatever its delay
    job_options = JobOptions(**options)
    if connection is not None and clock is not None:
        raise InvalidOptionError("pass clock= or connection= (which has its clock), not both")
    conn = connection if connection is not None else connect(clock=clock or VirtualClock())
    queue = conn.async_queue(f"jqc-perform-{next(_PERFORMS)}")
    try:
        await queue.add(name, data, job_options)
        for made in range(1, attempt):  # the attempts before this one failed
            claimed = (await queue.claim(_PERFORMER, lock=60.0)).jobs[0]
            await queue.fail(claimed, f"attempt {made} failed (made up by perform_job)", delay=0.0, worker=_PERFORMER)
        session = _Session([queue], handler, dict(worker_options or {}), stop_after=1, max_runs=1)
        try:
            await session.run(advance_time=False, wall_timeout=60.0)
            result = await session.report(60.0)
        finally:
            await session.close()
    finally:
        if connection is None:
            await conn.aclose()
            conn.close()
        else:
            await queue.obliterate(force=True)
    if session.timed_out or not result.jobs:
        return None, DrainError(
            "perform_job: the handler did not finish within 60 s of wall time"
            if session.timed_out
            else "perform_job: the job did not run",
            result=result,
        )
    report = result.jobs[0]
    if not raise_on_failure or report.succeeded:
        return report, None
    message = failure_message("perform_job: the job did not complete", (report,))
    error = report.runs[-1].error if report.runs else None
    if error is None:
        return report, DrainError(message, result=result, reports=(report,))
    error.add_note(message)
    return report, error
