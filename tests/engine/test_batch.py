"""One batch semantics on every backend: every call runs on its own, in order; a failing call never
stops the others; the executor raises BatchError with every call's result or error."""

from __future__ import annotations

import asyncio

import pytest

import jqc
from jqc.engine.calls import Batch, Op, ScriptCall, run_async, run_sync
from jqc.engine.operations import QueueOperations
from jqc.engine.replies import as_int


def _counts(ops: QueueOperations) -> ScriptCall[int]:
    call = ops.counts()
    return ScriptCall(call.script, call.keys, call.args, lambda r: as_int(r[1]) if isinstance(r, list) else -1)


def _three_adds_middle_broken(queue: jqc.Queue) -> Op[list[object]]:
    """A batch of three add calls whose middle one carries arguments add.lua cannot read."""
    first, last = queue.ops.add("first", 1, jqc.JobOptions()), queue.ops.add("last", 3, jqc.JobOptions())
    broken = ScriptCall("add", first.keys, (first.args[0], first.args[1], "not-a-number"), lambda r: r)
    results: list[object] = yield Batch((first, broken, last))
    return results


def test_a_failing_middle_call_does_not_stop_the_others(queue: jqc.Queue, conn: jqc.Connection) -> None:
    with pytest.raises(jqc.BatchError) as info:
        run_sync(conn.backend, _three_adds_middle_broken(queue))
    error = info.value
    assert sorted(error.errors) == [1]
    assert isinstance(error.first, jqc.ScriptReplyError)
    assert not error.retryable
    first, middle, last = error.results
    assert middle is None
    assert isinstance(first, jqc.Job) and isinstance(last, jqc.Job)
    # Both calls around the broken one ran: the jobs exist, in order.
    assert [j.name for j in queue.list_jobs("waiting").jobs] == ["first", "last"]
    assert "1 of 3 calls" in str(error)


def test_the_async_executor_has_the_same_batch_semantics(queue: jqc.Queue, conn: jqc.Connection) -> None:
    async def main() -> jqc.BatchError:
        try:
            await run_async(conn.async_backend(), _three_adds_middle_broken(queue))
        except jqc.BatchError as exc:
            return exc
        finally:
            await conn.aclose()
        raise AssertionError("the batch did not fail")

    error = asyncio.run(main())
    assert sorted(error.errors) == [1]
    assert [j.name for j in queue.list_jobs("waiting").jobs] == ["first", "last"]


def test_a_batch_of_good_calls_answers_in_order(queue: jqc.Queue, conn: jqc.Connection) -> None:
    queue.add("x")

    def op() -> Op[list[int]]:
        results: list[int] = yield Batch((_counts(queue.ops), _counts(queue.ops), _counts(queue.ops)))
        return results

    assert run_sync(conn.backend, op()) == [1, 1, 1]


def test_backend_batch_outcomes_are_replies_or_typed_errors(queue: jqc.Queue, conn: jqc.Connection) -> None:
    good = queue.ops.counts().invocation()
    broken = ScriptCall("add", good.keys, (0, 0, "not-a-number"), lambda r: r).invocation()
    outcomes = conn.backend.run_batch([good, broken, good])
    assert isinstance(outcomes[0], list) and isinstance(outcomes[2], list)
    assert isinstance(outcomes[1], jqc.ScriptReplyError)


def test_bulk_adds_in_several_chunks_report_partial_success(queue: jqc.Queue, conn: jqc.Connection) -> None:
    """add_bulk's chunks form a batch: a chunk that fails (here on a key of the wrong type where a
    sorted set of prioritised jobs should be, which only the second chunk's job 600 needs) leaves the
    other chunks applied, and the error says which were."""
    conn.sync_client().set(queue.ops.keys.key("prio"), "not a sorted set")
    jobs = [jqc.NewJob("x", i, jqc.JobOptions(priority=5 if i == 600 else 0)) for i in range(1200)]
    with pytest.raises(jqc.BatchError) as info:
        queue.add_bulk(jobs)  # chunks of 500: the second one holds the clash
    error = info.value
    assert sorted(error.errors) == [1]
    first, _, last = error.results
    assert isinstance(first, list) and isinstance(last, list)
    assert [j.data for j in first] == list(range(500)) and [j.data for j in last] == list(range(1000, 1200))
    assert conn.sync_client().llen(queue.ops.keys.key("wait")) == 700  # (counts would meet the clash too)
