"""Lifecycle: graceful shutdown, burst mode, the blocking run() with signals, the worker registry,
idle wake-ups without polling, and riding out Redis failures."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from typing import Any

import pytest

import jqc
from tests.conftest import REDIS_URL, open_backend
from tests.worker.helpers import elapsed, until


async def test_graceful_close_finishes_what_it_can_and_hands_back_the_rest(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("photos")
    jobs = [q.add("work", seconds) for seconds in (1, 1000, 2, 1000, 1, 1)]
    cancelled: list[str] = []

    async def work(ctx: jqc.JobContext) -> str:
        try:
            await clock.sleep(ctx.data)
        except asyncio.CancelledError:
            cancelled.append(ctx.id)
            raise
        return "done"

    worker = jqc.Worker(q, work, concurrency=4)
    await worker.start()
    await clock.sleep(0.5)
    assert q.counts().active == 4
    t0 = clock.now()
    await worker.close(grace=5)
    assert clock.now() - t0 == pytest.approx(5, abs=0.01)  # waited out the grace for the long ones
    counts = q.counts()
    assert (counts.completed, counts.active, counts.waiting) == (2, 0, 4)
    assert sorted(cancelled) == sorted([jobs[1].id, jobs[3].id])
    for job in (jobs[1], jobs[3]):
        stored = q.get_job(job.id)
        assert stored and stored.state == jqc.JobState.WAITING and stored.attempts_made == 0
    assert worker.stats.released == 2 and worker.stats.completed == 2
    # the handed-back jobs run first next time
    claimed = q.claim("next", count=2)
    assert {c.id for c in claimed.jobs} == {jobs[1].id, jobs[3].id}
    assert q.workers() == []


async def test_close_returns_at_once_when_nothing_runs(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")

    async def work(ctx: jqc.JobContext) -> None:
        return None

    async with jqc.Worker(q, work) as worker:
        await clock.sleep(3)
        assert worker.running
    assert not worker.running and clock.now() - jqc.clock.VIRTUAL_EPOCH < 4
    await worker.close()  # closing twice is fine


async def test_burst_mode_stops_when_the_queue_is_empty(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    for i in range(20):
        q.add("job", i)
    later = q.add("job", 99, delay=60)

    async def work(ctx: jqc.JobContext) -> int:
        await clock.sleep(0.1)
        return int(ctx.data)

    stats = await jqc.Worker(q, work, concurrency=3).run_until_empty()
    assert stats.completed == 20 and elapsed(clock) < 60
    counts = q.counts()
    assert (counts.completed, counts.delayed, counts.active, counts.waiting) == (20, 1, 0, 0)

    stats = await jqc.Worker(q, work).run_until_empty(delayed=True)  # also waits for delayed jobs
    assert stats.completed == 1 and elapsed(clock) >= 60
    stored = q.get_job(later.id)
    assert stored and stored.result == 99


def test_run_closes_gracefully_on_sigterm(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    for i in range(5):
        q.add("job", i)
    signalled = False

    async def work(ctx: jqc.JobContext) -> None:
        nonlocal signalled
        if not signalled:
            signalled = True
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill <pid>` would, while this job runs
        await clock.sleep(1000)

    stats = jqc.Worker(q, work, concurrency=2, grace=10).run()
    counts = q.counts()
    assert counts.active == 0 and counts.waiting == 5 and counts.completed == 0
    assert stats.released == 2
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_run_in_burst_mode(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    for i in range(10):
        q.add("job", i)

    def work(ctx: jqc.SyncJobContext) -> int:
        return int(ctx.data) * 2

    stats = jqc.Worker(q, work, concurrency=4).run(burst=True)
    assert stats.completed == 10 and q.counts().completed == 10


async def test_workers_are_listed_and_drop_out_when_they_die(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    photos, thumbs = conn.queue("photos"), conn.queue("thumbs")
    gate = asyncio.Event()

    async def work(ctx: jqc.JobContext) -> None:
        await gate.wait()

    alpha = jqc.Worker([photos, (thumbs, 2)], work, name="alpha", heartbeat=2)
    beta = jqc.Worker(photos, work, name="beta", heartbeat=2, concurrency=3)
    await alpha.start()
    await beta.start()
    listed = {w.name: w for w in photos.workers()}
    assert set(listed) == {"alpha", "beta"}
    a = listed["alpha"]
    assert (a.id, a.pid, a.host) == (alpha.id, os.getpid(), alpha.host)
    assert a.queues == ("photos", "thumbs") and a.concurrency == 10 and a.ttl == 6
    assert a.started_at == pytest.approx(clock.now(), abs=0.01) and a.last_seen == pytest.approx(clock.now(), abs=0.01)
    assert [w.name for w in thumbs.workers()] == ["alpha"] and thumbs.workers()[0].concurrency == 2

    assert a.last_claim is None  # it has claimed nothing yet
    thumbs.add("job", 1)
    claimed_by = clock.now()
    await until(clock, lambda: thumbs.workers()[0].active == 1)
    got = thumbs.workers()[0].last_claim
    assert got is not None and claimed_by <= got <= clock.now()
    assert {w.name: w.last_claim for w in photos.workers()} == {"alpha": None, "beta": None}  # per queue

    await alpha.kill()
    await clock.sleep(5)
    assert {w.name for w in photos.workers()} == {"alpha", "beta"}  # last seen 4-5 s ago: still within its TTL
    await clock.sleep(2)
    assert [w.name for w in photos.workers()] == ["beta"]
    assert [w.name for w in photos.workers(ttl=600)] == ["beta", "alpha"]  # the record stays until pruned
    await clock.sleep(60)  # ten TTLs later a live worker's heartbeat prunes it
    assert [w.name for w in photos.workers(ttl=600)] == ["beta"]
    gate.set()
    await beta.close()
    assert photos.workers() == [] and thumbs.workers() == []


async def test_an_idle_worker_wakes_on_a_new_job_without_polling(
    conn: jqc.Connection, clock: jqc.VirtualClock, net: Any
) -> None:
    clock.autojump = False  # time stands still: only the event stream can wake the worker
    q = conn.queue("photos")
    started = asyncio.Event()

    async def work(ctx: jqc.JobContext) -> None:
        started.set()

    worker = jqc.Worker(q, work)
    await worker.start()
    for _ in range(500):  # real time, until the worker blocks on the stream
        if net.sent["XREAD"]:
            break
        await asyncio.sleep(0.005)
    assert net.sent["XREAD"] == 1 and net.sent["claim"] == 2
    t0 = clock.now()
    q.add("job", None)
    await asyncio.wait_for(started.wait(), 5)
    assert clock.now() == t0 and net.sent["claim"] == 3

    # a paused queue wakes its idle worker when it is resumed
    started.clear()
    q.pause()
    q.add("job", None)
    await asyncio.sleep(0.05)
    assert not started.is_set()
    q.resume()
    await asyncio.wait_for(started.wait(), 5)
    assert clock.now() == t0
    await worker.close()


async def test_idle_workers_cost_redis_almost_nothing(conn: jqc.Connection, clock: jqc.VirtualClock, net: Any) -> None:
    q = conn.queue("photos")

    async def work(ctx: jqc.JobContext) -> None:
        return None

    worker = jqc.Worker(q, work, lock=30, heartbeat=10)  # stall checks and idle wake-ups every 15 s
    await worker.start()
    await clock.sleep(3600)
    await worker.close()
    assert net.sent["claim"] <= 3600 / 15 + 3
    assert net.sent["heartbeat"] <= 3600 / 10 + 3 and net.sent["lease"] <= 3600 / 15 + 3
    assert net.sent["extend"] == 0
    assert sum(net.sent.values()) < 1400  # about one command every 2.6 s


async def test_delayed_jobs_wake_the_worker_when_due(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    starts: dict[str, float] = {}

    async def work(ctx: jqc.JobContext) -> None:
        starts[ctx.data] = elapsed(clock)

    worker = jqc.Worker(q, work, lock=600)  # idle wake-ups only every 300 s: delays must be met by retry_at
    await worker.start()
    q.add("job", "at-42", delay=42)
    moved = q.add("job", "moved", delay=500)
    await clock.sleep(10)
    q.change_delay(moved.id, 5)  # now due at 15: the 'delayed' event makes the worker look again
    await until(clock, lambda: len(starts) == 2)
    await worker.close()
    assert starts == {"at-42": pytest.approx(42, abs=0.002), "moved": pytest.approx(15, abs=0.002)}


async def test_worker_rides_out_a_redis_outage(
    conn: jqc.Connection, clock: jqc.VirtualClock, net: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jqc.worker")
    q = conn.queue("photos")
    first = q.add("job", 0)
    gate = asyncio.Event()
    runs: list[Any] = []

    async def work(ctx: jqc.JobContext) -> str:
        runs.append(ctx.data)
        if ctx.data == 0:
            await gate.wait()
        return f"done {ctx.data}"

    worker = jqc.Worker(q, work, lock=30)
    await worker.start()
    await until(clock, lambda: runs == [0])
    net.down = True  # Redis goes away while job 0 runs
    gate.set()  # ... and job 0 finishes during the outage: its completion must wait and retry
    for i in range(1, 4):
        q.add("job", i)  # producers (on another connection) keep adding
    await clock.sleep(20)
    assert runs == [0] and q.counts().active == 1
    net.down = False
    await until(clock, lambda: q.counts().completed == 4, within=60)
    await worker.close()
    assert sorted(runs) == [0, 1, 2, 3]
    stored = q.get_job(first.id)
    assert stored and stored.result == "done 0" and stored.stall_count == 0
    # one outage, one reconnect; a routed backend may also have lost a connection of its own to the
    # load (a sentinel lookup timing out), which counts as another short one
    assert worker.stats.reconnects >= 1 and worker.stats.lost == 0
    messages = [r.getMessage() for r in caplog.records]
    reconnected = re.compile(r"reconnected to Redis after ([\d.]+) s")
    outages = [float(m.group(1)) for m in map(reconnected.search, messages) if m]
    assert len([s for s in outages if s >= 19]) == 1, outages  # the 20 s outage, reported once
    assert any("cannot reach Redis" in m and "retrying with backoff" in m for m in messages)
    assert any("reconnected to Redis after" in m for m in messages)


async def test_a_few_failed_calls_are_retried(conn: jqc.Connection, clock: jqc.VirtualClock, net: Any) -> None:
    q = conn.queue("photos")
    for i in range(10):
        q.add("job", i)

    async def work(ctx: jqc.JobContext) -> None:
        if ctx.data % 3 == 0:
            net.fail_next = 2  # the next two calls (a completion, a claim, a renewal...) fail

    stats = await jqc.Worker(q, work, concurrency=2).run_until_empty()
    assert stats.completed == 10 and q.counts().completed == 10 and stats.reconnects >= 1


@pytest.mark.redis_only
async def test_worker_reconnects_after_its_connections_are_killed() -> None:
    open_backend("redis").close()  # CLIENT KILL needs a real server: fail in CI when it is down
    # Time here follows real time (x5, by hand, no autojump), so that redis-py's own reconnect
    # waits, which are real time, cannot let virtual time race past the locks.
    clock = jqc.VirtualClock()
    name = f"jqc-kill-test-{os.getpid()}"
    conn = jqc.connect(REDIS_URL, clock=clock, client_name=name, socket_connect_timeout=2)
    other = jqc.connect(REDIS_URL, clock=clock)
    admin = other.sync_client()
    producer = other.queue("photos")  # on its own connections, which stay up
    done: list[int] = []

    async def work(ctx: jqc.JobContext) -> None:
        done.append(ctx.data)

    async def drive(condition: Any, steps: int = 1000) -> None:
        for _ in range(steps):
            if condition():
                return
            clock.advance(0.05)
            await asyncio.sleep(0.01)

    worker = jqc.Worker(conn.queue("photos"), work, lock=600)
    try:
        await worker.start()
        producer.add("job", 1)
        await drive(lambda: producer.counts().completed == 1)
        await drive(lambda: False, steps=10)  # let it settle into its idle wait on the event stream
        killed = 0
        for client in admin.client_list():
            if client.get("name") == name:
                admin.client_kill_filter(_id=client["id"])
                killed += 1
        assert killed >= 2  # the blocked XREAD and the pooled connections
        producer.add("job", 2)
        await drive(lambda: done == [1, 2])  # redis-py reconnects, or the worker backs off and does
        assert done == [1, 2]
    finally:
        closing = asyncio.ensure_future(worker.close())
        await drive(closing.done)
        await closing
        await conn.aclose()
        conn.close()
        admin.flushdb()
        other.close()
