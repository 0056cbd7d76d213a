"""A hand-driven clock and connections whose calls hang, fail or are refused on demand (not a test module).

Used by the tests that need a call to never come back (a wedged claim loop, a report that hangs),
where an autojumping clock would stop: :class:`Setup` advances virtual time by hand.
:class:`Faults` picks the calls by script or command name (``"*"``: every call) or by the queue
whose keys they touch (``"queue:Q"``), or both (``"claim@Q"``: claims on queue Q).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import jqc
from jqc.backends.base import Arg, AsyncBackend, Outcome, Reply, Script, ScriptInvocation
from tests.conftest import close_backend, open_backend

T = TypeVar("T")


class Faults:
    """What the calls of one connection suffer: names (script or command) that hang, fail or are refused."""

    def __init__(self) -> None:
        self.hang: set[str] = set()  # "*": every call
        self.fail: set[str] = set()
        self.refuse: dict[str, jqc.JqcError] = {}  # name -> the refusal raised (nothing is sent)
        self.hung = 0
        self.sent: Counter[str] = Counter()  # calls that reached the fault layer, by name


def call_names(name: str, words: Iterable[object]) -> list[str]:
    """A call's name, and ``queue:Q`` and ``NAME@Q`` for every queue Q whose key it touches."""
    queues = sorted({w.split("{", 1)[1].split("}", 1)[0] for w in map(str, words) if "{" in w and "}" in w})
    return [name, *(f"queue:{q}" for q in queues), *(f"{name}@{q}" for q in queues)]


class FaultyBackend:
    """An asyncio backend whose calls hang (until cancelled), fail or are refused, as :class:`Faults` says."""

    def __init__(self, inner: AsyncBackend, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    async def _call(self, names: list[str], call: Callable[[], Awaitable[T]]) -> T:
        faults = self.faults
        for name in names:
            faults.sent[name] += 1
        if faults.fail.intersection(names):
            raise jqc.ConnectionLostError("injected fault: the call failed")
        for name in names:
            if name in faults.refuse:
                raise faults.refuse[name]
        if "*" in faults.hang or faults.hang.intersection(names):
            faults.hung += 1
            await asyncio.Event().wait()
        return await call()

    async def run_script(self, script: Script, keys: Any, args: Any) -> Reply:
        return await self._call(call_names(script.name, keys), lambda: self.inner.run_script(script, keys, args))

    async def run_command(self, *args: Arg) -> Reply:
        return await self._call(call_names(str(args[0]).upper(), args[1:]), lambda: self.inner.run_command(*args))

    async def run_batch(self, calls: list[ScriptInvocation]) -> list[Outcome]:
        names = [n for c in calls for n in call_names(c.script.name, c.keys)]
        return await self._call(names, lambda: self.inner.run_batch(calls))

    async def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        names = call_names(str(args[0]).upper(), args[1:])
        return await self._call(names, lambda: self.inner.run_blocking(*args, timeout=timeout))

    async def scan(self, match: str, *, count: int = 1000) -> AsyncIterator[str]:
        async for key in self.inner.scan(match, count=count):
            yield key

    async def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        return await self._call([str(args[0]).upper()], lambda: self.inner.run_on_each_server(*args))

    async def aclose(self) -> None:
        await self.inner.aclose()


class Setup:
    """One backend, a hand-driven clock, and connections with and without faults."""

    def __init__(self, backend: str) -> None:
        self.clock = jqc.VirtualClock()
        self.base = open_backend(backend, self.clock)
        self.faults = Faults()
        self.conns: list[jqc.Connection] = []

    def connection(self, *, faulty: bool) -> jqc.Connection:
        factory = self.base.factory
        make = (lambda: FaultyBackend(factory.async_backend(), self.faults)) if faulty else None
        conn = jqc.Connection.over(factory, clock=self.clock, prefix=self.base.prefix, make_async=make)
        self.conns.append(conn)
        return conn

    async def drive(self, condition: Callable[[], bool], *, within: float = 120.0, step: float = 0.05) -> None:
        """Advance virtual time in small steps, letting real calls complete, until ``condition()``."""
        deadline = self.clock.now() + within
        while not condition():
            assert self.clock.now() < deadline, f"not within {within} virtual seconds"
            self.clock.advance(step)
            await asyncio.sleep(0.002)

    async def run_for(self, seconds: float, *, step: float = 0.25) -> None:
        """Advance virtual time by ``seconds`` in steps, letting the workers run between them."""
        end = self.clock.now() + seconds
        await self.drive(lambda: self.clock.now() >= end, within=seconds + step, step=step)

    async def close(self) -> None:
        for conn in self.conns:
            await conn.aclose()
        close_backend(self.base)
