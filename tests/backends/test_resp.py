"""The engine's minimal sync client on a real server: errors, reconnects, never a silent resend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis.exceptions as rex

import jqc
from jqc.backends.resp import RespClient
from jqc.backends.server import ServerFactory
from tests.conftest import REDIS_URL, open_backend


def thread_client(conn: jqc.Connection) -> RespClient:
    factory = conn.factory
    assert isinstance(factory, ServerFactory)
    return factory.thread_client()


@pytest.fixture
def real() -> Iterator[jqc.Connection]:
    conn = open_backend("redis")
    yield conn
    conn.sync_client().flushdb()
    conn.close()


def test_error_replies_become_redis_py_exceptions(real: jqc.Connection) -> None:
    client = RespClient.from_url(REDIS_URL)
    with pytest.raises(rex.NoScriptError):
        client.execute_command("EVALSHA", "0" * 40, 0)
    with pytest.raises(rex.ResponseError, match="unknown command"):
        client.execute_command("NOSUCHCOMMAND")
    assert client.execute_command("PING") == "PONG"  # the connection survives error replies
    client.close()


def test_a_killed_connection_fails_one_call_then_reconnects(real: jqc.Connection) -> None:
    queue = real.queue("photos")
    queue.add("x")
    engine = thread_client(real)
    own_id = engine.execute_command("CLIENT", "ID")
    real.sync_client().execute_command("CLIENT", "KILL", "ID", own_id)
    with pytest.raises(jqc.BackendError):
        queue.add("y")  # sent on the dead connection: reported, not resent behind the caller's back
    queue.add("z")
    names = [j.name for j in queue.list_jobs("waiting").jobs]
    assert names in (["x", "z"], ["x", "y", "z"])  # 'y' may or may not have reached Redis, never twice


def test_database_number_and_password_come_from_the_url(real: jqc.Connection) -> None:
    user = "jqc-test-resp-user"
    admin = real.sync_client()
    admin.execute_command("ACL", "SETUSER", user, "on", ">s3cret-pw", "~*", "+@all")
    try:
        base = REDIS_URL.split("://", 1)[1]
        client = RespClient.from_url(f"redis://{user}:s3cret-pw@{base}")
        client.execute_command("SET", "resp-probe", "1")
        assert admin.get("resp-probe") == "1"  # written in the URL's database
        assert client.execute_command("ACL", "WHOAMI") == user
        client.close()
        with pytest.raises(rex.AuthenticationError):
            RespClient.from_url(f"redis://{user}:wrong@{base}").execute_command("PING")
    finally:
        admin.execute_command("ACL", "DELUSER", user)


def test_unreachable_server_is_a_connection_error() -> None:
    client = RespClient.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(rex.ConnectionError):
        client.execute_command("PING")


def test_each_thread_gets_its_own_engine_client(real: jqc.Connection) -> None:
    import threading

    seen = []
    thread = threading.Thread(target=lambda: seen.append(thread_client(real)))
    thread.start()
    thread.join()
    assert seen[0] is not thread_client(real)
