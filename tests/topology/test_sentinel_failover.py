"""Failover behind Sentinel under load: the master SIGKILLed, and ``SENTINEL FAILOVER`` (the old
master still up) with and without ``wait_replicas``. Producers and workers carry on with the new
master without a restart, and every acknowledged add is accounted for: lost only in the moments a
failover can lose (docs/cluster.md), never with WAIT.

After ``SENTINEL FAILOVER`` the old master keeps taking writes until the sentinels demote it (about
10 s later), and its demotion throws them away; the backend re-asks the sentinels every
``RECHECK`` seconds, so it leaves the old master long before that.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

import jqc
from jqc.backends.routed import RoutedBackend
from jqc.backends.sentinel import RECHECK
from jqc.testing.topology import HOST, LocalSentinel, LocalServer
from tests.topology.load import Accounting, Consumer, Executions, Producer, account, stop, until

PREFIX = "sentinel"
#: How long after the moment a write could still reach the old master an add it acknowledged may be
#: lost (replication runs in milliseconds; this allows a loaded machine plenty).
LAG = 2.0


def _followed(producer: Producer) -> str:
    backend = producer.conn.backend
    assert isinstance(backend, RoutedBackend)
    return backend.router.masters()[0]


def _failover(group: LocalSentinel) -> None:
    """``SENTINEL FAILOVER``, asked again while the sentinels are not ready for one (INPROG, NOGOODSLAVE)."""

    def asked() -> bool:
        with group.sentinels[0].client() as client:
            try:
                return bool(client.execute_command("SENTINEL", "FAILOVER", group.name))
            except redis.ResponseError:
                return False

    until(asked, "the sentinels to accept SENTINEL FAILOVER", within=30, every=0.2)


def _under_load(
    group: LocalSentinel,
    name: str,
    fault: Callable[[LocalServer, list[Producer]], tuple[float, float]],
    **options: object,
) -> tuple[Accounting, list[Producer], tuple[float, float]]:
    """Run ``fault(master, producers)`` under load; it returns the window (monotonic times) in
    which a lost add may have been acknowledged. Returns the accounting, the producers and that window."""
    group.wait_healthy()
    runs = Executions()
    consumers = [Consumer(group.url, PREFIX, [name], runs).start_ready() for _ in range(2)]
    producers = [Producer(group.url, PREFIX, [name], f"{name}p{i}", **options) for i in range(2)]
    conn = jqc.connect(group.url, prefix=PREFIX, failover_timeout=30)
    queue = conn.queue(name)
    acked = lambda: sum(p.count() for p in producers)  # noqa: E731
    try:
        for producer in producers:
            producer.start()
        until(lambda: acked() >= 200 and runs.total() >= 100, "load before the failover")
        window = fault(group.master(), producers)
        mark, done = acked(), runs.total()
        until(lambda: acked() >= mark + 100 and runs.total() >= done + 100, "producers and workers to resume", 60)
        stop(producers)
        total = acked()

        def settled() -> bool:
            counts = queue.counts()
            lost = sum(1 for p in producers for job_id in p.acked if queue.get_job(job_id) is None)
            return counts.waiting == counts.active == counts.delayed == 0 and counts.completed >= total - lost

        until(settled, "the workers to drain the queue", 90)
        result = account([queue], producers, runs)
    finally:
        stop(producers)
        for consumer in consumers:
            consumer.stop()
        conn.close()
    return result, producers, window


def _lost_within(result: Accounting, producers: list[Producer], window: tuple[float, float]) -> None:
    acked_at = {job_id: when for p in producers for job_id, when in p.acked.items()}
    start, end = window
    outside = {job_id: acked_at[job_id] for job_id in result.lost if not start - LAG <= acked_at[job_id] <= end + LAG}
    assert not outside, f"lost adds acknowledged outside the failover's window {window}: {outside}"
    assert not result.unknown, str(result)


def _replace(group: LocalSentinel, old: LocalServer) -> None:
    """Bring a killed master back as the replica of the new one (as an operator would)."""
    new = group.master()
    old.args = ["--replicaof", HOST, str(new.port)]
    old.start()


def test_after_the_master_is_killed_producers_and_workers_carry_on_with_the_promoted_replica(
    sentinel_group: LocalSentinel,
) -> None:
    def kill(master: LocalServer, _producers: list[Producer]) -> tuple[float, float]:
        killed_at = time.monotonic()
        master.kill()
        until(lambda: sentinel_group.master() is not master, "the sentinels to promote the replica", within=60)
        _replace(sentinel_group, master)
        return killed_at, killed_at  # (nothing reaches a dead master: only what it had not replicated)

    result, producers, window = _under_load(sentinel_group, "killed", kill)
    _lost_within(result, producers, window)


def _switch(group: LocalSentinel, producers: list[Producer]) -> tuple[float, float]:
    """SENTINEL FAILOVER; check that the producers leave the old master while it still takes writes,
    then demote it (what the sentinels do ~10 s later). Returns when writes could reach it."""
    old = group.master()
    started = time.monotonic()
    _failover(group)
    until(lambda: group.master() is not old, "the sentinels to switch to the replica", within=60)
    new = group.master()
    until(
        lambda: all(_followed(p) == new.address for p in producers), "the producers to follow the switch", 10 * RECHECK
    )
    followed = time.monotonic()
    assert group.role(old) == "master"  # (still writable: the backend did not wait for the demotion)
    with old.client() as client:
        client.execute_command("REPLICAOF", HOST, new.port)
    return started, followed


def test_sentinel_failover_moves_producers_and_workers_to_the_new_master_before_the_old_is_demoted(
    sentinel_group: LocalSentinel,
) -> None:
    result, producers, window = _under_load(sentinel_group, "switched", lambda _m, p: _switch(sentinel_group, p))
    _lost_within(result, producers, window)


def test_with_wait_replicas_sentinel_failover_loses_no_acknowledged_add(sentinel_group: LocalSentinel) -> None:
    result, producers, _window = _under_load(
        sentinel_group, "waited", lambda _m, p: _switch(sentinel_group, p), wait_replicas=1, wait_timeout=0.2
    )
    assert not result.lost and not result.unknown, str(result)
    # (adds the old master took after its replica was promoted, and the new master's before it had
    # a replica, were not confirmed: NotReplicatedError, retried with their ids until they were)
    assert sum(len(p.unconfirmed) for p in producers) > 0
