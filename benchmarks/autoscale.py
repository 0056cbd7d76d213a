#!/usr/bin/env python3
"""Autoscaling evaluation: the wait-SLO policy against a fixed pool sized by Erlang C for the peak and
against the HPA-like baseline, on steady, step, burst and daily-cycle loads with worker start-up delay.

Every run is a ``jqc sim`` run of the real engine scripts on a virtual clock (embedded backend by
default; ``--url`` runs the same on a real Redis, faster, with identical results). For each load,
policy and seed it records the minutes whose p95 wait (or oldest waiting job) exceeded the SLO,
worker-seconds (starting workers included) and direction reversals (flaps), and writes the table
into docs/autoscaling.md (between its ``autoscale-table`` markers) and the raw rows into
benchmarks/results/autoscale-latest.json.

    .venv/bin/python benchmarks/autoscale.py [--seeds 1,2,3] [--jobs 2] [--url redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jqc.scaling import servers_for_wait
from jqc.sim import Bursts, Daily, LogNormal, Poisson, SimConfig, Step, run
from jqc.sim.workload import Arrival

ROOT = Path(__file__).resolve().parent
DOC = ROOT.parent / "docs" / "autoscaling.md"
START, END = "<!-- autoscale-table:start -->", "<!-- autoscale-table:end -->"

# The setting every run shares.
SERVICE_MEAN = 30.0  # seconds, log-normal with sigma 0.5
SLO = 60.0  # p95 queue wait, seconds
STARTUP = 60.0  # seconds before a new worker takes jobs
TICK = 15.0  # seconds between decisions
MIN_WORKERS, MAX_WORKERS = 2, 80
HPA_STABILIZATION = 300.0  # the Kubernetes default


@dataclass(frozen=True)
class Load:
    name: str
    arrival: Arrival
    duration: float
    start_rate: float  # arrival rate at time 0 (the initial pool is sized for it)
    peak_rate: float  # highest arrival rate averaged over one SLO window (the fixed pool is sized for it)
    what: str


LOADS = (
    Load("steady", Poisson(0.6), 3600.0, 0.6, 0.6, "Poisson 0.6 jobs/s for 1 h (18 busy workers on average)"),
    Load("step", Step(0.2, 0.8, 1200.0), 3600.0, 0.2, 0.8, "0.2 jobs/s, then 0.8 jobs/s from minute 20 (x4), 1 h"),
    Load(
        "burst",
        Bursts(rate=0.3, size=200, every=1200.0, width=30.0, first=600.0),
        3600.0,
        0.3,
        0.3 + 200 / SLO,
        "0.3 jobs/s plus 200 jobs within 30 s every 20 min (from minute 10), 1 h",
    ),
    Load(
        "daily",
        Daily(0.5, 0.8, 14400.0, 0.0),
        14400.0,
        0.5,
        0.9,
        "sinusoid 0.1-0.9 jobs/s, one 'day' compressed into 4 h",
    ),
)

POLICIES = ("fixed-erlang", "hpa", "hpa-aws", "slo")
POLICY_TEXT = {
    "fixed-erlang": "fixed pool: the fewest workers for which Erlang C gives p95 wait <= SLO at the peak rate",
    "hpa": "HPA-like: desired = ceil((waiting + active) / 1), +-10% tolerance, 300 s scale-down stabilization",
    "hpa-aws": f"the same with AWS's backlog target SLO / mean run time = {SLO / SERVICE_MEAN:g} jobs per worker",
    "slo": "jqc's SloPolicy with its defaults (told the SLO and the start-up time): jqc sim --policy slo",
}


SLO_STABILIZATION = 120.0  # SloPolicy's own default scale-down delay


def config(load: Load, policy: str, seed: int, url: str | None) -> SimConfig:
    """The simulator configuration of one run: a plain ``jqc sim`` command line can replay it."""
    start = max(MIN_WORKERS, servers_for_wait(load.start_rate, SERVICE_MEAN, SLO / 2))
    scaled: dict[str, Any] = {"workers": start, "min_workers": MIN_WORKERS, "max_workers": MAX_WORKERS}
    if policy == "fixed-erlang":
        chosen: dict[str, Any] = {"policy": "fixed", "workers": servers_for_wait(load.peak_rate, SERVICE_MEAN, SLO)}
    elif policy == "hpa":
        chosen = {**scaled, "policy": "hpa", "target_backlog": 1.0, "stabilization": HPA_STABILIZATION}
    elif policy == "hpa-aws":
        chosen = {**scaled, "policy": "hpa", "target_backlog": SLO / SERVICE_MEAN, "stabilization": HPA_STABILIZATION}
    elif policy == "slo":
        chosen = {**scaled, "policy": "slo", "stabilization": SLO_STABILIZATION}
    else:
        raise ValueError(policy)
    return SimConfig(
        seed=seed,
        jobs=None,
        duration=load.duration,
        arrival=load.arrival,
        service=LogNormal(SERVICE_MEAN, 0.5),
        startup_delay=STARTUP,
        policy_tick=TICK,
        slo_wait=SLO,
        keep_completed=False,
        url=url,
        **chosen,
    )


def one(args: tuple[str, str, int, str | None]) -> dict[str, Any]:
    load_name, policy, seed, url = args
    load = next(x for x in LOADS if x.name == load_name)
    cfg = config(load, policy, seed, url)
    started = time.perf_counter()
    report = run(cfg)
    sc = report.scaling
    return {
        "load": load_name,
        "policy": policy,
        "seed": seed,
        "ok": report.ok,
        "jobs": report.jobs,
        "slo_violation_minutes": sc["slo_violation_minutes"],
        "worker_seconds": round(sc["worker_seconds"], 1),
        "reversals": sc["direction_reversals"],
        "wait_p95_s": round(report.wait_p95_s, 2),
        "wait_max_s": round(report.wait_max_s, 2),
        "utilization": round(report.utilization, 4),
        "lost_by_scaling": sc["lost_by_scaling"],
        "duplicated_by_scaling": sc["duplicated_by_scaling"],
        "max_workers_seen": max((row["workers"] for row in report.timeline), default=0),
        "event_log_sha256": report.event_log_sha256,
        "replay": report.replay_command,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def table(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    lines = [
        f"Seeds {', '.join(map(str, seeds))}; each cell is the mean over the seeds, the per-seed values in brackets.",
        "",
        "| load | policy | SLO-violation minutes | worker-seconds | flaps (reversals) | p95 wait, s | "
        "worker-seconds vs hpa |",
        "|---|---|---|---|---|---|---|",
    ]
    for load in LOADS:
        base = _mean([r["worker_seconds"] for r in rows if r["load"] == load.name and r["policy"] == "hpa"])
        for policy in POLICIES:
            mine = [r for r in rows if r["load"] == load.name and r["policy"] == policy]
            mine.sort(key=lambda r: r["seed"])
            if not mine:
                continue
            slo = [r["slo_violation_minutes"] for r in mine]
            ws = [r["worker_seconds"] for r in mine]
            rev = [r["reversals"] for r in mine]
            p95 = [r["wait_p95_s"] for r in mine]
            lines.append(
                f"| {load.name} | {policy} | {_mean(slo):.1f} ({', '.join(map(str, slo))}) | "
                f"{_mean(ws):,.0f} | {_mean(rev):.1f} ({', '.join(map(str, rev))}) | {_mean(p95):.1f} | "
                f"{100 * (_mean(ws) / base - 1):+.0f}% |"
            )
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT).stdout
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated simulator seeds (default 1,2,3)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    parser.add_argument("--url", default=os.environ.get("JQC_SIM_URL"), help="a real Redis (default: embedded)")
    parser.add_argument("--loads", default=",".join(x.name for x in LOADS), help="which loads (default: all)")
    parser.add_argument("--no-doc", action="store_true", help="print the table without writing docs/autoscaling.md")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    wanted = [x.strip() for x in args.loads.split(",") if x.strip()]
    work = [(load, policy, seed, args.url) for load in wanted for policy in POLICIES for seed in seeds]
    started = time.perf_counter()
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        rows = []
        for row in pool.map(one, work):
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("load", "policy", "seed", "slo_violation_minutes",
                                                  "worker_seconds", "reversals", "ok", "wall_seconds")}),
                  flush=True)  # fmt: skip
    text = table(rows, seeds)
    command = "python benchmarks/autoscale.py --seeds " + ",".join(map(str, seeds))
    if wanted != [x.name for x in LOADS]:
        command += " --loads " + ",".join(wanted)
    meta = {
        "command": command,
        "commit": _git_commit(),
        "backend": "redis" if args.url else "embedded",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "setting": {
            "service": f"lognormal mean {SERVICE_MEAN:g} s sigma 0.5",
            "slo_p95_wait_s": SLO,
            "startup_s": STARTUP,
            "tick_s": TICK,
            "min_workers": MIN_WORKERS,
            "max_workers": MAX_WORKERS,
        },
        "loads": {x.name: {"arrival": x.arrival.spec, "duration_s": x.duration, "what": x.what} for x in LOADS},
        "policies": POLICY_TEXT,
    }
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / "autoscale-latest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    block = (
        f"{START}\n{text}\n\nGenerated by `{command}` on commit {meta['commit']}, {meta['backend']} backend, "
        f"in {meta['wall_seconds']:.0f} s of wall time; raw rows with each run's replay command and event-log "
        f"SHA-256 in `benchmarks/results/autoscale-latest.json`.\n{END}"
    )
    print(block)
    if not args.no_doc and wanted == [x.name for x in LOADS]:
        doc = DOC.read_text("utf-8")
        if START in doc and END in doc:
            doc = doc[: doc.index(START)] + block + doc[doc.index(END) + len(END) :]
            DOC.write_text(doc, "utf-8")
        else:
            print(f"{DOC} has no {START} ... {END} markers; table not written", file=sys.stderr)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
