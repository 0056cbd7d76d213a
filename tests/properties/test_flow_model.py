"""Flows against a small model, on the embedded backend and a real server: a hypothesis state
machine adds flows (random trees over three queues, random failure policies), cuts creations,
completions and failures short after any call (a crashed producer or worker), moves the clock past
the repair grace and repairs, replays dead letters, and at the end runs everything to completion.

Invariants, read from the engine after every step:

* a parent never runs before all its children are done: a job with children that is waiting,
  active or completed has an outcome recorded for every child;
* what a parent recorded matches the child: a child recorded completed is completed (or gone);
* once repaired (every grace passed), no parent stays in waiting-children with no child pending,
  and no pending child is orphaned (missing, or finished without its parent knowing);
* at the end every job of every flow finished, each as the model says: failed if the test failed
  it (and did not replay it) or a child under the ``fail`` policy failed, else completed.
"""

from __future__ import annotations

import itertools
import os
import unittest
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import jqc
from jqc import ChildPolicy, Flow, JobOptions
from jqc.engine.ops_flows import REPAIR_GRACE
from tests.conftest import close_backend, open_backend
from tests.workflows.flowkit import crash_after

QUEUES = ("a", "b", "c")
FINAL = ("completed", "failed")


@dataclass
class Node:
    key: tuple[str, str]
    policy: ChildPolicy
    children: list[tuple[str, str]] = field(default_factory=list)
    failed_by_test: bool = False


Shape = tuple[int, int, list["Shape"]]  # (queue index, policy index, children)
shapes: st.SearchStrategy[Shape] = st.recursive(
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.just([])),
    lambda kids: st.tuples(st.integers(0, 2), st.integers(0, 2), st.lists(kids, min_size=1, max_size=3)),
    max_leaves=6,
)
cuts = st.one_of(st.none(), st.integers(1, 12))


class FlowMachine(RuleBasedStateMachine):
    backend = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.clock = jqc.VirtualClock()
        self.conn = open_backend(self.backend, self.clock)
        self.nodes: dict[tuple[str, str], Node] = {}
        self.roots: list[tuple[str, str]] = []
        self.ids = itertools.count()
        self.repaired = False

    def teardown(self) -> None:
        try:
            self.finish_everything()
        finally:
            close_backend(self.conn)

    def queue(self, name: str) -> jqc.Queue:
        return self.conn.queue(name)

    def build(self, shape: Shape, parent_queue: str) -> Flow:
        qi, pi, kids = shape
        queue = QUEUES[qi]
        job_id = f"n{next(self.ids)}"
        node = Node((queue, job_id), list(ChildPolicy)[pi])
        self.nodes[node.key] = node
        children = [self.build(kid, queue) for kid in kids]
        node.children = [(c.queue or queue, (c.options or JobOptions()).job_id or "") for c in children]
        return Flow("job", job_id, queue=queue, children=children, options=JobOptions(job_id=job_id),
                    on_failure=node.policy)  # fmt: skip

    def record(self, queue: str, job_id: str) -> jqc.Job | None:
        return self.queue(queue).get_job(job_id)

    @rule(shape=shapes, cut=cuts)
    def add_flow(self, shape: Shape, cut: int | None) -> None:
        flow = self.build(shape, "a")
        root = (flow.queue or "a", (flow.options or JobOptions()).job_id or "")
        self.roots.append(root)
        crash_after(self.conn, self.queue(root[0]).ops.add_flow(flow), cut or 10**6)
        self.repaired = False

    @rule(queue=st.sampled_from(QUEUES), fail=st.booleans(), cut=cuts)
    def work(self, queue: str, fail: bool, cut: int | None) -> None:
        q = self.queue(queue)
        claimed = q.claim("w").jobs
        if not claimed:
            return
        held = claimed[0]
        if fail:
            op = q.ops.fail_flow(held, q.ops.fail(held, "boom", retry=False))
            self.nodes[(queue, held.id)].failed_by_test = True
        else:
            op = q.ops.complete(held, held.id)
        crash_after(self.conn, op, cut or 10**6)
        self.repaired = False

    @rule()
    def repair(self) -> None:
        self.clock.advance(REPAIR_GRACE + 1)
        for name in QUEUES:
            while self.queue(name).repair_flows():
                pass
        self.repaired = True

    @rule(queue=st.sampled_from(QUEUES))
    def replay(self, queue: str) -> None:
        q = self.queue(queue)
        for letter in q.dead_letters().letters:
            if letter.job.failure_code is not jqc.FailureCode.CHILD:
                q.replay_dead(letter.job.id)
                self.nodes[(queue, letter.job.id)].failed_by_test = False
                return

    @invariant()
    def parents_run_only_after_their_children(self) -> None:
        for key, node in self.nodes.items():
            job = self.record(*key)
            if job is None or not node.children:
                continue
            recorded = {(c.queue, c.id): c for c in job.children}
            if job.state.value in ("waiting", "active", "completed"):
                pending = [k for k, c in recorded.items() if c.state == "pending"]
                assert not pending, f"{key} is {job.state.value} with children pending: {pending}"
            for child_key, outcome in recorded.items():
                child = self.record(*child_key)
                if outcome.state == "completed" and child is not None:
                    assert child.state.value == "completed", f"{child_key} recorded completed, is {child.state}"
            if self.repaired and job.state.value == "waiting-children":
                pending = [k for k, c in recorded.items() if c.state == "pending"]
                assert pending, f"{key} stays in waiting-children with every child done"
                for child_key in pending:
                    child = self.record(*child_key)
                    assert child is not None, f"{child_key}, a pending child of {key}, is missing (orphaned)"
                    assert child.state.value not in FINAL, f"{child_key} finished but {key} does not know"

    def expected(self, key: tuple[str, str]) -> str:
        node = self.nodes[key]
        if node.failed_by_test:
            return "failed"
        for child in node.children:
            if self.nodes[child].policy is ChildPolicy.FAIL and self.expected(child) == "failed":
                return "failed"
        return "completed"

    def finish_everything(self) -> None:
        self.repair()
        for _ in range(10 * len(self.nodes) + 10):
            ran = False
            for name in QUEUES:
                q = self.queue(name)
                while claimed := q.claim("w").jobs:
                    q.complete(claimed[0], claimed[0].id)
                    ran = True
            if not ran:
                break
        for key in self.nodes:
            job = self.record(*key)
            assert job is not None, f"{key} is missing at the end"
            assert job.state.value == self.expected(key), f"{key}: {job.state.value}, expected {self.expected(key)}"
        for name in QUEUES:
            assert self.queue(name).counts().waiting_children == 0


def machine_test_case(backend: str) -> type[unittest.TestCase]:
    machine = type(f"FlowMachine_{backend}", (FlowMachine,), {"backend": backend})

    class FlowModelTest(machine.TestCase):  # type: ignore[name-defined,misc]
        def setUp(self) -> None:
            open_backend(backend, jqc.VirtualClock()).close()

    if os.environ.get("JQC_HYPOTHESIS_PROFILE", "default") == "default":
        FlowModelTest.settings = settings(max_examples=25, stateful_step_count=25)
    FlowModelTest.__name__ = FlowModelTest.__qualname__ = f"TestFlowModel{backend.title()}"
    return FlowModelTest


TestFlowModelFake = machine_test_case("fake")
TestFlowModelRedis = machine_test_case("redis")
