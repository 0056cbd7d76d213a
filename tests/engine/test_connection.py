"""Connections: the embedded backend is shared by every client of one connection, and only that."""

from __future__ import annotations

import asyncio

import pytest

import jqc
from jqc.connection import redact


def test_no_url_and_memory_url_are_embedded() -> None:
    assert jqc.connect().embedded
    assert jqc.connect("memory://").embedded
    assert not jqc.connect("redis://127.0.0.1:6379/0").embedded
    assert not jqc.connect("unix:///var/run/redis.sock").embedded
    assert not jqc.connect("rediss://example.invalid:6380/0").embedded


def test_unsupported_scheme_is_a_clear_error() -> None:
    with pytest.raises(jqc.InvalidOptionError, match="unsupported URL scheme 'http'"):
        jqc.connect("http://localhost:6379")


def test_each_embedded_connection_is_its_own_server() -> None:
    a, b = jqc.connect(), jqc.connect()
    a.queue("q").add("x")
    assert b.queue("q").counts().waiting == 0
    assert a.queue("q").counts().waiting == 1


def test_sync_and_async_clients_of_one_embedded_connection_share_data() -> None:
    conn = jqc.connect()
    conn.queue("q").add("from-sync")

    async def main() -> list[str]:
        aq = conn.async_queue("q")
        await aq.add("from-async")
        got = await aq.claim("w", count=5)
        await conn.aclose()
        return [c.job.name for c in got.jobs]

    assert asyncio.run(main()) == ["from-sync", "from-async"]
    # A second event loop gets a client of its own on the same server.
    assert asyncio.run(_count(conn)) == 2


async def _count(conn: jqc.Connection) -> int:
    counts = await conn.async_queue("q").counts()
    await conn.aclose()
    return counts.active


def test_passwords_never_appear_in_reprs() -> None:
    conn = jqc.connect("redis://jobs:s3cret@127.0.0.1:6379/0")
    assert "s3cret" not in repr(conn) and "s3cret" not in conn.safe_url
    assert "s3cret" not in repr(conn.queue("q"))
    assert redact("redis://:pw@host:1/0") == "redis://:***@host:1/0"
    assert redact("redis://host:1/0") == "redis://host:1/0"


def test_unreachable_server_raises_backend_error() -> None:
    conn = jqc.connect("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(jqc.BackendError, match="cannot reach Redis"):
        conn.queue("q").add("x")


def test_queue_requires_a_connection() -> None:
    with pytest.raises(jqc.InvalidOptionError):
        jqc.Queue("q", "redis://localhost")  # type: ignore[arg-type]


def test_scripts_reload_after_script_flush(queue: jqc.Queue, conn: jqc.Connection) -> None:
    queue.add("x")
    conn.sync_client().script_flush()
    assert queue.counts().waiting == 1
    assert queue.claim("w").jobs


def test_pipelined_bulk_add_reloads_scripts_after_script_flush(queue: jqc.Queue, conn: jqc.Connection) -> None:
    conn.sync_client().script_flush()
    jobs = queue.add_bulk([("x", i) for i in range(1200)])  # three chunks sent in one round trip
    assert [j.data for j in jobs] == list(range(1200))
    assert queue.counts().waiting == 1200
    assert [c.job.data for c in queue.claim("w", count=3).jobs] == [0, 1, 2]
