"""Reference row, not a job queue: a bare Redis list, see _common.py for the adapter interface.

An add is one LPUSH of the JSON payload; the worker is one BLPOP loop that decodes the payload and
calls ``mark``. That is the least any queue here does per job (one round trip to add, one hand-off to
a blocked reader) and nothing more: no ids, no job state, no acknowledgement, so a killed reader
loses its job. Its single adds and its add -> start latency are the floor this machine and this Redis
put under every system; peers.py measures it only for those two rows.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from typing import Any

import redis
from _common import main, mark

ASYNC = False
BULK_API = "one pipeline of LPUSH"
SETTINGS = "reference only: LPUSH / BLPOP on one list with redis-py (hiredis), no job state, 1 reader per process"


def versions() -> dict[str, str]:
    return {"redis": version("redis")}


def setup(url: str, queue: str) -> Any:
    client = redis.Redis.from_url(url)
    client.ping()
    return client, f"floor:{queue}"


def add_one(handle: Any, payload: dict[str, Any]) -> None:
    client, key = handle
    client.lpush(key, json.dumps(payload))


def add_bulk(handle: Any, payloads: list[dict[str, Any]]) -> None:
    client, key = handle
    pipe = client.pipeline(transaction=False)
    for p in payloads:
        pipe.lpush(key, json.dumps(p))
    pipe.execute()


def close(handle: Any) -> None:
    handle[0].close()


def worker(url: str, queue: str, concurrency: int, crash: bool) -> None:
    client = redis.Redis.from_url(url)
    key = f"floor:{queue}"
    while True:
        popped = client.blpop([key])
        if popped:
            mark(json.loads(popped[1]))


if __name__ == "__main__":
    raise SystemExit(main(sys.modules[__name__]))
