"""jqc adapter: see _common.py. The worker is the ``jqc.Worker`` that ``python -m jqc worker`` builds,
constructed here so the handler lives in this file and the round trips can be counted."""

from __future__ import annotations

import sys
import time
from importlib.metadata import version
from typing import Any

from _common import JOB_NAME, PAYLOAD, main, mark

import jqc

ASYNC = False
BULK_API = "Queue.add_bulk"
SETTINGS = "jqc.Worker (as `python -m jqc worker`), async handler, concurrency 10 per process; crash row: lock 5 s"


def versions() -> dict[str, str]:
    return {"jqc": version("jqc"), "redis": version("redis")}


async def handler(ctx: Any) -> None:
    mark(ctx.data)


def setup(url: str, queue: str) -> Any:
    return jqc.connect(url).queue(queue)


def add_one(q: Any, payload: dict[str, Any]) -> None:
    q.add(JOB_NAME, payload)


def add_bulk(q: Any, payloads: list[dict[str, Any]]) -> None:
    q.add_bulk([(JOB_NAME, p) for p in payloads])


def close(q: Any) -> None:
    pass


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    conn = jqc.connect(url)
    jqc.Worker(conn.queue(queue), handler, concurrency=concurrency, lock=5.0 if crash else 30.0).run()


def embedded_process(n: int, concurrency: int) -> float:
    """The embedded backend lives in one process: fill, then time an in-process worker draining it."""
    conn = jqc.connect("memory://")
    q = conn.queue("pb")
    q.add_bulk([(JOB_NAME, dict(PAYLOAD)) for _ in range(n)])
    t0 = time.perf_counter()
    stats = jqc.Worker(q, handler, concurrency=concurrency).run(burst=True)
    seconds = time.perf_counter() - t0
    conn.close()
    if stats.processed != n:
        raise RuntimeError(f"embedded worker processed {stats.processed}, expected {n}")
    return seconds


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
