"""A minimal synchronous Redis client for the engine's hot path.

The engine's sync calls are one command at a time on one connection; redis-py spends more time
around such a call (pool checkout, retry wrapper, response callbacks) than a loopback round trip
takes. :class:`RespClient` sends a command packed by hiredis and reads the reply with hiredis's
parser, nothing more. It offers the three methods the executor uses (``execute_command``,
``evalsha``, ``script_load``) and raises redis-py's exception types, so the executor treats it like
any redis-py client.

It never retries a command on its own: after a connection error it reconnects on the *next*
call, so a script is never sent twice by accident (a retried add could create a job twice).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import hiredis
import redis.exceptions as rex
from redis.connection import parse_url

_RECV = 65536


def _error(reply: hiredis.ReplyError) -> rex.RedisError:
    text = str(reply)
    if text.startswith("NOSCRIPT"):
        return rex.NoScriptError(text)
    if text.startswith("NOPERM"):
        return rex.NoPermissionError(text)
    if text.startswith(("WRONGPASS", "NOAUTH")):
        return rex.AuthenticationError(text)
    if text.startswith("READONLY"):
        return rex.ReadOnlyError(text)
    return rex.ResponseError(text)


class RespClient:
    """One connection to one Redis server, opened lazily and reopened after a failure."""

    def __init__(self, url: str, *, socket_timeout: float | None = None, socket_connect_timeout: float | None = None):
        options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port = int(options.get("port", 6379))
        self._db = int(options.get("db", 0) or 0)
        self._username: str | None = options.get("username")
        self._password: str | None = options.get("password")
        self._tls = url.startswith("rediss://")
        self._verify = options.get("ssl_cert_reqs", "required") not in ("none", ssl.CERT_NONE)
        self._timeout = socket_timeout
        self._connect_timeout = socket_connect_timeout
        self._sock: socket.socket | ssl.SSLSocket | None = None
        self._reader: Any = None

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            if self._path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self._connect_timeout)
                sock.connect(self._path)
            else:
                sock = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls:
                context = ssl.create_default_context()
                if not self._verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(sock, server_hostname=self._host)
            sock.settimeout(self._timeout)
        except OSError as exc:
            raise rex.ConnectionError(f"cannot connect to Redis: {exc}") from exc
        self._sock = sock
        self._reader = hiredis.Reader(encoding="utf-8")
        try:
            if self._password is not None:
                auth = ("AUTH", self._username, self._password) if self._username else ("AUTH", self._password)
                self._roundtrip(auth)
            if self._db:
                self._roundtrip(("SELECT", self._db))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- commands -----------------------------------------------------------------------------

    def _roundtrip(self, args: tuple[Any, ...]) -> Any:
        reply = self._exchange([args])[0]
        if isinstance(reply, rex.RedisError):
            raise reply
        return reply

    def _exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send commands in one write, read one reply each; error replies come back as exceptions."""
        sock = self._sock
        assert sock is not None
        replies: list[Any] = []
        try:
            sock.sendall(b"".join(hiredis.pack_command(args) for args in commands))
            reader = self._reader
            while len(replies) < len(commands):
                reply = reader.gets()
                while reply is False:
                    chunk = sock.recv(_RECV)
                    if not chunk:
                        raise rex.ConnectionError("Redis closed the connection")
                    reader.feed(chunk)
                    reply = reader.gets()
                replies.append(_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
        except rex.ConnectionError:
            self.close()
            raise
        except TimeoutError as exc:
            self.close()
            raise rex.TimeoutError(f"Redis did not answer in time: {exc}") from exc
        except OSError as exc:
            self.close()
            raise rex.ConnectionError(f"lost the connection to Redis: {exc}") from exc
        return replies

    def execute_command(self, *args: Any) -> Any:
        if self._sock is None:
            self._connect()
        return self._roundtrip(args)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    def evalsha_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Pipeline several ``EVALSHA sha numkeys ...`` commands; error replies are returned."""
        if self._sock is None:
            self._connect()
        return self._exchange([("EVALSHA", *args) for args in commands])

    def script_load(self, source: str) -> Any:
        return self.execute_command("SCRIPT", "LOAD", source)
