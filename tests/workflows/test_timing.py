"""Ticks across daylight saving time and time zones, and the missed-ticks planner.

Europe/Berlin in 2026: summer time starts on Sunday 29 March (02:00 CET -> 03:00 CEST: 02:30 does
not exist) and ends on Sunday 25 October (03:00 CEST -> 02:00 CET: 02:00-03:00 happens twice).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import jqc
from jqc.engine.calls import run_sync
from jqc.engine.timing import ENUMERATION_LIMIT, Timing, plan
from jqc.workflows import fire_due

BERLIN = ZoneInfo("Europe/Berlin")


def ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def local(ticks: list[int], tz: ZoneInfo = BERLIN) -> list[str]:
    return [datetime.fromtimestamp(t / 1000, tz).strftime("%m-%d %H:%M %Z") for t in ticks]


def cron(expression: str, tz: str = "Europe/Berlin") -> Timing:
    return Timing(expression, None, tz, 0)


def test_a_daily_0230_on_the_spring_forward_night_fires_once_at_0300_summer_time() -> None:
    ticks = cron("30 2 * * *").next_ticks(ms(datetime(2026, 3, 27, 12, tzinfo=BERLIN)), 4)
    assert local(ticks) == ["03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST", "03-31 02:30 CEST"]
    assert ticks[1] - ticks[0] == 23.5 * 3600 * 1000  # real time between the first two ticks


def test_a_daily_0230_on_the_fall_back_night_fires_once_at_its_first_occurrence() -> None:
    ticks = cron("30 2 * * *").next_ticks(ms(datetime(2026, 10, 23, 12, tzinfo=BERLIN)), 4)
    assert local(ticks) == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET", "10-27 02:30 CET"]
    assert datetime.fromtimestamp(ticks[1] / 1000, UTC).hour == 0  # 02:30 CEST is 00:30 UTC


def test_starting_inside_the_repeated_hour_does_not_fire_its_second_occurrence() -> None:
    inside = datetime(2026, 10, 25, 1, 5, tzinfo=UTC)  # 02:05 CET, after 02:30 CEST already passed
    assert local(cron("30 2 * * *").next_ticks(ms(inside), 1)) == ["10-26 02:30 CET"]


def test_an_every_hour_expression_fires_in_both_occurrences_of_the_repeated_hour() -> None:
    ticks = cron("*/30 * * * *").next_ticks(ms(datetime(2026, 10, 25, 1, 45, tzinfo=BERLIN)), 6)
    assert local(ticks) == [
        "10-25 02:00 CEST", "10-25 02:30 CEST", "10-25 02:00 CET", "10-25 02:30 CET", "10-25 03:00 CET",
        "10-25 03:30 CET",
    ]  # fmt: skip
    assert {b - a for a, b in itertools.pairwise(ticks)} == {30 * 60 * 1000}  # every 30 real minutes


def test_an_every_hour_expression_skips_the_missing_hour_without_doubling() -> None:
    ticks = cron("*/30 * * * *").next_ticks(ms(datetime(2026, 3, 29, 1, 15, tzinfo=BERLIN)), 3)
    assert local(ticks) == ["03-29 01:30 CET", "03-29 03:00 CEST", "03-29 03:30 CEST"]


def test_time_zones_place_the_same_expression_at_different_instants() -> None:
    after = ms(datetime(2026, 6, 1, tzinfo=UTC))
    tokyo, new_york = cron("0 9 * * *", "Asia/Tokyo"), cron("0 9 * * *", "America/New_York")
    assert datetime.fromtimestamp(tokyo.next_ticks(after, 1)[0] / 1000, UTC).hour == 0
    assert datetime.fromtimestamp(new_york.next_ticks(after, 1)[0] / 1000, UTC).hour == 13


def test_every_counts_real_time_whatever_the_zone() -> None:
    start = ms(datetime(2026, 10, 25, 0, 0, tzinfo=UTC))
    ticks = Timing(None, 3600_000, "UTC", start).next_ticks(start, 4)
    assert [t - start for t in ticks] == [3600_000 * k for k in (1, 2, 3, 4)]


def test_latest_finds_the_last_tick_at_or_before_a_time() -> None:
    t = cron("30 2 * * *")
    fall = datetime(2026, 10, 25, 12, tzinfo=BERLIN)
    assert local([t.latest(ms(fall))]) == ["10-25 02:30 CEST"]  # type: ignore[list-item]
    assert t.latest(ms(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))) == ms(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert Timing(None, 1000, "UTC", 5000).latest(5999) is None


def test_a_long_outage_of_a_fast_schedule_is_planned_without_counting_every_tick() -> None:
    every_second = Timing(None, 1000, "UTC", 0)
    week = 7 * 86400 * 1000
    chosen = plan(every_second, next_tick=1000, now=week, missed="once", cap=10, grace_ms=0)
    assert chosen is not None and chosen.fire == (week,) and chosen.skipped == week // 1000 - 1
    assert chosen.next == week + 1000
    minutely = cron("* * * * *", "UTC")
    start = ms(datetime(2026, 1, 1, tzinfo=UTC))
    later = start + (ENUMERATION_LIMIT + 500) * 60_000
    chosen = plan(minutely, next_tick=start + 60_000, now=later, missed="all", cap=3, grace_ms=0)
    assert chosen is not None and chosen.fire[-1] == later and len(chosen.fire) == 3
    assert chosen.next == later + 60_000


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])
def test_a_driver_walking_through_a_dst_night_fires_the_0230_schedule_exactly_once(
    conn: jqc.Connection, day: str
) -> None:
    clock = conn.clock
    assert isinstance(clock, jqc.VirtualClock)
    clock.move_to(datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp() - 86400)
    queue = conn.queue("dst")
    queue.schedule("nightly", cron="30 2 * * *", tz="Europe/Berlin")
    queue.schedule("half-hourly", cron="*/30 * * * *", tz="Europe/Berlin")
    end = clock.now() + 2 * 86400
    while clock.now() < end:
        clock.advance(7 * 60)  # a driver passing every 7 minutes
        run_sync(conn.backend, fire_due(queue.ops))
    jobs = [j.id for j in queue.list_jobs("waiting", limit=1000).jobs]
    nightly = sorted(int(i.rsplit(":", 1)[1]) for i in jobs if i.startswith("s:nightly:"))
    half = sorted(int(i.rsplit(":", 1)[1]) for i in jobs if i.startswith("s:half-hourly:"))
    expected = {"2026-03-29": "03-29 03:00 CEST", "2026-10-25": "10-25 02:30 CEST"}[day]
    assert expected in local(nightly) and len(nightly) == 2  # the night before and the DST night
    assert len(half) == len(set(half)) == 96  # 48 real hours, the missing or repeated one included
    assert all(b - a == timedelta(minutes=30).total_seconds() * 1000 for a, b in itertools.pairwise(half))
