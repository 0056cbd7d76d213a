"""The engine at the exact edges of time, on both backends: a delayed job due exactly now and 1 ms
after now, a lock expiring exactly now, and claims spread over several calls in one rate window.

Every comparison in the scripts is against the caller's ``now`` in whole ms, so each edge is tested
at the ms before it, at it, and (where it matters) the ms after. A one-character change to any
comparison (``>`` for ``>=``, ``NOW`` for ``NOW + 1``) fails one of these tests.
"""

from __future__ import annotations

import jqc
from jqc import Code
from jqc.clock import now_ms


def at_ms(clock: jqc.VirtualClock, ms: int) -> None:
    """Move the clock so that ``now_ms`` reads exactly ``ms`` (it truncates, hence the half ms)."""
    clock.move_to((ms + 0.5) / 1000)


def test_a_delayed_job_due_exactly_now_is_claimed(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", delay=5)
    due = now_ms(clock) + 5000
    at_ms(clock, due)
    got = queue.claim("w")
    assert got.status == Code.OK and [c.id for c in got.jobs] == [job.id]


def test_a_delayed_job_due_1_ms_after_now_waits(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x", delay=5)
    due = now_ms(clock) + 5000
    at_ms(clock, due - 1)
    got = queue.claim("w")
    assert got.status == Code.EMPTY and got.jobs == ()
    assert got.retry_at == due / 1000  # the claim says exactly when to come back
    assert queue.get_job(job.id).state == jqc.JobState.DELAYED  # type: ignore[union-attr]
    at_ms(clock, due)
    assert [c.id for c in queue.claim("w").jobs] == [job.id]


def test_only_the_jobs_due_by_now_are_promoted(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    start = now_ms(clock)
    for delay_ms in (1000, 1001, 999):
        queue.add(str(delay_ms), delay=delay_ms / 1000)
    at_ms(clock, start + 1000)
    got = queue.claim("w", count=3)
    assert [c.job.name for c in got.jobs] == ["999", "1000"]
    assert queue.counts().delayed == 1


def test_a_retry_backoff_is_due_exactly_after_its_delay(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x", attempts=2)
    failed_at = now_ms(clock)
    assert queue.fail(queue.claim("w").jobs[0], "boom", delay=2.0) == "retry"
    at_ms(clock, failed_at + 1999)
    assert queue.claim("w").status == Code.EMPTY
    at_ms(clock, failed_at + 2000)
    assert queue.claim("w").status == Code.OK


def test_a_lock_expiring_exactly_now_is_recovered(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    job = queue.add("x")
    claimed = queue.claim("w", lock=2.0).jobs[0]
    deadline = round(claimed.lock_until * 1000)
    assert deadline == now_ms(clock) + 2000
    at_ms(clock, deadline - 1)
    assert queue.recover_stalled().recovered == ()  # 1 ms left: still held
    assert queue.extend([claimed], lock=2.0) == {job.id: True}
    deadline += 2000 - 1  # renewed 1 ms before the old deadline
    at_ms(clock, deadline - 1)
    assert queue.recover_stalled().recovered == ()
    at_ms(clock, deadline)
    assert queue.recover_stalled().recovered == (job.id,)


def test_a_holder_may_finish_at_its_deadline_until_recovery_runs(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x")
    claimed = queue.claim("w", lock=1.0).jobs[0]
    at_ms(clock, round(claimed.lock_until * 1000))
    queue.complete(claimed)  # eligible for recovery, not yet revoked: the token still holds
    assert queue.counts().completed == 1 and queue.recover_stalled().recovered == ()


def test_claims_spread_over_one_rate_window_add_up(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.configure(rate_limit=(5, 1.0))
    queue.add_bulk([("x", i) for i in range(20)])
    window = (now_ms(clock) // 1000 + 1) * 1000  # the start of the next aligned window
    at_ms(clock, window)
    assert len(queue.claim("w", count=2).jobs) == 2
    at_ms(clock, window + 300)
    assert len(queue.claim("w", count=2).jobs) == 2  # the counter was incremented, not overwritten
    at_ms(clock, window + 999)
    assert len(queue.claim("w", count=2).jobs) == 1  # one left in this window
    got = queue.claim("w")
    assert got.status == Code.RATE_LIMITED and got.retry_at == (window + 1000) / 1000
    at_ms(clock, window + 1000)  # the next window opens exactly at its start
    assert len(queue.claim("w", count=9).jobs) == 5


def test_a_rate_window_counts_claims_made_by_fetch_next(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.configure(rate_limit=(3, 1.0))
    queue.add_bulk([("x", i) for i in range(10)])
    at_ms(clock, (now_ms(clock) // 1000 + 1) * 1000)
    first = queue.claim("w", count=2).jobs
    following = queue.complete(first[0], fetch_next=5, worker="w")
    assert following is not None and len(following.jobs) == 1
    assert queue.claim("w").status == Code.RATE_LIMITED
