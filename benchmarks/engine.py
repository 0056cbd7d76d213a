#!/usr/bin/env python3
"""Engine benchmark: jqc against bullmq (its Python port) on the same real Redis, from one process.

What it measures, side by side and in the same run (payload {"photoId": "123", "pipeline": "thumbnail"}):

1. adds/s, one job at a time (jqc ``Queue.add`` vs bullmq ``await Queue.add``), measured as
   benchmarks/peers.py does: a fresh payload dict per job, each add awaited before the next, after a
   warm-up, interleaved in ``--add-rounds`` rounds (jqc and bullmq taking turns, N / rounds jobs
   each), so both figures cover the same stretch of time; the adding process's CPU time is recorded;
2. bulk adds/s (jqc ``add_bulk`` vs bullmq ``addBulk``, both given lists of ``--bulk-batch`` jobs);
3. no-op jobs claimed and completed per second from one process, 10 jobs in flight on each side
   (jqc: ``claim`` 10, then ``complete_many`` of the 10 held jobs claiming the next 10, one round trip
   per 10 jobs; bullmq: a ``Worker`` with concurrency 10 and a no-op processor, timed until it has
   completed N jobs);
4. Redis bytes per waiting job: with ``--mem-n`` jobs waiting, the sum of ``MEMORY USAGE key SAMPLES 0``
   over every key of the queue (found with SCAN MATCH on its prefix), divided by the job count. Not
   INFO used_memory: other processes share the server.

Extra rows, not compared with a target: jqc's asyncio API (adds one at a time; 10 tasks chaining
claim/complete) and jqc on the embedded fakeredis backend (smaller N). Every measurement is repeated
``--runs`` times (who goes first alternates between runs); the report gives the median and min-max,
and jqc/bullmq ratios taken run by run. Results go to benchmarks/results/engine-latest.{json,md}.

The bullmq half runs in a subprocess under its own interpreter (bullmq pins its own redis-py):
``--bullmq-python`` or $BULLMQ_PYTHON, else ./.bench-venvs/bullmq/bin/python (``make bench-engine`` creates it).
That subprocess is this file run with ``--bullmq-child``: it reads one JSON command per line on stdin and
answers one JSON line. Only the keys of the benchmark queues (``<prefix>:{bench}:*`` and
``bull:bench:*``) are ever deleted; nothing is flushed.

    .venv/bin/python benchmarks/engine.py [--quick] [--url redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _results import command_line, delete_matching, json_line_call, machine_info, stop_child, summary, write_results

PAYLOAD = {"photoId": "123", "pipeline": "thumbnail"}
JOB_NAME = "thumbnail"
DEFAULT_URL = "redis://127.0.0.1:6379/13"
BULLMQ_VERSION = "3.4.4"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BULLMQ_PYTHON = ROOT / ".bench-venvs" / "bullmq" / "bin" / "python"
TARGETS = {"add": 2.0, "bulk": 3.0, "process": 4.0}  # jqc/bullmq at least
BYTES_TARGET = 170.0  # jqc bytes per waiting job at most
METRICS = {
    "add": "adds/s, one at a time",
    "bulk": "adds/s, bulk",
    "process": "claim+complete no-op jobs/s",
    "bytes": "Redis bytes per waiting job",
}


def noop(job: Any) -> None:
    """The job handler of every throughput measurement."""


# -- bullmq side (runs in the child interpreter; imports nothing from jqc) ----------------------------


async def _bull_add_batches(queue: Any, n: int, batch: int) -> float:
    jobs = [{"name": JOB_NAME, "data": dict(PAYLOAD)} for _ in range(batch)]  # one dict per job, as in real use
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        await queue.addBulk(jobs[: min(batch, n - start)])
    return time.perf_counter() - t0


async def _bull_adds(queue: Any, url: str, cmd: dict[str, Any]) -> dict[str, Any]:
    jobs = [dict(PAYLOAD) for _ in range(cmd["n"])]  # one dict per job, as in real use
    add = queue.add
    c0, t0 = time.process_time(), time.perf_counter()
    for data in jobs:
        await add(JOB_NAME, data)
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


async def _bull_bulk(queue: Any, url: str, cmd: dict[str, Any]) -> dict[str, Any]:
    return {"seconds": await _bull_add_batches(queue, cmd["n"], cmd["batch"])}


async def _bull_fill(queue: Any, url: str, cmd: dict[str, Any]) -> dict[str, Any]:
    return {"seconds": await _bull_add_batches(queue, cmd["n"], cmd["batch"])}


async def _bull_process(queue: Any, url: str, cmd: dict[str, Any]) -> dict[str, Any]:
    """Time a Worker (concurrency 10, no-op processor) draining n jobs already waiting."""
    from bullmq import Worker

    n, concurrency = cmd["n"], cmd["concurrency"]
    done = asyncio.Event()
    count = 0

    def on_completed(job: Any, result: Any) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    async def processor(job: Any, token: Any) -> None:
        noop(job)

    t0 = time.perf_counter()
    worker = Worker(queue.name, processor, {"connection": url, "concurrency": concurrency})
    worker.on("completed", on_completed)
    try:
        await asyncio.wait_for(done.wait(), timeout=max(120.0, n / 50))
        seconds = time.perf_counter() - t0
    finally:
        await worker.close()
    return {"seconds": seconds, "completed": count}


async def _bull_hello(queue: Any, url: str, cmd: dict[str, Any]) -> dict[str, Any]:
    from importlib.metadata import version

    import redis
    from redis.utils import HIREDIS_AVAILABLE

    return {
        "bullmq": version("bullmq"),
        "redis_py": redis.__version__,
        "hiredis": HIREDIS_AVAILABLE,
        "python": platform.python_version(),
    }


_CHILD_OPS = {
    "hello": _bull_hello,
    "adds": _bull_adds,
    "bulk": _bull_bulk,
    "fill": _bull_fill,
    "process": _bull_process,
}


async def _child_loop(url: str, queue_name: str, out: Any) -> None:
    from bullmq import Queue

    queue = Queue(queue_name, {"connection": url})
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            try:
                reply = await _CHILD_OPS[cmd["op"]](queue, url, cmd)
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        await queue.close()


def child_main(url: str, queue_name: str) -> int:
    """The --bullmq-child entry: answers on the original stdout; everything else goes to stderr."""
    out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    try:
        import bullmq  # noqa: F401
    except ImportError as exc:
        out.write(json.dumps({"error": f"bullmq not importable: {exc}"}) + "\n")
        out.flush()
        return 1
    asyncio.run(_child_loop(url, queue_name, out))
    return 0


class BullmqChild:
    """The parent's handle on the bullmq subprocess."""

    def __init__(self, python: str, url: str, queue_name: str) -> None:
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--bullmq-child", "--url", url, "--queue", queue_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        reply = json_line_call(self.proc, op, params)
        if reply is None:
            return {"error": f"bullmq subprocess exited (code {self.proc.wait()})"}
        return reply

    def seconds(self, op: str, **params: Any) -> float:
        reply = self.call(op, **params)
        if "error" in reply:
            raise RuntimeError(f"bullmq {op}: {reply['error']}")
        return float(reply["seconds"])

    def close(self) -> None:
        stop_child(self.proc)


def start_bullmq(python: str, url: str, queue_name: str) -> tuple[BullmqChild | None, dict[str, Any] | str]:
    """Start the child and say hello; on failure return why (the row is then skipped)."""
    if not Path(python).exists():
        return None, f"no interpreter at {python}"
    child = BullmqChild(python, url, queue_name)
    hello = child.call("hello")
    if "error" in hello:
        child.close()
        return None, str(hello["error"])
    return child, hello


# -- Redis-side helpers (parent) ------------------------------------------------------------------------


def key_class(key: str, base: str) -> str:
    """Group a key for the byte breakdown: job records, job logs, else the key's own suffix (a
    bullmq job hash is a key per job, jqc keeps every job in its queue's ``jobs`` hash)."""
    rest = key[len(base) :]
    if rest == "jobs" or rest.isdigit():
        return "job records"
    if rest == "logs" or rest.endswith(":logs"):
        return "job logs"
    return rest


def memory_usage(client: Any, pattern: str, base: str) -> tuple[int, int, dict[str, int]]:
    """(total bytes, key count, bytes per key class) over keys matching ``pattern``."""
    total, nkeys, by_class = 0, 0, {}
    keys: list[str] = []

    def flush() -> None:
        nonlocal total, nkeys
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.execute_command("MEMORY", "USAGE", k, "SAMPLES", "0")
        for k, size in zip(keys, pipe.execute(), strict=True):
            if size is None:  # deleted meanwhile
                continue
            total += size
            nkeys += 1
            cls = key_class(k, base)
            by_class[cls] = by_class.get(cls, 0) + size
        keys.clear()

    for key in client.scan_iter(match=pattern, count=1000):
        keys.append(key)
        if len(keys) >= 1000:
            flush()
    if keys:
        flush()
    return total, nkeys, by_class


def commandstats(client: Any) -> dict[str, tuple[int, int]]:
    """cmd -> (calls, usec), server-wide (other clients of the server are counted too)."""
    out = {}
    for name, stats in client.info("commandstats").items():
        out[name.removeprefix("cmdstat_")] = (int(stats["calls"]), int(stats["usec"]))
    return out


def commandstats_delta_raw(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """cmd -> (calls, usec) added between two commandstats readings."""
    out = {}
    for name, (c, u) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if c > c0:
            out[name] = (c - c0, u - u0)
    return out


def commandstats_delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], jobs: int
) -> dict[str, Any]:
    calls = {}
    usec = {}
    for name, (c, u) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if c > c0:
            calls[name] = round((c - c0) / jobs, 3)
            usec[name] = round((u - u0) / jobs, 2)
    calls.pop("info", None)
    usec.pop("info", None)
    scripts = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall")  # not exec: it re-counts its EVALSHAs
    return {
        "calls_per_job": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
        "usec_per_job": dict(sorted(usec.items(), key=lambda kv: -kv[1])),
        "script_usec_per_job": round(sum(usec.get(s, 0.0) for s in scripts), 2),
    }


# -- jqc side (parent) ------------------------------------------------------------------------------------


def jqc_clear(q: Any) -> None:
    q.obliterate(force=True)


def jqc_timed_adds(q: Any, n: int) -> tuple[float, float]:
    """(seconds, CPU seconds of this process) for n single adds, each with its own payload dict."""
    jobs = [dict(PAYLOAD) for _ in range(n)]  # one dict per job, as in real use
    add = q.add
    c0, t0 = time.process_time(), time.perf_counter()
    for data in jobs:
        add(JOB_NAME, data)
    return time.perf_counter() - t0, time.process_time() - c0


def jqc_adds(q: Any, n: int) -> float:
    return jqc_timed_adds(q, n)[0]


def jqc_bulk(q: Any, n: int, batch: int) -> float:
    jobs = [(JOB_NAME, dict(PAYLOAD)) for _ in range(batch)]  # one dict per job, as in real use
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        q.add_bulk(jobs[: min(batch, n - start)])
    return time.perf_counter() - t0


def jqc_process(q: Any, n: int, held_max: int) -> float:
    """Hold up to ``held_max`` jobs; complete them all and claim as many again in one round trip."""
    worker = "bench-worker"
    t0 = time.perf_counter()
    held = list(q.claim(worker, count=held_max).jobs)
    done = 0
    while held:
        for claimed in held:
            noop(claimed)
        result = q.complete_many([(c, None) for c in held], fetch_next=held_max, worker=worker)
        done += len(result.completed)
        held = list(result.next.jobs) if result.next is not None else []
    seconds = time.perf_counter() - t0
    if done != n:
        raise RuntimeError(f"jqc processed {done} jobs, expected {n}")
    return seconds


async def jqc_async_adds(aq: Any, n: int) -> float:
    add = aq.add
    t0 = time.perf_counter()
    for _ in range(n):
        await add(JOB_NAME, PAYLOAD)
    return time.perf_counter() - t0


async def jqc_async_process(aq: Any, n: int, tasks: int) -> float:
    """``tasks`` coroutines, each chaining claim/complete(fetch_next=1) until the queue is empty."""

    async def run(i: int) -> int:
        worker = f"bench-async-{i}"
        held = list((await aq.claim(worker, count=1)).jobs)
        done = 0
        while held:
            claimed = held.pop()
            noop(claimed)
            nxt = await aq.complete(claimed, None, fetch_next=1, worker=worker)
            done += 1
            held = list(nxt.jobs) if nxt is not None else []
        return done

    t0 = time.perf_counter()
    done = sum(await asyncio.gather(*(run(i) for i in range(tasks))))
    seconds = time.perf_counter() - t0
    if done != n:
        raise RuntimeError(f"jqc asyncio processed {done} jobs, expected {n}")
    return seconds


def jqc_fill(q: Any, n: int, batch: int) -> None:
    jqc_bulk(q, n, batch)


# -- orchestration ------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import jqc

        self.args = args
        self.conn = jqc.connect(args.url)
        self.q = self.conn.queue(args.queue)
        self.client = self.conn.sync_client()
        self.jqc_base = self.q.ops.keys.base
        self.jqc_pattern = self.q.ops.keys.scan_pattern
        self.bull_base = f"bull:{args.queue}:"
        self.bull_pattern = f"{self.bull_base}*"
        self.values: dict[str, dict[str, list[float]]] = {}
        self.breakdown: dict[str, dict[str, int]] = {}
        self.keys_per_job: dict[str, float] = {}
        self.server: dict[str, dict[str, Any]] = {}
        self.bull: BullmqChild | None = None

    def record(self, row: str, metric: str, value: float) -> None:
        self.values.setdefault(row, {}).setdefault(metric, []).append(value)

    def clear_all(self) -> None:
        jqc_clear(self.q)
        delete_matching(self.client, self.jqc_pattern)
        delete_matching(self.client, self.bull_pattern)

    def warm_up(self) -> None:
        jqc_adds(self.q, 100)
        jqc_bulk(self.q, 100, 50)
        jqc_clear(self.q)
        jqc_bulk(self.q, 100, 100)
        jqc_process(self.q, 100, 10)
        jqc_clear(self.q)
        asyncio.run(self._async_warm_up())
        jqc_clear(self.q)
        if self.bull:
            self.bull.seconds("adds", n=100)
            self.bull.seconds("bulk", n=100, batch=50)
            # drains the 200 jobs the two lines above added
            self.bull.seconds("process", n=200, concurrency=self.args.concurrency)
            delete_matching(self.client, self.bull_pattern)

    async def _async_warm_up(self) -> None:
        aq = self.conn.async_queue(self.args.queue)
        await jqc_async_adds(aq, 100)
        await jqc_async_process(aq, 100, self.args.concurrency)
        await self.conn.aclose()

    def profiled(self, side: str, metric: str, jobs: int, first_run: bool, fn: Any) -> float:
        """Run ``fn`` (returns seconds); on the first run also keep INFO commandstats deltas."""
        before = commandstats(self.client) if first_run and self.args.commandstats else None
        seconds: float = fn()
        if before is not None:
            self.server.setdefault(side, {})[metric] = commandstats_delta(before, commandstats(self.client), jobs)
        return seconds

    def measure_adds(self, run: int, first_run: bool) -> None:
        """Single adds, interleaved: ``--add-rounds`` rounds, jqc and bullmq taking turns (who goes first
        alternating), N / rounds adds each, so both figures cover the same stretch of time."""
        a = self.args
        per = max(1, a.n // a.add_rounds)
        sides = ["jqc", "bullmq"] if self.bull is not None else ["jqc"]
        seconds = dict.fromkeys(sides, 0.0)
        cpu = dict.fromkeys(sides, 0.0)
        stats: dict[str, dict[str, tuple[int, int]]] = {side: {} for side in sides}
        keep = first_run and a.commandstats
        for r in range(a.add_rounds):
            for side in sides if (run + r) % 2 == 0 else sides[::-1]:
                before = commandstats(self.client) if keep else None
                if side == "jqc":
                    secs, used = jqc_timed_adds(self.q, per)
                else:
                    assert self.bull is not None
                    reply = self.bull.call("adds", n=per)
                    if "error" in reply:
                        raise RuntimeError(f"bullmq adds: {reply['error']}")
                    secs, used = float(reply["seconds"]), float(reply["cpu"])
                seconds[side] += secs
                cpu[side] += used
                if before is not None:
                    for name, (c, u) in commandstats_delta_raw(before, commandstats(self.client)).items():
                        c0, u0 = stats[side].get(name, (0, 0))
                        stats[side][name] = (c0 + c, u0 + u)
            jqc_clear(self.q)
            delete_matching(self.client, self.bull_pattern)
        total = per * a.add_rounds
        for side in sides:
            self.record(side, "add", total / seconds[side])
            self.record(side, "add_cpu_us", cpu[side] / total * 1e6)
            if keep:
                self.server.setdefault(side, {})["add"] = commandstats_delta({}, stats[side], total)

    # one measurement per side, each leaving the database clean
    def measure_jqc(self, metric: str, first_run: bool) -> None:
        a, q = self.args, self.q
        if metric == "bulk":
            s = self.profiled("jqc", metric, a.n, first_run, lambda: jqc_bulk(q, a.n, a.bulk_batch))
            self.record("jqc", metric, a.n / s)
        elif metric == "process":
            jqc_fill(q, a.n, a.bulk_batch)
            s = self.profiled("jqc", metric, a.n, first_run, lambda: jqc_process(q, a.n, a.concurrency))
            self.record("jqc", metric, a.n / s)
        elif metric == "bytes":
            jqc_fill(q, a.mem_n, a.bulk_batch)
            total, nkeys, by_class = memory_usage(self.client, self.jqc_pattern, self.jqc_base)
            self.record("jqc", metric, total / a.mem_n)
            self.breakdown["jqc"] = by_class
            self.keys_per_job["jqc"] = nkeys / a.mem_n
        jqc_clear(q)

    def measure_bull(self, metric: str, first_run: bool) -> None:
        a, bull = self.args, self.bull
        assert bull is not None
        if metric == "bulk":
            s = self.profiled("bullmq", metric, a.n, first_run, lambda: bull.seconds("bulk", n=a.n, batch=a.bulk_batch))
            self.record("bullmq", metric, a.n / s)
        elif metric == "process":
            bull.seconds("fill", n=a.n, batch=a.bulk_batch)
            s = self.profiled(
                "bullmq", metric, a.n, first_run, lambda: bull.seconds("process", n=a.n, concurrency=a.concurrency)
            )
            self.record("bullmq", metric, a.n / s)
        elif metric == "bytes":
            bull.seconds("fill", n=a.mem_n, batch=a.bulk_batch)
            total, nkeys, by_class = memory_usage(self.client, self.bull_pattern, self.bull_base)
            self.record("bullmq", metric, total / a.mem_n)
            self.breakdown["bullmq"] = by_class
            self.keys_per_job["bullmq"] = nkeys / a.mem_n
        delete_matching(self.client, self.bull_pattern)

    def measure_async(self) -> None:
        a = self.args

        async def go() -> tuple[float, float]:
            aq = self.conn.async_queue(a.queue)
            try:
                adds = await jqc_async_adds(aq, a.n)
                await aq.obliterate(force=True)
                await aq.add_bulk([(JOB_NAME, dict(PAYLOAD)) for _ in range(a.n)])
                proc = await jqc_async_process(aq, a.n, a.concurrency)
                await aq.obliterate(force=True)
                return adds, proc
            finally:
                await self.conn.aclose()

        adds, proc = asyncio.run(go())
        self.record("jqc-asyncio", "add", a.n / adds)
        self.record("jqc-asyncio", "process", a.n / proc)

    def measure_fakeredis(self) -> None:
        import jqc

        a = self.args
        conn = jqc.connect("memory://")
        q = conn.queue(a.queue)
        jqc_adds(q, 50)
        jqc_clear(q)
        for _ in range(a.runs):
            self.record("jqc-fakeredis", "add", a.fake_n / jqc_adds(q, a.fake_n))
            jqc_clear(q)
            self.record("jqc-fakeredis", "bulk", a.fake_n / jqc_bulk(q, a.fake_n, a.bulk_batch))
            jqc_clear(q)
            jqc_fill(q, a.fake_n, a.bulk_batch)
            self.record("jqc-fakeredis", "process", a.fake_n / jqc_process(q, a.fake_n, a.concurrency))
            jqc_clear(q)
        conn.close()

    def run(self) -> None:
        a = self.args
        self.clear_all()
        self.warm_up()
        for i in range(a.runs):
            first = i == 0
            self.measure_adds(i, first)
            for metric in ("bulk", "process", "bytes"):
                sides = ["jqc", "bullmq"] if i % 2 == 0 else ["bullmq", "jqc"]
                for side in sides:
                    if side == "jqc":
                        self.measure_jqc(metric, first)
                    elif self.bull is not None:
                        self.measure_bull(metric, first)
            if not a.no_async:
                self.measure_async()
            print(f"run {i + 1}/{a.runs} done", file=sys.stderr, flush=True)
        self.clear_all()
        if not a.no_fakeredis:
            self.measure_fakeredis()
            print("fakeredis row done", file=sys.stderr, flush=True)


# -- reporting ------------------------------------------------------------------------------------------------


def fmt(value: float, metric: str) -> str:
    return f"{value:,.1f}" if metric == "bytes" else f"{value:,.0f}"


def fmt_cell(s: dict[str, Any] | None, metric: str) -> str:
    if not s:
        return "—"
    if len(s["runs"]) == 1:
        return fmt(s["median"], metric)
    return f"{fmt(s['median'], metric)} ({fmt(s['min'], metric)}-{fmt(s['max'], metric)})"


def fmt_ratio(s: dict[str, Any] | None) -> str:
    if not s:
        return "—"
    if len(s["runs"]) == 1:
        return f"{s['median']:.2f}x"
    return f"{s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})"


def build_report(bench: Bench, meta: dict[str, Any]) -> tuple[dict[str, Any], str]:
    rows = {row: {m: summary(v) for m, v in metrics.items()} for row, metrics in bench.values.items()}
    ratios: dict[str, Any] = {}
    jv, bv = bench.values.get("jqc", {}), bench.values.get("bullmq", {})
    for metric in METRICS:
        if metric in jv and metric in bv:
            per_run = [j / b for j, b in zip(jv[metric], bv[metric], strict=True)]
            ratios[metric] = summary(per_run)
    targets: dict[str, Any] = {}
    for metric, goal in TARGETS.items():
        r = ratios.get(metric)
        targets[metric] = {
            "goal": f"jqc/bullmq >= {goal}",
            "median": r["median"] if r else None,
            "met": (r["median"] >= goal) if r else None,
        }
    jb = rows.get("jqc", {}).get("bytes")
    targets["bytes"] = {
        "goal": f"jqc <= {BYTES_TARGET:.0f} bytes per waiting job",
        "median": jb["median"] if jb else None,
        "met": (jb["median"] <= BYTES_TARGET) if jb else None,
    }
    report = {
        **meta,
        "results": rows,
        "ratios_jqc_over_bullmq": ratios,
        "targets": targets,
        "bytes_by_key_class_total": bench.breakdown,
        "keys_per_job": bench.keys_per_job,
        "server_commands_first_run": bench.server,
    }
    return report, markdown(report, bench)


def markdown(r: dict[str, Any], bench: Bench) -> str:
    p = r["params"]
    m = r["machine"]
    res = r["results"]
    out = [
        "# Engine benchmark: jqc vs bullmq (Python)",
        "",
        f"- date: {r['date']}",
        f"- command: `{r['command']}`",
        f"- machine: {m['nproc']} cores, {m['platform']}, Python {m['python']}, Redis {m['redis_version']} "
        f"at {m['url']}; jqc: redis-py {m['redis_py']} (hiredis: {m['hiredis']}); "
        + (
            f"bullmq {m['bullmq']['bullmq']}: redis-py {m['bullmq']['redis_py']} "
            f"(hiredis: {m['bullmq']['hiredis']}), Python {m['bullmq']['python']}"
            if isinstance(m.get("bullmq"), dict)
            else f"bullmq: {m.get('bullmq')}"
        ),
        f"- load average (1 min) at start / end: {m['loadavg_1min_start']} / {m['loadavg_1min_end']} "
        f"(above {m['nproc']} means other processes competed for the cores: absolute rates drop, compare ratios)",
        f"- N = {p['n']:,} jobs per throughput measurement, {p['mem_n']:,} waiting jobs for bytes, "
        f"{p['runs']} run(s), bulk lists of {p['bulk_batch']:,}, concurrency {p['concurrency']}; "
        "median (min-max); ratios are jqc/bullmq taken within each run",
        "",
    ]
    if r["machine"].get("bullmq_skipped"):
        out += [f"**bullmq not installed: row skipped** ({r['machine']['bullmq_skipped']})", ""]
    out += ["| measure | jqc | bullmq | jqc/bullmq | target | met |", "|---|---|---|---|---|---|"]
    for metric, label in METRICS.items():
        t = r["targets"][metric]
        goal = f"≥ {TARGETS[metric]:.0f}x" if metric in TARGETS else f"≤ {BYTES_TARGET:.0f} B"
        met = "—" if t["met"] is None else ("yes" if t["met"] else "**no**")
        out.append(
            f"| {label} | {fmt_cell(res.get('jqc', {}).get(metric), metric)} | "
            f"{fmt_cell(res.get('bullmq', {}).get(metric), metric)} | "
            f"{fmt_ratio(r['ratios_jqc_over_bullmq'].get(metric))} | {goal} | {met} |"
        )
    cpu = {side: res.get(side, {}).get("add_cpu_us") for side in ("jqc", "bullmq")}
    if all(cpu.values()):
        out += [
            "",
            f"Single adds ({p['add_rounds']} interleaved rounds): CPU time of the adding process per add, jqc "
            f"{cpu['jqc']['median']:.0f} µs, bullmq {cpu['bullmq']['median']:.0f} µs; the rest of each add's wall "
            "time is Redis and the wake-ups between the two processes, the same for both.",
        ]
    out += [
        "",
        "Other rows (no target):",
        "",
        "| row | " + " | ".join(METRICS[x] for x in ("add", "bulk", "process")) + " |",
        "|---|---|---|---|",
    ]
    notes = {
        "jqc-asyncio": f"jqc asyncio (N = {p['n']:,}; process: {p['concurrency']} tasks chaining claim/complete)",
        "jqc-fakeredis": f"jqc on embedded fakeredis (N = {p['fake_n']:,}, smaller: Lua runs in lupa in-process)",
    }
    for row, label in notes.items():
        if row in res:
            cells = [fmt_cell(res[row].get(x), x) for x in ("add", "bulk", "process")]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    if bench.breakdown:
        out += [
            "",
            f"Redis bytes per waiting job by key class ({p['mem_n']:,} jobs waiting, last run):",
            "",
            "| key class | " + " | ".join(bench.breakdown) + " |",
            "|---" * (len(bench.breakdown) + 1) + "|",
        ]
        classes = sorted(
            {c for b in bench.breakdown.values() for c in b},
            key=lambda c: -max(b.get(c, 0) for b in bench.breakdown.values()),
        )
        for cls in classes:
            cells = [f"{b[cls] / p['mem_n']:,.1f}" if cls in b else "" for b in bench.breakdown.values()]
            out.append(f"| {cls} | " + " | ".join(cells) + " |")
        out.append("| keys per job | " + " | ".join(f"{bench.keys_per_job[s]:.3f}" for s in bench.breakdown) + " |")
    if bench.server:
        out += [
            "",
            "Redis commands per job, first run (INFO commandstats deltas; server-wide, so any other client of "
            "the server is counted too; commands run inside scripts are counted):",
            "",
        ]
        for side, metrics in bench.server.items():
            for metric, d in metrics.items():
                calls = ", ".join(f"{k} {v:g}" for k, v in d["calls_per_job"].items() if v >= 0.01)
                total = sum(d["calls_per_job"].values())
                out.append(
                    f"- {side} {metric}: {total:.1f} calls/job, script time {d['script_usec_per_job']:.1f} µs/job "
                    f"({calls})"
                )
    out.append("")
    return "\n".join(out)


def resolve_bullmq_python(arg: str | None) -> str:
    if arg:
        return arg
    env = os.environ.get("BULLMQ_PYTHON")
    if env:
        return env
    return str(DEFAULT_BULLMQ_PYTHON)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL, help=f"Redis URL for jqc and bullmq (default {DEFAULT_URL})")
    ap.add_argument("--queue", default="bench", help="queue name used on both sides (default bench)")
    ap.add_argument("--quick", action="store_true", help="1 run, N = 5,000 (bytes still with 100,000 waiting jobs)")
    ap.add_argument("--runs", type=int, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--n", type=int, help="jobs per throughput measurement (default 20,000)")
    ap.add_argument("--mem-n", type=int, help="waiting jobs for the bytes measurement (default 100,000)")
    ap.add_argument("--fake-n", type=int, help="jobs per fakeredis measurement (default 2,000)")
    ap.add_argument("--bulk-batch", type=int, default=1000, help="jobs per add_bulk/addBulk call (default 1000)")
    ap.add_argument("--add-rounds", type=int, default=5, help="interleaved rounds of single adds (default 5)")
    ap.add_argument("--concurrency", type=int, default=10, help="bullmq worker concurrency = jobs jqc holds (10)")
    ap.add_argument(
        "--bullmq-python",
        help="interpreter with bullmq installed (else $BULLMQ_PYTHON, else .bench-venvs/bullmq/bin/python)",
    )
    ap.add_argument(
        "--commandstats",
        action="store_true",
        help="also report Redis commands per job (INFO commandstats deltas, first run); server-wide, so only "
        "meaningful on a server nobody else is using",
    )
    ap.add_argument("--no-async", action="store_true", help="skip the jqc asyncio row")
    ap.add_argument("--no-fakeredis", action="store_true", help="skip the jqc fakeredis row")
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"), help="where results are written")
    ap.add_argument("--bullmq-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.n = args.n or (5_000 if quick else 20_000)
    args.mem_n = args.mem_n or 100_000
    args.fake_n = args.fake_n or (500 if quick else 2_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bullmq_child:
        return child_main(args.url, args.queue)

    import redis
    from redis.utils import HIREDIS_AVAILABLE

    bench = Bench(args)
    try:
        server = bench.client.info("server")
    except Exception as exc:
        print(f"cannot reach Redis at {bench.conn.safe_url}: {exc}", file=sys.stderr)
        return 2
    machine = machine_info(server, bench.conn.safe_url, redis_py=redis.__version__, hiredis=HIREDIS_AVAILABLE)
    bull_python = resolve_bullmq_python(args.bullmq_python)
    child, hello = start_bullmq(bull_python, args.url, args.queue)
    if child is None:
        why = str(hello) if bull_python in str(hello) else f"{hello}; interpreter {bull_python}"
        print(f"bullmq not installed: row skipped ({why})", file=sys.stderr)
        machine["bullmq"] = "not installed"
        machine["bullmq_skipped"] = why
    else:
        machine["bullmq"] = hello
        machine["bullmq_python"] = bull_python
        if isinstance(hello, dict) and hello.get("bullmq") != BULLMQ_VERSION:
            print(f"note: bullmq {hello.get('bullmq')} found, the benchmark pins {BULLMQ_VERSION}", file=sys.stderr)
    bench.bull = child
    try:
        bench.run()
    finally:
        if child is not None:
            child.close()
        bench.clear_all()
        bench.conn.close()

    machine["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command_line(("BULLMQ_PYTHON",)),
        "machine": machine,
        "params": {
            k: getattr(args, k)
            for k in ("runs", "n", "add_rounds", "mem_n", "fake_n", "bulk_batch", "concurrency", "queue")
        },
        "payload": PAYLOAD,
        "job_name": JOB_NAME,
    }
    report, md = build_report(bench, meta)
    write_results(args.out_dir, "engine", report, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
