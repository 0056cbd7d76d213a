"""Cancelling a running job: the worker holding it learns of the mark from its next lock renewal,
cancels an async handler (asyncio cancellation) or sets a plain handler's ``ctx.cancelled`` and
``stop_event``, and the job ends failed with code ``cancelled``, not retried. Every backend."""

from __future__ import annotations

import asyncio
import threading

import jqc
from jqc import FailureCode, JobState
from tests.worker.helpers import until


async def test_an_async_handler_is_cancelled_within_one_renewal(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    started, seen = asyncio.Event(), []

    async def handler(ctx: jqc.JobContext) -> str:
        started.set()
        try:
            await clock.sleep(3600)
        except asyncio.CancelledError:
            seen.append(ctx.cancelled)
            raise
        return "finished"

    worker = jqc.Worker(q, handler, lock=10, renew_interval=2)
    await worker.start()
    job = q.add("render", None, attempts=5)
    await until(clock, started.is_set)
    marked_at = clock.now()
    assert q.cancel(job.id, "user pressed stop") == "marked"
    await until(clock, lambda: q.counts().failed == 1)
    assert clock.now() - marked_at <= 2 + 1  # one renewal interval, and a margin for the report
    await worker.close()
    stored = q.get_job(job.id)
    assert stored is not None and stored.state is JobState.FAILED
    assert (stored.failure_code, stored.failure_reason) == (FailureCode.CANCELLED, "cancelled: user pressed stop")
    assert seen == [True] and q.counts().waiting == 0 and stored.runs == 1


async def test_a_plain_handler_sees_ctx_cancelled(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    loop = asyncio.get_running_loop()
    started, stopped = asyncio.Event(), threading.Event()

    def handler(ctx: jqc.SyncJobContext) -> str:
        loop.call_soon_threadsafe(started.set)
        if ctx.stop_event.wait(20):  # real time: set by the worker when the mark arrives
            stopped.set()
            return "stopped early"
        return "ran to the end"

    worker = jqc.Worker(q, handler, lock=10, renew_interval=2)
    await worker.start()
    job = q.add("render", None)
    await asyncio.wait_for(started.wait(), 10)
    q.cancel(job.id)
    await until(clock, lambda: q.counts().failed == 1)
    await asyncio.wait_for(asyncio.to_thread(stopped.wait, 10), 15)
    await worker.close()
    stored = q.get_job(job.id)
    assert stored is not None and stored.failure_code is FailureCode.CANCELLED and stored.result is None


async def test_a_cancel_with_retry_runs_the_job_again(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    runs: list[int] = []

    async def handler(ctx: jqc.JobContext) -> int:
        runs.append(ctx.attempt)
        if len(runs) == 1:
            await clock.sleep(3600)
        return len(runs)

    worker = jqc.Worker(q, handler, lock=10, renew_interval=2)
    await worker.start()
    job = q.add("render", None, attempts=3)
    await until(clock, lambda: runs == [1])
    q.cancel(job.id, "restart", retry=True)
    await until(clock, lambda: q.counts().completed == 1)
    await worker.close()
    assert runs == [1, 2] and q.get_job(job.id).result == 2  # type: ignore[union-attr]
