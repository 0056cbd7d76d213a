"""The engine tests run on every backend: embedded, one server, a Redis Cluster and Sentinel."""

from __future__ import annotations

import pytest

from tests.conftest import ALL_BACKENDS


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind
