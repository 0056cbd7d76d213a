"""The queue commands: ``add``, ``stats``, ``jobs``, ``job``, ``retry``, ``promote``, ``pause`` and ``resume``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import jqc
from jqc.engine.job import MAX_PRIORITY, Job

from .arguments import Subparsers, add_json, add_queue, add_url
from .guards import existing_queue
from .output import emit_json, job_json, local_time, ms, rich_table, show, styled
from .validators import instant, job_data

__all__ = ["NO_SAMPLES", "STATES", "STATS_HEADERS", "QueueStats", "add_parsers", "attempts", "last_error"]

STATES = ("waiting", "delayed", "active", "completed", "failed")
NO_SAMPLES = "n/a"  # a percentile over no samples: no job finished in the window


def attempts(job: Job) -> str:
    """``failed of allowed`` with what is left, the way every command shows a job's attempts."""
    return f"{job.failed_attempts} of {job.options.attempts} failed, {job.attempts_left} left"


def last_error(job: Job) -> str | None:
    """The last failure as ``code: message`` (None when the job never failed)."""
    if job.failure_reason is None and job.failure_code is None:
        return None
    if not job.failure_reason:
        return str(job.failure_code)
    return f"{job.failure_code or '?'}: {job.failure_reason}"


def _job_rows(jobs: Sequence[Job]) -> list[list[Any]]:
    return [
        [j.id, j.name, styled(j.state.value), j.options.priority, j.runs, f"{j.failed_attempts}/{j.options.attempts}",
         last_error(j)]
        for j in jobs
    ]  # fmt: skip


def cmd_add(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    data = job_data(args.data, args.data_source)  # read and checked before anything is written
    options = jqc.JobOptions(
        job_id=args.job_id, delay=args.delay, priority=args.priority, attempts=args.attempts, lifo=args.lifo
    )
    job = existing_queue(args, conn, create=args.create).add(args.name, data, options)
    if args.json:
        emit_json(out, job_json(job))
    else:
        out.write(f"{job.id}\n")
    return 0


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What ``jqc stats`` reports for one queue. A percentile is None when no job finished in the
    window (no samples), shown as ``n/a``."""

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
            self.throughput_per_min, f"{100 * self.error_rate:.1f}", ms(self.wait_p50_s, missing=NO_SAMPLES),
            ms(self.wait_p95_s, missing=NO_SAMPLES), ms(self.run_p95_s, missing=NO_SAMPLES),
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
        caption = f"metrics over the last {args.window} min"
        if any(r.wait_p50_s is None or r.run_p95_s is None for r in report):
            caption += f"; {NO_SAMPLES}: no job finished in the window, so no wait or run samples"
        show(out, rich_table([r.row() for r in report], STATS_HEADERS, caption=caption))
    return 0


def cmd_jobs(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    page = conn.queue(args.queue).list_jobs(args.state, args.offset, args.limit, newest_first=args.newest_first)
    if args.json:
        emit_json(out, {"total": page.total, "jobs": [job_json(j) for j in page.jobs], "corrupt": page.corrupt})
        return 0
    shown = f"{args.offset + 1}-{args.offset + len(page.jobs)}" if page.jobs else "none"
    headers = ["id", "name", "state", "priority", "runs", "failed/allowed", "last error"]
    show(out, rich_table(_job_rows(page.jobs), headers, caption=f"({shown} of {page.total} {args.state})"))
    for job_id, reason in page.corrupt:
        out.write(f"corrupt job {job_id}: {reason}\n")
    return 0


def job_table(job: Job, logs: Sequence[str], now: float) -> Any:
    """One job as a two-column table: when (local time and age), state, counters, last error, worker."""
    o = job.options
    rows: list[list[Any]] = [
        ["id", job.id],
        ["queue", job.queue],
        ["name", job.name],
        ["state", styled(job.state.value)],
        ["priority", o.priority],
        ["created", local_time(job.created_at, now)],
        ["ready", local_time(job.ready_at, now)],
        ["started", local_time(job.started_at, now)],
        ["finished", local_time(job.finished_at, now)],
        ["runs", job.runs],
        ["attempts", attempts(job)],
        ["stalls", job.stall_count],
        ["last error", last_error(job)],
        ["worker", job.worker],
        ["retried / replayed", f"{job.retried} / {job.replayed}"],
        ["progress", None if job.progress is None else json.dumps(job.progress)],
        ["data", json.dumps(job.data)],
        ["result", None if job.result is None else json.dumps(job.result)],
    ]
    if o.backoff is not None:
        rows.append(["backoff", json.dumps(o.backoff.to_json())])
    if o.timeout is not None:
        rows.append(["timeout", f"{o.timeout:g} s"])
    rows += [["log", line] for line in logs]
    return rich_table(rows, ["field", "value"])


def cmd_job(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = conn.queue(args.queue)
    job = queue.get_job(args.id)
    if job is None:
        raise jqc.JobNotFoundError(f"no job {args.id!r} in queue {args.queue!r}")
    logs = queue.job_logs(args.id)
    if args.json:
        emit_json(out, {"job": job_json(job), "logs": logs})
        return 0
    show(out, job_table(job, logs, queue.clock.now()))
    if job.traceback and args.traceback:
        out.write(job.traceback.rstrip() + "\n")
    return 0


def cmd_retry(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    if not args.all and not args.ids:
        raise jqc.InvalidOptionError("name job ids to retry, or pass --all")
    if args.ids and (args.before is not None or args.state != "failed"):
        raise jqc.InvalidOptionError("--state and --before choose jobs for --all; named jobs are retried as they are")
    queue = existing_queue(args, conn)
    reset = not args.keep_attempts
    if args.all and args.state == "completed":
        ids = queue.retry_completed(before=args.before, reset_attempts=reset)
    elif args.all:
        ids = queue.retry_failed(before=args.before, reset_attempts=reset)
    else:
        for job_id in args.ids:
            queue.retry(job_id, reset_attempts=reset)
        ids = list(args.ids)
    if args.json:
        emit_json(out, ids)
    else:
        out.write(f"retried {len(ids)} job(s)\n")
    return 0


def cmd_promote(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    if args.all == bool(args.ids):
        raise jqc.InvalidOptionError("name delayed job ids to promote, or pass --all (not both)")
    queue = existing_queue(args, conn)
    if args.all:
        ids = queue.promote_all()
    else:
        for job_id in args.ids:
            queue.promote(job_id)
        ids = list(args.ids)
    if args.json:
        emit_json(out, ids)
    else:
        out.write(f"promoted {len(ids)} job(s)\n")
    return 0


def cmd_pause(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    pausing = args.command == "pause"
    queue = existing_queue(args, conn, create=getattr(args, "create", False))
    changed = queue.pause() if pausing else queue.resume()
    state = "paused" if pausing else "resumed"
    if args.json:
        emit_json(out, {"queue": args.queue, "paused": pausing, "changed": changed})
    else:
        out.write(f"{args.queue} {state}\n" if changed else f"{args.queue} was already {state}\n")
    return 0


def add_parsers(sub: Subparsers) -> None:
    """Register ``add``, ``stats``, ``jobs``, ``job``, ``retry``, ``promote``, ``pause`` and ``resume``."""
    p = sub.add_parser("add", help="add a job")
    add_queue(p)
    p.add_argument("name")
    p.add_argument("data", nargs="?", help="job data as JSON (or use --data)")
    p.add_argument(
        "--data", dest="data_source", metavar="JSON|@FILE|-", help="job data: JSON text, @FILE (a file) or - (stdin)"
    )
    p.add_argument("--job-id")
    p.add_argument("--delay", type=float, default=0.0, help="seconds")
    p.add_argument(
        "--priority",
        type=int,
        default=0,
        help=f"lower runs first: negative before the default 0, positive after (-{MAX_PRIORITY}..{MAX_PRIORITY})",
    )
    p.add_argument("--attempts", type=int, default=1, help="failed attempts allowed in all (default 1)")
    p.add_argument("--lifo", action="store_true")
    p.add_argument("--create", action="store_true", help="create the queue if it does not exist yet")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_add)

    p = sub.add_parser("stats", help="counts per state, throughput and latency per queue")
    add_queue(p, "queues", nargs="*", help="queues (default: every queue found with SCAN)")
    p.add_argument("--window", type=int, default=60, help="minutes of metrics (default 60)")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("jobs", help="list the jobs of a queue in one state")
    add_queue(p)
    p.add_argument("--state", choices=STATES, default="waiting")
    p.add_argument("--newest-first", action="store_true", help="waiting jobs: the one that would run last first")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_jobs)

    p = sub.add_parser("job", help="show one job: times, state, runs and attempts, last error, worker, log")
    add_queue(p)
    p.add_argument("id")
    p.add_argument("--traceback", action="store_true", help="also print the last failure's traceback")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_job)

    p = sub.add_parser("retry", help="send failed (or completed) jobs back to waiting")
    add_queue(p)
    p.add_argument("ids", nargs="*")
    p.add_argument("--all", action="store_true", help="every job in --state (default failed)")
    p.add_argument("--state", choices=("failed", "completed"), default="failed", help="which jobs --all retries")
    p.add_argument(
        "--before", type=instant, metavar="TIME", help="with --all: only jobs that finished at or before TIME"
    )
    p.add_argument(
        "--keep-attempts", action="store_true", help="keep the failed-attempt count (one more run) instead of a reset"
    )
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_retry)

    p = sub.add_parser("promote", help="make delayed jobs wait now")
    add_queue(p)
    p.add_argument("ids", nargs="*")
    p.add_argument("--all", action="store_true", help="every delayed job, soonest due first")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_promote)

    for name, text in (("pause", "stop workers claiming from a queue"), ("resume", "let workers claim again")):
        p = sub.add_parser(name, help=text)
        add_queue(p)
        if name == "pause":
            p.add_argument("--create", action="store_true", help="create the queue paused if it does not exist yet")
        add_url(p)
        add_json(p)
        p.set_defaults(handler=cmd_pause)
