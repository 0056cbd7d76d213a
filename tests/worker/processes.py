"""Real processes for the chaos and restart tests: ``jqc worker`` subprocesses and private
``redis-server`` instances (not a test module)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One ``python -m jqc worker ...`` subprocess (or another ``program``), its output going to a log file."""

    def __init__(
        self, args: list[str], log: Path, env: dict[str, str], *, program: Sequence[str] = ("-m", "jqc", "worker")
    ) -> None:
        self.log = log
        self.terminated = False
        self.started = time.monotonic()
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *program, *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no hand-back, no goodbye."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        """SIGTERM (a graceful close), once: a second one would cut the grace period short."""
        if not self.terminated and self.proc.poll() is None:
            self.terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time."""
        self.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` (if the process still runs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if it still runs after ``timeout`` seconds (then it is killed)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def need_redis_server() -> str:
    """The redis-server binary; fails under CI (never skips) when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, chosen by the kernel (so parallel test
    processes never pick the same one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A private redis-server persisting every write to an append-only file in ``workdir``, so a
    stop (even SIGKILL) and restart on the same port loses nothing."""

    def __init__(self, binary: str, workdir: Path, port: int) -> None:
        self.binary, self.workdir, self.port = binary, workdir, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)]
        args += ["--logfile", str(self.workdir / "redis.log")]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (the append-only file has every write)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
