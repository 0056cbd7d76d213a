"""Locks and stalls: batched renewal keeps a busy thread's job, a lost lock is given up, a killed
worker's jobs come back within one lock duration plus one stall interval, one stall checker per queue."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import jqc
from jqc.engine.calls import run_sync
from jqc.worker import registry
from tests.worker.helpers import until


async def test_thread_blocking_longer_than_the_lock_does_not_run_twice(
    conn: jqc.Connection, clock: jqc.VirtualClock, net: Any
) -> None:
    q = conn.queue("photos")
    release = threading.Event()
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    runs: list[str] = []

    def cpu_bound(ctx: jqc.SyncJobContext) -> str:
        runs.append(ctx.worker)
        loop.call_soon_threadsafe(started.set)
        release.wait(20)  # blocks this thread (real time) while virtual time races ahead
        return "done"

    a = jqc.Worker(q, cpu_bound, name="a", lock=3, stall_interval=1)
    b = jqc.Worker(q, cpu_bound, name="b", lock=3, stall_interval=1)
    await a.start()
    job = q.add("render", None)
    try:
        await asyncio.wait_for(started.wait(), 10)
        await b.start()
        t0 = clock.now()
        await clock.sleep(30)  # ten lock durations, renewed every second
        assert clock.now() - t0 >= 30
        held = q.get_job(job.id)
        assert held and held.state == jqc.JobState.ACTIVE and held.worker == a.id and held.stall_count == 0
        assert net.sent["extend"] >= 25
    finally:
        release.set()
    await until(clock, lambda: q.counts().completed == 1)
    await asyncio.gather(a.close(), b.close())
    assert runs == [a.id]
    stored = q.get_job(job.id)
    assert stored and stored.result == "done" and stored.stall_count == 0
    assert a.stats.completed == 1 and a.stats.lost == 0 and b.stats.recovered == 0


async def test_killed_workers_job_is_recovered_within_lock_plus_interval(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("photos")
    lock, interval = 10.0, 4.0
    starts: list[tuple[str, float]] = []
    stuck = asyncio.Event()

    async def handler(ctx: jqc.JobContext) -> None:
        starts.append((ctx.worker, clock.now()))
        if len(starts) == 1:
            await stuck.wait()  # the first run never ends: its worker dies holding the job

    a = jqc.Worker(q, handler, name="a", lock=lock, stall_interval=interval)
    b = jqc.Worker(q, handler, name="b", lock=lock, stall_interval=interval)
    await a.start()  # a starts first, so it also holds the stall-check lease when it dies
    job = q.add("render", None)
    await until(clock, lambda: len(starts) == 1)
    await b.start()
    await clock.sleep(2.5)
    killed_at = clock.now()
    await a.kill()
    assert q.counts().active == 1  # a died holding it
    await until(clock, lambda: len(starts) == 2)
    assert starts[1][0] == b.id
    assert starts[1][1] - killed_at <= lock + interval + 0.01
    await until(clock, lambda: q.counts().completed == 1)
    await b.close()
    stored = q.get_job(job.id)
    assert stored and stored.stall_count == 1 and stored.worker == b.id and stored.failed_attempts == 0
    assert b.stats.recovered == 1 and q.counts().active == 0


async def test_a_lost_lock_cancels_the_handler_and_its_writes_are_rejected(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("photos")
    job = q.add("render", None)
    contexts: list[jqc.JobContext] = []
    cancelled: list[int] = []

    async def handler(ctx: jqc.JobContext) -> str:
        contexts.append(ctx)
        if len(contexts) == 1:
            try:
                await clock.sleep(1000)
            except asyncio.CancelledError:
                cancelled.append(ctx.token)
                raise
        return "second run"

    worker = jqc.Worker(q, handler, lock=10)
    await worker.start()
    await until(clock, lambda: len(contexts) == 1)
    # Someone whose clock runs 100 s ahead sees the lock expired and recovers the job.
    ahead = conn.queue("photos", clock=jqc.VirtualClock(clock.now() + 100))
    assert ahead.recover_stalled().recovered == (job.id,)
    await until(clock, lambda: q.counts().completed == 1)
    await worker.close()
    first = contexts[0]
    assert cancelled == [first.token] and first.cancelled
    with pytest.raises(jqc.LockLostError):
        await first.progress(1)
    assert worker.stats.lost == 1 and worker.stats.completed == 1
    stored = q.get_job(job.id)
    assert stored and stored.result == "second run" and stored.stall_count == 1 and stored.progress is None


async def test_a_stale_completion_is_rejected_and_logged(
    conn: jqc.Connection, clock: jqc.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    q = conn.queue("photos")
    job = q.add("render", None)
    gate = asyncio.Event()
    runs = 0

    async def handler(ctx: jqc.JobContext) -> int:
        nonlocal runs
        runs += 1
        if runs == 1:
            await gate.wait()
        return runs

    worker = jqc.Worker(q, handler, lock=10, renew_interval=9)
    await worker.start()
    await until(clock, lambda: runs == 1)
    ahead = conn.queue("photos", clock=jqc.VirtualClock(clock.now() + 100))
    ahead.recover_stalled()
    gate.set()  # finishes before the next renewal would have noticed: complete is rejected
    await until(clock, lambda: q.counts().completed == 1)
    await worker.close()
    stored = q.get_job(job.id)
    assert stored and stored.result == 2 and worker.stats.lost == 1
    assert any("rejected" in r.getMessage() for r in caplog.records)


async def test_stall_lease_is_held_by_one_worker_at_a_time(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    client = conn.sync_client()

    def take(holder: str, ttl: float = 5.0) -> bool:
        return run_sync(conn.backend, registry.lease(q.ops, "stall", holder, ttl))

    assert take("a") and not take("b") and take("a")
    assert client.hgetall(q.ops.keys.key("stall-lease"))["h"] == "a"
    assert client.pttl(q.ops.keys.key("stall-lease")) == -1  # no server-side expiry
    clock.advance(4.9)
    assert not take("b")
    clock.advance(0.2)
    assert take("b") and not take("a")
    run_sync(conn.backend, registry.give_up_lease(q.ops, "stall", "a"))  # not a's: nothing happens
    assert not take("a")
    run_sync(conn.backend, registry.give_up_lease(q.ops, "stall", "b"))
    assert take("a")


async def test_only_one_of_several_workers_runs_the_stall_check(
    conn: jqc.Connection, clock: jqc.VirtualClock, net: Any
) -> None:
    q = conn.queue("photos")

    async def noop(ctx: jqc.JobContext) -> None:
        return None

    workers = [jqc.Worker(q, noop, name=f"w{i}", stall_interval=5) for i in range(3)]
    for w in workers:
        await w.start()
    await clock.sleep(300)
    for w in workers:
        await w.close()
    assert net.sent["lease"] >= 3 * 55
    assert 55 <= net.sent["recover"] <= 66  # about once per interval, not once per worker
