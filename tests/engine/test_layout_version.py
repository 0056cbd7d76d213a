"""Data an older jqc wrote (a hash per job) is refused with LayoutVersionError, never misread.

Before every key was declared, a job lived in its own hash ``P:{Q}:j:<id>`` and the queue's meta
hash had no layout version (``v`` was absent, or ``1`` when written by a custom-id add). Read as
the new layout, such a queue's waiting ids have no records in ``P:{Q}:jobs``: a claim would take
them for orphans and drop them. Every script that reads jobs checks ``meta.v`` first.
"""

from __future__ import annotations

import pytest

import jqc
from jqc.coordinator import doctor
from jqc.engine.keys import LAYOUT_VERSION


def write_old_layout(conn: jqc.Connection, queue: jqc.Queue, version: str | None) -> None:
    """One waiting job as jqc wrote it before layout 2."""
    keys = queue.ops.keys
    client = conn.sync_client()
    meta: dict[str, str] = {"id": "1"}
    if version is not None:
        meta["v"] = version
    client.hset(keys.meta, mapping=meta)
    client.hset(keys.key("j:1"), mapping={"n": "old", "d": "{}", "t": "1700000000000"})
    client.lpush(keys.key("wait"), "1")


@pytest.mark.parametrize("version", [None, "1"], ids=["no-version", "version-1"])
def test_every_job_operation_refuses_the_old_layout(
    conn: jqc.Connection, queue: jqc.Queue, version: str | None
) -> None:
    write_old_layout(conn, queue, version)
    for operation in (
        lambda: queue.claim("w"),
        lambda: queue.add("new"),
        lambda: queue.get_job("1"),
        lambda: queue.remove("1"),
        lambda: queue.promote("1"),
        lambda: queue.list_jobs("waiting"),
        lambda: queue.pause(),
        lambda: queue.configure(concurrency=2),
        lambda: queue.recover_stalled(),
        lambda: queue.drain(),
    ):
        with pytest.raises(jqc.LayoutVersionError, match=f"layout {version or '1'}.*reads layout {LAYOUT_VERSION}"):
            operation()
    # nothing was taken or changed: the old job still waits in the old layout
    client = conn.sync_client()
    assert client.lrange(queue.ops.keys.key("wait"), 0, -1) == ["1"]
    assert client.hget(queue.ops.keys.key("j:1"), "n") == "old"
    assert not client.exists(queue.ops.keys.jobs)


def test_obliterate_clears_an_old_queue_and_it_starts_afresh(conn: jqc.Connection, queue: jqc.Queue) -> None:
    write_old_layout(conn, queue, None)
    queue.obliterate()
    assert not conn.sync_client().exists(queue.ops.keys.key("j:1"))
    job = queue.add("new")
    assert queue.claim("w").jobs[0].job.id == job.id


def test_a_new_queue_is_marked_with_the_layout_by_whatever_creates_it(conn: jqc.Connection) -> None:
    client = conn.sync_client()
    for name, create in (
        ("added", lambda q: q.add("x", job_id="custom")),
        ("auto", lambda q: q.add("x")),
        ("paused", lambda q: q.pause()),
        ("configured", lambda q: q.configure(concurrency=3)),
        ("scheduled", lambda q: q.schedule("tick", every=60)),
    ):
        queue = conn.queue(name)
        create(queue)
        assert client.hget(queue.ops.keys.meta, "v") == str(LAYOUT_VERSION), name
        queue.add("later")  # the mark is what lets every later operation through
        assert queue.claim("w").status == jqc.Code.OK or name == "paused"


def test_the_doctor_names_queues_in_an_older_layout(conn: jqc.Connection) -> None:
    conn.queue("fine").add("x")
    write_old_layout(conn, conn.queue("legacy"), None)
    findings = {f.check: f for f in doctor.run(conn).findings}
    assert findings["layout"].level == doctor.Level.FAIL and "legacy" in findings["layout"].message
    assert "fine" not in findings["layout"].message
    one = {f.check: f for f in doctor.run(conn, queue="fine").findings}
    assert one["layout"].level == doctor.Level.OK
