"""A worker rides out a server that refuses for a while (READONLY after a demotion, OOM under
maxmemory), logs each refusal as what it is, and carries on when the server serves again."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

import jqc
from tests.servers import private_redis


async def _until(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.02)


async def test_a_demoted_master_is_retried_and_logged_as_read_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with private_redis(tmp_path) as server:
        conn = jqc.connect(server.url)
        queue = conn.queue("q")
        for i in range(5):
            queue.add("job", i)
        admin = server.client()
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # demoted; its master is not there, data stays
        done: list[int] = []

        async def handle(ctx: jqc.JobContext) -> None:
            done.append(ctx.data)

        caplog.set_level(logging.INFO, logger="jqc.worker")
        worker = jqc.Worker(conn.async_queue("q"), handle, reconnect_delay=(0.01, 0.05))
        await worker.start()
        try:
            await _until(lambda: any("ServerReadOnlyError" in r.getMessage() for r in caplog.records), "READONLY")
            assert not done
            admin.execute_command("REPLICAOF", "NO", "ONE")  # promoted again
            await _until(lambda: len(done) == 5, "the jobs ran after the promotion")
        finally:
            await worker.close()
            await conn.aclose()
        refusals = [r for r in caplog.records if "ServerReadOnlyError" in r.getMessage()]
        assert refusals and all(r.levelno == logging.WARNING and r.exc_info is None for r in refusals)
        assert any("Redis serves again" in r.getMessage() for r in caplog.records)
        assert not any("reconnected to Redis" in r.getMessage() for r in caplog.records)  # nothing was dropped
        assert queue.counts().completed == 5
        conn.close()


async def test_out_of_memory_is_logged_as_an_error_without_a_traceback_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with private_redis(tmp_path) as server:
        conn = jqc.connect(server.url)
        queue = conn.queue("q")
        queue.add("job", 1)
        admin = server.client()
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        done: list[int] = []

        async def handle(ctx: jqc.JobContext) -> None:
            done.append(ctx.data)

        caplog.set_level(logging.INFO, logger="jqc.worker")
        worker = jqc.Worker(conn.async_queue("q"), handle, reconnect_delay=(0.01, 0.05))
        await worker.start()
        try:
            await _until(lambda: any("refuses: OutOfMemoryError" in r.getMessage() for r in caplog.records), "OOM")
            admin.config_set("maxmemory", 0)
            await _until(lambda: queue.counts().completed == 1, "the job completed once memory was back")
        finally:
            await worker.close()
            await conn.aclose()
        oom = [r for r in caplog.records if "the server refuses: OutOfMemoryError" in r.getMessage()]
        assert all(r.levelno == logging.ERROR and r.exc_info is None for r in oom)
        assert "maxmemory" in oom[0].getMessage()
        assert not any("failed unexpectedly" in r.getMessage() for r in caplog.records)
        conn.close()
