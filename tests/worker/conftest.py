"""Fixtures for the worker tests: the virtual clock autojumps, and the async client is wrapped.

The wrapper (:class:`Net`) does two things:

* While a non-blocking command is in flight it keeps the event loop busy, so the autojumping
  virtual clock does not jump during a real Redis round trip (it only jumps when every task is
  asleep on the clock or blocked in ``XREAD BLOCK``, as on the embedded backend). Without this, a
  lock renewal in flight on a real server could see virtual time leap past the lock deadline.
* It injects faults: while ``down`` is set (or ``fail_next`` > 0) every command raises
  ``jqc.ConnectionLostError``, as when Redis is restarting; calls named in ``refuse`` get that
  refusal (names as :func:`tests.worker.faulty.call_names` gives them: ``claim``, ``queue:Q``,
  ``claim@Q``).

It also counts the commands sent, by command or script name (``sent``) and by queue (``touched``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import pytest
import redis.exceptions

import jqc
from jqc.backends.base import Arg, AsyncBackend, Outcome, Reply, Script, ScriptInvocation
from jqc.backends.refusals import translate
from jqc.worker import WorkerState
from tests.conftest import ALL_BACKENDS
from tests.worker.faulty import Setup, call_names

T = TypeVar("T")


class Net:
    def __init__(self) -> None:
        self.down = False
        self.fail_next = 0
        self.refuse: dict[str, jqc.JqcError] = {}  # name -> the refusal its calls get (nothing is sent)
        self.sent: Counter[str] = Counter()  # by command or script name
        self.touched: Counter[str] = Counter()  # by queue:Q and NAME@Q
        self._wrapped: dict[int, WrappedBackend] = {}

    def wrap(self, backend: AsyncBackend) -> WrappedBackend:
        found = self._wrapped.get(id(backend))
        if found is None or found.inner is not backend:
            found = self._wrapped[id(backend)] = WrappedBackend(backend, self)
        return found

    def check(self, name: str) -> None:
        if ":" in name or "@" in name:
            self.touched[name] += 1
        else:
            self.sent[name] += 1
        if name in self.refuse:
            raise self.refuse[name]
        if self.down:
            raise translate(redis.exceptions.ConnectionError("injected fault: Redis is down"))
        if self.fail_next > 0:
            self.fail_next -= 1
            raise translate(redis.exceptions.ConnectionError("injected fault: connection reset"))


async def _spin() -> None:
    while True:
        await asyncio.sleep(0)


class WrappedBackend:
    """An asyncio backend whose calls go through a :class:`Net`."""

    def __init__(self, inner: AsyncBackend, net: Net) -> None:
        self.inner = inner
        self.net = net

    async def _busy(self, names: list[str], call: Callable[[], Awaitable[T]], *, blocking: bool = False) -> T:
        for name in names:
            self.net.check(name)
        if blocking:
            reply = await call()
        else:
            spinner = asyncio.ensure_future(_spin())
            try:
                reply = await call()
            finally:
                spinner.cancel()
        if self.net.down:  # Redis went away while the call was in flight: its reply is lost
            raise translate(redis.exceptions.ConnectionError("injected fault: connection lost"))
        return reply

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        return await self._busy(call_names(script.name, keys), lambda: self.inner.run_script(script, keys, args))

    async def run_command(self, *args: Arg) -> Reply:
        return await self._busy(call_names(str(args[0]).upper(), args[1:]), lambda: self.inner.run_command(*args))

    async def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        names = [n for c in calls for n in call_names(c.script.name, c.keys)]
        return await self._busy(names, lambda: self.inner.run_batch(calls))

    async def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        names = call_names(str(args[0]).upper(), args[1:])
        return await self._busy(names, lambda: self.inner.run_blocking(*args, timeout=timeout), blocking=True)

    async def scan(self, match: str, *, count: int = 1000) -> AsyncIterator[str]:
        self.net.check("SCAN")
        async for key in self.inner.scan(match, count=count):
            yield key

    async def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        return await self._busy([str(args[0]).upper()], lambda: self.inner.run_on_each_server(*args))

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def net() -> Net:
    return Net()


@pytest.fixture(autouse=True)
async def _worker_env(
    request: pytest.FixtureRequest, clock: jqc.VirtualClock, net: Net, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    clock.autojump = True
    conn: jqc.Connection | None = request.getfixturevalue("conn") if "conn" in request.fixturenames else None
    if conn is not None:
        original = conn.async_backend
        monkeypatch.setattr(conn, "async_backend", lambda: net.wrap(original()))
    # Every worker a test starts is killed when the test ends, whatever its outcome: a failing
    # assertion must fail the test, not leave a worker running that hangs the whole run.
    started: list[jqc.Worker] = []
    start = jqc.Worker.start

    async def tracked_start(self: jqc.Worker) -> None:
        started.append(self)
        await start(self)

    monkeypatch.setattr(jqc.Worker, "start", tracked_start)
    try:
        yield
    finally:
        for worker in started:
            if worker.state is not WorkerState.CLOSED:
                await worker.kill()
        if conn is not None:
            await conn.aclose()


@pytest.fixture
async def setup(backend: str) -> AsyncIterator[Setup]:
    """A hand-driven clock and connections with injectable faults (:mod:`tests.worker.faulty`)."""
    made = Setup(backend)
    yield made
    await made.close()


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The worker tests run on every backend, the Redis Cluster and Sentinel included."""
    kind: str = request.param
    return kind
