"""The job observer hook (what jqc.testing records runs and injects faults with)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import jqc
from jqc.worker.execute import Outcome


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[tuple[Any, ...]] = []
        self.fail = fail

    async def started(self, worker: jqc.Worker, ctx: jqc.JobContext | jqc.SyncJobContext) -> None:
        self.seen.append(("started", ctx.name, ctx.attempt, worker.id == ctx.worker))
        if self.fail:
            raise RuntimeError("observer broke")

    async def finished(self, worker: jqc.Worker, ctx: jqc.JobContext | jqc.SyncJobContext, outcome: Outcome) -> None:
        self.seen.append(("finished", ctx.name, outcome.kind.value, outcome.result, outcome.reason))


async def test_the_observer_sees_each_run_start_and_end(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    q.add("thumb", 1)
    q.add("broken", 2, attempts=2)
    q.add("unknown", 3)

    async def thumb(ctx: jqc.JobContext) -> int:
        return int(ctx.data) * 10

    def broken(ctx: jqc.SyncJobContext) -> None:
        raise ValueError("bad pixels")

    recorder = Recorder()
    worker = jqc.Worker(q, {"thumb": thumb, "broken": broken}, concurrency=1, observer=recorder)
    stats = await worker.run_until_empty(delayed=True)

    assert stats.completed == 1 and stats.retried == 1 and stats.failed == 2
    assert recorder.seen == [
        ("started", "thumb", 1, True),
        ("finished", "thumb", "done", 10, ""),
        ("started", "broken", 1, True),
        ("finished", "broken", "error", None, "ValueError: bad pixels"),
        ("started", "unknown", 1, True),
        ("finished", "unknown", "fail", None, f"no handler for job name 'unknown' on worker {worker.name}"),
        ("started", "broken", 2, True),
        ("finished", "broken", "error", None, "ValueError: bad pixels"),
    ]


async def test_a_failing_observer_is_logged_and_the_job_still_runs(
    conn: jqc.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="jqc.worker")
    q = conn.queue("photos")
    job = q.add("thumb", 1)

    async def thumb(ctx: jqc.JobContext) -> str:
        return "ok"

    stats = await jqc.Worker(q, thumb, observer=Recorder(fail=True)).run_until_empty()
    stored = q.get_job(job.id)
    assert stats.completed == 1 and stored and stored.result == "ok"
    assert any("the job observer failed" in r.getMessage() for r in caplog.records)
