"""Flows under real ACL users: a producer with its role on every queue of a flow (here the whole
prefix) adds one, a worker with its role there runs it to the end (each child's completion
writes to its parent's queue), and a producer of one queue only is refused a flow that touches
another, with nothing written."""

from __future__ import annotations

from typing import Any

import pytest

import jqc
from jqc import Flow, JobOptions
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


def test_a_producer_of_one_queue_refused_half_way_leaves_a_flow_the_repair_makes_whole(
    admin: jqc.Connection, login: Login
) -> None:
    queue = login("producer").queue("photos")
    flow = Flow("publish", children=[Flow("mine"), Flow("theirs", queue="resize")], options=JobOptions(job_id="p"))
    # The root's queue is written first, then the refusal comes. A producer may not delete jobs,
    # so it cannot take back what it wrote: the root and "mine" wait, held, with the flow's intent.
    with pytest.raises(jqc.PermissionDeniedError, match=pattern("resize")):
        queue.add_flow(flow)
    photos = admin.queue("photos")
    assert photos.counts().waiting_children == 2 and photos.counts().waiting == 0  # nothing runs
    assert admin.queue("resize").counts().total == 0
    # A worker allowed on every queue of the flow finishes it in its stall check's repair.
    worker = login("worker", queue=None).queue("photos")
    assert worker.repair_flows(grace=0) == 1
    assert [n.state for n in photos.flow("p").walk()] == ["waiting-children", "waiting", "waiting"]  # type: ignore[union-attr]


def test_a_worker_refused_half_way_takes_its_creation_back(admin: jqc.Connection, login: Login) -> None:
    queue = login("worker").queue("photos")  # a worker may delete held jobs: flow_abort
    producer_too = login("worker", "producer").queue("photos")
    with pytest.raises(jqc.PermissionDeniedError, match=pattern("resize")):
        producer_too.add_flow(Flow("publish", children=[Flow("mine"), Flow("theirs", queue="resize")]))
    left = {k: v for k, v in _state(admin.sync_client()).items() if not k.endswith((":events", ":meta"))}
    assert left == {} and queue.name == "photos"
