"""dramatiq adapter (Redis broker): see _common.py."""

from __future__ import annotations

import sys
import time
from importlib.metadata import version
from typing import Any

import dramatiq
from _common import JOB_NAME, crash_mode, main, mark
from dramatiq.brokers.redis import RedisBroker

ASYNC = False
BULK_API = "group(messages).run(): no bulk enqueue, one per message"
SETTINGS = (
    "Worker with 8 threads per process (the CLI default), default prefetch; crash row: heartbeat_timeout 5 s "
    "and maintenance on every call (defaults 60 s, 1 in 1,000)"
)


def versions() -> dict[str, str]:
    return {"dramatiq": version("dramatiq"), "redis": version("redis")}


def _actor(url: str, queue: str) -> Any:
    opts: dict[str, Any] = {"url": url, "namespace": "dqpb"}
    if crash_mode():
        opts.update(heartbeat_timeout=5000, maintenance_chance=1_000_000)
    broker = RedisBroker(**opts)
    dramatiq.set_broker(broker)

    def thumbnail(data: Any) -> None:
        mark(data)

    return dramatiq.actor(thumbnail, actor_name=JOB_NAME, queue_name=queue, max_retries=0, broker=broker)


def setup(url: str, queue: str) -> Any:
    return _actor(url, queue)


def add_one(actor: Any, payload: dict[str, Any]) -> None:
    actor.send(payload)


def add_bulk(actor: Any, payloads: list[dict[str, Any]]) -> None:
    dramatiq.group(actor.message(p) for p in payloads).run()


def close(actor: Any) -> None:
    actor.broker.close()


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    actor = _actor(url, queue)
    dramatiq.Worker(actor.broker, worker_threads=concurrency, worker_timeout=100).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
