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
