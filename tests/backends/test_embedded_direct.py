"""The embedded backend's direct path (jqc/backends/embedded_direct.py): commands handed straight to
a fakeredis socket instead of through redis-py's client and RESP.

Every check compares it with the client path (``JQC_EMBEDDED_DIRECT=0``): the same engine
operations must reply and store the same, bad arguments must fail with the same error, and the
commands it must not take go through the client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pytest
import redis.exceptions as rex

import jqc
from jqc.backends import embedded_direct
from jqc.backends.embedded import EmbeddedFactory, _AsyncTransport, _SyncTransport
from jqc.backends.embedded_direct import NOT_SENT, DirectCommands
from jqc.backends.embedded_lua import new_server
from tests.backends.test_embedded_lua_cache import FROZEN_WALL_CLOCK, keyspace, lifecycle


@pytest.fixture(autouse=True)
def _fresh_availability(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("JQC_EMBEDDED_DIRECT", raising=False)
    embedded_direct.available.cache_clear()
    yield
    embedded_direct.available.cache_clear()


def transport(conn: jqc.Connection) -> _SyncTransport:
    backend = conn.backend
    assert isinstance(backend.transport, _SyncTransport)  # type: ignore[attr-defined]
    return backend.transport  # type: ignore[attr-defined]


def test_direct_path_is_active_with_the_installed_fakeredis() -> None:
    """Pins the fast path to the installed version: an upgrade that turns it off fails here."""
    version = f"fakeredis {metadata.version('fakeredis')}"
    assert embedded_direct._fakeredis_matches(), f"{version}: fakeredis's socket internals changed"
    assert embedded_direct._same_replies(), f"{version}: direct replies differ from the client's"
    assert embedded_direct.available()
    conn = jqc.connect()
    assert transport(conn)._direct is not None
    conn.queue("q").add("x")
    assert conn.queue("q").counts().waiting == 1


def test_jqc_operations_reply_and_store_the_same_as_through_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: FROZEN_WALL_CLOCK)
    runs = []
    for direct in ("1", "0"):
        monkeypatch.setenv("JQC_EMBEDDED_DIRECT", direct)
        embedded_direct.available.cache_clear()
        clock = jqc.VirtualClock()
        conn = jqc.Connection.over(EmbeddedFactory(server=new_server()), clock=clock)
        assert (transport(conn)._direct is not None) is (direct == "1")
        runs.append((lifecycle(conn, clock), keyspace(conn)))
        conn.close()
    (direct_steps, direct_keys), (client_steps, client_keys) = runs
    assert any(kind == "LockLostError" for kind, _ in direct_steps), "the stale-token path was not exercised"
    assert direct_steps == client_steps
    assert direct_keys == client_keys


@pytest.mark.parametrize(
    "command",
    [
        ("SET", "k", True),  # redis-py refuses a bool before sending
        ("SET", "k", None),
        ("SET", "k", "\udcff"),  # a lone surrogate does not encode
        ("SET", "k"),  # wrong number of arguments
        ("EVALSHA", "f" * 40, 0),  # NOSCRIPT
        ("EVAL", "return redis.call('INCR', KEYS[1])", 1, "str"),  # error inside a script
        ("NOSUCHCOMMAND", "x"),
    ],
    ids=repr,
)
def test_bad_commands_fail_the_same_as_through_the_client(command: tuple[Any, ...]) -> None:
    server = new_server()
    fakes = jqc.Connection.over(EmbeddedFactory(server=server)).sync_client()
    fakes.set("str", "text")
    direct = DirectCommands(server)
    got = direct.run(command)
    try:
        fakes.execute_command(*command)
    except Exception as exc:
        expected: Any = exc
    else:  # pragma: no cover - every command here fails
        pytest.fail(f"{command!r} did not fail through the client")
    assert isinstance(got, BaseException)
    assert (type(got), str(got)) == (type(expected), str(expected))
    direct.close()


def test_connection_state_commands_go_through_the_client() -> None:
    direct = DirectCommands(new_server())
    for command in (("CLIENT", "SETNAME", "x"), ("SELECT", 1), ("MULTI",), ("SUBSCRIBE", "c"), ("AUTH", "p")):
        assert direct.run(command) is NOT_SENT
    assert direct.run(("PING",)) == "PONG"
    direct.close()


def test_a_killed_socket_is_left_to_the_client() -> None:
    direct = DirectCommands(new_server())
    assert direct.run(("SET", "k", "v")) == "OK"
    direct._connection()._sock._killed = True
    assert direct.run(("GET", "k")) is NOT_SENT
    direct.close()


def test_each_thread_gets_its_own_socket_and_a_blocked_read_does_not_stall_others() -> None:
    server = new_server()
    t = _SyncTransport(server)
    got: list[Any] = []

    def read() -> None:
        got.append(t.blocking(("BLPOP", "wake", 5), 5.0))

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 30
    while not any(s._blocked for s in server.sockets) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert t.exchange([("RPUSH", "wake", "now"), ("GET", "nothing")]) == [1, None]
    reader.join(30)
    assert got == [["wake", "now"]]
    seen: list[int] = []

    def socket_id() -> None:
        assert t._direct is not None
        seen.append(id(t._direct._connection()._sock))

    others = [threading.Thread(target=socket_id) for _ in range(2)]
    for th in others:
        th.start()
    for th in others:
        th.join()
    socket_id()
    assert len(set(seen)) == 3
    t.close()


def test_async_transport_answers_through_the_direct_path() -> None:
    server = new_server()

    async def main() -> list[Any]:
        t = _AsyncTransport(server)
        assert t._direct is not None
        answers = await t.exchange([("SET", "k", "v"), ("GET", "k"), ("LPUSH", "k", "x")])
        await t.aclose()
        return answers

    ok, value, wrong = asyncio.run(main())
    assert (ok, value) == ("OK", "v")
    assert isinstance(wrong, rex.ResponseError) and "WRONGTYPE" in str(wrong)


def test_client_path_when_fakeredis_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fakeredis whose internals differ (or a failing check) silently gets the client path."""
    monkeypatch.setattr(embedded_direct, "_fakeredis_matches", lambda: False)
    assert not embedded_direct.available()
    conn = jqc.connect()
    assert transport(conn)._direct is None
    conn.queue("q").add("x")
    assert conn.queue("q").counts().waiting == 1
    embedded_direct.available.cache_clear()

    def broken(*args: Any) -> str:
        raise OSError("no source")

    monkeypatch.setattr(embedded_direct.inspect, "getsource", broken)
    assert not embedded_direct.available()


def test_environment_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JQC_EMBEDDED_DIRECT", "0")
    assert not embedded_direct.available()
    assert transport(jqc.connect())._direct is None
