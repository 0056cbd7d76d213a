"""Moving one slot between masters of a live cluster, the way ``redis-cli --cluster reshard`` does:
``CLUSTER SETSLOT IMPORTING`` on the target, ``MIGRATING`` on the source, ``MIGRATE`` of the
slot's keys in small batches (without REPLACE: a key the target already holds is an error, since
it means a write reached the target before the source's copy moved), then ``SETSLOT NODE`` on
every master."""

from __future__ import annotations

import time
from collections.abc import Callable

from jqc.testing.topology import HOST, LocalCluster, LocalServer


def migrate_slot(
    cluster: LocalCluster,
    slot: int,
    target: LocalServer,
    *,
    batch: int = 20,
    pause: float = 0.02,
    while_migrating: Callable[[], None] = lambda: None,
) -> int:
    """Move ``slot`` to ``target``; ``while_migrating`` runs once the slot is marked, before any key
    moves. Returns how many keys moved."""
    source = cluster.serving(slot)
    assert source is not target, "the slot is on the target already"
    ids = cluster.ids
    with target.client(10) as to, source.client(10) as src:
        to.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
        while_migrating()
        moved = 0
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            src.execute_command("MIGRATE", HOST, target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause)
        to.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
        src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
    for master in cluster.masters():
        if master not in (source, target):
            with master.client(10) as other:
                other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
    return moved
