"""SIGTERM and SIGINT with real processes, under ``await worker.serve()`` in an application's own
event loop and under the blocking ``worker.run()`` (what ``jqc worker`` uses): the first signal
stops claiming, lets the running job finish within the grace period, unregisters and exits 0; a
second one hands the unfinished job back at once (waiting, no attempt counted) and exits 0."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import jqc
from tests.conftest import REDIS_URL, open_backend
from tests.worker.processes import WorkerProcess

pytestmark = pytest.mark.redis_only

MODES = ["serve", "run"]


@pytest.fixture
def conn() -> Iterator[jqc.Connection]:
    connection = open_backend("redis")  # fails under CI when Redis does not answer; an empty db
    yield connection
    connection.sync_client().flushdb()
    connection.close()


def _app(mode: str, queue: str, log: Path, grace: float) -> WorkerProcess:
    env = {**os.environ, "JQC_GRACE": str(grace)}
    return WorkerProcess([mode, REDIS_URL, queue], log, env, program=("-m", "tests.worker.signal_app"))


def _wait(condition: Callable[[], bool], within: float, what: str, proc: WorkerProcess) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within} s\n{proc.output()[-3000:]}"
        time.sleep(0.02)


@pytest.mark.parametrize("mode", MODES)
def test_a_first_sigterm_lets_the_running_job_finish_and_exits_cleanly(
    mode: str, conn: jqc.Connection, tmp_path: Path
) -> None:
    q = conn.queue(f"signals-{mode}")
    job = q.add("slow", {"ms": 3000})
    app = _app(mode, q.name, tmp_path / "app.log", grace=60)
    try:
        _wait(lambda: q.counts().active == 1, 60, "the job did not start", app)
        assert len(q.workers()) == 1
        app.signal(signal.SIGTERM)
        _wait(lambda: "SIGTERM received" in app.output(), 30, "the signal was not seen", app)
        q.add("slow", {"ms": 0}, job_id="after-the-signal")  # while the first job still runs
        code = app.wait(60)
    finally:
        app.kill()
    log = app.output()
    assert code == 0, log
    assert "SIGTERM received, finishing in-flight jobs" in log and "exited cleanly" in log
    stored = q.get_job(job.id)
    assert stored is not None and stored.state == jqc.JobState.COMPLETED  # it finished within the grace
    pending = q.get_job("after-the-signal")
    assert pending is not None and pending.state == jqc.JobState.WAITING  # claiming had stopped
    assert q.counts().active == 0 and q.workers() == []  # nothing left active, unregistered
    assert log.count(" stopped: ") == 1


@pytest.mark.parametrize(("mode", "second"), [("serve", signal.SIGTERM), ("run", signal.SIGINT)])
def test_a_second_signal_hands_the_job_back_at_once_and_exits_cleanly(
    mode: str, second: signal.Signals, conn: jqc.Connection, tmp_path: Path
) -> None:
    q = conn.queue(f"hurry-{mode}")
    job = q.add("slow", {"ms": 600_000})
    app = _app(mode, q.name, tmp_path / "app.log", grace=600)
    try:
        _wait(lambda: q.counts().active == 1, 60, "the job did not start", app)
        app.signal(signal.SIGTERM)
        _wait(lambda: "SIGTERM received" in app.output(), 30, "the first signal was not seen", app)
        app.signal(second)
        code = app.wait(60)  # (the grace was ten minutes)
    finally:
        app.kill()
    log = app.output()
    assert code == 0, log
    assert f"{second.name} received again, handing unfinished jobs back now" in log
    stored = q.get_job(job.id)
    assert stored is not None and stored.state == jqc.JobState.WAITING and stored.attempts_made == 0
    assert q.counts().active == 0 and q.workers() == []
