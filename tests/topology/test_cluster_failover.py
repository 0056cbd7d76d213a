"""Master kill: the master holding a busy queue is SIGKILLed under load, its replica is promoted,
and producers and workers carry on with it without a restart. Replication is asynchronous, so the
adds the dead master acknowledged in its last moments, before its replica had them, may be lost:
each one is accounted for (acknowledged by the old master just before the kill), and with
``wait_replicas=1`` (WAIT after each add) none is (docs/cluster.md, "what a failover can lose").
"""

from __future__ import annotations

import time

from redis.crc import key_slot

import jqc
from jqc.testing.topology import LocalCluster, LocalServer
from tests.topology.load import Accounting, Consumer, Executions, Producer, account, stop, until

PREFIX = "kill"
#: How long before the kill an add may have been acknowledged and still be lost: replication runs
#: within milliseconds; this allows a loaded machine plenty.
LAG = 2.0


def _queue_on(cluster: LocalCluster, master: LocalServer, taken: set[str]) -> str:
    """A queue name whose slot ``master`` serves (and that no earlier test used)."""
    for n in range(10_000):
        name = f"busy{n}"
        if name not in taken and cluster.serving(key_slot(f"{PREFIX}:{{{name}}}:meta".encode())) is master:
            taken.add(name)
            return name
    raise AssertionError("no queue name hashes to that master")


USED: set[str] = set()


def _kill_under_load(
    cluster: LocalCluster, *, pause_replica: bool = False, back_at_once: bool = False, **options: object
) -> tuple[Accounting, float, list[Producer]]:
    """Kill the master of a busy queue under load (after pausing its replica for a moment, with
    ``pause_replica``); return the accounting, the kill time and the producers.

    The killed node comes back (empty: no persistence) as a replica of the promoted one once the
    load is over or, with ``back_at_once``, as soon as the replica is promoted: WAIT needs a
    replica to confirm adds.
    """
    cluster.wait_healthy()
    victim = next(m for m in cluster.masters() if cluster.replicas_of(m))
    name = _queue_on(cluster, victim, USED)
    slot = key_slot(f"{PREFIX}:{{{name}}}:meta".encode())
    runs = Executions()
    consumers = [Consumer(cluster.url, PREFIX, [name], runs).start_ready() for _ in range(2)]
    producers = [Producer(cluster.url, PREFIX, [name], f"{name}p{i}", **options) for i in range(2)]
    conn = jqc.connect(cluster.url, prefix=PREFIX, failover_timeout=30)
    queue = conn.queue(name)
    acked = lambda: sum(p.count() for p in producers)  # noqa: E731
    try:
        for producer in producers:
            producer.start()
        until(lambda: acked() >= 200 and runs.total() >= 100, "load before the kill")
        if pause_replica:  # adds the replica cannot confirm: WAIT times out, the producers retry them
            replica = cluster.replicas_of(victim)[0]
            replica.pause()
            try:
                until(lambda: sum(len(p.unconfirmed) for p in producers) >= 2, "adds no replica confirmed", 30)
            finally:
                replica.resume()
        killed_at = time.monotonic()
        victim.kill()
        until(lambda: cluster.serving(slot) is not victim, "the replica to be promoted", within=60)
        if back_at_once:
            victim.start()
        mark, done = acked(), runs.total()
        until(lambda: acked() >= mark + 100 and runs.total() >= done + 100, "producers and workers to resume", 60)
        stop(producers)
        total = acked()
        # Jobs whose completion died with the master are active again on the replica: the
        # workers' stall check takes them back once their locks expire (5 s).
        until(lambda: _settled(queue, total - len(_lost(producers, queue))), "the workers to drain the queue", 90)
        result = account([queue], producers, runs)
    finally:
        stop(producers)
        for consumer in consumers:
            consumer.stop()
        conn.close()
        if not victim.alive:
            victim.start()  # (empty, without persistence: it becomes the promoted node's replica)
    return result, killed_at, producers


def _lost(producers: list[Producer], queue: jqc.Queue) -> set[str]:
    return {job_id for p in producers for job_id in p.acked if queue.get_job(job_id) is None}


def _settled(queue: jqc.Queue, completed: int) -> bool:
    counts = queue.counts()
    return counts.waiting == counts.active == counts.delayed == 0 and counts.completed >= completed


def test_after_a_master_is_killed_its_replica_serves_and_only_its_last_unreplicated_adds_are_lost(
    cluster: LocalCluster,
) -> None:
    result, killed_at, producers = _kill_under_load(cluster)
    assert not result.unknown, str(result)
    acked_at = {job_id: when for p in producers for job_id, when in p.acked.items()}
    late = {job_id: round(killed_at - acked_at[job_id], 3) for job_id in result.lost}
    assert all(0 <= before <= LAG for before in late.values()), f"lost adds acknowledged long before the kill: {late}"
    assert len(result.stored) >= sum(p.count() for p in producers) - len(result.lost) >= 300


def test_with_wait_replicas_no_acknowledged_add_is_lost_when_the_master_is_killed(cluster: LocalCluster) -> None:
    replicas = 1
    result, _killed_at, producers = _kill_under_load(
        cluster, pause_replica=True, back_at_once=True, wait_replicas=replicas, wait_timeout=0.2
    )
    assert not result.lost and not result.unknown, str(result)
    assert sum(len(p.unconfirmed) for p in producers) >= 2  # (NotReplicatedError, then retried and confirmed)
    assert len(result.stored) >= sum(p.count() for p in producers) >= 300
