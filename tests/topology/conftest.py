"""Fixtures of the topology tests: a Redis Cluster (3 masters, 3 replicas) and a Sentinel group (a
master, a replica, 3 sentinels) of their own, one per test module, started from the installed
``redis-server`` on free loopback ports (7112-7199, sentinels 26350-26399: not the shared local
topologies of scripts/redis-topology, which these tests never touch) and killed by pid afterwards.

A machine without ``redis-server`` skips them, except under ``CI``, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from jqc.testing.topology import LocalCluster, LocalSentinel, TopologyError
from tests.servers import redis_server_binary

#: Ports of the servers these tests start (7110 and 7111 are the private group of tests/backends).
PORTS = range(7112, 7200)
SENTINEL_PORTS = range(26350, 26400)


def _started(topology: LocalCluster | LocalSentinel) -> LocalCluster | LocalSentinel:
    redis_server_binary()  # (fails under CI, skips elsewhere, when there is none)
    try:
        return topology.start()
    except TopologyError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the local topology did not start: {exc}")
        pytest.skip(f"the local topology did not start: {exc}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A cluster of 3 masters with a replica each, failing over within ~2 s (node timeout 1 s)."""
    topology = LocalCluster(3, 1, ports=PORTS, node_timeout=1000)
    started = _started(topology)
    assert isinstance(started, LocalCluster)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def sentinel_group() -> Iterator[LocalSentinel]:
    """A master, a replica and 3 sentinels (quorum 2, down after 1 s) watching them as ``topo``."""
    topology = LocalSentinel(ports=PORTS, sentinel_ports=SENTINEL_PORTS, down_after=1000, failover_timeout=3000)
    started = _started(topology)
    assert isinstance(started, LocalSentinel)
    try:
        yield started
    finally:
        started.stop()
