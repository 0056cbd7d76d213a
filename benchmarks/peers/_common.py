"""Shared by the peer adapters. Standard library only: it runs under each peer's own interpreter.

An adapter module defines ``ASYNC`` (its API is asyncio), ``BULK_API`` (the bulk call it uses, or a
note that it has none), ``SETTINGS`` (the worker settings, recorded in the report), ``setup(url,
queue)``, ``add_one(handle, payload)``, ``add_bulk(handle, payloads)``, ``close(handle)``, ``versions()``
and ``worker(url, queue, concurrency, crash)``, which runs one worker process until killed. Its
handler calls ``mark(data)`` first thing: one line ``<seq> <time.monotonic()>`` appended (O_APPEND,
atomic below PIPE_BUF) to the file named by $PEERS_BENCH_LOG, which the parent reads to count jobs,
time them and find duplicates. CLOCK_MONOTONIC is one clock for every process of the machine (and,
unlike time.time(), never stepped), so a stamp taken in the producer and one taken in a worker process
can be subtracted.

``python <adapter>.py serve URL QUEUE`` answers one JSON command per line on stdin;
``python <adapter>.py worker URL QUEUE CONCURRENCY`` runs a worker process that also counts the
requests its redis-py connections send (a pipeline or a script call is one round trip) into
``$PEERS_BENCH_LOG.rt.<pid>``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import sys
import threading
import time
from types import ModuleType
from typing import Any

PAYLOAD = {"photoId": "123", "pipeline": "thumbnail"}
JOB_NAME = "thumbnail"
LOG_ENV = "PEERS_BENCH_LOG"
CRASH_ENV = "PEERS_BENCH_CRASH"

_fd: int | None = None


def crash_mode() -> bool:
    return os.environ.get(CRASH_ENV) == "1"


def mark(data: Any) -> None:
    """Called first thing by every handler: log the job's ``seq`` (or -1) and the time it started."""
    global _fd
    if _fd is None:
        _fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    now = time.monotonic()
    seq = data.get("seq", -1) if isinstance(data, dict) else -1
    os.write(_fd, f"{seq} {now:.7f}\n".encode())


def count_round_trips() -> None:
    """Count requests sent by redis-py (sync and asyncio), written to a file every 0.2 s."""
    import redis.asyncio.connection as aconn
    import redis.connection as sconn

    count = [0]
    for mod in (sconn, aconn):
        cls = getattr(mod, "AbstractConnection", None) or mod.Connection
        original = cls.send_packed_command
        if asyncio.iscoroutinefunction(original):

            async def send_async(self: Any, *a: Any, _o: Any = original, **kw: Any) -> Any:
                count[0] += 1
                return await _o(self, *a, **kw)

            cls.send_packed_command = send_async
        else:

            def send_sync(self: Any, *a: Any, _o: Any = original, **kw: Any) -> Any:
                count[0] += 1
                return _o(self, *a, **kw)

            cls.send_packed_command = send_sync
    path = f"{os.environ[LOG_ENV]}.rt.{os.getpid()}"

    def dump() -> None:
        while True:
            with open(path + ".tmp", "w") as f:
                f.write(str(count[0]))
            os.replace(path + ".tmp", path)
            time.sleep(0.2)

    threading.Thread(target=dump, daemon=True).start()


def payloads(n: int, seq0: int | None) -> list[dict[str, Any]]:
    if seq0 is None:
        return [dict(PAYLOAD) for _ in range(n)]  # one dict per job, as in real use
    return [{**PAYLOAD, "seq": seq0 + i} for i in range(n)]


async def _serve(mod: ModuleType, url: str, queue: str, out: Any) -> None:
    handle = mod.setup(url, queue)
    if mod.ASYNC:
        handle = await handle
    loop = asyncio.get_running_loop()

    async def call(fn: Any, *args: Any) -> Any:
        result = fn(*args)
        return await result if mod.ASYNC else result

    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            op = cmd["op"]
            try:
                if op == "hello":
                    reply: dict[str, Any] = {
                        "versions": mod.versions(),
                        "python": sys.version.split()[0],
                        "bulk_api": mod.BULK_API,
                        "settings": mod.SETTINGS,
                    }
                elif op == "add":  # one at a time, each awaited before the next
                    jobs = payloads(cmd["n"], cmd.get("seq0"))
                    add = mod.add_one
                    c0, t0 = time.process_time(), time.perf_counter()
                    if mod.ASYNC:
                        for p in jobs:
                            await add(handle, p)
                    else:
                        for p in jobs:
                            add(handle, p)
                    # cpu: this process's CPU time (user + system, every thread) while adding
                    reply = {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}
                elif op == "bulk":
                    jobs = payloads(cmd["n"], cmd.get("seq0"))
                    batch = cmd["batch"]
                    t0 = time.perf_counter()
                    for start in range(0, len(jobs), batch):
                        await call(mod.add_bulk, handle, jobs[start : start + batch])
                    reply = {"seconds": time.perf_counter() - t0}
                elif op == "latency":  # one job at a time to an idle worker
                    # sent: time.monotonic() right before the add call; returned: when that call returned
                    rng = random.Random(cmd["seq0"])
                    sent, returned = [], []
                    for i in range(cmd["n"]):
                        p = {**PAYLOAD, "seq": cmd["seq0"] + i}
                        t = time.monotonic()
                        await call(mod.add_one, handle, p)
                        returned.append(time.monotonic())
                        sent.append(t)
                        await asyncio.sleep(cmd["gap"] * rng.uniform(0.5, 1.5))  # no phase-lock with pollers
                    reply = {"sent": sent, "returned": returned}
                elif op == "seconds":  # an adapter's own timed measurement, e.g. jqc's embedded backend
                    fn = getattr(mod, cmd["fn"])
                    reply = {"seconds": await loop.run_in_executor(None, functools.partial(fn, **cmd["args"]))}
                else:
                    reply = {"error": f"unknown op {op}"}
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        await call(mod.close, handle)


def main(mod: ModuleType) -> int:
    what, url, queue = sys.argv[1:4]
    if what == "worker":
        count_round_trips()
        mod.worker(url, queue, int(sys.argv[4]), crash_mode())
        return 0
    out = os.fdopen(os.dup(1), "w")  # answers on the original stdout; everything else goes to stderr
    sys.stdout = sys.stderr
    asyncio.run(_serve(mod, url, queue, out))
    return 0
