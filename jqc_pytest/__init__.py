"""The jqc pytest plugin: fixtures for testing code that uses jqc. See docs/testing.md.

pytest loads it through the ``pytest11`` entry point wherever jqc is installed. It lives outside
the ``jqc`` package on purpose: pytest imports every registered plugin at start-up, in every
project, and importing ``jqc`` loads redis-py and the engine. This module imports only pytest and
the standard library; jqc is imported when a jqc fixture is first used. ``-p no:jqc`` disables it.

Backends: the embedded one (a fresh in-process server per test) unless ``--jqc-redis-url`` or the
``JQC_REDIS_URL`` environment variable names a real server. There every test gets a key prefix of
its own, whose keys are deleted (SCAN + UNLINK) when the test ends. If the server does not answer,
tests that use it are skipped, or fail when the ``CI`` environment variable is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    import jqc
    from jqc.testing import BurstWorker
    from jqc.testing.backend import Backend

__all__ = [
    "jqc_async_queue",
    "jqc_clock",
    "jqc_connection",
    "jqc_queue",
    "jqc_worker",
    "pytest_addoption",
    "pytest_report_header",
]

_ENV = "JQC_REDIS_URL"
_CONNECTIONS = pytest.StashKey[list[Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--jqc-redis-url`` (and the matching ini option) to pytest."""
    group = parser.getgroup("jqc", "jqc job queues")
    group.addoption(
        "--jqc-redis-url",
        dest="jqc_redis_url",
        default=None,
        metavar="URL",
        help=f"run the jqc fixtures against this Redis server (default: ${_ENV}, else the embedded "
        "backend); each test gets its own key prefix, deleted after the test",
    )


def _url(config: pytest.Config) -> str | None:
    url = config.getoption("jqc_redis_url", default=None) or os.environ.get(_ENV) or None
    return None if url is None or url.startswith("memory://") else str(url)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say in pytest's header which backend the jqc fixtures use."""
    url = _url(config)
    return None if url is None else f"jqc: fixtures use Redis at {_redact(url)} (a key prefix per test)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Close the asyncio clients a test's jqc connections opened, while its event loop can still
    run their shutdown (an async test's loop is closed before its fixtures are torn down)."""
    try:
        return (yield)
    finally:
        connections = item.stash.get(_CONNECTIONS, None)
        if connections:
            from jqc.testing.backend import close_async_clients

            for connection in connections:
                close_async_clients(connection)


@pytest.fixture(scope="session")
def _jqc_backend(pytestconfig: pytest.Config) -> Backend:
    from jqc.testing.backend import Backend

    return Backend(_url(pytestconfig))


@pytest.fixture
def jqc_clock() -> jqc.VirtualClock:
    """A jqc.VirtualClock at 2026-01-01T00:00:00Z, the clock of jqc_connection.

    Time moves only when the test says so: advance(seconds), move_to(timestamp) (e.g.
    datetime(...).timestamp()), or while a drain runs (it jumps to each delayed job's due time).
    Set autojump = True to let an async test's own clock sleeps pass at once; freeze() stops it.
    """
    from jqc import VirtualClock

    return VirtualClock()


@pytest.fixture
def jqc_connection(
    request: pytest.FixtureRequest, _jqc_backend: Backend, jqc_clock: jqc.VirtualClock
) -> Iterator[jqc.Connection]:
    """A jqc.Connection on jqc_clock, for this test only.

    Embedded (a fresh in-process server) by default; with --jqc-redis-url / $JQC_REDIS_URL, a real
    server under a key prefix of the test's own, whose keys are deleted after the test.
    """
    problem = _jqc_backend.problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set: not skipping)", pytrace=False)
        pytest.skip(problem)
    connection = _jqc_backend.open(jqc_clock)
    request.node.stash.setdefault(_CONNECTIONS, []).append(connection)
    try:
        yield connection
    finally:
        _jqc_backend.close(connection)


@pytest.fixture
def jqc_queue(jqc_connection: jqc.Connection) -> Callable[..., jqc.Queue]:
    """Makes queues on jqc_connection: jqc_queue("emails", **queue_options) -> jqc.Queue."""
    return jqc_connection.queue


@pytest.fixture
def jqc_async_queue(jqc_connection: jqc.Connection) -> Callable[..., jqc.AsyncQueue]:
    """Makes asyncio queues on jqc_connection: jqc_async_queue("emails", **queue_options) -> jqc.AsyncQueue."""
    return jqc_connection.async_queue


@pytest.fixture
def jqc_worker() -> Callable[..., BurstWorker]:
    """Makes burst workers: jqc_worker(queue_or_queues, handlers, **worker_options) -> jqc.testing.BurstWorker.

    worker.run() (sync tests) or await worker.arun() (async tests) runs every job until none is
    left, moving the virtual clock through delays, backoff and retries, and returns a
    jqc.testing.DrainResult; it raises jqc.testing.DrainError, with each failed job's history, when
    a job fails. Options are jqc.Worker's (concurrency defaults to 1).
    """
    from jqc.testing import BurstWorker

    def make(queues: Any, handlers: Any, **worker_options: Any) -> BurstWorker:
        return BurstWorker(queues, handlers, **worker_options)

    return make
