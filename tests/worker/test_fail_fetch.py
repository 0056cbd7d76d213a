"""A worker reports a failure and claims its next job in one call (``fail_and_fetch``), as it does
for successes: a run of failing jobs needs no separate claim per job. Every backend."""

from __future__ import annotations

import asyncio
from typing import Any

import jqc
from tests.worker.helpers import until


async def test_failures_claim_their_successors(conn: jqc.Connection, clock: jqc.VirtualClock, net: Any) -> None:
    q = conn.queue("photos")
    q.add_bulk([("render", i) for i in range(6)])

    async def handler(ctx: jqc.JobContext) -> None:
        raise ValueError(f"bad input {ctx.data}")

    worker = jqc.Worker(q, handler, concurrency=1)
    await worker.start()
    await until(clock, lambda: q.counts().failed == 6)
    await worker.close()
    assert worker.stats.failed == 6
    assert net.sent["fail"] == 6
    # The first claim, and the idle ones after the last failure found nothing; the rest came with the failures
    # (one claim per job without fetch-next).
    assert net.sent["claim"] <= 3


async def test_a_queue_wide_rate_limit_holds_off_every_worker(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    runs: list[tuple[str, float]] = []

    async def handler(ctx: jqc.JobContext) -> None:
        runs.append((ctx.worker, clock.now()))
        if len(runs) == 1:
            raise jqc.RateLimited(60, "upstream said 429", queue_wide=True)

    a = jqc.Worker(q, handler, name="a", concurrency=1)
    await a.start()
    q.add("call", 1)
    await until(clock, lambda: len(runs) == 1)
    limited_at = runs[0][1]
    b = jqc.Worker(q, handler, name="b", concurrency=1)
    await b.start()  # b did not raise, but the hold is the queue's
    await until(clock, lambda: q.counts().completed == 1)
    await asyncio.gather(a.close(), b.close())
    assert len(runs) == 2 and runs[1][1] - limited_at >= 60


async def test_worker_retention_overrides_the_queues_defaults(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos", default_options=jqc.JobOptions(remove_on_complete=jqc.Keep.all()))
    jobs = q.add_bulk([("render", i) for i in range(5)])

    async def handler(ctx: jqc.JobContext) -> int:
        if ctx.data == 4:
            raise jqc.Fail("bad")
        return int(ctx.data)

    worker = jqc.Worker(q, handler, keep_completed=jqc.Keep.last(2), keep_failed=jqc.Keep.none())
    await worker.start()
    await until(clock, lambda: worker.stats.completed == 4 and worker.stats.failed == 1)
    await worker.close()
    counts = q.counts()
    assert (counts.completed, counts.failed) == (2, 0)
    assert q.get_job(jobs[4].id) is None and q.dead_letters().total == 1
