"""Handlers: sync and async, results, failures and backoff, control-flow exceptions, timeouts,
progress and logs, several queues. Every test runs on both backends on an autojumping virtual clock."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import jqc
from tests.worker.helpers import EPOCH, elapsed

ABOUT = pytest.approx  # virtual times below are exact to the script's whole milliseconds


async def test_async_and_sync_handlers_complete_jobs(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    thumbs = [q.add("thumb", {"n": i}) for i in range(3)]
    resizes = [q.add("resize", {"n": i}) for i in range(3)]
    seen: list[tuple[str, str, int, str]] = []
    threads: set[str] = set()

    async def thumb(ctx: jqc.JobContext) -> dict[str, int]:
        seen.append(("thumb", ctx.id, ctx.attempt, ctx.queue))
        return {"double": ctx.data["n"] * 2}

    def resize(ctx: jqc.SyncJobContext) -> int:
        threads.add(threading.current_thread().name)
        seen.append(("resize", ctx.id, ctx.attempt, ctx.queue))
        return int(ctx.data["n"]) + 100

    worker = jqc.Worker(q, {"thumb": thumb, "resize": resize}, concurrency=4)
    stats = await worker.run_until_empty()

    assert stats.completed == 6 and stats.failed == 0 and stats.processed == 6
    assert sorted(s[1] for s in seen) == sorted(j.id for j in thumbs + resizes)
    assert {(s[2], s[3]) for s in seen} == {(1, "photos")}
    assert threading.main_thread().name not in threads and all(t.startswith("jqc-") for t in threads)
    for i, job in enumerate(thumbs):
        stored = q.get_job(job.id)
        assert stored and stored.state == jqc.JobState.COMPLETED and stored.result == {"double": 2 * i}
        assert stored.worker == worker.id
    for i, job in enumerate(resizes):
        stored = q.get_job(job.id)
        assert stored and stored.result == i + 100
    assert q.counts().active == 0


async def test_unknown_job_name_fails_for_good(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("tag", 1, attempts=3)

    async def thumb(ctx: jqc.JobContext) -> None:
        raise AssertionError("not called")

    stats = await jqc.Worker(q, {"thumb": thumb}).run_until_empty()
    stored = q.get_job(job.id)
    assert stats.failed == 1
    assert stored and stored.state == jqc.JobState.FAILED and stored.attempts_made == 1
    assert "no handler for job name 'tag'" in (stored.failure_reason or "")


async def test_exceptions_retry_with_the_jobs_backoff(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=3, backoff=jqc.Backoff.exponential(10))
    runs: list[float] = []

    async def flaky(ctx: jqc.JobContext) -> str:
        runs.append(elapsed(clock))
        if ctx.attempt < 3:
            raise ValueError(f"boom {ctx.attempt}")
        return "ok"

    stats = await jqc.Worker(q, flaky).run_until_empty(delayed=True)
    assert stats.retried == 2 and stats.completed == 1
    assert [runs[1] - runs[0], runs[2] - runs[1]] == [ABOUT(10, abs=0.002), ABOUT(20, abs=0.002)]
    stored = q.get_job(job.id)
    assert stored and stored.result == "ok" and stored.failed_attempts == 2
    assert stored.failure_reason == "ValueError: boom 2" and "ValueError: boom 2" in (stored.traceback or "")


async def test_exhausted_attempts_dead_letter_with_traceback(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=2)

    def broken(ctx: jqc.SyncJobContext) -> None:
        raise KeyError("photo")

    stats = await jqc.Worker(q, broken).run_until_empty(delayed=True)
    assert stats.retried == 1 and stats.failed == 1
    stored = q.get_job(job.id)
    assert stored and stored.state == jqc.JobState.FAILED and stored.attempts_made == 2
    assert stored.failure_reason == "KeyError: 'photo'" and "in broken" in (stored.traceback or "")
    page = q.dead_letters()
    assert page.total == 1 and page.letters[0].job.id == job.id


async def test_custom_backoff_from_the_workers_registry(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    q.add("thumb", None, attempts=3, backoff=jqc.Backoff.custom("linear"))
    runs: list[float] = []
    errors: list[str] = []

    def linear(attempt: int, error: BaseException | None) -> float:
        errors.append(type(error).__name__)
        return 5.0 * attempt

    async def flaky(ctx: jqc.JobContext) -> None:
        runs.append(elapsed(clock))
        if ctx.attempt < 3:
            raise TimeoutError("slow")

    await jqc.Worker(q, flaky, backoff_functions={"linear": linear}).run_until_empty(delayed=True)
    assert [runs[1] - runs[0], runs[2] - runs[1]] == [ABOUT(5, abs=0.002), ABOUT(10, abs=0.002)]
    assert errors == ["TimeoutError", "TimeoutError"]


async def test_unregistered_custom_backoff_fails_for_good_saying_why(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=5, backoff=jqc.Backoff.custom("missing"))

    async def broken(ctx: jqc.JobContext) -> None:
        raise RuntimeError("x")

    await jqc.Worker(q, broken).run_until_empty(delayed=True)
    stored = q.get_job(job.id)
    assert stored and stored.state == jqc.JobState.FAILED and stored.attempts_made == 1
    assert "not retried" in (stored.failure_reason or "") and "missing" in (stored.failure_reason or "")


async def test_fail_fails_for_good_without_using_attempts(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=5)
    calls = 0

    async def refuse(ctx: jqc.JobContext) -> None:
        nonlocal calls
        calls += 1
        raise jqc.Fail("corrupt photo")

    stats = await jqc.Worker(q, refuse).run_until_empty(delayed=True)
    stored = q.get_job(job.id)
    assert calls == 1 and stats.failed == 1
    assert stored and stored.state == jqc.JobState.FAILED and stored.failure_reason == "corrupt photo"


async def test_retry_runs_again_after_its_delay_and_counts_an_attempt(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=3, backoff=jqc.Backoff.fixed(7))
    runs: list[tuple[float, int]] = []

    async def later(ctx: jqc.JobContext) -> None:
        runs.append((elapsed(clock), ctx.attempt))
        if ctx.attempt == 1:
            raise jqc.Retry(30)
        if ctx.attempt == 2:
            raise jqc.Retry()  # no delay given: the job's backoff (7 s)

    stats = await jqc.Worker(q, later).run_until_empty(delayed=True)
    assert [a for _, a in runs] == [1, 2, 3] and stats.retried == 2 and stats.completed == 1
    assert runs[1][0] - runs[0][0] == ABOUT(30, abs=0.002)
    assert runs[2][0] - runs[1][0] == ABOUT(7, abs=0.002)
    stored = q.get_job(job.id)
    assert stored and stored.failed_attempts == 2 and stored.failure_reason == "retry requested"


async def test_retry_without_attempts_left_fails_for_good(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None)  # one attempt

    async def later(ctx: jqc.JobContext) -> None:
        raise jqc.Retry(5, reason="upstream busy")

    await jqc.Worker(q, later).run_until_empty(delayed=True)
    stored = q.get_job(job.id)
    assert stored and stored.state == jqc.JobState.FAILED and stored.failure_reason == "upstream busy"


async def test_rate_limited_hands_back_without_an_attempt_and_pauses_claims(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("photos")
    first = q.add("call-api", 1)
    q.add("call-api", 2)
    runs: list[tuple[float, str, int]] = []

    async def api(ctx: jqc.JobContext) -> None:
        runs.append((elapsed(clock), ctx.id, ctx.attempt))
        if len(runs) == 1:
            raise jqc.RateLimited(20)

    stats = await jqc.Worker(q, api, concurrency=1).run_until_empty()
    assert stats.released == 1 and stats.completed == 2 and stats.retried == 0
    # the handed-back job runs first again, as attempt 1, once the pause is over
    assert runs[0][1:] == (first.id, 1) and runs[1][1:] == (first.id, 1)
    assert runs[1][0] - runs[0][0] == ABOUT(20, abs=0.002)
    stored = q.get_job(first.id)
    assert stored and stored.failed_attempts == 0


async def test_queue_rate_limit_is_waited_out_without_polling(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    q.configure(rate_limit=(2, 10.0))
    for i in range(5):
        q.add("call-api", i)
    starts: list[float] = []

    async def api(ctx: jqc.JobContext) -> None:
        starts.append(elapsed(clock))

    await jqc.Worker(q, api, concurrency=5).run_until_empty()
    assert [round(s) for s in starts] == [0, 0, 10, 10, 20]


async def test_timeouts_from_the_job_and_the_worker_default(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    own = q.add("slow", None, timeout=1.5)
    default = q.add("slow", None)
    cancelled: list[str] = []

    async def slow(ctx: jqc.JobContext) -> None:
        try:
            await clock.sleep(1000)
        except asyncio.CancelledError:
            cancelled.append(ctx.id)
            raise

    stats = await jqc.Worker(q, slow, timeout=4, concurrency=2).run_until_empty()
    assert stats.timed_out == 2 and stats.failed == 2
    assert sorted(cancelled) == sorted([own.id, default.id])
    for job, limit in ((own, 1.5), (default, 4.0)):
        stored = q.get_job(job.id)
        assert (
            stored and stored.state == jqc.JobState.FAILED and stored.failure_reason == f"timed out after {limit:g} s"
        )
        assert stored.finished_at is not None and stored.started_at is not None
        assert stored.finished_at - stored.started_at == ABOUT(limit, abs=0.002)


async def test_timeout_of_a_thread_handler_abandons_it_and_signals_it(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("blocking", None, timeout=2)
    saw_stop = threading.Event()
    writes: list[str] = []

    def blocking(ctx: jqc.SyncJobContext) -> None:
        if ctx.stop_event.wait(10):  # real seconds: returns as soon as the worker gives up
            saw_stop.set()
            try:
                ctx.progress(99)
            except jqc.LockLostError:
                writes.append("rejected")

    stats = await jqc.Worker(q, blocking).run_until_empty()
    assert stats.timed_out == 1
    stored = q.get_job(job.id)
    assert stored and stored.state == jqc.JobState.FAILED and stored.progress is None
    await asyncio.get_running_loop().run_in_executor(None, saw_stop.wait, 5)
    assert saw_stop.is_set()
    for _ in range(100):
        if writes:
            break
        await asyncio.sleep(0.01)
    assert writes == ["rejected"]


async def test_progress_and_log_from_async_and_sync_handlers(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    a = q.add("async", None)
    s = q.add("sync", None)

    async def async_handler(ctx: jqc.JobContext) -> None:
        await ctx.progress(10)
        assert await ctx.log("resized") == 1
        await ctx.progress({"done": 2, "of": 2})
        assert await ctx.log("tagged") == 2

    def sync_handler(ctx: jqc.SyncJobContext) -> None:
        ctx.progress(50)
        assert ctx.log("thumbnail written") == 1

    await jqc.Worker(q, {"async": async_handler, "sync": sync_handler}).run_until_empty()
    got_a, got_s = q.get_job(a.id), q.get_job(s.id)
    assert got_a and got_a.progress == {"done": 2, "of": 2} and q.job_logs(a.id) == ["resized", "tagged"]
    assert got_s and got_s.progress == 50 and q.job_logs(s.id) == ["thumbnail written"]
    assert [e.name for e in q.events() if e.job_id == a.id].count("progress") == 2


async def test_result_that_is_not_json_fails_without_retry(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=3)

    async def bad(ctx: jqc.JobContext) -> Any:
        return {1: object()}

    stats = await jqc.Worker(q, bad).run_until_empty(delayed=True)
    stored = q.get_job(job.id)
    assert stats.failed == 1 and stats.retried == 0
    assert stored and stored.state == jqc.JobState.FAILED and stored.attempts_made == 1
    assert "result cannot be stored" in (stored.failure_reason or "")
    assert stored.failure_code is jqc.FailureCode.UNRECOVERABLE
    assert stored.traceback and "DataNotJsonError" in stored.traceback  # where the encoding failed


async def test_sync_function_returning_a_coroutine_is_refused(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=2)

    async def real(ctx: Any) -> int:
        return 1

    def wrapper(ctx: jqc.SyncJobContext) -> Any:
        return real(ctx)

    await jqc.Worker(q, wrapper).run_until_empty()
    stored = q.get_job(job.id)
    assert stored and stored.state == jqc.JobState.FAILED and "async def" in (stored.failure_reason or "")


async def test_several_queues_with_their_own_concurrency(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    small, big = conn.queue("small"), conn.async_queue("big")
    for i in range(6):
        small.add("job", i)
        await big.add("job", i)
    running: dict[str, int] = {"small": 0, "big": 0}
    peak: dict[str, int] = {"small": 0, "big": 0}
    finished: dict[str, float] = {}

    async def work(ctx: jqc.JobContext) -> None:
        running[ctx.queue] += 1
        peak[ctx.queue] = max(peak[ctx.queue], running[ctx.queue])
        await clock.sleep(1)
        running[ctx.queue] -= 1
        finished[ctx.queue] = elapsed(clock)

    stats = await jqc.Worker([(small, 1), (big, 3)], work).run_until_empty()
    assert stats.completed == 12 and peak == {"small": 1, "big": 3}
    assert finished == {"small": ABOUT(6, abs=0.01), "big": ABOUT(2, abs=0.01)}


async def test_finishing_jobs_claim_their_successors_in_the_same_call(conn: jqc.Connection, net: Any) -> None:
    q = conn.queue("photos")
    for i in range(20):
        q.add("job", i)

    async def work(ctx: jqc.JobContext) -> None:
        return None

    stats = await jqc.Worker(q, work, concurrency=1).run_until_empty()
    assert stats.completed == 20
    assert net.sent["complete"] == 20 and net.sent["claim"] <= 4  # the rest came with fetch_next


async def test_batch_claims_fill_free_slots(conn: jqc.Connection, net: Any, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    for i in range(8):
        q.add("job", i)
    starts: list[float] = []

    async def work(ctx: jqc.JobContext) -> None:
        starts.append(elapsed(clock))
        await clock.sleep(1)

    await jqc.Worker(q, work, concurrency=8).run_until_empty()
    assert starts == [0.0] * 8 and net.sent["claim"] <= 3


def test_worker_options_are_validated(conn: jqc.Connection) -> None:
    q = conn.queue("photos")

    def h(ctx: jqc.SyncJobContext) -> None:
        return None

    for bad in (
        {"concurrency": 0},
        {"lock": 0},
        {"lock": 3, "renew_interval": 3},
        {"timeout": -1},
        {"grace": -1},
        {"max_stalls": -1},
    ):
        with pytest.raises(jqc.InvalidOptionError):
            jqc.Worker(q, h, **bad)
    with pytest.raises(jqc.InvalidOptionError):
        jqc.Worker(q, "not callable")  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError):
        jqc.Worker([], h)
    with pytest.raises(jqc.InvalidOptionError):
        jqc.Worker([q, conn.queue("other", clock=jqc.VirtualClock())], h)
    with pytest.raises(jqc.InvalidOptionError):
        jqc.Retry(-1)
    assert EPOCH > 0


async def test_a_handler_that_cannot_be_called_fails_the_attempt(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("thumb", None, attempts=2)

    async def no_args() -> None:
        return None

    stats = await jqc.Worker(q, no_args).run_until_empty(delayed=True)  # type: ignore[arg-type]
    stored = q.get_job(job.id)
    assert stats.retried == 1 and stats.failed == 1
    assert stored and stored.state == jqc.JobState.FAILED and (stored.failure_reason or "").startswith("TypeError")
