"""The backend seam: the few things the engine asks of a Redis, typed once.

The engine builds every operation as data (a script with its declared keys and arguments, a plain
command, or a batch of scripts) and hands it to a backend. A backend runs it on one kind of Redis
and answers in one shape, whatever the kind: raw RESP2 replies (flat lists, no client-side
parsing) and jqc's typed errors (:mod:`jqc.errors`) for every refusal. Each backend comes as a
sync and an asyncio implementation of the protocols below, made by a :class:`BackendFactory`.

Batch semantics, the same on every backend: every call of a batch is sent and runs on its own,
atomically, in order; the batch answers one outcome per call (its reply, or its typed error). A
failing call never stops the others. When the connection breaks part-way, the calls whose replies
were read keep them and the rest answer :class:`jqc.ConnectionLostError` (they may have run).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from jqc.errors import JqcError

__all__ = [
    "Arg",
    "AsyncBackend",
    "BackendFactory",
    "Outcome",
    "Reply",
    "Script",
    "ScriptInvocation",
    "SyncBackend",
]

#: An argument of a command: Redis receives every one as a string.
Arg: TypeAlias = str | int | float
#: A raw RESP2 reply, decoded as UTF-8: a status or bulk string, an integer, nil, or an array.
Reply: TypeAlias = "str | int | list[Reply] | None"
#: What one call of a batch answered: its reply, or the typed error it failed with.
Outcome: TypeAlias = "Reply | JqcError"


@dataclass(frozen=True, slots=True)
class Script:
    """One atomic operation: its name, full Lua source and SHA1 (what EVALSHA calls)."""

    name: str
    source: str
    sha: str


@dataclass(frozen=True, slots=True)
class ScriptInvocation:
    """A script to run with its declared keys and its arguments."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[Arg, ...]


class SyncBackend(Protocol):
    """A Redis reached from synchronous code; safe to share between threads."""

    def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        """Run ``script`` atomically with its declared ``keys`` (loading it on first use)."""
        ...

    def run_command(self, *args: Arg) -> Reply:
        """Send one plain command (reads, stream reads, deletes) and return its raw reply."""
        ...

    def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        """Run several scripts in one round trip where the backend can; one outcome per call."""
        ...

    def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        """Send a command that blocks on the server for up to ``timeout`` seconds (``XREAD BLOCK``),
        blocking the calling thread; its read deadline is longer than ``timeout``, as for
        :meth:`AsyncBackend.run_blocking`."""
        ...

    def scan(self, match: str, *, count: int = 1000) -> Iterator[str]:
        """Every key matching the glob ``match``, on every master (SCAN, never KEYS)."""
        ...

    def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        """Send an administrative command (INFO, ACL, CONFIG) to every master; replies by node."""
        ...

    def close(self) -> None:
        """Close every connection this backend opened."""
        ...


class AsyncBackend(Protocol):
    """A Redis reached from asyncio code, bound to the event loop it was first used on."""

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        """As :meth:`SyncBackend.run_script`."""
        ...

    async def run_command(self, *args: Arg) -> Reply:
        """As :meth:`SyncBackend.run_command`."""
        ...

    async def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        """As :meth:`SyncBackend.run_batch`."""
        ...

    async def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        """Send a command that blocks on the server for up to ``timeout`` seconds (``XREAD BLOCK``).

        It runs with a read deadline longer than ``timeout``, so a long block is never taken for a
        lost connection, and a connection that went silent is still found out.
        """
        ...

    def scan(self, match: str, *, count: int = 1000) -> AsyncIterator[str]:
        """As :meth:`SyncBackend.scan`."""
        ...

    async def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        """As :meth:`SyncBackend.run_on_each_server`."""
        ...

    async def aclose(self) -> None:
        """Close every connection this backend opened."""
        ...


class BackendFactory(Protocol):
    """One deployment of Redis (an embedded store, a server, a cluster, a Sentinel group): makes its backends."""

    @property
    def kind(self) -> str:
        """``"embedded"``, ``"redis"``, ``"cluster"`` or ``"sentinel"``: what a report or the doctor should call it."""
        ...

    @property
    def in_process(self) -> bool:
        """True when the data lives in this process only (other processes cannot reach it)."""
        ...

    @property
    def safe_url(self) -> str:
        """The URL with any password replaced by ``***``, safe to print and log."""
        ...

    def sync_backend(self) -> SyncBackend:
        """The deployment's one sync backend (made on first use)."""
        ...

    def async_backend(self) -> AsyncBackend:
        """A new asyncio backend; the caller closes it with its event loop."""
        ...

    def native_client(self) -> object:
        """A redis-py client of the same deployment, for commands jqc does not wrap."""
        ...

    def close(self) -> None:
        """Close the sync backend and the native client, if made."""
        ...
