"""WorkerOptions: the tunables in one validated value, given to a worker as keywords or whole; and
the worker's state through its one run."""

from __future__ import annotations

import dataclasses

import pytest

import jqc
from jqc.worker import WorkerOptions, WorkerState


def test_defaults_and_derived_values() -> None:
    options = WorkerOptions()
    assert (options.concurrency, options.lock, options.grace, options.max_stalls) == (10, 30.0, 30.0, 1)
    assert options.effective_renew_interval == 10.0  # lock / 3
    assert options.effective_stall_interval == 15.0  # lock / 2
    assert options.heartbeat_ttl == 15.0  # three beats
    assert options.lane_batch(4) == 4  # a claim asks for as many as the lane has slots
    short = WorkerOptions(lock=6, renew_interval=0, batch=3)
    assert short.renew_interval is None and short.effective_renew_interval == 2.0
    assert (short.lane_batch(8), short.lane_batch(2)) == (3, 2)  # never more than the slots
    assert WorkerOptions(lock=6, stall_interval=1).effective_stall_interval == 1.0
    assert isinstance(WorkerOptions(lock=6).lock, float) and WorkerOptions(lock=6) == WorkerOptions(lock=6.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"concurrency": 0},
        {"concurrency": True},
        {"lock": 0},
        {"lock": "30"},
        {"lock": 3, "renew_interval": 3},
        {"stall_interval": -1},
        {"timeout": -1},
        {"grace": -1},
        {"max_stalls": -1},
        {"batch": 0},
        {"heartbeat": 0},
        {"idle_block": 0},
        {"reconnect_delay": (1.0, 0.5)},
        {"name": 5},
    ],
)
def test_bad_options_raise_a_typed_error(bad: dict[str, object]) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        WorkerOptions(**bad)  # type: ignore[arg-type]


def test_options_are_frozen_and_replace_derives_again() -> None:
    options = WorkerOptions(lock=30)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.lock = 5  # type: ignore[misc]
    shorter = dataclasses.replace(options, lock=3)
    assert shorter.effective_renew_interval == 1.0


def test_a_worker_takes_its_options_as_keywords_or_whole(conn: jqc.Connection) -> None:
    q = conn.queue("photos")

    def h(ctx: jqc.SyncJobContext) -> None:
        return None

    by_keywords = jqc.Worker(q, h, concurrency=3, lock=12, timeout=5, name="w")
    assert by_keywords.options == WorkerOptions(concurrency=3, lock=12, timeout=5, name="w")
    assert (by_keywords.lock, by_keywords.renew_interval, by_keywords.stall_interval) == (12.0, 4.0, 6.0)
    assert by_keywords.lanes[0].concurrency == 3 and by_keywords.name == "w"

    whole = jqc.Worker(q, h, options=WorkerOptions(concurrency=2, max_stalls=0))
    assert whole.lanes[0].concurrency == 2 and whole.max_stalls == 0
    with pytest.raises(jqc.InvalidOptionError, match="not both"):
        jqc.Worker(q, h, lock=12, options=WorkerOptions())
    with pytest.raises(jqc.InvalidOptionError):
        jqc.Worker(q, h, options={"lock": 12})  # type: ignore[arg-type]


async def test_the_state_moves_through_one_run(conn: jqc.Connection) -> None:
    q = conn.queue("photos")

    async def h(ctx: jqc.JobContext) -> None:
        return None

    worker = jqc.Worker(q, h)
    seen = [worker.state]
    assert not worker.running and "new" in repr(worker)
    await worker.start()
    seen.append(worker.state)
    assert worker.running
    with pytest.raises(RuntimeError, match="runs once; this one is running"):
        await worker.start()
    await worker.close()
    seen.append(worker.state)
    assert seen == [WorkerState.NEW, WorkerState.RUNNING, WorkerState.CLOSED] and "closed" in repr(worker)
    with pytest.raises(RuntimeError, match="runs once; this one is closed"):
        await worker.start()

    never = jqc.Worker(q, h)
    await never.close()
    assert never.state is WorkerState.CLOSED
