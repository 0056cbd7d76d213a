"""rq adapter: see _common.py."""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Any

from _common import main, mark
from redis import Redis
from rq import Queue, SimpleWorker

ASYNC = False
BULK_API = "Queue.enqueue_many"
SETTINGS = "SimpleWorker (no fork per job; the forking Worker is ~8x slower), 1 job at a time per process"
FUNC = "rq_adapter.thumbnail"


def versions() -> dict[str, str]:
    return {"rq": version("rq"), "redis": version("redis")}


def thumbnail(data: Any) -> None:
    mark(data)


def setup(url: str, queue: str) -> Any:
    return Queue(queue, connection=Redis.from_url(url))


def add_one(q: Any, payload: dict[str, Any]) -> None:
    q.enqueue(FUNC, payload)


def add_bulk(q: Any, payloads: list[dict[str, Any]]) -> None:
    q.enqueue_many([Queue.prepare_data(FUNC, (p,)) for p in payloads])


def close(q: Any) -> None:
    q.connection.close()


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    conn = Redis.from_url(url)
    SimpleWorker([Queue(queue, connection=conn)], connection=conn).work(with_scheduler=False)


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
