"""Server refusals become typed jqc errors, told apart by ``retryable``: provoked for real on private
redis-server processes (each one a server state a single server can be put in), and mapped the same
way from every client's form of the reply."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.exceptions as rex

import jqc
from jqc.backends.refusals import translate, translate_reply_error
from tests.servers import PrivateRedis, private_redis


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path, args=["--enable-debug-command", "local"]) as s:
        yield s


def _queue(url: str, **options: object) -> jqc.Queue:
    return jqc.connect(url, clock=jqc.VirtualClock(), **options).queue("q")


def test_out_of_memory_is_final_and_names_maxmemory(server: PrivateRedis) -> None:
    queue = _queue(server.url)
    queue.add("fits")
    admin = server.client()
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    with pytest.raises(jqc.OutOfMemoryError, match="maxmemory") as info:
        queue.add("does not fit", {"blob": "x" * 1000})
    assert not info.value.retryable and isinstance(info.value, jqc.ServerRefusedError)
    assert "noeviction" in str(info.value)
    admin.config_set("maxmemory", 0)
    assert queue.counts().waiting == 1  # nothing half-written; reads still work
    queue.add("fits again")
    assert queue.counts().waiting == 2


def test_a_read_only_replica_is_retryable(tmp_path: Path) -> None:
    with private_redis(tmp_path, "replica", ["--replica-read-only", "yes"]) as replica:
        admin = replica.client()
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # a master that is not there: still a replica
        queue = _queue(replica.url)
        with pytest.raises(jqc.ServerReadOnlyError, match="READONLY") as info:
            queue.add("x")
        assert info.value.retryable and isinstance(info.value, jqc.BackendError)
        admin.execute_command("REPLICAOF", "NO", "ONE")  # promoted: the same call now works
        assert queue.add("x").id


def test_a_replica_without_its_master_is_master_down(tmp_path: Path) -> None:
    args = ["--replica-serve-stale-data", "no", "--replicaof", "127.0.0.1", "1"]
    with private_redis(tmp_path, "stale", args) as replica:
        with pytest.raises(jqc.ClusterDownError, match="MASTERDOWN") as info:
            _queue(replica.url).counts()
        assert info.value.retryable


def test_a_loading_server_is_retryable(tmp_path: Path) -> None:
    workdir = tmp_path / "loading"
    with private_redis(tmp_path, "loading", ["--enable-debug-command", "local", "--save", ""]) as seed:
        seed.client().execute_command("DEBUG", "POPULATE", 20000)
        seed.client().save()
    slow_loading = ["--key-load-delay", "500", "--loading-process-events-interval-bytes", "1024"]
    slow = PrivateRedis(tmp_path, "loading", slow_loading)
    try:
        slow.start(wait=False)
        deadline = time.monotonic() + 30
        while not slow.socket.exists():  # listening starts before the data set is loaded
            assert time.monotonic() < deadline, f"no socket: see {workdir}"
            time.sleep(0.01)
        with pytest.raises(jqc.ServerLoadingError, match="LOADING") as info:
            _queue(slow.url).counts()
        assert info.value.retryable
    finally:
        slow.kill()


def test_a_busy_script_is_retryable_and_passes(server: PrivateRedis) -> None:
    admin = server.client()
    admin.config_set("busy-reply-threshold", 50)

    def spin() -> None:
        with pytest.raises(rex.ResponseError):  # killed by SCRIPT KILL below
            server.client().eval("while true do end", 0)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    queue = _queue(server.url)
    deadline = time.monotonic() + 30
    while True:
        try:
            queue.counts()
        except jqc.ServerBusyError as exc:
            assert exc.retryable and "BUSY" in str(exc)
            break
        assert time.monotonic() < deadline, "the spinning script never made the server busy"
        time.sleep(0.02)
    killer = server.client()
    killer.script_kill()
    spinner.join(30)
    assert queue.counts().waiting == 0  # the same call works once the script is gone


def test_an_acl_refusal_is_final_and_names_the_command(server: PrivateRedis) -> None:
    admin = server.client()
    admin.acl_setuser("reader", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@read", "+ping"])
    base = f"unix://reader:pw@{server.socket}"
    queue = _queue(base)
    with pytest.raises(jqc.PermissionDeniedError, match="NOPERM") as info:
        queue.add("x")
    assert not info.value.retryable and "evalsha" in str(info.value).lower()


def test_wrong_credentials_are_final(server: PrivateRedis) -> None:
    server.client().acl_setuser("someone", enabled=True, passwords=["+right"], keys=["*"], commands=["+@all"])
    with pytest.raises(jqc.AuthenticationFailedError) as info:
        _queue(f"unix://someone:wrong@{server.socket}").counts()
    assert not info.value.retryable and "wrong" not in info.value.args[0].split("@")[0]


def test_a_cluster_node_serving_no_slot_is_cluster_down(tmp_path: Path) -> None:
    with private_redis(tmp_path, "cluster", ["--cluster-enabled", "yes"]) as node:
        with pytest.raises(jqc.ClusterDownError, match="CLUSTERDOWN") as info:
            _queue(node.url).counts()
        assert info.value.retryable


def test_a_lost_connection_is_retryable_and_never_resent(server: PrivateRedis) -> None:
    queue = _queue(server.url)
    queue.add("before")
    server.kill()
    with pytest.raises(jqc.ConnectionLostError) as info:
        queue.add("during")
    assert info.value.retryable and isinstance(info.value, jqc.BackendError)


@pytest.mark.parametrize(
    ("text", "error", "retryable"),
    [
        ("READONLY You can't write against a read only replica.", jqc.ServerReadOnlyError, True),
        ("LOADING Redis is loading the dataset in memory", jqc.ServerLoadingError, True),
        ("BUSY Redis is busy running a script.", jqc.ServerBusyError, True),
        ("MOVED 3999 127.0.0.1:6381", jqc.ClusterRedirectError, True),
        ("ASK 3999 127.0.0.1:6381", jqc.ClusterRedirectError, True),
        ("TRYAGAIN Multiple keys request during rehashing of slot", jqc.ClusterRedirectError, True),
        ("CLUSTERDOWN The cluster is down", jqc.ClusterDownError, True),
        ("MASTERDOWN Link with MASTER is down", jqc.ClusterDownError, True),
        ("OOM command not allowed when used memory > 'maxmemory'.", jqc.OutOfMemoryError, False),
        ("NOPERM User x has no permissions to run the 'evalsha' command", jqc.PermissionDeniedError, False),
        ("WRONGPASS invalid username-password pair", jqc.AuthenticationFailedError, False),
        ("ERR user_script:1: attempt to compare nil with number", jqc.ScriptReplyError, False),
    ],
)
def test_each_error_reply_maps_to_its_typed_error(text: str, error: type[jqc.JqcError], retryable: bool) -> None:
    mapped = translate_reply_error(text)
    assert type(mapped) is error and mapped.retryable is retryable
    assert text.split(" ", 1)[0] in str(mapped) or error is jqc.ScriptReplyError


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (rex.ReadOnlyError("You can't write against a read only replica."), jqc.ServerReadOnlyError),
        (rex.BusyLoadingError("Redis is loading the dataset in memory"), jqc.ServerLoadingError),
        (rex.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"), jqc.OutOfMemoryError),
        (rex.NoPermissionError("no permissions to run the 'set' command"), jqc.PermissionDeniedError),
        (rex.TryAgainError("Multiple keys request during rehashing"), jqc.ClusterRedirectError),
        (rex.ClusterDownError("The cluster is down"), jqc.ClusterDownError),
        (rex.TimeoutError("Timeout reading from socket"), jqc.CallTimeoutError),
        (rex.ConnectionError("Connection refused"), jqc.ConnectionLostError),
        (ConnectionResetError("reset by peer"), jqc.ConnectionLostError),
        (redis.AuthenticationError("invalid password"), jqc.AuthenticationFailedError),
    ],
)
def test_redis_py_classes_map_like_their_reply_text(exc: Exception, error: type[jqc.JqcError]) -> None:
    assert type(translate(exc)) is error
