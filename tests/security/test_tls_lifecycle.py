"""The engine's whole lifecycle suite (tests/engine/test_lifecycle.py), run again over TLS.

Three ways to reach a TLS server, each with certificate and host-name verification on:

* ``ca-in-url``: ``rediss://127.0.0.1:PORT/0?ssl_ca_certs=CA`` (the CLI's way: one string);
* ``ca-in-args``: the CA as a :func:`jqc.connect` argument;
* ``mutual``: a server that demands a client certificate (``--tls-auth-clients yes``), with the
  client's certificate and key in the URL query.

The sync engine calls, the asyncio ones (``aqueue``) and the redis-py client of
:meth:`jqc.Connection.sync_client` all go over the same TLS settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest

import jqc
from tests.engine.test_lifecycle import *  # noqa: F403  # the same tests, collected again here
from tests.security.conftest import flush
from tests.security.tls_servers import Certs, TlsRedis

VARIANTS = ["ca-in-url", "ca-in-args", "mutual"]


def tls_connection(
    variant: str, certs: Certs, tls_server: TlsRedis, mtls_server: TlsRedis, clock: jqc.Clock | None = None
) -> jqc.Connection:
    """A connection of ``variant`` (see the module's docstring)."""
    ca = quote(str(certs.ca))
    if variant == "ca-in-url":
        return jqc.connect(tls_server.tls_url(f"ssl_ca_certs={ca}"), clock=clock)
    if variant == "ca-in-args":
        return jqc.connect(tls_server.tls_url(), clock=clock, ssl_ca_certs=str(certs.ca))
    assert variant == "mutual"
    query = f"ssl_ca_certs={ca}&ssl_certfile={quote(str(certs.client.cert))}&ssl_keyfile={quote(str(certs.client.key))}"
    return jqc.connect(mtls_server.tls_url(query), clock=clock)


@pytest.fixture(params=VARIANTS)
def backend(request: pytest.FixtureRequest) -> str:
    variant: str = request.param
    return variant


@pytest.fixture
def conn(
    backend: str, clock: jqc.VirtualClock, certs: Certs, tls_server: TlsRedis, mtls_server: TlsRedis
) -> Iterator[jqc.Connection]:
    server = mtls_server if backend == "mutual" else tls_server
    flush(server)
    connection = tls_connection(backend, certs, tls_server, mtls_server, clock)
    assert connection.ping()
    yield connection
    connection.close()
    flush(server)


@pytest.fixture
def queue(conn: jqc.Connection) -> jqc.Queue:
    return conn.queue("photos")


@pytest.fixture
async def aqueue(conn: jqc.Connection) -> AsyncIterator[jqc.AsyncQueue]:
    yield conn.async_queue("photos")
    await conn.aclose()


def test_every_client_of_a_connection_is_encrypted(conn: jqc.Connection, backend: str) -> None:
    """The engine's sync client, and the redis-py client, are TLS connections (the server says so)."""
    conn.queue("photos").add("x")
    listing = conn.sync_client().execute_command("CLIENT", "LIST")
    assert listing.count("addr=") >= 2  # the engine's connection and this one
    settings = conn.sync_client().config_get("*port")
    assert settings["port"] == "0" and settings["tls-port"] != "0"  # only TLS could have reached it
