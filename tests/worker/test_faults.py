"""Network faults between real ``jqc worker`` processes and a real Redis, through a fault-injecting
proxy (:mod:`tests.worker.faultproxy`): connection resets, a blackhole that later heals, and
half-open connections (held sockets silent for good while new connections work).

After each fault the worker resumes consuming on its own, jobs a cut-off worker held come back
through stall recovery, SIGTERM is honoured, and at the end nothing is lost and nothing completed
twice: every job is completed exactly once (the queue's own count of completions says so), by
the last run that started it. Deadlines are generous; times are printed, never asserted.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import jqc
from tests.conftest import REDIS_URL, open_backend
from tests.worker.faultproxy import FaultProxy
from tests.worker.processes import WorkerProcess

pytestmark = pytest.mark.redis_only

HANDLER = "tests.worker.chaos_handlers:handle"


class Scene:
    """A queue on the test Redis, a proxy in front of it, and worker processes on either side."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.conn = open_backend("redis")  # fails under CI when Redis does not answer; an empty db
        parts = urlsplit(REDIS_URL)
        self.db = int(parts.path.lstrip("/") or 0)
        self.proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379).start()
        self.tmp_path = tmp_path
        self.queue = self.conn.queue(name)
        self.starts_key = f"jqc-test:faults:{os.getpid()}:{name}:starts"
        self.client = self.conn.sync_client()
        self.client.delete(self.starts_key)
        self.workers: list[WorkerProcess] = []
        self.ids: set[str] = set()

    def add(self, n: int, ms: int) -> None:
        self.ids |= {job.id for job in self.queue.add_bulk([jqc.NewJob("work", {"ms": ms}) for _ in range(n)])}

    def worker(self, *args: str, through_proxy: bool = True) -> WorkerProcess:
        url = self.proxy.url(self.db) if through_proxy else REDIS_URL
        env = {**os.environ, "JQC_CHAOS_URL": REDIS_URL, "JQC_CHAOS_KEY": self.starts_key}
        log = self.tmp_path / f"worker-{len(self.workers) + 1}.log"
        proc = WorkerProcess([HANDLER, "--queue", self.queue.name, "--url", url, *args], log, env)
        self.workers.append(proc)
        return proc

    def starts(self) -> dict[str, list[tuple[int, int]]]:
        found: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for entry in self.client.lrange(self.starts_key, 0, -1):
            pid, job_id, token = str(entry).split()
            found[job_id].append((int(pid), int(token)))
        return found

    def wait(self, condition: Callable[[], bool], within: float, what: str) -> float:
        """Wait for ``condition()``; returns the seconds it took (printed by the tests, never asserted)."""
        t0 = time.monotonic()
        while not condition():
            assert time.monotonic() - t0 < within, f"{what} within {within} s\n{self.tails()}"
            time.sleep(0.05)
        return time.monotonic() - t0

    def completed(self) -> int:
        return self.queue.counts().completed

    def tails(self, lines: int = 25) -> str:
        return "\n".join(f"--- {w.log.name} ---\n" + "\n".join(w.output().splitlines()[-lines:]) for w in self.workers)

    def stop(self, worker: WorkerProcess, within: float = 60.0) -> None:
        """SIGTERM: the worker must exit 0 within ``within`` seconds."""
        worker.terminate()
        code = worker.wait(within)
        assert code == 0, f"{worker.log.name} exited {code} after SIGTERM\n{self.tails()}"

    def check_every_job_completed_once(self) -> None:
        counts = self.queue.counts()
        total = len(self.ids)
        assert counts.completed == total and counts.waiting == counts.active == counts.delayed == counts.failed == 0
        assert self.queue.metrics(60).completed == total  # the engine counted exactly one completion per job
        done = self.queue.list_jobs("completed", 0, total + 1).jobs
        assert {job.id for job in done} == self.ids
        starts = self.starts()
        for job in done:
            runs = starts[job.id]
            assert runs, f"job {job.id} completed without a recorded run"
            # The completion came from the last run that started: no stale run's result got in.
            assert job.result == {"pid": runs[-1][0], "token": runs[-1][1]}, (job.id, job.result, runs)

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.proxy.stop()
        self.queue.obliterate(force=True)
        self.client.delete(self.starts_key)
        self.conn.close()


@pytest.fixture
def scene(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Scene]:
    made = Scene(tmp_path, request.node.name.split("[")[0].removeprefix("test_")[:40])
    yield made
    made.close()


def test_half_open_connections_heal_with_the_cli_defaults(scene: Scene) -> None:
    # Nothing but the queue and the URL: the defaults must heal a silent network on their own.
    scene.add(60, ms=100)
    worker = scene.worker("--concurrency", "4")
    scene.wait(lambda: scene.completed() >= 8, 60, "the worker did not get going")
    silenced = scene.proxy.half_open()
    healed = scene.wait(lambda: scene.completed() == 60, 120, "the worker did not heal from half-open connections")
    print(f"half-open ({silenced} connections silenced): every job completed {healed:.1f} s later")
    scene.stop(worker)
    scene.check_every_job_completed_once()
    log = worker.output()
    assert "CallTimeoutError" in log and "retrying with backoff" in log  # it said what happened
    assert log.count(" stopped: ") == 1


def test_sigterm_is_honoured_while_connections_are_half_open(scene: Scene) -> None:
    scene.add(8, ms=3000)
    worker = scene.worker("--concurrency", "4", "--lock", "4", "--grace", "1")
    scene.wait(lambda: scene.queue.counts().active == 4, 60, "the worker did not start its jobs")
    scene.proxy.half_open()
    t0 = time.monotonic()
    scene.stop(worker, within=90)
    print(f"SIGTERM with half-open connections: exited 0 after {time.monotonic() - t0:.1f} s (grace 1 s)")
    # Whatever it could not hand back comes back through stall recovery: a healthy worker finishes all.
    rescuer = scene.worker("--concurrency", "8", "--lock", "4", through_proxy=False)
    scene.wait(lambda: scene.completed() == 8, 120, "the jobs did not all complete after the shutdown")
    scene.stop(rescuer)
    scene.check_every_job_completed_once()


def test_connection_resets_lose_nothing(scene: Scene) -> None:
    rng = random.Random(20)
    scene.add(400, ms=20)
    worker = scene.worker("--concurrency", "8", "--lock", "5")
    scene.wait(lambda: scene.completed() >= 20, 60, "the worker did not get going")
    resets = 0
    deadline = time.monotonic() + 60
    while resets < 12 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.15, 0.4))
        resets += 1 if scene.proxy.reset() else 0
    assert resets >= 12, "too few connections to reset"
    took = scene.wait(lambda: scene.completed() == 400, 120, "not every job completed after the resets")
    print(f"{resets} resets; every job completed {took:.1f} s after the last")
    scene.stop(worker)
    scene.check_every_job_completed_once()
    assert "ConnectionLostError" in worker.output()


def test_a_blackholed_workers_jobs_are_recovered_and_it_resumes_once_healed(scene: Scene) -> None:
    lock = 3.0  # so stall checks run every 1.5 s: a cut-off worker's jobs are back within about 4.5 s
    scene.add(60, ms=300)
    cut_off = scene.worker("--concurrency", "3", "--lock", str(lock))
    scene.wait(lambda: len(scene.starts()) >= 3, 60, "the first worker did not start jobs")
    healthy = scene.worker("--concurrency", "3", "--lock", str(lock), through_proxy=False)
    scene.wait(lambda: " started on " in healthy.output(), 60, "the second worker did not start")
    scene.proxy.blackhole()
    active = {job.id for job in scene.queue.list_jobs("active", 0, 100).jobs}
    held_by_cut_off = {
        job_id for job_id, runs in scene.starts().items() if job_id in active and runs[-1][0] == cut_off.pid
    }
    assert held_by_cut_off, "the cut-off worker held no job when the network went"
    took = scene.wait(lambda: scene.completed() == 60, 120, "the healthy worker did not finish everything")
    print(f"blackhole: {len(held_by_cut_off)} jobs held by the cut-off worker; all 60 completed after {took:.1f} s")
    for job_id in held_by_cut_off:
        stored = scene.queue.get_job(job_id)
        assert stored is not None and stored.stall_count >= 1, (job_id, stored)  # taken back by stall recovery
        assert stored.result["pid"] == healthy.pid
    scene.stop(healthy)
    before = set(scene.ids)
    scene.proxy.heal()  # the cut-off worker's held commands now reach Redis, late: fencing rejects them
    scene.add(20, ms=10)
    resumed = scene.wait(lambda: scene.completed() == 80, 120, "the healed worker did not resume consuming")
    print(f"healed: the cut-off worker completed the 20 new jobs within {resumed:.1f} s")
    scene.stop(cut_off)
    scene.check_every_job_completed_once()
    for job_id in scene.ids - before:  # the healthy worker was gone: the healed one did them all
        stored = scene.queue.get_job(job_id)
        assert stored is not None and stored.result["pid"] == cut_off.pid
