"""Shared fixtures: every engine test runs on the embedded backend (id ``fake``) and on a real
Redis server (id ``redis``) from the same code.

The real server is ``JQC_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/9``); each test starts
from an empty database. When ``CI`` is set and the server does not answer, the ``redis`` tests
fail instead of skipping, so a green CI always means both backends ran.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

import jqc

REDIS_URL = os.environ.get("JQC_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
BACKENDS = ["fake", "redis"]


def open_backend(kind: str, clock: jqc.Clock | None = None) -> jqc.Connection:
    """A fresh, empty connection of the given kind, or fail/skip when Redis is unreachable."""
    if kind == "fake":
        return jqc.connect(clock=clock)
    conn = jqc.connect(REDIS_URL, clock=clock, socket_connect_timeout=2)
    try:
        conn.ping()
    except Exception as exc:
        message = f"real Redis at {REDIS_URL} does not answer: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    conn.sync_client().flushdb()
    return conn


@pytest.fixture
def clock() -> jqc.VirtualClock:
    return jqc.VirtualClock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def conn(backend: str, clock: jqc.VirtualClock) -> Iterator[jqc.Connection]:
    connection = open_backend(backend, clock)
    yield connection
    if not connection.embedded:
        connection.sync_client().flushdb()
    connection.close()


@pytest.fixture
def queue(conn: jqc.Connection) -> jqc.Queue:
    return conn.queue("photos")


@pytest.fixture
async def aqueue(conn: jqc.Connection) -> AsyncIterator[jqc.AsyncQueue]:
    yield conn.async_queue("photos")
    await conn.aclose()
