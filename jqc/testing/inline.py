"""Inline mode: queues whose ``add`` runs the new job's handler at once, before returning.

For tests that exercise code which enqueues jobs and only care about what the jobs do, the way
Celery's eager mode and Oban's inline testing work. ``inline(queue, handlers)`` (or a connection,
whose queues are then all inline; or the ``@pytest.mark.jqc(inline=handlers)`` marker, which makes
``jqc_connection`` one) returns queues on which ``add`` stores the job as usual, then runs it with
a real :class:`jqc.Worker`, once, and returns the job as stored afterwards: completed with its
``result``, or waiting out a retry, or failed. The handler gets the same context and its outcome
means the same as in production (``jqc.Retry``, ``jqc.Fail``, a timeout, a result JSON cannot
carry); with ``raise_on_failure`` (the default) a run that did not complete raises the handler's
exception from ``add`` (with the job's history as a note), as :func:`jqc.testing.perform_job`
does. Jobs a handler adds to an inline queue run inline too, before its ``add`` returns.

What it does not model: concurrency (one job runs at a time, in the caller's ``add``), delays (a
delayed job runs at once), retries (a failed attempt schedules the next as usual, but only a drain
runs it), stalls and lost locks (no fault injection) and a rate limit's wait. Time passes as in a
drain: not while a handler works, only while it waits on the clock (a timeout fires on the virtual
clock, which autojumps). A job added by a handler that a drain or another inline run is running
gets a virtual clock of its own (starting at the clock's time), since that clock is being driven.
A paused queue keeps its jobs. Re-adding an existing job id returns that job unchanged and runs
nothing, unless it is still waiting (then it runs now). Jobs already due in the queue when ``add``
is called run first, in queue order, as a worker would take them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
from collections.abc import Iterable
from typing import Any, Unpack, overload

from jqc.clock import VirtualClock
from jqc.connection import Connection
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.job import Job, JobOptions, JobState, NewJob
from jqc.engine.operations import OptionArgs
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError
from jqc.testing.handlers import Handlers
from jqc.testing.limits import Limits
from jqc.testing.report import DrainError, JobReport, failure_message
from jqc.testing.session import RUNNING_ON, Session, check_worker_options
from jqc.worker.jobs import HandlerTable

__all__ = ["InlineAsyncQueue", "InlineConnection", "InlineQueue", "InlineRunner", "inline"]

_WALL_TIMEOUT = 60.0
_RUNNABLE = (JobState.WAITING, JobState.DELAYED)


class InlineRunner:
    """Runs the jobs inline queues add: the handlers, the worker options, whether failures raise."""

    def __init__(self, handlers: Handlers, *, raise_on_failure: bool = True, **worker_options: Any) -> None:
        HandlerTable(handlers)  # refused now rather than at the first add
        if not isinstance(raise_on_failure, bool):
            raise InvalidOptionError(f"raise_on_failure must be a bool, not {raise_on_failure!r}")
        for name in ("until", "jobs", "faults", "advance_time", "max_runs"):
            if name in worker_options:
                raise InvalidOptionError(f"{name}= is a drain's argument; an inline queue runs each added job once")
        check_worker_options(worker_options)
        self.handlers = handlers
        self.raise_on_failure = raise_on_failure
        self.worker_options = worker_options

    async def arun(self, queue: Queue | AsyncQueue, job: Job) -> Job:
        """Run ``job`` (just added to ``queue``) now; return it as stored afterwards, or raise its failure."""
        __tracebackhide__ = True
        if job.state not in _RUNNABLE:
            return job  # an existing job id: add returned it unchanged
        if job.state is JobState.DELAYED:
            if isinstance(queue, AsyncQueue):
                await queue.promote(job.id)
            else:
                queue.promote(job.id)
        own_clock = None
        if id(queue.clock) in RUNNING_ON.get():  # added by a handler: a drain (or inline run) drives this clock
            own_clock = VirtualClock(queue.clock.now())
        session = Session(
            [queue],
            self.handlers,
            self.worker_options,
            target=(queue.name, job.id),
            clock=own_clock,
            limits=Limits(wall_timeout=_WALL_TIMEOUT),
        )
        try:
            await session.run(advance_time=False)
            result = await session.report()
        finally:
            await session.close()
        report = next((r for r in result.jobs if r.id == job.id), None)
        stored = await session.twins[0].get_job(job.id)
        if session.timed_out:
            raise DrainError(f"inline: the handler of job {job.id} did not finish within {_WALL_TIMEOUT:g} s")
        if report is None:  # (a paused queue: the job stays waiting)
            return stored if stored is not None else job
        if stored is None:  # removed on completion or failure
            stored = dataclasses.replace(
                job,
                state=JobState.COMPLETED if report.succeeded else JobState.FAILED,
                result=report.result,
                finished_at=report.runs[-1].finished_at if report.runs else None,
            )
        if report.succeeded or not self.raise_on_failure:
            return stored
        raise _failure(report)

    def run_blocking(self, queue: Queue, job: Job) -> Job:
        """:meth:`arun` from synchronous code (in a thread of its own when an event loop is running here)."""
        __tracebackhide__ = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(queue, job))
        context = contextvars.copy_context()  # (so the run sees which clocks a drain is driving here)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jqc-inline") as pool:
            return pool.submit(context.run, asyncio.run, self.arun(queue, job)).result()


def _failure(report: JobReport) -> BaseException:
    message = failure_message(f"inline: job {report.id} {report.name!r} did not complete", (report,))
    error = report.runs[-1].error if report.runs else None
    if error is None:
        return DrainError(message, reports=(report,))
    error.add_note(message)
    return error


class InlineQueue(Queue):
    """A :class:`jqc.Queue` whose :meth:`add` runs each new job at once (see :mod:`jqc.testing.inline`)."""

    runner: InlineRunner

    @classmethod
    def of(cls, queue: Queue, runner: InlineRunner) -> InlineQueue:
        twin = cls(queue.name, queue.connection)
        twin.ops = queue.ops
        twin.runner = runner
        return twin

    def add(
        self, name: str, data: Any = None, options: JobOptions | None = None, **overrides: Unpack[OptionArgs]
    ) -> Job:
        """Add a job and run it now; returns the job as stored after its run (see the module docstring)."""
        __tracebackhide__ = True
        return self.runner.run_blocking(self, super().add(name, data, options, **overrides))

    def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> list[Job]:
        """Add the jobs, then run each in turn."""
        __tracebackhide__ = True
        return [self.runner.run_blocking(self, job) for job in super().add_bulk(jobs)]


class InlineAsyncQueue(AsyncQueue):
    """A :class:`jqc.AsyncQueue` whose :meth:`add` runs each new job at once."""

    runner: InlineRunner

    @classmethod
    def of(cls, queue: AsyncQueue, runner: InlineRunner) -> InlineAsyncQueue:
        twin = cls(queue.name, queue.connection)
        twin.ops = queue.ops
        twin.runner = runner
        return twin

    async def add(
        self, name: str, data: Any = None, options: JobOptions | None = None, **overrides: Unpack[OptionArgs]
    ) -> Job:
        __tracebackhide__ = True
        return await self.runner.arun(self, await super().add(name, data, options, **overrides))

    async def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> list[Job]:
        __tracebackhide__ = True
        return [await self.runner.arun(self, job) for job in await super().add_bulk(jobs)]


class InlineConnection(Connection):
    """A view of a connection whose queues are inline: the same server, prefix and clock."""

    base: Connection
    runner: InlineRunner

    @classmethod
    def of(cls, base: Connection, runner: InlineRunner) -> InlineConnection:
        view = cls.over(base.factory, clock=base.clock, prefix=base.prefix)
        view.base = base
        view.runner = runner
        return view

    def queue(self, name: str, **options: Any) -> InlineQueue:
        return InlineQueue.of(Queue(name, self, **options), self.runner)

    def async_queue(self, name: str, **options: Any) -> InlineAsyncQueue:
        return InlineAsyncQueue.of(AsyncQueue(name, self, **options), self.runner)

    def close(self) -> None:
        """Close the base connection's sync connections (the view shares them)."""
        self.base.close()


@overload
def inline(
    target: Queue, handlers: Handlers, *, raise_on_failure: bool = ..., **worker_options: Any
) -> InlineQueue: ...
@overload
def inline(
    target: AsyncQueue, handlers: Handlers, *, raise_on_failure: bool = ..., **worker_options: Any
) -> InlineAsyncQueue: ...
@overload
def inline(
    target: Connection, handlers: Handlers, *, raise_on_failure: bool = ..., **worker_options: Any
) -> InlineConnection: ...
def inline(
    target: Queue | AsyncQueue | Connection,
    handlers: Handlers,
    *,
    raise_on_failure: bool = True,
    **worker_options: Any,
) -> InlineQueue | InlineAsyncQueue | InlineConnection:
    """The inline twin of a queue, an asyncio queue or a connection (all its queues): ``add`` runs
    each new job with ``handlers`` before returning. ``worker_options`` are :class:`jqc.Worker`
    options. See :mod:`jqc.testing.inline` for what it models and what it does not."""
    runner = InlineRunner(handlers, raise_on_failure=raise_on_failure, **worker_options)
    if isinstance(target, Connection):
        return InlineConnection.of(target.base if isinstance(target, InlineConnection) else target, runner)
    if isinstance(target, Queue):
        return InlineQueue.of(target, runner)
    if isinstance(target, AsyncQueue):
        return InlineAsyncQueue.of(target, runner)
    raise InvalidOptionError(f"inline() takes a jqc.Queue, a jqc.AsyncQueue or a jqc.Connection, not {target!r}")
