"""TLS servers for the security tests, started once per test process and killed at its end.

``tls_server`` checks the client's view only (one-way TLS); ``mtls_server`` also demands a client
certificate signed by the test CA (``--tls-auth-clients yes``). ``expired_server`` and
``wrong_host_server`` present a certificate that must be refused; ``plain_server`` speaks no TLS.
Tests empty the good servers with ``clean_tls`` (over the servers' unix sockets, not through jqc).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.tls_servers import Certs, TlsRedis, make_certs, start_tls_redis
from tests.servers import redis_server_binary


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _server(tmp_path_factory: pytest.TempPathFactory, name: str, certs: Certs, **kw: object) -> Iterator[TlsRedis]:
    redis_server_binary()
    pair = kw.pop("pair", certs.server)
    server = start_tls_redis(tmp_path_factory.mktemp(name), name, certs, pair, **kw)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[TlsRedis]:
    yield from _server(tmp_path_factory, "tls", certs)


@pytest.fixture(scope="session")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[TlsRedis]:
    yield from _server(tmp_path_factory, "mtls", certs, client_certs=True)


@pytest.fixture(scope="session")
def expired_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[TlsRedis]:
    yield from _server(tmp_path_factory, "expired", certs, pair=certs.expired)


@pytest.fixture(scope="session")
def wrong_host_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[TlsRedis]:
    yield from _server(tmp_path_factory, "wrong-host", certs, pair=certs.wrong_host)


@pytest.fixture(scope="session")
def plain_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[TlsRedis]:
    """A plain-text server on a TCP port (for a TLS client that reaches the wrong port)."""
    yield from _server(tmp_path_factory, "plain", certs, pair=None)


def flush(server: TlsRedis) -> None:
    client = server.client()
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture
def clean_tls(tls_server: TlsRedis, mtls_server: TlsRedis) -> Iterator[None]:
    """Both good servers empty before and after the test."""
    for server in (tls_server, mtls_server):
        flush(server)
    yield
    for server in (tls_server, mtls_server):
        flush(server)
