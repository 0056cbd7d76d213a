"""Live pages: server-sent events fed by each queue's event stream.

One :class:`Hub` per dashboard app keeps one reader per watched queue (``XREAD BLOCK`` through
:meth:`jqc.AsyncQueue.events`), started when the first live page subscribes and stopped when the
last one leaves, and fans the events out to every subscriber. A page never polls the queue: it is
sent a fresh fragment (rendered from one counts read, or one job read) only after events of its
queue (or its job) arrived, at most once per ``coalesce`` seconds however busy the queue is.

The waits here are real time on purpose (a browser is waiting), like the event stream's block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from jqc.connection import Connection
from jqc.engine.results import Event

__all__ = ["Hub", "sse_message", "stream"]

log = logging.getLogger("jqc.dashboard")

Inbox = asyncio.Queue[tuple[str, list[Event]]]


@dataclass(eq=False)
class _Reader:
    task: asyncio.Task[None] | None = None
    inboxes: set[Inbox] = field(default_factory=set)
    placed: asyncio.Event = field(default_factory=asyncio.Event)  # it knows where in the stream it starts


class Hub:
    """One event-stream reader per queue and event loop, shared by every live page watching it."""

    def __init__(self, conn: Connection, *, block: float = 5.0, retry: float = 1.0) -> None:
        self.conn = conn
        self.block = block
        self.retry = retry
        self._readers: dict[tuple[asyncio.AbstractEventLoop, str], _Reader] = {}

    @property
    def watched(self) -> list[str]:
        """Queues that have a reader now."""
        return sorted({name for _, name in self._readers})

    @contextlib.asynccontextmanager
    async def subscribe(self, queues: Iterable[str]) -> AsyncIterator[Inbox]:
        """An inbox of (queue, events) for ``queues`` while the context lasts."""
        loop = asyncio.get_running_loop()
        inbox: Inbox = asyncio.Queue(maxsize=256)
        names = list(dict.fromkeys(queues))
        for name in names:
            reader = self._readers.get((loop, name))
            if reader is None:
                reader = self._readers[(loop, name)] = _Reader()
                reader.task = asyncio.create_task(self._read(name, reader))
            reader.inboxes.add(inbox)
        try:
            for name in names:  # from here on no event is missed: what the page shows next is fresh
                with contextlib.suppress(TimeoutError):  # a server that does not answer: go on, late
                    await asyncio.wait_for(self._readers[(loop, name)].placed.wait(), self.block + 5)
            yield inbox
        finally:
            for name in names:
                reader = self._readers.get((loop, name))
                if reader is None:
                    continue
                reader.inboxes.discard(inbox)
                if not reader.inboxes:
                    del self._readers[(loop, name)]
                    if reader.task is not None:
                        reader.task.cancel()

    async def _read(self, name: str, reader: _Reader) -> None:
        queue = self.conn.async_queue(name)
        last: str | None = None
        while True:
            try:
                if last is None:
                    newest = await queue.recent_events(1)
                    last = newest[0].id if newest else "0-0"
                    reader.placed.set()
                events = await queue.events(last, count=500, block=self.block)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server went away: say so once per retry, keep trying
                log.warning("dashboard: reading the events of %s failed (%s); retrying", name, exc)
                await asyncio.sleep(self.retry)
                continue
            if not events:
                continue
            last = events[-1].id
            for inbox in list(reader.inboxes):
                if inbox.full():
                    continue  # that page is behind: it gets the next batch, a fresh render anyway
                inbox.put_nowait((name, events))


def sse_message(event: str, html: str) -> str:
    """One server-sent event carrying an HTML fragment (one ``data:`` line per line of it)."""
    lines = html.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


Render = Callable[[set[str], list[Event] | None], Awaitable[list[tuple[str, str]]]]
"""``render(queues that changed, their events)``: the (event name, HTML) messages to send; events
None means "everything may have changed" (the first render, once the stream is watched)."""


async def stream(
    hub: Hub,
    queues: list[str],
    render: Render,
    *,
    coalesce: float = 0.25,
    keepalive: float = 15.0,
) -> AsyncIterator[str]:
    """The body of a live response: one render of everything once the streams are watched (so
    nothing that happened since the page was rendered is missed), then ``render(queues that changed,
    their events)`` after events arrive (gathered for ``coalesce`` seconds), and a comment every
    ``keepalive`` seconds otherwise."""
    async with hub.subscribe(queues) as inbox:
        yield ": live\n\n"
        for event, html in await render(set(queues), None):
            yield sse_message(event, html)
        while True:
            try:
                name, events = await asyncio.wait_for(inbox.get(), keepalive)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            changed, batch = {name}, list(events)
            await asyncio.sleep(coalesce)
            while not inbox.empty():
                name, events = inbox.get_nowait()
                changed.add(name)
                batch += events
            for event, html in await render(changed, batch):
                yield sse_message(event, html)
