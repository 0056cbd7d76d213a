"""Priorities in both directions: negative runs before the default 0, positive after it, FIFO
within one priority, on both backends; the default path stays a plain list."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jqc
from jqc.engine.job import MAX_PRIORITY
from tests.conftest import open_backend
from tests.engine.test_lifecycle import claim_order


def test_negative_priorities_run_before_the_default(queue: jqc.Queue) -> None:
    queue.add("default-1")
    queue.add("later", priority=3)
    queue.add("urgent", priority=-1)
    queue.add("default-2")
    queue.add("most-urgent", priority=-10)
    queue.add("urgent-2", priority=-1)
    assert claim_order(queue) == ["most-urgent", "urgent", "urgent-2", "default-1", "default-2", "later"]


def test_a_claim_of_several_spans_every_band_in_order(queue: jqc.Queue) -> None:
    late, first = jqc.JobOptions(priority=2), jqc.JobOptions(priority=-2)
    queue.add_bulk([("late", None, late), ("plain", None), ("first", None, first)])
    got = queue.claim("w", count=3)
    assert [c.job.name for c in got.jobs] == ["first", "plain", "late"]


def test_listing_waiting_jobs_follows_the_claim_order(queue: jqc.Queue) -> None:
    for name, priority in (("b", 0), ("c", 4), ("a", -4), ("b2", 0), ("a2", -4)):
        queue.add(name, priority=priority)
    names = [j.name for j in queue.list_jobs("waiting").jobs]
    assert names == ["a", "a2", "b", "b2", "c"]
    pages = [j.name for offset in range(5) for j in queue.list_jobs("waiting", offset, 1).jobs]
    assert pages == names  # pages cut across the bands


def test_lifo_and_handed_back_jobs_run_next_within_a_negative_priority(queue: jqc.Queue) -> None:
    queue.add("fifo", priority=-1)
    queue.add("lifo", priority=-1, lifo=True)
    held = queue.claim("w").jobs[0]
    assert held.job.name == "lifo"
    queue.add("newer", priority=-1)
    queue.release(held)
    assert claim_order(queue) == ["lifo", "fifo", "newer"]


def test_change_priority_moves_a_job_across_the_default(queue: jqc.Queue) -> None:
    queue.add("a")
    b = queue.add("b")
    c = queue.add("c", priority=-3)
    queue.change_priority(b.id, -5)
    queue.change_priority(c.id, 0)
    assert claim_order(queue) == ["b", "a", "c"]
    assert queue.get_job(b.id).options.priority == -5  # type: ignore[union-attr]


def test_the_extremes_are_stored_exactly(queue: jqc.Queue) -> None:
    queue.add("low", priority=MAX_PRIORITY)
    queue.add("high", priority=-MAX_PRIORITY)
    queue.add("mid")
    assert claim_order(queue) == ["high", "mid", "low"]
    with pytest.raises(jqc.InvalidOptionError):
        queue.add("too-urgent", priority=-MAX_PRIORITY - 1)


def test_default_priority_jobs_stay_in_the_list(queue: jqc.Queue, conn: jqc.Connection) -> None:
    queue.add_bulk([("x", i) for i in range(3)])
    client = conn.sync_client()
    assert client.llen(queue.ops.keys.key("wait")) == 3
    assert client.zcard(queue.ops.keys.key("prio")) == 0


@pytest.mark.parametrize("backend_kind", ["fake", "redis"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    jobs=st.lists(
        st.tuples(st.sampled_from((-MAX_PRIORITY, -7, -1, 0, 0, 1, 7, MAX_PRIORITY)), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    count=st.integers(1, 5),
)
def test_claims_come_in_priority_order_fifo_within(backend_kind: str, jobs: list[tuple[int, bool]], count: int) -> None:
    """Any mix of priorities, added one by one or in bulk, is claimed lowest first, FIFO within."""
    conn = open_backend(backend_kind)
    try:
        queue = conn.queue("prio-property")
        queue.obliterate(force=True)
        for index, (priority, bulk) in enumerate(jobs):
            if bulk:
                queue.add_bulk([("j", index, jqc.JobOptions(priority=priority))])
            else:
                queue.add("j", index, priority=priority)
        order: list[int] = []
        while got := queue.claim("w", count=count).jobs:
            order += [c.job.data for c in got]
        expected = sorted(range(len(jobs)), key=lambda i: (jobs[i][0], i))
        assert order == expected
    finally:
        if not conn.embedded:
            conn.sync_client().flushdb()
        conn.close()
