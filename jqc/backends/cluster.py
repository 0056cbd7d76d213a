"""The Redis Cluster backend (``redis+cluster://``, ``rediss+cluster://``).

The topology (which master serves which of the 16,384 slots) is read with ``CLUSTER SLOTS`` from
the nodes last known to be in the cluster, then the seed nodes of the URL, and read again after a
failover or when a node cannot be reached; a ``MOVED`` redirection teaches one slot at once.
jqc's calls go straight to the node of their slot through the single-server transports
(:mod:`jqc.backends.routed`). Every key of one queue carries the queue's hash tag (``{name}``),
so all of a queue's calls, scripts and batches land on one node, and queues spread over the
masters by their names. Queue discovery (``SCAN``) and administrative commands go to every master.

The topology is read by jqc itself rather than by redis-py's :class:`~redis.cluster.RedisCluster`,
whose constructor also sends ``COMMAND`` (a large reply, and a right least-privilege users do not
have); :meth:`ClusterFactory.native_client` is a ``RedisCluster`` for the commands jqc does not wrap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.cluster
import redis.exceptions as rex

from jqc.backends.base import Reply
from jqc.backends.exchange import Answer, Command
from jqc.backends.plans import node_config
from jqc.backends.refusals import CLIENT_ERRORS, refusal_code, translate
from jqc.backends.routed import AsyncRoutedBackend, RoutedBackend
from jqc.backends.routing import TopologyUnknownError
from jqc.backends.url import ServerConfig
from jqc.errors import JqcError, ServerRefusedError, TlsError

__all__ = ["ClusterFactory", "cluster_options", "parse_slots"]

SLOTS = 16384
_READ_ERRORS: tuple[type[BaseException], ...] = (*CLIENT_ERRORS, JqcError)
_ASK: Command = ("CLUSTER", "SLOTS")


def cluster_options(config: ServerConfig) -> dict[str, Any]:
    """Keyword arguments for a redis-py cluster client of ``config``'s seed nodes."""
    options = node_config(config, f"{config.host}:{config.port}").redis_py_options()
    for name in ("db", "host", "port", "unix_socket_path"):
        options.pop(name, None)
    return options


def _name(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_slots(reply: Reply, asked: str) -> tuple[list[str | None], list[str], list[str]]:
    """A ``CLUSTER SLOTS`` reply as (the master of each slot, the masters, every node), by ``host:port``.

    A node announcing no host (an empty one, or ``?``) is reached at the host it was asked on.
    """
    if not isinstance(reply, list):
        raise rex.ResponseError(f"unexpected CLUSTER SLOTS reply: {reply!r:.200}")
    asked_host = asked.rpartition(":")[0].strip("[]")
    slots: list[str | None] = [None] * SLOTS
    masters: list[str] = []
    nodes: list[str] = []
    for entry in reply:
        if not isinstance(entry, list) or len(entry) < 3 or not all(isinstance(n, list) for n in entry[2:]):
            raise rex.ResponseError(f"unexpected CLUSTER SLOTS entry: {entry!r:.200}")
        first, last = int(str(entry[0])), int(str(entry[1]))
        served: list[str] = []
        for node in entry[2:]:
            assert isinstance(node, list)
            host = str(node[0]) if node and node[0] not in (None, "", "?") else asked_host
            served.append(_name(host, int(str(node[1]))))
        if not 0 <= first <= last < SLOTS:
            raise rex.ResponseError(f"unexpected slot range in CLUSTER SLOTS: {first}-{last}")
        slots[first : last + 1] = [served[0]] * (last - first + 1)
        masters.append(served[0])
        nodes += served
    return slots, sorted(set(masters)), list(dict.fromkeys(nodes))


def _failure(config: ServerConfig, errors: Sequence[BaseException]) -> BaseException:
    """What a failed topology read raises: a final error (credentials, ACL, TLS, not a cluster), or a
    :class:`TopologyUnknownError` that the backend retries."""
    for exc in errors:
        if isinstance(exc, TlsError):
            return exc
        if isinstance(exc, JqcError) and not exc.retryable:
            return exc
        if isinstance(exc, rex.AuthenticationError) or refusal_code(exc) in ("NOPERM", "WRONGPASS", "NOAUTH"):
            return translate(exc)
        if isinstance(exc, rex.ResponseError) and "cluster support disabled" in str(exc):
            return ServerRefusedError(
                f"the server at {config.host}:{config.port} is not a cluster node (cluster support disabled): "
                "reach a single server with a redis:// URL"
            )
    seeds = ", ".join(_name(host, port) for host, port in config.nodes)
    last = f": {type(errors[-1]).__name__}: {errors[-1]}" if errors else ""
    error = TopologyUnknownError(f"no node of the cluster told its slots (seeds {seeds}){last}")
    if errors:
        error.__cause__ = errors[-1]
    return error


class _SlotMap:
    """Which master serves each slot, as last read (plus what MOVED redirections taught since)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.stale = True
        self._slots: list[str | None] = [None] * SLOTS
        self._masters: list[str] = []
        self._nodes: list[str] = []

    def address(self, slot: int | None) -> str:
        if slot is None:
            if not self._masters:
                raise rex.ClusterDownError("CLUSTERDOWN no master is known yet")
            return self._masters[0]
        found = self._slots[slot]
        if found is None:
            raise rex.ClusterDownError(f"CLUSTERDOWN slot {slot} is served by no master the cluster announced")
        return found

    def masters(self) -> list[str]:
        return list(self._masters)

    def moved(self, slot: int, address: str) -> None:
        self._slots[slot] = address

    def candidates(self) -> list[str]:
        """Where to ask for the slots: the nodes last seen in the cluster, then the seeds."""
        seeds = [_name(host, port) for host, port in self.config.nodes]
        return list(dict.fromkeys([*self._nodes, *seeds]))

    def learn(self, reply: Reply, asked: str) -> None:
        slots, masters, nodes = parse_slots(reply, asked)
        if not masters:
            raise rex.ClusterDownError("CLUSTERDOWN the cluster serves no slot yet")
        self._slots, self._masters, self._nodes = slots, masters, nodes
        self.stale = False


SyncSend = Callable[[str, list[Command]], list[Answer]]
AsyncSend = Callable[[str, list[Command]], Awaitable[list[Answer]]]


class ClusterRouter(_SlotMap):
    """The slot map of a cluster, read through the sync backend's own node connections."""

    def __init__(self, config: ServerConfig, send: SyncSend) -> None:
        super().__init__(config)
        self._send = send
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            errors: list[BaseException] = []
            for address in self.candidates():
                try:
                    answer = self._send(address, [_ASK])[0]
                    if isinstance(answer, BaseException):
                        raise answer
                    self.learn(answer, address)
                    return
                except _READ_ERRORS as exc:
                    errors.append(exc)
            raise _failure(self.config, errors)

    def close(self) -> None:
        """(The node connections are the backend's.)"""


class AsyncClusterRouter(_SlotMap):
    """As :class:`ClusterRouter`, through an asyncio backend's node connections."""

    def __init__(self, config: ServerConfig, send: AsyncSend) -> None:
        super().__init__(config)
        self._send = send

    async def refresh(self) -> None:
        errors: list[BaseException] = []
        for address in self.candidates():
            try:
                answer = (await self._send(address, [_ASK]))[0]
                if isinstance(answer, BaseException):
                    raise answer
                self.learn(answer, address)
                return
            except _READ_ERRORS as exc:
                errors.append(exc)
        raise _failure(self.config, errors)

    async def aclose(self) -> None:
        """(The node connections are the backend's.)"""


class ClusterFactory:
    """One Redis Cluster and the backends that reach it.

    ``sleep`` and ``async_sleep`` wait between tries while the cluster fails over or reshards
    (real time by default; tests inject their own).
    """

    kind = "cluster"
    in_process = False

    def __init__(
        self,
        config: ServerConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._sync = RoutedBackend(config, lambda send: ClusterRouter(config, send), sleep=sleep)  # (checks TLS files)
        self._native: redis.cluster.RedisCluster | None = None
        self._native_lock = threading.Lock()

    @property
    def safe_url(self) -> str:
        return self.config.safe_url

    def sync_backend(self) -> RoutedBackend:
        return self._sync

    def async_backend(self) -> AsyncRoutedBackend:
        return AsyncRoutedBackend(
            self.config, lambda send: AsyncClusterRouter(self.config, send), sleep=self._async_sleep
        )

    def native_client(self) -> redis.cluster.RedisCluster:
        """A redis-py :class:`~redis.cluster.RedisCluster` of the same cluster (its own retries on)."""
        with self._native_lock:
            if self._native is None:
                seeds = [redis.cluster.ClusterNode(host, port) for host, port in self.config.nodes]  # type: ignore[no-untyped-call]
                self._native = redis.cluster.RedisCluster(startup_nodes=seeds, **cluster_options(self.config))
            return self._native

    def close(self) -> None:
        self._sync.close()
        native, self._native = self._native, None
        if native is not None:
            native.close()
