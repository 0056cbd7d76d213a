"""Workers drive schedules: one lease holder per queue fires each tick once, whatever the number of
workers, and a dead holder's successor fires what is due without losing or doubling a tick."""

from __future__ import annotations

import asyncio
import logging

import pytest

import jqc
from tests.worker.helpers import EPOCH, until


def tick_ids(name: str, ticks: range, every: float) -> list[str]:
    return [f"s:{name}:{int((EPOCH + every * k) * 1000)}" for k in ticks]


async def test_many_workers_fire_each_tick_once(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    q.schedule("cleanup", every=60, data={"older_than": "1d"})
    runs: list[tuple[str, object]] = []

    async def cleanup(ctx: jqc.JobContext) -> None:
        runs.append((ctx.id, ctx.data))

    workers = [jqc.Worker(q, {"cleanup": cleanup}, concurrency=2, summary_interval=None) for _ in range(4)]
    for w in workers:
        await w.start()
    await clock.sleep(10 * 60 + 5)
    await until(clock, lambda: q.counts().waiting == 0 and q.counts().active == 0)
    for w in workers:
        await w.close()
    assert sorted(job_id for job_id, _ in runs) == tick_ids("cleanup", range(1, 11), 60)
    assert all(data == {"older_than": "1d"} for _, data in runs)
    assert sum(w.stats.scheduled for w in workers) == 10
    assert sum(1 for w in workers if w.stats.scheduled) == 1  # one lease holder did it all
    stored = q.get_schedule("cleanup")
    assert stored is not None and stored.fired == 10 and stored.skipped_missed == 0


async def test_a_killed_holder_is_replaced_and_no_tick_is_lost_or_doubled(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("photos")
    q.schedule("beat", every=20, missed="skip", grace=30)

    async def beat(ctx: jqc.JobContext) -> None:
        return None

    first = jqc.Worker(q, beat, summary_interval=None)
    second = jqc.Worker(q, beat, summary_interval=None)
    await first.start()
    await clock.sleep(0.5)
    await second.start()
    await clock.sleep(45)
    assert first.stats.scheduled == 2 and second.stats.scheduled == 0
    await first.kill()  # its lease runs out in at most 5 s; ticks stay within the 30 s grace
    await clock.sleep(120)
    await second.close()
    stored = q.get_schedule("beat")
    assert stored is not None and stored.skipped_missed == 0
    assert first.stats.scheduled + second.stats.scheduled == stored.fired == 8
    done = sorted(j.id for j in q.list_jobs("completed", limit=100).jobs)
    assert done == tick_ids("beat", range(1, 9), 20)


async def test_a_worker_with_schedule_interval_none_never_fires(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    q.schedule("beat", every=5)

    async def beat(ctx: jqc.JobContext) -> None:
        return None

    async with jqc.Worker(q, beat, schedule_interval=None, summary_interval=None) as worker:
        await clock.sleep(30)
        assert worker.stats.scheduled == 0 and q.counts().waiting == 0


async def test_the_worker_logs_what_its_schedules_did(
    conn: jqc.Connection, clock: jqc.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    q = conn.queue("photos")
    q.schedule("report", cron="* * * * *", missed="once")
    clock.move_to(EPOCH + 3600)  # the schedule was not driven for an hour

    async def report(ctx: jqc.JobContext) -> None:
        return None

    with caplog.at_level(logging.INFO, logger="jqc.worker"):
        async with jqc.Worker(q, report, summary_interval=None):
            await asyncio.sleep(0)
            await clock.sleep(2)
    lines = [r.getMessage() for r in caplog.records if "schedule report" in r.getMessage()]
    assert lines and "fired 1 tick(s)" in lines[0] and "skipped 59 missed" in lines[0]
