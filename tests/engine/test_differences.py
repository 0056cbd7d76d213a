"""Where jqc deliberately differs from BullMQ, each with the behaviour a user relies on: waiting jobs
listed in claim order unless ``newest_first``; progress and logs written only by the holding worker;
a job_id reserved until its job is deleted. Every backend."""

from __future__ import annotations

import pytest

import jqc
from tests.engine.test_lifecycle import claim_one


def test_waiting_jobs_list_in_claim_order_or_newest_first(queue: jqc.Queue) -> None:
    ids = [queue.add("x", i).id for i in range(5)]
    urgent = queue.add("x", "urgent", priority=-1).id
    claim_order = [urgent, *ids]
    assert [j.id for j in queue.list_jobs("waiting").jobs] == claim_order
    assert [j.id for j in queue.list_jobs("waiting", newest_first=True).jobs] == claim_order[::-1]
    page = queue.list_jobs("waiting", offset=1, limit=2, newest_first=True)
    assert page.total == 6 and [j.id for j in page.jobs] == claim_order[::-1][1:3]
    assert queue.list_jobs("waiting", offset=6, newest_first=True).jobs == ()
    with pytest.raises(jqc.InvalidOptionError):
        queue.list_jobs("completed", newest_first=True)


def test_only_the_holding_worker_writes_progress_and_logs(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x")
    stale = claim_one(queue, "w1", lock=1)
    clock.advance(5)
    queue.recover_stalled()
    holder = claim_one(queue, "w2")
    for write in (lambda: queue.progress(stale, 50), lambda: queue.log(stale, "late")):
        with pytest.raises(jqc.LockLostError):
            write()
    queue.progress(holder, 10)
    assert queue.get_job(job.id).progress == 10 and queue.job_logs(job.id) == []  # type: ignore[union-attr]


def test_a_job_id_stays_reserved_until_the_job_is_deleted(queue: jqc.Queue) -> None:
    first = queue.add("invoice", {"n": 1}, job_id="inv-7")
    queue.complete(claim_one(queue), "sent")
    again = queue.add("invoice", {"n": 2}, job_id="inv-7")
    assert again.deduplicated and again.state is jqc.JobState.COMPLETED and again.data == {"n": 1}
    queue.remove(first.id)  # releasing the id: remove, clean, or retention (remove_on_complete)
    fresh = queue.add("invoice", {"n": 2}, job_id="inv-7")
    assert not fresh.deduplicated and fresh.state is jqc.JobState.WAITING


def test_retention_that_deletes_on_completion_frees_the_id_at_once(queue: jqc.Queue) -> None:
    queue.add("ping", job_id="p", remove_on_complete=jqc.Keep.none())
    queue.complete(claim_one(queue))
    assert not queue.add("ping", job_id="p").deduplicated
