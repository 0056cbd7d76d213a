"""The same from asyncio tests (pytest-asyncio): async queues, adrain, aperform_job, BurstWorker.arun."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import shop

import jqc
from jqc.testing import (
    BurstWorker,
    DrainError,
    adrain,
    aperform_job,
    assert_enqueued,
    crash_worker,
    drain,
    drop_connection,
    enqueued_jobs,
    expire_lock,
    perform_job,
    refute_enqueued,
)

pytestmark = pytest.mark.asyncio
START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


async def test_an_async_producer_checked_and_drained(
    jqc_async_queue: Callable[..., jqc.AsyncQueue], jqc_clock: jqc.VirtualClock
) -> None:
    q = jqc_async_queue("orders")
    await shop.aplace_order(q, "A1", 1200, "ann@example.com")

    assert_enqueued(q, name="charge", data={"order": "A1", "amount": 1200})
    assert_enqueued(q, name="ask_review", delay=24 * 3600, priority=5)
    assert len(enqueued_jobs(q)) == 2

    result = await adrain(q, shop.HANDLERS)

    assert result.results == [{"order": "A1", "charged": 1200}, "asked"]
    assert jqc_clock.now() == START + 24 * 3600
    refute_enqueued(q)
    assert (await q.counts()).completed == 2


async def test_a_day_of_delay_and_five_retries_run_on_virtual_time(
    jqc_async_queue: Callable[..., jqc.AsyncQueue], jqc_clock: jqc.VirtualClock
) -> None:
    q = jqc_async_queue("reports")
    await q.add("nightly", None, delay=24 * 3600, attempts=6, backoff=jqc.Backoff.exponential(60))

    async def nightly(ctx: jqc.JobContext) -> float:
        if ctx.attempt <= 5:
            raise TimeoutError("warehouse busy")
        return jqc_clock.now() - START

    result = await adrain(q, {"nightly": nightly})
    assert result.results == [24 * 3600 + 60 * (1 + 2 + 4 + 8 + 16)]


async def test_failures_raise_with_their_history(jqc_async_queue: Callable[..., jqc.AsyncQueue]) -> None:
    q = jqc_async_queue("orders")
    await shop.aplace_order(q, "A1", 1200, "ann@example.com")
    shop.payments.declining.add("A1")
    with pytest.raises(DrainError) as info:
        await adrain(q, shop.HANDLERS)
    assert "3. attempt 3 at +30s: raised ValueError: card declined for order A1" in str(info.value)
    result = await adrain(q, shop.HANDLERS, raise_on_failure=False)  # nothing left to run
    assert result.runs == 0


async def test_aperform_job(jqc_connection: jqc.Connection, jqc_clock: jqc.VirtualClock) -> None:
    report = await aperform_job(shop.charge, {"order": "A1", "amount": 5}, name="charge", connection=jqc_connection)
    assert report.result == {"order": "A1", "charged": 5} and report.progress == 100
    assert report.logs == ("charging order A1, attempt 1",)
    sync_report = await aperform_job(shop.send_receipt, {"order": "A1", "email": "ann@example.com"})
    assert sync_report.result == "sent"  # a plain-function handler, in a thread, from an async test
    with pytest.raises(jqc.Fail):
        await aperform_job(shop.send_receipt, {"order": "A1", "email": "nobody"})

    async def slow(ctx: jqc.JobContext) -> None:
        await asyncio.sleep(0.05)  # real time: the virtual clock stands still meanwhile

    assert (await aperform_job(slow, timeout=1, connection=jqc_connection)).succeeded
    assert jqc_clock.now() == START


async def test_the_worker_fixture_from_async_code(
    jqc_async_queue: Callable[..., jqc.AsyncQueue], jqc_worker: Callable[..., BurstWorker]
) -> None:
    q = jqc_async_queue("orders")
    for i in range(3):
        await shop.aplace_order(q, f"A{i}", 10 * i, f"u{i}@example.com")
    result = await jqc_worker(q, shop.HANDLERS, concurrency=2).arun()
    assert result.stats.completed == 6 and len(shop.payments.charged) == 3


async def test_faults_from_async_code(jqc_async_queue: Callable[..., jqc.AsyncQueue]) -> None:
    q = jqc_async_queue("orders")
    await shop.aplace_order(q, "A1", 1200, "ann@example.com")
    await shop.aplace_order(q, "B2", 800, "bob@example.com")

    result = await adrain(
        q,
        shop.HANDLERS,
        faults=[crash_worker("charge"), expire_lock("charge", run=3), drop_connection("ask_review", at="start")],
        max_stalls=2,  # A1 is recovered twice (after the crash, after its lock expired): allow it
    )

    assert [len(result.job(f"charge-{o}").runs) for o in ("A1", "B2")] == [3, 1]
    assert result.stats.lost == 1 and result.stats.reconnects == 1
    assert shop.payments.calls == ["A1", "B2", "A1", "A1"] and len(shop.payments.charged) == 2
    assert len(result.faults) == 3


async def test_a_fault_seconds_into_a_run(
    jqc_async_queue: Callable[..., jqc.AsyncQueue], jqc_clock: jqc.VirtualClock
) -> None:
    q = jqc_async_queue("exports")
    await q.add("export", None)
    steps: list[tuple[int, float]] = []

    async def export(ctx: jqc.JobContext) -> str:
        for _ in range(3):
            steps.append((ctx.attempt, jqc_clock.now() - START))
            await jqc_clock.sleep(10)  # a long export: virtual time passes here
        return "exported"

    result = await adrain(q, {"export": export}, faults=[crash_worker("export", at=15)])
    assert steps[:2] == [(1, 0), (1, 10)]  # the crash came 15 s in, during the second step
    report = result.jobs[0]
    assert [run.outcome for run in report.runs] == ["crashed", "done"] and report.result == "exported"


async def test_the_sync_helpers_refuse_to_run_inside_the_event_loop(
    jqc_queue: Callable[..., jqc.Queue],
) -> None:
    with pytest.raises(RuntimeError, match="await adrain"):
        drain(jqc_queue("orders"), shop.HANDLERS)
    with pytest.raises(RuntimeError, match="await aperform_job"):
        perform_job(shop.charge, {"order": "A1", "amount": 1})


async def test_the_clock_can_autojump_for_the_tests_own_waits(jqc_clock: jqc.VirtualClock) -> None:
    jqc_clock.autojump = True
    began = time.perf_counter()
    await jqc_clock.sleep(3600)
    # A real sleep would take an hour: a minute of wall time is a generous deadline, not a timing.
    assert jqc_clock.now() == START + 3600 and time.perf_counter() - began < 60
