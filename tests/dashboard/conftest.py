"""Fixtures of the dashboard tests: a TestClient on the dashboard of the ``conn`` fixture's
connection (both backends), and a way to read the CSRF token of a rendered page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

import jqc
import jqc.dashboard

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
