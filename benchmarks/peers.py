#!/usr/bin/env python3
"""Peers benchmark: jqc side by side with bullmq, huey, dramatiq, arq, saq, celery and rq, same Redis, same run.

Every system runs the same workload (no-op jobs, payload {"photoId": "123", "pipeline": "thumbnail"}):

1. adds/s one at a time (each add awaited before the next, a fresh payload dict per job, after a
   warm-up that opened the connection and loaded any scripts), measured interleaved: ``--add-rounds``
   rounds in which every system adds N / rounds jobs in turn, so that every system's figure covers
   the same stretch of time (the load other processes put on the machine, the CPUs the scheduler
   picked) and the ratio compares like with like; the adding process's CPU time is recorded too;
   and adds in bulk with the system's own bulk API where it has one (else what the report names: a
   loop, or asyncio.gather of single adds), lists of ``--bulk-batch`` jobs;
2. no-op jobs processed per second with one and with two worker processes (settings per system in
   the report). N jobs are added first, then the worker processes are started; every handler appends
   ``<seq> <time.monotonic()>`` to a log file as it starts (O_APPEND), and the rate is (N - 1) / (time
   of the last start - time of the first), so process start-up is not counted;
3. latency, add -> handler start, with one idle worker process: the producer (the system's adapter
   process) adds one job at a time (the payload plus a ``seq``), takes time.monotonic() right before
   each add call, then waits ``--gap`` ms (uniform 0.5-1.5x) so the worker is idle again; the handler's
   first statement takes time.monotonic() in the worker process (CLOCK_MONOTONIC: one clock for every
   process of the machine). The first ``--lat-warm`` samples are dropped; p50 / p99 (nearest rank) over
   ``--lat-n`` samples per run, pooled over runs. The add call's own duration is reported beside it
   (a job cannot start before its add has reached Redis). benchmarks/worker.py measures it the same way;
4. Redis bytes per waiting job: ``--mem-n`` jobs added, then the sum of ``MEMORY USAGE key SAMPLES 0``
   over every key of the benchmark db (SCAN), divided by the job count (not INFO: the server is shared);
5. Redis commands per processed job: the one-process run repeated on a private ``redis-server`` this
   script starts on a free loopback port (INFO commandstats after CONFIG RESETSTAT, so nobody else's
   commands are counted; commands inside scripts included; worker start-up included), and round trips
   per processed job (counted in the worker processes of the main run by wrapping redis-py's
   ``send_packed_command``: a pipeline or a script call is one; worker start-up included);
6. crash recovery, for each system that claims at-least-once delivery: ``--crash-n`` jobs (with a
   ``seq``) added, one worker process, SIGKILL of its process group once a third have started, a fresh
   worker started, and after up to ``--crash-wait`` s: jobs never started (lost) and jobs started twice
   or more. Recovery knobs are shortened for this row only (the report says which).

Each system runs in its own interpreter (``.bench-venvs/<peer>/bin/python``, ``make bench``
creates them; jqc runs under this interpreter) through a small adapter in benchmarks/peers/. The db of
``--url`` (default 3) must be the benchmark's own: it is FLUSHDB-ed between measurements. Repeated
``--runs`` times; within a run the systems are measured back to back, measure by measure (the first
one rotating between runs), so the figures a ratio compares are taken close together in time; median
(min-max) and the ratio to bullmq taken within each run.
Results: benchmarks/results/peers-latest.{json,md}.

    .venv/bin/python benchmarks/peers.py [--quick] [--url redis://127.0.0.1:6379/3] [--peers jqc,bullmq]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import command_line, json_line_call, machine_info, percentile, stop_child, summary, write_results

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = Path(__file__).resolve().parent / "peers"
DEFAULT_URL = "redis://127.0.0.1:6379/3"
SYSTEMS = ("jqc", "bullmq", "huey", "dramatiq", "arq", "saq", "celery", "rq")
# Not a queue: LPUSH / BLPOP on a bare list (benchmarks/peers/floor_adapter.py), measured for single
# adds and latency only, as the floor the machine puts under every system.
FLOOR = "floor"
PINS = {
    "bullmq": "bullmq==3.4.4",
    "huey": "huey==3.5.4",
    "dramatiq": "dramatiq[redis]==2.2.1",
    "arq": "arq==0.28.0 (redis<6)",
    "saq": "saq[redis]==0.26.4 (+ typing_extensions, undeclared)",
    "celery": "celery[redis]==5.7.0",
    "rq": "rq==3.0.0",
    FLOOR: "redis-py of this venv",
}
CONCURRENCY = {"jqc": 10, "bullmq": 10, "huey": 1, "dramatiq": 8, "arq": 10, "saq": 10, "celery": 1, "rq": 1, FLOOR: 1}
# What each one promises when a worker dies mid-job (from its docs; the crash row runs where it is claimed).
AT_LEAST_ONCE = {
    "jqc": "yes: lock + stall check",
    "bullmq": "yes: stalled jobs are re-run",
    "huey": "no: nothing tracks in-flight tasks",
    "dramatiq": "yes: per-worker ack sets + heartbeats",
    "arq": "yes: pessimistic execution",
    "saq": "no claim: stuck jobs are swept, retried only if retries remain",
    "celery": "only with acks_late (set here)",
    "rq": "no: abandoned jobs go to FailedJobRegistry",
    FLOOR: "no: not a queue (reference row)",
}
QUEUE = "pb"
WARM_ADDS = 200  # single adds each adapter makes once before anything is timed
METRICS = {
    "add": ("adds/s one at a time", "higher"),
    "bulk": ("adds/s bulk", "higher"),
    "proc1": ("processed/s, 1 process", "higher"),
    "proc2": ("processed/s, 2 processes", "higher"),
    "p50": ("latency p50 ms", "lower"),
    "p99": ("latency p99 ms", "lower"),
    "bytes": ("Redis bytes per waiting job", "lower"),
    "cmds": ("Redis commands per job", "lower"),
    "rtt": ("round trips per job", "lower"),
}


# -- children ---------------------------------------------------------------------------------------


class Child:
    """A system's adapter in ``serve`` mode: one JSON command per line on stdin, one answer per line."""

    def __init__(self, python: str, adapter: Path, url: str, env: dict[str, str], errlog: Path) -> None:
        self.errlog = errlog
        self.proc = subprocess.Popen(
            [python, str(adapter), "serve", url, QUEUE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog.open("a"),
            text=True,
            cwd=str(ROOT),
            env=env,
        )

    def call(self, op: str, **params: Any) -> dict[str, Any]:
        reply = json_line_call(self.proc, op, params)
        if reply is None:
            tail = self.errlog.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            return {"error": f"adapter exited (code {self.proc.wait()}): {tail[0]}"}
        return reply

    def value(self, op: str, key: str = "seconds", **params: Any) -> Any:
        reply = self.call(op, **params)
        if "error" in reply:
            raise RuntimeError(f"{op}: {reply['error']}")
        return reply[key]

    def close(self) -> None:
        stop_child(self.proc)


class System:
    def __init__(self, name: str, python: str, url: str, workdir: Path) -> None:
        self.name = name
        self.python = python
        self.url = url
        self.adapter = ADAPTERS / f"{name}_adapter.py"
        self.workdir = workdir
        self.errlog = workdir / f"{name}.stderr"
        self.log = workdir / f"{name}.log"
        self.child: Child | None = None
        self.hello: dict[str, Any] = {}

    def env(self, crash: bool = False) -> dict[str, str]:
        env = dict(os.environ, PEERS_BENCH_LOG=str(self.log), PYTHONPATH=str(ADAPTERS))
        if crash:
            env["PEERS_BENCH_CRASH"] = "1"
        return env

    def start(self, crash: bool = False) -> str | None:
        """Start the serve child; on failure return why."""
        if not Path(self.python).exists():
            return f"no interpreter at {self.python} (make bench-peers installs it)"
        self.child = Child(self.python, self.adapter, self.url, self.env(crash), self.errlog)
        hello = self.child.call("hello")
        if "error" in hello:
            self.child.close()
            self.child = None
            return str(hello["error"])
        self.hello = hello
        return None

    def restart(self, crash: bool) -> None:
        if self.child is not None:
            self.child.close()
        err = self.start(crash)
        if err:
            raise RuntimeError(err)

    def workers(self, count: int, crash: bool = False) -> list[subprocess.Popen[bytes]]:
        return [
            subprocess.Popen(
                [self.python, str(self.adapter), "worker", self.url, QUEUE, str(CONCURRENCY[self.name])],
                stdout=subprocess.DEVNULL,
                stderr=self.errlog.open("a"),
                cwd=str(ROOT),
                env=self.env(crash),
                start_new_session=True,  # its own process group, killed as one
            )
            for _ in range(count)
        ]

    def reset_log(self) -> None:
        for p in self.workdir.glob(f"{self.name}.log*"):
            p.unlink()

    def starts(self) -> list[tuple[int, float]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                out.append((int(parts[0]), float(parts[1])))
        return out

    def round_trips(self) -> int:
        return sum(int(p.read_text() or 0) for p in self.workdir.glob(f"{self.name}.log.rt.*") if p.suffix != ".tmp")


def kill(procs: list[subprocess.Popen[bytes]], sig: int = signal.SIGKILL) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def wait_lines(path: Path, n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_lines(path) >= n:
            return True
        time.sleep(0.05)
    return False


# -- Redis side (parent) ------------------------------------------------------------------------------


def total_calls(client: Any) -> tuple[int, dict[str, int]]:
    stats = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}
    return sum(stats.values()), stats


def memory_usage(client: Any) -> tuple[int, int]:
    total, nkeys = 0, 0
    keys: list[Any] = []

    def flush() -> None:
        nonlocal total, nkeys
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.execute_command("MEMORY", "USAGE", k, "SAMPLES", "0")
        for size in pipe.execute():
            if size is not None:
                total += size
                nkeys += 1
        keys.clear()

    for key in client.scan_iter(count=1000):
        keys.append(key)
        if len(keys) >= 1000:
            flush()
    if keys:
        flush()
    return total, nkeys


# -- orchestration --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, client: Any, workdir: Path) -> None:
        self.args = args
        self.client = client
        self.workdir = workdir
        self.values: dict[str, dict[str, list[float]]] = {}
        self.lat: dict[str, list[float]] = {}
        self.add_call: dict[str, list[float]] = {}  # ms the producer's add call took, latency samples
        self.skipped: dict[str, str] = {}
        self.failed: dict[str, dict[str, str]] = {}
        self.commands: dict[str, dict[str, float]] = {}
        self.crash: dict[str, dict[str, Any]] = {}
        self.systems: dict[str, System] = {}
        self.load: list[float] = []  # 1-minute load average at the end of each run
        self.private: tuple[str, Any] | None = None  # (url, client) of the private redis-server
        venvs = Path(args.venvs)
        for name in args.peers:
            python = sys.executable if name == "jqc" else str((venvs / name / "bin" / "python").absolute())
            self.systems[name] = System(name, python, args.url, workdir)
        if not args.no_floor:
            self.systems[FLOOR] = System(FLOOR, sys.executable, args.url, workdir)

    def record(self, name: str, metric: str, value: float) -> None:
        self.values.setdefault(name, {}).setdefault(metric, []).append(value)

    def flush(self) -> None:
        self.client.flushdb()  # the benchmark's own db only (see --url)

    def start_all(self) -> None:
        for name, s in list(self.systems.items()):
            why = s.start()
            if why is None:
                assert s.child is not None
                warm = s.child.call("add", n=WARM_ADDS)  # connections opened, scripts loaded
                why = warm.get("error")
            if why:
                print(f"{name}: cannot run: {why}", file=sys.stderr, flush=True)
                self.skipped[name] = why
                if s.child is not None:
                    s.child.close()
                del self.systems[name]
        self.flush()

    def guarded(self, name: str, metric: str, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:
            print(f"{name} {metric}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self.failed.setdefault(name, {})[metric] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self.flush()

    def measure_adds(self, order: list[str]) -> None:
        """Single adds, interleaved: in each of ``--add-rounds`` rounds every system adds N / rounds jobs
        in turn (the order rotating), so each system's time is spread over the same stretch as the others'."""
        a = self.args
        per = max(1, a.n // a.add_rounds)
        seconds = dict.fromkeys(order, 0.0)
        cpu = dict.fromkeys(order, 0.0)
        alive = list(order)
        self.flush()
        for r in range(a.add_rounds):
            turn = alive[r % len(alive) :] + alive[: r % len(alive)] if alive else []
            for name in turn:
                child = self.systems[name].child
                assert child is not None
                reply = child.call("add", n=per)
                if "error" in reply:
                    print(f"{name} add: {reply['error']}", file=sys.stderr, flush=True)
                    self.failed.setdefault(name, {})["add"] = str(reply["error"])[:300]
                    alive.remove(name)
                    continue
                seconds[name] += float(reply["seconds"])
                cpu[name] += float(reply.get("cpu", 0.0))
            self.flush()
        total = per * a.add_rounds
        for name in alive:
            self.record(name, "add", total / seconds[name])
            self.record(name, "add_wall_us", seconds[name] / total * 1e6)
            self.record(name, "add_cpu_us", cpu[name] / total * 1e6)

    def measure_bulk(self, s: System) -> None:
        assert s.child is not None
        n, batch = self.args.n, self.args.bulk_batch
        self.flush()
        self.record(s.name, "bulk", n / s.child.value("bulk", n=n, batch=batch))

    def measure_process(self, s: System, procs: int) -> None:
        assert s.child is not None
        n = self.args.n
        s.child.value("bulk", n=n, batch=self.args.bulk_batch)
        s.reset_log()
        workers = s.workers(procs)
        try:
            done = wait_lines(s.log, n, timeout=max(60.0, n / 50))
            time.sleep(0.4)  # let the round-trip counters be written
            rtt = s.round_trips()
        finally:
            kill(workers)
        starts = sorted(t for _, t in s.starts())
        if len(starts) < 2:
            raise RuntimeError(f"{len(starts)} of {n} jobs started within the time limit")
        rate = (len(starts) - 1) / (starts[-1] - starts[0])
        if not done:
            raise RuntimeError(f"only {len(starts)} of {n} jobs started within the time limit ({rate:,.0f}/s)")
        self.record(s.name, f"proc{procs}", rate)
        if procs == 1:
            self.record(s.name, "rtt", rtt / n)

    def measure_commands(self, s: System) -> None:
        """Commands per processed job, exactly: the same 1-process run on a private redis-server."""
        assert self.private is not None
        url, client = self.private
        n = self.args.n
        p = System(s.name, s.python, url, self.workdir)
        err = p.start()
        if err:
            raise RuntimeError(err)
        assert p.child is not None
        try:
            client.flushdb()
            p.child.value("bulk", n=n, batch=self.args.bulk_batch)
            p.reset_log()
            client.config_resetstat()
            workers = p.workers(1)
            try:
                if not wait_lines(p.log, n, timeout=max(60.0, n / 50)):
                    raise RuntimeError(f"only {count_lines(p.log)} of {n} jobs started within the time limit")
                time.sleep(0.4)  # the last completions
                _, calls = total_calls(client)
            finally:
                kill(workers)
        finally:
            p.child.close()
            client.flushdb()
        for own in ("info", "config|resetstat", "config", "flushdb"):
            calls.pop(own, None)
        self.record(s.name, "cmds", sum(calls.values()) / n)
        top = sorted(((k, v) for k, v in calls.items() if v / n >= 0.01), key=lambda kv: -kv[1])[:8]
        self.commands[s.name] = {k: round(v / n, 2) for k, v in top}

    def measure_latency(self, s: System) -> None:
        assert s.child is not None
        a = self.args
        s.reset_log()
        workers = s.workers(1)
        total = a.lat_warm + a.lat_n
        try:
            # wait until the worker is up and has run a job (seq -1: not a sample)
            s.child.value("latency", key="sent", n=1, seq0=-1, gap=0)
            if not wait_lines(s.log, 1, timeout=60):
                raise RuntimeError("the worker did not start a warm-up job within 60 s")
            reply = s.child.call("latency", n=total, seq0=0, gap=a.gap / 1000)
            if "error" in reply:
                raise RuntimeError(f"latency: {reply['error']}")
            wait_lines(s.log, 1 + total, timeout=30)
        finally:
            kill(workers)
        started: dict[int, float] = {}
        for seq, t in s.starts():
            started.setdefault(seq, t)  # the first start of a job
        samples = list(zip(reply["sent"], reply["returned"], strict=True))[a.lat_warm :]
        lat = [(started[a.lat_warm + i] - t) * 1000 for i, (t, _) in enumerate(samples) if a.lat_warm + i in started]
        if len(lat) < len(samples):
            raise RuntimeError(f"only {len(lat)} of {len(samples)} latency jobs started")
        self.lat.setdefault(s.name, []).extend(lat)
        self.add_call.setdefault(s.name, []).extend((back - t) * 1000 for t, back in samples)

    def measure_bytes(self, s: System) -> None:
        assert s.child is not None
        self.flush()
        s.child.value("bulk", n=self.args.mem_n, batch=self.args.bulk_batch)
        total, nkeys = memory_usage(self.client)
        self.record(s.name, "bytes", total / self.args.mem_n)
        self.values[s.name].setdefault("keys_per_job", []).append(nkeys / self.args.mem_n)

    def measure_crash(self, s: System) -> None:
        a = self.args
        s.restart(crash=True)  # the producer too: some knobs are read on both sides
        assert s.child is not None
        try:
            self.flush()
            s.child.value("bulk", n=a.crash_n, batch=a.bulk_batch, seq0=0)
            s.reset_log()
            first = s.workers(1, crash=True)
            try:
                wait_lines(s.log, a.crash_n // 3, timeout=max(60.0, a.crash_n / 50))
            finally:
                kill(first)
            at_kill = count_lines(s.log)
            second = s.workers(1, crash=True)
            try:
                deadline = time.monotonic() + a.crash_wait
                while time.monotonic() < deadline:
                    if len({q for q, _ in s.starts()}) >= a.crash_n:
                        break
                    time.sleep(0.1)
                time.sleep(1.0)  # late duplicates
            finally:
                kill(second)
            seen: dict[int, int] = {}
            for seq, _ in s.starts():
                seen[seq] = seen.get(seq, 0) + 1
            self.crash[s.name] = {
                "jobs": a.crash_n,
                "started_before_kill": at_kill,
                "lost": sum(1 for i in range(a.crash_n) if i not in seen),
                "run_twice": sum(1 for c in seen.values() if c >= 2),
                "wait_s": a.crash_wait,
            }
        finally:
            s.restart(crash=False)
            self.flush()

    def each(self, order: list[str], metric: str, fn: Any) -> None:
        """One measurement for every system, back to back."""
        for name in order:
            self.guarded(name, metric, lambda s=self.systems[name]: fn(s))
        print(f"  {metric}: done ({', '.join(order)})", file=sys.stderr, flush=True)

    def run(self) -> None:
        a = self.args
        names = list(self.systems)
        for i in range(a.runs):
            order = names[i % len(names) :] + names[: i % len(names)]
            queues = [name for name in order if name != FLOOR]  # the floor row: single adds and latency only
            print(f"run {i + 1}/{a.runs}, load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
            self.measure_adds(order)
            self.each(queues, "bulk", self.measure_bulk)
            for procs in (1, 2):
                self.each(queues, f"proc{procs}", lambda s, p=procs: self.measure_process(s, p))
            self.each(order, "latency", self.measure_latency)
            if self.private is not None and (i == 0 or a.commands_every_run):
                self.each(queues, "cmds", self.measure_commands)
            if i == 0 or a.bytes_every_run:
                self.each(queues, "bytes", self.measure_bytes)
            self.load.append(round(os.getloadavg()[0], 2))
        if "jqc" in self.systems and not a.no_embedded:
            self.measure_embedded()
        if not a.no_crash:
            for name, s in self.systems.items():
                if AT_LEAST_ONCE[name].startswith("no"):
                    continue
                self.guarded(name, "crash", lambda s=s: self.measure_crash(s))
                print(f"crash row: {name} done", file=sys.stderr, flush=True)

    def measure_embedded(self) -> None:
        """jqc on the embedded backend: one process holds it, so adds and an in-process worker only."""
        a = self.args
        s = System("jqc", sys.executable, "memory://", self.workdir)
        err = s.start()
        if err:
            self.skipped["jqc-embedded"] = err
            return
        n, row = a.fake_n, "jqc-embedded"
        drain = {"n": n, "concurrency": 10}

        def one(metric: str, op: str, **params: Any) -> None:
            assert s.child is not None
            self.record(row, metric, n / s.child.value(op, **params))

        try:
            for _ in range(a.runs):
                self.guarded(row, "add", lambda: one("add", "add", n=n))
                s.restart(False)  # a fresh process: an empty embedded backend
                self.guarded(row, "bulk", lambda: one("bulk", "bulk", n=n, batch=a.bulk_batch))
                self.guarded(row, "proc1", lambda: one("proc1", "seconds", fn="embedded_process", args=drain))
                s.restart(False)
        finally:
            if s.child is not None:
                s.child.close()
        print("jqc embedded row done", file=sys.stderr, flush=True)

    def close(self) -> None:
        for s in self.systems.values():
            if s.child is not None:
                s.child.close()


# -- reporting ------------------------------------------------------------------------------------------


def build_report(bench: Bench, meta: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    for name, metrics in bench.values.items():
        results[name] = {m: summary(v) for m, v in metrics.items()}
    for name, lat in bench.lat.items():
        results.setdefault(name, {})["p50"] = {"median": percentile(lat, 50), "samples": len(lat)}
        results[name]["p99"] = {"median": percentile(lat, 99), "samples": len(lat)}
    for name, calls in bench.add_call.items():
        results[name]["add_call_p50"] = {"median": percentile(calls, 50), "samples": len(calls)}
        results[name]["add_call_p99"] = {"median": percentile(calls, 99), "samples": len(calls)}
    ratios: dict[str, dict[str, Any]] = {}
    bull = bench.values.get("bullmq", {})
    for name, metrics in bench.values.items():
        for m, vals in metrics.items():
            if m in bull and len(bull[m]) == len(vals):
                ratios.setdefault(name, {})[m] = summary([v / b for v, b in zip(vals, bull[m], strict=True) if b])
    bl = bench.lat.get("bullmq")
    for name, lat in bench.lat.items():
        if bl:
            for p, pct in (("p50", 50), ("p99", 99)):
                ratios.setdefault(name, {})[p] = {"median": percentile(lat, pct) / percentile(bl, pct)}
    systems = {}
    for name in [*SYSTEMS, "jqc-embedded", FLOOR]:
        s = bench.systems.get(name)
        systems[name] = {
            "pin": PINS.get(name, "this checkout"),
            "hello": s.hello if s else None,
            "concurrency_per_process": CONCURRENCY.get(name),
            "at_least_once": AT_LEAST_ONCE.get(name),
            "skipped": bench.skipped.get(name),
            "failed": bench.failed.get(name),
        }
    return {
        **meta,
        "results": results,
        "ratio_to_bullmq": ratios,
        "crash": bench.crash,
        "commands_first_run": bench.commands,
        "systems": systems,
    }


def _num(v: float, metric: str) -> str:
    if metric in ("p50", "p99"):
        return f"{v:.2f}"
    if metric in ("cmds", "rtt"):
        return f"{v:.1f}"
    return f"{v:,.0f}"


def cell(r: dict[str, Any], name: str, metric: str) -> str:
    s = r["results"].get(name, {}).get(metric)
    failed = (r["systems"].get(name) or {}).get("failed") or {}
    if not s:
        key = "latency" if metric in ("p50", "p99") else metric
        return "failed" if key in failed else "—"
    text = _num(s["median"], metric)
    if "runs" in s and len(s["runs"]) > 1:
        text += f" ({_num(s['min'], metric)}-{_num(s['max'], metric)})"
    ratio = r["ratio_to_bullmq"].get(name, {}).get(metric)
    if ratio and name != "bullmq":
        text += f" x{ratio['median']:.2f}"
    return text


def markdown(r: dict[str, Any]) -> str:
    p, m = r["params"], r["machine"]
    out = [
        "# Peers benchmark: jqc vs bullmq, huey, dramatiq, arq, saq, celery, rq",
        "",
        f"- date: {r['date']}",
        f"- command: `{r['command']}`",
        f"- machine: {m['nproc']} cores, {m['platform']}, Python {m['python']}, Redis {m['redis_version']} at "
        f"{m['url']}; load average (1 min) at start {m['loadavg_1min_start']}, at the end of each run "
        f"{', '.join(str(x) for x in m.get('loadavg_1min_runs', []))}, at the end {m['loadavg_1min_end']}",
        f"- N = {p['n']:,} jobs per throughput measurement (single adds: {p['add_rounds']} interleaved rounds of "
        f"{p['n'] // p['add_rounds']:,} per system), {p['mem_n']:,} waiting jobs for bytes, "
        f"{p['lat_n']} latency samples per run after {p['lat_warm']} dropped ({p['gap']:g} ms apart on average, "
        f"uniform 0.5-1.5x; time.monotonic() before the add call to the handler's first statement), "
        f"{p['runs']} run(s), bulk lists of "
        f"{p['bulk_batch']:,}; median (min-max); xR = ratio to bullmq in the same run (adds and processing: "
        "higher is better; latency, bytes, commands: lower is better)",
        "- commands per job: INFO commandstats on a private redis-server (same version) running the 1-process "
        "workload alone, commands inside scripts included; round trips per job: requests sent by the worker "
        "processes' redis-py (a pipeline or script call is one), counted in-process; both include worker start-up",
        "",
        "| system | " + " | ".join(label for label, _ in METRICS.values()) + " |",
        "|---" * (len(METRICS) + 1) + "|",
    ]
    for name in [*r["params"]["peers"], "jqc-embedded", FLOOR]:
        info = r["systems"][name]
        if info["skipped"]:
            out.append(f"| {name} | cannot run here: {info['skipped']} |" + " |" * (len(METRICS) - 1))
            continue
        if name not in r["results"]:
            continue
        label = "floor (bare list, not a queue)" if name == FLOOR else name
        out.append(f"| {label} | " + " | ".join(cell(r, name, metric) for metric in METRICS) + " |")
    out += [
        "",
        "Where the time goes (not compared): a single add's wall time and the CPU time of the process making it "
        "(Redis's own time is the rest, with the wake-ups between the two processes); in the latency "
        "measurement, how long the producer's add call itself took:",
        "",
        "| system | single add, µs | of which adder CPU, µs | latency: add call p50 / p99, ms |",
        "|---|---|---|---|",
    ]
    for name in [*r["params"]["peers"], FLOOR]:
        res = r["results"].get(name, {})
        if not res:
            continue
        wall, cpu = res.get("add_wall_us"), res.get("add_cpu_us")
        call50, call99 = res.get("add_call_p50"), res.get("add_call_p99")
        cells = [
            f"{wall['median']:.0f}" if wall else "—",
            f"{cpu['median']:.0f}" if cpu else "—",
            f"{call50['median']:.2f} / {call99['median']:.2f}" if call50 and call99 else "—",
        ]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "Crash recovery (one worker process SIGKILLed once a third of the jobs had started):", ""]
    out += [
        "| system | claims at-least-once | jobs | lost | run twice | settings for this row |",
        "|---|---|---|---|---|---|",
    ]
    for name in r["params"]["peers"]:
        info = r["systems"][name]
        c = r["crash"].get(name)
        claim = info["at_least_once"]
        if c:
            row = f"{c['jobs']:,} | {c['lost']:,} | {c['run_twice']:,}"
        elif info["skipped"]:
            row = "— | — | — (cannot run here)"
        elif claim.startswith("no"):
            row = "— | — | — (not claimed: not run)"
        elif r["params"]["no_crash"]:
            row = "— | — | — (--no-crash)"
        else:
            why = (info["failed"] or {}).get("crash", "not run")
            row = f"— | — | — ({why})"
        settings = ((info["hello"] or {}).get("settings") or "").split("crash row: ")
        knobs = settings[1] if len(settings) > 1 else "defaults"
        out.append(f"| {name} | {claim} | {row} | {knobs if c else '—'} |")
    out += ["", "Versions and settings:", "", "| system | pin | installed | bulk API | worker settings |"]
    out.append("|---|---|---|---|---|")
    for name in r["params"]["peers"]:
        info = r["systems"][name]
        h = info["hello"] or {}
        vers = ", ".join(f"{k} {v}" for k, v in (h.get("versions") or {}).items())
        out.append(
            f"| {name} | {info['pin']} | {vers or '—'} | {h.get('bulk_api', '—')} | "
            f"{(h.get('settings') or '—').split('; crash row')[0]} |"
        )
    out.append(
        "| jqc-embedded | this checkout | (same) | Queue.add_bulk | in-process jqc.Worker, concurrency 10, "
        f"N = {p['fake_n']:,} (the embedded backend lives in one process: no 2-process, latency, bytes rows) |"
    )
    floor = r["systems"].get(FLOOR) or {}
    if floor.get("hello"):
        vers = ", ".join(f"{k} {v}" for k, v in (floor["hello"].get("versions") or {}).items())
        out.append(
            f"| {FLOOR} | {floor['pin']} | {vers} | — | {floor['hello'].get('settings')}: single adds and latency "
            "only, the least any queue does per job |"
        )
    failures = {n: i["failed"] for n, i in r["systems"].items() if i["failed"]}
    if failures:
        out += ["", "Failures:", ""]
        for n, f in failures.items():
            for metric, why in f.items():
                out.append(f"- {n} {metric}: {why}")
    if r["commands_first_run"]:
        out += ["", "Top Redis commands per processed job (private server, 1 process, last run):", ""]
        for n, cmds in r["commands_first_run"].items():
            out.append(f"- {n}: " + ", ".join(f"{k} {v:g}" for k, v in cmds.items()))
    out.append("")
    return "\n".join(out)


# -- command line -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=DEFAULT_URL, help=f"Redis URL; its db is FLUSHDB-ed (default {DEFAULT_URL})")
    ap.add_argument("--venvs", default=str(ROOT / ".bench-venvs"), help="where the peers' venvs are (.bench-venvs)")
    ap.add_argument("--peers", default=",".join(SYSTEMS), help="comma-separated systems to run (default all)")
    ap.add_argument("--quick", action="store_true", help="1 run, small N (a smoke run)")
    ap.add_argument("--runs", type=int, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--n", type=int, help="jobs per throughput measurement (default 5,000; 2,000 with --quick)")
    ap.add_argument("--add-rounds", type=int, default=5, help="interleaved rounds of single adds (default 5)")
    ap.add_argument("--mem-n", type=int, help="waiting jobs for bytes (default 100,000; 20,000 with --quick)")
    ap.add_argument("--lat-n", type=int, help="latency samples per run (default 500; 200 with --quick)")
    ap.add_argument("--lat-warm", type=int, default=20, help="latency samples dropped first (default 20)")
    ap.add_argument(
        "--gap",
        type=float,
        default=20.0,
        help="mean ms between latency adds, uniform 0.5-1.5x (default 20: longer than any peer's job, so idle)",
    )
    ap.add_argument("--crash-n", type=int, help="jobs in the crash row (default 5,000; 1,000 with --quick)")
    ap.add_argument("--crash-wait", type=float, default=40.0, help="seconds to wait for recovery (default 40)")
    ap.add_argument("--fake-n", type=int, help="jobs per embedded-backend measurement (default 5,000; 1,000 quick)")
    ap.add_argument("--bulk-batch", type=int, default=1000, help="jobs per bulk call (default 1000)")
    ap.add_argument("--bytes-every-run", action="store_true", help="measure bytes in every run (default: first)")
    ap.add_argument("--commands-every-run", action="store_true", help="count commands in every run (default: first)")
    for old in ("--bytes-once", "--commands-once"):  # the default now; still accepted
        ap.add_argument(old, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-private-redis", action="store_true", help="skip the commands measurement")
    ap.add_argument("--no-crash", action="store_true", help="skip the crash row")
    ap.add_argument("--no-embedded", action="store_true", help="skip jqc's embedded-backend row")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare-list reference row (LPUSH / BLPOP)")
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"), help="where results are written")
    args = ap.parse_args(argv)
    q = args.quick
    args.runs = args.runs or (1 if q else 3)
    args.n = args.n or (2_000 if q else 5_000)
    args.mem_n = args.mem_n or (20_000 if q else 100_000)
    args.lat_n = args.lat_n or (200 if q else 500)
    args.add_rounds = max(1, min(args.add_rounds, args.n))
    args.crash_n = args.crash_n or (1_000 if q else 5_000)
    args.fake_n = args.fake_n or (1_000 if q else 5_000)
    args.peers = [p for p in args.peers.split(",") if p]
    unknown = set(args.peers) - set(SYSTEMS)
    if unknown:
        ap.error(f"unknown systems: {', '.join(sorted(unknown))}")
    return args


def start_private_redis(tmp: Path, bench: Bench) -> subprocess.Popen[bytes] | None:
    """A redis-server of our own on a free loopback port, for exact command counts; None if there is none."""
    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        print("no redis-server on PATH: the commands column is left empty", file=sys.stderr)
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            bench.private = (url, client)
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.terminate()
    proc.wait()
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import redis

    client = redis.Redis.from_url(args.url)
    try:
        server = client.info("server")
    except Exception as exc:
        print(f"cannot reach Redis at {args.url}: {exc}", file=sys.stderr)
        return 2
    machine = machine_info(server, args.url)
    with tempfile.TemporaryDirectory(prefix="jqc-peers-") as tmp:
        bench = Bench(args, client, Path(tmp))
        server_proc = None if args.no_private_redis else start_private_redis(Path(tmp), bench)
        try:
            bench.flush()
            bench.start_all()
            bench.run()
        finally:
            bench.close()
            bench.flush()
            if server_proc is not None:
                server_proc.terminate()
                server_proc.wait(timeout=30)
    machine["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    machine["loadavg_1min_runs"] = bench.load
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine,
        "params": {
            k: getattr(args, k)
            for k in (
                "peers",
                "runs",
                "n",
                "mem_n",
                "lat_n",
                "lat_warm",
                "gap",
                "add_rounds",
                "crash_n",
                "crash_wait",
                "fake_n",
                "bulk_batch",
                "no_crash",
            )
        },
        "payload": {"photoId": "123", "pipeline": "thumbnail"},
    }
    report = build_report(bench, meta)
    md = markdown(report)
    write_results(args.out_dir, "peers", report, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
