"""The parts every local topology shares (:mod:`jqc.testing.topology`): free ports taken under a
file lock, one ``redis-server`` child process (:class:`LocalServer`), stopping them all by pid,
and one plain server (:class:`LocalRedis`)."""

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

__all__ = ["HOST", "SLOTS", "LocalRedis", "LocalServer", "Topology", "TopologyError", "redis_server_binary",
           "take_ports", "wait_until"]  # fmt: skip

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
def port_lock() -> Iterator[None]:
    """Held while ports are chosen and their servers start listening (across processes)."""
    with open(_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def take_ports(count: int, ports: range) -> list[int]:
    """``count`` ports of ``ports`` nothing listens on (call under :func:`port_lock`, and start
    their servers before releasing it)."""
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


class Topology:
    """What every local topology shares: its servers, a work directory, stopping everything."""

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

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalRedis(Topology):
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
        with port_lock():
            self.servers.append(LocalServer(take_ports(1, self.port_range)[0], self.workdir, []))
            self.server.start()
        return self
