"""The embedded backend: an in-process fakeredis server with Lua, for tests, notebooks and demos.

One :class:`EmbeddedFactory` is one server: every sync and asyncio backend made from it (by one
:class:`jqc.Connection`) shares its data, and no other process can reach it. Scripts run through
fakeredis's Lua support, each compiled once (:mod:`jqc.backends.embedded_lua`); commands are handed
straight to a fakeredis socket, without redis-py's client and RESP in between
(:mod:`jqc.backends.embedded_direct`), except the few that must go through the client.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from jqc.backends.base import Reply
from jqc.backends.exchange import Answer, AsyncExchangeBackend, Command, ExchangeBackend
from jqc.backends.url import ServerConfig
from jqc.errors import MissingDependencyError

__all__ = ["EmbeddedFactory"]

ADDRESS = "embedded"

try:
    import fakeredis
    import lupa  # noqa: F401  (fakeredis needs it to run Lua)
except ImportError as exc:  # pragma: no cover - both are dependencies of jqc
    raise MissingDependencyError("the embedded backend needs: pip install 'fakeredis[lua]'") from exc

from jqc.backends.embedded_direct import NOT_SENT, DirectCommands  # noqa: E402  (after the clear error above)
from jqc.backends.embedded_direct import available as direct_available  # noqa: E402
from jqc.backends.embedded_lua import new_server  # noqa: E402


def _raw(client: Any) -> Any:
    """``client`` answering raw RESP2 replies: no redis-py response callbacks."""
    client.response_callbacks.clear()
    return client


class _SyncTransport:
    """Commands run one by one on a shared fakeredis client (there is no network to save)."""

    address = ADDRESS

    def __init__(self, server: fakeredis.FakeServer) -> None:
        self._client: Any = _raw(fakeredis.FakeRedis(server=server, decode_responses=True, protocol=2))
        self._direct = DirectCommands(server) if direct_available() else None

    def exchange(self, commands: list[Command]) -> list[Answer]:
        answers: list[Answer] = []
        direct = self._direct
        for command in commands:
            answer: Any = NOT_SENT if direct is None else direct.run(command)
            if answer is NOT_SENT:
                try:
                    answer = self._client.execute_command(*command)
                except (RedisError, ValueError, UnicodeError) as exc:
                    answer = exc
            answers.append(answer)
        return answers

    def blocking(self, command: Command, timeout: float) -> Answer:
        return self.exchange([command])[0]  # the store is shared under a lock that a blocked read releases

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        self._client.close()


class _AsyncTransport:
    """Commands run one by one on a fakeredis asyncio client of the shared server."""

    address = ADDRESS

    def __init__(self, server: fakeredis.FakeServer) -> None:
        self._client: Any = _raw(fakeredis.FakeAsyncRedis(server=server, decode_responses=True, protocol=2))
        self._direct = DirectCommands(server) if direct_available() else None

    async def exchange(self, commands: list[Command]) -> list[Answer]:
        answers: list[Answer] = []
        direct = self._direct
        for command in commands:
            answer: Any = NOT_SENT if direct is None else direct.run(command)
            if answer is NOT_SENT:
                try:
                    answer = await self._client.execute_command(*command)
                except (RedisError, ValueError, UnicodeError) as exc:
                    answer = exc
            answers.append(answer)
        return answers

    async def blocking(self, command: Command, timeout: float) -> Reply:
        reply: Reply = await self._client.execute_command(*command)
        return reply

    async def aclose(self) -> None:
        if self._direct is not None:
            self._direct.close()
        await self._client.aclose()


class EmbeddedFactory:
    """One in-process fakeredis server and the backends that reach it."""

    kind = "embedded"
    in_process = True

    def __init__(self, config: ServerConfig | None = None, *, server: fakeredis.FakeServer | None = None) -> None:
        self.config = config
        self.server: fakeredis.FakeServer = server if server is not None else new_server()
        self._sync: ExchangeBackend | None = None
        self._native: Any = None

    @property
    def safe_url(self) -> str:
        return "memory://"

    def sync_backend(self) -> ExchangeBackend:
        if self._sync is None:
            self._sync = ExchangeBackend(_SyncTransport(self.server))
        return self._sync

    def async_backend(self) -> AsyncExchangeBackend:

        return AsyncExchangeBackend(_AsyncTransport(self.server))

    def native_client(self) -> Any:
        if self._native is None:
            self._native = fakeredis.FakeRedis(server=self.server, decode_responses=True, protocol=2)
        return self._native

    def close(self) -> None:
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()
        native, self._native = self._native, None
        if native is not None:
            native.close()
