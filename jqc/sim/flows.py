"""A flow workload for the simulator: random trees of jobs over several queues, run by simulated
workers that crash between any two calls, with the repair as the only way back.

Each virtual second the producer may add a flow (a random tree, random failure policies), cut
short after a random call when it crashes; each worker claims a job of a random queue and
completes or fails it, also cut short after a random call when it crashes (a cut before the
completion leaves the job to stall and be recovered); the stall check runs every second and the
flow repair every minute. Then the faults stop and the run drains. Everything runs on the
engine's sans-IO calls over one backend, on a virtual clock, from one seed, so a seed replays.

Invariants, read from the engine:

* ``parent_early``: a job whose children are not all done is never claimed, waiting or completed;
* ``stuck_parent``: at the end no parent waits in waiting-children with every child done;
* ``orphan``: at the end every child of a parent still waiting exists and is unfinished;
* ``unfinished``: at the end every job of every flow has finished (completed or failed).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from jqc.clock import VirtualClock
from jqc.connection import Connection, connect
from jqc.engine.calls import run_sync
from jqc.engine.flow_records import ChildPolicy
from jqc.engine.flows import Flow
from jqc.engine.job import Job, JobOptions
from jqc.engine.ops_flows import REPAIR_GRACE
from jqc.engine.queue import Queue
from jqc.errors import LockLostError

__all__ = ["FlowSimConfig", "FlowSimReport", "crash_after", "run_flows"]

STATES = ("waiting", "active", "completed", "failed", "waiting-children", "delayed")


@dataclass(frozen=True, slots=True)
class FlowSimConfig:
    """One flow run: ``flows`` trees (at most ``depth`` deep, ``fanout`` children a node) over
    ``queues`` queues, ``workers`` workers, each failure with ``fail_rate``, each producer or
    worker call sequence cut short with ``crash_rate``."""

    seed: int = 0
    flows: int = 20
    queues: int = 3
    workers: int = 4
    depth: int = 3
    fanout: int = 3
    fail_rate: float = 0.1
    crash_rate: float = 0.2


@dataclass
class FlowSimReport:
    """What a flow run saw: counts, and each invariant's violations (with a few examples)."""

    config: FlowSimConfig
    jobs: int = 0
    crashes: int = 0
    repaired: int = 0
    seconds: float = 0.0
    violations: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no invariant was violated."""
        return not any(self.violations.values())

    def violate(self, invariant: str, text: str) -> None:
        """Count a violation of ``invariant`` (keeping the first examples)."""
        self.violations[invariant] = self.violations.get(invariant, 0) + 1
        if len(self.examples) < 10:
            self.examples.append(f"{invariant}: {text}")


def crash_after(conn: Connection, op: Generator[Any, Any, Any], calls: int) -> int:
    """Run the first ``calls`` calls of the sans-IO ``op``, then drop it as a dying process
    would; returns how many it made (fewer when it ended sooner)."""
    made = 0
    try:
        call = next(op)
        while made < calls:
            reply = run_sync(conn.backend, call)
            made += 1
            call = op.send(reply)
    except StopIteration:
        pass
    finally:
        op.close()
    return made


class _Run:
    def __init__(self, config: FlowSimConfig, conn: Connection, clock: VirtualClock) -> None:
        self.config, self.conn, self.clock = config, conn, clock
        self.rng = random.Random(config.seed)
        self.names = [f"q{i}" for i in range(config.queues)]
        self.queues = {name: conn.queue(name) for name in self.names}
        self.report = FlowSimReport(config)
        self.serial = 0

    def tree(self, depth: int) -> Flow:
        self.serial += 1
        mine = self.serial
        kids = self.rng.randint(1, self.config.fanout) if depth > 1 and self.rng.random() < 0.7 else 0
        children = [self.tree(depth - 1) for _ in range(kids)]
        return Flow(
            "job", mine, queue=self.rng.choice(self.names), children=children,
            options=JobOptions(job_id=f"j{mine}"), on_failure=self.rng.choice(list(ChildPolicy)),
        )  # fmt: skip

    def cut(self) -> int:
        if self.rng.random() < self.config.crash_rate:
            self.report.crashes += 1
            return self.rng.randint(0, 4)
        return 10**6

    def work(self, queue: Queue, faults: bool) -> bool:
        held = queue.claim("w", lock=5.0).jobs
        if not held:
            return False
        job = held[0]
        pending = [c.id for c in job.job.children if c.state == "pending"]
        if pending:
            self.report.violate("parent_early", f"{queue.name}/{job.id} claimed with children {pending} pending")
        fail = faults and self.rng.random() < self.config.fail_rate
        op: Any = (
            queue.ops.fail_flow(job, queue.ops.fail(job, "boom", retry=False)) if fail
            else queue.ops.complete(job, job.job.data)
        )  # fmt: skip
        try:
            crash_after(self.conn, op, self.cut() if faults else 10**6)
        except LockLostError:
            pass  # its lock ran out while it worked: the stall check took the job back
        return True

    def check_running(self) -> None:
        for name, queue in self.queues.items():
            for state in ("waiting", "active", "completed"):
                for job in queue.list_jobs(state, 0, 10_000).jobs:
                    pending = [c.id for c in job.children if c.state == "pending"]
                    if pending:
                        self.report.violate("parent_early", f"{name}/{job.id} {state} with {pending} pending")

    def every_job(self) -> dict[tuple[str, str], Job]:
        out: dict[tuple[str, str], Job] = {}
        for name, queue in self.queues.items():
            for state in STATES:
                for job in queue.list_jobs(state, 0, 10_000).jobs:
                    out[(name, job.id)] = job
        return out

    def repair(self) -> None:
        for queue in self.queues.values():
            queue.recover_stalled(max_stalls=1000)
            self.report.repaired += queue.repair_flows()

    def run(self) -> FlowSimReport:
        added = 0
        second = 0
        while added < self.config.flows or second < 10:
            second += 1
            if added < self.config.flows and self.rng.random() < 0.5:
                root = self.tree(self.config.depth)
                crash_after(self.conn, self.queues[root.queue or "q0"].ops.add_flow(root), self.cut() + 1)
                added += 1
            for _ in range(self.config.workers):
                self.work(self.queues[self.rng.choice(self.names)], faults=True)
            self.clock.advance(1.0)
            for queue in self.queues.values():
                queue.recover_stalled(max_stalls=1000)
            if second % 60 == 0:
                self.repair()
            self.check_running()
        for _ in range(100):  # the faults stop: drain, the repair catching up
            self.clock.advance(REPAIR_GRACE + 6)
            self.repair()
            busy = True
            while busy:
                busy = any([self.work(queue, faults=False) for queue in self.queues.values()])
            self.check_running()
            jobs = self.every_job()
            if all(job.state.value in ("completed", "failed") for job in jobs.values()):
                break
        self.final(self.every_job())
        self.report.seconds = self.clock.now() - self.start
        return self.report

    def final(self, jobs: dict[tuple[str, str], Job]) -> None:
        self.report.jobs = len(jobs)
        if len(jobs) != self.serial:
            self.report.violate("unfinished", f"{self.serial} jobs added, {len(jobs)} stored")
        for key, job in jobs.items():
            if job.state.value not in ("completed", "failed"):
                self.report.violate("unfinished", f"{key[0]}/{key[1]} ends {job.state.value}")
            if job.state.value != "waiting-children":
                continue
            pending = [(c.queue, c.id) for c in job.children if c.state == "pending"]
            if not pending:
                self.report.violate("stuck_parent", f"{key[0]}/{key[1]} waits with every child done")
            for child in pending:
                if child not in jobs or jobs[child].state.value in ("completed", "failed"):
                    self.report.violate("orphan", f"{child[0]}/{child[1]} of {key[0]}/{key[1]}")

    start = 0.0


def run_flows(
    config: FlowSimConfig, open_connection: Callable[[VirtualClock], Connection] | None = None
) -> FlowSimReport:
    """Run one flow workload (on the embedded backend unless ``open_connection`` gives another)."""
    clock = VirtualClock()
    conn = open_connection(clock) if open_connection else connect(clock=clock)
    try:
        run = _Run(config, conn, clock)
        run.start = clock.now()
        return run.run()
    finally:
        conn.close()
