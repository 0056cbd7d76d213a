"""Running the jobs a worker claimed: hold each one, call its handler, settle the outcome, and go
on with the job its completion claimed (one task per job runs them back to back).

The handler table maps job names to handlers (or one handler for every name); plain functions run
in a thread pool, the worker's own unless it was given one. Nothing here claims or talks to Redis
except through :class:`~jqc.worker.settle.Settler`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
from collections.abc import Awaitable, Mapping
from typing import Protocol

from jqc.engine.job import BackoffFunction, ClaimedJob
from jqc.errors import InvalidOptionError
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.execute import Handler, Kind, Outcome, is_async, run_handler
from jqc.worker.lane import Held, Lane
from jqc.worker.settle import Settler
from jqc.worker.shared import Shared

__all__ = ["HandlerTable", "JobRunner", "RunHooks"]


class HandlerTable:
    """The handlers of a worker by job name, each with whether it is async."""

    def __init__(self, handler: Handler | Mapping[str, Handler]) -> None:
        self.by_name: dict[str, tuple[Handler, bool]] = {}
        self.default: tuple[Handler, bool] | None = None
        if callable(handler):
            self.default = (handler, is_async(handler))
        elif isinstance(handler, Mapping) and handler:
            for job_name, fn in handler.items():
                if not isinstance(job_name, str) or not callable(fn):
                    raise InvalidOptionError(f"handlers map job names to callables, not {job_name!r}: {fn!r}")
                self.by_name[job_name] = (fn, is_async(fn))
        else:
            raise InvalidOptionError(
                f"handler must be a callable or a mapping of job names to callables, not {handler!r}"
            )

    def for_job(self, job_name: str) -> tuple[Handler, bool] | None:
        """The handler for jobs named ``job_name`` and whether it is async (None: no handler)."""
        return self.by_name.get(job_name, self.default)

    @property
    def needs_threads(self) -> bool:
        """True when some handler is a plain function (run in a thread pool)."""
        entries = [*self.by_name.values(), *([self.default] if self.default else [])]
        return any(not asynchronous for _, asynchronous in entries)


class RunHooks(Protocol):
    """Told when each handler run starts and ends (the worker's :class:`~jqc.worker.JobObserver`)."""

    def started(self, ctx: JobContext | SyncJobContext) -> Awaitable[None]: ...

    def finished(self, ctx: JobContext | SyncJobContext, outcome: Outcome) -> Awaitable[None]: ...


class JobRunner:
    """Holds and runs one worker's jobs; implements :class:`~jqc.worker.settle.Successors`."""

    def __init__(
        self,
        shared: Shared,
        handlers: HandlerTable,
        *,
        rng: random.Random,
        backoff_functions: Mapping[str, BackoffFunction],
        executor: concurrent.futures.Executor | None,
        hooks: RunHooks | None,
        thread_prefix: str,
    ) -> None:
        self.shared = shared
        self.handlers = handlers
        self.executor = executor
        self.hooks = hooks
        self.settler = Settler(shared, self, rng=rng, backoff_functions=backoff_functions)
        self._thread_prefix = thread_prefix
        self._own_executor = False

    def open(self) -> None:
        """Make a thread pool (one thread per slot) when plain handlers need one and none was given."""
        if self.executor is None and self.handlers.needs_threads:
            workers = sum(lane.concurrency for lane in self.shared.lanes)
            self.executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=self._thread_prefix)
            self._own_executor = True

    def release(self) -> None:
        """Shut down the thread pool :meth:`open` made (without waiting for abandoned threads)."""
        if self._own_executor and self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def hold(self, lane: Lane, claimed: ClaimedJob) -> Held:
        """Hold a claimed job: from now on renewal extends its lock and shutdown hands it back."""
        shared = self.shared
        loop = asyncio.get_running_loop()
        entry = self.handlers.for_job(claimed.job.name)
        ctx: JobContext | SyncJobContext
        if entry is None or entry[1]:
            ctx = JobContext(lane.queue, claimed, shared.id)
        else:
            ctx = SyncJobContext(lane.queue, claimed, shared.id, loop)
        held = Held(lane, claimed, ctx, loop.create_future(), lock_until=claimed.lock_until)
        timeout = self.timeout_of(claimed)
        if timeout is not None:
            held.renew_until = shared.clock.now() + timeout + shared.options.lock
        stale = lane.held.get(claimed.id)
        if stale is not None:
            # The job was claimed again (by us): its earlier token is revoked, so that run is lost.
            shared.log.warning(
                "worker %s: lost the lock of job %s in %s (claimed again)", shared.id, claimed.id, lane.name
            )
            stale.give_up("lock lost: the job was claimed again", hand_back=False)
        lane.held[claimed.id] = held
        return held

    def timeout_of(self, claimed: ClaimedJob) -> float | None:
        """The handler timeout of ``claimed``: its own, else the worker's (None: no timeout)."""
        own = claimed.job.options.timeout
        return own if own is not None else self.shared.options.timeout

    def start(self, lane: Lane, claimed: ClaimedJob) -> None:
        """Hold a claimed job and run it (and the jobs its completions claim) in a task of its own."""
        held = self.hold(lane, claimed)
        self.shared.spawn(self._work(held), name=f"jqc-job-{lane.name}-{claimed.id}")

    async def _work(self, held: Held | None) -> None:
        """Run a job, report it, and go on with the job its completion claimed (if any)."""
        while held is not None:
            lane = held.lane
            try:
                held = await self._process(held)
            finally:
                lane.slot_freed.set()
                if not lane.held:
                    self.shared.lifecycle.quiet.set()

    async def _process(self, held: Held) -> Held | None:
        lane = held.lane
        try:
            if not self.shared.lifecycle.running:
                held.give_up("the worker is shutting down", hand_back=True)
                outcome = Outcome(Kind.ABORTED, reason="the worker is shutting down")
            elif held.claimed.job.cancel_reason is not None:  # marked, then handed back or stalled
                held.cancel(held.claimed.job.cancel_reason)
                outcome = Outcome(Kind.ABORTED, reason=f"cancelled: {held.cancel_reason}")
            else:
                outcome = await self._observed(held)
            return await self.settler.settle(held, outcome)
        finally:
            if lane.held.get(held.id) is held:
                del lane.held[held.id]

    async def _observed(self, held: Held) -> Outcome:
        """Run the job's handler, telling the hooks (if any) before and after."""
        hooks = self.hooks
        if hooks is None:
            return await self._execute(held)
        await self._tell(hooks.started(held.ctx))
        outcome = await self._execute(held)
        await self._tell(hooks.finished(held.ctx, outcome))
        return outcome

    async def _tell(self, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:
            self.shared.log.exception("worker %s: the job observer failed", self.shared.id)

    async def _execute(self, held: Held) -> Outcome:
        job = held.claimed.job
        entry = self.handlers.for_job(job.name)
        if entry is None:
            reason = f"no handler for job name {job.name!r} on worker {self.shared.name}"
            return Outcome(Kind.FAIL, reason=reason)
        handler, asynchronous = entry
        return await run_handler(
            handler,
            held.ctx,
            asynchronous=asynchronous,
            clock=self.shared.clock,
            timeout=self.timeout_of(held.claimed),
            abort=held.abort,
            executor=self.executor,
        )
