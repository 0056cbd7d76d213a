"""``fail_and_fetch`` and ``release_and_fetch``: report a failure (or hand a job back, delayed or
not) and claim the next jobs in the same call, as ``complete(..., fetch_next=)`` does; a stale token
changes nothing and claims nothing. Every backend, both queue types."""

from __future__ import annotations

import pytest

import jqc
from jqc import JobState
from tests.engine.test_lifecycle import claim_one


def test_fail_and_fetch_fails_and_claims_the_next_job(queue: jqc.Queue) -> None:
    first, second = queue.add("x", 1, attempts=2), queue.add("x", 2)
    held = claim_one(queue)
    outcome = queue.fail_and_fetch(held, "boom", worker="w1", delay=30)
    assert outcome.verdict == "retry" and outcome.next is not None
    assert [c.id for c in outcome.next.jobs] == [second.id]
    assert queue.get_job(first.id).state is JobState.DELAYED  # type: ignore[union-attr]
    final = queue.fail_and_fetch(outcome.next.jobs[0], "boom", worker="w1", retry=False)
    assert final.verdict == "failed" and final.next is not None and final.next.status == jqc.Code.EMPTY


def test_fail_and_fetch_with_a_stale_token_claims_nothing(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x", 1)
    queue.add("x", 2)
    held = claim_one(queue, lock=1)
    clock.advance(5)
    queue.recover_stalled()
    with pytest.raises(jqc.LockLostError):
        queue.fail_and_fetch(held, "late", worker="w1")
    assert queue.counts().active == 0 and queue.counts().waiting == 2


def test_release_and_fetch_moves_to_delayed_and_claims_the_next(queue: jqc.Queue) -> None:
    first, second = queue.add("x", 1), queue.add("x", 2)
    held = claim_one(queue)
    following = queue.release_and_fetch(held, delay=60, worker="w1")
    assert following is not None and [c.id for c in following.jobs] == [second.id]
    stored = queue.get_job(first.id)
    assert stored is not None and stored.state is JobState.DELAYED and stored.failed_attempts == 0


def test_a_cancelled_job_fails_and_fetches_too(queue: jqc.Queue) -> None:
    job, other = queue.add("x", 1, attempts=3), queue.add("x", 2)
    held = claim_one(queue)
    queue.cancel(job.id)
    outcome = queue.fail_and_fetch(held, "stopped", worker="w1")
    assert outcome.verdict == "failed" and [c.id for c in outcome.next.jobs] == [other.id]  # type: ignore[union-attr]


def test_bad_fetch_arguments_are_refused(queue: jqc.Queue) -> None:
    queue.add("x", 1)
    held = claim_one(queue)
    with pytest.raises(jqc.InvalidOptionError):
        queue.fail_and_fetch(held, "x", worker="w1", fetch_next=-1)
    with pytest.raises(jqc.InvalidOptionError):
        queue.release_and_fetch(held, worker="")
    assert queue.counts().active == 1


async def test_async_fail_and_release_fetch(aqueue: jqc.AsyncQueue) -> None:
    for i in range(3):
        await aqueue.add("x", i)
    held = (await aqueue.claim("w1")).jobs[0]
    outcome = await aqueue.fail_and_fetch(held, "x", worker="w1", retry=False)
    assert outcome.next is not None and len(outcome.next.jobs) == 1
    following = await aqueue.release_and_fetch(outcome.next.jobs[0], worker="w1", delay=5)
    assert following is not None and len(following.jobs) == 1
