"""A minimal synchronous Redis client for the hot path of the sync backend.

The engine's sync calls are one command at a time on one connection; redis-py spends more time
around such a call (pool checkout, retry wrapper, response callbacks) than a loopback round trip
takes. :class:`RespClient` sends commands packed by hiredis and reads RESP2 replies with hiredis's
parser, nothing more. It raises redis-py's exception types (error replies keep their code word),
which the backend translates into jqc's errors.

It never retries a command on its own: after a connection error it reconnects on the *next*
call, so a script is never sent twice by accident (a retried add could create a job twice).
Every read has the configured deadline (``socket_timeout``), and TCP keepalive (probing after 30 s
idle, see :data:`jqc.backends.url.KEEPALIVE`) is on unless turned off, so a connection that went
silent fails the call instead of hanging it.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Callable

import hiredis
import redis.exceptions as rex

from jqc.backends.base import Arg, Reply
from jqc.backends.tls import tls_context
from jqc.backends.url import ServerConfig, keepalive_options, parse_server_url

__all__ = ["NotConnectedError", "NotConnectedTimeoutError", "RespClient"]

_RECV = 65536
_POLL = getattr(select, "poll", None)


class NotConnectedError(rex.ConnectionError):
    """A connection could not be opened: the commands it was for were never sent."""


class NotConnectedTimeoutError(rex.TimeoutError):
    """Opening a connection timed out: the commands it was for were never sent."""


def _error(reply: hiredis.ReplyError) -> rex.RedisError:
    text = str(reply)
    if text.startswith("NOSCRIPT"):
        return rex.NoScriptError(text)
    if text.startswith(("WRONGPASS", "NOAUTH")):
        return rex.AuthenticationError(text)
    return rex.ResponseError(text)


class RespClient:
    """One connection to one Redis server, opened lazily and reopened after a failure."""

    def __init__(
        self,
        config: ServerConfig,
        tls: ssl.SSLContext | None = None,
        *,
        check_stale: bool = False,
        on_connect: Callable[[RespClient], None] | None = None,
    ) -> None:
        self.config = config
        self._on_connect = on_connect  # run on every new connection, after AUTH and SELECT
        # With check_stale, a plain-text connection the server closed while it sat idle (a killed or
        # restarted server, a client kill) is found out before anything is sent on it, and reopened.
        self._check_stale = check_stale
        if tls is None and config.tls is not None:
            tls = tls_context(config.tls)
        self._tls = tls
        self._sock: socket.socket | ssl.SSLSocket | None = None
        self._reader: hiredis.Reader | None = None

    @classmethod
    def from_url(cls, url: str, **options: object) -> RespClient:
        """A client for ``url`` (options as :func:`jqc.connect` takes them)."""
        return cls(parse_server_url(url, options))

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        config = self.config
        try:
            if config.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(config.socket_connect_timeout)
                sock.connect(config.path)
            else:
                sock = socket.create_connection((config.host, config.port), timeout=config.socket_connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if config.socket_keepalive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                    for option, value in keepalive_options().items():
                        sock.setsockopt(socket.IPPROTO_TCP, option, value)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=config.host)
            sock.settimeout(config.socket_timeout)
        except TimeoutError as exc:
            raise NotConnectedTimeoutError(f"connecting to Redis timed out: {exc}") from exc
        except OSError as exc:
            raise NotConnectedError(f"cannot connect to Redis: {exc}") from exc
        self._sock = sock
        self._reader = hiredis.Reader(encoding="utf-8")
        try:
            if config.password is not None:
                auth: tuple[Arg, ...] = ("AUTH", config.password)
                if config.username:
                    auth = ("AUTH", config.username, config.password)
                self._roundtrip(auth)
            if config.client_name:
                self._roundtrip(("CLIENT", "SETNAME", config.client_name))
            if config.db:
                self._roundtrip(("SELECT", config.db))
            if self._on_connect is not None:
                self._on_connect(self)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- commands -----------------------------------------------------------------------------

    def _roundtrip(self, args: tuple[Arg, ...]) -> Reply:
        reply = self.exchange([args])[0]
        if isinstance(reply, rex.RedisError):
            raise reply
        return reply

    def exchange(self, commands: list[tuple[Arg, ...]]) -> list[Reply | rex.RedisError]:
        """Send commands in one write, read one reply each; error replies come back as exceptions.

        When the connection breaks part-way the replies read so far are kept and every later
        command gets the connection error (it may or may not have run).
        """
        if self._sock is not None and self._check_stale and self._stale():
            self.close()
        if self._sock is None:
            self._connect()
        sock, reader = self._sock, self._reader
        assert sock is not None and reader is not None
        replies: list[Reply | rex.RedisError] = []
        failure: rex.RedisError | None = None
        try:
            sock.sendall(b"".join(hiredis.pack_command(args) for args in commands))  # type: ignore[arg-type]
            while len(replies) < len(commands):
                reply = reader.gets()
                while reply is False:
                    chunk = sock.recv(_RECV)
                    if not chunk:
                        raise rex.ConnectionError("Redis closed the connection")
                    reader.feed(chunk)
                    reply = reader.gets()
                replies.append(_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
        except rex.ConnectionError as exc:
            failure = exc
        except TimeoutError as exc:
            failure = rex.TimeoutError(f"Redis did not answer in time: {exc}")
            failure.__cause__ = exc
        except OSError as exc:
            failure = rex.ConnectionError(f"lost the connection to Redis: {exc}")
            failure.__cause__ = exc  # keeps the SSL library's reason for jqc.backends.tls
        if failure is not None:
            self.close()
            if not replies:
                raise failure
            replies.extend(failure for _ in range(len(commands) - len(replies)))
        return replies

    def blocking(self, args: tuple[Arg, ...], deadline: float) -> Reply | rex.RedisError:
        """:meth:`exchange` of one command that may block on the server, its reply read under
        ``deadline`` seconds instead of ``socket_timeout``."""
        if self._sock is None:
            self._connect()
        sock = self._sock
        assert sock is not None
        sock.settimeout(deadline)
        try:
            return self.exchange([args])[0]
        finally:
            if self._sock is sock:  # still open: back to the usual deadline
                sock.settimeout(self.config.socket_timeout)

    def _stale(self) -> bool:
        """True when the idle connection has something to read (the server's close, or stray data)."""
        sock = self._sock
        if sock is None or isinstance(sock, ssl.SSLSocket) or _POLL is None:
            return False  # (TLS records may be pending harmlessly: only plain text is checked)
        poller = _POLL()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))  # readable while idle: closed by the server, or a reply nobody asked for

    def execute_command(self, *args: Arg) -> Reply:
        """Send one command and return its reply (an error reply raises)."""
        return self._roundtrip(args)

    def roundtrip(self, *args: Arg) -> Reply:
        """One command on the current connection (for an ``on_connect`` hook); an error reply raises."""
        return self._roundtrip(args)
