"""``clean(state, grace)``: its cut-off is inclusive, on the queue's (virtual) clock in whole ms, for
every state it takes, on both backends and both queue types."""

from __future__ import annotations

import jqc
from tests.engine.test_lifecycle import claim_one


def test_grace_zero_cleans_a_job_that_completed_this_instant(queue: jqc.Queue) -> None:
    job = queue.add("x")
    queue.complete(claim_one(queue), "done")
    assert queue.clean("completed", 0) == [job.id]
    assert queue.get_job(job.id) is None
    assert queue.counts().completed == 0


def test_grace_zero_cleans_a_job_that_failed_this_instant(queue: jqc.Queue) -> None:
    job = queue.add("x")
    queue.fail(claim_one(queue), "boom", retry=False)
    assert queue.clean("failed", 0) == [job.id]
    assert queue.counts().failed == 0


def test_the_cut_off_is_inclusive_to_the_millisecond(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    old = queue.add("old")
    queue.complete(claim_one(queue))
    clock.advance(0.001)
    young = queue.add("young")
    queue.complete(claim_one(queue))
    clock.advance(4.999)  # old finished 5 s ago, young 4.999 s ago
    assert queue.clean("completed", 5) == [old.id]
    assert queue.clean("completed", 5) == []
    clock.advance(0.001)
    assert queue.clean("completed", 5) == [young.id]


def test_waiting_and_delayed_jobs_count_from_their_creation(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    waiting = queue.add("w")
    delayed = queue.add("d", delay=100)
    clock.advance(10)
    later = queue.add("w2")
    assert queue.clean("waiting", 10) == [waiting.id]
    assert queue.clean("delayed", 10.001) == []
    assert queue.clean("delayed", 10) == [delayed.id]
    assert queue.clean("waiting", 0) == [later.id]  # created now: grace 0 takes it too
    assert queue.counts().total == 0


def test_cleaning_leaves_active_jobs_alone(queue: jqc.Queue) -> None:
    queue.add("x")
    held = claim_one(queue)
    assert queue.clean("waiting", 0) == []
    queue.complete(held)  # its token still holds: nothing removed it


async def test_async_clean_is_inclusive_too(aqueue: jqc.AsyncQueue) -> None:
    job = await aqueue.add("x")
    got = await aqueue.claim("w")
    await aqueue.complete(got.jobs[0])
    assert await aqueue.clean("completed", 0) == [job.id]
