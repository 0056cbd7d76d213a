"""Flows as users describe and read them: :class:`Flow` (a tree to add) and :class:`FlowNode` (a
tree as stored), and the plan that turns a Flow into the records each queue stores.

A flow is a parent job whose children (any depth, on any queues of one connection) must all be
done before it runs. How it is created and finished across Redis Cluster slots is in
``docs/workflows.md`` ("Flows"); the calls are in :mod:`jqc.engine.ops_flows`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jqc import _json
from jqc.engine.flow_records import ChildOutcome, ChildPolicy, children_field
from jqc.engine.job import Job, JobOptions
from jqc.engine.keys import validate_job_id, validate_queue_name
from jqc.engine.records import pack
from jqc.errors import InvalidOptionError

__all__ = ["Flow", "FlowNode", "FlowPlan", "PlannedNode", "plan_flow"]

MAX_FLOW_NODES = 10_000


@dataclass(frozen=True, slots=True)
class Flow:
    """A job and the children it waits for: ``Flow("publish", data, queue="photos", children=[...])``.

    ``queue`` None means the queue ``add_flow`` is called on (for a child: its parent's queue);
    ``options`` are the job's options (``job_id`` included; default: a random id); ``on_failure``
    is what this job's failure for good does to its parent (a :class:`jqc.ChildPolicy` or its name:
    ``fail`` the parent, the default; ``ignore``; ``continue`` and let the parent see it).
    """

    name: str
    data: Any = None
    queue: str | None = None
    children: Sequence[Flow] = ()
    options: JobOptions | None = None
    on_failure: ChildPolicy | str = ChildPolicy.FAIL


@dataclass(frozen=True, slots=True)
class FlowNode:
    """One job of a stored flow and its children, as :meth:`jqc.Queue.flow` reads them.

    ``job`` is None when the job is gone (removed, or deleted by its retention once finished);
    ``outcome`` is what its parent recorded about it (None for the root).
    """

    queue: str
    id: str
    job: Job | None
    outcome: ChildOutcome | None = None
    children: tuple[FlowNode, ...] = ()

    @property
    def state(self) -> str:
        """The job's state (``waiting-children``, ``waiting``, ``completed``, ...), or its parent's
        record of it (``completed``, ``failed``, ``pending``) when the job itself is gone."""
        if self.job is not None:
            return self.job.state.value
        return self.outcome.state if self.outcome else "missing"

    def walk(self) -> list[FlowNode]:
        """This node and every node below it, parents before children."""
        out = [self]
        for child in self.children:
            out += child.walk()
        return out


@dataclass(frozen=True, slots=True)
class PlannedNode:
    """One node of a flow about to be created: where it goes and the record it starts with."""

    queue: str
    id: str
    record: str
    leaf: bool = field(default=False)


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """The nodes of a flow, root first, parents before children."""

    nodes: tuple[PlannedNode, ...]

    @property
    def root(self) -> PlannedNode:
        """The flow's root (the job that runs last)."""
        return self.nodes[0]

    def to_json(self) -> str:
        """The plan as the JSON text stored in the flow's intent (read back by :meth:`from_json`)."""
        return _json.encode([[n.queue, n.id, n.record, int(n.leaf)] for n in self.nodes], what="flow")

    @classmethod
    def from_json(cls, text: str) -> FlowPlan:
        """The plan an intent stored."""
        rows = _json.decode(text, what="flow intent")
        return cls(tuple(PlannedNode(q, i, r, bool(leaf)) for q, i, r, leaf in rows))


def plan_flow(
    flow: Flow,
    queue: str,
    *,
    options_for: Callable[[JobOptions | None], JobOptions],
    option_fields: Callable[[JobOptions], dict[str, str | int]],
    check_name: Callable[[object], str],
    encode_data: Callable[[Any], str],
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> FlowPlan:
    """Check every node of ``flow`` and give each its id and first record; nothing is written.

    Raises :class:`jqc.InvalidOptionError` for a bad node, a delayed one (flow nodes start when
    their children are done), a repeated (queue, id) or more than 10,000 nodes.
    """
    nodes: list[PlannedNode] = []
    seen: set[tuple[str, str]] = set()

    def visit(node: object, where: str, parent: tuple[str, str, ChildPolicy] | None) -> tuple[str, str]:
        if not isinstance(node, Flow):
            raise InvalidOptionError(f"flow children must be jqc.Flow, not {node!r}")
        name = validate_queue_name(node.queue) if node.queue is not None else where
        opts = options_for(node.options)
        if opts.delay:
            raise InvalidOptionError("flow jobs cannot be delayed: a flow job starts when its children are done")
        job_id = validate_job_id(opts.job_id) if opts.job_id is not None else new_id()
        if (name, job_id) in seen:
            raise InvalidOptionError(f"job {job_id} appears twice in queue {name!r} of one flow")
        seen.add((name, job_id))
        if len(seen) > MAX_FLOW_NODES:
            raise InvalidOptionError(f"a flow has at most {MAX_FLOW_NODES} jobs")
        fields: dict[str, str | int] = {"n": check_name(node.name), "d": encode_data(node.data), **option_fields(opts)}
        if parent is not None:
            fields.update(pq=parent[0], pi=parent[1], pp=parent[2].code)
        index = len(nodes)
        nodes.append(PlannedNode(name, job_id, ""))
        if isinstance(node.children, (str, bytes)) or not isinstance(node.children, Sequence):
            raise InvalidOptionError(f"flow children must be a sequence of jqc.Flow, not {node.children!r}")
        kids = [(child, ChildPolicy.parse(child.on_failure) if isinstance(child, Flow) else ChildPolicy.FAIL)
                for child in node.children]  # fmt: skip
        links = [(*visit(child, name, (name, job_id, policy)), policy) for child, policy in kids]
        if links:
            fields["ch"] = children_field(links)
        nodes[index] = PlannedNode(name, job_id, pack(fields), leaf=not links)
        return name, job_id

    visit(flow, validate_queue_name(queue), None)
    return FlowPlan(tuple(nodes))


def with_id(flow: Flow, job_id: str) -> Flow:
    """``flow`` with its root's job id set (used when the caller names it)."""
    return dataclasses.replace(flow, options=dataclasses.replace(flow.options or JobOptions(), job_id=job_id))
