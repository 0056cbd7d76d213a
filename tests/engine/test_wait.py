"""Waiting for a job's result (``Queue.wait_for``, ``AsyncQueue.wait_for``, ``Job.wait``) on both
backends: an answer at once for a finished job, a wake-up by the event stream (one shared reader
per queue), the job's failure raised, a typed timeout on the queue's virtual clock, and a last look
at the deadline so a job whose event never came is not reported as timed out.

The sync tests run the waiter in a thread and never move the virtual clock unless the test is about
the timeout: a waiter that returns can only have been woken by the stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import jqc
from jqc import FailureCode, JobState, Keep
from jqc.engine import waiting
from tests.engine.test_lifecycle import claim_one

REAL_BOUND = 15.0  # seconds of real time a step may take before the test fails instead of hanging


class Waiting(threading.Thread):
    """``queue.wait_for(job_id, timeout)`` in a thread of its own; ``outcome`` is its result or error."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.outcome: Any = None

    def run(self) -> None:
        try:
            self.outcome = self.call()
        except BaseException as exc:  # the test inspects it
            self.outcome = exc

    def finish(self) -> Any:
        self.join(REAL_BOUND)
        assert not self.is_alive(), "the waiter was never woken"
        return self.outcome


def sync_waiters(queue: jqc.Queue) -> int:
    watch = waiting._SYNC.get(queue.connection.backend, {}).get(queue.ops.keys.events)
    if watch is None:
        return 0
    with watch.lock:
        return sum(len(w) for w in watch.waiters.values())


def until(condition: Callable[[], bool]) -> None:
    """Wait (real time, bounded) until ``condition()`` holds: the waiter has registered and blocks."""
    deadline = time.monotonic() + REAL_BOUND
    while not condition():
        assert time.monotonic() < deadline, "the waiter did not start waiting"
        time.sleep(0.005)


def blocked(queue: jqc.Queue) -> int:
    """Sync waiters blocked on the queue's virtual clock (past their first look at the job)."""
    clock = queue.clock
    assert isinstance(clock, jqc.VirtualClock)
    with clock._threads_lock:
        return len(clock._threads)


def start_waiting(queue: jqc.Queue, job_id: str, timeout: float = 3600) -> Waiting:
    before = blocked(queue)
    waiter = Waiting(lambda: queue.wait_for(job_id, timeout))
    waiter.start()
    until(lambda: blocked(queue) > before)
    return waiter


# -- sync -----------------------------------------------------------------------------------------


def test_a_finished_job_answers_at_once(queue: jqc.Queue) -> None:
    job = queue.add("x")
    queue.complete(claim_one(queue), {"url": "s3://a"})
    assert queue.wait_for(job.id, timeout=0) == {"url": "s3://a"}
    assert queue.wait_for(job.id) == {"url": "s3://a"}  # no limit: still at once
    assert job.wait(0) == {"url": "s3://a"}


def test_a_failed_job_raises_its_failure(queue: jqc.Queue) -> None:
    job = queue.add("x")
    queue.fail(claim_one(queue), "disk full", traceback="Traceback: ...", retry=False, code=FailureCode.ERROR)
    with pytest.raises(jqc.JobFailedError, match="disk full") as raised:
        queue.wait_for(job.id, timeout=5)
    failure = raised.value
    assert (failure.job_id, failure.reason, failure.code, failure.traceback) == (
        job.id,
        "disk full",
        FailureCode.ERROR,
        "Traceback: ...",
    )
    assert failure.job is not None and failure.job.state == JobState.FAILED


def test_no_such_job(queue: jqc.Queue) -> None:
    with pytest.raises(jqc.JobNotFoundError, match="never added, or removed"):
        queue.wait_for("nope", timeout=5)


def test_the_wait_is_woken_by_the_completion(queue: jqc.Queue) -> None:
    job = queue.add("x")
    waiter = start_waiting(queue, job.id, timeout=60)
    claimed = claim_one(queue)
    assert waiter.is_alive()  # a claim ends nothing
    queue.complete(claimed, 42)
    assert waiter.finish() == 42


def test_a_retried_attempt_does_not_end_the_wait_the_final_failure_does(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=2)
    waiter = start_waiting(queue, job.id)
    queue.fail(claim_one(queue), "first", delay=0)  # a 'retrying' event: attempts are left
    queue.fail(claim_one(queue), "second", delay=0)  # 'failed': none are
    failure = waiter.finish()
    assert isinstance(failure, jqc.JobFailedError)
    assert failure.reason == "second" and failure.job.failed_attempts == 2


def test_the_timeout_runs_on_the_virtual_clock(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x")
    waiter = start_waiting(queue, job.id, timeout=10)
    clock.advance(9.999)
    waiter.join(0.2)
    assert waiter.is_alive()
    clock.advance(0.001)
    timed_out = waiter.finish()
    assert isinstance(timed_out, jqc.WaitTimeoutError)
    assert (timed_out.job_id, timed_out.timeout, timed_out.state) == (job.id, 10, JobState.WAITING)
    assert queue.get_job(job.id) is not None  # the job is untouched


def test_a_job_whose_event_never_came_is_found_finished_at_the_deadline(
    conn: jqc.Connection, queue: jqc.Queue, clock: jqc.VirtualClock
) -> None:
    silent = conn.queue("photos", events_max_len=0)  # a worker that writes no events
    job = queue.add("x")
    waiter = start_waiting(queue, job.id, timeout=30)
    silent.complete(claim_one(silent), "done")
    waiter.join(0.2)
    assert waiter.is_alive(), waiter.outcome  # nothing woke it
    clock.advance(30)
    assert waiter.finish() == "done"


def test_without_events_an_unfinished_job_cannot_be_waited_for(conn: jqc.Connection) -> None:
    quiet = conn.queue("quiet", events_max_len=0)
    job = quiet.add("x")
    with pytest.raises(jqc.InvalidOptionError, match="events_max_len=0"):
        quiet.wait_for(job.id, timeout=5)
    with pytest.raises(jqc.WaitTimeoutError):
        quiet.wait_for(job.id, timeout=0)  # looking once needs no events
    quiet.complete(claim_one(quiet), "ok")
    assert quiet.wait_for(job.id, timeout=5) == "ok"


def test_a_job_removed_or_drained_while_waited_for(queue: jqc.Queue) -> None:
    removed, drained = queue.add("x"), queue.add("y")
    first = start_waiting(queue, removed.id)
    second = start_waiting(queue, drained.id)
    queue.remove(removed.id)
    assert isinstance(first.finish(), jqc.JobNotFoundError)
    assert second.is_alive()
    queue.drain()
    assert isinstance(second.finish(), jqc.JobNotFoundError)


def test_a_result_deleted_on_completion_is_reported_as_such(queue: jqc.Queue) -> None:
    job = queue.add("x", remove_on_complete=Keep.none())
    waiter = start_waiting(queue, job.id)
    queue.complete(claim_one(queue), "gone")
    error = waiter.finish()
    assert isinstance(error, jqc.JobNotFoundError) and "remove_on_complete" in str(error)


def test_a_failure_deleted_as_it_happened_still_carries_its_reason(queue: jqc.Queue) -> None:
    job = queue.add("x", remove_on_fail=Keep.none())
    waiter = start_waiting(queue, job.id)
    queue.fail(claim_one(queue), "bad input", retry=False)
    failure = waiter.finish()
    assert isinstance(failure, jqc.JobFailedError)
    assert (failure.reason, failure.code, failure.job) == ("bad input", FailureCode.UNRECOVERABLE, None)


def test_many_waiters_share_one_reader(queue: jqc.Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.Lock()
    in_flight = peak = 0
    ours = queue.connection.backend
    kind = type(ours)  # (the backend's own class: one server, or a cluster's router)
    original = kind.run_blocking

    def counted(self: Any, *args: Any, timeout: float) -> Any:
        nonlocal in_flight, peak
        if self is not ours:  # a reader of an earlier test, ending its last round
            return original(self, *args, timeout=timeout)
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return original(self, *args, timeout=timeout)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(kind, "run_blocking", counted)
    jobs = queue.add_bulk([("x", i) for i in range(20)])
    waiters = [start_waiting(queue, job.id, timeout=60) for job in jobs]
    for _ in jobs:
        claimed = claim_one(queue)
        queue.complete(claimed, claimed.job.data * 10)
    assert [w.finish() for w in waiters] == [i * 10 for i in range(20)]
    assert peak == 1
    assert sync_waiters(queue) == 0


def test_job_wait_needs_a_job_from_a_queue(queue: jqc.Queue) -> None:
    job = queue.add("x")
    fetched = queue.get_job(job.id)
    assert fetched is not None
    waiter = Waiting(lambda: fetched.wait(60))
    waiter.start()
    until(lambda: blocked(queue) == 1)
    queue.complete(claim_one(queue), "via get_job")
    assert waiter.finish() == "via get_job"
    page = queue.list_jobs("completed")
    with pytest.raises(jqc.InvalidOptionError, match="wait_for"):
        page.jobs[0].wait(0)  # listings are not bound to a queue


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), "5", True])
def test_a_bad_timeout_is_refused(queue: jqc.Queue, timeout: Any) -> None:
    job = queue.add("x")
    with pytest.raises(jqc.InvalidOptionError, match="timeout"):
        queue.wait_for(job.id, timeout)


# -- asyncio --------------------------------------------------------------------------------------


async def until_async(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + REAL_BOUND
    while not condition():
        assert time.monotonic() < deadline, "the waiter did not start waiting"
        await asyncio.sleep(0.005)


def async_waiters(queue: jqc.AsyncQueue) -> int:
    watch = waiting._ASYNC.get(queue.connection.async_backend(), {}).get(queue.ops.keys.events)
    return 0 if watch is None else sum(len(w) for w in watch.waiters.values())


async def test_async_finished_job_answers_at_once(aqueue: jqc.AsyncQueue) -> None:
    job = await aqueue.add("x")
    await aqueue.complete((await aqueue.claim("w")).jobs[0], [1, 2])
    assert await aqueue.wait_for(job.id, timeout=0) == [1, 2]
    assert await job.wait(5) == [1, 2]


async def test_async_wait_is_woken_by_the_completion(aqueue: jqc.AsyncQueue, clock: jqc.VirtualClock) -> None:
    job = await aqueue.add("x")
    waiter = asyncio.ensure_future(job.wait(60))
    await until_async(lambda: clock.next_deadline() is not None)  # it sleeps on the clock now
    await aqueue.complete((await aqueue.claim("w")).jobs[0], "done")
    assert await asyncio.wait_for(waiter, REAL_BOUND) == "done"


async def test_async_failure_is_raised(aqueue: jqc.AsyncQueue) -> None:
    job = await aqueue.add("x")
    waiter = asyncio.ensure_future(aqueue.wait_for(job.id))
    await until_async(lambda: async_waiters(aqueue) == 1)
    await aqueue.fail((await aqueue.claim("w")).jobs[0], "no", retry=False)
    with pytest.raises(jqc.JobFailedError, match="no"):
        await asyncio.wait_for(waiter, REAL_BOUND)


async def test_async_timeout_runs_on_the_virtual_clock(aqueue: jqc.AsyncQueue, clock: jqc.VirtualClock) -> None:
    job = await aqueue.add("x")
    waiter = asyncio.ensure_future(aqueue.wait_for(job.id, timeout=10))
    await until_async(lambda: clock.next_deadline() is not None)
    clock.advance(9.999)
    await asyncio.sleep(0.05)
    assert not waiter.done()
    clock.advance(0.001)
    with pytest.raises(jqc.WaitTimeoutError) as raised:
        await asyncio.wait_for(waiter, REAL_BOUND)
    assert raised.value.state == JobState.WAITING


async def test_async_waiters_share_one_blocking_read(aqueue: jqc.AsyncQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    in_flight = peak = 0
    kind = type(aqueue.connection.async_backend())
    original = kind.run_blocking

    async def counted(self: Any, *args: Any, timeout: float) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await original(self, *args, timeout=timeout)
        finally:
            in_flight -= 1

    monkeypatch.setattr(kind, "run_blocking", counted)
    jobs = await aqueue.add_bulk([("x", i) for i in range(50)])
    waiters = [asyncio.ensure_future(job.wait(60)) for job in jobs]
    await until_async(lambda: async_waiters(aqueue) == 50 and in_flight == 1)
    for _ in jobs:
        claimed = (await aqueue.claim("w")).jobs[0]
        await aqueue.complete(claimed, claimed.job.data + 1)
    assert await asyncio.wait_for(asyncio.gather(*waiters), REAL_BOUND) == list(range(1, 51))
    assert peak == 1
    assert async_waiters(aqueue) == 0


async def test_a_worker_on_an_autojumping_clock_delivers_the_result(backend: str) -> None:
    from tests.conftest import close_backend, open_backend

    clock = jqc.VirtualClock(autojump=True)
    conn = open_backend(backend, clock)
    queue = conn.async_queue("reports")

    async def slow(ctx: jqc.JobContext) -> str:
        await clock.sleep(600)  # ten virtual minutes
        return f"report {ctx.data}"

    try:
        job = await queue.add("report", 7)
        worker = jqc.Worker(queue, {"report": slow}, concurrency=1)
        serving = asyncio.ensure_future(worker.serve(handle_signals=False))
        started = clock.now()
        assert await asyncio.wait_for(job.wait(3600), REAL_BOUND) == "report 7"
        assert 600 <= clock.now() - started < 3600
        lonely = await queue.add("report", 8, delay=7200)  # not due within the wait: it times out
        with pytest.raises(jqc.WaitTimeoutError):
            await asyncio.wait_for(lonely.wait(60), REAL_BOUND)
        await worker.close()
        await serving
    finally:
        await conn.aclose()
        close_backend(conn)  # its database, or its own prefix on a shared cluster / Sentinel group


@pytest.mark.redis_only
def test_a_sync_blocking_read_may_outlast_the_read_timeout() -> None:
    """The shared reader's sync XREAD BLOCK gets a read deadline of its own, as async ones do."""
    from tests.conftest import REDIS_URL, open_backend

    open_backend("redis").close()  # skips (or fails under CI) when no server answers; empties the database
    conn = jqc.connect(REDIS_URL, socket_timeout=0.2)
    try:
        queue = conn.queue("photos")
        queue.add("x")
        assert queue.events("$", block=0.5) == []  # blocked 0.5 s past a 0.2 s read timeout
        with pytest.raises(jqc.CallTimeoutError):  # the same read sent as a plain call keeps the read timeout
            conn.backend.run_command("XREAD", "BLOCK", 500, "STREAMS", queue.ops.keys.events, "$")
    finally:
        conn.sync_client().flushdb()
        conn.close()
