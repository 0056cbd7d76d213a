"""Flows survive a crash between any two of their steps, on every backend: a creation cut short
at any call is finished by the repair (and nothing of the flow runs before it is whole); a child's
outcome cut short before delivery is delivered by the repair; deliveries repeated or raced change
nothing twice; a stale holder cannot complete a child or move its parent."""

from __future__ import annotations

import pytest

import jqc
from jqc.engine.ops_flows import REPAIR_GRACE
from tests.conftest import ALL_BACKENDS
from tests.workflows.flowkit import crash_after, every_state, photo_flow, run_one, state

QUEUES = ("photos", "resize", "thumbs", "tags")
WHOLE = {
    "photos/pub-cat.jpg": "waiting-children",
    "resize/resize-cat.jpg": "waiting-children",
    "thumbs/thumb-cat.jpg": "waiting",
    "tags/tag-cat.jpg": "waiting",
}


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def creation_calls(conn: jqc.Connection) -> int:
    probe = jqc.connect(clock=jqc.VirtualClock())
    try:
        return crash_after(probe, probe.queue("photos").ops.add_flow(photo_flow()), 10_000)
    finally:
        probe.close()


def test_a_creation_cut_short_anywhere_is_finished_by_the_repair(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    total = creation_calls(conn)
    assert total >= 8  # root, 3 queues' nodes, mark, 4 releases, drop, read-back
    for cut in range(1, total):
        photos = conn.queue("photos")
        crash_after(conn, photos.ops.add_flow(photo_flow(f"p{cut}")), cut)
        seen = {k: v for k, v in every_state(conn, QUEUES).items() if f"p{cut}" in k}
        runnable = [k for k, v in seen.items() if v == "waiting"]
        assert len(seen) == 4 or not runnable, f"cut after {cut} calls: part of the flow runs early: {seen}"
        assert photos.repair_flows() == 0  # too young: the producer may still be writing it
        clock.advance(REPAIR_GRACE + 1)
        photos.repair_flows()
        after = {k: v for k, v in every_state(conn, QUEUES).items() if f"p{cut}" in k}
        assert after == {k.replace("cat.jpg", f"p{cut}"): v for k, v in WHOLE.items()}, f"cut after {cut} calls"
        assert photos.repair_flows(grace=0) == 0  # nothing left to repair


def test_an_outcome_cut_short_before_delivery_is_delivered_by_the_repair(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    conn.queue("photos").add_flow(photo_flow())
    tags = conn.queue("tags")
    held = tags.claim("w").jobs[0]
    assert crash_after(conn, tags.ops.complete(held, "tagged"), 1) == 1  # completed; the worker dies
    assert state(conn, "tags", "tag-cat.jpg") == "completed"
    thumbs = conn.queue("thumbs")
    held = thumbs.claim("w").jobs[0]
    crash_after(conn, thumbs.ops.complete(held, "t"), 3)  # complete, read outbox, deliver; no ack
    assert state(conn, "resize", "resize-cat.jpg") == "waiting"
    assert tags.repair_flows() == 0 and thumbs.repair_flows() == 0
    clock.advance(REPAIR_GRACE + 1)
    assert thumbs.repair_flows() == 1  # a repeated delivery: acknowledged, nothing moved twice
    assert state(conn, "resize", "resize-cat.jpg") == "waiting"
    assert conn.queue("resize").counts().waiting == 1
    assert tags.repair_flows() == 1
    parent = conn.queue("photos").get_job("pub-cat.jpg")
    assert parent is not None and {c.id: c.state for c in parent.children}["tag-cat.jpg"] == "completed"
    run_one(conn.queue("resize"), "r")
    assert state(conn, "photos", "pub-cat.jpg") == "waiting"


def test_delivering_twice_changes_nothing(conn: jqc.Connection) -> None:
    conn.queue("photos").add_flow(photo_flow())
    tags = conn.queue("tags")
    held = tags.claim("w").jobs[0]
    crash_after(conn, tags.ops.complete(held, "x"), 1)
    for _ in range(3):
        crash_after(conn, tags.ops.deliver("tags", "tag-cat.jpg"), 2)  # read and deliver, never the ack
    parent = conn.queue("photos").get_job("pub-cat.jpg")
    assert parent is not None and [c.state for c in parent.children] == ["pending", "completed"]
    assert parent.state is jqc.JobState.WAITING_CHILDREN


def test_a_stale_holder_cannot_complete_a_child_nor_move_its_parent(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    conn.queue("photos").add_flow(jqc.Flow("parent", children=[jqc.Flow("child", queue="kids")]))
    kids = conn.queue("kids")
    stale = kids.claim("w1", lock=1.0).jobs[0]
    clock.advance(5)
    kids.recover_stalled(max_stalls=5)
    fresh = kids.claim("w2").jobs[0]
    with pytest.raises(jqc.LockLostError):
        kids.complete(stale, "stale")
    assert conn.queue("photos").counts().waiting_children == 1
    kids.complete(fresh, "fresh")
    parent = conn.queue("photos").claim("w").jobs[0]
    assert [c.result for c in parent.job.children] == ["fresh"]


def test_a_parent_deep_in_a_flow_failing_fails_its_own_parent(conn: jqc.Connection) -> None:
    conn.queue("photos").add_flow(photo_flow())
    run_one(conn.queue("thumbs"), fail="corrupt image")  # fails resize, which fails publish
    assert state(conn, "resize", "resize-cat.jpg") == "failed"
    assert state(conn, "photos", "pub-cat.jpg") == "failed"
    conn.queue("thumbs").replay_dead("thumb-cat.jpg")  # resumes resize; publish stays failed by resize
    assert state(conn, "resize", "resize-cat.jpg") == "waiting-children"
    run_one(conn.queue("thumbs"), "t")
    run_one(conn.queue("resize"), "r")  # its completion after its own failure resumes publish
    assert state(conn, "photos", "pub-cat.jpg") == "waiting-children"
    run_one(conn.queue("tags"), "x")
    assert state(conn, "photos", "pub-cat.jpg") == "waiting"
