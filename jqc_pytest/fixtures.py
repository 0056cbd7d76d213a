"""The plugin's fixtures (registered by ``jqc_pytest``, which imports them). See docs/testing.md.

Every fixture is function-scoped: a test gets its own clock, connection (a fresh embedded server,
or its own key prefix on a real one) and random stream, and nothing is shared between tests.
Within a test, ``jqc_queue``, ``jqc_async_queue`` and ``jqc_worker`` all work on ``jqc_connection``
and so on ``jqc_clock``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from jqc_pytest.settings import BACKENDS, ENV_URL, marker_settings, redis_url

if TYPE_CHECKING:
    import random

    import jqc
    from jqc.testing import BurstWorker
    from jqc.testing.backend import Backend

__all__ = [
    "CONNECTIONS",
    "jqc_async_queue",
    "jqc_backend",
    "jqc_clock",
    "jqc_connection",
    "jqc_queue",
    "jqc_rng",
    "jqc_seed",
    "jqc_worker",
]

#: The connections a test's fixtures opened (their asyncio clients are closed with the test's loop).
CONNECTIONS = pytest.StashKey[list[Any]]()


@pytest.fixture(scope="session")
def _jqc_backends(pytestconfig: pytest.Config) -> dict[str, Backend | None]:
    from jqc.testing.backend import Backend

    url = redis_url(pytestconfig)
    return {"embedded": Backend(None), "redis": Backend(url) if url is not None else None}


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: not skipping)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def jqc_backend(request: pytest.FixtureRequest) -> str:
    """The backend this test's jqc fixtures use: "embedded" or "redis".

    "redis" when a Redis URL is configured (--jqc-redis-url, $JQC_REDIS_URL or the jqc_redis_url
    ini option), else "embedded"; @pytest.mark.jqc(backend=...) chooses per test (a list, or
    "both", runs the test on each), as does parametrizing it: parametrize("jqc_backend",
    ["embedded", "redis"], indirect=True).
    """
    from jqc.errors import InvalidOptionError

    chosen = getattr(request, "param", None)
    if chosen is None:
        chosen = marker_settings(request.node).get("backend")
    if chosen is None:
        chosen = "redis" if redis_url(request.config) is not None else "embedded"
    if chosen not in BACKENDS:
        raise InvalidOptionError(f"unknown jqc backend {chosen!r}: use 'embedded' or 'redis'")
    return str(chosen)


@pytest.fixture
def jqc_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's random stream: the run's (--jqc-seed, the jqc_seed ini option, 0 by
    default) or @pytest.mark.jqc(seed=...)'s."""
    import jqc_pytest

    active = jqc_pytest.active_test
    return active.seed if active is not None else int(request.config.stash[jqc_pytest.SEED])


@pytest.fixture
def jqc_rng(jqc_seed: int) -> random.Random:
    """This test's random stream, the one its drains' workers draw from (backoff jitter, worker ids):
    the same numbers on every run with the same seed, whichever other tests run."""
    import random

    import jqc_pytest

    active = jqc_pytest.active_test
    return active.rng if active is not None else random.Random(jqc_seed)


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
    request: pytest.FixtureRequest,
    _jqc_backends: dict[str, Backend | None],
    jqc_backend: str,
    jqc_clock: jqc.VirtualClock,
) -> Iterator[jqc.Connection]:
    """A jqc.Connection on jqc_clock, for this test only.

    Embedded (a fresh in-process server) by default; on a real server (see jqc_backend) under a
    key prefix of the test's own, whose keys are deleted after the test. With
    @pytest.mark.jqc(inline=handlers) its queues are inline: add runs each new job at once.
    """
    backend = _jqc_backends[jqc_backend]
    if backend is None:
        _skip_or_fail(
            "jqc: backend 'redis' needs a Redis URL: pass --jqc-redis-url, set $"
            f"{ENV_URL} or the jqc_redis_url ini option"
        )
        raise AssertionError("unreachable")  # (skip and fail raise)
    problem = backend.problem()
    if problem is not None:
        _skip_or_fail(problem)
    settings = marker_settings(request.node)
    connection = backend.open(jqc_clock)
    opened = request.node.stash.setdefault(CONNECTIONS, [])
    opened.append(connection)
    try:
        if settings.get("inline") is not None:
            from jqc.testing import inline

            view = inline(connection, settings["inline"])
            opened.append(view)
            yield view
        else:
            yield connection
    finally:
        backend.close(connection)


@pytest.fixture
def jqc_queue(jqc_connection: jqc.Connection) -> Callable[..., jqc.Queue]:
    """Makes queues on jqc_connection: jqc_queue("emails", **queue_options) -> jqc.Queue.

    Two calls with one name give two handles on the same queue."""
    return jqc_connection.queue


@pytest.fixture
def jqc_async_queue(jqc_connection: jqc.Connection) -> Callable[..., jqc.AsyncQueue]:
    """Makes asyncio queues on jqc_connection: jqc_async_queue("emails", **queue_options) -> jqc.AsyncQueue.

    The same data as jqc_queue's: jqc_queue("emails") and jqc_async_queue("emails") are one queue."""
    return jqc_connection.async_queue


@pytest.fixture
def jqc_worker() -> Callable[..., BurstWorker]:
    """Makes burst workers: jqc_worker(queue_or_queues, handlers, **worker_options) -> jqc.testing.BurstWorker.

    worker.run() (sync tests) or await worker.arun() (async tests) runs every job until none is
    left, moving the virtual clock through delays, backoff and retries, and returns a
    jqc.testing.DrainResult; it raises jqc.testing.DrainError, with each failed job's history, when
    a job fails. run() takes drain's until=, jobs= and other arguments. Options are jqc.Worker's
    (concurrency defaults to 1).
    """
    from jqc.testing import BurstWorker

    def make(queues: Any, handlers: Any, **worker_options: Any) -> BurstWorker:
        return BurstWorker(queues, handlers, **worker_options)

    return make
