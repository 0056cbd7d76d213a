"""``jqc flow show QUEUE ID``: draw the flow below a job as a tree, with every job's state.

Each line is one job: its queue and id, its name, its state (or, for a job already deleted by its
retention, the state its parent recorded) and, once finished, its result or failure reason.
``--json`` prints the same tree as nested objects. A job that does not exist exits 1.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from rich.text import Text
from rich.tree import Tree

import jqc
from jqc.engine.flows import FlowNode

from .arguments import Subparsers, add_json, add_queue, add_url
from .guards import CommandRefused
from .output import emit_json, show

__all__ = ["add_parsers"]

_STYLE = {"completed": "green", "failed": "red", "active": "yellow", "waiting-children": "cyan"}


def _summary(node: FlowNode) -> str:
    job, outcome = node.job, node.outcome
    if job is not None and job.failure_reason and node.state == "failed":
        return f"failed: {job.failure_reason}"
    if outcome is not None and outcome.state == "failed":
        return f"failed: {outcome.failure}"
    if node.state == "completed":
        result = job.result if job is not None else (outcome.result if outcome else None)
        text = repr(result)
        return f"result {text[:60]}{'...' if len(text) > 60 else ''}"
    return ""


def _label(node: FlowNode) -> Text:
    """One job's line, as rich Text (never read as markup: results may hold brackets)."""
    name = node.job.name if node.job is not None else "(deleted)"
    policy = f" on_failure={node.outcome.policy.value}" if node.outcome and node.outcome.policy.value != "fail" else ""
    extra = _summary(node)
    state = (node.state, _STYLE.get(node.state, ""))
    return Text.assemble(f"{node.queue}/{node.id} {name} ", state, policy, f"  {extra}" if extra else "")


def _grow(tree: Tree, node: FlowNode) -> None:
    for child in node.children:
        _grow(tree.add(_label(child)), child)


def _as_json(node: FlowNode) -> dict[str, Any]:
    job = node.job
    return {
        "queue": node.queue, "id": node.id, "name": job.name if job else None, "state": node.state,
        "result": job.result if job else (node.outcome.result if node.outcome else None),
        "failure": (job.failure_reason if job else None) or (node.outcome.failure if node.outcome else None),
        "on_failure": node.outcome.policy.value if node.outcome else None,
        "children": [_as_json(child) for child in node.children],
    }  # fmt: skip


def cmd_flow(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Run ``jqc flow show QUEUE ID``."""
    found = conn.queue(args.queue).flow(args.id)
    if found is None:
        raise CommandRefused(f"no job {args.id!r} in queue {args.queue!r}")
    if args.json:
        emit_json(out, _as_json(found))
        return 0
    tree = Tree(_label(found))
    _grow(tree, found)
    show(out, tree)
    return 0


def add_parsers(sub: Subparsers) -> None:
    """Register ``flow``."""
    p = sub.add_parser(
        "flow",
        help="flows: draw the tree of jobs below a flow parent",
        description="A flow is a job that waits for its children (on any queues); show draws it with every state.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    showing = actions.add_parser("show", help="the flow below a job, as a tree")
    add_queue(showing)
    showing.add_argument("id", help="the job id (usually the flow's root)")
    add_url(showing)
    add_json(showing)
    p.set_defaults(handler=cmd_flow)
