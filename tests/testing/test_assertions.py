"""assert_enqueued, refute_enqueued and all_enqueued: every criterion, every target, the messages, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest

import jqc
from jqc.testing import all_enqueued, assert_enqueued, drain, enqueued_jobs, refute_enqueued

EPOCH = jqc.clock.VIRTUAL_EPOCH


def test_delay_is_the_time_until_the_job_can_run_from_now(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("mail")
    q.add("nudge", None, delay=3600)
    assert_enqueued(q, name="nudge", delay=3600)
    clock.advance(600)
    assert_enqueued(q, name="nudge", delay=3000)  # the rest of its delay
    assert_enqueued(q, name="nudge", delay=timedelta(minutes=50), due_at=EPOCH + 3600)
    clock.advance(3600)
    assert_enqueued(q, name="nudge", delay=0)  # due: it can run now (still listed as delayed)
    assert_enqueued(q, name="nudge", due_at=datetime(2026, 1, 1, 1, tzinfo=UTC))


def test_a_job_waiting_out_its_backoff_has_the_backoff_as_delay(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("billing")
    q.add("charge", None, attempts=3, backoff=jqc.Backoff.fixed(30))

    def charge(ctx: jqc.SyncJobContext) -> None:
        raise ValueError("declined")

    drain(q, charge, advance_time=False, raise_on_failure=False)
    refute_enqueued(q, name="charge", delay=0)  # it cannot run now
    [job] = assert_enqueued(q, name="charge", delay=30, attempts_made=1, state="delayed")
    assert job.ready_at == clock.now() + 30
    clock.advance(30)
    assert_enqueued(q, name="charge", delay=0, attempts_made=1)


def test_every_criterion(conn: jqc.Connection) -> None:
    q = conn.queue("shop")
    backoff = jqc.Backoff.exponential(10)
    meta = {"tenant": "acme", "region": "eu"}
    data = {"order": "A1", "amount": 5, "card": {"last4": "4242"}}
    q.add("charge", data, job_id="charge-A1", priority=3, attempts=5, timeout=30, backoff=backoff, meta=meta)
    q.add("charge", {"order": "B2", "amount": 7})

    assert_enqueued(q, job_id="charge-A1", count=1)
    assert_enqueued(q, name="charge", count=2)
    assert_enqueued(q, data={"card": {"last4": "4242"}}, count=1)  # a subset, recursively
    assert_enqueued(q, data={"order": ANY, "amount": 7}, count=1)
    assert_enqueued(q, priority=3, attempts=5, timeout=30, backoff=jqc.Backoff.exponential(10), count=1)
    assert_enqueued(q, priority=0, attempts=1, timeout=None, backoff=None, count=1)
    assert_enqueued(q, meta={"tenant": "acme"}, count=1)
    assert_enqueued(q, attempts_made=0, state=jqc.JobState.WAITING, count=2)
    assert_enqueued(q, where=lambda job: job.data["amount"] > 6, count=1)
    job = q.get_job("charge-A1")
    assert job is not None and assert_enqueued(q, job_id=job) == [job]
    refute_enqueued(q, name="refund")
    refute_enqueued(q, name="charge", priority=9)


def test_state_says_where_to_look(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("ok", 1)
    q.add("bad", 2)
    q.add("later", 3, delay=60)

    def handler(ctx: jqc.SyncJobContext) -> int:
        if ctx.name == "bad":
            raise jqc.Fail("no")
        return int(ctx.data)

    drain(q, handler, advance_time=False, raise_on_failure=False)
    refute_enqueued(q, name="ok")  # completed: no longer enqueued
    assert_enqueued(q, name="ok", state="completed")
    assert_enqueued(q, name="bad", state=jqc.JobState.FAILED)
    assert [j.name for j in all_enqueued(q, state=["completed", "failed"])] == ["ok", "bad"]
    assert [j.name for j in all_enqueued(q, state=list(jqc.JobState))] == ["later", "ok", "bad"]
    assert [j.name for j in enqueued_jobs(q, states=("completed",))] == ["ok"]  # the older names


def test_across_queues_and_a_whole_connection(conn: jqc.Connection) -> None:
    mail, billing = conn.queue("mail"), conn.async_queue("billing")
    mail.add("welcome", 1)
    asyncio.run(billing.add("charge", 2))
    asyncio.run(conn.aclose())
    assert [j.queue for j in all_enqueued(conn)] == ["billing", "mail"]
    assert_enqueued([mail, billing], name="charge")
    assert_enqueued(billing, name="charge")  # an AsyncQueue, read synchronously
    refute_enqueued(mail, name="charge")
    with pytest.raises(AssertionError) as info:
        assert_enqueued(conn, name="refund")
    message = str(info.value)
    assert "in any queue of the connection ('billing', 'mail'), found 0" in message
    assert "  - 'charge' id=1 in 'billing' data=2 delay=0s priority=0 (waiting)  <- name is 'charge'" in message


def test_messages_list_the_nearest_candidates_and_every_reason(conn: jqc.Connection) -> None:
    q = conn.queue("mail")
    for i in range(30):
        q.add("welcome", {"email": f"user{i}@example.com", "plan": "free"})
    q.add("welcome", {"email": "ann@example.com", "plan": "free"}, priority=2)
    with pytest.raises(AssertionError) as info:
        assert_enqueued(q, name="welcome", data={"email": "ann@example.com", "plan": "pro"}, priority=2)
    lines = str(info.value).splitlines()
    assert lines[0] == (
        "expected a job matching name='welcome', data={'email': 'ann@example.com', 'plan': 'pro'}, priority=2 "
        "in queue 'mail', found 0"
    )
    assert lines[1] == "enqueued in 'mail' (waiting and delayed, in run order): 31"
    nearest = [line for line in lines if line.startswith("  - ")]
    # the 20 nearest, in run order: priority 0 runs first, so ann's job (one miss) comes last
    assert len(nearest) == 20 and "ann@example.com" in nearest[-1]
    assert nearest[-1].endswith("(waiting)  <- data['plan'] is 'free', not 'pro'")
    assert nearest[0].endswith("<- data['email'] is 'user0@example.com', not 'ann@example.com'")
    assert lines[lines.index(nearest[0]) + 1] == "      also: priority is 0, not 2"
    assert "  ... and 11 more, none nearer a match" in lines


def test_count_and_refute_messages(conn: jqc.Connection) -> None:
    q = conn.queue("mail")
    q.add("welcome", 1)
    q.add("welcome", 2)
    with pytest.raises(AssertionError, match=r"expected 1 job matching name='welcome' in queue 'mail', found 2"):
        assert_enqueued(q, name="welcome", count=1)
    assert_enqueued(q, name="nudge", count=0)
    with pytest.raises(AssertionError) as info:
        refute_enqueued(q, data=2)
    assert "expected no job matching data=2 in queue 'mail', found 1" in str(info.value)
    assert "  - 'welcome' id=2 data=2 delay=0s priority=0 (waiting)  <- matches" in str(info.value)


def test_where_a_job_is_when_it_is_not_enqueued(conn: jqc.Connection) -> None:
    q = conn.queue("work")
    q.add("job", None, job_id="done-1")
    q.add("other", None, delay=60)
    drain(q, lambda ctx: "ok", advance_time=False)
    q.pause()
    with pytest.raises(AssertionError) as info:
        assert_enqueued(q, job_id="done-1", attempts_made=0)
    message = str(info.value)
    assert "  - 'other' id=1 data=None delay=60s priority=0 attempts_made=0 (delayed)  <- id is '1'" in message
    assert "  not shown: 1 completed" in message
    assert "  job 'done-1' is completed in 'work' (not searched: state= says where to look)" in message
    assert "  (the queue is paused)" in message


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({"id": "1"}, r"unknown criteria: id= \(did you mean job_id\?\)"),
        ({"attempt": 2}, r"did you mean attempts_made"),
        ({"nmae": "x"}, r"unknown criteria: nmae=; known: job_id, name, data"),
        ({"job_id": 7}, "job_id must be a str or a jqc.Job"),
        ({"state": "dead"}, "in state 'failed'"),
        ({"state": "running"}, "unknown job state 'running'"),
        ({"state": []}, "names no state"),
        ({"delay": -1}, "delay is the seconds until a job can run, >= 0"),
        ({"delay": "soon"}, "delay must be a number of seconds or a timedelta"),
        ({"due_at": datetime(2026, 1, 1)}, "needs an aware datetime"),
        ({"priority": "high"}, "priority must be an int"),
        ({"attempts_made": [1]}, "attempts_made must be an int"),
        ({"backoff": "exponential"}, "backoff must be a jqc.Backoff"),
        ({"meta": "acme"}, "meta must be a mapping"),
        ({"where": True}, "where must be a callable"),
        ({"tolerance": -0.5}, "tolerance must be a number of seconds >= 0"),
        ({"count": -1}, "count must be an int >= 0"),
    ],
)
def test_bad_criteria_are_typed_errors(conn: jqc.Connection, criteria: dict[str, object], message: str) -> None:
    q = conn.queue("work")
    with pytest.raises(jqc.InvalidOptionError, match=message):
        assert_enqueued(q, **criteria)  # type: ignore[arg-type]


def test_bad_targets_are_typed_errors() -> None:
    for target in ("mail", None, [], ["mail"]):
        with pytest.raises(jqc.InvalidOptionError, match=r"expected a jqc\.Queue, a jqc\.AsyncQueue, a list of them"):
            all_enqueued(target)  # type: ignore[arg-type]
    with pytest.raises(jqc.InvalidOptionError, match=r"pass state= .* not both"):
        enqueued_jobs([], state="waiting", states="waiting")  # type: ignore[arg-type]
