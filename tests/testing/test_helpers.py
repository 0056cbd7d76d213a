"""jqc.testing's edges, tested directly (the downstream project covers the everyday use)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import jqc
from jqc.testing import (
    DrainError,
    Fault,
    drain,
    expire_lock,
    perform_job,
    temporary_connection,
)
from jqc.testing.backend import Backend
from tests.testing.conftest import closed_port_url

EPOCH = jqc.clock.VIRTUAL_EPOCH


@pytest.fixture
def clock() -> jqc.VirtualClock:
    return jqc.VirtualClock()


@pytest.fixture
def conn(clock: jqc.VirtualClock) -> Iterator[jqc.Connection]:
    with temporary_connection(clock=clock) as connection:
        yield connection


def test_virtual_time_stands_still_while_handlers_do_real_work(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("work")
    q.add("sync", None, timeout=1)
    q.add("async", None, timeout=1)

    def sync_handler(ctx: jqc.SyncJobContext) -> str:
        time.sleep(0.05)  # real time in a thread: not one virtual second passes
        return "sync done"

    async def async_handler(ctx: jqc.JobContext) -> str:
        await asyncio.sleep(0.05)  # real I/O on the loop: the same
        return "async done"

    result = drain(q, {"sync": sync_handler, "async": async_handler})
    assert result.results == ["sync done", "async done"] and clock.now() == EPOCH


def test_a_drain_that_would_not_end_is_stopped(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("forever", None)
    never = asyncio.Event

    async def stuck(ctx: jqc.JobContext) -> None:
        await never().wait()

    began = time.perf_counter()
    with pytest.raises(DrainError, match=r"did not finish within 0\.3 s of wall time.*runs not finished: 1 \(work\)"):
        drain(q, stuck, wall_timeout=0.3)
    assert time.perf_counter() - began < 5

    loop = conn.queue("loop")
    loop.add("again", None)

    def again(ctx: jqc.SyncJobContext) -> None:
        loop.add("again", None, delay=60)  # a job that enqueues itself, for ever

    with pytest.raises(DrainError, match="stopped after max_runs=5 runs: jobs keep coming"):
        drain(loop, again, max_runs=5)


def test_advancing_time_needs_a_virtual_clock() -> None:
    conn = jqc.connect()  # the system clock
    q = conn.queue("work")
    q.add("job", None)
    with pytest.raises(jqc.InvalidOptionError, match=r"need queues on a jqc\.VirtualClock"):
        drain(q, lambda ctx: "done")
    assert drain(q, lambda ctx: "done", advance_time=False).results == ["done"]  # real time, due jobs only
    conn.close()


def test_rate_limited_jobs_are_run_after_their_pause(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("work")
    q.add("call", None)

    async def call(ctx: jqc.JobContext) -> str:
        if clock.now() < EPOCH + 10:
            raise jqc.RateLimited(10)
        return "called"

    result = drain(q, call, advance_time=False)
    assert result.results == ["called"] and [r.outcome for r in result.jobs[0].runs] == ["rate_limited", "done"]
    assert clock.now() >= EPOCH + 10  # a pause is a wait on the clock inside the drain


def test_a_job_cancelled_while_it_runs_is_reported_cancelled_not_failed(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("work")
    job = q.add("export", None, attempts=3)
    other = q.add("export", "fine")
    canceller = conn.async_queue("work")

    async def export(ctx: jqc.JobContext) -> str:
        if ctx.data is None:
            await canceller.cancel(ctx.id, "user left")  # as another process would
            await clock.sleep(3600)  # stopped at the next lock renewal
        return "exported"

    result = drain(q, export)  # no DrainError: a cancelled job ended as asked
    report = {r.id: r for r in result.jobs}
    assert report[job.id].cancelled and not report[job.id].failed and len(report[job.id].runs) == 1
    assert report[other.id].succeeded and result.results == ["exported"]
    assert q.get_job(job.id).failure_reason == "cancelled: user left"  # type: ignore[union-attr]


def test_several_queues_and_unknown_job_names(conn: jqc.Connection) -> None:
    a, b = conn.queue("a"), conn.async_queue("b")
    a.add("known", 1)
    asyncio.run(b.add("unknown", 2))
    asyncio.run(conn.aclose())
    result = drain([a, b], {"known": lambda ctx: ctx.data}, raise_on_failure=False)
    assert result.results == [1]
    [failed] = result.failed
    assert failed.queue == "b" and failed.runs[0].outcome == "fail" and "no handler" in failed.runs[0].reason
    with pytest.raises(KeyError, match="the drain did not run job 'x'; it ran: 1 \\('known'\\), 1 \\('unknown'\\)"):
        result.job("x")
    with pytest.raises(jqc.InvalidOptionError, match="listed twice"):
        drain([a, conn.queue("a")], {})


def test_a_long_history_is_shortened(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("noisy", None, attempts=5)

    def noisy(ctx: jqc.SyncJobContext) -> None:
        for i in range(20):
            ctx.log(f"attempt {ctx.attempt} line {i}")
        raise KeyError(ctx.attempt)

    with pytest.raises(DrainError) as info:
        drain(q, noisy)
    text = str(info.value)
    assert "traceback of run 5:" in text and "traceback of run 4:" not in text  # one code path: shown once
    assert "log (100 lines):\n    ... 50 earlier lines left out\n    attempt 3 line 10" in text


def test_faults_and_perform_job_check_their_arguments(conn: jqc.Connection) -> None:
    with pytest.raises(jqc.InvalidOptionError, match="run counts from 1"):
        Fault(kind="crash", run=0)
    with pytest.raises(jqc.InvalidOptionError, match="at must be"):
        expire_lock(at="middle")  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError, match="past the job's attempts=2"):
        perform_job(lambda ctx: None, attempt=3, attempts=2)
    with pytest.raises(jqc.InvalidOptionError, match="not both"):
        perform_job(lambda ctx: None, connection=conn, clock=jqc.VirtualClock())
    assert conn.queue_names() == []  # nothing was left behind


def test_perform_job_leaves_nothing_on_the_connection(conn: jqc.Connection) -> None:
    assert perform_job(lambda ctx: ctx.data + 1, 41, connection=conn).result == 42
    assert conn.queue_names() == []


def test_an_unreachable_server_is_reported_once() -> None:
    backend = Backend(closed_port_url())
    problem = backend.problem()
    assert problem is not None and "does not answer" in problem and backend.problem() is problem
    assert Backend("memory://").embedded and Backend().problem() is None
