"""A worker reports a failure and claims its next job in one call (``fail_and_fetch``), as it does
for successes: a run of failing jobs needs no separate claim per job. Every backend."""

from __future__ import annotations

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
