"""The plugin's tests drive a small downstream project (``downstream/``) with pytest's pytester.

``downstream/`` is a project of its own, run by those tests, never collected here. pytester is
enabled for this folder only, from ``pytest_configure``: pytest refuses ``pytest_plugins`` in a
conftest below the top level.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis

import jqc
from jqc.testing import temporary_connection
from tests.conftest import REDIS_URL  # the xdist worker's own database: other workers flush theirs

collect_ignore = ["downstream"]

# Plugins the inner runs do not use: hypothesis's alone costs seconds per run; pytest-playwright's
# (when installed) opens a scope per test that cannot nest inside the outer run's.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:playwright")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


def real_redis_url() -> str:
    """The real server's URL; fails the test when CI is set and it does not answer, else skips it."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        message = f"real Redis at {REDIS_URL} does not answer: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return REDIS_URL


def closed_port_url() -> str:
    """A redis:// URL on a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(params=["embedded", "redis"])
def backend(request: pytest.FixtureRequest) -> list[str]:
    """Extra arguments for an inner pytest run selecting the backend (a real server must answer in CI)."""
    if request.param == "embedded":
        return []
    return ["--jqc-redis-url", real_redis_url()]


@pytest.fixture
def clock() -> jqc.VirtualClock:
    return jqc.VirtualClock()


@pytest.fixture(params=["embedded", "redis"])
def conn(request: pytest.FixtureRequest, clock: jqc.VirtualClock) -> Iterator[jqc.Connection]:
    """A connection on ``clock``, on each backend in turn (a real server under a key prefix of its own)."""
    url = None if request.param == "embedded" else real_redis_url()
    with temporary_connection(url, clock=clock) as connection:
        yield connection
