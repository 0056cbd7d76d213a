"""bullmq (Python port) adapter: see _common.py."""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import version
from typing import Any

from _common import JOB_NAME, main, mark
from bullmq import Queue, Worker

ASYNC = True
BULK_API = "Queue.addBulk"
SETTINGS = "Worker concurrency 10 per process; crash row: lockDuration 5 s, stalledInterval 5 s (defaults 30 s)"
CLAIMS_AT_LEAST_ONCE = True


def versions() -> dict[str, str]:
    return {"bullmq": version("bullmq"), "redis": version("redis")}


async def setup(url: str, queue: str) -> Any:
    return Queue(queue, {"connection": url})


async def add_one(q: Any, payload: dict[str, Any]) -> None:
    await q.add(JOB_NAME, payload)


async def add_bulk(q: Any, payloads: list[dict[str, Any]]) -> None:
    await q.addBulk([{"name": JOB_NAME, "data": p} for p in payloads])


async def close(q: Any) -> None:
    await q.close()


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    async def processor(job: Any, token: Any) -> None:
        mark(job.data)

    async def run() -> None:
        opts: dict[str, Any] = {"connection": url, "concurrency": concurrency}
        if crash:
            opts.update(lockDuration=5000, stalledInterval=5000)
        Worker(queue, processor, opts)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
