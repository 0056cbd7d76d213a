#!/usr/bin/env python3
"""Simulator benchmark: simulated job lifecycles per wall-clock second on each backend, and the
simulator's own overhead over the engine calls it makes.

Scenario (the issue's): ``--workers`` virtual workers, Poisson arrivals at 80% load, log-normal
service (mean 30 s, sigma 0.5), crash and pause faults, for ``--virtual`` seconds. The engine
time is measured around every ``run_sync`` the simulator makes, so "simulator overhead" is the
wall time spent outside the engine (event loop, model, checkers, event log).

    .venv/bin/python benchmarks/sim.py [--workers 2000] [--virtual 3600] [--url redis://127.0.0.1:6379/13]
        [--skip-embedded] [--skip-redis]

Results go to benchmarks/results/sim-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from jqc.sim import FaultConfig, LogNormal, Poisson, SimConfig, run

ROOT = Path(__file__).resolve().parent


def scenario(workers: int, virtual: float, url: str | None, seed: int) -> SimConfig:
    mean = 30.0
    return SimConfig(
        seed=seed,
        workers=workers,
        jobs=None,
        duration=virtual,
        arrival=Poisson(0.8 * workers / mean),
        service=LogNormal(mean, 0.5),
        faults=FaultConfig(crash=0.001, pause=0.0005),
        keep_completed=False,
        url=url,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2000)
    parser.add_argument("--virtual", type=float, default=3600.0, help="virtual seconds of arrivals")
    parser.add_argument("--url", default=os.environ.get("JQC_BENCH_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    rows = []
    for backend, url in (("embedded", None), ("redis", args.url)):
        if (backend == "embedded" and args.skip_embedded) or (backend == "redis" and args.skip_redis):
            continue
        report = run(scenario(args.workers, args.virtual, url, args.seed))
        row = {
            "backend": backend,
            "workers": args.workers,
            "virtual_seconds": round(report.virtual_seconds, 1),
            "jobs": report.jobs,
            "wall_seconds": round(report.wall_seconds, 1),
            "lifecycles_per_wall_s": round(report.lifecycles_per_wall_s, 1),
            "engine_calls": report.engine_calls,
            "engine_calls_per_job": round(report.engine_calls / max(report.jobs, 1), 2),
            "engine_seconds": round(report.engine_seconds, 1),
            "simulator_overhead": round(1 - report.engine_seconds / report.wall_seconds, 3),
            "ok": report.ok,
            "event_log_sha256": report.event_log_sha256,
        }
        rows.append(row)
        print(json.dumps(row))
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count()}
    (out / "sim-latest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "| backend | workers | virtual s | jobs | wall s | lifecycles/s | calls/job | simulator overhead | ok |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['workers']} | {r['virtual_seconds']} | {r['jobs']} | {r['wall_seconds']} | "
            f"{r['lifecycles_per_wall_s']} | {r['engine_calls_per_job']} | {r['simulator_overhead']:.1%} | {r['ok']} |"
        )
    (out / "sim-latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if len({r["event_log_sha256"] for r in rows}) > 1:
        print("the backends gave different event logs for one seed")
        return 1
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
