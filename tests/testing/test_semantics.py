"""Semantics a test relies on, pinned on both backends: re-adding a job id in each state, ctx.now(),
the seeded worker rng, the dead-letter API, and what the fixtures share."""

from __future__ import annotations

import asyncio
import random

import pytest

import jqc
from jqc.testing import DrainError, assert_enqueued, drain, perform_job
from jqc.testing.seeding import current_rng

EPOCH = jqc.clock.VIRTUAL_EPOCH


def _fail(ctx: jqc.SyncJobContext) -> None:
    raise jqc.Fail("bad input")


def test_re_adding_a_waiting_or_delayed_job_returns_it_unchanged(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", {"v": 1}, job_id="w")
    q.add("job", {"v": 1}, job_id="d", delay=60)
    again_w = q.add("job", {"v": 2}, job_id="w", priority=9)
    again_d = q.add("job", {"v": 2}, job_id="d", delay=5)
    assert again_w.data == {"v": 1} and again_w.options.priority == 0 and again_w.state is jqc.JobState.WAITING
    assert again_d.data == {"v": 1} and again_d.state is jqc.JobState.DELAYED and again_d.ready_at == EPOCH + 60
    assert_enqueued(q, job_id="w", count=1)
    assert q.counts().waiting == 1 and q.counts().delayed == 1


def test_re_adding_an_active_job_returns_it_unchanged(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", 1, job_id="a")
    seen: list[jqc.Job] = []

    def handler(ctx: jqc.SyncJobContext) -> str:
        seen.append(q.add("job", 2, job_id="a"))  # while it runs
        return "done"

    assert drain(q, handler).results == ["done"]
    [during] = seen
    assert during.state is jqc.JobState.ACTIVE and during.data == 1 and q.counts().completed == 1


def test_re_adding_a_completed_job_returns_it_and_runs_nothing(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", 1, job_id="c")
    drain(q, lambda ctx: "first")
    again = q.add("job", 2, job_id="c")
    assert again.state is jqc.JobState.COMPLETED and again.result == "first"
    assert drain(q, lambda ctx: "second").runs == 0

    q.add("job", 1, job_id="gone", remove_on_complete=jqc.Keep.none())
    drain(q, lambda ctx: "first")
    fresh = q.add("job", 2, job_id="gone")  # removed on completion: the id is free again
    assert fresh.state is jqc.JobState.WAITING and fresh.data == 2


def test_re_adding_a_failed_dead_lettered_job(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", 1, job_id="f")
    drain(q, _fail, raise_on_failure=False)
    again = q.add("job", 2, job_id="f")
    assert again.state is jqc.JobState.FAILED and again.data == 1  # unchanged, not run again
    assert q.dead_letters().total == 1

    assert q.purge_dead("f") == 1  # the dead letter goes; the failed job stays
    assert q.add("job", 3, job_id="f").state is jqc.JobState.FAILED

    q.remove("f")  # the job itself removed: the id is free
    assert q.add("job", 4, job_id="f").state is jqc.JobState.WAITING

    other = conn.queue("other")
    other.add("job", 1, job_id="r", remove_on_fail=jqc.Keep.none())
    drain(other, _fail, raise_on_failure=False)
    assert other.get_job("r") is None and other.dead_letters().total == 1  # removed, its dead letter kept
    assert other.add("job", 5, job_id="r").state is jqc.JobState.WAITING  # a new job under the id
    with pytest.raises(jqc.JobStateError, match="belongs to a live job again"):
        other.replay_dead("r")


def test_the_dead_letter_api(conn: jqc.Connection) -> None:
    q = conn.queue("billing")
    for order in ("A1", "B2"):
        q.add("charge", {"order": order}, job_id=f"charge-{order}")
    drain(q, _fail, raise_on_failure=False)

    page = q.dead_letters()  # list: newest first
    assert page.total == 2 and [letter.job.id for letter in page.letters] == ["charge-B2", "charge-A1"]
    [letter] = q.find_dead(lambda letter: letter.job.data["order"] == "A1")  # show one
    assert letter.job.failure_reason == "bad input" and letter.dead_at == EPOCH and letter.worker
    q.replay_dead("charge-A1")  # replay: back to waiting, attempts reset, the replay counted
    [replayed] = assert_enqueued(q, job_id="charge-A1", attempts_made=0)
    assert replayed.replayed == 1 and q.dead_letters().total == 1
    assert drain(q, lambda ctx: "charged").results == ["charged"]
    assert q.purge_all_dead() == 1 and q.dead_letters().total == 0  # purge
    with pytest.raises(jqc.JobNotFoundError):
        q.purge_dead("charge-B2")


def test_ctx_now_reads_the_queue_clock(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("work")
    q.add("later", None, delay=3600)
    seen: list[float] = []

    async def later(ctx: jqc.JobContext) -> None:
        seen.append(ctx.now())

    drain(q, later)
    assert seen == [EPOCH + 3600]
    report = perform_job(lambda ctx: ctx.now(), connection=conn)  # a plain function: SyncJobContext.now()
    assert report.result == EPOCH + 3600


def test_ctx_now_is_the_real_time_in_production() -> None:
    conn = jqc.connect()  # the system clock
    q = conn.queue("work")
    q.add("job", None)
    seen: list[float] = []

    async def job(ctx: jqc.JobContext) -> None:
        seen.append(ctx.now())

    async def main() -> None:
        system = jqc.SystemClock()
        before = system.now()
        await jqc.Worker(q, job, concurrency=1).run_until_empty()
        assert before <= seen[0] <= system.now()
        await conn.aclose()

    asyncio.run(main())
    conn.close()


def test_backoff_jitter_comes_from_the_seeded_stream(conn: jqc.Connection) -> None:
    def due_times(rng: random.Random | None) -> list[float]:
        q = conn.queue(f"jitter-{random.random():.9f}"[2:].replace(".", ""))
        q.add("flaky", None, attempts=4, backoff=jqc.Backoff.exponential(100, jitter=0.5))

        def flaky(ctx: jqc.SyncJobContext) -> float:
            if ctx.attempt < 4:
                raise ConnectionError("busy")
            return ctx.now()

        options = {} if rng is None else {"rng": rng}
        result = drain(q, flaky, **options)  # type: ignore[arg-type]
        return [round(run.started_at - result.started_at, 3) for run in result.jobs[0].runs]

    first, second = due_times(random.Random(7)), due_times(random.Random(7))
    assert first == second and first[1] < 100  # the same jitter from the same seed; jitter shortens
    assert due_times(random.Random(8)) != first
    assert isinstance(current_rng(), random.Random)  # (under the plugin: this test's stream)


def test_a_drain_error_keeps_the_result(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", None)
    with pytest.raises(DrainError) as info:
        drain(q, _fail)
    assert info.value.result is not None and info.value.result.failed == info.value.reports
