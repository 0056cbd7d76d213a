"""Fixtures of the dashboard tests: a TestClient on the dashboard of the ``conn`` fixture's
connection (both backends), and a way to read the CSRF token of a rendered page."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.testclient import TestClient

import jqc
import jqc.dashboard

from ..conftest import BACKENDS
from .browser import ServerThread, host_app, launch_options, missing_browser

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def token_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = TOKEN.search(html)
    assert found, "the page has no action form"
    return found.group(1)


def notice_of(html: str) -> str:
    """The notice an action left on the page it redirected to."""
    found = re.search(r'role="status">([^<]*)<', html)
    return found.group(1) if found else ""


@pytest.fixture
def client(conn: jqc.Connection) -> Iterator[TestClient]:
    with TestClient(jqc.dashboard.app(conn)) as test_client:
        yield test_client


# -- the browser tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system Chromium under Playwright's sync API, for one test module; it fails (never skips)
    under CI when Chromium is missing.

    Module scope, not session: while the sync API runs it keeps an event loop marked running in this
    thread, which would make every later test that guards against a running loop fail.
    """
    missing = missing_browser()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests need Chromium: {missing}")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(**launch_options())
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in a fresh browser context (its own cookies)."""
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


DASHBOARD_REDIS_URL = os.environ.get("JQC_DASHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _live_connection(kind: str) -> jqc.Connection:
    """A real-time connection: embedded, or the shared Redis under a prefix of this run's own."""
    if kind == "fake":
        return jqc.connect()
    conn = jqc.connect(DASHBOARD_REDIS_URL, prefix=f"jqc-dash-{uuid.uuid4().hex[:12]}", socket_connect_timeout=2)
    try:
        conn.ping()
    except Exception as exc:
        message = f"real Redis at {DASHBOARD_REDIS_URL} does not answer: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return conn


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[jqc.Connection, str]]:
    """(connection, base URL) of a host app serving the dashboard at /jobs and read-only at /ro."""
    conn = _live_connection(request.param)
    try:
        with ServerThread(host_app(conn)) as server:
            yield conn, server.url
    finally:
        if not conn.embedded:
            for name in conn.queue_names():
                conn.queue(name).obliterate(force=True)
        conn.close()
