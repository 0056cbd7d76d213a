"""A queue's ``default_options`` merge the same way with every form of ``add``: a ``JobOptions``,
keyword overrides, both, and ``add_bulk``'s ``NewJob`` and tuples, on both queue types and backends.

The order: the queue's defaults, then each field of the given ``JobOptions`` that is not
``JobOptions``'s own default, then the keywords (which win even when they give the default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import jqc
from jqc import Backoff, JobOptions, JobState, Keep

DEFAULTS = JobOptions(delay=30, priority=5, attempts=3, backoff=Backoff.fixed(2), remove_on_complete=Keep.last(10))


@pytest.fixture
def queue(conn: jqc.Connection) -> jqc.Queue:
    return conn.queue("photos", default_options=DEFAULTS)


@pytest.fixture
async def aqueue(conn: jqc.Connection) -> AsyncIterator[jqc.AsyncQueue]:
    yield conn.async_queue("photos", default_options=DEFAULTS)
    await conn.aclose()


def stored(queue: jqc.Queue, job: jqc.Job) -> jqc.Job:
    got = queue.get_job(job.id)
    assert got is not None
    return got


def test_a_job_options_object_merges_with_the_defaults_like_keywords_do(
    queue: jqc.Queue, clock: jqc.VirtualClock
) -> None:
    by_object = stored(queue, queue.add("x", None, JobOptions(attempts=10)))
    by_keyword = stored(queue, queue.add("x", None, attempts=10))
    for job in (by_object, by_keyword):
        assert job.state == JobState.DELAYED  # the default delay is kept
        assert job.ready_at == pytest.approx(clock.now() + 30)
        assert job.options.attempts == 10
        assert (job.options.priority, job.options.backoff) == (5, Backoff.fixed(2))
        assert job.options.remove_on_complete == Keep.last(10)
    assert by_object.options == by_keyword.options


def test_the_added_job_reports_the_merged_options(queue: jqc.Queue) -> None:
    job = queue.add("x", None, JobOptions(priority=-1))
    assert (job.options.delay, job.options.priority, job.options.attempts) == (30, -1, 3)
    assert job.state == JobState.DELAYED


def test_keywords_win_over_the_object_and_the_defaults_even_at_the_default_value(queue: jqc.Queue) -> None:
    job = queue.add("x", None, JobOptions(attempts=10, priority=1), attempts=4, delay=0)
    assert job.state == JobState.WAITING  # delay=0 as a keyword clears the default delay
    got = stored(queue, job)
    assert (got.options.attempts, got.options.priority) == (4, 1)


def test_a_field_at_its_default_value_in_an_object_keeps_the_queue_default(queue: jqc.Queue) -> None:
    # JobOptions(delay=0) cannot be told from JobOptions(): only a keyword puts a field back to
    # JobOptions's default (see the keyword test above).
    job = queue.add("x", None, JobOptions(delay=0, attempts=1))
    assert job.state == JobState.DELAYED
    assert stored(queue, job).options.attempts == 3


def test_add_bulk_merges_new_jobs_and_tuples_the_same_way(queue: jqc.Queue) -> None:
    shared = JobOptions(attempts=7)
    jobs = queue.add_bulk(
        [
            jqc.NewJob("a", 1, shared),
            ("b", 2, shared),
            ("c", 3),
            jqc.NewJob("d", 4),
            ("e", 5, JobOptions(delay=1)),
        ]
    )
    got = [stored(queue, job) for job in jobs]
    assert [j.options.attempts for j in got] == [7, 7, 3, 3, 3]
    assert [j.options.priority for j in got] == [5] * 5
    assert [j.ready_at - j.created_at for j in got] == pytest.approx([30, 30, 30, 30, 1])


def test_without_defaults_the_object_is_used_as_given(conn: jqc.Connection) -> None:
    queue = conn.queue("plain")
    options = JobOptions(attempts=2, priority=3)
    job = queue.add("x", None, options)
    assert job.options is options
    assert stored(queue, job).options == options


def test_options_must_be_job_options(queue: jqc.Queue) -> None:
    with pytest.raises(jqc.InvalidOptionError, match=r"jqc\.JobOptions"):
        queue.add("x", None, {"attempts": 2})  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError):
        queue.add("x", None, JobOptions(attempts=2), attempt=3)  # type: ignore[call-arg]
    assert queue.counts().total == 0


async def test_async_add_merges_the_same_way(aqueue: jqc.AsyncQueue, clock: jqc.VirtualClock) -> None:
    by_object = await aqueue.get_job((await aqueue.add("x", None, JobOptions(attempts=10))).id)
    by_keyword = await aqueue.get_job((await aqueue.add("x", None, attempts=10)).id)
    assert by_object is not None and by_keyword is not None
    assert by_object.options == by_keyword.options
    assert (by_object.state, by_object.options.attempts, by_object.options.priority) == (JobState.DELAYED, 10, 5)
    bulk = await aqueue.add_bulk([("y", 1, JobOptions(priority=9))])
    assert bulk[0].state == JobState.DELAYED and bulk[0].options.attempts == 3
