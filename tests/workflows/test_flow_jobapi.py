"""Flows and the job API of issue 22 on every backend: a cancelled child is a failed child for its
parent's ``on_failure`` policy (whether it was running or had not started), a parent waiting for
its children cannot be cancelled, a child failed through ``fail_and_fetch`` tells its parent, and
deduplication is refused inside a flow."""

from __future__ import annotations

import pytest

import jqc
from jqc import ChildPolicy, Dedup, Flow, JobOptions, JobState
from tests.conftest import ALL_BACKENDS
from tests.workflows.flowkit import photo_flow, run_one, state


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Flows span queues (slots on a Redis Cluster): every test runs on every backend."""
    kind: str = request.param
    return kind


def _two_children(conn: jqc.Connection, policy: ChildPolicy = ChildPolicy.FAIL) -> tuple[jqc.Queue, jqc.Queue]:
    flow = Flow(
        "parent",
        children=[
            Flow("first", queue="kids", on_failure=policy, options=JobOptions(job_id="first")),
            Flow("second", queue="kids", options=JobOptions(job_id="second")),
        ],
        options=JobOptions(job_id="root"),
    )
    conn.queue("main").add_flow(flow)
    return conn.queue("main"), conn.queue("kids")


@pytest.mark.parametrize("report", ["complete", "fail_and_fetch"])
def test_cancelling_a_running_child_fails_its_parent(conn: jqc.Connection, report: str) -> None:
    main, kids = _two_children(conn)
    held = kids.claim("w").jobs[0]
    assert held.id == "first"
    assert kids.cancel("first", "user gave up") == "marked"
    if report == "complete":  # the handler finished anyway: a marked job still ends cancelled
        kids.complete(held, "too late")
    else:
        assert kids.fail_and_fetch(held, "stopped", worker="w", fetch_next=0).verdict == "failed"
    child = kids.get_job("first")
    assert child is not None and child.state is JobState.FAILED
    assert child.failure_code is jqc.FailureCode.CANCELLED
    parent = main.get_job("root")
    assert parent is not None and parent.state is JobState.FAILED
    assert parent.failure_code is jqc.FailureCode.CHILD
    assert "kids/first" in (parent.failure_reason or "")


def test_a_child_failed_for_good_through_fail_and_fetch_tells_its_parent(conn: jqc.Connection) -> None:
    _main, kids = _two_children(conn)
    held = kids.claim("w").jobs[0]
    result = kids.fail_and_fetch(held, "boom", worker="w", retry=False)
    assert result.verdict == "failed" and result.next is not None and result.next.jobs[0].id == "second"
    assert state(conn, "main", "root") == "failed"


def test_cancelling_a_waiting_child_fails_it_and_its_parent_under_fail(conn: jqc.Connection) -> None:
    _main, kids = _two_children(conn)
    assert kids.cancel("first", "not needed") == "failed"
    child = kids.get_job("first")
    assert child is not None and child.state is JobState.FAILED
    assert child.failure_code is jqc.FailureCode.CANCELLED and child.failure_reason == "cancelled: not needed"
    assert kids.dead_letters().total == 1
    assert kids.counts().waiting == 1  # only the other child waits now
    assert state(conn, "main", "root") == "failed"


def test_cancelling_a_waiting_child_under_continue_lets_the_parent_run(conn: jqc.Connection) -> None:
    main, kids = _two_children(conn, ChildPolicy.CONTINUE)
    assert kids.cancel("first") == "failed"
    assert state(conn, "main", "root") == "waiting-children"  # the other child is still pending
    run_one(kids, "ok")
    parent = main.claim("w").jobs[0]
    outcomes = {c.id: c for c in parent.job.children}
    assert outcomes["first"].state == "failed" and outcomes["first"].failure == "cancelled: cancelled"
    assert outcomes["second"].result == "ok"


def test_a_parent_waiting_for_its_children_cannot_be_cancelled(conn: jqc.Connection) -> None:
    photos = conn.queue("photos")
    photos.add_flow(photo_flow())
    with pytest.raises(jqc.JobStateError, match="flow children"):
        photos.cancel("pub-cat.jpg")
    assert state(conn, "photos", "pub-cat.jpg") == "waiting-children"
    assert photos.counts().waiting_children == 1
    with pytest.raises(jqc.JobStateError, match="flow children"):  # a parent in the middle too
        conn.queue("resize").cancel("resize-cat.jpg")
    assert state(conn, "resize", "resize-cat.jpg") == "waiting-children"


def test_deduplication_is_refused_inside_a_flow_and_writes_nothing(conn: jqc.Connection) -> None:
    main = conn.queue("main")
    child = Flow("child", queue="kids", options=JobOptions(dedup=Dedup("k")))
    with pytest.raises(jqc.InvalidOptionError, match="dedup"):
        main.add_flow(Flow("parent", children=[child]))
    assert not main.exists() and not conn.queue("kids").exists()


def test_a_cancelled_job_adds_no_children_and_ends_cancelled(conn: jqc.Connection) -> None:
    albums = conn.queue("albums")
    albums.add("album", job_id="a1")
    held = albums.claim("w").jobs[0]
    assert albums.cancel("a1", "stop") == "marked"
    with pytest.raises(jqc.JobStateError, match="cancelled"):
        albums.add_children(held, [Flow("resize", i, queue="resize") for i in range(3)])
    assert not conn.queue("resize").exists()  # nothing of the fan-out was written
    assert albums.fail(held, "handler stopped") == "failed"
    job = albums.get_job("a1")
    assert job is not None and job.failure_code is jqc.FailureCode.CANCELLED and job.children == ()
