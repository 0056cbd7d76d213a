#!/usr/bin/env python3
"""Simulator benchmark: job lifecycles per wall-clock second on each backend, optionally side by side
with another checkout of jqc (a baseline), and a sweep of many seeds over processes.

Scenario (the issue's): ``--workers`` virtual workers, Poisson arrivals at 80% load, log-normal
service (mean 30 s, sigma 0.5), crash and pause faults, for ``--virtual`` seconds of arrivals.
Each measurement runs in a fresh process of its own (``PYTHONPATH`` set to the checkout measured),
baseline and this checkout taking turns, so both see the same machine; every pair must give the
same event-log SHA-256 (one seed, one log, whatever the code's speed), and so must both backends.

The sweep (``--seeds``) runs a small faulty configuration over many seeds: this checkout with
``--parallel 1`` and with ``--parallel N`` (``jqc.sim.seeds.run_seeds``), and the baseline's one
seed after another, and checks that all three give the same digest of every seed's event log.

    .venv/bin/python benchmarks/sim.py [--workers 2000] [--virtual 3600] [--url redis://127.0.0.1:6379/5]
        [--backends redis,embedded] [--baseline ../jqc-main] [--runs 1] [--seeds 1-40 --parallel 2]

Results go to benchmarks/results/sim-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _results import write_results

ROOT = Path(__file__).resolve().parent
THIS = ROOT.parent

SCENARIO = """
import hashlib, json, os, sys, time
from jqc.sim import FaultConfig, LogNormal, Poisson, SimConfig, run
workers, virtual, url, seed = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] or None, int(sys.argv[4])
config = SimConfig(seed=seed, workers=workers, jobs=None, duration=virtual, arrival=Poisson(0.8 * workers / 30.0),
                   service=LogNormal(30.0, 0.5), faults=FaultConfig(crash=0.001, pause=0.0005),
                   keep_completed=False, url=url)
cpu = time.process_time()
r = run(config)
print(json.dumps({"jobs": r.jobs, "lifecycles": r.completed + r.dead_lettered, "wall_seconds": r.wall_seconds,
                  "cpu_seconds": time.process_time() - cpu, "engine_calls": r.engine_calls,
                  "engine_seconds": r.engine_seconds, "ok": r.ok, "sha": r.event_log_sha256,
                  "load": os.getloadavg()[0]}))
"""

SWEEP = """
import hashlib, json, os, sys, time
from jqc.sim import FaultConfig, Poisson, LogNormal, SimConfig, run
first, last, parallel = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
config = SimConfig(workers=20, jobs=300, arrival=Poisson(0.5), service=LogNormal(30.0, 0.5), lock=30.0,
                   faults=FaultConfig(crash=0.01, pause=0.01))
seeds = list(range(first, last + 1))
started = time.perf_counter()
if parallel == 0:  # one after another, with nothing but run() (a baseline may have no run_seeds)
    shas = [(s, run(config.replace(seed=s)).event_log_sha256) for s in seeds]
    ok = True
else:
    from jqc.sim.seeds import run_seeds
    sweep = run_seeds(config, seeds, parallel=parallel)
    shas, ok = [(r.seed, r.event_log_sha256) for r in sweep.runs], sweep.ok
wall = time.perf_counter() - started
digest = hashlib.sha256("".join(f"{s} {h}\\n" for s, h in shas).encode()).hexdigest()
print(json.dumps({"seeds": len(seeds), "wall_seconds": wall, "digest": digest, "ok": ok}))
"""


# The embedded row of benchmarks/peers.py (jqc_adapter.embedded_process): fill an embedded backend with
# N jobs, then time an in-process jqc.Worker (concurrency 10) draining them.
EMBEDDED_WORKER = """
import json, os, sys, tempfile, time
sys.path.insert(0, os.path.join("benchmarks", "peers"))
os.environ["PEERS_BENCH_LOG"] = os.path.join(tempfile.mkdtemp(), "marks")
import jqc, jqc_adapter
n = int(sys.argv[1])
conn = jqc.connect("memory://")  # as jqc_adapter.embedded_process, with the CPU time taken too
q = conn.queue("pb")
q.add_bulk([(jqc_adapter.JOB_NAME, dict(jqc_adapter.PAYLOAD)) for _ in range(n)])
t0, c0 = time.perf_counter(), time.process_time()
stats = jqc.Worker(q, jqc_adapter.handler, concurrency=10).run(burst=True)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
assert stats.processed == n, stats
print(json.dumps({"jobs": n, "seconds": seconds, "cpu_seconds": cpu, "processed_per_s": n / seconds,
                  "processed_per_cpu_s": n / cpu, "load": os.getloadavg()[0]}))
"""


def commit(checkout: Path) -> str:
    """The commit a checkout is at (with "+changes" when its tree differs from it)."""
    git = ["git", "-C", str(checkout)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def child(checkout: Path, code: str, *args: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=checkout, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement in {checkout} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2000)
    parser.add_argument("--virtual", type=float, default=3600.0, help="virtual seconds of arrivals")
    parser.add_argument("--url", default=os.environ.get("JQC_BENCH_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backends", default="redis,embedded", help="comma-separated: redis, embedded ('' for none)")
    parser.add_argument(
        "--embedded-virtual", type=float, help="virtual seconds on the embedded backend (default: --virtual)"
    )
    parser.add_argument("--baseline", type=Path, help="another jqc checkout to measure side by side")
    parser.add_argument("--runs", type=int, default=1, help="measurements per checkout and backend")
    parser.add_argument("--stem", default="sim", help="results file name: benchmarks/results/STEM-latest.*")
    parser.add_argument("--seeds", help="also sweep these seeds, FIRST-LAST (e.g. 1-40)")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="processes for the sweep")
    parser.add_argument("--embedded-worker", type=int, metavar="N", help="also time peers.py's embedded row, N jobs")
    parser.add_argument("--embedded-worker-runs", type=int, default=3, help="runs of it per checkout")
    parser.add_argument("--skip-embedded", action="store_true", help="(same as --backends redis)")
    parser.add_argument("--skip-redis", action="store_true", help="(same as --backends embedded)")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    skipped = {"embedded"} if args.skip_embedded else set()
    skipped |= {"redis"} if args.skip_redis else set()
    backends = [b for b in backends if b not in skipped]
    if unknown := sorted(set(backends) - {"redis", "embedded"}):
        parser.error(f"--backends: unknown {', '.join(unknown)} (redis, embedded, or empty for none)")
    checkouts = [("baseline", args.baseline.resolve())] if args.baseline else []
    checkouts.append(("this", THIS))

    rows: list[dict[str, Any]] = []
    for backend in backends:
        virtual = args.embedded_virtual if backend == "embedded" and args.embedded_virtual else args.virtual
        url = args.url if backend == "redis" else ""
        for i in range(args.runs):
            order = checkouts if i % 2 == 0 else checkouts[::-1]
            for name, checkout in order:
                m = child(checkout, SCENARIO, str(args.workers), str(virtual), url, str(args.seed))
                row = {"backend": backend, "checkout": name, "workers": args.workers, "virtual": virtual, **m,
                       "lifecycles_per_s": m["lifecycles"] / m["wall_seconds"]}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)

    worker: list[dict[str, Any]] = []
    for i in range(args.embedded_worker_runs if args.embedded_worker else 0):
        for name, checkout in checkouts if i % 2 == 0 else checkouts[::-1]:
            worker.append({"checkout": name, **child(checkout, EMBEDDED_WORKER, str(args.embedded_worker))})
            print(json.dumps(worker[-1]), file=sys.stderr, flush=True)

    sweep: list[dict[str, Any]] = []
    if args.seeds:
        first, _, last = args.seeds.partition("-")
        plan = [("this", THIS, 1), ("this", THIS, args.parallel)]
        if args.baseline:
            plan.insert(0, ("baseline", args.baseline.resolve(), 0))
        for name, checkout, parallel in plan:
            m = child(checkout, SWEEP, first, last or first, str(parallel))
            sweep.append({"checkout": name, "parallel": parallel or 1, **m})
            print(json.dumps(sweep[-1]), file=sys.stderr, flush=True)

    md = render(rows, sweep, worker, args)
    command = " ".join(sys.argv).replace(str(args.baseline), "BASELINE") if args.baseline else " ".join(sys.argv)
    meta = {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": command,
            "commits": {name: commit(path) for name, path in checkouts}}  # fmt: skip
    stem = args.stem
    write_results(ROOT / "results", stem, {"meta": meta, "rows": rows, "sweep": sweep, "embedded_worker": worker}, md)
    ok = all(r["ok"] for r in rows) and all(s["ok"] for s in sweep)
    if any(len({r["sha"] for r in rows if r["virtual"] == v}) > 1 for v in {r["virtual"] for r in rows}):
        print("the runs gave different event logs for one seed", file=sys.stderr)
        return 1
    if len({s["digest"] for s in sweep}) > 1:
        print("the sweeps gave different digests", file=sys.stderr)
        return 1
    return 0 if ok else 1


def render(
    rows: list[dict[str, Any]], sweep: list[dict[str, Any]], worker: list[dict[str, Any]], args: argparse.Namespace
) -> str:
    loads = [r["load"] for r in rows] or [0.0]
    lines = [
        f"Simulator, {args.workers} workers, seed {args.seed}: median of {args.runs} run(s) per checkout "
        f"(load average {min(loads):.1f}-{max(loads):.1f})",
        "",
        "| backend | checkout | virtual s | jobs | wall s | lifecycles/s | calls/job | client CPU s | "
        "lifecycles per client CPU s | same log |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    medians: dict[tuple[str, str], float] = {}
    cpu_rates: dict[tuple[str, str], float] = {}
    for backend in dict.fromkeys(r["backend"] for r in rows):
        for name in dict.fromkeys(r["checkout"] for r in rows):
            mine = [r for r in rows if r["backend"] == backend and r["checkout"] == name]
            if not mine:
                continue
            wall = statistics.median(r["wall_seconds"] for r in mine)
            rate = statistics.median(r["lifecycles_per_s"] for r in mine)
            medians[backend, name] = rate
            cpu_rates[backend, name] = statistics.median(r["lifecycles"] / r["cpu_seconds"] for r in mine)
            r0 = mine[0]
            cpu = statistics.median(r["cpu_seconds"] for r in mine)
            lines.append(
                f"| {backend} | {name} | {r0['virtual']:.0f} | {r0['jobs']:,} | {wall:.1f} | {rate:,.0f} | "
                f"{r0['engine_calls'] / max(r0['jobs'], 1):.2f} | {cpu:.1f} | {r0['lifecycles'] / cpu:,.0f} | "
                f"{'yes' if len({r['sha'] for r in rows if r['virtual'] == r0['virtual']}) == 1 else 'NO'} |"
            )
        if (backend, "baseline") in medians and (backend, "this") in medians:
            ratio = medians[backend, "this"] / medians[backend, "baseline"]
            cpu_ratio = cpu_rates[backend, "this"] / cpu_rates[backend, "baseline"]
            lines.append(f"| {backend} | ratio | | | | {ratio:.2f}x | | | {cpu_ratio:.2f}x | |")
    if sweep:
        lines += [
            "",
            f"Seed sweep {args.seeds} (20 workers, 300 jobs, crash and pause faults each):",
            "",
            "| checkout | processes | wall s | seeds/s | same digest | all ok |",
            "|---|---|---|---|---|---|",
        ]
        digests = {s["digest"] for s in sweep}
        for s in sweep:
            how = "one after another" if s["checkout"] == "baseline" else str(s["parallel"])
            lines.append(
                f"| {s['checkout']} | {how} | {s['wall_seconds']:.1f} | {s['seeds'] / s['wall_seconds']:.2f} | "
                f"{'yes' if len(digests) == 1 else 'NO'} | {s['ok']} |"
            )
    if worker:
        lines += [
            "",
            f"Embedded backend, benchmarks/peers.py's embedded row: {args.embedded_worker:,} jobs drained by an "
            "in-process jqc.Worker, concurrency 10 (median of the runs):",
            "",
            "| checkout | processed/s | runs | processed per CPU second | runs | load average |",
            "|---|---|---|---|---|---|",
        ]
        rates: dict[str, float] = {}
        per_cpu: dict[str, float] = {}
        for name in dict.fromkeys(w["checkout"] for w in worker):
            mine = [w for w in worker if w["checkout"] == name]
            rates[name] = statistics.median(w["processed_per_s"] for w in mine)
            per_cpu[name] = statistics.median(w["processed_per_cpu_s"] for w in mine)
            runs = ", ".join(f"{w['processed_per_s']:,.0f}" for w in mine)
            cpu_runs = ", ".join(f"{w['processed_per_cpu_s']:,.0f}" for w in mine)
            load = ", ".join(f"{w['load']:.1f}" for w in mine)
            lines.append(f"| {name} | {rates[name]:,.0f} | {runs} | {per_cpu[name]:,.0f} | {cpu_runs} | {load} |")
        if "baseline" in rates:
            ratio, cpu_ratio = rates["this"] / rates["baseline"], per_cpu["this"] / per_cpu["baseline"]
            lines.append(f"| ratio | {ratio:.2f}x | | {cpu_ratio:.2f}x | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
