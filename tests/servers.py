"""Private ``redis-server`` processes for tests that change server-wide settings (maxmemory, ACLs,
replication, cluster mode) and so must not touch the shared test server. Each listens on a unix
socket in the test's temporary directory (no port to collide on) and is SIGKILLed at the end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis


def redis_server_binary() -> str:
    """The redis-server binary; fails under CI (never skips) when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class PrivateRedis:
    """One redis-server on a unix socket under ``workdir``."""

    def __init__(self, workdir: Path, name: str = "redis", args: Sequence[str] = ()) -> None:
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to ~100 bytes: keep the socket in a short directory of its own.
        self.socket = Path(tempfile.mkdtemp(prefix="jqc-", dir="/tmp")) / "r.sock"
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        """A plain redis-py client of this server (for the test's own setup commands)."""
        return redis.Redis(unix_socket_path=str(self.socket), decode_responses=True, socket_timeout=30)

    def start(self, *, wait: bool = True) -> PrivateRedis:
        args = [redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        args += ["--logfile", str(self.workdir / "redis.log"), *self.args]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.socket.exists():
                client = self.client()
                try:
                    if client.ping():
                        return
                except redis.BusyLoadingError:
                    pass
                except redis.ResponseError:
                    return  # it answers (with a refusal the test wants, such as MASTERDOWN)
                except (redis.ConnectionError, OSError):
                    pass
                finally:
                    client.close()
            assert self.proc is not None
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server in {self.workdir} did not start: see {self.workdir / 'redis.log'}")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        shutil.rmtree(self.socket.parent, ignore_errors=True)


@contextmanager
def private_redis(workdir: Path, name: str = "redis", args: Sequence[str] = ()) -> Iterator[PrivateRedis]:
    """A started :class:`PrivateRedis`, killed on exit whatever happens."""
    server = PrivateRedis(workdir, name, args)
    try:
        yield server.start()
    finally:
        server.kill()
