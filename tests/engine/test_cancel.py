"""``cancel``: a job that has not started is removed with a ``cancelled`` event; one a worker holds
is marked, its renewal reports the mark, and whatever the holder reports next ends it failed with
code ``cancelled`` (retried only when the canceller allowed it); a finished job is refused. Every
backend, both queue types."""

from __future__ import annotations

import pytest

import jqc
from jqc import FailureCode, JobState
from tests.engine.test_lifecycle import claim_one


def test_a_waiting_job_is_removed_with_an_event(queue: jqc.Queue) -> None:
    job = queue.add("x", 1)
    other = queue.add("y", 2)
    assert queue.cancel(job.id, "not needed") == "removed"
    assert queue.get_job(job.id) is None
    assert queue.counts().waiting == 1
    event = [e for e in queue.events() if e.job_id == job.id][-1]
    assert (event.name, event.fields["reason"]) == ("cancelled", "not needed")
    assert claim_one(queue).id == other.id


def test_a_delayed_job_is_removed(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", 1, delay=60)
    assert queue.cancel(job.id) == "removed"
    clock.advance(120)
    assert queue.claim("w").jobs == () and queue.counts().delayed == 0


def test_an_active_job_is_marked_and_renewal_reports_it(queue: jqc.Queue) -> None:
    job = queue.add("x", 1)
    held = claim_one(queue)
    assert queue.renew([held]).cancelled == {}
    assert queue.cancel(job.id, "user asked") == "marked"
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state is JobState.ACTIVE and stored.cancel_reason == "user asked"
    renewal = queue.renew([held])
    assert renewal.held == {job.id: True} and renewal.cancelled == {job.id: "user asked"}
    assert queue.extend([held]) == {job.id: True}  # extend's answer is unchanged by the mark


def test_the_holders_failure_ends_it_cancelled_without_retry(queue: jqc.Queue) -> None:
    job = queue.add("x", 1, attempts=5)
    held = claim_one(queue)
    queue.cancel(job.id, "stop")
    assert queue.fail(held, "CancelledError", code=FailureCode.CANCELLED) == "failed"
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state is JobState.FAILED
    assert (stored.failure_code, stored.failure_reason) == (FailureCode.CANCELLED, "cancelled: stop")
    assert queue.counts().waiting == 0 and queue.claim("w").jobs == ()


def test_a_completion_after_the_mark_does_not_complete_the_job(queue: jqc.Queue) -> None:
    job = queue.add("x", 1, attempts=3)
    held = claim_one(queue)
    queue.cancel(job.id)
    queue.complete(held, "too late")
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state is JobState.FAILED and stored.failure_code is FailureCode.CANCELLED
    assert stored.result is None and queue.counts().completed == 0


def test_complete_many_ends_only_the_marked_job_cancelled(queue: jqc.Queue) -> None:
    a, b = queue.add("x", 1), queue.add("x", 2)
    got = queue.claim("w", count=2).jobs
    queue.cancel(a.id)
    report = queue.complete_many([(c, c.job.data) for c in got])
    assert set(report.completed) == {a.id, b.id} and report.lost == ()
    assert queue.get_job(a.id).state is JobState.FAILED  # type: ignore[union-attr]
    assert queue.get_job(b.id).result == 2  # type: ignore[union-attr]


def test_retry_true_lets_it_run_again_while_attempts_remain(queue: jqc.Queue) -> None:
    job = queue.add("x", 1, attempts=2)
    queue.cancel(job.id, "restart it", retry=True)  # waiting: removed, whatever retry says
    assert queue.get_job(job.id) is None
    job = queue.add("x", 1, attempts=2)
    held = claim_one(queue)
    queue.cancel(job.id, "restart it", retry=True)
    assert queue.fail(held, "stopped", code=FailureCode.CANCELLED, retry=False) == "retry"
    again = claim_one(queue)
    assert again.job.cancel_reason is None and again.job.failed_attempts == 1
    queue.complete(again, "ok")  # the mark was cleared: this run completes
    assert queue.get_job(job.id).state is JobState.COMPLETED  # type: ignore[union-attr]


def test_retry_true_on_the_last_attempt_fails_it(queue: jqc.Queue) -> None:
    job = queue.add("x", 1)  # one attempt
    held = claim_one(queue)
    queue.cancel(job.id, retry=True)
    queue.complete(held)
    assert queue.get_job(job.id).failure_code is FailureCode.CANCELLED  # type: ignore[union-attr]


def test_a_marked_job_that_stalls_keeps_its_mark(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", 1)
    queue.claim("w", lock=1)
    queue.cancel(job.id, "gone")
    clock.advance(5)
    queue.recover_stalled()
    again = claim_one(queue)
    assert again.job.cancel_reason == "gone"  # its next holder stops it before running it
    queue.complete(again)
    assert queue.get_job(job.id).state is JobState.FAILED  # type: ignore[union-attr]


def test_a_finished_or_missing_job_is_refused(queue: jqc.Queue) -> None:
    done = queue.add("x", 1)
    queue.complete(claim_one(queue))
    with pytest.raises(jqc.JobStateError, match="finished"):
        queue.cancel(done.id)
    failed = queue.add("x", 1)
    queue.fail(claim_one(queue), "boom", retry=False)
    with pytest.raises(jqc.JobStateError):
        queue.cancel(failed.id)
    assert queue.get_job(failed.id).failure_code is FailureCode.UNRECOVERABLE  # type: ignore[union-attr]
    with pytest.raises(jqc.JobNotFoundError):
        queue.cancel("nope")
    with pytest.raises(jqc.InvalidJobIdError):
        queue.cancel("")
    with pytest.raises(jqc.InvalidOptionError):
        queue.cancel(done.id, 5)  # type: ignore[arg-type]


def test_waiting_for_a_cancelled_job_raises_its_failure(queue: jqc.Queue) -> None:
    job = queue.add("x", 1)
    held = claim_one(queue)
    queue.cancel(job.id, "why")
    queue.fail(held, "x", code=FailureCode.CANCELLED)
    with pytest.raises(jqc.JobFailedError) as info:
        queue.wait_for(job.id, 1)
    assert info.value.code == "cancelled"


async def test_async_cancel(aqueue: jqc.AsyncQueue) -> None:
    waiting = await aqueue.add("x", 1)
    active = await aqueue.add("x", 2)
    await aqueue.remove(waiting.id)
    waiting = await aqueue.add("x", 1)
    got = (await aqueue.claim("w", count=1)).jobs[0]
    assert got.id == active.id
    assert await aqueue.cancel(waiting.id) == "removed"
    assert await aqueue.cancel(active.id, "r") == "marked"
    assert (await aqueue.renew([got])).cancelled == {active.id: "r"}
