"""Shared fixtures: every engine test runs on the embedded backend (id ``fake``) and on a real
Redis server (id ``redis``) from the same code.

The real server is ``JQC_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/9``); each test starts
from an empty database. Under pytest-xdist each worker process gets a database of its own: the
URL's database plus the worker's number (gw0 -> 9, gw1 -> 10, ...). When ``CI`` is set and the
server does not answer, the ``redis`` tests fail instead of skipping, so a green CI always means
both backends ran.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

import jqc


def _worker_url(url: str) -> str:
    """``url`` with its database moved by the xdist worker's number (``gw3`` -> +3)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    if not db.isdigit():
        return url
    return f"{base}/{int(db) + int(worker[2:])}"


REDIS_URL = _worker_url(os.environ.get("JQC_TEST_REDIS_URL", "redis://127.0.0.1:6379/9"))
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
