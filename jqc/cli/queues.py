"""The queue commands: ``add``, ``stats``, ``jobs``, ``job``, ``retry``, ``pause`` and ``resume``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

import jqc
from jqc.engine.job import Job

from .arguments import Subparsers, add_json, add_url
from .output import emit_json, jsonable, ms, table
from .validators import json_data

__all__ = ["STATES", "STATS_HEADERS", "QueueStats", "add_parsers"]

STATES = ("waiting", "delayed", "active", "completed", "failed")


def _job_rows(jobs: Sequence[Job]) -> list[list[Any]]:
    return [[j.id, j.name, j.state.value, j.options.priority, j.attempts_made, j.failure_reason or ""] for j in jobs]


def cmd_add(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    data = json_data(args.data)
    options = jqc.JobOptions(
        job_id=args.job_id, delay=args.delay, priority=args.priority, attempts=args.attempts, lifo=args.lifo
    )
    job = conn.queue(args.queue).add(args.name, data, options)
    if args.json:
        emit_json(out, job)
    else:
        out.write(f"{job.id}\n")
    return 0


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What ``jqc stats`` reports for one queue."""

    queue: str
    counts: jqc.Counts
    throughput_per_min: float
    error_rate: float
    wait_p50_s: float | None
    wait_p95_s: float | None
    run_p50_s: float | None
    run_p95_s: float | None

    @classmethod
    def read(cls, queue: jqc.Queue, window: int) -> QueueStats:
        metrics = queue.metrics(window)
        return cls(
            queue=queue.name,
            counts=queue.counts(),
            throughput_per_min=round(metrics.throughput_per_minute, 2),
            error_rate=round(metrics.error_rate, 4),
            wait_p50_s=metrics.wait.percentile(50),
            wait_p95_s=metrics.wait.percentile(95),
            run_p50_s=metrics.run.percentile(50),
            run_p95_s=metrics.run.percentile(95),
        )

    def row(self) -> list[Any]:
        c = self.counts
        return [
            self.queue, c.waiting, c.delayed, c.active, c.completed, c.failed, c.dead, "yes" if c.paused else "no",
            self.throughput_per_min, f"{100 * self.error_rate:.1f}", ms(self.wait_p50_s), ms(self.wait_p95_s),
            ms(self.run_p95_s),
        ]  # fmt: skip


STATS_HEADERS = ["queue", "waiting", "delayed", "active", "completed", "failed", "dead", "paused", "jobs/min", "err%"]
STATS_HEADERS += ["wait p50 ms", "wait p95 ms", "run p95 ms"]


def cmd_stats(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    report = [QueueStats.read(conn.queue(name), args.window) for name in args.queues or conn.queue_names()]
    if args.json:
        emit_json(out, report)
    elif not report:
        out.write("no queues\n")
    else:
        out.write(table([r.row() for r in report], STATS_HEADERS) + f"\n(metrics over the last {args.window} min)\n")
    return 0


def cmd_jobs(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    page = conn.queue(args.queue).list_jobs(args.state, args.offset, args.limit)
    if args.json:
        emit_json(out, page)
        return 0
    out.write(table(_job_rows(page.jobs), ["id", "name", "state", "priority", "attempts", "failure"]) + "\n")
    shown = f"{args.offset + 1}-{args.offset + len(page.jobs)}" if page.jobs else "none"
    out.write(f"({shown} of {page.total} {args.state})\n")
    for job_id, reason in page.corrupt:
        out.write(f"corrupt job {job_id}: {reason}\n")
    return 0


def cmd_job(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = conn.queue(args.queue)
    job = queue.get_job(args.id)
    if job is None:
        raise jqc.JobNotFoundError(f"no job {args.id!r} in queue {args.queue!r}")
    logs = queue.job_logs(args.id)
    if args.json:
        emit_json(out, {"job": job, "logs": logs})
        return 0
    for key, value in asdict(job).items():
        if key == "options":
            value = {k: v for k, v in value.items() if v not in (None, False, 0, 0.0)}
        out.write(f"{key:>15}: {jsonable(value)}\n")
    for line in logs:
        out.write(f"{'log':>15}: {line}\n")
    return 0


def cmd_retry(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = conn.queue(args.queue)
    if args.all:
        ids = queue.retry_failed()
    elif args.ids:
        for job_id in args.ids:
            queue.retry(job_id)
        ids = list(args.ids)
    else:
        raise jqc.InvalidOptionError("name job ids to retry, or pass --all")
    if args.json:
        emit_json(out, ids)
    else:
        out.write(f"retried {len(ids)} job(s)\n")
    return 0


def cmd_pause(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = conn.queue(args.queue)
    changed = queue.pause() if args.command == "pause" else queue.resume()
    state = "paused" if args.command == "pause" else "resumed"
    out.write(f"{args.queue} {state}\n" if changed else f"{args.queue} was already {state}\n")
    return 0


def add_parsers(sub: Subparsers) -> None:
    """Register ``add``, ``stats``, ``jobs``, ``job``, ``retry``, ``pause`` and ``resume``."""
    p = sub.add_parser("add", help="add a job")
    p.add_argument("queue")
    p.add_argument("name")
    p.add_argument("data", nargs="?", help="job data as JSON")
    p.add_argument("--job-id")
    p.add_argument("--delay", type=float, default=0.0, help="seconds")
    p.add_argument("--priority", type=int, default=0, help="0 runs first, then lower before higher")
    p.add_argument("--attempts", type=int, default=1)
    p.add_argument("--lifo", action="store_true")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_add)

    p = sub.add_parser("stats", help="counts per state, throughput and latency per queue")
    p.add_argument("queues", nargs="*", help="queues (default: every queue found with SCAN)")
    p.add_argument("--window", type=int, default=60, help="minutes of metrics (default 60)")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("jobs", help="list the jobs of a queue in one state")
    p.add_argument("queue")
    p.add_argument("--state", choices=STATES, default="waiting")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_jobs)

    p = sub.add_parser("job", help="show one job with its log")
    p.add_argument("queue")
    p.add_argument("id")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_job)

    p = sub.add_parser("retry", help="send failed jobs back to waiting")
    p.add_argument("queue")
    p.add_argument("ids", nargs="*")
    p.add_argument("--all", action="store_true", help="every failed job")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_retry)

    for name, text in (("pause", "stop workers claiming from a queue"), ("resume", "let workers claim again")):
        p = sub.add_parser(name, help=text)
        p.add_argument("queue")
        add_url(p)
        p.set_defaults(handler=cmd_pause)
