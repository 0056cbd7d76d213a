"""A throwaway local Sentinel group (:mod:`jqc.testing.topology`)."""

from __future__ import annotations

from pathlib import Path

from jqc.testing.local_servers import HOST, LocalServer, Topology, TopologyError, port_lock, take_ports, wait_until

__all__ = ["LocalSentinel"]


class LocalSentinel(Topology):
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
        with port_lock():
            ports = take_ports(1 + self.replicas_wanted, self.port_range)
            watch = take_ports(self.sentinels_wanted, self.sentinel_range)
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
