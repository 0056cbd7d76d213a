"""arq adapter: see _common.py."""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import version
from typing import Any

from _common import JOB_NAME, main, mark
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func

ASYNC = True
BULK_API = "none: asyncio.gather of enqueue_job, 1 batch at a time"
SETTINGS = (
    "Worker max_jobs 10 per process, poll_delay 10 ms (default 0.5 s), keep_result 0; "
    "crash row: job_timeout 5 s (default 300 s; the in-progress key lives that long)"
)


def versions() -> dict[str, str]:
    return {"arq": version("arq"), "redis": version("redis")}


async def thumbnail(ctx: Any, data: Any) -> None:
    mark(data)


async def setup(url: str, queue: str) -> Any:
    pool = await create_pool(RedisSettings.from_dsn(url), default_queue_name=f"arq:{queue}")
    return pool


async def add_one(pool: Any, payload: dict[str, Any]) -> None:
    await pool.enqueue_job(JOB_NAME, payload)


async def add_bulk(pool: Any, payloads: list[dict[str, Any]]) -> None:
    await asyncio.gather(*(pool.enqueue_job(JOB_NAME, p) for p in payloads))


async def close(pool: Any) -> None:
    await pool.aclose()


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    w = Worker(
        functions=[func(thumbnail, name=JOB_NAME)],
        redis_settings=RedisSettings.from_dsn(url),
        queue_name=f"arq:{queue}",
        max_jobs=concurrency,
        poll_delay=0.01,
        keep_result=0,
        job_timeout=5 if crash else 300,
    )
    w.run()


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
