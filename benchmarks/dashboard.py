"""Time per dashboard page on a queue of 1,000,000 jobs (the dashboard issue's target: < 50 ms).

Fills one queue with ``--jobs`` waiting jobs (plus a few hundred completed, failed and
dead-lettered ones, and a few schedules), then asks the dashboard (in process, through Starlette's TestClient: routing,
reads and template rendering, no network) for each page ``--runs`` times and reports the median
and p95 per page (the target is judged on the median; the first page after start, which finds the
queues with a SCAN of the keyspace, is reported on its own). Pages deep in the listing cost what
the first page costs because the engine pages by rank (LRANGE / ZRANGE), never by scanning.

    .venv/bin/python benchmarks/dashboard.py [--jobs 1000000] [--runs 30] [--url redis://127.0.0.1:6379/13]
    make bench-dashboard

The queue lives under the key prefix ``jqc-bench-dashboard``, which the benchmark deletes at the end
(unless ``--keep``; a kept queue of the right size is reused by the next run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from _results import command_line, delete_matching, machine_info, percentile, write_results
from starlette.testclient import TestClient

import jqc
import jqc.dashboard

PREFIX = "jqc-bench-dashboard"
QUEUE = "big"
TARGET_MS = 50.0
EXTRA = 600  # finished jobs (completed, failed and dead-lettered) besides the waiting ones
SCHEDULES = 20  # the schedules page's rows


def fill(conn: jqc.Connection, jobs: int) -> float:
    """Add ``jobs`` waiting jobs (and a few finished and dead ones); returns the seconds it took."""
    queue = conn.queue(QUEUE)
    started = time.perf_counter()
    for i in range(SCHEDULES):
        if i % 2:
            queue.schedule(f"every-{i}", every=60 * i, job="sync", data={"n": i})
        else:
            queue.schedule(f"cron-{i}", cron=f"{i} 2 * * *", tz="Europe/Berlin", job="cleanup")
    queue.add_bulk(jqc.NewJob("report", {"n": i}) for i in range(EXTRA))
    for i in range(EXTRA):
        claimed = queue.claim("bench").jobs[0]
        if i % 3 == 0:
            queue.complete(claimed, {"ok": True})
        else:
            queue.fail(claimed, "benchmark failure", retry=False, code="timeout" if i % 2 else "error")
    chunk = 10_000
    for start in range(0, jobs, chunk):
        queue.add_bulk(
            jqc.NewJob("resize", {"user": f"user-{i}", "n": i}) for i in range(start, min(jobs, start + chunk))
        )
        if start % 100_000 == 0:
            print(f"filled {start:,} of {jobs:,}", file=sys.stderr)
    return time.perf_counter() - started


def pages(jobs: int) -> dict[str, str]:
    """The pages timed, by label."""
    deep = (jobs // 2) // 50 * 50
    last = max(0, (jobs - 1) // 50 * 50)
    middle = EXTRA + jobs // 2  # an automatic id: the finished jobs came first
    newest = EXTRA + jobs  # the last job added: its events are the stream's newest
    return {
        "overview": "/",
        "queue, first page": f"/queues/{QUEUE}",
        f"queue, page at offset {deep:,}": f"/queues/{QUEUE}?state=waiting&offset={deep}",
        f"queue, last page (offset {last:,})": f"/queues/{QUEUE}?state=waiting&offset={last}",
        "search step (500 entries scanned)": f"/queues/{QUEUE}?state=waiting&q=no-such-user",
        "search by id": f"/queues/{QUEUE}?state=waiting&q={middle}",
        "failed jobs, first page": f"/queues/{QUEUE}?state=failed",
        "dead letters, code filter": f"/queues/{QUEUE}?state=dead&code=timeout",
        "job page, newest job (its timeline in the first read)": f"/queues/{QUEUE}/job?id={newest}",
        "job page, old job (its events trimmed from the stream)": f"/queues/{QUEUE}/job?id={middle}",
        "workers": "/workers",
        f"schedules ({SCHEDULES})": "/schedules",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("JQC_BENCH_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the filled queue for the next run")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()

    conn = jqc.connect(args.url, prefix=PREFIX)
    queue = conn.queue(QUEUE)
    counts = queue.counts()
    fill_seconds = None
    if counts.waiting != args.jobs:
        if counts.total:
            queue.obliterate(force=True)
        fill_seconds = fill(conn, args.jobs)
    counts = queue.counts()
    client = TestClient(jqc.dashboard.app(conn))
    client.__enter__()  # one event loop for every request, as under uvicorn
    started = time.perf_counter()
    assert client.get("/").status_code == 200
    cold_ms = (time.perf_counter() - started) * 1000  # the first page finds the queues with SCAN
    rows: list[dict[str, Any]] = []
    for label, path in pages(args.jobs).items():
        reply = client.get(path)
        assert reply.status_code == 200, (path, reply.status_code)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            reply = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert reply.status_code == 200
        rows.append({"page": label, "path": path, "median_ms": percentile(times, 50), "p95_ms": percentile(times, 95)})
    client.__exit__(None, None, None)

    server: dict[str, Any] = {}
    if not conn.embedded:
        server = conn.sync_client().info("server")
    report = {
        "machine": machine_info(server, conn.safe_url, backend=conn.kind),
        "command": command_line(("JQC_BENCH_URL",)),
        "jobs": args.jobs,
        "counts": {"waiting": counts.waiting, "completed": counts.completed, "failed": counts.failed},
        "fill_seconds": fill_seconds,
        "runs": args.runs,
        "target_ms": TARGET_MS,
        "first_overview_ms": cold_ms,
        "pages": rows,
    }
    lines = [
        f"# Dashboard pages on a {args.jobs:,}-job queue ({conn.kind}, {args.runs} requests per page)",
        "",
        f"`{report['command']}`",
        "",
        "| page | median ms | p95 ms | median under 50 ms |",
        "|---|---:|---:|---|",
    ]
    lines += [
        f"| {r['page']} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {'yes' if r['median_ms'] < TARGET_MS else 'NO'} |"
        for r in rows
    ]
    lines += [
        "",
        f"The first page after the dashboard starts took {cold_ms:,.0f} ms: it finds the queues with a SCAN of the"
        " whole keyspace (no list of queues is kept); later pages use the names found, rediscovered in the"
        " background every 10 s. Machine load (1 min) at the start: "
        f"{report['machine']['loadavg_1min_start']}.",
    ]
    write_results(args.out, "dashboard" if not conn.embedded else "dashboard-embedded", report, "\n".join(lines) + "\n")
    if not args.keep:
        if conn.embedded:
            queue.obliterate(force=True)
        else:
            delete_matching(conn.sync_client(), f"{PREFIX}:*")
    return 0 if all(r["median_ms"] < TARGET_MS for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
