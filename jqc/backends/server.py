"""The backend of one real Redis server (``redis://``, ``rediss://``, ``unix://``).

Sync calls go through :class:`jqc.backends.resp.RespClient`, one connection per thread; asyncio
calls through redis-py's asyncio client, one pool per event loop, with a separate pool for
blocking reads (which wait longer than the usual read deadline allows). No client ever resends a
command on its own after a connection error (redis-py's retries are off): a script that may have
run is reported, never run twice behind the caller's back.

Both take their TLS settings from the one :class:`~jqc.backends.url.ServerConfig` (the sync client
shares one :class:`ssl.SSLContext`, made when the connection is opened, so a missing certificate
file fails :func:`jqc.connect` at once). A connection that fails for a TLS reason is reported as
the :class:`jqc.TlsError` that names it (see :mod:`jqc.backends.tls`).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection as AsyncConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from jqc.backends.base import Reply
from jqc.backends.exchange import Answer, AsyncExchangeBackend, Command, ExchangeBackend
from jqc.backends.resp import RespClient
from jqc.backends.tls import classify, diagnose, tls_context
from jqc.backends.url import ServerConfig
from jqc.errors import JqcError

__all__ = ["ServerFactory"]

#: Connections an asyncio pool may open at once (a busy worker runs many calls concurrently).
MAX_ASYNC_CONNECTIONS = 1000
#: Extra seconds a sync blocking command may take beyond its own timeout before it counts as hung.
BLOCK_MARGIN = 1.0


def _address(config: ServerConfig) -> str:
    return config.path if config.path is not None else f"{config.host}:{config.port}"


class _ThreadTransport:
    """A :class:`RespClient` per thread; closing closes every one."""

    def __init__(
        self,
        config: ServerConfig,
        tls: ssl.SSLContext | None,
        *,
        check_stale: bool = False,
        on_connect: Callable[[RespClient], None] | None = None,
    ) -> None:
        self.config = config
        self.address = _address(config)
        self._tls = tls
        self._check_stale = check_stale
        self._on_connect = on_connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[RespClient] = []
        self._answered = False  # until the server first answers, a failure may be a TLS mismatch

    def client(self) -> RespClient:
        """The calling thread's client (made on first use)."""
        client: RespClient | None = getattr(self._local, "client", None)
        if client is None:
            client = RespClient(self.config, self._tls, check_stale=self._check_stale, on_connect=self._on_connect)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def exchange(self, commands: list[Command]) -> list[Answer]:
        try:
            answers: list[Answer] = list(self.client().exchange(commands))
        except (RedisError, OSError) as exc:
            found = diagnose(exc, self.config, fresh=not self._answered)
            if found is not None:
                raise found from exc
            raise
        self._answered = True
        return answers

    def blocking(self, command: Command, timeout: float) -> Answer:
        try:
            return self.client().blocking(command, timeout + BLOCK_MARGIN + 0.1 * timeout)
        except (RedisError, OSError) as exc:
            found = classify(exc, self.config)
            if found is not None:
                raise found from exc
            raise

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._local = threading.local()


#: A hook run on every new asyncio connection instead of redis-py's own handshake (which it must call).
ConnectHook: TypeAlias = Callable[[AsyncConnection], Awaitable[None]]


def _async_client(
    config: ServerConfig, *, read_timeout: bool, on_connect: ConnectHook | None = None
) -> redis.asyncio.Redis:
    options = config.redis_py_options()
    if not read_timeout:
        options["socket_timeout"] = None
    if on_connect is not None:
        options["redis_connect_func"] = on_connect
    client = redis.asyncio.Redis(
        **options,  # type: ignore[arg-type]
        max_connections=MAX_ASYNC_CONNECTIONS,
        retry=AsyncRetry(NoBackoff(), 0),
    )
    client.response_callbacks.clear()  # raw RESP2 replies, as every backend gives
    return client


class _AsyncTransport:
    """redis-py asyncio pools: one for calls (with a read deadline), one for blocking reads."""

    def __init__(self, config: ServerConfig, *, on_connect: ConnectHook | None = None) -> None:
        self.address = _address(config)
        self._config = config
        self._on_connect = on_connect
        self._client = _async_client(config, read_timeout=True, on_connect=on_connect)
        self._blocker: redis.asyncio.Redis | None = None
        self._answered = False  # as in _ThreadTransport

    async def exchange(self, commands: list[Command]) -> list[Answer]:
        try:
            answers = await self._exchange(commands)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            found = await self._diagnosed(exc)
            if found is None:
                raise
            raise found from exc
        self._answered = True
        return answers

    async def _exchange(self, commands: list[Command]) -> list[Answer]:
        if len(commands) == 1:
            try:
                return [await self._client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
            except RedisError as exc:
                if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
                    raise
                return [exc]
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        answers: list[Answer] = await pipe.execute(raise_on_error=False)
        return answers

    async def _diagnosed(self, exc: BaseException) -> JqcError | None:
        """The TLS error behind ``exc``, if any (probing in a thread while never answered)."""
        if self._answered:
            return classify(exc, self._config)
        return await asyncio.to_thread(diagnose, exc, self._config, fresh=True)

    async def blocking(self, command: Command, timeout: float) -> Reply:
        if self._blocker is None:
            self._blocker = _async_client(self._config, read_timeout=False, on_connect=self._on_connect)
        try:
            reply: Reply = await self._blocker.execute_command(*command)  # type: ignore[no-untyped-call]
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            found = classify(exc, self._config)
            if found is not None:
                raise found from exc
            raise
        return reply

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._blocker is not None:
            await self._blocker.aclose()


class ServerFactory:
    """One Redis server and the backends that reach it."""

    kind = "redis"
    in_process = False

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        tls = tls_context(config.tls) if config.tls is not None else None  # bad files fail here, at once
        self._transport = _ThreadTransport(config, tls)
        self._sync = ExchangeBackend(self._transport)
        self._native: redis.Redis | None = None
        self._native_lock = threading.Lock()

    @property
    def safe_url(self) -> str:
        return self.config.safe_url

    def sync_backend(self) -> ExchangeBackend:
        return self._sync

    def thread_client(self) -> RespClient:
        """The calling thread's own connection (tests kill it to check reconnects)."""
        return self._transport.client()

    def async_backend(self) -> AsyncExchangeBackend:
        return AsyncExchangeBackend(_AsyncTransport(self.config), deadline=self.config.call_deadline)

    def native_client(self) -> redis.Redis:
        with self._native_lock:
            if self._native is None:
                self._native = redis.Redis(
                    **self.config.redis_py_options(),  # type: ignore[arg-type]
                    retry=Retry(NoBackoff(), 0),
                )
            return self._native

    def close(self) -> None:
        self._sync.close()
        native, self._native = self._native, None
        if native is not None:
            native.close()
