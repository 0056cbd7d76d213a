"""The liveness rule (jqc.engine.liveness): connected is not consuming.

Every case the rule must get right, judged from records written by the heartbeat script and read
back with ``Queue.workers()`` on each backend, so the stored form is part of what is tested.
"""

from __future__ import annotations

from typing import Any

import pytest

import jqc
from jqc.engine.calls import run_sync
from jqc.engine.liveness import DEFAULT_STUCK_AFTER, default_stuck_after, not_consuming
from jqc.engine.results import Counts
from jqc.worker import registry

MS = 1000


def _beat(queue: jqc.Queue, worker: str, **fields: Any) -> jqc.WorkerInfo:
    now = int(queue.clock.now() * MS)
    record: dict[str, Any] = {
        "name": worker, "host": "h", "pid": 1, "queues": [queue.name], "active": 0, "concurrency": 2,
        "started": now - 600 * MS, "polled": 0, "hold": 0, "error": "", "after": 60 * MS, "stopping": 0,
    }  # fmt: skip
    record.update(fields)
    run_sync(queue.connection.backend, registry.heartbeat(queue.ops, worker, record, ttl=30, prune_after=300))
    (info,) = [w for w in queue.workers() if w.id == worker]
    return info


def _counts(waiting: int = 3, *, paused: bool = False) -> Counts:
    return Counts(waiting=waiting, delayed=0, active=0, completed=0, failed=0, dead=0, paused=paused)


def test_a_worker_whose_last_poll_is_older_than_its_limit_is_flagged_with_the_facts(queue: jqc.Queue) -> None:
    now = queue.clock.now()
    info = _beat(queue, "w", polled=int((now - 61) * MS), error="PermissionDeniedError: NOPERM no claim")
    assert info.polled == pytest.approx(now - 61) and info.stuck_after == 60.0
    why = not_consuming(info, _counts(), now)
    assert "3 job(s) wait" in why and "2 free slot(s)" in why and "61 s ago" in why and "limit 60 s" in why
    assert "its claims fail: PermissionDeniedError: NOPERM no claim" in why
    fresh = _beat(queue, "w", polled=int((now - 59) * MS), error="")
    assert not_consuming(fresh, _counts(), now) == ""  # within the limit: not flagged


def test_a_worker_that_never_polled_is_judged_from_its_start(queue: jqc.Queue) -> None:
    now = queue.clock.now()
    assert "since it started 600 s ago" in not_consuming(_beat(queue, "w"), _counts(), now)
    young = _beat(queue, "w", started=int((now - 30) * MS))
    assert not_consuming(young, _counts(), now) == ""  # just started: give it its limit first


@pytest.mark.parametrize(
    ("case", "fields", "counts"),
    [
        ("nothing waits", {}, _counts(0)),
        ("the queue is paused", {}, _counts(paused=True)),
        ("every slot is busy", {"active": 2}, _counts()),
        ("rate limited for another minute", {"hold": "+60"}, _counts()),
        ("shutting down", {"stopping": 1}, _counts()),
    ],
)
def test_a_stale_poll_is_not_flagged_when_the_worker_has_no_reason_to_claim(
    queue: jqc.Queue, case: str, fields: dict[str, Any], counts: Counts
) -> None:
    now = queue.clock.now()
    if fields.get("hold") == "+60":
        fields = {"hold": int((now + 60) * MS)}
    info = _beat(queue, "w", polled=int((now - 500) * MS), **fields)
    assert not_consuming(info, counts, now) == "", case
    assert not_consuming(_beat(queue, "w", polled=int((now - 500) * MS)), _counts(), now)  # the same worker, no excuse


def test_a_hold_that_ended_long_ago_is_no_excuse(queue: jqc.Queue) -> None:
    now = queue.clock.now()
    info = _beat(queue, "w", polled=int((now - 500) * MS), hold=int((now - 120) * MS))
    assert "500 s ago" in not_consuming(info, _counts(), now)
    recent = _beat(queue, "w", polled=int((now - 500) * MS), hold=int((now - 30) * MS))
    assert not_consuming(recent, _counts(), now) == ""  # it had until 60 s after the hold ended


def test_the_limit_is_the_workers_own_unless_the_reader_overrides_it(queue: jqc.Queue) -> None:
    now = queue.clock.now()
    info = _beat(queue, "w", polled=int((now - 100) * MS), after=300 * MS)
    assert info.stuck_after == 300.0 and not_consuming(info, _counts(), now) == ""
    assert "limit 90 s" in not_consuming(info, _counts(), now, after=90)


def test_records_of_older_workers_fall_back_to_their_last_claimed_job(queue: jqc.Queue) -> None:
    now = queue.clock.now()
    old = {"name": "old", "host": "h", "pid": 1, "queues": [queue.name], "active": 0, "concurrency": 2}
    started = int((now - 600) * MS)
    run_sync(
        queue.connection.backend,
        registry.heartbeat(queue.ops, "old", {**old, "started": started, "claimed": int((now - 10) * MS)},
                           ttl=30, prune_after=300),
    )  # fmt: skip
    (info,) = queue.workers()
    assert info.polled is None and info.stuck_after is None and not_consuming(info, _counts(), now) == ""
    assert f"limit {DEFAULT_STUCK_AFTER:.0f} s" in not_consuming(info, _counts(), now + 100)
    bare = {"name": "bare"}  # neither a start nor a poll: nothing to judge
    run_sync(queue.connection.backend, registry.heartbeat(queue.ops, "bare", bare, ttl=30, prune_after=300))
    (info,) = [w for w in queue.workers() if w.id == "bare"]
    assert not_consuming(info, _counts(), now + 1000) == ""


def test_the_default_limit_leaves_room_for_a_long_idle_wait() -> None:
    assert default_stuck_after(15, 5) == DEFAULT_STUCK_AFTER
    assert default_stuck_after(150, 5) == 310.0
