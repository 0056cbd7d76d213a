"""How long a ``jqc worker`` with the CLI defaults takes to heal from each network fault (a script,
not a test: the tests check outcomes, this measures times).

    python -m tests.worker.heal_times [--url redis://127.0.0.1:6379/9] [--runs 3]

For each fault, a worker (defaults but ``--concurrency 4``) works through a steady stream of 50 ms
jobs behind the fault-injecting proxy of :mod:`tests.worker.faultproxy`; the script injects the
fault and reports how long completions stopped (from the fault, or from the heal for a blackhole,
until the worker has completed four more jobs). Then: how long SIGTERM takes with every connection
half-open or blackholed (``--grace 5``), and how long the jobs of a blackholed worker take to be
completed by a healthy one (recovery by lock expiry, lock 30 s, stall checks every 15 s). The
database given is flushed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import jqc
from tests.worker.faultproxy import FaultProxy
from tests.worker.processes import WorkerProcess

HANDLER = "tests.worker.chaos_handlers:steady"
QUEUE = "heal-times"


def _wait(condition: Callable[[], bool], within: float, what: str) -> float:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > within:
            raise RuntimeError(f"{what} within {within} s")
        time.sleep(0.02)
    return time.monotonic() - t0


class Bench:
    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        parts = urlsplit(url)
        self.db = int(parts.path.lstrip("/") or 0)
        self.conn = jqc.connect(url)
        self.queue = self.conn.queue(QUEUE)
        self.proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379).start()
        self.workdir = workdir
        self.spawned = 0

    def fresh(self, jobs: int, ms: int) -> None:
        self.conn.sync_client().flushdb()
        self.queue.add_bulk([jqc.NewJob("work", {"ms": ms}) for _ in range(jobs)])

    def worker(self, *args: str, direct: bool = False) -> WorkerProcess:
        self.spawned += 1
        url = self.url if direct else self.proxy.url(self.db)
        argv = [HANDLER, "--queue", QUEUE, "--url", url, "--concurrency", "4", *args]
        return WorkerProcess(argv, self.workdir / f"worker-{self.spawned}.log", dict(os.environ))

    def completed(self) -> int:
        return self.queue.counts().completed

    def stall_after(self, fault: Callable[[], object], *, heal_after: float | None = None) -> float:
        """Seconds completions stopped after ``fault()`` (after the heal when ``heal_after`` is given)."""
        self.fresh(100_000, ms=50)
        worker = self.worker()
        try:
            _wait(lambda: self.completed() >= 20, 60, "the worker did not get going")
            fault()
            if heal_after is not None:
                time.sleep(heal_after)
                self.proxy.heal()
            start, seen = time.monotonic(), self.completed()
            _wait(lambda: self.completed() >= seen + 4 + 4, 300, "the worker did not resume")  # + in flight
            return time.monotonic() - start
        finally:
            self.proxy.heal()
            worker.kill()

    def sigterm_during(self, fault: Callable[[], object]) -> float:
        self.fresh(40, ms=3000)
        worker = self.worker("--grace", "5")
        try:
            _wait(lambda: self.queue.counts().active == 4, 60, "the jobs did not start")
            fault()
            t0 = time.monotonic()
            worker.terminate()
            if worker.wait(300) != 0:
                raise RuntimeError(f"exit status after SIGTERM: {worker.proc.returncode}")
            return time.monotonic() - t0
        finally:
            self.proxy.heal()
            worker.kill()

    def recovery_of_a_blackholed_workers_jobs(self) -> float:
        self.fresh(16, ms=120_000)  # long jobs: the only way back for the cut-off worker's is stall recovery
        cut_off = self.worker()
        try:
            _wait(lambda: self.queue.counts().active == 4, 60, "the cut-off worker did not start")
            held = {job.id for job in self.queue.list_jobs("active", 0, 10).jobs}
            self.proxy.blackhole()
            t0 = time.monotonic()
            healthy = self.worker("--concurrency", "16", direct=True)
            try:

                def back() -> bool:
                    jobs = [self.queue.get_job(job_id) for job_id in held]
                    return all(job is not None and job.stall_count >= 1 for job in jobs)

                _wait(back, 300, "the cut-off worker's jobs were not taken back")
                return time.monotonic() - t0
            finally:
                healthy.kill()
        finally:
            self.proxy.heal()
            cut_off.kill()

    def close(self) -> None:
        self.conn.sync_client().flushdb()
        self.proxy.stop()
        self.conn.close()


def _row(name: str, times: list[float]) -> str:
    shown = ", ".join(f"{t:.1f}" for t in times)
    return f"{name:<58} median {statistics.median(times):5.1f} s  ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("JQC_TEST_REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        bench = Bench(args.url, Path(workdir))
        try:
            runs = range(args.runs)
            rows = [
                _row("half-open: completions stopped for", [bench.stall_after(bench.proxy.half_open) for _ in runs]),
                _row("reset: completions stopped for", [bench.stall_after(bench.proxy.reset) for _ in runs]),
                _row(
                    "blackhole 5 s, then healed: stopped after the heal for",
                    [bench.stall_after(bench.proxy.blackhole, heal_after=5) for _ in runs],
                ),
                _row(
                    "blackhole 30 s, then healed: stopped after the heal for",
                    [bench.stall_after(bench.proxy.blackhole, heal_after=30) for _ in runs],
                ),
                _row("SIGTERM (grace 5 s), connections half-open: exit after", [
                    bench.sigterm_during(bench.proxy.half_open) for _ in runs
                ]),
                _row("SIGTERM (grace 5 s), network blackholed: exit after", [
                    bench.sigterm_during(bench.proxy.blackhole) for _ in runs
                ]),
                _row("blackholed worker: its jobs taken back by another after", [
                    bench.recovery_of_a_blackholed_workers_jobs() for _ in runs
                ]),
            ]  # fmt: skip
        finally:
            bench.close()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
