"""``assert_flow``: check a whole flow at once, every job's state (and the root's result), with a
failure message that draws the tree as it is.

    drain([photos, resize, thumbs, tags], handlers)
    assert_flow(photos, "pub-cat.jpg")                           # every job completed
    assert_flow(photos, "pub-cat.jpg", states={"tag-cat.jpg": "failed"}, state="completed",
                result={"resize-cat.jpg": "r.jpg"})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jqc.engine.async_queue import AsyncQueue
from jqc.engine.calls import run_sync
from jqc.engine.flows import FlowNode
from jqc.engine.job import JobState
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError
from jqc.testing.matching import UNSET

__all__ = ["assert_flow", "draw_flow"]


def draw_flow(node: FlowNode, indent: str = "") -> str:
    """The tree below ``node`` as indented text: ``queue/id name state`` per line."""
    name = node.job.name if node.job is not None else "(deleted)"
    lines = [f"{indent}{node.queue}/{node.id} {name} {node.state}"]
    for child in node.children:
        lines.append(draw_flow(child, indent + "  "))
    return "\n".join(lines)


def _state_name(value: object) -> str:
    if isinstance(value, JobState):
        return value.value
    if isinstance(value, str) and (value in {s.value for s in JobState} or value == "pending"):
        return value
    raise InvalidOptionError(f"a flow state is a jqc.JobState or its name, not {value!r}")


def assert_flow(
    queue: Queue | AsyncQueue,
    job_id: str,
    *,
    state: JobState | str = JobState.COMPLETED,
    states: Mapping[str, JobState | str] | None = None,
    result: Any = UNSET,
) -> FlowNode:
    """Assert that the flow below job ``job_id`` of ``queue`` is in ``state`` everywhere, except the
    jobs named (by id) in ``states``; with ``result``, that the root's result equals it. Returns
    the tree (:class:`jqc.FlowNode`). Raises AssertionError drawing the tree when it is not so."""
    __tracebackhide__ = True
    tree: FlowNode | None = run_sync(queue.connection.backend, queue.ops.flow(job_id))
    if tree is None:
        raise AssertionError(f"no job {job_id!r} in queue {queue.name!r}")
    default = _state_name(state)
    wanted = {key: _state_name(value) for key, value in (states or {}).items()}
    unknown = set(wanted) - {node.id for node in tree.walk()}
    if unknown:
        raise AssertionError(f"states names jobs that are not in the flow: {sorted(unknown)}\n{draw_flow(tree)}")
    wrong = [
        f"{node.queue}/{node.id} is {node.state}, expected {wanted.get(node.id, default)}"
        for node in tree.walk()
        if node.state != wanted.get(node.id, default)
    ]
    if wrong:
        raise AssertionError("; ".join(wrong) + "\n" + draw_flow(tree))
    if result is not UNSET:
        got = tree.job.result if tree.job is not None else None
        if got != result:
            raise AssertionError(f"the root's result is {got!r}, expected {result!r}\n{draw_flow(tree)}")
    return tree
