"""Backends: where the engine's calls go. One typed seam (:mod:`jqc.backends.base`), one factory per
kind of deployment (embedded fakeredis+Lua, one Redis server, a Redis Cluster, a Sentinel group), one
URL parser, one error mapping.

Nothing above this package knows which backend it talks to: the engine hands calls to a
:class:`SyncBackend` or :class:`AsyncBackend` and gets raw replies or jqc's typed errors back.
"""

from __future__ import annotations

from jqc.backends.base import (
    Arg,
    AsyncBackend,
    BackendFactory,
    Outcome,
    Reply,
    Script,
    ScriptInvocation,
    SyncBackend,
)
from jqc.backends.topology_url import parse_url
from jqc.backends.url import ServerConfig, parse_server_url, redact

__all__ = [
    "Arg",
    "AsyncBackend",
    "BackendFactory",
    "Outcome",
    "Reply",
    "Script",
    "ScriptInvocation",
    "ServerConfig",
    "SyncBackend",
    "open_factory",
    "parse_server_url",
    "parse_url",
    "redact",
]


def open_factory(config: ServerConfig) -> BackendFactory:
    """The factory for ``config``'s kind of deployment (nothing is connected yet)."""
    if config.embedded:
        from jqc.backends.embedded import EmbeddedFactory

        return EmbeddedFactory(config)
    if config.topology == "cluster":
        from jqc.backends.cluster import ClusterFactory

        return ClusterFactory(config)
    if config.topology == "sentinel":
        from jqc.backends.sentinel import SentinelFactory

        return SentinelFactory(config)
    from jqc.backends.server import ServerFactory

    return ServerFactory(config)
