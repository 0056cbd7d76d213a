#!/usr/bin/env python3
"""Cluster benchmark: jqc with many queues on one plain Redis and on Redis Clusters of 1, 2 and 3
masters, side by side in one run.

Every deployment is started by this script from the installed ``redis-server`` on free loopback
ports of its own (7112-7199, :mod:`jqc.testing.topology`; no replicas, no persistence) and killed
at the end, so the shared servers are never touched. On each, in turn (the order rotates between
runs):

1. **adds/s**: ``--producers`` processes add ``--jobs`` jobs in all, one ``Queue.add`` at a time,
   round-robin over ``--queues`` queues (whose hash tags spread them over the masters);
2. **processed/s**: ``--consumers`` processes claim and complete them, 10 at a time per queue
   (``claim`` 10, then ``complete_many`` of the 10 held jobs claiming the next 10, one round trip
   per 10 jobs), queue after queue, until every queue is empty.

Also recorded: how the commands spread over the masters (``INFO stats``) and the CPU time the
busiest master spent per 1,000 jobs (``INFO cpu``): what a master must do for the workload, which
more masters divide between them whatever the clients' speed.

A rate is the jobs over the time from the first process's start to the last one's end (each
process connects and warms up before a common start), with the scale-out factor (3 masters against
1, the same run) and the 1-minute load average around each measurement. Every
measurement is repeated ``--runs`` times; the report gives the median and min-max. Results go to
benchmarks/results/cluster-latest.{json,md}.

The client processes and the servers share the machine's cores: a cluster can only add throughput
when the servers, not the clients, are the bottleneck and there are cores to run more of them.

With ``--baseline DIR`` (another jqc source tree) the single server is also measured with that
jqc, in the same run, for a before/after ratio of a change to the scripts (``single vs single
baseline``).

    .venv/bin/python benchmarks/cluster.py [--quick] [--runs 3] [--jobs 20000] [--queues 64] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _results import command_line, machine_info, summary, write_results

import jqc

if TYPE_CHECKING:
    from jqc.testing.topology import LocalServer

PAYLOAD = {"photoId": "123", "pipeline": "thumbnail"}
PORTS = range(7112, 7200)
DEPLOYMENTS = ("single", "cluster-1", "cluster-2", "cluster-3")  # (and single-baseline, with --baseline)
OUT = Path(__file__).resolve().parent / "results"


# -- the deployments ---------------------------------------------------------------------------


class Single:
    """One plain redis-server (no cluster mode), as a baseline."""

    def __init__(self, workdir: Path) -> None:
        from jqc.testing.topology import LocalRedis  # (parent only: a --baseline tree may not have it)

        self.topology = LocalRedis(ports=PORTS, workdir=workdir).start()
        self.url = self.topology.url
        self.masters = [self.topology.server]

    def stop(self) -> None:
        self.topology.stop()


class Cluster:
    """A cluster of ``n`` masters and no replicas."""

    def __init__(self, n: int, workdir: Path) -> None:
        from jqc.testing.topology import LocalCluster

        self.topology = LocalCluster(n, 0, ports=PORTS, workdir=workdir).start()
        self.url = self.topology.url
        self.masters = self.topology.masters()

    def stop(self) -> None:
        self.topology.stop()


def start(kind: str, workdir: Path) -> Single | Cluster:
    return Single(workdir) if kind.startswith("single") else Cluster(int(kind.split("-")[1]), workdir)


def counters(masters: list[LocalServer]) -> list[tuple[int, float]]:
    """(commands processed, CPU seconds used) of each master so far."""
    out = []
    for master in masters:
        with master.client() as client:
            cpu = client.info("cpu")
            out.append(
                (int(client.info("stats")["total_commands_processed"]), cpu["used_cpu_user"] + cpu["used_cpu_sys"])
            )
    return out


# -- the client processes ----------------------------------------------------------------------


def _connect(url: str) -> jqc.Connection:
    conn = jqc.connect(url, prefix="bench")
    conn.ping()
    return conn


def produce(url: str, names: list[str], n: int, offset: int, start_at: float) -> tuple[float, float, int, str]:
    """Add ``n`` jobs round-robin over ``names`` (starting at ``offset``) from ``start_at`` on."""
    conn = _connect(url)
    queues = [conn.queue(name) for name in names]
    for queue in queues:  # (loads the script on every master, outside the timing)
        queue.counts()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    for i in range(n):
        queues[(offset + i) % len(queues)].add("thumbnail", dict(PAYLOAD))
    t1 = time.monotonic()
    conn.close()
    return t0, t1, n, str(Path(jqc.__file__).parent.parent)


def consume(url: str, names: list[str], offset: int, start_at: float) -> tuple[float, float, int, str]:
    """Claim and complete 10 at a time, queue after queue from ``offset``, until all are empty."""
    conn = _connect(url)
    queues = [conn.queue(name) for name in names]
    worker = f"bench-{os.getpid()}"
    for queue in queues:
        queue.counts()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    done, idle = 0, 0
    i = offset
    while idle < len(queues):
        queue = queues[i % len(queues)]
        i += 1
        held = list(queue.claim(worker, count=10).jobs)
        idle = 0 if held else idle + 1
        while held:
            result = queue.complete_many([(c, None) for c in held], fetch_next=10, worker=worker)
            done += len(result.completed)
            held = list(result.next.jobs) if result.next is not None else []
    t1 = time.monotonic()
    conn.close()
    return t0, t1, done, str(Path(jqc.__file__).parent.parent)


def _parallel(
    pool: Any, fn: Callable[..., tuple[float, float, int, str]], calls: list[tuple[Any, ...]]
) -> tuple[float, int, str]:
    """Run ``fn`` once per call in the pool; the rate over the whole span, the jobs, jqc's source tree."""
    spans = pool.starmap(fn, calls)
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    sources = {s[3] for s in spans}
    assert len(sources) == 1, sources
    return sum(s[2] for s in spans) / (last - first), sum(s[2] for s in spans), sources.pop()


def measure(kind: str, args: argparse.Namespace, pool: Any, workdir: Path) -> dict[str, Any]:
    """One run on a fresh deployment of ``kind``: adds/s, processed/s, the spread over masters."""
    deployment = start(kind, workdir / f"{kind}-{time.monotonic_ns()}")
    try:
        names = [f"q{n:03d}" for n in range(args.queues)]
        before = counters(deployment.masters)
        load = os.getloadavg()[0]
        per = args.jobs // args.producers
        lead = 1.0  # seconds for the processes to connect and warm up before the common start
        calls = [(deployment.url, names, per, p * 7, time.monotonic() + lead) for p in range(args.producers)]
        adds, added, source = _parallel(pool, produce, calls)
        starts = time.monotonic() + lead
        offsets = [c * args.queues // args.consumers for c in range(args.consumers)]
        processed, done, _ = _parallel(pool, consume, [(deployment.url, names, o, starts) for o in offsets])
        if done != added:
            raise RuntimeError(f"{kind}: processed {done} jobs of {added}")
        after = counters(deployment.masters)
        spread = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
        cpu = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
        return {
            "adds": adds,
            "processed": processed,
            "commands_per_master": spread,
            "busiest_master_cpu_ms_per_1000_jobs": 1e6 * max(cpu) / added,
            "loadavg_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
            "jqc_source": os.path.relpath(source) if os.path.isabs(source) else source,  # no machine paths in results
        }
    finally:
        deployment.stop()


# -- the report --------------------------------------------------------------------------------


def _fmt(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    rows: dict[str, Any] = {}
    for kind, runs in results.items():
        total = [sum(r["commands_per_master"]) for r in runs]
        shares = [[c / t for c in r["commands_per_master"]] for r, t in zip(runs, total, strict=True)]
        rows[kind] = {
            "adds_per_s": summary([r["adds"] for r in runs]),
            "processed_per_s": summary([r["processed"] for r in runs]),
            "command_share_per_master": [
                round(sum(s[i] for s in shares) / len(shares), 3) for i in range(len(shares[0]))
            ],
            "busiest_master_cpu_ms_per_1000_jobs": summary([r["busiest_master_cpu_ms_per_1000_jobs"] for r in runs]),
            "loadavg_1min_before_after": [r["loadavg_1min"] for r in runs],
            "jqc_source": runs[0]["jqc_source"],
        }

    def ratio(a: str, b: str, metric: str) -> dict[str, Any] | None:
        if a not in results or b not in results:
            return None
        return summary([x[metric] / y[metric] for x, y in zip(results[a], results[b], strict=True)])

    metrics = ("adds", "processed", "busiest_master_cpu_ms_per_1000_jobs")
    factors = {
        "scale_out_3_vs_1_masters": {m: ratio("cluster-3", "cluster-1", m) for m in metrics},
        "scale_out_2_vs_1_masters": {m: ratio("cluster-2", "cluster-1", m) for m in metrics},
        "cluster_1_vs_single": {m: ratio("cluster-1", "single", m) for m in metrics},
        "single_vs_single_baseline": {m: ratio("single", "single-baseline", m) for m in metrics},
    }
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    machine = machine_info(server_info(), "own servers on 127.0.0.1:7112-7199", date=date)
    data = {
        "benchmark": "cluster",
        "command": command_line(),
        "machine": machine,
        "params": {k: getattr(args, k) for k in ("runs", "jobs", "queues", "producers", "consumers")},
        "deployments": rows,
        "factors": factors,
    }
    lines = [
        f"# jqc on one Redis and on Redis Clusters of 1-3 masters ({date})",
        "",
        f"`{data['command']}`: {args.jobs:,} jobs over {args.queues} queues, {args.producers} producer and "
        f"{args.consumers} consumer processes, {args.runs} run(s), median (min-max); machine: "
        f"{machine['nproc']} CPUs, Redis {machine['redis_version']}.",
        "",
        "| deployment | adds/s | processed/s | share of commands per master | busiest master's CPU ms per 1,000 jobs |",
        "|---|---|---|---|---|",
    ]
    for kind, row in rows.items():
        share = " / ".join(f"{s:.0%}" for s in row["command_share_per_master"])
        cpu = row["busiest_master_cpu_ms_per_1000_jobs"]
        cells = f"{_fmt(row['adds_per_s'])} | {_fmt(row['processed_per_s'])} | {share} | {cpu['median']:.0f}"
        lines.append(f"| {kind} | {cells} |")
    loads = [x for row in rows.values() for pair in row["loadavg_1min_before_after"] for x in pair]
    lines += ["", f"1-minute load average during the measurements: {min(loads):.1f}-{max(loads):.1f}."]
    lines += ["", "| factor (same run) | adds | processed | busiest master's CPU per job |", "|---|---|---|---|"]
    for name, pair in factors.items():
        cells = [f"{p['median']:.2f} ({p['min']:.2f}-{p['max']:.2f})" if p else "-" for p in pair.values()]
        lines.append(f"| {name.replace('_', ' ')} | {' | '.join(cells)} |")
    return data, "\n".join(lines) + "\n"


def server_info() -> dict[str, Any]:
    """``INFO server`` of a throwaway redis-server (for the machine block: the version run)."""
    from jqc.testing.topology import LocalRedis

    with LocalRedis(ports=PORTS) as topology:
        assert isinstance(topology, LocalRedis)
        with topology.start().server.client() as client:
            return dict(client.info("server"))


@contextlib.contextmanager
def _baseline_pool(ctx: Any, size: int, tree: str | None) -> Iterator[Any]:
    """A pool whose processes import jqc from ``tree`` (spawned children take the parent's
    sys.path, so it goes first while they start); None without one."""
    if tree is None:
        yield None
        return
    sys.path.insert(0, str(Path(tree).resolve()))
    try:
        pool = ctx.Pool(size)
    finally:
        sys.path.pop(0)
    with pool:
        yield pool


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per deployment and run")
    parser.add_argument("--queues", type=int, default=64)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=DEPLOYMENTS, default=list(DEPLOYMENTS))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 run, 2,000 jobs")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="another jqc source tree (for example `git archive main | tar -x -C /tmp/jqc-main`): the\n"
        "single server is measured with it too, in the same run (deployment single-baseline)",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.jobs = 1, 2000
    if args.baseline:
        args.only = [*args.only, "single-baseline"]
    workdir = Path(tempfile.mkdtemp(prefix="jqc-bench-cluster-"))
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in args.only}
    ctx = multiprocessing.get_context("spawn")
    size = max(args.producers, args.consumers)
    with ctx.Pool(size) as pool, _baseline_pool(ctx, size, args.baseline) as baseline:
        for run in range(args.runs):
            order = args.only[run % len(args.only) :] + args.only[: run % len(args.only)]
            for kind in order:
                got = measure(kind, args, baseline if kind == "single-baseline" else pool, workdir)
                results[kind].append(got)
                rates = f"{got['adds']:,.0f} adds/s, {got['processed']:,.0f} processed/s"
                print(f"run {run + 1}/{args.runs} {kind}: {rates}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    data, md = report(results, args)
    write_results(args.out, "cluster", data, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
