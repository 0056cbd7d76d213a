"""The Sentinel backend on real servers: calls reach the master the sentinels name, a demoted master
(READONLY, or a replica found on connecting) sends the backend back to the sentinels instead of
failing, and after a ``SENTINEL FAILOVER`` producers and an idle worker carry on with the new
master without a restart.

The shared Sentinel group is the one of ``scripts/redis-topology start``; the failover test starts
a private group of its own (other ports), so it never disturbs tests running at the same time.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import jqc
from jqc.backends import parse_url
from jqc.backends.routed import RoutedBackend
from jqc.backends.sentinel import SentinelFactory, SentinelRouter
from tests.conftest import TOPOLOGY_URLS, close_backend, open_topology

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "redis-topology"
# The private group of the failover test: a master, a replica and 3 sentinels on these ports.
FAILOVER_PORTS = {"JQC_SENTINEL_REDIS_PORT": "7110", "JQC_SENTINEL_PORT": "26310", "JQC_SENTINEL_NAME": "failover"}


@pytest.fixture
def sentinel() -> Iterator[jqc.Connection]:
    conn = open_topology("sentinel")
    yield conn
    close_backend(conn)


def _client(address: str) -> redis.Redis:
    host, _, port = address.rpartition(":")
    return redis.Redis(host=host, port=int(port), decode_responses=True, socket_timeout=10)


def _addresses(url: str) -> tuple[str, str]:
    """(master, a replica) of the group behind ``url``, as its first sentinel says."""
    config = parse_url(url)
    host, port = config.nodes[0]
    watcher = redis.Redis(host=host, port=port, decode_responses=True, socket_timeout=10)
    try:
        master = watcher.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", config.service)
        replicas = watcher.execute_command("SENTINEL", "REPLICAS", config.service)
    finally:
        watcher.close()
    up = [r for r in replicas if not r.get("is_sdown") and not r.get("is_odown")]
    replica = f"{up[0]['ip']}:{up[0]['port']}" if up else ""
    return f"{master[0]}:{master[1]}", replica


def test_calls_go_to_the_master_the_sentinels_name(sentinel: jqc.Connection) -> None:
    job = sentinel.queue("photos").add("x", {"n": 1})
    master, _ = _addresses(TOPOLOGY_URLS["sentinel"])
    backend = sentinel.backend
    assert isinstance(backend, RoutedBackend)
    assert backend.router.masters() == [master]
    assert sentinel.queue("photos").get_job(job.id).data == {"n": 1}


def test_readonly_from_a_replica_sends_the_call_to_the_master(sentinel: jqc.Connection) -> None:
    master, replica = _addresses(TOPOLOGY_URLS["sentinel"])
    config = parse_url(TOPOLOGY_URLS["sentinel"])
    router = SentinelRouter(config)
    router.learn(tuple(replica.rsplit(":", 1)))  # as if the sentinels had named it before a failover
    sleeps: list[float] = []
    backend = RoutedBackend(config, lambda _send: router, sleep=sleeps.append)  # (no role check: replicas answer)
    key = f"{sentinel.prefix}:{{photos}}:probe"
    try:
        assert backend.run_command("HSET", key, "f", "v") == 1  # READONLY there, then the master
        assert router.masters() == [master] and len(sleeps) == 1
        assert _client(master).hget(key, "f") == "v"
    finally:
        _client(master).delete(key)
        backend.close()


def test_a_connection_that_finds_a_replica_asks_the_sentinels_again(sentinel: jqc.Connection) -> None:
    master, replica = _addresses(TOPOLOGY_URLS["sentinel"])
    factory = SentinelFactory(parse_url(TOPOLOGY_URLS["sentinel"]), sleep=lambda _s: None)
    factory.router.learn(tuple(replica.rsplit(":", 1)))
    conn = jqc.Connection.over(factory, prefix=sentinel.prefix)
    try:
        queue = conn.queue("photos")
        assert queue.counts().waiting == 0  # a read: a replica would serve it, the role check does not let it
        assert factory.router.masters() == [master]  # (pinned to the replica, the read would have stayed there)
    finally:
        conn.close()


@pytest.fixture
def private_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Sentinel group of its own (started by scripts/redis-topology), removed afterwards."""
    lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / "jqc-sentinel-failover-test.lock"
    env = {**os.environ, **FAILOVER_PORTS, "JQC_TOPOLOGY_DIR": str(tmp_path_factory.mktemp("failover-group"))}
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # (one failover test at a time on this machine)
        started = subprocess.run([str(SCRIPT), "start", "sentinel"], env=env, capture_output=True, text=True)
        try:
            if started.returncode != 0:
                message = f"the private Sentinel group did not start: {started.stdout}{started.stderr}"
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
            port = FAILOVER_PORTS["JQC_SENTINEL_PORT"]
            sentinels = ",".join(f"127.0.0.1:{int(port) + i}" for i in range(3))
            yield f"redis+sentinel://{sentinels}/{FAILOVER_PORTS['JQC_SENTINEL_NAME']}"
        finally:
            subprocess.run([str(SCRIPT), "reset", "sentinel"], env=env, capture_output=True, check=False)


async def test_producers_and_an_idle_worker_carry_on_after_a_failover(private_group: str) -> None:
    conn = jqc.connect(private_group, failover_timeout=60, prefix="failover")
    before_master, _ = _addresses(private_group)
    queue = conn.queue("photos")
    done: list[str] = []

    async def work(ctx: jqc.JobContext) -> None:
        done.append(ctx.id)

    worker = jqc.Worker(queue, work, concurrency=2, idle_block=0.5, reconnect_delay=(0.05, 0.5))
    await worker.start()
    try:
        first = [queue.add("x", {"n": n}).id for n in range(10)]
        await _until(lambda: sorted(done) == sorted(first), "the first jobs to complete")
        # The worker now idles, blocked on its queue's events on the old master, when it is demoted.
        watcher = _client(parse_url(private_group).nodes[0][0] + ":" + FAILOVER_PORTS["JQC_SENTINEL_PORT"])
        assert watcher.execute_command("SENTINEL", "FAILOVER", FAILOVER_PORTS["JQC_SENTINEL_NAME"])
        await _until(lambda: _addresses(private_group)[0] != before_master, "the sentinels to name a new master")
        # Until the sentinels reach the old master and demote it, it still takes writes (which its
        # demotion then throws away: see docs/cluster.md); once demoted, nothing may land there.
        await _until(lambda: _role(before_master) == "slave", "the old master to be demoted")
        second = [queue.add("x", {"n": n}).id for n in range(10, 20)]  # the producer, on the new master
        await _until(lambda: sorted(done) == sorted(first + second), "the worker to consume on the new master")
        backend = conn.backend
        assert isinstance(backend, RoutedBackend)
        assert backend.router.masters() == [_addresses(private_group)[0]] != [before_master]
        assert queue.counts().completed == 20
    finally:
        await worker.close(grace=5)
        await conn.aclose()
        conn.close()


def _role(address: str) -> str:
    client = _client(address)
    try:
        return str(client.execute_command("ROLE")[0])
    finally:
        client.close()


async def _until(condition: object, what: str, within: float = 60.0) -> None:
    """Wait (real time) until ``condition()`` holds; fail after ``within`` seconds."""
    assert callable(condition)
    for _ in range(int(within / 0.1)):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"waited {within:g} s for {what}")


def test_an_add_that_fewer_replicas_confirm_is_a_typed_error_holding_the_job(sentinel: jqc.Connection) -> None:
    strict = jqc.connect(TOPOLOGY_URLS["sentinel"], prefix=sentinel.prefix, wait_replicas=2, wait_timeout=0.2)
    confirmed = jqc.connect(TOPOLOGY_URLS["sentinel"], prefix=sentinel.prefix, wait_replicas=1, wait_timeout=5)
    try:
        job = confirmed.queue("photos").add("x", {"n": 1})  # the group's one replica confirms it
        with pytest.raises(jqc.NotReplicatedError) as info:
            strict.queue("photos").add("x", {"n": 2})
        added = info.value.result
        assert isinstance(added, jqc.Job) and info.value.acknowledged == 1
        assert sorted(j.id for j in sentinel.queue("photos").list_jobs("waiting").jobs) == sorted([job.id, added.id])
    finally:
        strict.close()
        confirmed.close()
