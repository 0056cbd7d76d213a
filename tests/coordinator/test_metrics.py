"""Queue snapshots on both backends: counts, windowed metrics, oldest waiting job, workers, stalls."""

from __future__ import annotations

import pytest

import jqc
from jqc.coordinator.metrics import (
    QueueSnapshot,
    aread_snapshot,
    aread_snapshots,
    read_snapshot,
    read_snapshots,
)
from jqc.engine.calls import run_sync
from tests.coordinator.conftest import heartbeat


def test_empty_queue(queue: jqc.Queue) -> None:
    snap = read_snapshot(queue)
    assert snap.queue == "photos" and snap.counts.total == 0
    assert snap.oldest_waiting_age is None and snap.live_workers is None and snap.stalls is None
    assert snap.backlog == 0 and snap.attempts == 0 and snap.error_rate == 0.0
    assert snap.wait_percentile(95) is None and snap.stall_rate is None


def test_snapshot_time_comes_from_the_queue_clock(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    clock.advance(1234.5)
    assert read_snapshot(queue).at == pytest.approx(clock.now(), abs=0.001)


def test_oldest_waiting_age_of_a_fifo_queue(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("first")
    clock.advance(10)
    queue.add("second")
    clock.advance(20)
    queue.add("not yet", delay=100)  # delayed jobs do not wait yet
    assert read_snapshot(queue).oldest_waiting_age == pytest.approx(30.0)
    queue.complete(queue.claim("w").jobs[0])
    assert read_snapshot(queue).oldest_waiting_age == pytest.approx(20.0)


def test_oldest_waiting_age_sees_a_starved_low_priority_job(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("low", priority=9)
    clock.advance(15)
    queue.add("high", priority=1)
    queue.add("plain")
    clock.advance(5)
    # next in line are "plain" and "high" (5 s), but the oldest job of the lowest band waited 20 s
    assert read_snapshot(queue).oldest_waiting_age == pytest.approx(20.0)


def test_oldest_waiting_age_counts_from_when_a_job_became_ready(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x", delay=60)
    clock.advance(70)
    got = queue.claim("w", lock=5)
    clock.advance(10)
    queue.recover_stalled()  # back to waiting, ready again now
    clock.advance(3)
    assert got.jobs and read_snapshot(queue).oldest_waiting_age == pytest.approx(3.0)


def test_windowed_metrics_and_percentiles(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    for _ in range(4):
        queue.add("x")
    clock.advance(2)
    for _ in range(3):
        held = queue.claim("w").jobs[0]
        clock.advance(0.5)
        queue.complete(held)
    queue.fail(queue.claim("w").jobs[0], "boom")
    snap = read_snapshot(queue, window_minutes=5)
    assert (snap.metrics.completed, snap.metrics.failed, snap.attempts) == (3, 1, 4)
    assert snap.error_rate == pytest.approx(0.25)
    assert snap.throughput_per_minute == pytest.approx(3 / 5)
    assert snap.wait_percentile(50) == pytest.approx(2.5, rel=0.15)
    assert snap.run_percentile(50) == pytest.approx(0.5, rel=0.1)
    clock.advance(600)
    later = read_snapshot(queue, window_minutes=5)
    assert later.attempts == 0 and later.wait_percentile(50) is None
    summary = snap.summary()
    assert summary["completed"] == 3 and summary["error_rate"] == 0.25 and summary["queue"] == "photos"


def test_live_workers_from_the_registry(queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    client = conn.backend
    assert read_snapshot(queue).live_workers is None  # no registry: unknown
    run_sync(client, heartbeat(queue.ops, "w1", "name", "w1"))
    run_sync(client, heartbeat(queue.ops, "w2", "name", "w2"))
    assert read_snapshot(queue).live_workers == 2
    clock.advance(20)
    run_sync(client, heartbeat(queue.ops, "w2", "name", "w2"))
    clock.advance(15)
    assert read_snapshot(queue, worker_ttl=30).live_workers == 1
    assert read_snapshot(queue, worker_ttl=10).live_workers == 0
    run_sync(client, heartbeat(queue.ops, "w1"))
    run_sync(client, heartbeat(queue.ops, "w2"))
    assert read_snapshot(queue).live_workers is None  # everyone stopped cleanly


def test_stalls_are_counted_from_the_event_stream(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    for _ in range(3):
        queue.add("x")
    queue.claim("w", count=2, lock=1)
    clock.advance(2)
    assert len(queue.recover_stalled(max_stalls=5).recovered) == 2
    queue.complete(queue.claim("w").jobs[0])
    snap = read_snapshot(queue, stall_scan_limit=1000)
    assert snap.stalls is not None and (snap.stalls.stalls, snap.stalls.complete) == (2, True)
    assert snap.stall_rate == pytest.approx(2 / 3)
    partial = read_snapshot(queue, stall_scan_limit=2)
    assert partial.stalls is not None and not partial.stalls.complete
    clock.advance(3600)
    assert read_snapshot(queue, stall_scan_limit=1000).stalls == type(snap.stalls)(0, True)


def test_no_event_stream_means_stalls_are_unknown(conn: jqc.Connection) -> None:
    queue = conn.queue("quiet", events_max_len=0)
    queue.add("x")
    assert read_snapshot(queue, stall_scan_limit=100).stalls is None


def test_snapshots_of_every_queue(conn: jqc.Connection) -> None:
    conn.queue("b").add("x")
    conn.queue("a").add("y")
    assert [s.queue for s in read_snapshots(conn)] == ["a", "b"]
    assert [s.queue for s in read_snapshots(conn, ["b"])] == ["b"]


async def test_async_snapshots_read_the_same(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    clock.advance(5)
    sync = read_snapshot(queue, stall_scan_limit=10)
    got = await aread_snapshot(conn.async_queue("photos"), stall_scan_limit=10)
    assert got == sync
    assert [s.queue for s in await aread_snapshots(conn)] == ["photos"]
    assert [s.queue for s in await aread_snapshots(conn, ["photos"])] == ["photos"]
    await conn.aclose()


@pytest.mark.parametrize(
    "options",
    [{"window_minutes": 0}, {"window_minutes": True}, {"worker_ttl": 0}, {"stall_scan_limit": -1}],
)
def test_bad_options_are_refused(queue: jqc.Queue, options: dict[str, object]) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        read_snapshot(queue, **options)


def test_snapshot_is_a_frozen_value(queue: jqc.Queue) -> None:
    snap = read_snapshot(queue)
    assert isinstance(snap, QueueSnapshot)
    with pytest.raises(AttributeError):
        snap.queue = "other"  # type: ignore[misc]
