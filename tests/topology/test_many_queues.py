"""Many queues on a cluster: 1,000 queues spread over the three masters by their hash tags, and
queue discovery (a SCAN of every master: ``Connection.queue_names()``, ``jqc stats``) finds every
one of them, whichever master holds it."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

from redis.crc import key_slot

import jqc
from jqc.testing.topology import LocalCluster

QUEUES = 1000


def test_a_thousand_queues_spread_over_every_master_and_discovery_finds_them_all(cluster: LocalCluster) -> None:
    names = [f"q{n:04d}" for n in range(QUEUES)]
    conn = jqc.connect(cluster.url)  # (the default prefix, as the CLI uses it)
    try:
        for name in names:
            conn.queue(name).add("t", {"queue": name})
        masters = {server.port: server for server in cluster.masters()}
        by_slot = {}
        with next(iter(masters.values())).client() as client:
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                by_slot[(int(start), int(end))] = int(master[1])
        spread = collections.Counter(
            next(
                port
                for (start, end), port in by_slot.items()
                if start <= key_slot(f"jqc:{{{name}}}:meta".encode()) <= end
            )
            for name in names
        )
        assert set(spread) == set(masters) and min(spread.values()) > QUEUES / 4, spread

        assert conn.queue_names() == names
        shown = subprocess.run(
            [sys.executable, "-m", "jqc", "stats", "--url", cluster.url, "--json"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert sorted(row["queue"] for row in json.loads(shown.stdout)) == names
    finally:
        conn.close()
