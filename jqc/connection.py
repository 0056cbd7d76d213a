"""Connections: the embedded fakeredis+Lua backend (the default) or a real Redis server.

``connect()`` with no URL (or ``memory://``) starts one in-process fakeredis server with Lua; every
sync and asyncio backend made from that connection shares it. ``redis://``, ``rediss://`` and
``unix://`` URLs reach a real server (see :mod:`jqc.backends.url` for the options and their
defaults), ``redis+cluster://`` a Redis Cluster and ``redis+sentinel://`` a Sentinel-managed master
(see :mod:`jqc.backends.topology_url`); credentials and TLS settings come from the URL or
:func:`connect`'s arguments, never from jqc's code, and are never logged (:attr:`Connection.safe_url`).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Callable
from typing import Any, Self

from jqc.backends import BackendFactory, open_factory, parse_url, redact
from jqc.backends.base import AsyncBackend, SyncBackend
from jqc.clock import Clock, SystemClock
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.host import Host
from jqc.engine.keys import meta_scan_pattern
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError

__all__ = ["Connection", "connect", "redact"]


# Braces would move the hash tag; glob characters would make SCAN patterns built from the prefix
# (queue discovery, obliterate's sweep) match other prefixes' keys; control characters have no place.
_BAD_PREFIX = re.compile(r"[{}*?\[\]\\\x00-\x1f\x7f]")


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix or len(prefix) > 100 or _BAD_PREFIX.search(prefix):
        raise InvalidOptionError(
            f"prefix must be a non-empty str of at most 100 characters without braces, glob characters "
            f"(* ? [ ] \\) or control characters, not {prefix!r}"
        )
    return prefix


class Connection(Host):
    """A handle on one Redis deployment (embedded or real) plus the clock and key prefix jqc uses with it.

    Make one with :func:`connect`. It is cheap to keep and safe to share between threads: the sync
    backend keeps one connection per thread, and each asyncio event loop gets its own backend
    (closed with :meth:`aclose` from that loop).
    """

    def __init__(
        self, url: str | None = None, *, clock: Clock | None = None, prefix: str = "jqc", **client_options: object
    ) -> None:
        factory = open_factory(parse_url(url, client_options))
        self._setup(factory, clock, prefix, factory.async_backend)

    @classmethod
    def over(
        cls,
        factory: BackendFactory,
        *,
        clock: Clock | None = None,
        prefix: str = "jqc",
        make_async: Callable[[], AsyncBackend] | None = None,
    ) -> Self:
        """A connection on an existing backend factory (to share an embedded server, or to wrap the
        asyncio backends, as :mod:`jqc.testing` does to inject faults)."""
        conn = cls.__new__(cls)
        conn._setup(factory, clock, prefix, make_async or factory.async_backend)
        return conn

    def _setup(
        self, factory: BackendFactory, clock: Clock | None, prefix: str, make_async: Callable[[], AsyncBackend]
    ) -> None:
        self.factory = factory
        self.clock = clock or SystemClock()
        self.prefix = _check_prefix(prefix)
        self._make_async = make_async
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncBackend] = weakref.WeakKeyDictionary()

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced by ``***``: safe to print and log."""
        return self.factory.safe_url

    @property
    def kind(self) -> str:
        """What the backend is: ``"embedded"``, ``"redis"`` (one server), ``"cluster"`` or ``"sentinel"``."""
        return self.factory.kind

    @property
    def in_process(self) -> bool:
        """True when the data lives in this process only (the embedded backend)."""
        return self.factory.in_process

    @property
    def embedded(self) -> bool:
        """True for the embedded backend (same as :attr:`in_process`)."""
        return self.factory.in_process

    def __repr__(self) -> str:
        return f"Connection({self.safe_url!r})"

    @property
    def backend(self) -> SyncBackend:
        """The backend synchronous calls go through."""
        return self.factory.sync_backend()

    def async_backend(self) -> AsyncBackend:
        """The asyncio backend of the running event loop (one per loop, made on first use)."""
        loop = asyncio.get_running_loop()
        backend = self._async.get(loop)
        if backend is None:
            backend = self._async[loop] = self._make_async()
        return backend

    def async_backends(self) -> dict[asyncio.AbstractEventLoop, AsyncBackend]:
        """The asyncio backends made so far, by event loop (to close them from their loops)."""
        return dict(self._async.items())

    def forget_async_backend(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drop the backend of ``loop`` (after closing it) so a later call there makes a new one."""
        self._async.pop(loop, None)

    def sync_client(self) -> Any:
        """A redis-py client of the same deployment, for commands jqc does not wrap.

        jqc's own calls never go through it; use it for administration and inspection. On the
        embedded backend it is a fakeredis client of the connection's in-process server.
        """
        return self.factory.native_client()

    def queue(self, name: str, **options: Any) -> Queue:
        """The queue ``name`` for synchronous code (see :class:`jqc.Queue` for the options)."""
        return Queue(name, self, **options)

    def async_queue(self, name: str, **options: Any) -> AsyncQueue:
        """The queue ``name`` for asyncio code (see :class:`jqc.AsyncQueue`)."""
        return AsyncQueue(name, self, **options)

    def queue_names(self) -> list[str]:
        """Names of every queue under this connection's prefix, found with SCAN (never KEYS)."""
        start = len(self.prefix) + 2
        names = {key[start : key.index("}", start)] for key in self.backend.scan(meta_scan_pattern(self.prefix))}
        return sorted(names)

    def ping(self) -> bool:
        """True when the server answers (raises :class:`jqc.BackendError` when it cannot be reached)."""
        return self.backend.run_command("PING") == "PONG"

    def close(self) -> None:
        """Close every sync connection made by this connection (asyncio ones close with :meth:`aclose`)."""
        self.factory.close()

    async def aclose(self) -> None:
        """Close the asyncio backend of the running event loop."""
        backend = self._async.pop(asyncio.get_running_loop(), None)
        if backend is not None:
            await backend.aclose()


def connect(
    url: str | None = None, *, clock: Clock | None = None, prefix: str = "jqc", **client_options: object
) -> Connection:
    """Open a connection: embedded when ``url`` is None or ``memory://``, else a real Redis.

    Malformed URLs and options raise :class:`jqc.InvalidUrlError` at once; the server itself is
    reached on the first call.
    """
    return Connection(url, clock=clock, prefix=prefix, **client_options)
