"""What the event stream carries for listeners: the job name on ``added``, a bounded result on
``completed``, a producer's own events, trimming by hand, and listening loops (sync and async)
that miss nothing between reads. Every backend."""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path

import pytest

import jqc
from jqc.engine.results import ENGINE_EVENTS, EVENT_RESULT_MAX
from tests.engine.test_lifecycle import claim_one

LUA = Path(jqc.__file__).parent / "engine" / "lua"


def test_added_carries_the_job_name(queue: jqc.Queue) -> None:
    now, later = queue.add("resize", 1), queue.add("email", 2, delay=5)
    added = {e.job_id: e for e in queue.events() if e.name == "added"}
    assert (added[now.id].job_name, added[later.id].job_name) == ("resize", "email")
    queue.add_bulk([("a", 1), ("b", 2)])
    assert [e.job_name for e in queue.events() if e.name == "added"][-2:] == ["a", "b"]


def test_completed_carries_a_small_result_and_not_a_large_one(conn: jqc.Connection) -> None:
    queue = conn.queue("photos", max_data_bytes=64 * 1024)
    small, big = queue.add("x"), queue.add("x")
    queue.complete(claim_one(queue), {"url": "s3://a.jpg"})
    queue.complete(claim_one(queue), "x" * EVENT_RESULT_MAX)  # encoded with quotes: over the cap
    done = {e.job_id: e for e in queue.events() if e.name == "completed"}
    assert done[small.id].has_result and done[small.id].result == {"url": "s3://a.jpg"}
    assert not done[big.id].has_result and done[big.id].result is None
    assert queue.get_job(big.id).result == "x" * EVENT_RESULT_MAX  # type: ignore[union-attr]


def test_the_result_cap_is_the_same_in_lua_and_python() -> None:
    found = re.search(r"EVENT_RESULT_MAX = (\d+)", (LUA / "include" / "complete.lua").read_text())
    assert found and int(found.group(1)) == EVENT_RESULT_MAX


def test_every_event_a_script_writes_is_reserved() -> None:
    names = {m for p in LUA.rglob("*.lua") for m in re.findall(r"emit\('([a-z_]+)'", p.read_text())}
    assert names and names <= ENGINE_EVENTS


def test_a_producer_publishes_its_own_events(queue: jqc.Queue) -> None:
    job = queue.add("render")
    entry = queue.publish("render.preview", {"url": "https://x/1.png"}, job_id=job.id)
    event = queue.events()[-1]
    assert (event.id, event.name, event.job_id, event.fields["url"]) == (
        entry,
        "render.preview",
        job.id,
        "https://x/1.png",
    )
    assert event.at == queue.clock.now()
    queue.publish("deploy-finished")
    assert queue.events()[-1].job_id == ""


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("completed", None),
        ("", None),
        ("1st", None),
        ("a b", None),
        ("x", {"e": "y"}),
        ("x", {"k": 1}),
        ("x", {"": "v"}),
    ],
)
def test_bad_custom_events_are_refused(queue: jqc.Queue, name: str, fields: object) -> None:
    before = len(queue.events())
    with pytest.raises(jqc.InvalidOptionError):
        queue.publish(name, fields)  # type: ignore[arg-type]
    assert len(queue.events()) == before


def test_a_queue_without_events_refuses_to_publish(conn: jqc.Connection) -> None:
    with pytest.raises(jqc.InvalidOptionError, match="events_max_len=0"):
        conn.queue("photos", events_max_len=0).publish("hello")


def test_trimming_by_hand(queue: jqc.Queue) -> None:
    for i in range(10):
        queue.add("x", i)
    assert queue.trim_events(3) == 7
    assert [e.name for e in queue.events()] == ["added"] * 3
    assert queue.trim_events() == 3 and queue.events() == []
    with pytest.raises(jqc.InvalidOptionError):
        queue.trim_events(-1)


def test_listen_misses_nothing_written_between_reads(queue: jqc.Queue) -> None:
    queue.add("old")
    stream = queue.listen(queue.events()[-1].id, block=0.05)
    queue.add("a")
    first = next(stream)
    queue.publish("note", {"k": "v"})  # written while the listener is not reading
    queue.add("b")
    seen = [first, *itertools.islice(stream, 2)]
    assert [(e.name, e.job_name) for e in seen] == [("added", "a"), ("note", None), ("added", "b")]


def test_listen_from_now_sees_only_new_events(queue: jqc.Queue) -> None:
    queue.add("old")
    later = threading.Timer(0.3, lambda: queue.add("new"))  # real time: while the listener blocks
    later.start()
    try:
        event = next(queue.listen(block=0.1))
    finally:
        later.join(10)
    assert (event.name, event.job_name) == ("added", "new")


def test_listen_from_the_start(queue: jqc.Queue) -> None:
    job = queue.add("x")
    assert next(queue.listen("0", block=0.05)).job_id == job.id


async def test_async_listen_and_publish(aqueue: jqc.AsyncQueue) -> None:
    await aqueue.add("old")
    listener = aqueue.listen((await aqueue.events())[-1].id, block=0.05)
    first = await aqueue.add("a")
    await aqueue.publish("custom", {"n": "1"})
    got = [await anext(listener), await anext(listener)]
    assert [(e.name, e.job_id) for e in got] == [("added", first.id), ("custom", "")]
    assert await aqueue.trim_events(1) == 2  # of old, a, custom
