"""A real Redis restart in the middle of a run: a ``jqc worker`` process works on a private
redis-server that persists every write (append-only file, fsync always); the server is killed
mid-run and started again on the same port. The worker logs the outage, reconnects with backoff,
and finishes every job, the ones added before the restart and the ones added after it, each once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import jqc
from tests.worker.processes import RedisServer, WorkerProcess, free_port, need_redis_server

pytestmark = pytest.mark.redis_only

BEFORE, AFTER = 1_500, 500  # jobs added before and after the restart
DOWN_FOR = 1.5  # seconds Redis stays down
QUEUE = "restart"


def _wait(condition: Callable[[], bool], within: float, what: str, log: WorkerProcess) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within} s\n{log.output()[-3000:]}"
        time.sleep(0.05)


def test_worker_resumes_after_redis_restarts_mid_run(tmp_path: Path) -> None:
    server = RedisServer(need_redis_server(), tmp_path, free_port())
    server.start()
    worker: WorkerProcess | None = None
    conn = jqc.connect(server.url, socket_connect_timeout=1)
    try:
        q = conn.queue(QUEUE)
        ids = {job.id for job in q.add_bulk([jqc.NewJob("work", {"i": i, "ms": 5}) for i in range(BEFORE)])}
        args = ["tests.worker.chaos_handlers:steady", "--queue", QUEUE, "--concurrency", "4"]
        args += ["--url", server.url, "--lock", "10", "--grace", "5"]
        worker = WorkerProcess(args, tmp_path / "worker.log", dict(os.environ))
        _wait(lambda: q.counts().completed >= 200, 30, "the worker did not get going", worker)

        server.kill()  # mid-run: jobs are waiting, active and being completed
        conn.close()
        time.sleep(DOWN_FOR)
        assert worker.proc.poll() is None, "the worker exited while Redis was down"
        server.start()
        restarted = time.monotonic()

        conn = jqc.connect(server.url, socket_connect_timeout=1)
        q = conn.queue(QUEUE)
        counts = q.counts()
        assert counts.total == BEFORE, counts  # the append-only file kept every job
        assert 0 < counts.completed < BEFORE, counts  # the restart came mid-run
        ids |= {job.id for job in q.add_bulk([jqc.NewJob("work", {"i": i, "ms": 1}) for i in range(AFTER)])}
        _wait(lambda: q.counts().completed == BEFORE + AFTER, 60, "not every job completed", worker)
        resumed_in = time.monotonic() - restarted
        assert worker.stop() == 0
        counts = q.counts()
        assert counts.waiting == counts.active == counts.delayed == counts.failed == 0, counts
        done = q.list_jobs("completed", 0, BEFORE + AFTER + 1).jobs
        assert {job.id for job in done} == ids
        # A claim (or a completion that claims the next job) whose reply the kill swallowed leaves
        # its jobs held by nobody until their lock runs out; the stall check then hands them out
        # again. That is the at-least-once path, bounded by the calls in flight at the kill (one
        # per lane slot, each fetching at most the lane's concurrency): no job fails, none is
        # taken back twice.
        taken_back = [job.id for job in done if job.stall_count]
        failed = [(job.id, job.failure_reason) for job in done if job.failed_attempts]
        assert not failed, f"attempts failed: {failed[:5]}\n{worker.output()[-3000:]}"
        assert all(job.stall_count <= 1 for job in done)
        assert len(taken_back) <= 2 * 4, f"taken back: {taken_back}\n{worker.output()[-3000:]}"
        assert q.metrics(60).completed == BEFORE + AFTER  # each completed once
        log = worker.output()
        assert "cannot reach Redis" in log and "retrying with backoff" in log
        assert "reconnected to Redis after" in log
        print(f"all {BEFORE + AFTER} jobs completed {resumed_in:.1f} s after Redis came back")
    finally:
        if worker is not None and worker.proc.poll() is None:
            worker.stop()
        conn.close()
        server.kill()
