"""The fault-injecting proxy the self-healing tests use does what it says, on a real Redis: a reset
breaks open connections and new ones work; a blackhole holds bytes until it heals, then delivers
them; a half-open fault silences open connections for good while new ones work."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from tests.conftest import REDIS_URL, open_backend
from tests.worker.faultproxy import FaultProxy

pytestmark = pytest.mark.redis_only


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    open_backend("redis").close()  # fails under CI (skips elsewhere) when Redis does not answer
    parts = urlsplit(REDIS_URL)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as started:
        yield started


def _client(proxy: FaultProxy, timeout: float) -> redis.Redis:
    return redis.Redis(port=proxy.port, socket_timeout=timeout, socket_connect_timeout=timeout)


def _ping(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b"+PONG\r\n"
    return sock


def test_reset_breaks_open_connections_and_new_ones_work(proxy: FaultProxy) -> None:
    held = _ping(proxy)
    assert proxy.reset() == 1
    _ping(proxy).close()  # a new connection works at once
    with pytest.raises(ConnectionResetError):
        held.sendall(b"PING\r\n")
        held.recv(100)  # the open one was reset
    held.close()


def test_blackhole_holds_bytes_until_it_heals_then_delivers_them(proxy: FaultProxy) -> None:
    client = _client(proxy, 5)
    client.delete("faultproxy:held")
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    proxy.blackhole()
    try:
        fresh = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        fresh.sendall(b"PING\r\n")
        fresh.settimeout(0.3)
        with pytest.raises(TimeoutError):
            fresh.recv(100)  # nothing moves, on new connections either
        fresh.close()
        sock.sendall(b"SET faultproxy:held yes\r\n")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)
    finally:
        proxy.heal()
    sock.settimeout(5)
    assert sock.recv(100) == b"+OK\r\n"  # the held command reached the server once healed
    sock.close()
    assert client.get("faultproxy:held") == b"yes"
    client.delete("faultproxy:held")
    client.close()


def test_half_open_silences_open_connections_for_good_while_new_ones_work(proxy: FaultProxy) -> None:
    sock = _ping(proxy)
    assert proxy.half_open() == 1
    sock.sendall(b"PING\r\n")
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(100)  # no reply, no FIN, no RST: the socket just stays silent
    fresh = _client(proxy, 5)
    assert fresh.ping()  # while new connections work
    proxy.heal()
    with pytest.raises(TimeoutError):
        sock.recv(100)  # healing a blackhole does not revive a half-open connection
    sock.close()
    fresh.close()
