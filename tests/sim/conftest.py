from __future__ import annotations

from collections.abc import Iterator

import pytest

import jqc
from tests.sim.helpers import fast_connection


@pytest.fixture(scope="module")
def fast() -> Iterator[jqc.Connection]:
    conn = fast_connection()
    yield conn
    conn.close()
