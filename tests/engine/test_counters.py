"""The counters of a job, defined once (runs, failed attempts, attempts left), failure codes kept
beside the message, ``retry(reset_attempts=...)``, and the job that ``add`` returns."""

from __future__ import annotations

import pytest

import jqc
from jqc import FailureCode, JobState
from tests.engine.test_lifecycle import claim_one
from tests.stored import dead_record, edit_job, job_record


def test_a_run_counts_even_when_it_succeeds(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=3)
    claimed = claim_one(queue)
    assert claimed.job.runs == 1  # the claimed snapshot counts the run it hands out
    queue.complete(claimed)
    stored = queue.get_job(job.id)
    assert stored is not None
    assert (stored.runs, stored.failed_attempts, stored.attempts_left) == (1, 0, 3)


def test_failed_attempts_and_attempts_left_follow_each_failure(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=3)
    queue.fail(claim_one(queue), "boom", delay=0)
    stored = queue.get_job(job.id)
    assert stored is not None
    assert (stored.runs, stored.failed_attempts, stored.attempts_left) == (1, 1, 2)
    assert stored.attempts_made == stored.failed_attempts == 1  # not finished yet: only the failure ended
    queue.fail(claim_one(queue), "boom", delay=0)
    queue.fail(claim_one(queue), "boom", delay=0)
    final = queue.get_job(job.id)
    assert final is not None and final.state == JobState.FAILED
    assert (final.runs, final.failed_attempts, final.attempts_left) == (3, 3, 0)


def test_a_stalled_run_counts_as_a_run_not_a_failed_attempt(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", attempts=2)
    claim_one(queue, lock=1)
    clock.advance(1)
    assert queue.recover_stalled(max_stalls=1).recovered == (job.id,)
    again = claim_one(queue)
    assert (again.job.runs, again.job.failed_attempts, again.job.stall_count) == (2, 0, 1)


def test_a_job_failed_on_purpose_has_no_attempts_left(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=5)
    queue.fail(claim_one(queue), "bad input", retry=False)
    stored = queue.get_job(job.id)
    assert stored is not None and (stored.failed_attempts, stored.attempts_left) == (1, 0)


def test_dead_letter_keeps_the_counters_and_the_code(queue: jqc.Queue) -> None:
    queue.add("x", attempts=2)
    queue.fail(claim_one(queue), "first", delay=0)
    queue.fail(claim_one(queue), "timed out after 1 s", delay=0, code=FailureCode.TIMEOUT)
    (letter,) = queue.dead_letters().letters
    assert (letter.job.runs, letter.job.failed_attempts, letter.job.attempts_left) == (2, 2, 0)
    assert (letter.code, letter.reason) == (FailureCode.TIMEOUT, "timed out after 1 s")


def test_retry_resets_the_attempt_budget_by_default(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=2)
    queue.fail(claim_one(queue), "boom", delay=0)
    queue.fail(claim_one(queue), "boom", delay=0)
    queue.retry(job.id)
    stored = queue.get_job(job.id)
    assert stored is not None
    assert (stored.runs, stored.failed_attempts, stored.attempts_left, stored.retried) == (2, 0, 2, 1)


def test_retry_without_reset_gives_one_more_run(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=2)
    queue.fail(claim_one(queue), "boom", delay=0)
    queue.fail(claim_one(queue), "boom", delay=0)
    queue.retry(job.id, reset_attempts=False)
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == JobState.WAITING
    assert (stored.failed_attempts, stored.attempts_left) == (2, 0)
    assert queue.fail(claim_one(queue), "boom again", delay=0) == "failed"  # no fresh budget
    assert queue.retry_failed(reset_attempts=False) == [job.id]
    assert queue.get_job(job.id).failed_attempts == 3  # type: ignore[union-attr]


def test_retry_reset_attempts_must_be_a_bool(queue: jqc.Queue) -> None:
    with pytest.raises(jqc.InvalidOptionError, match="reset_attempts"):
        queue.retry("1", reset_attempts="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("how", "code"),
    [
        (dict(delay=0), FailureCode.ERROR),  # retried while attempts remain: still an error
        (dict(retry=False), FailureCode.UNRECOVERABLE),
        (dict(delay=0, code="timeout"), FailureCode.TIMEOUT),
    ],
)
def test_each_failed_attempt_stores_its_code(queue: jqc.Queue, how: dict[str, object], code: FailureCode) -> None:
    job = queue.add("x", attempts=3)
    queue.fail(claim_one(queue), "message", **how)  # type: ignore[arg-type]
    stored = queue.get_job(job.id)
    assert stored is not None and stored.failure_code == code and stored.failure_reason == "message"


def test_an_unknown_failure_code_is_refused_and_changes_nothing(queue: jqc.Queue) -> None:
    job = queue.add("x")
    claimed = claim_one(queue)
    with pytest.raises(jqc.InvalidOptionError, match="unknown failure code"):
        queue.fail(claimed, "boom", code="exploded")
    assert queue.get_job(job.id).state == JobState.ACTIVE  # type: ignore[union-attr]


def test_stalling_too_often_is_coded_stalled(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x")
    claim_one(queue, lock=1)
    clock.advance(1)
    assert len(queue.recover_stalled(max_stalls=0).failed) == 1
    (letter,) = queue.dead_letters().letters
    assert letter.code == FailureCode.STALLED and "stalled" in (letter.reason or "")


def test_a_corrupt_job_is_coded_corrupt(queue: jqc.Queue, conn: jqc.Connection) -> None:
    job = queue.add("x")
    edit_job(conn, queue, job.id, {"d": "{not json"})
    assert queue.claim("w").corrupt
    # the record keeps the bad data as found, so it is read raw here
    assert dead_record(conn, queue, job.id)["fk"] == "corrupt"
    assert job_record(conn, queue, job.id)["fk"] == "corrupt"


def test_add_returns_the_job_as_stored(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("resize", {"photoId": "123"}, delay=30, priority=5, job_id="resize-123")
    assert (job.id, job.options.job_id, job.options.delay, job.state) == ("resize-123", "resize-123", 30.0, "delayed")
    assert job.ready_at == pytest.approx(clock.now() + 30, abs=0.001)
    rounded = queue.add("x", delay=0.0004)  # sub-ms: stored as no delay, and said so
    assert (rounded.options.delay, rounded.state) == (0.0, JobState.WAITING)
    again = queue.add("other", job_id="resize-123")  # the id is taken: that job, as stored
    assert (again.name, again.options.job_id, again.state) == ("resize", "resize-123", JobState.DELAYED)


# -- attempts_made: the attempts that ended (failures, and the one that completed) ---------------


def _stored(queue: jqc.Queue, job_id: str) -> jqc.Job:
    job = queue.get_job(job_id)
    assert job is not None
    return job


def test_attempts_made_is_one_after_a_successful_first_run(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=3)
    assert _stored(queue, job.id).attempts_made == 0
    claimed = claim_one(queue)
    assert claimed.job.attempts_made == 0  # running: no attempt has ended yet
    queue.complete(claimed)
    done = _stored(queue, job.id)
    assert (done.runs, done.failed_attempts, done.attempts_made) == (1, 0, 1)


def test_attempts_made_counts_the_failures_and_the_success(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=3)
    queue.fail(claim_one(queue), "one", delay=0)
    queue.fail(claim_one(queue), "two", delay=0)
    assert _stored(queue, job.id).attempts_made == 2
    queue.complete(claim_one(queue))
    done = _stored(queue, job.id)
    assert (done.runs, done.failed_attempts, done.attempts_made, done.attempts_left) == (3, 2, 3, 1)


def test_stalled_and_handed_back_runs_are_runs_not_attempts_made(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", attempts=2)
    claim_one(queue, lock=1)
    clock.advance(1)
    queue.recover_stalled(max_stalls=1)
    queue.release(claim_one(queue))
    queue.complete(claim_one(queue))
    done = _stored(queue, job.id)
    assert (done.runs, done.stall_count, done.failed_attempts, done.attempts_made) == (3, 1, 0, 1)


def test_a_job_failed_for_good_made_every_attempt(queue: jqc.Queue) -> None:
    job = queue.add("x", attempts=2)
    queue.fail(claim_one(queue), "one", delay=0)
    queue.fail(claim_one(queue), "two", delay=0)
    failed = _stored(queue, job.id)
    assert (failed.state, failed.attempts_made, failed.attempts_left) == (JobState.FAILED, 2, 0)
    queue.retry(job.id)  # a fresh budget: no attempt made of it yet
    assert (_stored(queue, job.id).attempts_made, _stored(queue, job.id).runs) == (0, 2)


def test_the_handler_sees_which_attempt_it_is(queue: jqc.Queue) -> None:
    queue.add("x", attempts=3)
    queue.fail(claim_one(queue), "one", delay=0)
    again = claim_one(queue)
    assert (again.job.runs, again.job.failed_attempts, again.job.attempts_made) == (2, 1, 1)  # attempt 2 runs


async def test_async_counters_match(aqueue: jqc.AsyncQueue) -> None:
    job = await aqueue.add("x")
    await aqueue.complete((await aqueue.claim("w")).jobs[0])
    done = await aqueue.get_job(job.id)
    assert done is not None and (done.runs, done.failed_attempts, done.attempts_made) == (1, 0, 1)
