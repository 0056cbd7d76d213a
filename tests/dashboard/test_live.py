"""Live updates without a browser, on both backends: the hub reads each queue's event stream once
for every subscriber, a live stream renders once when it starts and again after events (gathered,
not one render per event), and the readers stop when the last page leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import jqc
from jqc.dashboard.live import Hub, sse_message, stream
from jqc.engine.results import Event


async def next_message(body: AsyncIterator[str]) -> str:
    return await asyncio.wait_for(body.__anext__(), 10)


async def test_a_live_stream_renders_at_once_then_after_events(conn: jqc.Connection) -> None:
    queue = conn.async_queue("photos")
    await queue.add("before")
    hub = Hub(conn, block=0.2)
    calls: list[tuple[set[str], list[str] | None]] = []

    async def render(changed: set[str], events: list[Event] | None) -> list[tuple[str, str]]:
        calls.append((changed, None if events is None else [e.name for e in events]))
        counts = await queue.counts()
        return [("counts", f"<b>{counts.waiting}</b>\n<i>waiting</i>")]

    body = stream(hub, ["photos"], render, coalesce=0.1, keepalive=5)
    assert await next_message(body) == ": live\n\n"
    assert await next_message(body) == "event: counts\ndata: <b>1</b>\ndata: <i>waiting</i>\n\n"
    assert hub.watched == ["photos"]
    for _ in range(3):
        await queue.add("after")
    assert await next_message(body) == sse_message("counts", "<b>4</b>\n<i>waiting</i>")
    assert calls[0] == ({"photos"}, None)
    assert len(calls) == 2 and calls[1][0] == {"photos"} and set(calls[1][1] or []) == {"added"}
    await body.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    assert hub.watched == []  # the last page left: its reader stopped
    await conn.aclose()


async def test_one_reader_per_queue_feeds_every_subscriber(conn: jqc.Connection) -> None:
    queue = conn.async_queue("photos")
    hub = Hub(conn, block=0.2)
    async with hub.subscribe(["photos", "photos"]) as first, hub.subscribe(["photos", "mail"]) as second:
        assert hub.watched == ["mail", "photos"]
        job = await queue.add("x")
        for inbox in (first, second):
            name, events = await asyncio.wait_for(inbox.get(), 10)
            assert name == "photos" and [(e.name, e.job_id) for e in events] == [("added", job.id)]
        assert first.empty()  # one queue named twice: one delivery
    assert hub.watched == []
    await conn.aclose()
