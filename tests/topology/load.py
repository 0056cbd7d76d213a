"""Load for the topology tests: producer threads that add jobs with ids of their own and remember
which adds were acknowledged (and when), worker threads (:class:`jqc.Worker`, as ``jqc worker``
runs it) that count every execution, and the check of a queue's final state.

The final-state check is the simulator's ``total_queue`` and ``failover`` invariants, read through
the public API: every stored job is listed in exactly one state, and its own state agrees with it;
every acknowledged add that was not lost with a failover is stored; nothing appears that no
producer tried to add.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jqc

STATES = ("waiting", "delayed", "active", "completed", "failed")


def until(condition: Callable[[], bool], what: str, within: float = 60.0, every: float = 0.1) -> None:
    """Wait (real time) until ``condition()`` holds; AssertionError after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:g} s for {what}")
        time.sleep(every)


class Producer(threading.Thread):
    """Adds jobs ``<name>-0``, ``<name>-1`` ... to its queues in turn, one every ``pace`` seconds.

    An add that fails retryably (a failover, a resharding) or is not confirmed by a replica
    (:class:`jqc.NotReplicatedError`) is tried again with the same job id, which makes the retry
    harmless, until it is acknowledged: ``acked`` maps each acknowledged id to when it was.
    """

    def __init__(self, url: str, prefix: str, queues: list[str], name: str, *, pace: float = 0.004,
                 **options: Any) -> None:  # fmt: skip
        super().__init__(name=f"producer-{name}", daemon=True)
        self.conn = jqc.connect(url, prefix=prefix, failover_timeout=30, **options)
        self.queues = [self.conn.queue(q) for q in queues]
        self.label, self.pace = name, pace
        self.acked: dict[str, float] = {}
        self.tried: set[str] = set()
        self.unconfirmed: set[str] = set()  # NotReplicatedError at least once
        self.retried = 0
        self.failure: BaseException | None = None
        self.halt = threading.Event()

    def queue_of(self, job_id: str) -> str:
        return self.queues[int(job_id.rsplit("-", 1)[1]) % len(self.queues)].name

    def run(self) -> None:
        try:
            n = 0
            while not self.halt.is_set():
                job_id = f"{self.label}-{n}"
                queue = self.queues[n % len(self.queues)]
                self.tried.add(job_id)
                while not self.halt.is_set():
                    try:
                        queue.add("t", {"n": n}, job_id=job_id)
                    except jqc.NotReplicatedError:
                        self.unconfirmed.add(job_id)
                    except jqc.JqcError as exc:
                        if not exc.retryable:
                            raise
                    else:
                        self.acked[job_id] = time.monotonic()
                        break
                    self.retried += 1
                    time.sleep(0.05)
                n += 1
                time.sleep(self.pace)
        except BaseException as exc:  # (reported by stop)
            self.failure = exc
        finally:
            self.conn.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(60)
        assert not self.is_alive(), f"{self.name} did not stop"
        assert self.failure is None, f"{self.name} failed: {self.failure!r}"

    def count(self) -> int:
        return len(self.acked)


def stop(producers: Iterable[Producer]) -> None:
    """Stop every producer (all told first, then each awaited); raises what one of them failed with."""
    producers = list(producers)
    for producer in producers:
        producer.halt.set()
    for producer in producers:
        if producer.is_alive() or producer.ident is not None:
            producer.stop()


@dataclass
class Executions:
    """How often each job's handler ran, and on which worker, over every worker thread."""

    runs: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, job_id: str) -> None:
        with self.lock:
            self.runs[job_id] += 1

    def total(self) -> int:
        with self.lock:
            return sum(self.runs.values())

    def twice(self) -> dict[str, int]:
        with self.lock:
            return {job_id: n for job_id, n in self.runs.items() if n > 1}


class Consumer(threading.Thread):
    """One :class:`jqc.Worker` on ``queues``, on an event loop of its own, until :meth:`stop`."""

    def __init__(self, url: str, prefix: str, queues: list[str], executions: Executions, **options: Any) -> None:
        super().__init__(name=f"worker-{id(self)}", daemon=True)
        self.url, self.prefix, self.queue_names = url, prefix, queues
        self.executions = executions
        self.options = {"concurrency": 4, "lock": 5.0, "idle_block": 0.5, "reconnect_delay": (0.05, 0.5),
                        "heartbeat": 1.0, "summary_interval": None, "schedule_interval": None, **options}  # fmt: skip
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing: asyncio.Event | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.failure = exc
        finally:
            self.ready.set()

    async def _main(self) -> None:
        conn = jqc.connect(self.url, prefix=self.prefix, failover_timeout=30)
        self.loop, self.closing = asyncio.get_running_loop(), asyncio.Event()

        async def work(ctx: jqc.JobContext) -> None:
            self.executions.record(ctx.id)

        worker = jqc.Worker([conn.async_queue(q) for q in self.queue_names], work, **self.options)
        await worker.start()
        self.ready.set()
        try:
            await self.closing.wait()
        finally:
            await worker.close(grace=5)
            await conn.aclose()
            conn.close()

    def start_ready(self) -> Consumer:
        self.start()
        assert self.ready.wait(60), "the worker did not start"
        assert self.failure is None, f"the worker failed to start: {self.failure!r}"
        return self

    def stop(self) -> None:
        if self.loop is not None and self.closing is not None:
            self.loop.call_soon_threadsafe(self.closing.set)
        self.join(60)
        assert not self.is_alive(), "the worker did not stop"
        assert self.failure is None, f"the worker failed: {self.failure!r}"


def listed(queue: jqc.Queue) -> dict[str, set[str]]:
    """Every stored job of ``queue`` by the state listing it, each job's own state checked against
    the listing and the listings against ``counts()`` (the simulator's ``failover`` invariant: each
    job in one container its state agrees with)."""
    found: dict[str, set[str]] = {}
    for state in STATES:
        ids: set[str] = set()
        offset = 0
        while True:
            page = queue.list_jobs(state, offset=offset, limit=1000)
            assert not page.corrupt, f"corrupt jobs in {state}: {page.corrupt[:3]}"
            for job in page.jobs:
                assert str(job.state) == state, f"job {job.id} listed as {state} says {job.state}"
                ids.add(job.id)
            offset += 1000
            if offset >= page.total:
                break
        found[state] = ids
    seen: collections.Counter[str] = collections.Counter(i for ids in found.values() for i in ids)
    doubles = [job_id for job_id, n in seen.items() if n > 1]
    assert not doubles, f"jobs listed in two states: {doubles[:5]}"
    counts = queue.counts()
    assert {s: len(found[s]) for s in STATES} == {s: getattr(counts, s) for s in STATES}
    return found


@dataclass
class Accounting:
    """What became of every add: the ids stored, the acknowledged ids lost, the duplicates."""

    stored: set[str]
    lost: set[str]
    twice: dict[str, int]
    unknown: set[str]

    def __str__(self) -> str:
        return (f"{len(self.stored)} stored, {len(self.lost)} acknowledged adds lost "
                f"{sorted(self.lost)[:5]}, {len(self.twice)} run twice, {len(self.unknown)} unknown")  # fmt: skip


def account(queues: Iterable[jqc.Queue], producers: list[Producer], executions: Executions) -> Accounting:
    """Check each queue's final state (:func:`listed`: everything completed, nothing else) and
    compare it with what the producers were told and what the workers ran."""
    stored: set[str] = set()
    for queue in queues:
        states = listed(queue)
        pending = {state: sorted(ids)[:5] for state, ids in states.items() if ids and state != "completed"}
        assert not pending, f"{queue.name}: jobs not completed at the end: {pending}"
        stored |= states["completed"]
    acked = {job_id for p in producers for job_id in p.acked}
    tried = {job_id for p in producers for job_id in p.tried}
    ran = set(executions.runs)
    assert stored <= ran, f"completed without running: {sorted(stored - ran)[:5]}"
    return Accounting(stored, acked - stored, executions.twice(), stored - tried)
