"""celery adapter (Redis broker, kombu): see _common.py."""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Any

from _common import JOB_NAME, crash_mode, main, mark
from celery import Celery, group

ASYNC = False
BULK_API = "group(signatures).apply_async()"
SETTINGS = (
    "solo pool (1 job at a time) per process, prefetch multiplier 4, no result backend, acks_late; "
    "crash row: visibility_timeout 5 s (default 1 h)"
)


def versions() -> dict[str, str]:
    return {"celery": version("celery"), "kombu": version("kombu"), "redis": version("redis")}


def _app(url: str, queue: str) -> tuple[Any, Any]:
    app = Celery("pb", broker=url)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_default_queue=queue,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    if crash_mode():
        app.conf.broker_transport_options = {"visibility_timeout": 5}

    @app.task(name=JOB_NAME)
    def thumbnail(data: Any) -> None:
        mark(data)

    return app, thumbnail


def setup(url: str, queue: str) -> Any:
    return _app(url, queue)[1]


def add_one(task: Any, payload: dict[str, Any]) -> None:
    task.apply_async((payload,))


def add_bulk(task: Any, payloads: list[dict[str, Any]]) -> None:
    group(task.s(p) for p in payloads).apply_async()


def close(task: Any) -> None:
    pass


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    app, _ = _app(url, queue)
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
