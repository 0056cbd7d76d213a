"""A fault-injecting TCP proxy for tests with real processes (not a test module).

:class:`FaultProxy` listens on a free port of 127.0.0.1 and forwards every connection to one
upstream server (a real Redis), on an asyncio event loop of its own in a background thread. The
test process calls its methods from any thread to break the network the way real networks break:

* :meth:`reset`: every open connection is torn down with a TCP reset (the peer sees "connection
  reset by peer" on its next read or write); new connections work at once.
* :meth:`blackhole`: nothing moves any more on any connection, open or new: bytes are held, as a
  partition holds packets, until :meth:`heal` lets them through (TCP retransmits, so a partition
  that heals in time loses nothing: a command sent into it may still reach the server late).
* :meth:`half_open`: the connections open now go silent for good, as after a NAT, conntrack or
  firewall state loss: their sockets stay open, bytes sent either way are dropped, and neither
  side is told anything (no FIN, no RST). New connections work normally.

:meth:`heal` ends a blackhole; connections made silent by :meth:`half_open` stay silent.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["FaultProxy"]

T = TypeVar("T")

_CHUNK = 65536


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side, the upstream side, and whether it went silent."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    silent: bool = False  # half-open: forward nothing, tell nobody
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        """Close both sides at once; the client's with a TCP reset."""
        sock = self.client.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.client.transport.abort()
        if self.upstream is not None:
            self.upstream.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """A TCP proxy from ``127.0.0.1:port`` to ``upstream_host:upstream_port`` that injects faults."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self.accepted = 0  # connections accepted so far
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._accepting: set[asyncio.Task[Any]] = set()

    # -- control (any thread) ------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start listening; returns self (``port`` is set)."""
        self._thread.start()
        self._call(self._listen)
        return self

    def url(self, db: int = 0) -> str:
        """A ``redis://`` URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def open_connections(self) -> int:
        return self._call(self._count)

    def reset(self) -> int:
        """Reset every open connection; returns how many."""
        return self._call(self._reset)

    def blackhole(self) -> None:
        """Hold every byte on every connection, open or new, until :meth:`heal`."""
        self._call(self._set_flowing, False)

    def heal(self) -> None:
        """End a blackhole: held bytes go through (silent connections stay silent)."""
        self._call(self._set_flowing, True)

    def half_open(self) -> int:
        """Make every open connection silent for good; returns how many."""
        return self._call(self._silence)

    def stop(self) -> None:
        """Close every connection and the listener, and end the proxy's thread."""
        if self._thread.is_alive():
            self._call(self._close)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result(30)

    # -- on the proxy's loop -------------------------------------------------------------------

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _count(self) -> int:
        return len(self._links)

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _reset(self) -> int:
        links = list(self._links)
        for link in links:
            link.abort()
        self._links.difference_update(links)
        return len(links)

    async def _silence(self) -> int:
        for link in self._links:
            link.silent = True
        return len(self._links)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset()
        if self._accepting:  # each ends once its pumps are cancelled
            await asyncio.wait(set(self._accepting), timeout=10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._accepting.add(task)
        task.add_done_callback(self._accepting.discard)
        link = _Link(writer)
        self._links.add(link)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            link.abort()
            self._links.discard(link)
            return
        link.upstream = up_writer
        link.tasks = [
            asyncio.ensure_future(self._pump(link, reader, up_writer, towards_client=False)),
            asyncio.ensure_future(self._pump(link, up_reader, writer, towards_client=True)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        self._links.discard(link)
        link.abort()

    async def _pump(
        self, link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, towards_client: bool
    ) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await source.read(_CHUNK)
                if not data:
                    break
                if link.silent:
                    continue
                await self._flowing.wait()
                if link.silent:
                    continue
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        # The source closed. A silent link tells the other side nothing: the client only ever
        # finds out by its own deadlines (its side is closed when the client closes it).
        if link.silent and towards_client:
            await asyncio.Event().wait()
        if not link.silent:
            await self._flowing.wait()
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
