#!/usr/bin/env python3
"""Declared keys: the key layout before (a hash per job, keys built in Lua) and after (every key
declared, jobs as fields of one hash per queue), side by side on the same real Redis, in one run.

The old layout is the scripts of the commit the change started from (``--old-commit``, read with
``git show``, so the benchmark needs the repository's history); the new one is the installed jqc.
Both get the same ARGV (the argument formats of ``add``, ``claim`` and ``complete`` did not change),
sent with EVALSHA through one redis-py client; only the scripts and their KEYS differ. Measured,
each ``--runs`` times with the two layouts taking turns (who goes first alternates):

1. single adds/s: ``--single`` adds, one round trip each;
2. bulk adds/s: ``--bulk`` jobs in calls of 500 (add_bulk's chunk);
3. claim+complete/s: ``--work`` jobs added first (untimed), then claimed and completed one at a time;
4. bytes per waiting job: with ``--mem-n`` jobs waiting, the sum of ``MEMORY USAGE key SAMPLES 0``
   over every key of the queue (SCAN on its prefix), divided by the job count.

Ratios are new / old, run by run (the median is reported). Only the benchmark's own keys
(``jqcbench:{old}:*``, ``jqcbench:{new}:*``) are deleted; nothing is flushed. Results go to
benchmarks/results/declared-keys-latest.{json,md}.

    .venv/bin/python benchmarks/declared_keys.py --url redis://127.0.0.1:6379/11 [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _results
import redis

from jqc.engine.codes import lua_prelude
from jqc.engine.keys import QueueKeys
from jqc.engine.lua_source import script_keys
from jqc.engine.scripts import scripts

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "jqcbench"
SCRIPTS = ("add", "claim", "complete")
EVENTS = 10_000
CHUNK = 500
DATA = json.dumps({"photoId": "123", "pipeline": "thumbnail"}, separators=(",", ":"))
_INCLUDE = re.compile(r"^--@include (.+)$", re.MULTILINE)


def old_sources(commit: str) -> dict[str, str]:
    """The sources Redis ran at ``commit``, built as that commit's loader built them."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:jqc/engine/lua/{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    out = {}
    for name in SCRIPTS:

        def expand(match: re.Match[str]) -> str:
            return "\n".join(show(f"include/{p.strip()}.lua") for p in match.group(1).split(","))

        out[name] = lua_prelude() + _INCLUDE.sub(expand, show(f"{name}.lua"), count=1)
    return out


class Layout:
    """One layout's scripts (loaded on the server) and its queue's keys."""

    def __init__(self, name: str, client: Any, sources: dict[str, str]) -> None:
        self.name = name
        self.client = client
        self.keys = QueueKeys(PREFIX, name)
        self.sha = {n: client.script_load(s) for n, s in sources.items()}
        assert all(hashlib.sha1(s.encode()).hexdigest() == self.sha[n] for n, s in sources.items())
        if name == "old":
            self.declared = {n: (self.keys.base,) for n in SCRIPTS}
        else:
            self.declared = {n: self.keys.declared(script_keys(n)) for n in SCRIPTS}
        self.now = 1_800_000_000_000

    def call(self, script: str, *args: Any) -> Any:
        self.now += 1
        keys = self.declared[script]
        return self.client.evalsha(self.sha[script], len(keys), *keys, self.now, EVENTS, *args)

    def clear(self) -> None:
        _results.delete_matching(self.client, self.keys.scan_pattern)

    def add(self, n: int) -> Any:
        jobs = [v for _ in range(n) for v in ("", "send", DATA, "1")]
        return self.call("add", 1, "0", "0", "", "1", "", "", "", "", "", n, *jobs)

    def claim_complete(self) -> None:
        reply = self.call("claim", 1, 30_000, "w1")
        job_id, token = reply[2], reply[3]
        done = self.call("complete", job_id, token, "null", 0, 30_000, "w1")
        assert done[0] == 0, done

    def bytes_per_job(self, n: int) -> float:
        total = 0
        keys = list(self.client.scan_iter(match=self.keys.scan_pattern, count=1000))
        for start in range(0, len(keys), 1000):
            pipe = self.client.pipeline(transaction=False)
            for key in keys[start : start + 1000]:
                pipe.memory_usage(key, samples=0)
            total += sum(v or 0 for v in pipe.execute())
        return total / n


def timed(run: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def measure(layout: Layout, args: argparse.Namespace) -> dict[str, float]:
    out: dict[str, float] = {}
    layout.clear()
    for _ in range(50):  # warm-up
        layout.add(1)
    layout.clear()
    out["single_adds_per_s"] = timed(lambda: [layout.add(1) for _ in range(args.single)], args.single)
    layout.clear()
    out["bulk_adds_per_s"] = timed(lambda: [layout.add(CHUNK) for _ in range(args.bulk // CHUNK)], args.bulk)
    layout.clear()
    for _ in range(args.work // CHUNK):
        layout.add(CHUNK)
    out["claim_complete_per_s"] = timed(lambda: [layout.claim_complete() for _ in range(args.work)], args.work)
    layout.clear()
    for _ in range(args.mem_n // CHUNK):
        layout.add(CHUNK)
    out["bytes_per_waiting_job"] = layout.bytes_per_job(args.mem_n)
    layout.clear()
    return out


METRICS = (
    ("single_adds_per_s", "single adds/s"),
    ("bulk_adds_per_s", "bulk adds/s (500 per call)"),
    ("claim_complete_per_s", "claim+complete/s"),
    ("bytes_per_waiting_job", "bytes per waiting job"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--old-commit", default="5b10c95")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--single", type=int, default=3000)
    parser.add_argument("--bulk", type=int, default=20_000)
    parser.add_argument("--work", type=int, default=3000)
    parser.add_argument("--mem-n", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="small N and 3 runs (a smoke run)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if args.quick:
        args.runs, args.single, args.bulk, args.work, args.mem_n = 3, 500, 5000, 500, 5000
    client = redis.Redis.from_url(args.url, decode_responses=True)
    layouts = [
        Layout("old", client, old_sources(args.old_commit)),
        Layout("new", client, {n: scripts()[n].source for n in SCRIPTS}),
    ]
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for run in range(args.runs):
        for layout in layouts if run % 2 == 0 else layouts[::-1]:
            runs[layout.name].append(measure(layout, args))
    report: dict[str, Any] = {
        "benchmark": "declared_keys",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": _results.command_line(),
        "url": re.sub(r"//[^@]*@", "//***@", args.url),
        "old_commit": args.old_commit,
        "settings": {k: getattr(args, k) for k in ("runs", "single", "bulk", "work", "mem_n")},
        "old": {k: _results.summary([r[k] for r in runs["old"]]) for k, _ in METRICS},
        "new": {k: _results.summary([r[k] for r in runs["new"]]) for k, _ in METRICS},
        "ratio_new_over_old": {
            k: statistics.median(n[k] / o[k] for o, n in zip(runs["old"], runs["new"], strict=True)) for k, _ in METRICS
        },
    }
    lines = [
        "# Declared keys: old layout vs new, same run",
        "",
        f"Redis {client.info('server')['redis_version']} at {report['url']}; old = scripts of {args.old_commit}, "
        f"new = this checkout; {args.runs} runs, layouts alternating; medians (min-max); ratio = new / old, "
        "run by run, median.",
        "",
        "| metric | old layout | new layout | new / old |",
        "|---|---|---|---|",
    ]
    for key, label in METRICS:
        o, n = report["old"][key], report["new"][key]
        lines.append(
            f"| {label} | {o['median']:,.0f} ({o['min']:,.0f}-{o['max']:,.0f}) | "
            f"{n['median']:,.0f} ({n['min']:,.0f}-{n['max']:,.0f}) | {report['ratio_new_over_old'][key]:.2f}x |"
        )
    lines += ["", f"Command: `{report['command']}`", ""]
    _results.write_results(args.out, "declared-keys", report, "\n".join(lines))


if __name__ == "__main__":
    main()
