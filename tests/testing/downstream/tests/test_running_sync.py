"""Running jobs from plain (sync) tests: drain, perform_job, the worker and clock fixtures, faults.

None of these tests needs pytest-asyncio (this file also runs with ``-p no:asyncio``).
"""

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import shop

import jqc
from jqc.testing import (
    BurstWorker,
    DrainError,
    assert_enqueued,
    crash_worker,
    drain,
    drop_connection,
    expire_lock,
    perform_job,
    refute_enqueued,
)

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def test_drain_runs_every_job_through_the_delay(
    jqc_queue: Callable[..., jqc.Queue], jqc_clock: jqc.VirtualClock
) -> None:
    q = jqc_queue("orders")
    charge = shop.place_order(q, "A1", 1200, "ann@example.com")

    result = drain(q, shop.HANDLERS)

    assert result.results == [{"order": "A1", "charged": 1200}, "asked"]
    report = result.job(charge)
    assert report.succeeded and report.state == jqc.JobState.COMPLETED
    assert report.logs == ("charging order A1, attempt 1",) and report.progress == 100
    assert shop.payments.charged == {"order-A1": 1200}
    assert shop.mailer.outbox == [("ann@example.com", "how was order A1?")]
    assert result.elapsed == 24 * 3600 and jqc_clock.now() == START + 24 * 3600
    assert result.stats.completed == 2 and len(result) == 2
    refute_enqueued(q)


def test_drain_without_advancing_time_runs_only_what_is_due(
    jqc_queue: Callable[..., jqc.Queue], jqc_clock: jqc.VirtualClock
) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")

    result = drain(q, shop.HANDLERS, advance_time=False)

    assert [r.name for r in result] == ["charge"] and jqc_clock.now() == START
    assert_enqueued(q, name="ask_review", delay=24 * 3600)
    jqc_clock.advance(24 * 3600 - 1)
    assert len(drain(q, shop.HANDLERS, advance_time=False)) == 0
    jqc_clock.advance(1)
    assert drain(q, shop.HANDLERS, advance_time=False).results == ["asked"]


def test_a_day_of_delay_and_five_retries_run_on_virtual_time(
    jqc_queue: Callable[..., jqc.Queue], jqc_clock: jqc.VirtualClock
) -> None:
    q = jqc_queue("reports")
    job = q.add("nightly", {"day": 1}, delay=24 * 3600, attempts=6, backoff=jqc.Backoff.exponential(60))
    seen: list[tuple[int, float]] = []

    def nightly(ctx: jqc.SyncJobContext) -> str:
        seen.append((ctx.attempt, jqc_clock.now() - START))
        if ctx.attempt <= 5:
            raise TimeoutError(f"warehouse busy (attempt {ctx.attempt})")
        return "done"

    result = drain(q, {"nightly": nightly})

    day = 24 * 3600
    assert seen == [(1, day), (2, day + 60), (3, day + 180), (4, day + 420), (5, day + 900), (6, day + 1860)]
    report = result.job(job)
    assert report.result == "done" and [run.outcome for run in report.runs] == ["error"] * 5 + ["done"]
    assert result.elapsed == day + 1860 and result.stats.retried == 5


def test_a_failing_job_raises_with_its_history(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    shop.payments.declining.add("A1")

    with pytest.raises(DrainError) as info:
        drain(q, shop.HANDLERS)

    message = str(info.value)
    assert "1 of the 2 jobs drained from 'orders' failed" in message
    assert "job charge-A1 'charge' in queue 'orders'" in message
    assert "state: failed for good (dead-lettered); attempts made 3 of 3" in message
    assert "1. attempt 1 at +0s: raised ValueError: card declined for order A1" in message
    assert "2. attempt 2 at +10s: raised ValueError" in message and "3. attempt 3 at +30s" in message
    assert "traceback of run 3:" in message and 'raise ValueError(f"card declined' in message
    assert "log (3 lines):\n    charging order A1, attempt 1" in message
    [failed] = info.value.reports
    assert failed.failure_reason == "ValueError: card declined for order A1"
    assert isinstance(failed.error, ValueError)
    assert info.value.result is not None and info.value.result.results == ["asked"]


def test_failures_can_be_inspected_instead(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("mail")
    q.add("send_receipt", {"order": "A1", "email": "nobody"})
    result = drain(q, shop.HANDLERS, raise_on_failure=False)
    [report] = result.failed
    assert report.state == jqc.JobState.FAILED and report.runs[0].outcome == "fail"
    assert report.failure_reason == "bad address 'nobody'" and result.completed == ()
    assert q.dead_letters().total == 1


def test_perform_job_runs_one_handler_with_a_job_context() -> None:
    report = perform_job(shop.send_receipt, {"order": "A1", "email": "ann@example.com"}, name="send_receipt")
    assert report.result == "sent" and report.succeeded
    assert report.logs == ("sending receipt for A1",) and report.progress == {"sent": True}
    assert report.runs[0].attempt == 1 and shop.mailer.outbox == [("ann@example.com", "receipt A1")]


def test_perform_job_on_a_later_attempt_and_with_failures(
    jqc_connection: jqc.Connection, jqc_clock: jqc.VirtualClock
) -> None:
    seen: list[int] = []

    async def flaky(ctx: jqc.JobContext) -> int:
        seen.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("not yet")
        return ctx.attempt

    assert perform_job(flaky, attempt=3, attempts=3, connection=jqc_connection).result == 3
    with pytest.raises(RuntimeError, match="not yet") as info:
        perform_job(flaky, {"x": 1}, attempts=2, backoff=jqc.Backoff.fixed(30))
    assert "state: delayed, due at +30s; attempts made 1 of 2" in info.value.__notes__[0]
    report = perform_job(flaky, raise_on_failure=False)
    assert report.state == jqc.JobState.FAILED and isinstance(report.error, RuntimeError)
    assert seen == [3, 1, 1]
    shop.mailer.down = True
    with pytest.raises(jqc.Retry):
        perform_job(shop.send_receipt, {"order": "A1", "email": "ann@example.com"})
    with pytest.raises(jqc.Fail):
        perform_job(shop.send_receipt, {"order": "A1", "email": "nobody"})

    async def slow(ctx: jqc.JobContext) -> None:
        await jqc_clock.sleep(3600)  # waiting on the virtual clock: time passes, the timeout fires

    with pytest.raises(TimeoutError, match="timed out after 5 s"):
        perform_job(slow, timeout=5, connection=jqc_connection)
    assert jqc_clock.now() == START + 5


def test_the_worker_fixture_runs_in_burst_mode(
    jqc_queue: Callable[..., jqc.Queue], jqc_worker: Callable[..., BurstWorker], jqc_clock: jqc.VirtualClock
) -> None:
    orders, mail = jqc_queue("orders"), jqc_queue("mail")
    for i in range(5):
        shop.place_order(orders, f"A{i}", 100 + i, f"u{i}@example.com")
        mail.add("send_receipt", {"order": f"A{i}", "email": f"u{i}@example.com"})
    worker = jqc_worker([orders, mail], shop.HANDLERS, concurrency=3)

    result = worker.run()

    assert result.stats.completed == 15 and worker.last is result
    assert len(shop.payments.charged) == 5 and len(shop.mailer.outbox) == 10
    assert worker.run().runs == 0  # nothing left


def test_the_clock_fixture_moves_only_when_told(
    jqc_queue: Callable[..., jqc.Queue], jqc_clock: jqc.VirtualClock
) -> None:
    assert jqc_clock.now() == START
    q = jqc_queue("mail")
    q.add("send_receipt", {"order": "A1", "email": "ann@example.com"}, delay=60)
    jqc_clock.advance(59)
    drain(q, shop.HANDLERS, advance_time=False)
    assert_enqueued(q, name="send_receipt")
    jqc_clock.move_to(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    assert drain(q, shop.HANDLERS, advance_time=False).results == ["sent"]
    jqc_clock.autojump = True
    jqc_clock.freeze()
    assert jqc_clock.autojump is False


def test_a_crashed_worker_runs_the_job_again(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")

    result = drain(q, shop.HANDLERS, faults=[crash_worker("charge")])

    report = result.job("charge-A1")
    assert [run.fault for run in report.runs] == ["crash_worker('charge', at='end')", None]
    assert report.runs[1].started_at - report.runs[0].started_at == 30  # the lock's duration
    assert report.job is not None and report.job.stall_count == 1 and report.succeeded
    assert shop.payments.calls == ["A1", "A1"] and shop.payments.charged == {"order-A1": 1200}  # idempotent
    assert result.faults == ("crash_worker('charge', at='end')",)


def test_a_crash_exposes_a_handler_that_is_not_idempotent(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("mail")
    q.add("send_receipt", {"order": "A1", "email": "ann@example.com"})
    drain(q, shop.HANDLERS, faults=[crash_worker("send_receipt")])
    assert shop.mailer.outbox == [("ann@example.com", "receipt A1")] * 2  # sent twice


def test_a_late_completion_is_rejected_when_the_lock_expired(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")

    result = drain(q, shop.HANDLERS, faults=[expire_lock("charge")], lock=10)

    report = result.job("charge-A1")
    assert len(report.runs) == 2 and result.stats.lost == 1 and report.succeeded
    assert report.job is not None and report.job.stall_count == 1
    assert shop.payments.charged == {"order-A1": 1200}


def test_writes_after_the_lock_expired_raise_lock_lost(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    q.add("report", None)
    errors: list[BaseException] = []

    async def report(ctx: jqc.JobContext) -> str:
        try:
            await ctx.progress(50)
        except jqc.LockLostError as exc:
            errors.append(exc)
            raise
        return "ok"

    result = drain(q, {"report": report}, faults=[expire_lock(at="start")])

    assert len(errors) == 1 and "no longer held" in str(errors[0])
    assert [run.outcome for run in result.jobs[0].runs] == ["error", "done"]
    assert result.jobs[0].succeeded and result.jobs[0].job is not None and result.jobs[0].job.failed_attempts == 0


def test_a_dropped_connection_is_ridden_out(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")

    result = drain(q, shop.HANDLERS, faults=[drop_connection("charge", duration=10)])

    assert result.stats.reconnects == 1 and result.stats.completed == 2
    assert len(result.job("charge-A1").runs) == 1 and shop.payments.calls == ["A1"]


def test_a_fault_that_never_hits_is_an_error(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    with pytest.raises(DrainError, match=r"never injected: crash_worker\('refund', at='end'\)"):
        drain(q, shop.HANDLERS, faults=[crash_worker("refund")])
