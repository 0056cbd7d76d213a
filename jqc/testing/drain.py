"""Running a test's jobs: ``drain`` (a burst worker on the virtual clock) and :class:`BurstWorker`.

They run the real :class:`jqc.Worker`, so handlers are called, timed out, retried and reported
exactly as in production; what they add is a recorder of every run (and the faults to inject), a
driver for virtual time and the limits that say when to stop (see :mod:`jqc.testing.session` and
:mod:`jqc.testing.limits`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from jqc.engine.async_queue import AsyncQueue
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError
from jqc.testing.faults import Fault
from jqc.testing.handlers import Handlers
from jqc.testing.limits import Until, limits
from jqc.testing.report import DrainResult
from jqc.testing.session import QueueLike, Session, check_worker_options
from jqc.testing.verdict import verdict

__all__ = ["BurstWorker", "Handlers", "QueueLike", "adrain", "drain", "no_running_loop"]


def no_running_loop(call: str, instead: str) -> None:
    """Refuse a blocking helper inside a running event loop, naming its asyncio twin."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{call} blocks and cannot run inside an event loop; in async code use `{instead}`")


def _queues(queues: QueueLike | Iterable[QueueLike]) -> list[QueueLike]:
    if isinstance(queues, (Queue, AsyncQueue)):
        return [queues]
    if isinstance(queues, (str, bytes)) or not isinstance(queues, Iterable):
        raise InvalidOptionError(f"drain runs a jqc.Queue, a jqc.AsyncQueue or a list of them, not {queues!r}")
    return list(queues)


class BurstWorker:
    """A :class:`jqc.Worker` for tests: runs the queues' jobs in burst mode on their virtual clock.

    ``worker_options`` are :class:`jqc.Worker` options (``concurrency`` defaults to 1 here, so jobs
    run one at a time in queue order; ``rng`` to the test's seeded stream, see
    :mod:`jqc.testing.seeding`, so backoff jitter replays). :meth:`run` (sync tests) and
    :meth:`arun` (async tests) drain the queues like :func:`drain`, and may be called again;
    :attr:`last` is the last run's result.
    """

    def __init__(self, queues: QueueLike | Sequence[QueueLike], handlers: Handlers, **worker_options: Any) -> None:
        self.queues = _queues(queues)
        if not self.queues:
            raise InvalidOptionError("a worker needs at least one queue")
        check_worker_options(worker_options)
        self.handlers = handlers
        self.worker_options = worker_options
        self.last: DrainResult | None = None

    def __repr__(self) -> str:
        return f"BurstWorker({[q.name for q in self.queues]!r})"

    async def arun(
        self,
        *,
        until: Until | None = None,
        jobs: int | None = None,
        advance_time: bool = True,
        raise_on_failure: bool = True,
        faults: Sequence[Fault] = (),
        max_runs: int = 10_000,
        wall_timeout: float | None = 60.0,
    ) -> DrainResult:
        """Run the queues' jobs until the drain's end (idle, ``until``, ``jobs``); see :func:`drain`."""
        __tracebackhide__ = True
        result, error = await self._drain(until, jobs, advance_time, raise_on_failure, faults, max_runs, wall_timeout)
        if error is not None:
            raise error
        return result

    def run(
        self,
        *,
        until: Until | None = None,
        jobs: int | None = None,
        advance_time: bool = True,
        raise_on_failure: bool = True,
        faults: Sequence[Fault] = (),
        max_runs: int = 10_000,
        wall_timeout: float | None = 60.0,
    ) -> DrainResult:
        """:meth:`arun` for synchronous tests (it runs its own event loop)."""
        __tracebackhide__ = True
        no_running_loop("BurstWorker.run() and drain()", "await worker.arun()` / `await adrain(...)")
        connections = {id(q.connection): q.connection for q in self.queues}.values()

        async def main() -> tuple[DrainResult, BaseException | None]:
            try:
                return await self._drain(until, jobs, advance_time, raise_on_failure, faults, max_runs, wall_timeout)
            finally:
                for connection in connections:  # clients that handlers opened on this loop die with it
                    await connection.aclose()

        result, error = asyncio.run(main())
        if error is not None:
            raise error  # from here, so that the traceback ends in the test, not in asyncio
        return result

    async def _drain(
        self,
        until: Until | None,
        jobs: int | None,
        advance_time: bool,
        raise_on_failure: bool,
        faults: Sequence[Fault],
        max_runs: int,
        wall_timeout: float | None,
    ) -> tuple[DrainResult, BaseException | None]:
        if not isinstance(raise_on_failure, bool):
            raise InvalidOptionError(f"raise_on_failure must be a bool, not {raise_on_failure!r}")
        if isinstance(faults, Fault):
            faults = [faults]
        now = self.queues[0].clock.now()
        rules = limits(
            now=now, until=until, jobs=jobs, max_runs=max_runs, wall_timeout=wall_timeout, advance_time=advance_time
        )
        session = Session(self.queues, self.handlers, self.worker_options, faults=faults, limits=rules)
        session.check_clock(advance_time)
        try:
            await session.run(advance_time=advance_time)
            result = await session.report()
        finally:
            await session.close()
        self.last = result
        return result, verdict(session, result, self.queues, raise_on_failure)


async def adrain(
    queues: QueueLike | Sequence[QueueLike],
    handlers: Handlers,
    *,
    until: Until | None = None,
    jobs: int | None = None,
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
        until=until,
        jobs=jobs,
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
    until: Until | None = None,
    jobs: int | None = None,
    advance_time: bool = True,
    raise_on_failure: bool = True,
    faults: Sequence[Fault] = (),
    max_runs: int = 10_000,
    wall_timeout: float | None = 60.0,
    **worker_options: Any,
) -> DrainResult:
    """Run the jobs of ``queues`` with ``handlers``, and report each one.

    ``handlers`` is a handler or a mapping of job names to handlers, as for :class:`jqc.Worker`.
    By default the drain runs until nothing is left: with ``advance_time`` (the default) virtual
    time moves to each delayed job's due time, through delays, backoff and retries, until no job
    is waiting, delayed or active; without it only the jobs due now run (time still passes while
    a run waits on the clock: a timeout, a rate limit). ``until`` stops it at a clock time (a
    number, an aware datetime or a timedelta from now: jobs due by then run, the clock is left
    there) or once a predicate holds; ``jobs`` once that many jobs finished (completed or failed
    for good). See :mod:`jqc.testing.limits`.

    With ``raise_on_failure`` (the default) a :class:`DrainError` tells the history of every job
    that failed (failed for good, or, in a drain that went idle, had a failed attempt and did not
    complete). ``faults`` (from :func:`crash_worker`, :func:`expire_lock`, :func:`drop_connection`)
    are injected into the runs they match. ``max_runs`` (runs of handlers: at most that many run)
    and ``wall_timeout`` (seconds of real time) stop a drain that would not end, with a
    :class:`DrainError` listing what is still pending. Other keyword arguments are
    :class:`jqc.Worker` options. Returns a :class:`DrainResult`.
    """
    __tracebackhide__ = True
    return BurstWorker(queues, handlers, **worker_options).run(
        until=until,
        jobs=jobs,
        advance_time=advance_time,
        raise_on_failure=raise_on_failure,
        faults=faults,
        max_runs=max_runs,
        wall_timeout=wall_timeout,
    )
