"""Time travel across schedule ticks: advance the virtual clock, and a drain fires exactly the ticks
of that time, each as at its own time; ``until=`` walks from tick to tick. Both backends."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import jqc
from jqc.testing import drain

EPOCH = jqc.clock.VIRTUAL_EPOCH  # 2026-01-01T00:00:00Z


def test_a_day_of_ticks_after_advancing_a_day(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("reports")
    q.schedule("hourly", cron="0 * * * *", missed="once")  # once: an outage would fire one
    seen: list[tuple[str, float]] = []

    def hourly(ctx: jqc.SyncJobContext) -> None:
        seen.append((ctx.id, ctx.job.created_at))

    clock.advance(days=1)
    result = drain(q, {"hourly": hourly})
    assert len(result.jobs) == len(result.completed) == 24
    assert [created for _, created in seen] == [EPOCH + 3600 * h for h in range(1, 25)]  # each at its tick
    assert clock.now() == EPOCH + 86400
    schedule = q.get_schedule("hourly")
    assert schedule is not None and schedule.fired == 24 and schedule.skipped_missed == 0
    assert drain(q, {"hourly": hourly}).jobs == ()  # nothing more is due


def test_until_walks_the_clock_from_tick_to_tick(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("reports")
    q.schedule("nightly", cron="30 2 * * *", tz="Europe/Berlin")
    ran_at: list[float] = []

    def nightly(ctx: jqc.SyncJobContext) -> None:
        ran_at.append(ctx.now())

    result = drain(q, {"nightly": nightly}, until=timedelta(days=3))
    berlin = ZoneInfo("Europe/Berlin")
    assert [datetime.fromtimestamp(t, berlin).strftime("%d %H:%M") for t in ran_at] == [
        "01 02:30",
        "02 02:30",
        "03 02:30",
    ]
    assert result.ended_by == "until" and clock.now() == EPOCH + 3 * 86400


def test_overlap_skip_lets_the_next_tick_fire_once_the_run_finished(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("reports")
    q.schedule("sync", every=600, overlap="skip")
    clock.advance(hours=1)
    result = drain(q, {"sync": lambda ctx: None})
    assert len(result.completed) == 6
    assert q.get_schedule("sync").skipped_overlap == 0  # type: ignore[union-attr]


def test_a_drain_without_until_never_waits_for_a_future_tick(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("reports")
    q.schedule("beat", every=5)
    assert drain(q, {"beat": lambda ctx: None}).jobs == ()
    assert clock.now() == EPOCH
