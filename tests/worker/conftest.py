"""Fixtures for the worker tests: the virtual clock autojumps, and the async client is wrapped.

The wrapper (:class:`Net`) does two things:

* While a non-blocking command is in flight it keeps the event loop busy, so the autojumping
  virtual clock does not jump during a real Redis round trip (it only jumps when every task is
  asleep on the clock or blocked in ``XREAD BLOCK``, as on the embedded backend). Without this, a
  lock renewal in flight on a real server could see virtual time leap past the lock deadline.
* It injects faults: while ``down`` is set (or ``fail_next`` > 0) every command raises
  ``redis.exceptions.ConnectionError``, as when Redis is restarting.

It also counts the commands sent, by command or script name.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.exceptions

import jqc
from jqc.engine.scripts import scripts


class Net:
    def __init__(self) -> None:
        self.down = False
        self.fail_next = 0
        self.sent: Counter[str] = Counter()
        self._by_sha = {s.sha: name for name, s in scripts().items()}
        self._wrapped: dict[int, WrappedClient] = {}

    def wrap(self, client: Any) -> WrappedClient:
        found = self._wrapped.get(id(client))
        if found is None or found.client is not client:
            found = self._wrapped[id(client)] = WrappedClient(client, self)
        return found

    def name_of(self, args: tuple[Any, ...]) -> str:
        name = str(args[0]).upper()
        return self._by_sha.get(str(args[1]), name) if name == "EVALSHA" else name

    def check(self, args: tuple[Any, ...]) -> None:
        self.sent[self.name_of(args)] += 1
        if self.down:
            raise redis.exceptions.ConnectionError("injected fault: Redis is down")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise redis.exceptions.ConnectionError("injected fault: connection reset")


async def _spin() -> None:
    while True:
        await asyncio.sleep(0)


class WrappedClient:
    def __init__(self, client: Any, net: Net) -> None:
        self.client = client
        self.net = net

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def _busy(self, args: tuple[Any, ...], coro_factory: Any) -> Any:
        self.net.check(args)
        if any(str(a).upper() == "BLOCK" for a in args):
            reply = await coro_factory()
        else:
            spinner = asyncio.ensure_future(_spin())
            try:
                reply = await coro_factory()
            finally:
                spinner.cancel()
        if self.net.down:  # Redis went away while the call was in flight: its reply is lost
            raise redis.exceptions.ConnectionError("injected fault: connection lost")
        return reply

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await self._busy(args, lambda: self.client.execute_command(*args, **options))

    async def evalsha(self, sha: str, numkeys: int, *rest: Any) -> Any:
        try:
            return await self._busy(("EVALSHA", sha), lambda: self.client.evalsha(sha, numkeys, *rest))
        except redis.exceptions.NoScriptError:
            self.net.sent[self.net.name_of(("EVALSHA", sha))] -= 1  # loaded, then sent again: count it once
            raise

    async def script_load(self, source: str) -> Any:
        return await self._busy(("SCRIPT",), lambda: self.client.script_load(source))


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
        original = conn.async_client
        monkeypatch.setattr(conn, "async_client", lambda: net.wrap(original()))
    yield
    if conn is not None:
        await conn.aclose()
