"""Commands handed straight to a fakeredis socket, without the redis-py client and RESP around them.

Through a redis-py ``FakeRedis`` client, every command of the embedded backend is encoded by redis-py,
packed into RESP, parsed back into fields by fakeredis's protocol parser, run, queued as a reply,
and read and decoded by the fake connection, after the client has checked a connection out of its
pool and wrapped the call in its retry helper. For a script call that was a quarter of the embedded
backend's time (what is left is running the script).

:class:`DirectCommands` keeps what decides a reply and drops the rest: the arguments are encoded by
the connection's own redis-py ``Encoder`` (the same bytes, and the same ``DataError`` for a bool or
a ``None``), the fields go to the socket's ``_process_command`` (what fakeredis's parser calls for
each command it reads: name lookup, ACL check, arity, transactions, the command itself), and the
reply is taken off the socket's queue and decoded by the connection's ``_decode``, as its
``read_response`` does. The sockets are made by redis-py connections of a ``FakeRedis`` client
(so each gets the client's handshake), one per thread, as redis-py's pool would hand a thread its
own connection; they are never shared with the client's pool, whose connections blocking reads use.

It is version-guarded: :func:`available` checks once per process that fakeredis's socket still
sends what it is given through its parser to ``_process_command``, queues one reply per command
there and decodes it in ``read_response`` as described, and that a scratch server answers a few
commands (a reply, an error reply, a script, an unknown script) identically both ways. If not, the
embedded backend keeps using the redis-py client. ``JQC_EMBEDDED_DIRECT=0`` turns it off too.

A command the fast path cannot answer exactly as the client would (the server disconnected, the
socket killed by ``CLIENT KILL``, a command that queues no reply or more than one) is never sent
this way: :meth:`DirectCommands.run` returns :data:`NOT_SENT` before running anything, and the
caller sends it through the client.
"""

from __future__ import annotations

import functools
import inspect
import os
import queue
import threading
from collections.abc import Sequence
from typing import Any, Final

import fakeredis
import redis.exceptions as rex

__all__ = ["NOT_SENT", "DirectCommands", "available"]

NOT_SENT: Final = object()
"""What :meth:`DirectCommands.run` returns for a command it did not run (send it through the client)."""

#: Commands whose replies are not one per command (subscriptions, CLIENT REPLY, MONITOR, RESET, HELLO
#: and the connection state redis-py keeps on its side): always through the client.
_CLIENT_ONLY: Final = frozenset(
    {
        b"subscribe",
        b"unsubscribe",
        b"psubscribe",
        b"punsubscribe",
        b"ssubscribe",
        b"sunsubscribe",
        b"monitor",
        b"client",
        b"reset",
        b"hello",
        b"quit",
        b"select",
        b"auth",
        b"multi",
        b"exec",
        b"discard",
        b"watch",
        b"unwatch",
    }
)


class DirectCommands:
    """Runs commands on a per-thread fakeredis socket of ``server`` (see the module docstring)."""

    def __init__(self, server: fakeredis.FakeServer) -> None:
        self._server = server
        self._client: Any = fakeredis.FakeRedis(server=server, decode_responses=True, protocol=2)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Any] = []

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn._sock is None:
            conn = self._client.connection_pool.make_connection()
            conn.connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def run(self, command: Sequence[Any]) -> Any:
        """The reply to ``command`` (decoded as the client decodes it), the error it got (returned, not
        raised), or :data:`NOT_SENT` when it must go through the client instead."""
        name = command[0]
        if (name.lower().encode() if isinstance(name, str) else bytes(name).lower()) in _CLIENT_ONLY:
            return NOT_SENT
        conn = self._connection()
        sock = conn._sock
        if not self._server.connected or sock._killed:
            return NOT_SENT
        encode = conn.encoder.encode
        try:
            fields = [bytes(value) if type(value := encode(arg)) is not bytes else value for arg in command]
        except (rex.RedisError, ValueError, UnicodeError) as exc:
            return exc
        responses = sock.responses
        sock._process_command(fields)
        try:
            response = responses.get_nowait()
        except queue.Empty:  # no reply (CLIENT REPLY OFF on this socket): the client would wait for ever
            return rex.ConnectionError("the embedded server sent no reply")
        if isinstance(response, BaseException):
            return response
        try:
            return conn._decode(response)
        except UnicodeError as exc:
            return exc

    def close(self) -> None:
        """Close every socket made so far."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.disconnect()
        self._local = threading.local()
        self._client.close()


@functools.cache
def available() -> bool:
    """Whether the installed fakeredis works the way :class:`DirectCommands` relies on (checked once)."""
    if os.environ.get("JQC_EMBEDDED_DIRECT", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        return _fakeredis_matches() and _same_replies()
    except Exception:
        return False


def _fakeredis_matches() -> bool:
    """fakeredis's socket and connection still have the shape this module was written against."""
    from fakeredis._clients._sync import FakeBaseConnection
    from fakeredis._socket._base import BaseFakeSocket

    sendall = inspect.getsource(BaseFakeSocket.sendall)
    parse = inspect.getsource(BaseFakeSocket._parse_commands)
    process = inspect.getsource(BaseFakeSocket._process_command)
    put = inspect.getsource(BaseFakeSocket.put_response)
    read = inspect.getsource(FakeBaseConnection.read_response)
    return (
        "self._parser.send(data)" in sendall
        and "not self._server.connected or self._killed" in sendall
        and "self._process_command(fields)" in parse
        and process.count("self.put_response(result)") == 1
        and "responses.put(msg)" in put
        and "response = self._sock.responses.get()" in read
        and "self._decode(response)" in read
        and "raise response" in read
    )


def _same_replies() -> bool:
    """Two scratch servers answer a few commands the same, one directly and one through the client."""
    client: Any = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)), decode_responses=True, protocol=2)
    client.response_callbacks.clear()
    direct = DirectCommands(fakeredis.FakeServer(version=(7, 0)))
    commands: list[tuple[Any, ...]] = [
        ("SET", "k", "v\u00e9"),
        ("GET", "k"),
        ("HSET", "h", "f", 1, "g", 2.5),
        ("HGETALL", "h"),
        ("LPUSH", "k", "x"),  # WRONGTYPE
        ("EVAL", "return {1, KEYS[1], ARGV[1], {err='E x'}}", 1, "a", "b"),
        ("EVALSHA", "0" * 40, 0),  # NOSCRIPT
        ("NOSUCHCOMMAND",),
        ("SET", "k", True),  # a bool: redis-py's DataError
    ]
    try:
        for command in commands:
            try:
                via_client: Any = client.execute_command(*command)
            except Exception as exc:
                via_client = exc
            if _plain(direct.run(command)) != _plain(via_client):
                return False
    finally:
        direct.close()
        client.close()
    return True


def _plain(reply: Any) -> Any:
    """A reply with every error in it as (type, text), so two replies compare by value."""
    if isinstance(reply, BaseException):
        return type(reply), str(reply)
    if isinstance(reply, list):
        return [_plain(item) for item in reply]
    return reply
