"""What a handler gets: its job, and token-checked ``progress()`` and ``log()`` for it.

Async handlers get a :class:`JobContext` (``await ctx.progress(50)``); plain functions run in a
thread and get a :class:`SyncJobContext`, whose methods block that thread until the write is done
on the worker's event loop. Every write carries the job's fencing token: once the worker no longer
holds the job (lock lost, timed out, handed back at shutdown) a write raises
:class:`~jqc.LockLostError` and changes nothing, so a handler that outlives its claim cannot
corrupt the job's next run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from jqc.engine.async_queue import AsyncQueue
from jqc.engine.flow_records import ChildPolicy
from jqc.engine.flows import Flow
from jqc.engine.job import ClaimedJob, Job
from jqc.errors import LockLostError
from jqc.worker.control import WaitingForChildren

__all__ = ["JobContext", "SyncJobContext"]

_EVENT_LOCK = threading.Lock()  # makes a context's stop event at most once, whichever thread asks first


class _Base:
    """Read-only facts about the job, shared by both context kinds."""

    __slots__ = ("_claimed", "_gone", "_queue", "_stop", "worker")

    def __init__(self, queue: AsyncQueue, claimed: ClaimedJob, worker: str) -> None:
        self._queue = queue
        self._claimed = claimed
        self.worker = worker
        self._stop: threading.Event | None = None  # made on first use: most handlers never ask for it
        self._gone: str | None = None

    @property
    def job(self) -> Job:
        """The job as it was when claimed."""
        return self._claimed.job

    @property
    def claimed(self) -> ClaimedJob:
        return self._claimed

    @property
    def id(self) -> str:
        return self._claimed.job.id

    @property
    def name(self) -> str:
        return self._claimed.job.name

    @property
    def data(self) -> Any:
        return self._claimed.job.data

    @property
    def queue(self) -> str:
        return self._queue.name

    @property
    def attempt(self) -> int:
        """Which attempt this is: 1 for the first run (stalls and hand-backs do not count)."""
        return self._claimed.job.failed_attempts + 1

    @property
    def token(self) -> int:
        return self._claimed.token

    def children_results(self) -> dict[str, Any]:
        """A flow parent's completed children: child job id -> its result (as the parent recorded
        them, kept on the parent whatever the children's retention; see ``docs/workflows.md``)."""
        return {c.id: c.result for c in self._claimed.job.children if c.state == "completed"}

    def children_failures(self) -> dict[str, str]:
        """A flow parent's children that failed for good under the ``continue`` policy: child job
        id -> failure reason (``ignore`` failures are left out, ``fail`` ones fail the parent)."""
        return {
            c.id: c.failure or ""
            for c in self._claimed.job.children
            if c.state == "failed" and c.policy is ChildPolicy.CONTINUE
        }

    def now(self) -> float:
        """The time on the queue's clock, in seconds since the epoch: the system clock in production,
        the test's virtual clock under :mod:`jqc.testing`. Handlers that need the time read it here
        rather than from ``time.time()``, so tests control it."""
        return self._queue.clock.now()

    @property
    def cancelled(self) -> bool:
        """True once the worker has stopped waiting for this handler (lock lost, timeout, shutdown,
        or :meth:`jqc.Queue.cancel`, which the worker learns of within one lock renewal).

        Async handlers are cancelled outright; code running in a thread should poll this (or
        :attr:`stop_event`) and return early, since its result will be thrown away.
        """
        return self._gone is not None

    @property
    def stop_event(self) -> threading.Event:
        """Set as soon as the worker stops standing behind this run (wait on it from a thread).

        It is set, with :attr:`cancelled` true, when the worker gives the job up: its handler timed
        out; it was cancelled (``Queue.cancel``); shutdown hands it back; the worker was killed; or
        the worker learns its lock is lost:
        a renewal or one of the job's writes (``progress``, ``log``, its completion) was rejected,
        the job was claimed again, or the lock's deadline passed without a renewal (Redis out of
        reach, or the process frozen, for longer than the lock): from then on another worker may
        take the job back and run it, so this run is given up even if nobody has yet.

        What a handler can rely on: once set it stays set, and every later write of this run is
        rejected with :class:`~jqc.LockLostError` without reaching Redis. What it cannot: being
        told at the very instant the lock is lost. The worker looks when a renewal answers and at
        the lock's deadline, while its event loop runs; a frozen process learns only when it
        wakes, and a thread may run on a moment before the worker has looked. Fencing, not this
        event, is what keeps a stale run from changing the job; side effects outside jqc that must
        not happen twice need their own idempotency (the job id and :attr:`token` make good keys).
        """
        with _EVENT_LOCK:
            if self._stop is None:
                self._stop = threading.Event()
            event = self._stop
        # Published before reading _gone, as _abandon writes _gone before reading _stop: one of
        # the two sees the other's write, so the event is set either way.
        if self._gone is not None:
            event.set()
        return event

    def _abandon(self, reason: str) -> None:
        """The worker no longer holds the job: refuse further writes without asking Redis."""
        if self._gone is None:
            self._gone = reason
        event = self._stop
        if event is not None:
            event.set()

    def _check(self) -> None:
        if self._gone is not None:
            raise LockLostError(f"job {self.id} is no longer held by worker {self.worker}: {self._gone}")

    async def _progress(self, value: Any) -> None:
        self._check()
        try:
            await self._queue.progress(self._claimed, value)
        except LockLostError as exc:
            self._abandon(f"lock lost: {exc}")
            raise

    async def _log(self, line: str) -> int:
        self._check()
        try:
            return await self._queue.log(self._claimed, line)
        except LockLostError as exc:
            self._abandon(f"lock lost: {exc}")
            raise

    async def _park(self, children: Sequence[Flow]) -> int:
        self._check()
        try:
            added = await self._queue.add_children(self._claimed, children)
        except LockLostError as exc:
            self._abandon(f"lock lost: {exc}")
            raise
        self._abandon("waiting for its children")
        return added

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(queue={self.queue!r}, id={self.id!r}, name={self.name!r}, attempt={self.attempt})"
        )


class JobContext(_Base):
    """Handed to ``async def`` handlers."""

    __slots__ = ()

    async def progress(self, value: Any) -> None:
        """Record the job's progress (any JSON value) and announce it on the event stream."""
        await self._progress(value)

    async def log(self, line: str) -> int:
        """Append a line to the job's log; returns how many lines it keeps now."""
        return await self._log(line)

    async def wait_for_children(self, children: Sequence[Flow]) -> NoReturn:
        """Fan-out: add ``children`` (:class:`jqc.Flow` trees, any queues) to this job and wait for
        them. The job goes to ``waiting-children`` (its lock released) and runs again, from the
        start, once they are done, with their results in :meth:`children_results`; this raises
        :class:`jqc.WaitingForChildren`, which the handler lets propagate. Token-checked:
        :class:`jqc.LockLostError` once the lock is lost (nothing added)."""
        raise WaitingForChildren(await self._park(children))


class SyncJobContext(_Base):
    """Handed to plain-function handlers, which run in the worker's thread pool."""

    __slots__ = ("_loop", "_loop_thread")

    def __init__(self, queue: AsyncQueue, claimed: ClaimedJob, worker: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(queue, claimed, worker)
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def _on_loop(self) -> None:
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("SyncJobContext methods block; call them from the handler's thread, not the event loop")

    def progress(self, value: Any) -> None:
        """Record the job's progress; blocks this thread until Redis has it."""
        self._check()
        self._on_loop()
        asyncio.run_coroutine_threadsafe(self._progress(value), self._loop).result()

    def log(self, line: str) -> int:
        """Append a line to the job's log; blocks this thread until Redis has it."""
        self._check()
        self._on_loop()
        return asyncio.run_coroutine_threadsafe(self._log(line), self._loop).result()

    def wait_for_children(self, children: Sequence[Flow]) -> NoReturn:
        """Fan-out, as :meth:`JobContext.wait_for_children`; blocks this thread until it is written."""
        self._check()
        self._on_loop()
        raise WaitingForChildren(asyncio.run_coroutine_threadsafe(self._park(children), self._loop).result())
