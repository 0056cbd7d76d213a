"""Connections: the embedded fakeredis+Lua backend (the default) or a real Redis server.

``connect()`` with no URL (or ``memory://``) starts one in-process fakeredis server with Lua; every
sync and asyncio client made from that connection shares it. ``redis://``, ``rediss://`` and
``unix://`` URLs reach a real server; credentials and TLS settings come from the URL, never from
code, and are never logged (:attr:`Connection.safe_url`).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from jqc.clock import Clock, SystemClock
from jqc.errors import BackendError, InvalidOptionError, MissingDependencyError

if TYPE_CHECKING:
    from jqc.engine.queue import AsyncQueue, Queue

__all__ = ["Connection", "connect"]

_SCHEMES = ("redis", "rediss", "unix")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class Connection:
    """A handle on one Redis (real or embedded) plus the clock and key prefix jqc uses with it."""

    def __init__(
        self, url: str | None, *, clock: Clock | None = None, prefix: str = "jqc", **client_options: Any
    ) -> None:
        self.url = url or "memory://"
        scheme = urlsplit(self.url).scheme
        if scheme not in (*_SCHEMES, "memory"):
            raise InvalidOptionError(
                f"unsupported URL scheme {scheme!r}: use redis://, rediss://, unix:// or memory://"
            )
        self.embedded = scheme == "memory"
        self.clock: Clock = clock or SystemClock()
        self.prefix = prefix
        self._options = client_options
        self._sync: Any = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sync_clients: list[Any] = []
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._server: Any = None
        if self.embedded:
            try:
                import fakeredis  # noqa: F401
                import lupa  # noqa: F401  (fakeredis needs it to run Lua)
            except ImportError as exc:  # pragma: no cover - both are dependencies of jqc
                raise MissingDependencyError("the embedded backend needs: pip install 'fakeredis[lua]'") from exc
            from jqc.engine.embedded_lua import new_server

            self._server = new_server()  # compiles each script once instead of on every call

    @property
    def safe_url(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:
        return f"Connection({self.safe_url!r})"

    def sync_client(self) -> Any:
        """The sync client of the calling thread.

        On a real server each thread gets a client with one dedicated connection: a connection
        pool's checkout and return cost about as much as a Redis round trip itself, and a sync
        call never needs more than one connection. The embedded backend has one shared client.
        """
        if self.embedded:
            if self._sync is None:
                import fakeredis

                self._sync = fakeredis.FakeRedis(server=self._server, decode_responses=True)
            return self._sync
        client = getattr(self._local, "client", None)
        if client is None:
            import redis

            try:
                client = redis.Redis.from_url(
                    self.url, decode_responses=True, single_connection_client=True, **self._options
                )
            except (redis.RedisError, OSError) as exc:  # it connects at once
                raise BackendError(f"cannot reach Redis at {self.safe_url}: {exc}") from exc
            self._local.client = client
            with self._lock:
                self._sync_clients.append(client)
        return client

    def engine_client(self) -> Any:
        """The client the sync engine path runs scripts on, for the calling thread.

        On a real server this is a minimal hiredis-based client (:mod:`jqc.engine.resp`) with one
        connection per thread; on the embedded backend it is the shared fakeredis client.
        """
        if self.embedded:
            return self.sync_client()
        client = getattr(self._local, "engine", None)
        if client is None:
            from jqc.engine.resp import RespClient

            client = RespClient(
                self.url,
                socket_timeout=self._options.get("socket_timeout"),
                socket_connect_timeout=self._options.get("socket_connect_timeout"),
            )
            self._local.engine = client
            with self._lock:
                self._sync_clients.append(client)
        return client

    def async_client(self) -> Any:
        """The asyncio client of the running event loop (one per loop, made on first use)."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            if self.embedded:
                import fakeredis

                client = fakeredis.FakeAsyncRedis(server=self._server, decode_responses=True)
            else:
                import redis.asyncio

                # No read timeout by default (as for sync clients): a blocking XREAD may wait longer
                # than redis-py's asyncio default of 5 s.
                options = {"max_connections": 1000, "socket_timeout": None, **self._options}
                client = redis.asyncio.Redis.from_url(self.url, decode_responses=True, **options)
            self._async[loop] = client
        return client

    def queue(self, name: str, **options: Any) -> Queue:
        from jqc.engine.queue import Queue

        return Queue(name, self, **options)

    def async_queue(self, name: str, **options: Any) -> AsyncQueue:
        from jqc.engine.queue import AsyncQueue

        return AsyncQueue(name, self, **options)

    def queue_names(self) -> list[str]:
        """Names of every queue under this connection's prefix, found with SCAN (never KEYS)."""
        from jqc.engine.keys import meta_scan_pattern

        start = len(self.prefix) + 2
        names = {
            key[start : key.index("}", start)]
            for key in self.sync_client().scan_iter(match=meta_scan_pattern(self.prefix), count=1000)
        }
        return sorted(names)

    def ping(self) -> bool:
        return bool(self.sync_client().ping())

    def close(self) -> None:
        """Close every sync client made by this connection (async ones close with aclose)."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        with self._lock:
            clients, self._sync_clients = self._sync_clients, []
        for client in clients:
            client.close()
        self._local = threading.local()

    async def aclose(self) -> None:
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def connect(
    url: str | None = None, *, clock: Clock | None = None, prefix: str = "jqc", **client_options: Any
) -> Connection:
    """Open a connection: embedded when ``url`` is None or ``memory://``, else a real Redis."""
    return Connection(url, clock=clock, prefix=prefix, **client_options)
