"""Flows under real ACL users: a producer with its role on every queue of a flow (here the whole
prefix) adds one, a worker with its role there runs it to the end (each child's completion
writes to its parent's queue), and a producer of one queue only is refused a flow that touches
another, with nothing written."""

from __future__ import annotations

from typing import Any

import pytest

import jqc
from jqc import Flow
from tests.security.test_least_privilege import Login, admin, login, pattern, server
from tests.security.test_least_privilege import state as _state

__all__ = ["admin", "login", "server"]  # the fixtures this module uses


def test_a_prefix_wide_producer_and_worker_run_a_flow_across_queues(admin: jqc.Connection, login: Login) -> None:
    producer = login("producer", queue=None)
    tree = producer.queue("photos").add_flow(
        Flow("publish", children=[Flow("resize", 1, queue="resize"), Flow("tag", 2, queue="tags")])
    )
    assert [n.state for n in tree.walk()] == ["waiting-children", "waiting", "waiting"]
    worker = login("worker", queue=None)

    def handler(ctx: jqc.SyncJobContext) -> Any:
        return ctx.children_results() if ctx.name == "publish" else ctx.data * 10

    stats = jqc.Worker([worker.queue(q) for q in ("resize", "tags", "photos")], handler, connect_timeout=10).run(
        burst=True
    )
    assert stats.reconnects == 0 and stats.completed == 3
    done = admin.queue("photos").get_job(tree.id)
    assert done is not None and sorted(done.result.values()) == [10, 20]


def test_a_producer_of_one_queue_is_refused_a_flow_reaching_another(admin: jqc.Connection, login: Login) -> None:
    queue = login("producer").queue("photos")
    flow = Flow("publish", children=[Flow("mine"), Flow("theirs", queue="resize")])
    # The root's queue is written first, then the refusal comes: what was written is taken back
    # (only its event stream tells that a flow was added and removed).
    with pytest.raises(jqc.PermissionDeniedError, match=pattern("resize")):
        queue.add_flow(flow)
    left = {k: v for k, v in _state(admin.sync_client()).items() if not k.endswith((":events", ":meta"))}
    assert left == {}
    assert admin.queue("photos").counts().total == 0
