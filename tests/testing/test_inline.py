"""Inline mode: add runs the job at once, with a worker's result and exception semantics, on both backends."""

from __future__ import annotations

import asyncio

import pytest

import jqc
from jqc.testing import DrainError, InlineConnection, InlineQueue, assert_enqueued, drain, inline

EPOCH = jqc.clock.VIRTUAL_EPOCH


def test_add_runs_the_job_and_returns_it_as_stored(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    seen: list[tuple[str, float]] = []

    def welcome(ctx: jqc.SyncJobContext) -> str:
        seen.append((ctx.data, ctx.now()))
        ctx.log("hello")
        ctx.progress(100)
        return f"welcomed {ctx.data}"

    mail = inline(conn.queue("mail"), {"welcome": welcome})
    job = mail.add("welcome", "ann")
    assert isinstance(mail, InlineQueue)
    assert job.state is jqc.JobState.COMPLETED and job.result == "welcomed ann" and job.progress == 100
    assert seen == [("ann", EPOCH)] and clock.now() == EPOCH  # the test's clock did not move
    assert mail.job_logs(job.id) == ["hello"] and conn.queue("mail").counts().completed == 1


def test_a_delayed_job_runs_at_once(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    mail = inline(conn.queue("mail"), lambda ctx: ctx.data)
    assert mail.add("nudge", 3, delay=3 * 24 * 3600).result == 3 and clock.now() == EPOCH


def test_failures_raise_like_a_worker_reports_them(conn: jqc.Connection) -> None:
    def charge(ctx: jqc.SyncJobContext) -> None:
        if ctx.data == "declined":
            raise ValueError("card declined")
        if ctx.data == "retry":
            raise jqc.Retry(delay=60)
        raise jqc.Fail("bad order")

    billing = inline(conn.queue("billing"), {"charge": charge})
    with pytest.raises(ValueError, match="card declined") as info:
        billing.add("charge", "declined", attempts=3, backoff=jqc.Backoff.fixed(30))
    assert "inline: job 1 'charge' did not complete" in info.value.__notes__[0]
    assert "1. attempt 1 at +0s: raised ValueError: card declined" in info.value.__notes__[0]
    assert_enqueued(billing, job_id="1", delay=30, attempts_made=1)  # the retry is scheduled, not run
    with pytest.raises(jqc.Retry):
        billing.add("charge", "retry", attempts=2)
    with pytest.raises(jqc.Fail, match="bad order"):
        billing.add("charge", "other", attempts=5)
    assert billing.counts().failed == 1

    quiet = inline(conn.queue("billing"), {"charge": charge}, raise_on_failure=False)
    job = quiet.add("charge", "other")
    assert job.state is jqc.JobState.FAILED and job.failure_reason == "bad order"
    with pytest.raises(DrainError, match=r"no handler for job name 'refund'"):
        inline(conn.queue("billing"), {"charge": charge}).add("refund", None)


def test_the_result_must_be_json_and_a_timeout_applies(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    async def slow(ctx: jqc.JobContext) -> None:
        await clock.sleep(3600)  # waiting on the virtual clock: time passes, the timeout fires

    q = inline(conn.queue("work"), {"set": lambda ctx: {1, 2}, "slow": slow}, raise_on_failure=False)
    assert "cannot be stored" in (q.add("set", None).failure_reason or "")
    job = inline(conn.queue("work"), {"slow": slow}, raise_on_failure=False, timeout=5).add("slow", None)
    assert job.state is jqc.JobState.FAILED and job.failure_reason == "timed out after 5 s"
    assert clock.now() == EPOCH + 5


def test_jobs_a_handler_adds_run_inline_too(conn: jqc.Connection) -> None:
    order: list[str] = []
    queues: list[InlineQueue] = []

    def place(ctx: jqc.SyncJobContext) -> str:  # in a thread of the inline run
        order.append("place")
        queues[0].add("receipt", ctx.data)
        order.append("placed")
        return "placed"

    async def receipt(ctx: jqc.JobContext) -> str:
        order.append("receipt")
        await ctx.log("sent")
        return "sent"

    queues.append(inline(conn.queue("orders"), {"place": place, "receipt": receipt}))
    assert queues[0].add("place", "A1").result == "placed"
    assert order == ["place", "receipt", "placed"]

    drained: list[str] = []

    def from_a_drain(ctx: jqc.SyncJobContext) -> str:  # a drain's handler adding to an inline queue
        drained.append(queues[0].add("receipt", ctx.data).result)
        return "done"

    async def async_from_a_drain(ctx: jqc.JobContext) -> str:  # a sync add inside the drain's event loop
        drained.append(queues[0].add("receipt", ctx.data).result)
        return "done"

    plain = conn.queue("plain")
    plain.add("job", "B2", delay=60)
    plain.add("async", "C3", delay=120)
    result = drain(plain, {"job": from_a_drain, "async": async_from_a_drain})
    assert result.results == ["done", "done"] and drained == ["sent", "sent"] and result.elapsed == 120


def test_re_adding_an_existing_id_runs_nothing(conn: jqc.Connection) -> None:
    runs: list[str] = []
    q = inline(conn.queue("work"), lambda ctx: runs.append(ctx.id))
    first = q.add("job", None, job_id="once")
    again = q.add("job", None, job_id="once")
    assert runs == ["once"] and again.state is jqc.JobState.COMPLETED and again.finished_at == first.finished_at


def test_bulk_adds_and_removed_jobs(conn: jqc.Connection) -> None:
    q = inline(conn.queue("work"), lambda ctx: ctx.data * 10)
    jobs = q.add_bulk(
        [("job", 1), ("job", 2), jqc.NewJob("job", 3, jqc.JobOptions(remove_on_complete=jqc.Keep.none()))]
    )
    assert [job.result for job in jobs] == [10, 20, 30] and q.get_job(jobs[2].id) is None
    assert jobs[2].state is jqc.JobState.COMPLETED


def test_a_paused_queue_keeps_the_job(conn: jqc.Connection) -> None:
    q = inline(conn.queue("work"), lambda ctx: "ran")
    q.pause()
    assert q.add("job", None).state is jqc.JobState.WAITING
    q.resume()
    assert drain(q, lambda ctx: "drained").results == ["drained"]


def test_async_queues_and_connections(conn: jqc.Connection) -> None:
    async def double(ctx: jqc.JobContext) -> int:
        return int(ctx.data) * 2

    async def main() -> None:
        aq = inline(conn.async_queue("math"), double)
        assert (await aq.add("double", 21)).result == 42
        assert [j.result for j in await aq.add_bulk([("double", 1), ("double", 2)])] == [2, 4]
        view = inline(conn, double)
        assert isinstance(view, InlineConnection)
        assert (await view.async_queue("other").add("double", 4)).result == 8
        assert view.queue("sync").add("double", 5).result == 10  # a sync add inside a running loop
        await conn.aclose()
        await view.aclose()

    asyncio.run(main())


def test_bad_arguments_are_typed_errors(conn: jqc.Connection) -> None:
    with pytest.raises(jqc.InvalidOptionError, match=r"inline\(\) takes a jqc\.Queue"):
        inline("mail", lambda ctx: None)  # type: ignore[call-overload]
    with pytest.raises(jqc.InvalidOptionError, match="handler must be a callable"):
        inline(conn.queue("mail"), None)  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError, match="raise_on_failure must be a bool"):
        inline(conn.queue("mail"), lambda ctx: None, raise_on_failure="yes")  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError, match="until= is a drain's argument"):
        inline(conn.queue("mail"), lambda ctx: None, until=10)
    with pytest.raises(jqc.InvalidOptionError, match="concurrency must be an int"):
        inline(conn.queue("mail"), lambda ctx: None, concurrency=0)
    with pytest.raises(jqc.InvalidOptionError, match=r"unknown worker option\(s\) concurrenc; jqc\.Worker takes"):
        inline(conn.queue("mail"), lambda ctx: None, concurrenc=2)
    assert conn.queue("mail").counts().total == 0
