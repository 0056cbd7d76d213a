"""Flows on every backend: creation across queues, the last child moving its parent, results kept
on the parent whatever the children's retention, failure policies, the DLQ replay that resumes a
flow, reading the tree, removing a parent with its children, and obliterate's refusal."""

from __future__ import annotations

import pytest

import jqc
from jqc import ChildPolicy, Flow, JobOptions, JobState, Keep
from tests.conftest import ALL_BACKENDS
from tests.workflows.flowkit import photo_flow, run_one, state


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Flows span queues, so on a Redis Cluster they span slots: every test runs there too."""
    kind: str = request.param
    return kind


def test_a_flow_waits_for_its_children_then_runs(conn: jqc.Connection) -> None:
    photos = conn.queue("photos")
    tree = photos.add_flow(photo_flow())
    assert tree.state == "waiting-children"
    assert [(n.queue, n.id, n.state) for n in tree.walk()] == [
        ("photos", "pub-cat.jpg", "waiting-children"),
        ("resize", "resize-cat.jpg", "waiting-children"),
        ("thumbs", "thumb-cat.jpg", "waiting"),
        ("tags", "tag-cat.jpg", "waiting"),
    ]
    assert photos.counts().waiting_children == 1
    assert run_one(photos) is None  # the parent cannot be claimed while children are pending
    assert run_one(conn.queue("resize")) is None
    run_one(conn.queue("thumbs"), {"thumb": "t.jpg"})
    assert state(conn, "resize", "resize-cat.jpg") == "waiting"
    resize = conn.queue("resize").claim("w1").jobs[0]
    assert resize.job.children[0].result == {"thumb": "t.jpg"}
    conn.queue("resize").complete(resize, "r.jpg")
    assert state(conn, "photos", "pub-cat.jpg") == "waiting-children"  # tag still pending
    run_one(conn.queue("tags"), ["cat"])
    assert state(conn, "photos", "pub-cat.jpg") == "waiting"
    parent = photos.claim("w1").jobs[0]
    assert {c.id: c.result for c in parent.job.children} == {"resize-cat.jpg": "r.jpg", "tag-cat.jpg": ["cat"]}
    photos.complete(parent, "published")
    assert photos.flow("pub-cat.jpg").state == "completed"  # type: ignore[union-attr]


def test_children_results_survive_the_childrens_retention(conn: jqc.Connection) -> None:
    gone = JobOptions(remove_on_complete=Keep(count=0))
    flow = Flow("parent", children=[Flow("child", i, queue="kids", options=gone) for i in range(3)])
    root = conn.queue("main").add_flow(flow)
    kids = conn.queue("kids")
    for _ in range(3):
        job = kids.claim("w").jobs[0]
        kids.complete(job, job.job.data * 10)
        assert kids.get_job(job.id) is None  # deleted on completion, as its retention says
    parent = conn.queue("main").claim("w").jobs[0]
    assert sorted(c.result for c in parent.job.children) == [0, 10, 20]
    assert conn.queue("main").flow(root.id).children[0].state == "completed"  # type: ignore[union-attr]


def test_adding_a_flow_twice_changes_nothing(conn: jqc.Connection) -> None:
    photos = conn.queue("photos")
    photos.add_flow(photo_flow())
    again = photos.add_flow(photo_flow())
    assert [n.state for n in again.walk()] == ["waiting-children", "waiting-children", "waiting", "waiting"]
    assert conn.queue("thumbs").counts().waiting == 1


def test_a_failed_child_fails_its_parent_and_replaying_it_resumes_the_flow(conn: jqc.Connection) -> None:
    photos = conn.queue("photos")
    photos.add_flow(photo_flow())
    run_one(conn.queue("tags"), fail="no labels")
    parent = photos.get_job("pub-cat.jpg")
    assert parent is not None and parent.state is JobState.FAILED
    assert parent.failure_code is jqc.FailureCode.CHILD
    assert "tags/tag-cat.jpg" in (parent.failure_reason or "")
    assert photos.dead_letters().total == 1
    # the other branch goes on; its outcome is still recorded on the failed parent
    run_one(conn.queue("thumbs"), "t")
    run_one(conn.queue("resize"), "r")
    conn.queue("tags").replay_dead("tag-cat.jpg")
    assert state(conn, "photos", "pub-cat.jpg") == "waiting-children"
    assert photos.dead_letters().total == 0
    run_one(conn.queue("tags"), ["cat"])
    assert state(conn, "photos", "pub-cat.jpg") == "waiting"


@pytest.mark.parametrize("policy", [ChildPolicy.IGNORE, ChildPolicy.CONTINUE])
def test_a_failed_child_under_ignore_or_continue_lets_the_parent_run(conn: jqc.Connection, policy: ChildPolicy) -> None:
    flow = Flow("parent", children=[Flow("bad", queue="kids", on_failure=policy), Flow("good", queue="kids")])
    conn.queue("main").add_flow(flow)
    kids = conn.queue("kids")
    first = kids.claim("w").jobs[0]
    kids.fail(first, "boom", retry=False)
    run_one(kids, "ok")
    parent = conn.queue("main").claim("w").jobs[0]
    outcomes = {c.state: c for c in parent.job.children}
    assert outcomes["failed"].failure == "boom" and outcomes["failed"].policy is policy
    assert outcomes["completed"].result == "ok"


def test_a_stalled_child_failing_for_good_follows_the_policy(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    conn.queue("main").add_flow(Flow("parent", children=[Flow("child", queue="kids")]))
    kids = conn.queue("kids")
    kids.claim("w", lock=1.0)
    clock.advance(5)
    assert kids.recover_stalled(max_stalls=0).failed
    assert state(conn, "main", conn.queue("main").list_jobs("failed").jobs[0].id) == "failed"


def test_removing_a_parent_with_children_removes_the_pending_ones(conn: jqc.Connection) -> None:
    photos = conn.queue("photos")
    photos.add_flow(photo_flow())
    run_one(conn.queue("tags"), "done")
    removed = photos.remove("pub-cat.jpg", children=True)
    assert sorted(removed) == ["photos/pub-cat.jpg", "resize/resize-cat.jpg", "thumbs/thumb-cat.jpg"]
    assert conn.queue("tags").get_job("tag-cat.jpg") is not None  # finished jobs stay
    assert photos.counts().waiting_children == 0 and conn.queue("thumbs").counts().waiting == 0


def test_obliterating_a_queue_with_flow_members_is_refused_unless_forced(conn: jqc.Connection) -> None:
    photos = conn.queue("photos")
    photos.add_flow(photo_flow())
    with pytest.raises(jqc.JobStateError, match="flow members"):
        photos.obliterate()
    assert photos.obliterate(force=True) >= 1
    assert not photos.exists()


def test_bad_flows_write_nothing(conn: jqc.Connection) -> None:
    photos = conn.queue("photos")
    with pytest.raises(jqc.InvalidQueueNameError):
        photos.add_flow(Flow("p", children=[Flow("c", queue="bad queue!")]))
    with pytest.raises(jqc.InvalidOptionError):
        photos.add_flow(Flow("p", children=[Flow("c", options=JobOptions(delay=5))]))
    with pytest.raises(jqc.InvalidOptionError):
        photos.add_flow(Flow("p", children=[Flow("c", on_failure="explode")]))
    same = JobOptions(job_id="x")
    with pytest.raises(jqc.InvalidOptionError, match="twice"):
        photos.add_flow(Flow("p", children=[Flow("c", options=same), Flow("d", options=same)]))
    with pytest.raises(jqc.InvalidOptionError):
        photos.add_flow("not a flow")  # type: ignore[arg-type]
    assert not photos.exists()


def test_replaying_one_of_two_failed_children_keeps_the_parent_failed_by_the_other(conn: jqc.Connection) -> None:
    main, kids = conn.queue("main"), conn.queue("kids")
    main.add_flow(
        Flow("parent", options=JobOptions(job_id="p"), children=[Flow("a", queue="kids"), Flow("b", queue="kids")])
    )
    first, second = kids.claim("w", count=2).jobs
    kids.fail(first, "first", retry=False)
    kids.fail(second, "second", retry=False)
    parent = main.get_job("p")
    assert parent is not None and parent.state is JobState.FAILED and "first" in (parent.failure_reason or "")
    kids.replay_dead(first.id)
    parent = main.get_job("p")
    assert parent is not None and parent.state is JobState.FAILED and "second" in (parent.failure_reason or "")
    kids.replay_dead(second.id)
    assert state(conn, "main", "p") == "waiting-children"
    run_one(kids, 1)
    run_one(kids, 2)
    assert state(conn, "main", "p") == "waiting"


def test_replaying_an_ignored_child_after_its_parent_ran_leaves_the_parent_as_it_ran(conn: jqc.Connection) -> None:
    main, kids = conn.queue("main"), conn.queue("kids")
    main.add_flow(
        Flow("parent", options=JobOptions(job_id="p"), children=[Flow("a", queue="kids", on_failure="ignore")])
    )
    run_one(kids, fail="boom")
    run_one(main, "ran")
    kids.replay_dead(kids.dead_letters().letters[0].job.id)
    parent = main.get_job("p")
    assert parent is not None and parent.state is JobState.COMPLETED
    assert [c.state for c in parent.children] == ["failed"]  # the outcome it ran with
