"""When a drain stops: idle, until= (a time or a predicate), jobs=, and the safety limits, on both backends."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

import jqc
from jqc.testing import DrainError, all_enqueued, drain

EPOCH = jqc.clock.VIRTUAL_EPOCH


def _again(queue: jqc.Queue, every: float = 60.0) -> jqc.worker.execute.SyncHandler:
    """A handler that schedules the next run of its job, like a cron schedule: it never ends on its own."""

    def again(ctx: jqc.SyncJobContext) -> float:
        queue.add("tick", None, delay=every)
        return ctx.now()

    return again


def test_max_runs_runs_at_most_that_many_and_lists_what_is_pending(conn: jqc.Connection) -> None:
    q = conn.queue("loop")
    q.add("tick", None)
    ran: list[float] = []

    def tick(ctx: jqc.SyncJobContext) -> None:
        ran.append(ctx.now())
        q.add("tick", None, delay=60)

    with pytest.raises(DrainError) as info:
        drain(q, tick, max_runs=3)

    assert len(ran) == 3  # not 4
    message = str(info.value)
    assert "stopped after max_runs=3 runs: jobs keep coming" in message
    assert "still pending (clock at +180s): 1 job" in message
    assert "  - 'tick' id=4 in 'loop' data=None: waiting; attempts made 0 of 1" in message
    result = info.value.result
    assert result is not None and result.runs == 3 and result.ended_by == "max_runs"
    assert [job.id for job in result.pending] == ["4"]
    assert q.counts().active == 0  # the job claimed past the limit was handed back unrun


def test_max_runs_equal_to_the_work_is_no_error(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    for i in range(3):
        q.add("job", i)
    result = drain(q, lambda ctx: ctx.data, max_runs=3)
    assert result.results == [0, 1, 2] and result.ended_by == "idle" and result.stats.released == 0


def test_a_job_retrying_without_end_stops_at_max_runs(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("flaky", None, attempts=1_000_000, backoff=jqc.Backoff.exponential(1, cap=60))

    def flaky(ctx: jqc.SyncJobContext) -> None:
        raise ConnectionError("never up")

    began = time.perf_counter()
    with pytest.raises(DrainError, match="stopped after max_runs=50 runs") as info:
        drain(q, flaky, max_runs=50)
    assert time.perf_counter() - began < 30  # a generous deadline: it stops, it does not hang
    message = str(info.value)
    assert "  - 'flaky' id=1 in 'work' data=None: waiting; attempts made 50 of 1000000" in message


def test_until_a_clock_time_runs_what_falls_due_by_then_and_leaves_the_clock_there(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    q = conn.queue("cron")
    q.add("tick", None)
    result = drain(q, _again(q), until=EPOCH + 150)
    assert result.results == [EPOCH, EPOCH + 60, EPOCH + 120]
    assert clock.now() == EPOCH + 150 and result.ended_by == "until"
    [pending] = result.pending
    assert pending.state is jqc.JobState.DELAYED and pending.ready_at == EPOCH + 180

    # inclusive: a job due exactly at `until` runs; a datetime and a timedelta say the same
    assert drain(q, _again(q), until=datetime(2026, 1, 1, 0, 3, tzinfo=UTC)).results == [EPOCH + 180]
    assert drain(q, _again(q), until=timedelta(minutes=2)).results == [EPOCH + 240, EPOCH + 300]
    assert clock.now() == EPOCH + 300


def test_until_with_nothing_to_do_still_moves_the_clock(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("empty")
    result = drain(q, lambda ctx: None, until=timedelta(hours=1))
    assert result.runs == 0 and clock.now() == EPOCH + 3600


def test_until_stops_inside_a_wait_that_would_pass_it(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("limited")
    q.configure(rate_limit=(1, 3600))  # one job an hour
    for i in range(3):
        q.add("call", i)
    result = drain(q, lambda ctx: ctx.data, until=timedelta(minutes=10))
    assert result.results == [0] and clock.now() == EPOCH + 600
    assert len(all_enqueued(q)) == 2


def test_until_a_predicate(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    for i in range(5):
        q.add("job", i)

    result = drain(q, lambda ctx: ctx.data, until=lambda: q.counts().completed >= 2)
    assert result.results == [0, 1] and result.ended_by == "until"
    assert drain(q, lambda ctx: ctx.data, until=lambda: True).runs == 0  # holds at once: nothing runs

    async def four_done() -> bool:  # an async predicate is awaited; it is checked before each run
        return q.counts().completed >= 4

    assert drain(q, lambda ctx: ctx.data, until=four_done).results == [2, 3]


def test_a_predicate_that_never_holds_is_an_error(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", 1)

    def ten_done() -> bool:
        return q.counts().completed >= 10

    with pytest.raises(DrainError, match=r"ran out of jobs before until=ten_done\(\) held"):
        drain(q, lambda ctx: ctx.data, until=ten_done)

    def broken() -> bool:
        raise KeyError("typo")

    q.add("job", 2)
    with pytest.raises(KeyError, match="typo") as info:
        drain(q, lambda ctx: ctx.data, until=broken)
    assert "until= predicate" in info.value.__notes__[0]


def test_jobs_counts_jobs_finished_not_attempts(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("flaky", "a", attempts=3, backoff=jqc.Backoff.fixed(10))
    q.add("steady", "b")
    q.add("steady", "c")

    def handler(ctx: jqc.SyncJobContext) -> str:
        if ctx.name == "flaky" and ctx.attempt < 3:
            raise RuntimeError("not yet")
        return ctx.data

    result = drain(q, handler, jobs=2)
    assert result.ended_by == "jobs" and result.results == ["b", "c"]  # flaky's first attempt does not count
    assert [job.data for job in result.pending] == ["a"]  # waiting out its backoff: pending, not an error
    assert drain(q, handler, jobs=1).results == ["a"]


def test_jobs_counts_a_job_failed_for_good(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("bad", None)
    q.add("good", None)

    def handler(ctx: jqc.SyncJobContext) -> str:
        if ctx.name == "bad":
            raise jqc.Fail("bad input")
        return "ok"

    result = drain(q, handler, jobs=1, raise_on_failure=False)
    assert [r.state for r in result.jobs] == [jqc.JobState.FAILED] and q.counts().waiting == 1


def test_running_out_before_jobs_is_an_error(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", 1)
    with pytest.raises(DrainError, match=r"ran out of jobs with 1 of jobs=3 finished"):
        drain(q, lambda ctx: ctx.data, jobs=3)


def test_delayed_jobs_and_advance_time(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("later")
    q.add("soon", None, delay=60)
    q.add("now", None)
    assert drain(q, lambda ctx: ctx.name, advance_time=False).results == ["now"] and clock.now() == EPOCH
    assert drain(q, lambda ctx: ctx.name).results == ["soon"] and clock.now() == EPOCH + 60


def test_rate_limits_pass_on_the_virtual_clock(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("api")
    q.configure(rate_limit=(2, 60))  # two jobs a minute
    for i in range(5):
        q.add("call", i)
    result = drain(q, lambda ctx: (ctx.data, ctx.now() - EPOCH), advance_time=False)
    assert result.results == [[0, 0], [1, 0], [2, 60], [3, 60], [4, 120]]  # even without advance_time
    assert clock.now() == EPOCH + 120


def test_queue_and_worker_concurrency(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.configure(concurrency=2)  # at most two jobs of this queue active at once, across workers
    for i in range(6):
        q.add("job", i)
    active: list[int] = []
    peak = [0]

    async def job(ctx: jqc.JobContext) -> int:
        active.append(ctx.data)
        peak[0] = max(peak[0], len(active))
        await conn.clock.sleep(1)  # overlap on the virtual clock
        active.remove(ctx.data)
        return int(ctx.data)

    result = drain(q, job, concurrency=4)
    assert sorted(result.results) == list(range(6)) and peak[0] == 2


def test_a_paused_queue_keeps_its_jobs(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", 1)
    q.pause()
    assert drain(q, lambda ctx: ctx.data).runs == 0
    q.resume()
    assert drain(q, lambda ctx: ctx.data).results == [1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_runs": 0}, "max_runs must be an int >= 1"),
        ({"max_runs": 2.5}, "max_runs must be an int >= 1"),
        ({"jobs": 0}, "jobs must be an int >= 1"),
        ({"jobs": True}, "jobs must be an int >= 1"),
        ({"until": "tomorrow"}, "until= takes a clock time"),
        ({"until": EPOCH - 1}, "is in the past"),
        ({"until": datetime(2027, 1, 1)}, "needs an aware datetime"),
        ({"until": timedelta(seconds=-1)}, "counts forward from now"),
        ({"until": lambda x: True}, "called with no arguments"),
        ({"until": EPOCH + 10, "jobs": 1}, "not both"),
        ({"until": EPOCH + 10, "advance_time": False}, "cannot go with advance_time=False"),
        ({"wall_timeout": 0}, "wall_timeout must be"),
        ({"advance_time": "yes"}, "advance_time must be a bool"),
        ({"raise_on_failure": None}, "raise_on_failure must be a bool"),
        ({"faults": ["crash"]}, "faults are made by"),
        ({"concurrenc": 2}, "unknown worker option.s. concurrenc; jqc.Worker takes concurrency, name, lock"),
        ({"lock": -1}, "lock must be a number of seconds"),
        ({"observer": None}, "observer= is set by jqc.testing itself"),
    ],
)
def test_bad_limits_are_refused_before_anything_runs(
    conn: jqc.Connection, arguments: dict[str, object], message: str
) -> None:
    q = conn.queue("work")
    q.add("job", 1)
    with pytest.raises(jqc.InvalidOptionError, match=message):
        drain(q, lambda ctx: None, **arguments)  # type: ignore[arg-type]
    assert q.counts().waiting == 1
    with pytest.raises(jqc.InvalidOptionError, match=r"drain runs a jqc\.Queue"):
        drain("work", lambda ctx: None)  # type: ignore[arg-type]
