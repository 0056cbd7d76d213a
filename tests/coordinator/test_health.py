"""Health rules (pure, on hand-made snapshots) and checks stored in Redis (both backends)."""

from __future__ import annotations

from collections import Counter

import pytest

import jqc
from jqc.coordinator import health
from jqc.coordinator.health import HealthReport, HealthRules, HealthStatus, Level, evaluate
from jqc.coordinator.metrics import QueueSnapshot, StallCount
from jqc.engine.calls import run_sync
from jqc.engine.metrics import Histogram, Metrics, MinuteMetrics, bucket_of
from jqc.engine.operations import Counts
from tests.coordinator.conftest import heartbeat


def snapshot(
    *,
    waiting: int = 0,
    completed: int = 0,
    failed: int = 0,
    retried: int = 0,
    wait_ms: float | None = None,
    oldest: float | None = None,
    live: int | None = None,
    stalls: StallCount | None = None,
    paused: bool = False,
) -> QueueSnapshot:
    waits: Counter[int] = Counter()
    if wait_ms is not None:
        waits[bucket_of(wait_ms)] = completed + failed + retried or 1
    minute = MinuteMetrics(0, completed, failed, retried, Histogram(dict(waits)), Histogram({}))
    counts = Counts(waiting, 0, 0, completed, failed, failed, paused)
    return QueueSnapshot("q", 1000.0, 5, counts, Metrics((minute,), 5), oldest, live, stalls)


def levels(report: HealthReport) -> dict[str, Level]:
    return {r.rule: r.level for r in report.reasons}


def test_a_quiet_queue_is_healthy() -> None:
    report = evaluate(snapshot())
    assert report.status == HealthStatus.HEALTHY and report.reasons == ()
    assert report.checked_at == 1000.0 and report.window_minutes == 5


def test_error_rate_rule_needs_enough_attempts() -> None:
    assert evaluate(snapshot(completed=2, failed=3)).status == HealthStatus.HEALTHY  # 5 < min_attempts
    degraded = evaluate(snapshot(completed=90, retried=10))
    assert degraded.status == HealthStatus.DEGRADED and levels(degraded) == {"error_rate": Level.DEGRADED}
    assert degraded.reasons[0].message == "error rate 10.0% above 5.0%"
    assert evaluate(snapshot(completed=10, failed=20)).status == HealthStatus.UNHEALTHY
    off = HealthRules(error_rate_degraded=None, error_rate_unhealthy=None)
    assert evaluate(snapshot(completed=10, failed=20), off).status == HealthStatus.HEALTHY


def test_wait_slo_rule() -> None:
    rules = HealthRules(wait_slo=1.0)
    assert evaluate(snapshot(completed=30, wait_ms=500), rules).status == HealthStatus.HEALTHY
    slow = evaluate(snapshot(completed=30, wait_ms=1500), rules)
    assert levels(slow) == {"wait_slo": Level.DEGRADED} and "wait p95" in slow.reasons[0].message
    assert evaluate(snapshot(completed=30, wait_ms=5000), rules).status == HealthStatus.UNHEALTHY
    assert evaluate(snapshot(completed=30, wait_ms=5000)).status == HealthStatus.HEALTHY  # no SLO set


def test_oldest_waiting_rule() -> None:
    assert evaluate(snapshot(waiting=1, oldest=10.0)).status == HealthStatus.HEALTHY
    assert evaluate(snapshot(waiting=1, oldest=600.0)).status == HealthStatus.DEGRADED
    report = evaluate(snapshot(waiting=1, oldest=3600.0))
    assert report.status == HealthStatus.UNHEALTHY and report.reasons[0].value == 3600.0


def test_no_live_workers_rule_and_unknown_liveness() -> None:
    dead = evaluate(snapshot(waiting=3, live=0))
    assert dead.status == HealthStatus.UNHEALTHY
    assert dead.reasons[0].message == "no live workers while 3 job(s) wait"
    idle = evaluate(snapshot(waiting=0, live=0))
    assert idle.status == HealthStatus.HEALTHY and levels(idle) == {"workers": Level.INFO}
    unknown = evaluate(snapshot(waiting=3, live=None))
    assert unknown.status == HealthStatus.HEALTHY and "unknown" in unknown.reasons[0].message
    assert evaluate(snapshot(waiting=3, live=2)).reasons == ()
    mild = HealthRules(no_live_workers=Level.DEGRADED)
    assert evaluate(snapshot(waiting=3, live=0), mild).status == HealthStatus.DEGRADED


def test_stall_rate_rule() -> None:
    assert evaluate(snapshot(completed=95, stalls=StallCount(5, True))).status == HealthStatus.HEALTHY
    high = evaluate(snapshot(completed=80, stalls=StallCount(20, True)))
    assert levels(high) == {"stall_rate": Level.DEGRADED}
    partial = evaluate(snapshot(completed=50, stalls=StallCount(50, False)))
    assert partial.status == HealthStatus.UNHEALTHY and partial.reasons[0].message.endswith("(at least)")


def test_paused_is_a_note_and_the_worst_finding_wins() -> None:
    report = evaluate(snapshot(waiting=2, oldest=600.0, live=0, paused=True))
    assert report.status == HealthStatus.UNHEALTHY
    assert levels(report) == {"oldest_waiting": Level.DEGRADED, "workers": Level.UNHEALTHY, "paused": Level.INFO}


def test_rules_are_validated() -> None:
    for bad in (
        {"window_minutes": 0},
        {"error_rate_degraded": 2.0},
        {"wait_slo": -1},
        {"min_attempts": -1},
        {"slo_unhealthy_factor": 0.5},
        {"no_live_workers": "unhealthy"},
    ):
        with pytest.raises(jqc.InvalidOptionError):
            HealthRules(**bad)  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError, match="unknown health rule"):
        health.rules_from({"nope": 1})
    assert health.rules_from({"wait_slo": 2.0}).wait_slo == 2.0


# -- stored checks, both backends -----------------------------------------------------------------


def test_check_stores_the_report_and_reads_it_back(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    assert health.read_health(queue) is None
    queue.add("x")
    clock.advance(42)
    report = health.check(queue)
    assert report.status == HealthStatus.HEALTHY
    assert report.checked_at == pytest.approx(clock.now(), abs=0.001)
    assert report.values["backlog"] == 1 and report.values["oldest_waiting_age"] == pytest.approx(42.0)
    assert health.read_health(queue) == report
    stored = queue.connection.sync_client().hgetall("jqc:{photos}:health")
    assert stored["status"] == "healthy" and stored["at"] == str(round(clock.now() * 1000))


def test_unhealthy_queue_with_dead_workers(queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    run_sync(conn.backend, heartbeat(queue.ops, "w1", "name", "w1"))
    queue.add("x")
    clock.advance(60)  # the worker stopped beating
    report = health.check(queue, HealthRules(oldest_waiting_degraded=None, oldest_waiting_unhealthy=None))
    assert report.status == HealthStatus.UNHEALTHY
    assert [r.rule for r in report.reasons] == ["workers"]
    assert health.read_health(queue) == report


def test_failing_jobs_make_a_queue_unhealthy(queue: jqc.Queue) -> None:
    for _ in range(20):
        queue.add("x")
    for _ in range(20):
        queue.fail(queue.claim("w").jobs[0], "boom")
    report = health.check(queue, store=False)
    assert report.status == HealthStatus.UNHEALTHY and report.values["error_rate"] == 1.0
    assert health.read_health(queue) is None  # store=False


def test_stalls_feed_the_stall_rule(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    for _ in range(4):
        queue.add("x")
    queue.claim("w", count=4, lock=1)
    clock.advance(2)
    queue.recover_stalled(max_stalls=5)
    report = health.check(queue, HealthRules(min_attempts=1))
    assert levels(report)["stall_rate"] == Level.UNHEALTHY


def test_check_all_and_a_corrupt_record(conn: jqc.Connection) -> None:
    conn.queue("a").add("x")
    conn.queue("b").add("y")
    assert [r.queue for r in health.check_all(conn)] == ["a", "b"]
    conn.sync_client().hset("jqc:{a}:health", "status", "sideways")
    with pytest.raises(jqc.CorruptJobError):
        health.read_health(conn.queue("a"))


async def test_async_check_and_read(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.async_queue("photos")
    await queue.add("x")
    report = await health.acheck(queue)
    assert await health.aread_health(queue) == report
    assert health.read_health(conn.queue("photos")) == report
    await conn.aclose()


def test_report_json_round_trip() -> None:
    report = evaluate(snapshot(waiting=3, live=0, paused=True))
    assert HealthReport.from_fields("q", report.to_fields()) == report
    data = report.to_dict()
    assert data["status"] == "unhealthy" and data["reasons"][0]["level"] == "unhealthy"
