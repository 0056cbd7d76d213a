"""saq adapter: see _common.py."""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import version
from typing import Any

from _common import JOB_NAME, main, mark
from saq import Queue, Worker

ASYNC = True
BULK_API = "none (Queue.map waits for results): asyncio.gather of enqueue, 1 batch at a time"
SETTINGS = "Worker concurrency 10 per process; crash row: sweep every 2 s (default 60 s), job timeout 5 s, retries 3"


def versions() -> dict[str, str]:
    return {"saq": version("saq"), "redis": version("redis")}


async def thumbnail(ctx: Any, *, data: Any) -> None:
    mark(data)


async def setup(url: str, queue: str) -> Any:
    q = Queue.from_url(url, name=queue)
    await q.connect()
    return q


def _opts(payload: dict[str, Any]) -> dict[str, Any]:
    if "seq" in payload:  # the crash row: let a swept job be retried
        return {"data": payload, "timeout": 5, "retries": 3}
    return {"data": payload}


async def add_one(q: Any, payload: dict[str, Any]) -> None:
    await q.enqueue(JOB_NAME, **_opts(payload))


async def add_bulk(q: Any, payloads: list[dict[str, Any]]) -> None:
    await asyncio.gather(*(q.enqueue(JOB_NAME, **_opts(p)) for p in payloads))


async def close(q: Any) -> None:
    await q.disconnect()


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    async def run() -> None:
        q = Queue.from_url(url, name=queue)
        timers = {"sweep": 2} if crash else None
        w = Worker(
            q, functions=[(JOB_NAME, thumbnail)], concurrency=concurrency, **({"timers": timers} if timers else {})
        )
        await w.start()

    asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
