"""A retention override passed with a report (``keep=``, what a worker's ``keep_completed`` /
``keep_failed`` send) decides what happens to the finished job instead of the job's own
``remove_on_complete`` / ``remove_on_fail``. Every backend."""

from __future__ import annotations

import jqc
from jqc import FailureCode, Keep
from tests.engine.test_lifecycle import claim_one


def test_complete_with_keep_overrides_the_jobs_retention(conn: jqc.Connection) -> None:
    queue = conn.queue("photos", default_options=jqc.JobOptions(remove_on_complete=Keep.none()))
    kept, dropped = queue.add("x", 1), queue.add("x", 2)
    queue.complete(claim_one(queue), "r", keep=Keep.all())
    queue.complete(claim_one(queue), "r")  # the job's own: deleted at once
    assert queue.get_job(kept.id) is not None and queue.get_job(dropped.id) is None


def test_complete_many_and_fail_with_keep(queue: jqc.Queue) -> None:
    for i in range(3):
        queue.add("x", i)
    got = queue.claim("w", count=3).jobs
    queue.complete_many([(c, None) for c in got[:2]], keep=Keep.last(1))
    assert queue.counts().completed == 1
    queue.fail(got[2], "boom", retry=False, keep=Keep.none())
    assert queue.counts().failed == 0 and queue.get_job(got[2].id) is None
    assert queue.dead_letters().total == 1  # retention deletes the job, not its dead letter


def test_a_cancelled_job_follows_the_failed_retention_override(queue: jqc.Queue) -> None:
    job = queue.add("x")
    held = claim_one(queue)
    queue.cancel(job.id)
    queue.fail_and_fetch(held, "stopped", worker="w", keep=Keep.none(), code=FailureCode.CANCELLED)
    assert queue.get_job(job.id) is None and queue.counts().failed == 0
