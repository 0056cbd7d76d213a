"""Calls that heal: a silent (half-open) connection fails the call after its read deadline instead of
hanging it, the connection is dropped and the next call works; behind the read deadline every
asyncio call has a deadline as a whole, whatever it is doing; keepalive is tuned on every socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

import jqc
from jqc.backends.base import Reply
from jqc.backends.exchange import Answer, AsyncExchangeBackend, Command
from jqc.backends.server import _AsyncTransport
from jqc.backends.url import DEFAULTS, KEEPALIVE, parse_server_url
from tests.conftest import REDIS_URL, open_backend
from tests.worker.faultproxy import FaultProxy


class _HungTransport:
    """A transport whose every exchange waits forever (until cancelled)."""

    address = "nowhere:0"

    def __init__(self) -> None:
        self.cancelled = 0

    async def exchange(self, commands: list[Command]) -> list[Answer]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")

    async def blocking(self, command: Command, timeout: float) -> Reply:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        pass


def test_the_defaults_heal() -> None:
    config = parse_server_url("redis://127.0.0.1:6379/0")
    assert (config.socket_timeout, config.socket_connect_timeout) == (10.0, 5.0)
    assert config.socket_keepalive and config.health_check_interval == 15.0
    assert config.call_deadline == 16.0  # read + connect timeouts + 1 s
    options = config.redis_py_options()
    assert options["socket_timeout"] == 10.0 and options["socket_keepalive"] is True
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert options["socket_keepalive_options"] == {
            socket.TCP_KEEPIDLE: KEEPALIVE["idle"],
            socket.TCP_KEEPINTVL: KEEPALIVE["interval"],
            socket.TCP_KEEPCNT: KEEPALIVE["count"],
        }
    assert DEFAULTS["socket_timeout"] == 10.0
    assert parse_server_url("redis://h/0?socket_timeout=none").call_deadline is None  # the user's choice
    assert parse_server_url("redis://h/0", {"socket_timeout": 2, "socket_connect_timeout": 1}).call_deadline == 4.0


async def test_a_call_past_its_deadline_is_abandoned_with_a_typed_error() -> None:
    transport = _HungTransport()
    backend = AsyncExchangeBackend(transport, deadline=0.05)
    with pytest.raises(jqc.CallTimeoutError, match="deadline"):
        await backend.run_command("PING")
    assert transport.cancelled == 1  # the exchange itself was cancelled, not left running


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    open_backend("redis").close()  # fails under CI (skips elsewhere) when Redis does not answer
    parts = urlsplit(REDIS_URL)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as started:
        yield started


def _db() -> int:
    return int(urlsplit(REDIS_URL).path.lstrip("/") or 0)


@pytest.mark.redis_only
async def test_a_half_open_connection_fails_the_call_and_the_next_call_works(proxy: FaultProxy) -> None:
    conn = jqc.connect(proxy.url(_db()), socket_timeout=0.5, health_check_interval=0)
    queue = conn.async_queue("deadlines")
    try:
        assert (await queue.counts()).total == 0
        assert proxy.half_open() >= 1
        with pytest.raises(jqc.CallTimeoutError):
            await queue.counts()
        assert (await queue.counts()).total == 0  # on a new connection
    finally:
        await conn.aclose()


@pytest.mark.redis_only
async def test_without_a_read_timeout_the_call_deadline_still_ends_a_hung_call(proxy: FaultProxy) -> None:
    config = parse_server_url(proxy.url(_db()), {"socket_timeout": None, "health_check_interval": 0})
    backend = AsyncExchangeBackend(_AsyncTransport(config), deadline=0.5)
    try:
        assert await backend.run_command("PING") == "PONG"
        assert proxy.half_open() >= 1
        with pytest.raises(jqc.CallTimeoutError, match="deadline"):
            await backend.run_command("PING")
        assert await backend.run_command("PING") == "PONG"  # the silent connection was dropped
    finally:
        await backend.aclose()


@pytest.mark.redis_only
def test_the_sync_client_fails_a_silent_connection_and_reconnects(proxy: FaultProxy) -> None:
    conn = jqc.connect(proxy.url(_db()), socket_timeout=0.5)
    try:
        assert conn.ping()
        client = conn.factory.thread_client()  # type: ignore[attr-defined]
        sock = client._sock
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE["idle"]
        assert proxy.half_open() >= 1
        with pytest.raises(jqc.CallTimeoutError):
            conn.ping()
        assert conn.ping()
    finally:
        conn.close()
