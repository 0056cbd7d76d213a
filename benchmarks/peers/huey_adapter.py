"""huey adapter: see _common.py."""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Any

from _common import JOB_NAME, main, mark
from huey import RedisHuey

ASYNC = False
BULK_API = "none: one enqueue per job"
SETTINGS = "consumer with 1 worker thread per process (huey's default), blocking BRPOP"


def versions() -> dict[str, str]:
    return {"huey": version("huey"), "redis": version("redis")}


def _huey(url: str, queue: str) -> tuple[Any, Any]:
    huey = RedisHuey(queue, url=url, results=False)

    @huey.task(name=JOB_NAME)
    def thumbnail(data: Any) -> None:
        mark(data)

    return huey, thumbnail


def setup(url: str, queue: str) -> Any:
    return _huey(url, queue)[1]


def add_one(task: Any, payload: dict[str, Any]) -> None:
    task(payload)


def add_bulk(task: Any, payloads: list[dict[str, Any]]) -> None:
    for p in payloads:
        task(p)


def close(task: Any) -> None:
    pass


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    huey, _ = _huey(url, queue)
    huey.create_consumer(workers=concurrency, worker_type="thread", periodic=False).run()


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
