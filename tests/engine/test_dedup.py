"""Deduplicated adds: simple (until the job finishes), throttle (for a ttl), debounce (the pending
job takes the latest data and its delay restarts); every add says whether it was deduplicated and
against which job, and a deduplicated add never creates a second job. Every backend."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jqc
from jqc import Dedup, JobState
from tests.conftest import BACKENDS, close_backend, open_backend
from tests.engine.test_lifecycle import claim_one


def test_simple_mode_returns_the_unfinished_job_then_frees_the_key(queue: jqc.Queue) -> None:
    first = queue.add("email", {"to": "a"}, dedup=Dedup("welcome:a"))
    again = queue.add("email", {"to": "a", "v": 2}, dedup=Dedup("welcome:a"))
    assert not first.deduplicated and again.deduplicated and again.id == first.id
    assert again.data == {"to": "a"} and queue.counts().waiting == 1  # unchanged
    held = claim_one(queue)
    assert queue.add("email", None, dedup=Dedup("welcome:a")).id == first.id  # active: still held
    queue.complete(held)
    third = queue.add("email", {"to": "a"}, dedup=Dedup("welcome:a"))
    assert not third.deduplicated and third.id != first.id
    event = [e for e in queue.events() if e.name == "deduplicated"][-1]
    assert (event.job_id, event.fields["key"]) == (first.id, "welcome:a")


def test_a_failed_or_removed_job_frees_its_key(queue: jqc.Queue) -> None:
    first = queue.add("x", dedup=Dedup("k"))
    queue.fail(claim_one(queue), "boom", retry=False)
    second = queue.add("x", dedup=Dedup("k"))
    assert second.id != first.id
    queue.remove(second.id)
    assert not queue.add("x", dedup=Dedup("k")).deduplicated


def test_throttle_mode_holds_for_the_ttl_even_after_the_job_finished(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    first = queue.add("sync", dedup=Dedup("user:7", ttl=60))
    queue.complete(claim_one(queue))
    clock.advance(59.999)
    assert queue.add("sync", dedup=Dedup("user:7", ttl=60)).id == first.id
    clock.advance(0.001)
    fresh = queue.add("sync", dedup=Dedup("user:7", ttl=60))
    assert not fresh.deduplicated and fresh.id != first.id


def test_debounce_replaces_the_pending_jobs_data_and_restarts_its_delay(
    queue: jqc.Queue, clock: jqc.VirtualClock
) -> None:
    first = queue.add("reindex", {"v": 1}, delay=10, dedup=Dedup("doc:1", debounce=True))
    clock.advance(8)
    again = queue.add("reindex", {"v": 2}, delay=10, dedup=Dedup("doc:1", debounce=True))
    assert again.deduplicated and again.id == first.id and again.data == {"v": 2}
    assert again.ready_at == pytest.approx(clock.now() + 10)
    clock.advance(9)
    assert queue.claim("w").jobs == ()  # its delay restarted
    clock.advance(1)
    held = claim_one(queue)
    assert (held.id, held.job.data) == (first.id, {"v": 2}) and queue.counts().delayed == 0
    started = queue.add("reindex", {"v": 3}, delay=10, dedup=Dedup("doc:1", debounce=True))
    assert not started.deduplicated  # the pending one started: a new job


def test_debounce_of_a_waiting_job_keeps_its_place(queue: jqc.Queue) -> None:
    first = queue.add("x", 1, dedup=Dedup("k", debounce=True))
    other = queue.add("y", 2)
    queue.add("x", 3, dedup=Dedup("k", debounce=True))
    assert [claim_one(queue).job.data, claim_one(queue).id] == [3, other.id]
    assert queue.get_job(first.id).state is JobState.ACTIVE  # type: ignore[union-attr]


def test_add_bulk_deduplicates_within_one_call(queue: jqc.Queue) -> None:
    opts = jqc.JobOptions(dedup=Dedup("batch"))
    jobs = queue.add_bulk([("x", 1, opts), ("x", 2, opts), ("y", 3)])
    assert jobs[1].deduplicated and jobs[1].id == jobs[0].id and not jobs[2].deduplicated
    assert queue.counts().waiting == 2


def test_forget_dedup_releases_a_key(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    first = queue.add("x", dedup=Dedup("k", ttl=600))
    assert queue.forget_dedup("k") and not queue.forget_dedup("k")
    assert queue.add("x", dedup=Dedup("k", ttl=600)).id != first.id


def test_a_taken_job_id_is_reported_as_deduplicated_too(queue: jqc.Queue) -> None:
    first = queue.add("x", 1, job_id="order-9")
    again = queue.add("x", 2, job_id="order-9")
    assert again.deduplicated and again.id == first.id and again.data == 1


def test_bad_dedup_options_are_refused(queue: jqc.Queue) -> None:
    for bad in ({"key": ""}, {"key": 5}, {"key": "k", "ttl": 0}, {"key": "k", "ttl": 5, "debounce": True}):
        with pytest.raises(jqc.InvalidOptionError):
            Dedup(**bad)  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError):
        queue.add("x", dedup="k")  # type: ignore[arg-type]
    assert queue.counts().waiting == 0


ADDS = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["s", "t", "b"]), st.sampled_from(["add", "run", "tick"])),
    max_size=25,
)


@pytest.mark.parametrize("backend", BACKENDS)  # (one embedded and one real server: examples are costly)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ADDS)
def test_no_deduplicated_add_creates_a_second_job(backend: str, steps: list[tuple[str, str, str]]) -> None:
    """Whatever the interleaving of adds, runs and time, an add reported as deduplicated created
    nothing: the job count grows by exactly the adds that were not deduplicated, and the job it
    names holds the key's job."""
    clock = jqc.VirtualClock()
    conn = open_backend(backend, clock)
    try:
        queue = conn.queue("photos")
        created: set[str] = set()
        for key, mode, action in steps:
            dedup = Dedup(key, ttl=30) if mode == "t" else Dedup(key, debounce=mode == "b")
            if action == "add":
                job = queue.add("x", key, dedup=dedup, delay=5 if mode == "b" else 0)
                if job.deduplicated:
                    assert job.id in created
                else:
                    assert job.id not in created
                    created.add(job.id)
            elif action == "run":
                got = queue.claim("w").jobs
                if got:
                    queue.complete(got[0])
            else:
                clock.advance(7)
        counts = queue.counts()
        assert counts.waiting + counts.delayed + counts.active + counts.completed + counts.failed == len(created)
    finally:
        close_backend(conn)
