"""Schedules on both backends: upsert, list, remove, one job per tick, and every failure case of
firing (drivers racing, a driver crashing between its read and its write, a clock jumping back, a
schedule removed or changed while it fires)."""

from __future__ import annotations

from datetime import timedelta

import pytest

import jqc
from jqc import Backoff, JobOptions, JobState, Keep
from jqc.engine.calls import run_sync
from jqc.engine.ops_schedules import StoredSchedule
from jqc.engine.timing import plan
from jqc.workflows import drive, fire_due
from tests.stored import job_record

EPOCH = jqc.clock.VIRTUAL_EPOCH  # 2026-01-01T00:00:00Z, a Thursday
MINUTE = 60.0


def pass_(queue: jqc.Queue) -> jqc.workflows.DrivePass:
    return run_sync(queue.connection.backend, fire_due(queue.ops))


def fired_ids(queue: jqc.Queue) -> list[str]:
    return sorted(
        job.id for state in ("waiting", "active", "completed", "failed") for job in queue.list_jobs(state).jobs
    )


def read(queue: jqc.Queue, name: str) -> StoredSchedule:
    stored = run_sync(queue.connection.backend, queue.ops.read_schedule(name))
    assert stored is not None
    return stored


def planned(queue: jqc.Queue, stored: StoredSchedule) -> jqc.engine.timing.Plan:
    s = stored.schedule
    assert stored.next_tick is not None
    chosen = plan(
        s.timing, next_tick=stored.next_tick, now=jqc.clock.now_ms(queue.clock), missed=s.missed,
        cap=s.max_catch_up, grace_ms=round(s.grace * 1000),
    )  # fmt: skip
    assert chosen is not None
    return chosen


# -- storing ---------------------------------------------------------------------------------------


def test_upsert_list_get_and_remove(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    made = queue.schedule("report", cron="*/5 * * * *", data={"kind": "daily"}, priority=2, attempts=3)
    assert made.revision == 1 and made.cron == "*/5 * * * *" and made.tz == "UTC"
    assert made.next_at == EPOCH + 5 * MINUTE and made.job == "report" and made.data == {"kind": "daily"}
    assert made.options.priority == 2 and made.options.attempts == 3
    queue.schedule("tick", every=timedelta(seconds=90), job="heartbeat")
    assert [s.name for s in queue.schedules()] == ["tick", "report"]  # the next to fire first
    assert queue.get_schedule("report") == made
    assert queue.get_schedule("nope") is None
    assert queue.remove_schedule("report") is True
    assert queue.remove_schedule("report") is False
    assert [s.name for s in queue.schedules()] == ["tick"]
    assert queue.counts().waiting == 0  # scheduling adds no job by itself


def test_an_unchanged_upsert_keeps_the_next_tick_and_a_change_recomputes_it(
    queue: jqc.Queue, clock: jqc.VirtualClock
) -> None:
    first = queue.schedule("every", every=600, data=[1])
    clock.advance(300)
    again = queue.schedule("every", every=600, data=[1])  # a second process declaring it at start
    assert again == first and again.next_at == EPOCH + 600
    changed = queue.schedule("every", every=900, data=[1])
    assert changed.revision == 2 and changed.next_at == EPOCH + 300 + 900  # re-anchored at the change
    assert changed.created_at == EPOCH and changed.updated_at == EPOCH + 300


def test_every_counts_from_an_explicit_start(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    clock.advance(1000)
    made = queue.schedule("s", every=timedelta(hours=1), start=EPOCH + 30)
    assert made.start == EPOCH + 30 and made.next_at == EPOCH + 30 + 3600
    assert [d.timestamp() for d in made.next_fires(3)] == [EPOCH + 30 + 3600 * k for k in (1, 2, 3)]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cron": "61 * * * *"}, "invalid cron expression"),
        ({"cron": "not a cron"}, "invalid cron expression"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"cron": ""}, "cron must be"),
        ({"cron": "* * * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"cron": "* * * * *", "tz": "../../etc/passwd"}, "unknown time zone"),
        ({"cron": "* * * * *", "tz": 3}, "tz must be"),
        ({"every": 0.5}, "every must be between"),
        ({"every": float("nan")}, "every must be"),
        ({"every": 60, "tz": "Europe/Berlin"}, "tz= applies to cron"),
        ({"cron": "* * * * *", "start": 5.0}, "start= anchors"),
        ({}, "exactly one of cron= and every="),
        ({"cron": "* * * * *", "every": 60}, "exactly one of cron= and every="),
        ({"cron": "* * * * *", "missed": "sometimes"}, "missed must be one of"),
        ({"cron": "* * * * *", "overlap": "queue"}, "overlap must be one of"),
        ({"cron": "* * * * *", "max_catch_up": 0}, "max_catch_up must be"),
        ({"cron": "* * * * *", "grace": -1}, "grace must be"),
        ({"cron": "* * * * *", "job_id": "x"}, "no job_id or delay"),
        ({"cron": "* * * * *", "delay": 5}, "no job_id or delay"),
        ({"cron": "* * * * *", "colour": "red"}, "unknown schedule setting"),
    ],
)
def test_bad_settings_raise_a_typed_error_and_write_nothing(
    queue: jqc.Queue, conn: jqc.Connection, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(jqc.InvalidScheduleError, match=message):
        queue.schedule("bad", **settings)  # type: ignore[arg-type]
    assert queue.schedules() == [] and not queue.exists()
    assert list(conn.sync_client().scan_iter("*")) == []


def test_bad_names_data_and_option_values_are_refused(queue: jqc.Queue) -> None:
    for name in ("", "a b", "x" * 101, "-lead", "é", None):
        with pytest.raises(jqc.InvalidScheduleError, match="invalid schedule name"):
            queue.schedule(name, every=60)  # type: ignore[arg-type]
    with pytest.raises(jqc.DataNotJsonError):
        queue.schedule("s", every=60, data={1: "int key"})
    with pytest.raises(jqc.InvalidOptionError):
        queue.schedule("s", every=60, priority=2**40)
    with pytest.raises(jqc.InvalidScheduleError):
        queue.get_schedule("a b")
    assert queue.schedules() == []


# -- firing ----------------------------------------------------------------------------------------


def test_each_tick_adds_one_job_with_the_ticks_id_and_the_same_record_as_add(
    queue: jqc.Queue, conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    opts = JobOptions(
        priority=-4, attempts=5, backoff=Backoff.exponential(2, cap=30), timeout=12.5,
        remove_on_complete=Keep.last(10), remove_on_fail=Keep.younger_than(3600), meta={"team": "ops"},
    )  # fmt: skip
    queue.schedule("digest", options=opts, cron="0 * * * *", job="send-digest", data={"to": "all"})
    assert pass_(queue).fired == ()  # nothing is due yet
    clock.advance(3600)
    result = pass_(queue).fired
    assert [r.fired for r in result] == [(f"s:digest:{int((EPOCH + 3600) * 1000)}",)]
    job = queue.get_job(result[0].fired[0])
    assert job is not None and job.name == "send-digest" and job.data == {"to": "all"}
    assert job.state == JobState.WAITING and job.created_at == EPOCH + 3600
    assert jqc.scheduled_tick(job)[1].timestamp() == EPOCH + 3600  # type: ignore[index]
    added = queue.add("send-digest", {"to": "all"}, opts)
    stored = job_record(conn, queue, job.id)
    reference = job_record(conn, queue, added.id)
    assert stored == reference  # a tick's job is stored exactly as add stores it
    assert pass_(queue).fired == ()  # fired once


def test_two_drivers_racing_add_one_job(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("r", every=60)
    clock.advance(60)
    a, b = read(queue, "r"), read(queue, "r")  # both read the same state
    first = run_sync(queue.connection.backend, queue.ops.fire(a, planned(queue, a), jqc.clock.now_ms(clock)))
    second = run_sync(queue.connection.backend, queue.ops.fire(b, planned(queue, b), jqc.clock.now_ms(clock)))
    assert first.applied and len(first.fired) == 1
    assert not second.applied and second.fired == ()
    assert queue.counts().waiting == 1 and queue.get_schedule("r").fired == 1  # type: ignore[union-attr]


def test_a_driver_that_crashed_after_reading_changes_nothing_when_it_comes_back(
    queue: jqc.Queue, clock: jqc.VirtualClock
) -> None:
    queue.schedule("r", every=60)
    clock.advance(60)
    stale = read(queue, "r")
    stale_plan = planned(queue, stale)
    # it dies here (its lease expires); another driver takes over and fires the tick and the next
    pass_(queue)
    clock.advance(60)
    pass_(queue)
    assert queue.counts().waiting == 2
    late = run_sync(queue.connection.backend, queue.ops.fire(stale, stale_plan, jqc.clock.now_ms(clock)))
    assert not late.applied
    assert queue.counts().waiting == 2 and fired_ids(queue) == [
        f"s:r:{int((EPOCH + 60) * 1000)}",
        f"s:r:{int((EPOCH + 120) * 1000)}",
    ]


def test_a_tick_whose_job_exists_adds_nothing(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    made = queue.schedule("r", every=60)
    queue.add("other", {"mine": True}, job_id=made.job_id(EPOCH + 60))  # someone took the id
    clock.advance(60)
    (result,) = pass_(queue).fired
    assert result.applied and result.fired == () and result.repeated == 1
    assert queue.get_job(made.job_id(EPOCH + 60)).data == {"mine": True}  # type: ignore[union-attr]


def test_a_clock_jumping_back_fires_nothing_twice(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("r", every=60, missed="all")
    clock.advance(180)
    pass_(queue)
    assert queue.counts().waiting == 3
    clock.move_to(EPOCH + 30)  # an hour of NTP correction, say
    assert pass_(queue).fired == ()
    # a changed upsert made while the clock is behind never goes back to a tick it fired
    changed = queue.schedule("r", every=60, missed="all", data="v2")
    assert changed.next_at is not None and changed.next_at > EPOCH + 180
    clock.move_to(EPOCH + 240)
    pass_(queue)
    ticks = sorted(jqc.scheduled_tick(i)[1].timestamp() for i in fired_ids(queue))  # type: ignore[index]
    assert len(ticks) == len(set(ticks)) and all(t <= EPOCH + 240 for t in ticks)


def test_a_schedule_removed_or_changed_while_it_fires_adds_nothing(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("gone", every=60)
    queue.schedule("moved", every=60)
    clock.advance(60)
    gone, moved = read(queue, "gone"), read(queue, "moved")
    queue.remove_schedule("gone")
    queue.schedule("moved", every=120)
    now = jqc.clock.now_ms(clock)
    assert not run_sync(queue.connection.backend, queue.ops.fire(gone, planned(queue, gone), now)).applied
    assert not run_sync(queue.connection.backend, queue.ops.fire(moved, planned(queue, moved), now)).applied
    assert queue.counts().waiting == 0 and queue.get_schedule("gone") is None


# -- missed ticks and overlap ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missed", "fired", "skipped"),
    [("once", [60], 59), ("all", list(range(11, 61)), 10), ("skip", [59, 60], 58)],  # skip: grace 60 s
)
def test_missed_ticks_follow_the_policy(
    queue: jqc.Queue, clock: jqc.VirtualClock, missed: str, fired: list[int], skipped: int
) -> None:
    queue.schedule("m", cron="* * * * *", missed=missed, max_catch_up=50)
    clock.advance(3600)  # everything was down for an hour
    (result,) = pass_(queue).fired
    assert result.skipped_missed == skipped
    assert fired_ids(queue) == sorted(f"s:m:{int((EPOCH + 60 * k) * 1000)}" for k in fired)
    stored = queue.get_schedule("m")
    assert stored is not None and stored.skipped_missed == skipped and stored.fired == len(fired)
    assert stored.next_at == EPOCH + 3660


def test_skip_fires_ticks_within_the_grace_and_skips_older_ones(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("m", cron="* * * * *", missed="skip", grace=150)
    clock.advance(300)  # ticks at +60..+300: the last three are at most 150 s late
    (result,) = pass_(queue).fired
    assert len(result.fired) == 3 and result.skipped_missed == 2


def test_overlap_skip_waits_for_the_previous_run(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("o", every=60, overlap="skip", attempts=2, backoff=Backoff.fixed(500))
    clock.advance(60)
    pass_(queue)
    clock.advance(60)
    (waiting,) = pass_(queue).fired
    assert waiting.fired == () and waiting.skipped_overlap == 1  # the first job still waits
    claimed = queue.claim("w").jobs[0]
    clock.advance(60)
    assert pass_(queue).fired[0].skipped_overlap == 1  # ... then runs
    queue.fail(claimed, "flaky")  # a retry in backoff is unfinished too
    clock.advance(60)
    assert pass_(queue).fired[0].skipped_overlap == 1
    queue.promote(claimed.id)
    again = queue.claim("w").jobs[0]
    queue.complete(again)
    clock.advance(60)
    assert len(pass_(queue).fired[0].fired) == 1  # finished: the next tick fires
    assert queue.get_schedule("o").skipped_overlap == 3  # type: ignore[union-attr]


def test_overlap_skip_with_catch_up_fires_the_first_due_tick_only(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("o", every=60, overlap="skip", missed="all")
    clock.advance(300)
    (result,) = pass_(queue).fired
    assert len(result.fired) == 1 and result.skipped_overlap == 4


def test_overlap_allow_fires_while_the_previous_run_waits(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("o", every=60)
    for _ in range(3):
        clock.advance(60)
        pass_(queue)
    assert queue.counts().waiting == 3


# -- the lease -------------------------------------------------------------------------------------


def test_only_the_lease_holder_drives_until_its_lease_runs_out(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.schedule("l", every=60)
    clock.advance(60)
    backend = queue.connection.backend
    assert run_sync(backend, drive(queue.ops, "a", 10)).held
    assert not run_sync(backend, drive(queue.ops, "b", 10)).held
    clock.advance(60)
    # a died (it renews no more): once its lease ran out b takes over, and fires what a left
    took = run_sync(backend, drive(queue.ops, "b", 10))
    assert took.held and len(took.fired[0].fired) == 1
    assert queue.counts().waiting == 2


# -- asyncio ---------------------------------------------------------------------------------------


async def test_the_async_queue_schedules_the_same(aqueue: jqc.AsyncQueue, clock: jqc.VirtualClock) -> None:
    made = await aqueue.schedule("a", cron="*/10 * * * *", tz="Europe/Berlin", data={"x": 1})
    assert made.next_at == EPOCH + 600
    assert [s.name for s in await aqueue.schedules()] == ["a"]
    assert await aqueue.get_schedule("a") == made
    assert await aqueue.remove_schedule("a") is True and await aqueue.get_schedule("a") is None


def test_a_patient_driver_leaves_a_fresh_tick_to_the_holder_and_idle_passes_take_no_lease(
    queue: jqc.Queue, clock: jqc.VirtualClock
) -> None:
    backend = queue.connection.backend
    assert run_sync(backend, drive(queue.ops, "a", 10)) == jqc.workflows.DrivePass(False, next_due=None)
    queue.schedule("p", every=60)
    clock.advance(65)
    assert not run_sync(backend, drive(queue.ops, "b", 10, patience=10)).held  # due 5 s only: not b's
    assert queue.counts().waiting == 0
    assert backend.run_command("EXISTS", queue.ops.keys.key("schedule-lease")) == 0
    clock.advance(10)  # due 15 s: the holder left it undone, so b steps in
    done = run_sync(backend, drive(queue.ops, "b", 10, patience=10))
    assert done.held and len(done.fired[0].fired) == 1 and done.next_due == int((EPOCH + 120) * 1000)
