"""Connections for tests: the embedded backend, or a real Redis server shared safely with others.

On a real server every connection gets a key prefix of its own (``jqctest-<random>``), so tests
running at the same time, or other people's data in the same database, are never touched; when the
test ends, the prefix's keys are found with SCAN and deleted. Nothing ever runs FLUSHDB.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from jqc.clock import Clock, VirtualClock
from jqc.connection import Connection, connect, redact
from jqc.engine.replies import as_int

__all__ = ["Backend", "temporary_connection"]

_DELETE_BATCH = 500


class Backend:
    """Where test connections go: ``url`` (a real server) or, when None, the embedded backend."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or None
        if self.url is not None and self.url.startswith("memory://"):
            self.url = None
        self._problem: str | None = None
        self._checked = False

    @property
    def embedded(self) -> bool:
        return self.url is None

    def describe(self) -> str:
        return "the embedded backend" if self.url is None else f"Redis at {redact(self.url)}"

    def problem(self) -> str | None:
        """Why the server cannot be used (checked once), or None when it answers."""
        if self.url is None:
            return None
        if not self._checked:
            self._checked = True
            probe = connect(self.url, socket_connect_timeout=2, socket_timeout=5)
            try:
                probe.ping()
            except Exception as exc:
                self._problem = f"jqc: {self.describe()} does not answer: {exc}"
            finally:
                probe.close()
        return self._problem

    def open(self, clock: Clock | None = None) -> Connection:
        """A new connection on its own key prefix (a new embedded server when there is no URL)."""
        prefix = f"jqctest-{uuid.uuid4().hex[:12]}"
        if self.url is None:
            return connect(clock=clock, prefix=prefix)
        return connect(self.url, clock=clock, prefix=prefix, socket_connect_timeout=5)

    def close(self, connection: Connection) -> None:
        """Delete the connection's keys (real server) and close its clients."""
        try:
            if not connection.in_process:
                delete_prefix(connection)
        finally:
            close_quietly(connection)


def delete_prefix(connection: Connection) -> int:
    """Delete every key under the connection's prefix (SCAN, then UNLINK in batches); returns how many."""
    backend = connection.backend
    deleted = 0
    batch: list[str] = []
    for key in backend.scan(f"{_glob_escape(connection.prefix)}:*", count=1000):
        batch.append(key)
        if len(batch) >= _DELETE_BATCH:
            deleted += as_int(backend.run_command("UNLINK", *batch))
            batch.clear()
    if batch:
        deleted += as_int(backend.run_command("UNLINK", *batch))
    return deleted


def close_async_clients(connection: Connection) -> None:
    """Close the connection's asyncio backends whose event loop is open but idle (between an async
    test's call and its loop's end), so their sockets do not outlive the loop."""
    for loop, backend in connection.async_backends().items():
        if loop.is_running():
            continue
        if not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.run_until_complete(backend.aclose())
        connection.forget_async_backend(loop)


def close_quietly(connection: Connection) -> None:
    """Close a connection's sync clients and the asyncio clients of loops that can still run them."""
    close_async_clients(connection)
    connection.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


@contextlib.contextmanager
def temporary_connection(url: str | None = None, *, clock: Clock | None = None) -> Iterator[Connection]:
    """A connection for one test, outside pytest: embedded when ``url`` is None, else on a real
    server under a key prefix of its own, whose keys are deleted on exit. ``clock`` defaults to a
    new :class:`jqc.VirtualClock`."""
    backend = Backend(url)
    connection = backend.open(clock if clock is not None else VirtualClock())
    try:
        yield connection
    finally:
        backend.close(connection)
