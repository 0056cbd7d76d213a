"""Fan-out at run time on every backend: a running job adds children and waits for them (its lock
released), runs again with their results, and neither side is lost when a worker crashes between
the writes; the drain of the testing helpers runs a whole flow to the end."""

from __future__ import annotations

from typing import Any

import pytest

import jqc
from jqc import Flow
from jqc.engine.ops_flows import REPAIR_GRACE
from jqc.testing import drain
from tests.conftest import ALL_BACKENDS
from tests.workflows.flowkit import crash_after, photo_flow, state


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def test_a_held_job_adds_children_and_waits_for_them(conn: jqc.Connection) -> None:
    main, kids = conn.queue("main"), conn.queue("kids")
    main.add("split", [1, 2, 3], job_id="s")
    held = main.claim("w").jobs[0]
    assert main.add_children(held, [Flow("square", n, queue="kids") for n in held.job.data]) == 3
    assert state(conn, "main", "s") == "waiting-children"
    assert main.counts().active == 0  # the lock is released at once
    with pytest.raises(jqc.LockLostError):
        main.complete(held, "too early")  # the token died with the park
    for _ in range(3):
        job = kids.claim("w").jobs[0]
        kids.complete(job, job.job.data**2)
    again = main.claim("w").jobs[0]
    assert sorted(c.result for c in again.job.children) == [1, 4, 9]
    main.complete(again, "sum")
    assert state(conn, "main", "s") == "completed"


def test_fan_out_with_a_stale_token_changes_nothing(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    main = conn.queue("main")
    main.add("split", job_id="s")
    stale = main.claim("w1", lock=1.0).jobs[0]
    clock.advance(5)
    main.recover_stalled(max_stalls=5)
    with pytest.raises(jqc.LockLostError):
        main.add_children(stale, [Flow("child", queue="kids")])
    assert conn.queue("kids").counts().total == 0 and state(conn, "main", "s") == "waiting"


def test_a_fan_out_cut_short_is_finished_by_the_repair(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    main, kids = conn.queue("main"), conn.queue("kids")
    main.add("split", job_id="s")
    held = main.claim("w").jobs[0]
    crash_after(conn, main.ops.park(held, [Flow("a", queue="kids"), Flow("b", queue="kids")]), 1)
    assert state(conn, "main", "s") == "waiting-children"  # parked: the worker died right after
    assert kids.counts().total == 0
    clock.advance(REPAIR_GRACE + 1)
    assert main.repair_flows() == 1
    assert kids.counts().waiting == 2
    assert state(conn, "main", "s") == "waiting-children"


def test_a_handler_fans_out_then_aggregates(conn: jqc.Connection) -> None:
    main, kids = conn.queue("main"), conn.queue("kids")
    main.add("split", [1, 2, 3], job_id="s")

    async def split(ctx: jqc.JobContext) -> Any:
        if not ctx.job.children:
            await ctx.wait_for_children([Flow("square", n, queue="kids") for n in ctx.data])
        return sum(ctx.children_results().values())

    def square(ctx: jqc.SyncJobContext) -> int:
        return int(ctx.data) ** 2

    result = drain([main, kids], {"split": split, "square": square})
    assert main.get_job("s").result == 14  # type: ignore[union-attr]
    assert len(result.completed) == 4


def test_drain_runs_the_photo_flow_to_the_end(conn: jqc.Connection) -> None:
    queues = [conn.queue(n) for n in ("photos", "resize", "thumbs", "tags")]
    queues[0].add_flow(photo_flow())
    order: list[str] = []

    def step(ctx: jqc.SyncJobContext) -> str:
        order.append(ctx.name)
        return ctx.name

    def publish(ctx: jqc.SyncJobContext) -> dict[str, Any]:
        order.append("publish")
        return ctx.children_results()

    drain(queues, {"thumbnail": step, "resize": step, "tag": step, "publish": publish})
    assert order.index("thumbnail") < order.index("resize") < order.index("publish")
    assert order.index("tag") < order.index("publish")
    assert queues[0].get_job("pub-cat.jpg").result == {"resize-cat.jpg": "resize", "tag-cat.jpg": "tag"}  # type: ignore[union-attr]


def test_assert_flow_checks_every_state_and_draws_the_tree(conn: jqc.Connection) -> None:
    from jqc.testing import assert_flow

    queues = [conn.queue(n) for n in ("photos", "resize", "thumbs", "tags")]
    queues[0].add_flow(photo_flow())

    def step(ctx: jqc.SyncJobContext) -> Any:
        if ctx.name == "tag":
            raise jqc.Fail("no labels")
        return ctx.name

    drain(queues, step, raise_on_failure=False)
    tree = assert_flow(
        queues[0], "pub-cat.jpg", state="failed", states={"thumb-cat.jpg": "completed", "resize-cat.jpg": "completed"}
    )
    assert tree.job is not None and tree.job.failure_code is jqc.FailureCode.CHILD
    with pytest.raises(AssertionError, match=r"photos/pub-cat.jpg is failed, expected completed") as info:
        assert_flow(queues[0], "pub-cat.jpg")
    assert "  resize/resize-cat.jpg resize completed\n    thumbs/thumb-cat.jpg thumbnail completed" in str(info.value)
    with pytest.raises(AssertionError, match="not in the flow"):
        assert_flow(queues[0], "pub-cat.jpg", states={"nope": "failed"})
