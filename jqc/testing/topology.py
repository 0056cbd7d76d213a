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

import contextlib
import ctypes
import fcntl
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

__all__ = [
    "LocalCluster",
    "LocalRedis",
    "LocalSentinel",
    "LocalServer",
    "TopologyError",
    "redis_server_binary",
    "wait_until",
]

#: Where every server of a local topology listens (loopback only).
HOST = "127.0.0.1"
#: The slots of a Redis Cluster, split evenly between the masters of a :class:`LocalCluster`.
SLOTS = 16384
_LOCK = Path(tempfile.gettempdir()) / "jqc-local-topology-ports.lock"


class TopologyError(RuntimeError):
    """A local topology could not be started or did not become healthy in time."""


def redis_server_binary() -> str:
    """The installed ``redis-server``, or :class:`TopologyError` when there is none."""
    path = shutil.which("redis-server")
    if path is None:
        raise TopologyError("redis-server is not installed")
    return path


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (as redis-server binds)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _port_lock() -> Iterator[None]:
    """Held while ports are chosen and their servers start listening (across processes)."""
    with open(_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _take_ports(count: int, ports: range) -> list[int]:
    found = [port for port in ports if _free(port)][:count]
    if len(found) < count:
        raise TopologyError(f"{count} free ports wanted in {ports.start}-{ports.stop - 1}, found {len(found)}")
    return found


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, be SIGKILLed when the process that started it dies
    (so a test run that crashes leaves no server behind)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0, every: float = 0.05) -> None:
    """Poll ``check`` until it is true, or raise :class:`TopologyError` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TopologyError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class LocalServer:
    """One ``redis-server`` (or sentinel) child process on ``port``, its files under ``workdir``."""

    def __init__(self, port: int, workdir: Path, args: list[str], *, sentinel: bool = False) -> None:
        self.port = port
        self.workdir = workdir / str(port)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.sentinel = sentinel
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{HOST}:{self.port}"

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 5.0) -> redis.Redis:
        """A plain redis-py client of this one process (not cluster-aware), decoding replies."""
        return redis.Redis(host=HOST, port=self.port, decode_responses=True, socket_timeout=timeout)

    def start(self) -> LocalServer:
        """Start the process (its files kept from a previous run); returns once it answers PING."""
        common = ["--port", str(self.port), "--bind", HOST, "--protected-mode", "no", "--daemonize", "no"]
        common += ["--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]
        if self.sentinel:
            conf = self.workdir / "sentinel.conf"
            if not conf.exists():
                conf.write_text("\n".join(self.args) + "\n")
            argv = [redis_server_binary(), str(conf), "--sentinel", *common]
        else:
            argv = [redis_server_binary(), *common, "--save", "", "--appendonly", "no", "--shutdown-timeout", "0"]
            argv += ["--repl-diskless-sync-delay", "0"]  # (a replica syncs at once, not 5 s later)
            argv += self.args
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        wait_until(self._answers, f"redis-server on port {self.port} (see {self.workdir / 'redis.log'})", 20)
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise TopologyError(f"redis-server on port {self.port} exited: see {self.workdir / 'redis.log'}")
        with self.client(1.0) as client:
            try:
                return bool(client.ping())
            except redis.ResponseError:
                return True  # answering, with a refusal (LOADING, MASTERDOWN ...)

    def pause(self) -> None:
        """SIGSTOP the process: it neither answers nor replicates until :meth:`resume`."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused process."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the process (a crash: no goodbye to clients or replicas) and reap it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


class _Topology:
    """What both topologies share: their servers, a work directory, stopping everything."""

    def __init__(self, workdir: Path | None) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="jqc-topo-")) if workdir is None else workdir
        self.servers: list[LocalServer] = []

    def stop(self) -> None:
        """Kill every process by its pid and delete the work directory (when it made it)."""
        for server in self.servers:
            server.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> _Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalRedis(_Topology):
    """One plain ``redis-server`` (no cluster mode) on a free port of ``ports``."""

    def __init__(self, *, ports: range = range(7102, 7200), workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.port_range = ports

    @property
    def server(self) -> LocalServer:
        """The one server."""
        return self.servers[0]

    @property
    def url(self) -> str:
        """Its ``redis://`` URL (database 0)."""
        return f"redis://{self.server.address}/0"

    def start(self) -> LocalRedis:
        """Start it; returns once it answers."""
        with _port_lock():
            self.servers.append(LocalServer(_take_ports(1, self.port_range)[0], self.workdir, []))
            self.server.start()
        return self


class LocalCluster(_Topology):
    """A Redis Cluster of ``masters`` masters with ``replicas`` replicas each, slots split evenly.

    Data and cluster-bus ports both come from ``ports``. ``node_timeout`` (ms) is the
    ``cluster-node-timeout``: how long a master may be unreachable before its replica takes over.
    """

    def __init__(
        self,
        masters: int = 3,
        replicas: int = 1,
        *,
        ports: range = range(7102, 7200),
        node_timeout: int = 1000,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.masters_wanted, self.replicas_wanted = masters, replicas
        self.port_range, self.node_timeout = ports, node_timeout
        self.ids: dict[int, str] = {}
        self.bus: dict[int, int] = {}

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL with every node as a seed."""
        return "redis+cluster://" + ",".join(server.address for server in self.servers)

    def start(self) -> LocalCluster:
        """Start the nodes, assign the slots, attach the replicas; returns once every node says ok
        (everything started is stopped again when it fails)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCluster:
        count = self.masters_wanted * (1 + self.replicas_wanted)
        with _port_lock():
            ports = _take_ports(2 * count, self.port_range)
            for port, bus in zip(ports[:count], ports[count:], strict=True):
                args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
                args += ["--cluster-port", str(bus), "--cluster-node-timeout", str(self.node_timeout)]
                args += ["--cluster-replica-validity-factor", "0", "--cluster-allow-replica-migration", "no"]
                server = LocalServer(port, self.workdir, args)
                self.servers.append(server)
                server.start()
                self.bus[port] = bus
        masters = self.servers[: self.masters_wanted]
        for server in self.servers:
            with server.client() as client:
                self.ids[server.port] = str(client.execute_command("CLUSTER", "MYID"))
        step = SLOTS // len(masters)
        for i, server in enumerate(masters):
            last = SLOTS - 1 if i == len(masters) - 1 else (i + 1) * step - 1
            with server.client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
        with self.servers[0].client() as first:
            for server in self.servers[1:]:
                first.execute_command("CLUSTER", "MEET", HOST, server.port, self.bus[server.port])
        wait_until(lambda: all(self._knows_all(s) for s in self.servers), "every node to know every other", 30)
        for j, server in enumerate(self.servers[len(masters) :]):
            master = masters[j % len(masters)]
            with server.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", self.ids[master.port])
        self.wait_healthy()
        return self

    def _knows_all(self, server: LocalServer) -> bool:
        with server.client(1.0) as client:
            nodes = str(client.execute_command("CLUSTER", "NODES"))
        return sum(1 for line in nodes.splitlines() if "handshake" not in line and "noaddr" not in line) == len(
            self.servers
        )

    def _info(self, server: LocalServer) -> dict[str, str]:
        with server.client(1.0) as client:
            text = str(client.execute_command("CLUSTER", "INFO"))
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok`` and each master has its replicas in sync."""

        def healthy() -> bool:
            live = [server for server in self.servers if server.alive]
            if not all(self._info(server).get("cluster_state") == "ok" for server in live):
                return False
            return all(self._replicas_in_sync(master) for master in self.masters())

        wait_until(healthy, "the cluster to be ok, its replicas in sync", timeout)

    def _replicas_in_sync(self, master: LocalServer) -> bool:
        with master.client(1.0) as client:
            info = client.info("replication")
        replicas = self.replicas_of(master)
        if int(info.get("connected_slaves", 0)) < min(self.replicas_wanted, len(replicas)):
            return False
        for server in replicas:
            with server.client(1.0) as client:
                link = client.info("replication")
            if link.get("master_link_status") != "up" or int(link.get("master_sync_in_progress", 1)):
                return False
        return True

    def replicas_of(self, master: LocalServer) -> list[LocalServer]:
        """The live nodes that replicate ``master``."""
        return [server for server in self.servers if server.alive and self.master_of(server) is master]

    def _nodes(self, via: LocalServer) -> list[list[str]]:
        with via.client(1.0) as client:
            return [line.split() for line in str(client.execute_command("CLUSTER", "NODES")).splitlines()]

    def _any_live(self) -> LocalServer:
        for server in self.servers:
            if server.alive:
                return server
        raise TopologyError("no node of the cluster runs")

    def masters(self) -> list[LocalServer]:
        """The live nodes that are masters of at least one slot, as the cluster sees them now."""
        by_id = {self.ids[server.port]: server for server in self.servers}
        found = []
        for fields in self._nodes(self._any_live()):
            server = by_id.get(fields[0])
            if server is not None and server.alive and "master" in fields[2] and len(fields) > 8:
                found.append(server)
        return found

    def master_of(self, server: LocalServer) -> LocalServer | None:
        """The master ``server`` replicates, or None for a master."""
        by_id = {self.ids[s.port]: s for s in self.servers}
        for fields in self._nodes(self._any_live()):
            if fields[0] == self.ids[server.port]:
                return by_id.get(fields[3]) if fields[3] != "-" else None
        return None

    def serving(self, slot: int) -> LocalServer:
        """The master that serves ``slot`` now."""
        with self._any_live().client(1.0) as client:
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(master[1])
                    return next(server for server in self.servers if server.port == port)
        raise TopologyError(f"no master serves slot {slot}")


class LocalSentinel(_Topology):
    """A master, ``replicas`` replicas and ``sentinels`` sentinels (quorum 2) watching them as ``name``.

    Redis servers take ports from ``ports``, sentinels from ``sentinel_ports``; ``down_after``
    (ms) is how long the master may be silent before the sentinels fail it over.
    """

    def __init__(
        self,
        *,
        name: str = "topo",
        replicas: int = 1,
        sentinels: int = 3,
        ports: range = range(7102, 7200),
        sentinel_ports: range = range(26350, 26400),
        down_after: int = 1000,
        failover_timeout: int = 3000,
        workdir: Path | None = None,
    ) -> None:
        super().__init__(workdir)
        self.name, self.replicas_wanted, self.sentinels_wanted = name, replicas, sentinels
        self.port_range, self.sentinel_range = ports, sentinel_ports
        self.down_after, self.failover_ms = down_after, failover_timeout
        self.data: list[LocalServer] = []
        self.sentinels: list[LocalServer] = []

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the group's service."""
        return "redis+sentinel://" + ",".join(s.address for s in self.sentinels) + f"/{self.name}"

    def start(self) -> LocalSentinel:
        """Start the servers, then the sentinels; returns once the group is healthy (everything
        started is stopped again when it fails)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalSentinel:
        with _port_lock():
            ports = _take_ports(1 + self.replicas_wanted, self.port_range)
            watch = _take_ports(self.sentinels_wanted, self.sentinel_range)
            for port in ports:
                args = [] if port == ports[0] else ["--replicaof", HOST, str(ports[0])]
                self.data.append(self._started(LocalServer(port, self.workdir, args)))
            conf = [f"sentinel monitor {self.name} {HOST} {ports[0]} 2"]
            conf += [f"sentinel down-after-milliseconds {self.name} {self.down_after}"]
            conf += [f"sentinel failover-timeout {self.name} {self.failover_ms}"]
            for port in watch:
                self.sentinels.append(self._started(LocalServer(port, self.workdir, conf, sentinel=True)))
        self.wait_healthy()
        return self

    def _started(self, server: LocalServer) -> LocalServer:
        self.servers.append(server)
        return server.start()

    def master(self) -> LocalServer:
        """The data server the first live sentinel names as master."""
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            with sentinel.client(1.0) as client:
                _host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
            return next(server for server in self.data if server.port == int(port))
        raise TopologyError("no sentinel runs")

    def role(self, server: LocalServer) -> str:
        """``master`` or ``slave``, as ``server`` itself says (``ROLE``)."""
        with server.client(1.0) as client:
            return str(client.execute_command("ROLE")[0])

    def wait_healthy(self, timeout: float = 40.0) -> None:
        """Until every sentinel names one master that says it is master, every other live server
        replicates it in sync, and each sentinel knows the replicas and the other sentinels."""

        def healthy() -> bool:
            master = self.master()
            if self.role(master) != "master":
                return False
            for sentinel in self.sentinels:
                with sentinel.client(1.0) as client:
                    info = client.execute_command("SENTINEL", "MASTER", self.name)
                    fields = dict(zip(info[::2], info[1::2], strict=True)) if isinstance(info, list) else info
                if fields.get("ip") != HOST or int(fields.get("port", 0)) != master.port:
                    return False
                if (
                    fields.get("flags") != "master"
                    or int(fields.get("num-other-sentinels", 0)) < len(self.sentinels) - 1
                ):
                    return False
                with sentinel.client(1.0) as client:
                    known = client.execute_command("SENTINEL", "REPLICAS", self.name)
                good = [r for r in known if "s_down" not in str(r) and "disconnected" not in str(r)]
                if len(good) < sum(1 for s in self.data if s.alive and s is not master):
                    return False
            for server in self.data:
                if server is master or not server.alive:
                    continue
                with server.client(1.0) as client:
                    info = client.info("replication")
                if info.get("role") != "slave" or info.get("master_port") != master.port:
                    return False
                if info.get("master_link_status") != "up" or int(info.get("master_sync_in_progress", 1)):
                    return False
            return True

        wait_until(healthy, f"the Sentinel group {self.name!r} to be healthy", timeout, every=0.1)
