"""Shared fixtures: every engine test runs on the embedded backend (id ``fake``) and on a real
Redis server (id ``redis``) from the same code; the engine tests (``tests/engine``) also run on a
Redis Cluster (id ``cluster``) and behind Sentinel (id ``sentinel``).

The real server is ``JQC_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/9``); each test starts
from an empty database. Under pytest-xdist each worker process gets a database of its own: the
URL's database plus the worker's number (gw0 -> 9, gw1 -> 10, ...). When ``CI`` is set and the
server does not answer, the ``redis`` tests fail instead of skipping, so a green CI always means
both backends ran.

The cluster and the Sentinel group are the local topologies of ``scripts/redis-topology start``
(``JQC_TEST_CLUSTER_URL``, ``JQC_TEST_SENTINEL_URL`` override them). A cluster has database 0
only and tests run in parallel, so each test gets a key prefix of its own and its keys are
deleted afterwards by a SCAN of every master (never FLUSHDB). Under ``CI`` these ids fail, too,
when their topology is not up; elsewhere they skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

import jqc
from jqc.backends import BackendFactory, open_factory, parse_url
from jqc.testing.backend import delete_prefix


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
#: The ids of the local topologies, and every id (the engine tests run on all four).
TOPOLOGIES = ["cluster", "sentinel"]
ALL_BACKENDS = [*BACKENDS, *TOPOLOGIES]
TOPOLOGY_URLS = {
    "cluster": os.environ.get("JQC_TEST_CLUSTER_URL", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"),
    "sentinel": os.environ.get(
        "JQC_TEST_SENTINEL_URL", "redis+sentinel://127.0.0.1:26300,127.0.0.1:26301,127.0.0.1:26302/mymaster"
    ),
}
_unreachable: dict[str, str | None] = {}  # per process: why a topology cannot be used (None: it can)
# One factory per topology and process, shared by the tests' connections (each on its own prefix):
# reading a cluster's topology with redis-py costs tens of milliseconds, too much to pay per test.
_factories: dict[str, BackendFactory] = {}


def _topology_problem(kind: str) -> str | None:
    """Why the topology ``kind`` cannot be used, asked once per process (None when it answers)."""
    if kind not in _unreachable:
        probe = jqc.connect(TOPOLOGY_URLS[kind], socket_connect_timeout=1, failover_timeout=1)
        try:
            probe.ping()
            _unreachable[kind] = None
        except jqc.JqcError as exc:
            _unreachable[kind] = (
                f"the local {kind} at {TOPOLOGY_URLS[kind]} does not answer ({type(exc).__name__}: {exc}); "
                "start it with scripts/redis-topology start"
            )
        finally:
            probe.close()
    return _unreachable[kind]


def open_topology(kind: str, clock: jqc.Clock | None = None) -> jqc.Connection:
    """A connection to the local cluster or Sentinel group on a key prefix of its own (fail/skip
    when it is not up); :func:`close_backend` deletes its keys."""
    problem = _topology_problem(kind)
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    factory = _factories.get(kind)
    if factory is None:
        factory = _factories[kind] = open_factory(parse_url(TOPOLOGY_URLS[kind], {"socket_connect_timeout": 2}))
    return jqc.Connection.over(factory, clock=clock, prefix=f"t{uuid.uuid4().hex[:12]}")


def own_keys(connection: jqc.Connection) -> str:
    """The SCAN pattern of every key a test may have written: the whole database where the test has
    one of its own, its prefix's keys on a shared topology."""
    return f"{connection.prefix}:*" if connection.kind in TOPOLOGIES else "*"


def close_backend(connection: jqc.Connection) -> None:
    """Empty what a test left (its database, or its prefix's keys on every master) and close."""
    if connection.kind in TOPOLOGIES:
        delete_prefix(connection)  # (the factory is shared: see open_topology)
        return
    try:
        if not connection.embedded:
            connection.sync_client().flushdb()
    finally:
        connection.close()


def open_backend(kind: str, clock: jqc.Clock | None = None) -> jqc.Connection:
    """A fresh, empty connection of the given kind, or fail/skip when Redis is unreachable."""
    if kind == "fake":
        return jqc.connect(clock=clock)
    if kind in TOPOLOGIES:
        return open_topology(kind, clock)
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
    close_backend(connection)


@pytest.fixture
def queue(conn: jqc.Connection) -> jqc.Queue:
    return conn.queue("photos")


@pytest.fixture
async def aqueue(conn: jqc.Connection) -> AsyncIterator[jqc.AsyncQueue]:
    yield conn.async_queue("photos")
    await conn.aclose()
