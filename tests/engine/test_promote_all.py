"""``promote_all``: every delayed job waits now, soonest due first, in bounded batches, on both
backends and queue types; jobs that stop being delayed meanwhile are passed over."""

from __future__ import annotations

from typing import Any

import pytest

import jqc
from jqc import JobState
from jqc.engine.calls import Op, run_sync
from tests.engine.test_lifecycle import claim_order


def test_every_delayed_job_waits_now_soonest_due_first(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("ready")
    late = queue.add("late", delay=300)
    soon = queue.add("soon", delay=10)
    mid = queue.add("mid", delay=60)
    assert queue.promote_all() == [soon.id, mid.id, late.id]
    counts = queue.counts()
    assert (counts.waiting, counts.delayed) == (4, 0)
    for job_id in (soon.id, mid.id, late.id):
        stored = queue.get_job(job_id)
        assert stored is not None and stored.state == JobState.WAITING
        assert stored.ready_at == pytest.approx(clock.now(), abs=0.001)
    assert [e.job_id for e in queue.events() if e.name == "waiting"] == [soon.id, mid.id, late.id]
    assert claim_order(queue) == ["ready", "soon", "mid", "late"]


def test_priorities_still_decide_the_order_after_promotion(queue: jqc.Queue) -> None:
    queue.add("normal", delay=5)
    queue.add("urgent", delay=50, priority=-1)
    queue.add("low", delay=1, priority=3)
    queue.promote_all()
    assert claim_order(queue) == ["urgent", "normal", "low"]


def test_a_limit_promotes_the_soonest_only(queue: jqc.Queue) -> None:
    jobs = [queue.add("x", i, delay=100 - i) for i in range(5)]
    assert queue.promote_all(limit=2) == [jobs[4].id, jobs[3].id]
    assert queue.counts().delayed == 3
    assert queue.promote_all() == [jobs[2].id, jobs[1].id, jobs[0].id]
    assert queue.promote_all() == []


def test_more_than_a_batch_is_promoted_in_rounds(queue: jqc.Queue) -> None:
    queue.add_bulk([jqc.NewJob("x", i, jqc.JobOptions(delay=60)) for i in range(2300)])
    assert len(queue.promote_all()) == 2300
    counts = queue.counts()
    assert (counts.waiting, counts.delayed) == (2300, 0)


def test_jobs_that_stopped_being_delayed_meanwhile_are_passed_over(queue: jqc.Queue) -> None:
    jobs = [queue.add("x", i, delay=10 + i) for i in range(4)]
    op = queue.ops.promote_all()
    backend = queue.connection.backend
    ids = run_sync(backend, next(op))  # the round's read of the delayed set
    assert ids == [job.id for job in jobs]
    queue.remove(jobs[0].id)  # between the read and the promotions: one removed, one promoted by hand
    queue.promote(jobs[1].id)
    moved = run_sync(backend, _one(op.send(ids)))
    assert moved == [False, False, True, True]
    with pytest.raises(StopIteration) as done:
        op.send(run_sync(backend, op.send(moved)))  # the next read finds none delayed
    assert done.value.value == [jobs[2].id, jobs[3].id]


def _one(request: Any) -> Op[Any]:
    result = yield request
    return result


def test_a_bad_limit_is_refused(queue: jqc.Queue) -> None:
    queue.add("x", delay=5)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(jqc.InvalidOptionError, match="limit"):
            queue.promote_all(bad)  # type: ignore[arg-type]
    assert queue.counts().delayed == 1


async def test_async_promote_all(aqueue: jqc.AsyncQueue) -> None:
    first = await aqueue.add("a", delay=30)
    second = await aqueue.add("b", delay=40)
    assert await aqueue.promote_all() == [first.id, second.id]
    assert (await aqueue.counts()).waiting == 2
