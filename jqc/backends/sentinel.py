"""The Sentinel backend (``redis+sentinel://``, ``rediss+sentinel://``).

redis-py's :class:`~redis.sentinel.Sentinel` (sync) and :class:`~redis.asyncio.sentinel.Sentinel`
(asyncio) ask the sentinels which server is the master of the URL's service; jqc's calls go to that
master through the single-server transports (:mod:`jqc.backends.routed`). Every new connection
first checks with ``ROLE`` that the server is still a master, so after a failover nothing is read
from, or written to, a demoted master: a connection that finds a replica, a ``READONLY`` refusal
or a master that cannot be reached makes the backend ask the sentinels again and retry (for up to
``failover_timeout`` seconds), and producers and workers carry on with the new master, without a
restart. The backend also asks the sentinels again every :data:`RECHECK` seconds while it is used,
since a master that is still reachable (``SENTINEL FAILOVER``) keeps accepting writes for seconds
after the sentinels switched to its replica, writes its demotion then throws away.

The URL's user name and password are the master's (and its replicas'); the sentinels get
``sentinel_username`` / ``sentinel_password`` when given, and no credentials otherwise.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio.sentinel as async_sentinel
import redis.exceptions as rex
import redis.sentinel
from redis.asyncio.connection import AbstractConnection

from jqc.backends.plans import node_config
from jqc.backends.resp import NotConnectedError, RespClient
from jqc.backends.routed import AsyncRoutedBackend, RoutedBackend
from jqc.backends.routing import TopologyUnknownError
from jqc.backends.tls import classify
from jqc.backends.url import ServerConfig
from jqc.errors import AuthenticationFailedError

__all__ = ["SentinelFactory"]

_READ_ERRORS = (rex.RedisError, OSError)
_COMPACT = re.compile(r"<redis\.client\.Redis\(.*?,host=([^,]+),port=(\d+)[^>]*>\)>\)>")


def _sentinel_kwargs(config: ServerConfig) -> dict[str, Any]:
    """Options of the connections to the sentinels: the URL's timeouts and TLS, their own credentials."""
    options = node_config(config, f"{config.host}:{config.port}").redis_py_options()
    for name in ("db", "host", "port", "unix_socket_path", "decode_responses"):
        options.pop(name, None)
    options.update(username=config.sentinel_username, password=config.sentinel_password)
    return options


def _master_kwargs(config: ServerConfig) -> dict[str, Any]:
    options = node_config(config, f"{config.host}:{config.port}").redis_py_options()
    for name in ("host", "port", "unix_socket_path"):
        options.pop(name, None)
    return options


def _failure(config: ServerConfig, exc: BaseException) -> BaseException:
    """A final jqc error (TLS, the sentinels' credentials) or a retryable :class:`TopologyUnknownError`."""
    found = classify(exc, config)
    if found is not None:
        return found
    text = str(exc)
    if "AuthenticationError" in text or "WRONGPASS" in text or "NOAUTH" in text:
        return AuthenticationFailedError(
            f"the sentinels refused the credentials (sentinel_username / sentinel_password): {text}"
        )
    text = _COMPACT.sub(r"\1:\2", text)  # (redis-py names each sentinel by its whole client repr)
    where = ", ".join(f"{host}:{port}" for host, port in config.nodes)
    error = TopologyUnknownError(f"no sentinel ({where}) named a master for {config.service!r}: {text}")
    error.__cause__ = exc
    return error


def _not_master(address: str, role: object) -> NotConnectedError:
    # ("connecting to" marks it, for the routing, as a connection that was never used)
    return NotConnectedError(f"Error connecting to {address}: it is a {role} now, not the master")


def _check_role(client: RespClient) -> None:
    reply = client.roundtrip("ROLE")
    role = reply[0] if isinstance(reply, list) and reply else reply
    if role != "master":
        raise _not_master(f"{client.config.host}:{client.config.port}", role)


async def _check_role_async(connection: AbstractConnection) -> None:
    await connection.on_connect()
    await connection.send_command("ROLE")
    reply = await connection.read_response()
    role = reply[0] if isinstance(reply, list) and reply else reply
    if isinstance(role, bytes):
        role = role.decode()
    if role != "master":
        raise _not_master(f"{getattr(connection, 'host', '?')}:{getattr(connection, 'port', '?')}", role)


#: Seconds after which the backend asks the sentinels again which server is the master, even with
#: nothing wrong: a ``SENTINEL FAILOVER`` (or a master cut off from the sentinels only) leaves the
#: old master taking writes for ~10 s, until the sentinels demote it, and those writes are then
#: thrown away; re-asking this often bounds that window to about this long after the switch.
RECHECK = 0.5


class _Master:
    """The master's address as last named by the sentinels (stale again :data:`RECHECK` s later)."""

    def __init__(self, config: ServerConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._stale = True
        self._asked = -math.inf
        self._monotonic = monotonic
        self._master: str | None = None

    @property
    def stale(self) -> bool:
        """True when the master must be asked for before the next call (marked, or asked too long ago)."""
        return self._stale or self._monotonic() - self._asked >= RECHECK

    @stale.setter
    def stale(self, value: bool) -> None:
        self._stale = value

    def address(self, slot: int | None) -> str:
        if self._master is None:
            raise TopologyUnknownError(f"no master is known yet for {self.config.service!r}")
        return self._master

    def masters(self) -> list[str]:
        return [self.address(None)]

    def moved(self, slot: int, address: str) -> None:
        """(No slots behind Sentinel: a MOVED reply is an error like any other.)"""

    def kept(self) -> bool:
        """After an ask no sentinel answered: True when it was only the routine :data:`RECHECK` (nothing had gone
        wrong with the master known), which then stays in use until the next recheck, so that
        sentinels that cannot be reached do not stop calls to a master that can."""
        if self._stale or self._master is None:
            return False
        self._asked = self._monotonic()
        return True

    def learn(self, found: tuple[Any, Any]) -> None:
        host, port = found
        host = host.decode() if isinstance(host, bytes) else str(host)
        self._master = f"{host}:{int(port)}"
        self._stale = False
        self._asked = self._monotonic()


class SentinelRouter(_Master):
    """The master of a Sentinel group, asked with redis-py's sync :class:`~redis.sentinel.Sentinel`."""

    def __init__(self, config: ServerConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config, monotonic)
        self._sentinel = redis.sentinel.Sentinel(list(config.nodes), sentinel_kwargs=_sentinel_kwargs(config))
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            if not self.stale:
                return  # (another thread asked while this one waited for the lock)
            try:
                self.learn(self._sentinel.discover_master(str(self.config.service)))
            except _READ_ERRORS as exc:
                error = _failure(self.config, exc)
                if not (isinstance(error, TopologyUnknownError) and self.kept()):
                    raise error from exc

    def close(self) -> None:
        for client in self._sentinel.sentinels:
            client.close()


class AsyncSentinelRouter(_Master):
    """As :class:`SentinelRouter`, with redis-py's asyncio Sentinel."""

    def __init__(self, config: ServerConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config, monotonic)
        self._sentinel = async_sentinel.Sentinel(list(config.nodes), sentinel_kwargs=_sentinel_kwargs(config))

    async def refresh(self) -> None:
        try:
            self.learn(await self._sentinel.discover_master(str(self.config.service)))
        except _READ_ERRORS as exc:
            error = _failure(self.config, exc)
            if not (isinstance(error, TopologyUnknownError) and self.kept()):
                raise error from exc

    async def aclose(self) -> None:
        for client in self._sentinel.sentinels:
            await client.aclose()


class SentinelFactory:
    """One Sentinel-managed master (found anew after each failover) and the backends that reach it.

    ``sleep`` and ``async_sleep`` wait between tries during a failover (real time by default).
    """

    kind = "sentinel"
    in_process = False

    def __init__(
        self,
        config: ServerConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._async_sleep = async_sleep
        self.router = SentinelRouter(config)
        self._sync = RoutedBackend(config, lambda _send: self.router, sleep=sleep, on_connect=_check_role)
        self._native: redis.Redis | None = None
        self._native_lock = threading.Lock()

    @property
    def safe_url(self) -> str:
        return self.config.safe_url

    def sync_backend(self) -> RoutedBackend:
        return self._sync

    def async_backend(self) -> AsyncRoutedBackend:
        router = AsyncSentinelRouter(self.config)
        return AsyncRoutedBackend(
            self.config, lambda _send: router, sleep=self._async_sleep, on_connect=_check_role_async
        )

    def native_client(self) -> redis.Redis:
        """A redis-py client of the current master (``Sentinel.master_for``: it follows failovers)."""
        with self._native_lock:
            if self._native is None:
                sentinels, options = list(self.config.nodes), _sentinel_kwargs(self.config)
                sentinel = redis.sentinel.Sentinel(sentinels, sentinel_kwargs=options, **_master_kwargs(self.config))
                assert self.config.service is not None
                self._native = sentinel.master_for(self.config.service)
            return self._native

    def close(self) -> None:
        self._sync.close()
        native, self._native = self._native, None
        if native is not None:
            native.close()
