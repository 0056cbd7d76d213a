#!/usr/bin/env python3
"""Worker benchmark: `jqc worker` processes against bullmq Workers and huey consumers, same Redis, same run.

What it measures for each system (payload {"photoId": "123", "pipeline": "thumbnail"}):

1. no-op jobs processed per second with one and with two worker processes. N jobs are put in the
   queue parked (jqc and bullmq: the queue is paused; huey: they are pushed to a side list), the
   worker processes are started and left to settle, then the jobs are released at t0 (resume;
   huey: RENAME of the side list onto its queue). The time runs until the last of the N jobs is
   completed, read from Redis (jqc, bullmq: the newest score of the completed sorted set, the
   completion time in ms) or, for huey, which records nothing of a finished job, from its consumers
   (the time of the last SIGNAL_COMPLETE, counted in memory and reported at exit).
   - jqc: ``python -m jqc worker benchmarks.worker:HANDLERS --concurrency 10`` with an ``async def``
     handler and every guarantee on: fencing tokens, a 30 s lock renewed in batches, stall checks,
     heartbeats, the event stream, retention and metrics as by default;
   - bullmq: a ``Worker`` with concurrency 10 and an ``async def`` no-op processor, per process;
   - huey: a ``RedisHuey`` consumer with one worker thread per process (its default) and a plain
     no-op task; huey tracks nothing in flight (a killed consumer loses its job).
2. idle-worker latency, add to handler start, measured as benchmarks/peers.py does: one worker
   process, idle; a producer in another process adds one job at a time, taking time.monotonic() right
   before the add call, then waits ``--gap`` ms (uniform 0.5-1.5x, so the worker is idle again and
   nothing periodic lines up with the adds) before the next; the handler's first statement takes
   time.monotonic() in the worker process and returns it as the job's result (CLOCK_MONOTONIC is one
   clock for every process of the machine, and never stepped). Latency = start - sent, p50/p99
   (nearest rank) over ``--lat-n`` samples per run (after ``--lat-warm`` dropped ones), pooled over
   the runs; the add call's own duration is reported beside it. jqc's producer is this process;
   bullmq's and huey's run in their own interpreters (see below).

Ratios are jqc/bullmq and jqc/huey taken within each run; targets: one jqc worker process at least
4x bullmq and 1.5x huey; jqc latency p50 <= 1.0 ms and p99 <= 2.0 ms (over all samples of all runs;
the report also gives each run's). Every measurement is repeated ``--runs`` times; within a run the
systems are measured back to back, measure by measure, the first one rotating between runs, so the
load other processes put on a shared machine changes as little as possible between the figures a
ratio compares (the 1-minute load average after each measurement is reported too). Results go to
benchmarks/results/worker-latest.{json,md}.

bullmq and huey each run in their own venv (each pins its own redis-py), as subprocesses of this
file: ``--bullmq-python`` / $BULLMQ_PYTHON, else ./.bench-venvs/bullmq/bin/python, and
``--huey-python`` / $HUEY_PYTHON, else ./.bench-venvs/huey/bin/python (``make bench-worker`` creates
both). A system whose interpreter is missing is skipped and the report says so. Only the keys of the
benchmark queues are ever deleted (``<prefix>:{benchw}:*``, ``bull:benchw:*``, ``huey.*.benchw*``);
nothing is flushed.

    .venv/bin/python benchmarks/worker.py [--quick] [--url redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from _results import (
        command_line,
        delete_matching,
        json_line_call,
        machine_info,
        percentile,
        stop_child,
        summary,
        write_results,
    )
except ImportError:  # imported as benchmarks.worker by the jqc worker processes it starts
    from benchmarks._results import (
        command_line,
        delete_matching,
        json_line_call,
        machine_info,
        percentile,
        stop_child,
        summary,
        write_results,
    )

PAYLOAD = {"photoId": "123", "pipeline": "thumbnail"}
DEFAULT_URL = "redis://127.0.0.1:6379/13"
DEFAULT_QUEUE = "benchw"
ROOT = Path(__file__).resolve().parent.parent
BULLMQ_VERSION = "3.4.4"
HUEY_VERSION = "3.5.4"
SYSTEMS = ("jqc", "bullmq", "huey")
THROUGHPUT_TARGETS = {"bullmq": 4.0, "huey": 1.5}  # one jqc worker process at least this many times the peer's rate
LATENCY_TARGETS_MS = {"p50": 1.0, "p99": 2.0}


# -- handlers -------------------------------------------------------------------------------------------
# jqc's worker processes import this module (`python -m jqc worker benchmarks.worker:HANDLERS`), the
# bullmq and huey children run it as a script: none of them imports another system's package here.


async def noop(ctx: Any) -> None:
    """The no-op job of the throughput measurement."""
    return None


async def lat(ctx: Any) -> float:
    """The latency job: its result is when the handler started."""
    return time.monotonic()


HANDLERS = {"noop": noop, "lat": lat}


def _out() -> Any:
    """A child's answer channel (the original stdout); everything else it prints goes to stderr."""
    out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr
    return out


def _answer(out: Any, value: Any) -> None:
    out.write(json.dumps(value) + "\n")
    out.flush()


async def _lines(handle: Callable[[dict[str, Any]], Any], out: Any) -> None:
    """Serve JSON commands from stdin, one per line, one JSON answer each."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        cmd = json.loads(line)
        try:
            reply = handle(cmd)
            if asyncio.iscoroutine(reply):
                reply = await reply
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        _answer(out, reply)


def _spaced(rng: random.Random, gap_ms: float) -> float:
    """A pause of about ``gap_ms`` (uniform in [0.5, 1.5] x), so nothing periodic lines up with the adds."""
    return rng.uniform(0.5, 1.5) * gap_ms / 1000


# -- bullmq (child interpreter) -------------------------------------------------------------------------


def bullmq_worker_main(url: str, queue_name: str, concurrency: int) -> int:
    from bullmq import Worker

    out = _out()

    async def processor(job: Any, token: Any) -> Any:
        if job.name == "lat":
            return time.monotonic()
        return None

    async def main() -> None:
        worker = Worker(queue_name, processor, {"connection": url, "concurrency": concurrency})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        _answer(out, {"ready": True, "pid": os.getpid()})
        await stop.wait()
        await worker.close()

    asyncio.run(main())
    return 0


def bullmq_ctl_main(url: str, queue_name: str) -> int:
    out = _out()
    try:
        from bullmq import Job, Queue
    except ImportError as exc:
        _answer(out, {"error": f"bullmq not importable: {exc}"})
        return 1

    async def main() -> None:
        queue = Queue(queue_name, {"connection": url})

        async def handle(cmd: dict[str, Any]) -> Any:
            op = cmd["op"]
            if op == "hello":
                from importlib.metadata import version

                import redis
                from redis.utils import HIREDIS_AVAILABLE

                return {
                    "bullmq": version("bullmq"),
                    "redis_py": redis.__version__,
                    "hiredis": HIREDIS_AVAILABLE,
                    "python": platform.python_version(),
                }
            if op == "fill":
                await queue.pause()
                n, batch = cmd["n"], cmd["batch"]
                for start in range(0, n, batch):
                    await queue.addBulk([{"name": "noop", "data": dict(PAYLOAD)} for _ in range(min(batch, n - start))])
                return {"ok": True}
            if op == "release":
                t0 = time.time()
                await queue.resume()
                return {"t0": t0}
            if op == "latency":
                rng = random.Random(cmd["seed"])
                added: list[tuple[str, float, float]] = []
                for _ in range(cmd["n"]):
                    t = time.monotonic()
                    job = await queue.add("lat", dict(PAYLOAD))
                    added.append((job.id, t, time.monotonic() - t))
                    await asyncio.sleep(_spaced(rng, cmd["gap_ms"]))
                await asyncio.sleep(0.2)
                lats, calls = [], []
                for job_id, t, call in added:
                    job = await Job.fromId(queue, job_id)
                    if job is None or job.returnvalue is None:
                        return {"error": f"latency job {job_id} did not finish"}
                    lats.append(float(job.returnvalue) - t)
                    calls.append(call)
                return {"lat": lats, "add_call": calls}
            return {"error": f"unknown op {op!r}"}

        try:
            await _lines(handle, out)
        finally:
            await queue.close()

    asyncio.run(main())
    return 0


# -- huey (child interpreter) ---------------------------------------------------------------------------


def _huey(url: str, name: str) -> tuple[Any, Any, Any]:
    from huey import RedisHuey

    huey = RedisHuey(name, url=url)

    def noop_task(data: Any) -> None:
        return None

    def lat_task(data: Any) -> float:
        return time.monotonic()

    noop_task.__name__, lat_task.__name__ = "noop", "lat"
    return huey, huey.task()(noop_task), huey.task()(lat_task)


def _huey_side_list(queue_name: str) -> str:
    return f"{queue_name}fill"


def huey_worker_main(url: str, queue_name: str, threads: int) -> int:
    from huey.consumer import Consumer
    from huey.signals import SIGNAL_COMPLETE

    out = _out()
    huey, _, _ = _huey(url, queue_name)
    done = {"count": 0, "last": 0.0}

    @huey.signal(SIGNAL_COMPLETE)
    def completed(signal_name: str, task: Any, *rest: Any) -> None:
        done["count"] += 1
        done["last"] = time.time()

    consumer = Consumer(huey, workers=threads, worker_type="thread")  # SIGINT: finish the task in hand, stop
    _answer(out, {"ready": True, "pid": os.getpid()})
    consumer.run()
    _answer(out, done)
    return 0


def huey_ctl_main(url: str, queue_name: str) -> int:
    out = _out()
    try:
        huey, noop_task, lat_task = _huey(url, queue_name)
    except ImportError as exc:
        _answer(out, {"error": f"huey not importable: {exc}"})
        return 1
    side, _, _ = _huey(url, _huey_side_list(queue_name))
    conn = huey.storage.conn

    def handle(cmd: dict[str, Any]) -> Any:
        op = cmd["op"]
        if op == "hello":
            from importlib.metadata import version

            import redis
            from redis.utils import HIREDIS_AVAILABLE

            return {
                "huey": version("huey"),
                "redis_py": redis.__version__,
                "hiredis": HIREDIS_AVAILABLE,
                "python": platform.python_version(),
            }
        if op == "fill":
            # Serialized exactly as enqueueing does, pushed to a side list the consumers do not read.
            n, batch = cmd["n"], cmd["batch"]
            for start in range(0, n, batch):
                pipe = conn.pipeline(transaction=False)
                for _ in range(min(batch, n - start)):
                    pipe.lpush(side.storage.queue_key, huey.serialize_task(noop_task.s(dict(PAYLOAD))))
                pipe.execute()
            return {"ok": True}
        if op == "release":
            t0 = time.time()
            conn.rename(side.storage.queue_key, huey.storage.queue_key)  # wakes the blocked BRPOPs at once
            return {"t0": t0}
        if op == "pending":
            return {"n": huey.storage.queue_size()}
        if op == "latency":
            rng = random.Random(cmd["seed"])
            added = []
            for _ in range(cmd["n"]):
                t = time.monotonic()
                result = lat_task(dict(PAYLOAD))
                added.append((result, t, time.monotonic() - t))
                time.sleep(_spaced(rng, cmd["gap_ms"]))
            lats, calls = [], []
            for handle_, t, call in added:
                started = handle_.get(blocking=True, timeout=10)
                if started is None:
                    return {"error": "a latency job did not finish"}
                lats.append(float(started) - t)
                calls.append(call)
            return {"lat": lats, "add_call": calls}
        return {"error": f"unknown op {op!r}"}

    asyncio.run(_lines(handle, out))
    return 0


# -- the parent: processes and measurements -------------------------------------------------------------


class Child:
    """A control subprocess speaking one JSON line each way."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT))

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        reply = json_line_call(self.proc, op, params)
        if reply is None:
            return {"error": f"subprocess exited (code {self.proc.wait()})"}
        return reply

    def must(self, op: str, **params: Any) -> dict[str, Any]:
        reply = self.call(op, **params)
        if "error" in reply:
            raise RuntimeError(f"{op}: {reply['error']}")
        return reply

    def close(self) -> None:
        stop_child(self.proc)


class WorkerProcess:
    """One worker process of any system; the first line it prints says it is up."""

    def __init__(self, argv: list[str], *, announces: bool) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(ROOT)
        )
        self.announces = announces
        self.output: str | None = None

    def wait_ready(self) -> None:
        if self.announces:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker process {self.proc.args!r} exited (code {self.proc.wait()})")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> str:
        """Signal it, wait for it to exit, and return what it printed after the first line."""
        if self.output is not None:
            return self.output
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rest, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        self.output = rest or ""
        return self.output


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import jqc

        self.args = args
        self.conn = jqc.connect(args.url)
        self.q = self.conn.queue(args.queue)
        self.client = self.conn.sync_client()
        self.patterns = {
            "jqc": self.q.ops.keys.scan_pattern,
            "bullmq": f"bull:{args.queue}:*",
            "huey": f"huey.*.{args.queue}*",
        }
        self.ctl: dict[str, Child] = {}
        self.python: dict[str, str] = {}
        self.rates: dict[str, dict[str, list[float]]] = {s: {"1": [], "2": []} for s in SYSTEMS}
        self.latency: dict[str, list[list[float]]] = {s: [] for s in SYSTEMS}
        self.add_call: dict[str, list[float]] = {s: [] for s in SYSTEMS}  # ms, the producer's add call
        self.load: list[float] = []  # 1-minute load average after each measurement

    # -- per-system pieces ------------------------------------------------------------------------------

    def clear(self, system: str) -> None:
        if system == "jqc":
            self.q.obliterate(force=True)
        delete_matching(self.client, self.patterns[system])

    def worker_argv(self, system: str) -> list[str]:
        a = self.args
        if system == "jqc":
            head = [sys.executable, "-m", "jqc", "worker", "benchmarks.worker:HANDLERS"]
            return [*head, "--queue", a.queue, "--concurrency", str(a.concurrency), "--url", a.url]
        head = [self.python[system], str(Path(__file__).resolve()), "--url", a.url, "--queue", a.queue]
        if system == "bullmq":
            return [*head, "--bullmq-worker", "--concurrency", str(a.concurrency)]
        return [*head, "--huey-worker", "--threads", str(a.huey_threads)]

    def start_workers(self, system: str, count: int) -> list[WorkerProcess]:
        workers = [WorkerProcess(self.worker_argv(system), announces=system != "jqc") for _ in range(count)]
        for w in workers:
            w.wait_ready()
        if system == "jqc":
            deadline = time.monotonic() + 30
            while len(self.q.workers()) < count:
                if time.monotonic() > deadline or any(w.proc.poll() is not None for w in workers):
                    raise RuntimeError("jqc worker processes did not register")
                time.sleep(0.02)
        time.sleep(self.args.settle)
        return workers

    def stop_workers(self, system: str, workers: list[WorkerProcess]) -> list[str]:
        sig = signal.SIGINT if system == "huey" else signal.SIGTERM  # huey: SIGINT is its graceful stop
        for w in workers:
            if w.output is None and w.proc.poll() is None:
                w.proc.send_signal(sig)
        return [w.stop(sig) for w in workers]

    def fill(self, system: str, n: int) -> None:
        if system == "jqc":
            self.q.pause()
            for start in range(0, n, self.args.bulk_batch):
                self.q.add_bulk([("noop", dict(PAYLOAD)) for _ in range(min(self.args.bulk_batch, n - start))])
        else:
            self.ctl[system].must("fill", n=n, batch=self.args.bulk_batch)

    def release(self, system: str) -> float:
        if system == "jqc":
            t0 = time.time()
            self.q.resume()
            return t0
        return float(self.ctl[system].must("release")["t0"])

    def wait_completed(self, system: str, n: int, workers: list[WorkerProcess]) -> tuple[float, list[str]]:
        """When the n-th job completed (epoch seconds), and what the stopped workers printed."""
        deadline = time.monotonic() + max(120.0, n / 50)
        if system == "huey":
            while int(self.ctl["huey"].must("pending")["n"]) > 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("huey: jobs still waiting at the deadline")
                time.sleep(0.02)
            time.sleep(0.2)  # the last jobs popped are run by now (no-op tasks)
            outputs = self.stop_workers(system, workers)
            reports = [json.loads(text.strip().splitlines()[-1]) for text in outputs]
            done = sum(int(r["count"]) for r in reports)
            if done != n:
                raise RuntimeError(f"huey completed {done} jobs, expected {n}")
            return max(float(r["last"]) for r in reports), outputs
        key = self.q.ops.keys.base + "completed" if system == "jqc" else f"bull:{self.args.queue}:completed"
        while self.client.zcard(key) < n:
            if time.monotonic() > deadline or all(w.proc.poll() is not None for w in workers):
                raise RuntimeError(f"{system}: {self.client.zcard(key)} of {n} jobs completed at the deadline")
            time.sleep(0.02)
        (_, score) = self.client.zrange(key, -1, -1, withscores=True)[0]
        return float(score) / 1000, self.stop_workers(system, workers)

    def throughput(self, system: str, processes: int) -> float:
        n = self.args.n
        self.clear(system)
        self.fill(system, n)
        workers = self.start_workers(system, processes)
        try:
            t0 = self.release(system)
            end, _ = self.wait_completed(system, n, workers)
        finally:
            self.stop_workers(system, workers)
        self.clear(system)
        return n / (end - t0)

    def latencies(self, system: str) -> list[float]:
        a = self.args
        self.clear(system)
        workers = self.start_workers(system, 1)
        seed = a.seed + len(self.latency[system])
        total = a.lat_warm + a.lat_n
        try:
            if system == "jqc":
                lats, calls = self.jqc_latency(total, seed)
            else:
                reply = self.ctl[system].must("latency", n=total, gap_ms=a.gap, seed=seed)
                lats, calls = [float(x) for x in reply["lat"]], [float(x) for x in reply["add_call"]]
        finally:
            self.stop_workers(system, workers)
        self.clear(system)
        self.add_call[system].extend(x * 1000 for x in calls[a.lat_warm :])
        return [x * 1000 for x in lats[a.lat_warm :]]

    def jqc_latency(self, n: int, seed: int) -> tuple[list[float], list[float]]:
        """(handler start - sent, add call duration) per job, in seconds."""
        rng = random.Random(seed)
        added = []
        add = self.q.add
        for _ in range(n):
            t = time.monotonic()
            job = add("lat", dict(PAYLOAD))
            added.append((job.id, t, time.monotonic() - t))
            time.sleep(_spaced(rng, self.args.gap))
        time.sleep(0.2)
        out, calls = [], []
        for job_id, t, call in added:
            job = self.q.get_job(job_id)
            if job is None or job.result is None:
                raise RuntimeError(f"jqc latency job {job_id} did not finish")
            out.append(float(job.result) - t)
            calls.append(call)
        return out, calls

    # -- orchestration ----------------------------------------------------------------------------------

    def available(self) -> list[str]:
        return ["jqc", *[s for s in ("bullmq", "huey") if s in self.ctl]]

    def run(self) -> None:
        """Each run measures the systems back to back, measure by measure (the first system rotating),
        so that the load other processes put on the machine changes as little as possible between
        the figures a ratio compares."""
        a = self.args
        systems = self.available()
        for system in systems:
            self.clear(system)
        for i in range(a.runs):
            order = systems[i % len(systems) :] + systems[: i % len(systems)]
            for processes in (1, 2):
                for system in order:
                    rate = self.throughput(system, processes)
                    self.rates[system][str(processes)].append(rate)
                    self.load.append(os.getloadavg()[0])
                    print(f"run {i + 1}: {system} {processes} process(es): {rate:,.0f} jobs/s", file=sys.stderr)
            for system in order:
                lats = self.latencies(system)
                self.latency[system].append(lats)
                self.load.append(os.getloadavg()[0])
                print(
                    f"run {i + 1}: {system} idle latency p50 {percentile(lats, 50):.3f} ms, "
                    f"p99 {percentile(lats, 99):.3f} ms",
                    file=sys.stderr,
                    flush=True,
                )


# -- reporting ------------------------------------------------------------------------------------------


def build_report(bench: Bench, meta: dict[str, Any]) -> dict[str, Any]:
    rates = {s: {p: summary(v) for p, v in per.items()} for s, per in bench.rates.items()}
    ratios: dict[str, Any] = {}
    for peer in ("bullmq", "huey"):
        for p in ("1", "2"):
            jv, pv = bench.rates["jqc"][p], bench.rates[peer][p]
            if jv and pv:
                ratios.setdefault(peer, {})[p] = summary([j / b for j, b in zip(jv, pv, strict=True)])
    latency: dict[str, Any] = {}
    for s, runs in bench.latency.items():
        pooled = [x for run in runs for x in run]
        if pooled:
            latency[s] = {
                "samples": len(pooled),
                "p50_ms": percentile(pooled, 50),
                "p99_ms": percentile(pooled, 99),
                "max_ms": max(pooled),
                "add_call_p50_ms": percentile(bench.add_call[s], 50) if bench.add_call[s] else None,
                "add_call_p99_ms": percentile(bench.add_call[s], 99) if bench.add_call[s] else None,
                "per_run": [{"p50_ms": percentile(r, 50), "p99_ms": percentile(r, 99)} for r in runs],
            }
    targets: dict[str, Any] = {}
    for peer, goal in THROUGHPUT_TARGETS.items():
        r = ratios.get(peer, {}).get("1")
        targets[f"rate_vs_{peer}"] = {
            "goal": f"one jqc worker process >= {goal}x {peer}",
            "median": r["median"] if r else None,
            "met": (r["median"] >= goal) if r else None,
        }
    for pct, goal in LATENCY_TARGETS_MS.items():
        value = latency.get("jqc", {}).get(f"{pct}_ms")
        targets[f"latency_{pct}"] = {
            "goal": f"jqc idle latency {pct} <= {goal} ms",
            "value": value,
            "met": (value <= goal) if value is not None else None,
        }
    load = (
        {"min": min(bench.load), "median": statistics.median(bench.load), "max": max(bench.load)} if bench.load else {}
    )
    return {
        **meta,
        "throughput": rates,
        "ratios": ratios,
        "latency": latency,
        "targets": targets,
        "loadavg_1min_during": load,
    }


def _rate(s: dict[str, Any] | None) -> str:
    if not s:
        return "—"
    if len(s["runs"]) == 1:
        return f"{s['median']:,.0f}"
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def _ratio(s: dict[str, Any] | None) -> str:
    if not s:
        return "—"
    if len(s["runs"]) == 1:
        return f"{s['median']:.2f}x"
    return f"{s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})"


def _load(load: dict[str, float]) -> str:
    return f"{load['min']:.2f}-{load['max']:.2f} (median {load['median']:.2f})" if load else "—"


def _met(t: dict[str, Any]) -> str:
    return "—" if t["met"] is None else ("yes" if t["met"] else "**no**")


def markdown(r: dict[str, Any]) -> str:
    m, p = r["machine"], r["params"]
    versions = [f"jqc {m['jqc']} (redis-py {m['redis_py']}, hiredis: {m['hiredis']})"]
    for peer in ("bullmq", "huey"):
        info = m.get(peer)
        if isinstance(info, dict):
            versions.append(f"{peer} {info[peer]} (redis-py {info['redis_py']}, hiredis: {info['hiredis']})")
        else:
            versions.append(f"{peer}: skipped ({m.get(peer + '_skipped', info)})")
    out = [
        "# Worker benchmark: jqc worker vs bullmq Worker vs huey consumer",
        "",
        f"- date: {r['date']}",
        f"- command: `{r['command']}`",
        f"- machine: {m['nproc']} cores, {m['platform']}, Python {m['python']}, Redis {m['redis_version']} at "
        f"{m['url']}; " + "; ".join(versions),
        f"- load average (1 min) at start / end: {m['loadavg_1min_start']} / {m['loadavg_1min_end']}, after each "
        f"measurement {_load(r['loadavg_1min_during'])} (above {m['nproc']} means other processes competed for "
        "the cores: absolute rates drop, compare ratios)",
        f"- N = {p['n']:,} no-op jobs per throughput measurement, {p['runs']} run(s), concurrency {p['concurrency']} "
        f"per jqc and bullmq process, {p['huey_threads']} thread(s) per huey consumer; latency: {p['lat_n']:,} "
        f"samples per run after {p['lat_warm']} warm-up ones, about {p['gap']:g} ms apart (time.monotonic() before "
        "the add call to the handler's first statement); median (min-max); "
        "ratios are taken within each run",
        "",
        "| measure | jqc | bullmq | huey | jqc/bullmq | jqc/huey | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    t, tp, ratios, lat = r["targets"], r["throughput"], r["ratios"], r["latency"]
    for procs, label in (("1", "no-op jobs/s, 1 worker process"), ("2", "no-op jobs/s, 2 worker processes")):
        cells = [_rate(tp[s][procs]) for s in SYSTEMS]
        rb, rh = ratios.get("bullmq", {}).get(procs), ratios.get("huey", {}).get(procs)
        if procs == "1":
            goal = f"≥ {THROUGHPUT_TARGETS['bullmq']:g}x bullmq, ≥ {THROUGHPUT_TARGETS['huey']:g}x huey"
            met = f"{_met(t['rate_vs_bullmq'])} / {_met(t['rate_vs_huey'])}"
        else:
            goal, met = "—", "—"
        out.append(f"| {label} | " + " | ".join(cells) + f" | {_ratio(rb)} | {_ratio(rh)} | {goal} | {met} |")
    for pct in ("p50", "p99"):
        cells = [f"{lat[s][pct + '_ms']:.3f}" if s in lat else "—" for s in SYSTEMS]
        goal = f"jqc ≤ {LATENCY_TARGETS_MS[pct]:g} ms"
        out.append(
            f"| idle latency {pct}, ms | " + " | ".join(cells) + f" | | | {goal} | {_met(t['latency_' + pct])} |"
        )
    out += ["", "Latency per run (p50 / p99 ms):", ""]
    for s in SYSTEMS:
        if s in lat:
            runs = ", ".join(f"{x['p50_ms']:.3f} / {x['p99_ms']:.3f}" for x in lat[s]["per_run"])
            out.append(f"- {s}: {runs} (max {lat[s]['max_ms']:.3f} ms over {lat[s]['samples']:,} samples)")
    calls = [s for s in SYSTEMS if s in lat and lat[s].get("add_call_p50_ms") is not None]
    if calls:
        out += ["", "Of which the producer's add call itself (p50 / p99 ms; a job cannot start before its add is in):"]
        out += [""] + [f"- {s}: {lat[s]['add_call_p50_ms']:.3f} / {lat[s]['add_call_p99_ms']:.3f}" for s in calls]
    out.append("")
    return "\n".join(out)


# -- entry ----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL, help=f"Redis URL for every system (default {DEFAULT_URL})")
    ap.add_argument("--queue", default=DEFAULT_QUEUE, help=f"queue name on every side (default {DEFAULT_QUEUE})")
    ap.add_argument("--quick", action="store_true", help="1 run, N = 5,000, 300 latency samples")
    ap.add_argument("--runs", type=int, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--n", type=int, help="jobs per throughput measurement (default 20,000)")
    ap.add_argument("--lat-n", type=int, help="latency samples per run and system (default 1,000)")
    ap.add_argument("--lat-warm", type=int, default=20, help="latency samples discarded first (default 20)")
    ap.add_argument("--gap", type=float, default=20.0, help="mean ms between latency adds (default 20, as peers.py)")
    ap.add_argument("--concurrency", type=int, default=10, help="jobs in flight per jqc / bullmq process (10)")
    ap.add_argument("--huey-threads", type=int, default=1, help="worker threads per huey consumer (default 1)")
    ap.add_argument("--bulk-batch", type=int, default=1000, help="jobs per bulk add when filling (default 1000)")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds worker processes idle before a measurement")
    ap.add_argument("--seed", type=int, default=1, help="seed of the latency gaps")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="which peers to run besides jqc (default all)")
    ap.add_argument("--bullmq-python", help="interpreter with bullmq (else $BULLMQ_PYTHON, else .bench-venvs/bullmq)")
    ap.add_argument("--huey-python", help="interpreter with huey (else $HUEY_PYTHON, else .bench-venvs/huey)")
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"), help="where results are written")
    for flag in ("--bullmq-worker", "--bullmq-ctl", "--huey-worker", "--huey-ctl"):
        ap.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.n = args.n or (5_000 if args.quick else 20_000)
    args.lat_n = args.lat_n or (300 if args.quick else 1_000)
    return args


def interpreter(arg: str | None, env: str, venv: str) -> str:
    return arg or os.environ.get(env) or str(ROOT / venv / "bin" / "python")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bullmq_worker:
        return bullmq_worker_main(args.url, args.queue, args.concurrency)
    if args.bullmq_ctl:
        return bullmq_ctl_main(args.url, args.queue)
    if args.huey_worker:
        return huey_worker_main(args.url, args.queue, args.threads)
    if args.huey_ctl:
        return huey_ctl_main(args.url, args.queue)

    from importlib.metadata import version

    import redis
    from redis.utils import HIREDIS_AVAILABLE

    bench = Bench(args)
    try:
        server = bench.client.info("server")
    except Exception as exc:
        print(f"cannot reach Redis at {bench.conn.safe_url}: {exc}", file=sys.stderr)
        return 2
    machine = machine_info(
        server,
        bench.conn.safe_url,
        jqc=version("jqc"),
        redis_py=redis.__version__,
        hiredis=HIREDIS_AVAILABLE,
    )
    wanted = {s.strip() for s in args.systems.split(",")}
    peers = {
        "bullmq": (interpreter(args.bullmq_python, "BULLMQ_PYTHON", ".bench-venvs/bullmq"), BULLMQ_VERSION),
        "huey": (interpreter(args.huey_python, "HUEY_PYTHON", ".bench-venvs/huey"), HUEY_VERSION),
    }
    script = str(Path(__file__).resolve())
    for peer, (python, pinned) in peers.items():
        if peer not in wanted:
            machine[peer], machine[f"{peer}_skipped"] = "not run", "left out with --systems"
            continue
        if not Path(python).exists():
            why = f"no interpreter at {python}"
        else:
            child = Child([python, script, f"--{peer}-ctl", "--url", args.url, "--queue", args.queue])
            hello = child.call("hello")
            if "error" not in hello:
                bench.ctl[peer], bench.python[peer], machine[peer] = child, python, hello
                machine[f"{peer}_python"] = python
                if hello.get(peer) != pinned:
                    print(f"note: {peer} {hello.get(peer)} found, the benchmark pins {pinned}", file=sys.stderr)
                continue
            child.close()
            why = f"{hello['error']}; interpreter {python}"
        print(f"{peer} not installed: its column is skipped ({why})", file=sys.stderr)
        machine[peer], machine[f"{peer}_skipped"] = "not installed", why
    try:
        bench.run()
    finally:
        for child in bench.ctl.values():
            child.close()
        for system in bench.available():
            bench.clear(system)
        bench.conn.close()
    machine["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command_line(("BULLMQ_PYTHON", "HUEY_PYTHON")),
        "machine": machine,
        "params": {
            k: getattr(args, k)
            for k in ("runs", "n", "lat_n", "lat_warm", "gap", "concurrency", "huey_threads", "bulk_batch", "queue")
        },
        "payload": PAYLOAD,
    }
    report = build_report(bench, meta)
    md = markdown(report)
    write_results(args.out_dir, "worker", report, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
