"""A call the server keeps refusing while the worker's other calls succeed (an ACL without the right
to one queue's keys, NOPERM on one script): the worker backs off on that call alone, with the
capped backoff on the clock, says so clearly (an ERROR now and then, the refusal as the health
reason), keeps consuming its other queues, and resumes the refused one once the server accepts it.

Both backends, on the autojumping virtual clock; the refusals are injected by the test's wrapper
of the worker's connection (``net.refuse``).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import jqc
from jqc.engine.liveness import not_consuming
from tests.worker.helpers import until

NOPERM = "NOPERM this user has no permissions to access one of the keys used as arguments"
# The backoff doubles from 50 ms to its 5 s cap, jittered down by up to half: at most 7 tries
# until the cap, then one every 2.5 s or more. The test runs 70 s.
FED_FOR = 70.0
MOST_TRIES = 7 + FED_FOR / 2.5


async def work(ctx: jqc.JobContext) -> Any:
    return ctx.data


async def _feed(queue: jqc.Queue, clock: jqc.VirtualClock, seconds: float) -> int:
    """Add a job every 0.5 s for ``seconds`` (so the worker's other calls keep succeeding)."""
    added = 0
    end = clock.now() + seconds
    while clock.now() < end:
        queue.add("work", added)
        added += 1
        await clock.sleep(0.5)
    return added


def _messages(caplog: pytest.LogCaptureFixture, text: str, level: int | None = None) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage() and (level is None or r.levelno == level)]


async def test_a_claim_refused_on_one_queue_backs_off_and_the_other_queue_keeps_consuming(
    conn: jqc.Connection, clock: jqc.VirtualClock, net: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jqc.worker")
    locked, fed = conn.queue("locked"), conn.queue("fed")
    locked.add_bulk([jqc.NewJob("work", i) for i in range(3)])
    net.refuse = {"claim@locked": jqc.PermissionDeniedError(NOPERM)}
    worker = jqc.Worker([conn.async_queue("locked"), conn.async_queue("fed")], work, heartbeat=1)
    await worker.start()
    try:
        added = await _feed(fed, clock, FED_FOR)
        await until(clock, lambda: fed.counts().completed == added, within=10)
        tries = net.touched["claim@locked"]
        assert 3 <= tries <= MOST_TRIES, tries  # before the fix: every call elsewhere reset it (455 tries)
        refusals = _messages(caplog, "claim from locked")
        assert refusals and all(r.levelno == logging.ERROR and r.exc_info is None for r in refusals)
        assert "PermissionDeniedError" in refusals[0].getMessage() and len(refusals) <= 3
        assert not _messages(caplog, "Redis serves again") and not _messages(caplog, "reconnected")
        assert worker.stats.reconnects == 0  # a refusal is not an outage
        (info,) = locked.workers()
        assert info.claim_error.startswith("PermissionDeniedError") and NOPERM in info.claim_error
        why = not_consuming(info, locked.counts(), clock.now())
        assert "3 job(s) wait" in why and "its claims fail: PermissionDeniedError: " in why and NOPERM in why

        net.refuse = {}  # the operator fixes the ACL
        fixed = clock.now()
        await until(clock, lambda: locked.counts().completed == 3, within=30)
        assert clock.now() - fixed <= 5 + 1  # within one capped backoff step
        (again,) = _messages(caplog, "claim from locked is accepted again")
        assert again.levelno == logging.WARNING and "refused" in again.getMessage()
        await clock.sleep(2)  # a heartbeat later
        (info,) = locked.workers()
        assert info.claim_error == "" and info.polled is not None and clock.now() - info.polled < 3
    finally:
        await worker.close()


async def test_a_refused_completion_backs_off_while_the_other_queue_keeps_consuming(
    conn: jqc.Connection, clock: jqc.VirtualClock, net: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jqc.worker")
    locked, fed = conn.queue("locked"), conn.queue("fed")
    job = locked.add("work", "x")
    refusal = jqc.PermissionDeniedError("NOPERM this user has no permissions to run the 'evalsha' command")
    net.refuse = {"complete@locked": refusal, "complete_many@locked": refusal}
    worker = jqc.Worker([conn.async_queue("locked"), conn.async_queue("fed")], work, heartbeat=1, lock=120)
    await worker.start()
    try:
        added = await _feed(fed, clock, FED_FOR)
        await until(clock, lambda: fed.counts().completed == added, within=10)
        tries = net.touched["complete@locked"] + net.touched["complete_many@locked"]
        assert 2 <= tries <= MOST_TRIES, tries
        stored = locked.get_job(job.id)
        assert stored is not None and stored.state is jqc.JobState.ACTIVE  # its completion waits, retried
        assert 1 <= len(_messages(caplog, "in locked: the server refuses", logging.ERROR)) <= 3
        net.refuse = {}
        await until(clock, lambda: locked.counts().completed == 1, within=10)
    finally:
        await worker.close()
    assert worker.stats.completed == added + 1 and worker.stats.reconnects == 0
