"""The jqc pytest plugin: fixtures for testing code that uses jqc. See docs/testing.md.

pytest loads it through the ``pytest11`` entry point wherever jqc is installed. It lives outside
the ``jqc`` package on purpose: pytest imports every registered plugin at start-up, in every
project, and importing ``jqc`` loads redis-py and the engine. This package imports only pytest and
the standard library; jqc is imported when a jqc fixture is first used. ``-p no:jqc`` disables it.

Backends: the embedded one (a fresh in-process server per test) unless a Redis URL is given
(``--jqc-redis-url``, else ``$JQC_REDIS_URL``, else the ``jqc_redis_url`` ini option), and per test
with ``@pytest.mark.jqc(backend=...)``. On a real server every test gets a key prefix of its own,
whose keys are deleted (SCAN + UNLINK) when the test ends. If the server does not answer, tests that
use it are skipped, or fail when the ``CI`` environment variable is set.

Seeds: every random choice jqc.testing makes for a test comes from one stream, seeded from the
run's seed (``--jqc-seed``, the ``jqc_seed`` ini option, 0 by default, ``random`` for a fresh one)
and the test's id. The seed is printed in the header and in the report of a failed test that used
jqc. The running test is published as :data:`active_test` for :mod:`jqc.testing.seeding`.

Async tests: with pytest-asyncio (or another async plugin) they run as that plugin says; without
one, the plugin runs an ``async def`` test that uses a jqc fixture (or is marked ``jqc``) on a fresh
event loop of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from jqc_pytest.fixtures import (
    CONNECTIONS,
    jqc_async_queue,
    jqc_backend,
    jqc_clock,
    jqc_connection,
    jqc_queue,
    jqc_rng,
    jqc_seed,
    jqc_worker,
)
from jqc_pytest.fixtures import _jqc_backends as _jqc_backends  # (a fixture: registered by being here)
from jqc_pytest.settings import (
    ENV_URL,
    FIXTURES,
    MARKER_HELP,
    ActiveTest,
    backend_names,
    marker_settings,
    redact,
    redis_url,
    session_seed,
)

__all__ = [
    "SEED",
    "active_test",
    "jqc_async_queue",
    "jqc_backend",
    "jqc_clock",
    "jqc_connection",
    "jqc_queue",
    "jqc_rng",
    "jqc_seed",
    "jqc_worker",
    "pytest_addoption",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_report_header",
]

#: The run's seed, in ``config.stash``.
SEED = pytest.StashKey[int]()
_ASYNC_PLUGIN_MARKS = ("asyncio", "anyio", "trio")

#: The test running now (None between tests): read by :mod:`jqc.testing.seeding`.
active_test: ActiveTest | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--jqc-redis-url``, ``--jqc-seed`` and their ini options to pytest."""
    group = parser.getgroup("jqc", "jqc job queues")
    group.addoption(
        "--jqc-redis-url",
        dest="jqc_redis_url",
        default=None,
        metavar="URL",
        help=f"run the jqc fixtures against this Redis server (default: ${ENV_URL}, else the jqc_redis_url "
        "ini option, else the embedded backend); each test gets its own key prefix, deleted after the test",
    )
    group.addoption(
        "--jqc-seed",
        dest="jqc_seed",
        default=None,
        metavar="SEED",
        help="seed of every random choice jqc.testing makes (backoff jitter, worker ids): an int, or "
        "'random' for a fresh one (default: the jqc_seed ini option, else 0); printed in the header",
    )
    parser.addini("jqc_redis_url", "Redis URL for the jqc fixtures (--jqc-redis-url and $JQC_REDIS_URL win)")
    parser.addini("jqc_seed", "seed of jqc.testing's random choices: an int or 'random' (--jqc-seed wins)")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``jqc`` marker and draw the session's seed."""
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[SEED] = session_seed(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker process uses the controller's seed (``random`` is drawn once)."""
    node.workerinput["jqc_seed"] = node.config.stash[SEED]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say in pytest's header which seed and backends the jqc fixtures use."""
    seed = config.stash[SEED]
    lines = [f"jqc: seed {seed} (--jqc-seed={seed} replays this run's random choices)"]
    url = redis_url(config)
    if url is not None:
        lines.append(f"jqc: fixtures use Redis at {redact(url)} (a key prefix per test)")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.jqc(backend=[...])`` (or ``"both"``) runs the test once per backend."""
    if "jqc_backend" not in metafunc.fixturenames:
        return
    backend = marker_settings(metafunc.definition).get("backend")
    if backend is None or (isinstance(backend, str) and backend != "both"):
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        names = [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
        if "jqc_backend" in names:
            return  # parametrized by the test itself
    names = backend_names(backend)
    metafunc.parametrize("jqc_backend", names, indirect=True, ids=names)


def _uses_jqc(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return item.get_closest_marker("jqc") is not None or any(name in FIXTURES for name in names)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Give each test its own random stream, derived from the session seed and the test id."""
    global active_test
    try:
        seed = marker_settings(item).get("seed") if item.get_closest_marker("jqc") else None
    except Exception:  # (a marker written wrong: pytest_runtest_setup reports it)
        seed = None
    outer = active_test  # (a test running pytest in process, as pytester does, gets its own back)
    active_test = ActiveTest(
        item.config.stash[SEED] if seed is None else seed, item.nodeid, from_marker=seed is not None
    )
    try:
        return (yield)
    finally:
        active_test = outer


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Check a ``jqc`` marker before the test runs, so a marker written wrong fails its own test."""
    if item.get_closest_marker("jqc") is not None:
        marker_settings(item)  # a marker written wrong fails its test here, whatever fixtures it uses


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add a ``jqc`` section (the seed to replay with) to the report of a failed test that used jqc."""
    report = yield
    active = active_test
    if report.failed and active is not None and (active.drawn or _uses_jqc(item)):
        if not any(name == "jqc" for name, _ in report.sections):
            report.sections.append(("jqc", active.note()))
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that uses jqc when no async plugin took it (see the module docstring)."""
    function = pyfuncitem.obj
    if not inspect.iscoroutinefunction(function) or not _uses_jqc(pyfuncitem):
        return None
    if any(pyfuncitem.get_closest_marker(mark) is not None for mark in _ASYNC_PLUGIN_MARKS):
        return None  # (an async plugin's marker: its plugin runs it)
    import asyncio

    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def main() -> None:
        try:
            await function(**arguments)
        finally:  # the loop ends with the test: close the clients jqc opened on it
            for connection in pyfuncitem.stash.get(CONNECTIONS, []):
                await connection.aclose()

    asyncio.run(main())
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Close the asyncio clients a test's jqc connections opened, while its event loop can still
    run their shutdown (an async test's loop is closed before its fixtures are torn down)."""
    try:
        return (yield)
    finally:
        connections = item.stash.get(CONNECTIONS, None)
        if connections:
            from jqc.testing.backend import close_async_clients

            for connection in connections:
                close_async_clients(connection)
