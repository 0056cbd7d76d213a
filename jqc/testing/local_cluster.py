"""A throwaway local Redis Cluster (:mod:`jqc.testing.topology`)."""

from __future__ import annotations

from pathlib import Path

from jqc.testing.local_servers import (
    HOST,
    SLOTS,
    LocalServer,
    Topology,
    TopologyError,
    port_lock,
    take_ports,
    wait_until,
)

__all__ = ["LocalCluster"]


class LocalCluster(Topology):
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
        with port_lock():
            ports = take_ports(2 * count, self.port_range)
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
