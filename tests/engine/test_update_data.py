"""``update_data``: a waiting or delayed job takes new data; once active, finished or gone it is
refused with a typed error and nothing changes; the data is checked as ``add`` checks it. Both
backends, both queue types."""

from __future__ import annotations

import pytest

import jqc
from jqc import JobState
from tests.engine.test_lifecycle import claim_one


def test_a_waiting_job_takes_new_data_and_keeps_its_place(queue: jqc.Queue) -> None:
    first = queue.add("x", {"v": 1})
    queue.add("y", {"v": 2})
    queue.update_data(first.id, {"v": 10, "note": "café"})
    stored = queue.get_job(first.id)
    assert stored is not None and stored.data == {"v": 10, "note": "café"} and stored.state == JobState.WAITING
    assert claim_one(queue).job.data == {"v": 10, "note": "café"}  # still first in line
    assert [e.name for e in queue.events() if e.job_id == first.id][-2:] == ["updated", "active"]


def test_a_delayed_job_takes_new_data_and_keeps_its_due_time(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", "old", delay=60, priority=3)
    queue.update_data(job.id, None)
    stored = queue.get_job(job.id)
    assert stored is not None and stored.data is None
    assert (stored.state, stored.ready_at, stored.options.priority) == (JobState.DELAYED, job.ready_at, 3)


def test_an_active_job_is_refused(queue: jqc.Queue) -> None:
    job = queue.add("x", "old")
    held = claim_one(queue)
    with pytest.raises(jqc.JobActiveError, match="active"):
        queue.update_data(job.id, "new")
    assert queue.get_job(job.id).data == "old"  # type: ignore[union-attr]
    queue.complete(held)  # the holder's token still holds
    with pytest.raises(jqc.JobStateError, match="finished"):
        queue.update_data(job.id, "new")


def test_a_failed_job_is_refused_and_a_missing_one_not_found(queue: jqc.Queue) -> None:
    job = queue.add("x", "old")
    queue.fail(claim_one(queue), "boom", retry=False)
    with pytest.raises(jqc.JobStateError):
        queue.update_data(job.id, "new")
    with pytest.raises(jqc.JobNotFoundError):
        queue.update_data("nope", "new")
    assert queue.get_job(job.id).data == "old"  # type: ignore[union-attr]


def test_the_new_data_is_checked_as_adds_are(conn: jqc.Connection) -> None:
    queue = conn.queue("photos", max_data_bytes=100)
    job = queue.add("x", "old")
    with pytest.raises(jqc.DataNotJsonError):
        queue.update_data(job.id, {"when": object()})
    with pytest.raises(jqc.PayloadTooLargeError):
        queue.update_data(job.id, "x" * 200)
    with pytest.raises(jqc.InvalidJobIdError):
        queue.update_data("", "new")
    assert queue.get_job(job.id).data == "old"  # type: ignore[union-attr]


async def test_async_update_data(aqueue: jqc.AsyncQueue) -> None:
    job = await aqueue.add("x", 1)
    await aqueue.update_data(job.id, 2)
    assert (await aqueue.get_job(job.id)).data == 2  # type: ignore[union-attr]
    await aqueue.claim("w")
    with pytest.raises(jqc.JobActiveError):
        await aqueue.update_data(job.id, 3)
