"""Retrying finished jobs: a completed job (one, or the oldest in bulk) runs again with its result
cleared; failed jobs can be picked by when they failed (``before``, inclusive); ``reset_attempts``
works the same on each path. Every backend, both queue types."""

from __future__ import annotations

import pytest

import jqc
from jqc import JobState
from tests.engine.test_lifecycle import claim_one


def finish(queue: jqc.Queue, clock: jqc.VirtualClock, *, fail: bool = False) -> jqc.Job:
    job = queue.add("x", None, attempts=3)
    held = claim_one(queue)
    assert held.id == job.id
    if fail:
        queue.fail(held, "boom", retry=False)
    else:
        queue.complete(held, {"n": 1})
    clock.advance(10)
    return job


def test_a_completed_job_runs_again_with_its_result_cleared(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = finish(queue, clock)
    queue.retry(job.id)
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state is JobState.WAITING and stored.result is None
    assert stored.retried == 1 and stored.runs == 1 and queue.counts().completed == 0
    again = claim_one(queue)
    queue.complete(again, "second")
    assert queue.get_job(job.id).result == "second"  # type: ignore[union-attr]
    assert queue.get_job(job.id).runs == 2  # type: ignore[union-attr]


def test_retry_completed_in_bulk_oldest_first_and_before_a_time(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    jobs = [finish(queue, clock) for _ in range(4)]  # completed 10 s apart
    cut = queue.get_job(jobs[1].id).finished_at  # type: ignore[union-attr]
    assert queue.retry_completed(before=cut) == [jobs[0].id, jobs[1].id]  # inclusive
    assert queue.retry_completed(1) == [jobs[2].id]
    assert queue.retry_completed() == [jobs[3].id]
    assert queue.retry_completed() == [] and queue.counts().waiting == 4


def test_retry_failed_before_a_time(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    old, new = finish(queue, clock, fail=True), finish(queue, clock, fail=True)
    cut = queue.get_job(old.id).finished_at  # type: ignore[union-attr]
    assert queue.retry_failed(before=cut - 0.001) == []
    assert queue.retry_failed(before=cut) == [old.id]
    assert queue.get_job(old.id).failed_attempts == 0  # type: ignore[union-attr]
    assert queue.dead_letters().total == 1  # the retried job's dead letter is withdrawn
    assert queue.get_job(new.id).state is JobState.FAILED  # type: ignore[union-attr]


def test_reset_attempts_false_keeps_the_counts_on_the_time_path(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = finish(queue, clock, fail=True)
    assert queue.retry_failed(before=clock.now(), reset_attempts=False) == [job.id]
    assert queue.get_job(job.id).failed_attempts == 1  # type: ignore[union-attr]


def test_bad_arguments_are_refused(queue: jqc.Queue) -> None:
    job = queue.add("x")
    with pytest.raises(jqc.JobStateError):
        queue.retry(job.id)  # waiting
    for bad in (-1, float("nan"), "yesterday", True):
        with pytest.raises(jqc.InvalidOptionError):
            queue.retry_completed(before=bad)  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError):
        queue.retry_completed(0)
    with pytest.raises(jqc.InvalidOptionError):
        queue.ops.retry_finished("waiting").send(None)


async def test_async_retry_completed(aqueue: jqc.AsyncQueue) -> None:
    job = await aqueue.add("x", 1)
    held = (await aqueue.claim("w")).jobs[0]
    await aqueue.complete(held, "r")
    assert await aqueue.retry_completed() == [job.id]
    assert (await aqueue.get_job(job.id)).state is JobState.WAITING  # type: ignore[union-attr]
    held = (await aqueue.claim("w")).jobs[0]
    await aqueue.fail(held, "x", retry=False)
    assert await aqueue.retry_failed(before=aqueue.clock.now()) == [job.id]
