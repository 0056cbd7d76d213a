"""Throwaway local Redis topologies for failure tests and benchmarks: a cluster, a Sentinel group.

:class:`LocalCluster` (any number of masters, each with its replicas), :class:`LocalSentinel` (a
master, its replicas and three sentinels) and :class:`LocalRedis` (one plain server) start
``redis-server`` processes of their own, on the loopback interface only, on free ports of a range
the caller gives, with no persistence and short timeouts so that failovers take seconds. Every
process is a child of the caller, stopped by its pid (SIGKILL: there is nothing to save);
:meth:`LocalServer.kill` is the crash a failure test injects. Ports are taken under a file lock,
so parallel test processes never start two servers on one port.

They are test fixtures, not deployments: nothing here is meant for data anyone keeps.
"""

from __future__ import annotations

from jqc.testing.local_cluster import LocalCluster
from jqc.testing.local_sentinel import LocalSentinel
from jqc.testing.local_servers import (
    HOST,
    SLOTS,
    LocalRedis,
    LocalServer,
    TopologyError,
    redis_server_binary,
    wait_until,
)

__all__ = [
    "HOST",
    "SLOTS",
    "LocalCluster",
    "LocalRedis",
    "LocalSentinel",
    "LocalServer",
    "TopologyError",
    "redis_server_binary",
    "wait_until",
]
