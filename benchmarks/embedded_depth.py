#!/usr/bin/env python3
"""Claim cost against queue depth on the embedded backend (fakeredis + Lua).

fakeredis's ZPOPMIN copies the whole sorted set on every call, so a claim built on it would slow
down with the number of waiting jobs (about 4x at 50,000). jqc claims priority-0 jobs with RPOP
from a list and other priorities with ZRANGE by rank + ZREM, neither of which depends on depth on
either backend (tests/engine/test_fakeredis_differences.py checks the scripts never pop a sorted
set). This measures it: the time of ``--claims`` single claims from a shallow queue and from a deep
one, rounds alternating between the two so machine noise hits both alike, best round of each; the
ratio deep/shallow stays near 1 when the claim is independent of depth.

    .venv/bin/python benchmarks/embedded_depth.py [--shallow 200] [--deep 50000] [--rounds 8]

Results go to benchmarks/results/embedded-depth-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any

import _results

import jqc
from jqc import JobOptions, NewJob

RESULTS = Path(__file__).parent / "results"


def fill(depth: int, priority: int) -> jqc.Queue:
    """An embedded queue holding ``depth`` waiting jobs of one priority."""
    queue = jqc.connect(clock=jqc.VirtualClock()).queue("photos", events_max_len=0)
    for start in range(0, depth, 5_000):
        queue.add_bulk(
            [NewJob("real", i, JobOptions(priority=priority)) for i in range(start, min(start + 5_000, depth))]
        )
    return queue


def claim_round(queue: jqc.Queue, claims: int) -> float:
    """Seconds taken by ``claims`` single claims."""
    start = time.perf_counter()
    for _ in range(claims):
        (held,) = queue.claim("bench").jobs
        assert held.job.name == "real"
    return time.perf_counter() - start


def measure(priority: int, shallow: int, deep: int, claims: int, rounds: int) -> dict[str, Any]:
    """Best round per depth and their ratio, for jobs of one priority."""
    queues = {"shallow": fill(shallow + claims * rounds, priority), "deep": fill(deep + claims * rounds, priority)}
    times: dict[str, list[float]] = {"shallow": [], "deep": []}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, queue in queues.items():
                times[name].append(claim_round(queue, claims))
    finally:
        gc.enable()
    best = {name: min(values) / claims * 1e6 for name, values in times.items()}
    return {"priority": priority, "us_per_claim": best, "ratio": best["deep"] / best["shallow"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shallow", type=int, default=200)
    parser.add_argument("--deep", type=int, default=50_000)
    parser.add_argument("--claims", type=int, default=50, help="claims per round")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    rows = [measure(priority, args.shallow, args.deep, args.claims, args.rounds) for priority in (0, 7)]
    lines = [
        f"Claim cost on the embedded backend, {args.shallow:,} vs {args.deep:,} waiting jobs "
        f"(best of {args.rounds} rounds of {args.claims} claims).",
        "",
        "| waiting jobs in | shallow µs/claim | deep µs/claim | deep / shallow |",
        "|---|---|---|---|",
    ]
    for row in rows:
        where = "the list (priority 0)" if row["priority"] == 0 else "the sorted set (priority 7)"
        us = row["us_per_claim"]
        lines.append(f"| {where} | {us['shallow']:.0f} | {us['deep']:.0f} | {row['ratio']:.2f} |")
    lines += ["", f"Command: `{_results.command_line()}`"]
    md = "\n".join(lines) + "\n"
    report = {"args": vars(args), "rows": rows, "command": _results.command_line()}
    _results.write_results(RESULTS, "embedded-depth", report, md)


if __name__ == "__main__":
    main()
