"""``counts_per_priority``: waiting jobs per priority from one snapshot, on both backends and queue
types, at the extreme priorities and for LIFO and handed-back jobs (which sit at the low end of
their priority's score range)."""

from __future__ import annotations

from typing import Any

import pytest

import jqc
from jqc.engine.job import MAX_PRIORITY
from tests.engine.test_lifecycle import claim_one


def test_waiting_jobs_are_counted_per_priority(queue: jqc.Queue) -> None:
    for priority, n in ((0, 3), (1, 2), (-1, 1), (7, 4)):
        queue.add_bulk([jqc.NewJob("x", i, jqc.JobOptions(priority=priority)) for i in range(n)])
    queue.add("later", delay=60, priority=1)  # delayed: not waiting yet
    assert queue.counts_per_priority([0, 1, -1, 7, 2]) == {0: 3, 1: 2, -1: 1, 7: 4, 2: 0}
    assert list(queue.counts_per_priority([7, 0])) == [7, 0]  # in the order asked


def test_claims_take_jobs_out_of_the_count(queue: jqc.Queue) -> None:
    queue.add("urgent", priority=-5)
    queue.add("normal")
    claim_one(queue)
    assert queue.counts_per_priority([-5, 0]) == {-5: 0, 0: 1}


def test_neighbouring_and_extreme_priorities_do_not_bleed_into_each_other(queue: jqc.Queue) -> None:
    extremes = [-MAX_PRIORITY, -MAX_PRIORITY + 1, -1, 1, MAX_PRIORITY - 1, MAX_PRIORITY]
    for priority in extremes:
        queue.add("fifo", priority=priority)
        queue.add("lifo", priority=priority, lifo=True)  # the low end of the priority's range
    queue.release(claim_one(queue))  # handed back: the low end too
    assert queue.counts_per_priority(extremes) == dict.fromkeys(extremes, 2)
    assert sum(queue.counts_per_priority(extremes).values()) == queue.counts().waiting


def test_a_repeated_priority_is_counted_once(queue: jqc.Queue) -> None:
    queue.add("x", priority=3)
    assert queue.counts_per_priority([3, 3, 3]) == {3: 1}
    assert queue.counts_per_priority([]) == {}


@pytest.mark.parametrize(
    "bad",
    [[1.5], ["1"], [True], [MAX_PRIORITY + 1], "12", 5, list(range(1001))],
    ids=["float", "str", "bool", "too-high", "a-str", "an-int", "too-many"],
)
def test_bad_priorities_are_refused(queue: jqc.Queue, bad: Any) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        queue.counts_per_priority(bad)


async def test_async_counts_per_priority(aqueue: jqc.AsyncQueue) -> None:
    await aqueue.add("x", priority=2)
    await aqueue.add("y")
    assert await aqueue.counts_per_priority(range(0, 3)) == {0: 1, 1: 0, 2: 1}
