"""The Cluster backend on the local Redis Cluster (``scripts/redis-topology start``): queues spread
over the masters are all found, one worker consumes queues on several shards, and the backend
follows MOVED and ASK redirections the cluster really sends.

Each test works under a key prefix of its own (see tests/conftest.py), so they can share the
cluster with every other test running at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from redis.crc import key_slot

import jqc
from jqc.backends.cluster import ClusterFactory
from jqc.backends.routed import RoutedBackend
from jqc.coordinator.metrics import aread_snapshots, read_snapshots
from tests.conftest import close_backend, open_topology


@pytest.fixture
def cluster() -> Iterator[jqc.Connection]:
    conn = open_topology("cluster")
    yield conn
    close_backend(conn)


def _backend(conn: jqc.Connection) -> RoutedBackend:
    backend = conn.backend
    assert isinstance(backend, RoutedBackend)
    return backend


def master_of(conn: jqc.Connection, queue: str) -> str:
    """The master serving ``queue``'s hash slot."""
    backend = _backend(conn)
    backend.run_command("PING")  # (reads the topology when it has not been read yet)
    return backend.router.address(key_slot(f"{conn.prefix}:{{{queue}}}:meta".encode()))


def spread_names(conn: jqc.Connection, per_master: int) -> dict[str, list[str]]:
    """Queue names, ``per_master`` of them on each master, by master."""
    masters = _backend(conn).router.masters()
    by_master: dict[str, list[str]] = {m: [] for m in masters}
    i = 0
    while any(len(names) < per_master for names in by_master.values()):
        name = f"q{i}"
        names = by_master[master_of(conn, name)]
        if len(names) < per_master:
            names.append(name)
        i += 1
    return by_master


def node_client(address: str) -> redis.Redis:
    host, _, port = address.rpartition(":")
    return redis.Redis(host=host, port=int(port), decode_responses=True, socket_timeout=10)


def test_the_cluster_has_three_masters(cluster: jqc.Connection) -> None:
    cluster.ping()
    assert len(_backend(cluster).router.masters()) == 3
    assert len(cluster.backend.run_on_each_server("DBSIZE")) == 3


async def test_discovery_scans_every_master(cluster: jqc.Connection) -> None:
    by_master = spread_names(cluster, 3)
    names = sorted(name for names in by_master.values() for name in names)
    for name in names:
        cluster.queue(name).add("x", {"queue": name})
    assert len(by_master) == 3  # (queues on every master: one missed master would miss three)
    assert cluster.queue_names() == names
    assert sorted(s.queue for s in read_snapshots(cluster)) == names
    assert sorted(s.queue for s in await aread_snapshots(cluster)) == names
    await cluster.aclose()


async def test_one_worker_consumes_queues_on_every_shard() -> None:
    conn = open_topology("cluster")  # (the system clock: the worker blocks on real reads)
    conn = jqc.Connection.over(conn.factory, prefix=conn.prefix)
    try:
        by_master = spread_names(conn, 1)
        queues = [conn.queue(names[0]) for names in by_master.values()]
        added = {q.name: [q.add("work", {"n": n}).id for n in range(5)] for q in queues}
        done: dict[str, list[str]] = {q.name: [] for q in queues}

        async def work(ctx: jqc.JobContext) -> int:
            done[ctx.queue].append(ctx.id)
            return int(ctx.data["n"])

        worker = jqc.Worker(queues, work, concurrency=4, idle_block=0.2)
        stats = await asyncio.wait_for(worker.run_until_empty(), 60)
        assert {name: sorted(ids) for name, ids in done.items()} == {name: sorted(ids) for name, ids in added.items()}
        assert stats.completed == 15
        assert all(q.counts().completed == 5 for q in queues)
    finally:
        await conn.aclose()
        close_backend(conn)


def test_moved_is_followed_and_learned(cluster: jqc.Connection) -> None:
    queue = cluster.queue("moving")
    owner = master_of(cluster, "moving")
    wrong = next(m for m in _backend(cluster).router.masters() if m != owner)
    slot = key_slot(queue.ops.keys.meta.encode())
    router = _backend(cluster).router
    router.moved(slot, wrong)  # as if the slot had been served by another master until now
    job = queue.add("x", {"n": 1})
    assert router.address(slot) == owner  # the MOVED reply taught it back
    assert queue.get_job(job.id).data == {"n": 1}


def test_ask_during_a_slot_migration_runs_the_call_on_the_importing_node(cluster: jqc.Connection) -> None:
    key = f"{cluster.prefix}:{{asked}}:probe"
    slot = key_slot(key.encode())
    source_address = master_of(cluster, "asked")
    target_address = next(m for m in _backend(cluster).router.masters() if m != source_address)
    source, target = node_client(source_address), node_client(target_address)
    source_id, target_id = source.execute_command("CLUSTER", "MYID"), target.execute_command("CLUSTER", "MYID")
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    try:
        # The key is not on the source, which answers ASK: the call goes to the target with ASKING.
        assert cluster.backend.run_command("HSET", key, "f", "v") == 1
        assert source.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0  # (EXISTS would be ASKed too)
        pipe = target.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.hget(key, "f")
        assert pipe.execute()[1] == "v"
        assert cluster.backend.run_command("HGET", key, "f") == "v"
        assert _backend(cluster).router.address(slot) == source_address  # ASK moves nothing for good
    finally:
        pipe = target.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.delete(key)
        pipe.execute()
        for client in (target, source):
            client.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
            client.close()


def test_an_add_can_wait_for_its_replica() -> None:
    base = open_topology("cluster")
    config = replace(base.factory.config, wait_replicas=1, wait_timeout=5.0)  # type: ignore[attr-defined]
    conn = jqc.Connection.over(ClusterFactory(config), prefix=base.prefix)
    try:
        job = conn.queue("durable").add("x", {"n": 1})  # every master has one replica: it confirms
        assert conn.queue("durable").get_job(job.id).data == {"n": 1}
        more = replace(config, wait_replicas=2, wait_timeout=0.2)  # more replicas than there are
        strict = jqc.Connection.over(ClusterFactory(more), prefix=base.prefix)
        with pytest.raises(jqc.NotReplicatedError, match="only 1 of 2 replicas") as info:
            strict.queue("durable").add("x", {"n": 2})
        added = info.value.result
        assert isinstance(added, jqc.Job) and (info.value.acknowledged, info.value.wanted) == (1, 2)
        assert conn.queue("durable").get_job(added.id).data == {"n": 2}  # it ran: it is not undone
        strict.close()
    finally:
        close_backend(conn)
        conn.close()
