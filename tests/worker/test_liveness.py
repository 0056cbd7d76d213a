"""Liveness means consuming, on both backends, on the autojumping virtual clock.

A worker whose claim loop is wedged while its heartbeat still runs is flagged by every reader of
the rule (``Queue.workers()`` judged by :func:`jqc.engine.liveness.not_consuming`, the health
check, the snapshot the autoscaler and Prometheus read, ``jqc workers``, and the health file
``jqc worker --probe`` judges). A healthy worker is not: idle on an empty queue, just before it
claims newly added jobs, at full concurrency, rate limited, or on a paused queue.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import jqc
from jqc.cli import main
from jqc.coordinator import health
from jqc.coordinator.autoscale import Coordinator
from jqc.coordinator.metrics import read_snapshot
from jqc.engine.liveness import not_consuming
from jqc.scaling.metrics import PoolMetrics
from jqc.worker import probe
from tests.worker.helpers import until


class Hold:
    """A scaling policy that keeps the pool as it is (the test reads what it was shown)."""

    name = "hold"

    def __init__(self) -> None:
        self.seen: list[PoolMetrics] = []

    def decide(self, m: PoolMetrics) -> int:
        self.seen.append(m)
        return m.current


def _flag(queue: jqc.Queue, worker: jqc.Worker) -> str:
    (info,) = [w for w in queue.workers() if w.id == worker.id]
    return not_consuming(info, queue.counts(), queue.clock.now())


def _cli(conn: jqc.Connection, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), connection=conn, out=out), out.getvalue()


def _rules(report: health.HealthReport) -> dict[str, health.Reason]:
    return {reason.rule: reason for reason in report.reasons}


async def work(ctx: jqc.JobContext) -> None:
    return None


async def test_a_worker_whose_claim_loop_is_wedged_is_flagged_while_its_heartbeat_runs(
    conn: jqc.Connection, clock: jqc.VirtualClock, tmp_path: Path
) -> None:
    stuck, idle = conn.queue("stuck"), conn.queue("idle")
    stuck.add_bulk([jqc.NewJob("work", i) for i in range(3)])
    hung: list[str] = []

    async def wedged(*args: Any, **kwargs: Any) -> Any:  # a claim that never comes back (no deadline)
        hung.append("claim")
        await asyncio.Event().wait()

    path = str(tmp_path / "health.json")
    on_stuck = conn.async_queue("stuck")
    on_stuck.claim = wedged  # type: ignore[method-assign]
    worker = jqc.Worker([on_stuck, conn.async_queue("idle")], work, heartbeat=1, health_file=path)
    await worker.start()
    try:
        await clock.sleep(30)
        assert hung == ["claim"]
        assert _flag(stuck, worker) == ""  # within its limit (60 s) of its start
        assert probe.judge(path, clock.now()).ok
        assert "not_consuming" not in _rules(health.check(stuck, store=False))

        await clock.sleep(40)
        now = clock.now()
        (info,) = stuck.workers()
        assert now - info.last_seen <= 1.5 and info.polled is None  # connected, heartbeating, never polled
        why = _flag(stuck, worker)
        assert "3 job(s) wait" in why and "none of its claims has reached the server since it started" in why
        (on_idle,) = idle.workers()
        assert on_idle.polled is not None and now - on_idle.polled < 20  # its other queue is polled
        assert _flag(idle, worker) == ""  # and nothing waits there

        report = health.check(stuck)
        found = _rules(report)["not_consuming"]
        assert report.status is health.HealthStatus.UNHEALTHY and found.level is health.Level.UNHEALTHY
        assert "every live worker connected but not consuming" in found.message and worker.id in found.message
        assert report.values["not_consuming"] == [worker.id]
        assert health.check(idle, store=False).status is health.HealthStatus.HEALTHY
        degraded = health.check(stuck, health.HealthRules(no_live_workers=health.Level.DEGRADED), store=False)
        assert degraded.status is health.HealthStatus.DEGRADED
        assert "not_consuming" not in _rules(health.check(stuck, health.HealthRules(not_consuming=None)))

        snap = read_snapshot(stuck)
        assert [w for w, _ in snap.not_consuming] == [worker.id] and snap.live_workers == 1
        policy = Hold()
        tick = Coordinator(conn, "stuck", policy, min_workers=0, max_workers=4).tick()
        assert policy.seen[-1].not_consuming == 1 and policy.seen[-1].ready == 0  # a stuck worker is not ready
        assert tick.decision is not None and tick.decision.values["not_consuming"] == 1

        code, out = _cli(conn, "workers", "stuck")
        assert code == 0 and "NO: 3 job(s) wait" in out and "never" in out
        code, out = _cli(conn, "workers", "stuck", "--json")
        (shown,) = json.loads(out)
        assert shown["id"] == worker.id and "since it started" in shown["not_consuming"]
        assert "NO:" not in _cli(conn, "workers", "idle")[1]

        verdict = probe.judge(path, now)
        assert not verdict.ok and f"is not consuming stuck: {worker.options.concurrency} free slot(s)" in verdict.reason
    finally:
        await worker.kill()


async def _healthy(clock: jqc.VirtualClock, queue: jqc.Queue, worker: jqc.Worker, path: str) -> None:
    now = clock.now()
    assert _flag(queue, worker) == ""
    assert "not_consuming" not in _rules(health.check(queue, store=False))
    assert read_snapshot(queue).not_consuming == ()
    assert probe.judge(path, now).ok, probe.judge(path, now).reason


async def test_a_healthy_idle_worker_is_not_flagged_even_as_jobs_arrive(
    conn: jqc.Connection, clock: jqc.VirtualClock, tmp_path: Path
) -> None:
    queue = conn.queue("quiet")
    path = str(tmp_path / "health.json")
    worker = jqc.Worker(conn.async_queue("quiet"), work, health_file=path)
    await worker.start()
    try:
        await clock.sleep(600)  # ten idle minutes: it still polls every stall interval
        (info,) = queue.workers()
        assert info.polled is not None and clock.now() - info.polled <= 15 + 5.5
        await _healthy(clock, queue, worker, path)
        queue.add("work", None)  # judged before the worker had a chance to claim it
        assert queue.counts().waiting == 1
        await _healthy(clock, queue, worker, path)
        await until(clock, lambda: queue.counts().completed == 1, within=30)
    finally:
        await worker.close()
    assert not Path(path).exists()  # a stopped worker leaves no health file: a probe fails
    assert "no health file" in probe.judge(path, clock.now()).reason


async def test_a_worker_at_full_concurrency_is_busy_not_stuck(
    conn: jqc.Connection, clock: jqc.VirtualClock, tmp_path: Path
) -> None:
    queue = conn.queue("busy")
    queue.add_bulk([jqc.NewJob("work", i) for i in range(5)])
    release = asyncio.Event()

    async def slow(ctx: jqc.JobContext) -> None:
        await release.wait()

    path = str(tmp_path / "health.json")
    worker = jqc.Worker(conn.async_queue("busy"), slow, concurrency=2, health_file=path)
    await worker.start()
    try:
        await clock.sleep(300)
        (info,) = queue.workers()
        assert info.active == 2 and queue.counts().waiting == 3 and clock.now() - (info.polled or 0) > 250
        await _healthy(clock, queue, worker, path)
        release.set()
        await until(clock, lambda: queue.counts().completed == 5, within=60)
    finally:
        await worker.close()


async def test_a_rate_limited_worker_is_not_flagged_until_its_hold_is_long_over(
    conn: jqc.Connection, clock: jqc.VirtualClock, tmp_path: Path
) -> None:
    queue = conn.queue("limited")
    queue.add_bulk([jqc.NewJob("work", i) for i in range(3)])
    runs: list[Any] = []

    async def limited(ctx: jqc.JobContext) -> None:
        runs.append(ctx.data)
        if len(runs) == 1:
            raise jqc.RateLimited(600, "the API said 429")

    path = str(tmp_path / "health.json")
    worker = jqc.Worker(conn.async_queue("limited"), limited, concurrency=1, health_file=path)
    await worker.start()
    try:
        await clock.sleep(300)
        (info,) = queue.workers()
        assert info.hold_until is not None and info.hold_until > clock.now() and queue.counts().waiting == 3
        await _healthy(clock, queue, worker, path)
        await until(clock, lambda: queue.counts().completed == 3, within=400)
    finally:
        await worker.close()


async def test_a_queue_rate_limit_and_a_paused_queue_are_not_stuck_workers(
    conn: jqc.Connection, clock: jqc.VirtualClock, tmp_path: Path
) -> None:
    limited, paused = conn.queue("per-hour"), conn.queue("paused")
    limited.configure(rate_limit=(1, 3600))
    limited.add_bulk([jqc.NewJob("work", i) for i in range(3)])
    paused.add_bulk([jqc.NewJob("work", i) for i in range(3)])
    paused.pause()
    path = str(tmp_path / "health.json")
    worker = jqc.Worker([conn.async_queue("per-hour"), conn.async_queue("paused")], work, health_file=path)
    await worker.start()
    try:
        await clock.sleep(300)
        assert limited.counts().completed == 1 and limited.counts().waiting == 2
        (info,) = limited.workers()
        assert info.hold_until is not None and info.hold_until > clock.now()
        await _healthy(clock, limited, worker, path)
        assert paused.counts().waiting == 3
        await _healthy(clock, paused, worker, path)
    finally:
        await worker.close()
