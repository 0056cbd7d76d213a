"""Chaos on real Redis: several real ``jqc worker`` processes work through thousands of jobs while a
random one of them is SIGKILLed every few hundred milliseconds and replaced.

At the end every job is completed or dead-lettered (none lost, none left anywhere else), none was
completed twice (the queue's own count of completions equals the jobs in completed), the completing
run of each job is the last one that started, and every earlier run of a job, and every run of a
dead-lettered job, was made by a process that was killed: no job ran again for any other reason.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from pathlib import Path

import pytest

import jqc
from tests.conftest import REDIS_URL, open_backend
from tests.worker.processes import WorkerProcess

pytestmark = pytest.mark.redis_only

JOBS = 5_000
RUN_MS = (5, 10, 20, 40)  # how long a job's handler sleeps, chosen at random per job
WORKERS = 4
CONCURRENCY = 6  # so the jobs take a few seconds even on an idle machine: at most ~1,300 jobs/s
LOCK = 2.0  # seconds: renewed every 2/3 s; stall checks every 1 s; a killed worker's jobs are back within 3 s
KILL_EVERY = (0.25, 0.5)  # seconds between kills, uniform
MIN_KILLS = 12
CHAOS_FOR = 25.0  # kill about this long; killing stops earlier once no job is waiting and MIN_KILLS are done
CHAOS_DEADLINE = 300.0  # (on a loaded machine, workers take longer to start: MIN_KILLS may take longer)
SETTLE_WITHIN = 30.0  # then every job must be finished within this long
QUEUE = "chaos"


def _tail(workers: list[WorkerProcess], lines: int = 15) -> str:
    return "\n".join(f"--- {w.log.name} ---\n" + "\n".join(w.output().splitlines()[-lines:]) for w in workers)


def test_sigkilled_workers_lose_nothing_and_run_nothing_twice_without_cause(tmp_path: Path) -> None:
    conn = open_backend("redis")  # fails under CI when Redis does not answer; starts from an empty db
    rng = random.Random(20261127)
    q = conn.queue(QUEUE)
    starts_key = f"jqc-test:chaos:{os.getpid()}:starts"
    client = conn.sync_client()
    client.delete(starts_key)
    jobs = [jqc.NewJob("work", {"i": i, "ms": rng.choice(RUN_MS)}) for i in range(JOBS)]
    ids = {job.id for job in q.add_bulk(jobs)}
    assert len(ids) == JOBS

    env = {**os.environ, "JQC_CHAOS_URL": REDIS_URL, "JQC_CHAOS_KEY": starts_key}
    args = ["tests.worker.chaos_handlers:handle", "--queue", QUEUE, "--concurrency", str(CONCURRENCY)]
    args += ["--url", REDIS_URL, "--lock", str(LOCK), "--grace", "5"]
    spawned = 0

    def spawn() -> WorkerProcess:
        nonlocal spawned
        spawned += 1
        return WorkerProcess(args, tmp_path / f"worker-{spawned:03d}.log", env)

    workers = [spawn() for _ in range(WORKERS)]
    everyone = list(workers)
    killed: set[int] = set()
    t0 = time.monotonic()
    try:
        # Chaos: kill a random worker every few hundred ms and start another in its place.
        while time.monotonic() - t0 < CHAOS_FOR or len(killed) < MIN_KILLS:
            assert time.monotonic() - t0 < CHAOS_DEADLINE, f"only {len(killed)} workers got to start and be killed"
            time.sleep(rng.uniform(*KILL_EVERY))
            # Kill only workers that have started consuming (on a loaded machine imports alone can
            # take longer than the time between kills), when there are any.
            ready = [i for i, w in enumerate(workers) if " started on " in w.output()]
            if not ready:
                continue
            victim = rng.choice(ready)
            workers[victim].kill()
            killed.add(workers[victim].pid)
            workers[victim] = spawn()
            everyone.append(workers[victim])
            if len(killed) >= MIN_KILLS and q.counts().waiting == 0:
                break
        chaos_s = time.monotonic() - t0
        # Calm: the survivors recover what the dead held and finish everything.
        deadline = time.monotonic() + SETTLE_WITHIN
        while True:
            counts = q.counts()
            if counts.waiting == counts.active == counts.delayed == 0:
                break
            assert time.monotonic() < deadline, f"not finished {SETTLE_WITHIN} s after the chaos: {counts}\n" + _tail(
                workers
            )
            time.sleep(0.1)
        settled_s = time.monotonic() - t0
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.stop()

    counts = q.counts()
    metrics = q.metrics(60)
    starts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for entry in client.lrange(starts_key, 0, -1):
        pid, job_id, token = str(entry).split()
        starts[job_id].append((int(pid), int(token)))
    completed = q.list_jobs("completed", 0, JOBS + 1)
    failed = q.list_jobs("failed", 0, JOBS + 1)
    dead = {letter.job.id: letter for letter in q.find_dead(lambda d: True)}
    print(
        f"chaos {chaos_s:.1f} s, all finished at {settled_s:.1f} s; {len(killed)} workers killed, {spawned} started; "
        f"{counts.completed} completed, {counts.failed} dead-lettered; "
        f"{sum(len(s) for s in starts.values()) - len(starts)} re-executions"
    )

    # Every job completed or dead-lettered, none lost, none anywhere else.
    assert len(killed) >= MIN_KILLS
    assert counts.waiting == counts.delayed == counts.active == 0
    assert counts.completed + counts.failed == JOBS and counts.dead == counts.failed
    assert {j.id for j in completed.jobs} | {j.id for j in failed.jobs} == ids
    assert set(dead) == {j.id for j in failed.jobs}
    # None completed twice: the engine counted exactly one completion per completed job.
    assert metrics.completed == counts.completed and metrics.failed == counts.failed

    untraced: list[str] = []
    for job in completed.jobs:
        runs = starts[job.id]
        assert runs, f"job {job.id} completed without a recorded run"
        # The completing run is the last one that started; every earlier run died with its worker.
        assert job.result == {"pid": runs[-1][0], "token": runs[-1][1]}, (job.id, job.result, runs)
        untraced += [f"{job.id}: run {pid}/{token}" for pid, token in runs[:-1] if pid not in killed]
    for job in failed.jobs:
        # Dead-lettered only for stalling too often: each of its runs died with its worker.
        assert job.stall_count > 0 and "stall" in (job.failure_reason or ""), (job.id, job.failure_reason)
        untraced += [f"{job.id}: run {pid}/{token}" for pid, token in starts[job.id] if pid not in killed]
    assert not untraced, "re-executions not caused by a kill:\n" + "\n".join(untraced[:20]) + "\n" + _tail(everyone)
    assert sum(len(s) for s in starts.values()) > len(starts)  # the kills did cause re-executions

    q.obliterate(force=True)
    client.delete(starts_key)
    conn.close()
