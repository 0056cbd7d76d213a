"""The ``jqc`` command line: operate queues from a shell.

Every command takes ``--url`` (default ``$JQC_REDIS_URL``, else the embedded backend, which lives only
as long as the command) and, where the output is data, ``--json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, TextIO

import jqc
from jqc.engine.job import DeadLetter, Job

STATES = ("waiting", "delayed", "active", "completed", "failed")
Handler = Callable[[argparse.Namespace, jqc.Connection, TextIO], int]


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (jqc.JobState, jqc.Code)):
        return value.name.lower() if isinstance(value, jqc.Code) else value.value
    return value


def _emit_json(out: TextIO, value: Any) -> None:
    out.write(json.dumps(_jsonable(value), indent=2, default=str) + "\n")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _job_rows(jobs: Sequence[Job]) -> list[list[Any]]:
    return [[j.id, j.name, j.state.value, j.options.priority, j.attempts_made, j.failure_reason or ""] for j in jobs]


# -- commands ---------------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    try:
        data = json.loads(args.data) if args.data is not None else None
    except json.JSONDecodeError as exc:
        raise jqc.DataNotJsonError(f"DATA is not valid JSON: {exc}") from exc
    options = jqc.JobOptions(
        job_id=args.job_id, delay=args.delay, priority=args.priority, attempts=args.attempts, lifo=args.lifo
    )
    job = conn.queue(args.queue).add(args.name, data, options)
    if args.json:
        _emit_json(out, job)
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
            self.throughput_per_min, f"{100 * self.error_rate:.1f}", _ms(self.wait_p50_s), _ms(self.wait_p95_s),
            _ms(self.run_p95_s),
        ]  # fmt: skip


STATS_HEADERS = ["queue", "waiting", "delayed", "active", "completed", "failed", "dead", "paused", "jobs/min", "err%"]
STATS_HEADERS += ["wait p50 ms", "wait p95 ms", "run p95 ms"]


def cmd_stats(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    report = [QueueStats.read(conn.queue(name), args.window) for name in args.queues or conn.queue_names()]
    if args.json:
        _emit_json(out, report)
    elif not report:
        out.write("no queues\n")
    else:
        out.write(table([r.row() for r in report], STATS_HEADERS) + f"\n(metrics over the last {args.window} min)\n")
    return 0


def cmd_jobs(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    page = conn.queue(args.queue).list_jobs(args.state, args.offset, args.limit)
    if args.json:
        _emit_json(out, page)
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
        _emit_json(out, {"job": job, "logs": logs})
        return 0
    for key, value in asdict(job).items():
        if key == "options":
            value = {k: v for k, v in value.items() if v not in (None, False, 0, 0.0)}
        out.write(f"{key:>15}: {_jsonable(value)}\n")
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
        _emit_json(out, ids)
    else:
        out.write(f"retried {len(ids)} job(s)\n")
    return 0


def cmd_pause(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = conn.queue(args.queue)
    changed = queue.pause() if args.command == "pause" else queue.resume()
    state = "paused" if args.command == "pause" else "resumed"
    out.write(f"{args.queue} {state}\n" if changed else f"{args.queue} was already {state}\n")
    return 0


def _dead_filter(args: argparse.Namespace) -> Callable[[DeadLetter], bool]:
    def match(letter: DeadLetter) -> bool:
        if args.reason and args.reason not in (letter.job.failure_reason or ""):
            return False
        if args.name and letter.job.name != args.name:
            return False
        if args.since is not None and letter.dead_at < args.since:
            return False
        return not (args.until is not None and letter.dead_at > args.until)

    return match


def _filtered(args: argparse.Namespace) -> bool:
    return bool(args.reason or args.name or args.since is not None or args.until is not None)


def cmd_dlq(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = conn.queue(args.queue)
    if args.action == "list":
        letters = queue.find_dead(_dead_filter(args), limit=args.limit)
        if args.json:
            _emit_json(out, letters)
            return 0
        rows = [[d.job.id, d.job.name, d.job.attempts_made, d.dead_at, d.worker, d.job.failure_reason] for d in letters]
        out.write(table(rows, ["id", "name", "attempts", "dead at", "worker", "reason"]) + "\n")
        return 0
    if args.action == "show":
        (job_id,) = args.ids or [None]
        letters = queue.find_dead(lambda d: d.job.id == job_id, limit=1)
        if not letters:
            raise jqc.JobNotFoundError(f"no dead letter for job {job_id!r} in queue {args.queue!r}")
        _emit_json(out, letters[0])
        return 0
    if args.ids:
        ids = list(args.ids)
    elif args.all or _filtered(args):
        ids = [d.job.id for d in queue.find_dead(_dead_filter(args))]
    else:
        raise jqc.InvalidOptionError(f"name job ids to {args.action}, pass a filter, or pass --all")
    if args.action == "replay":
        for job_id in ids:
            queue.replay_dead(job_id)
    elif args.all and not _filtered(args) and not args.ids:
        queue.purge_all_dead()
    else:
        for job_id in ids:
            queue.purge_dead(job_id)
    verb = "replayed" if args.action == "replay" else "purged"
    if args.json:
        _emit_json(out, ids)
    else:
        out.write(f"{verb} {len(ids)} dead letter(s)\n")
    return 0


def load_handler(spec: str) -> Any:
    """Import ``module:attribute`` (a handler, or a mapping of job names to handlers)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise jqc.InvalidOptionError(f"handler must be given as MODULE:FUNCTION, not {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`, find modules in the current directory
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise jqc.InvalidOptionError(f"cannot import {module_name!r}: {exc}") from exc
    target = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise jqc.InvalidOptionError(f"{module_name!r} has no attribute {attribute!r}") from None
    return target


def cmd_worker(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    handler = load_handler(args.handler_spec)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    queues = [conn.queue(name) for name in args.queue]
    observer = None
    if args.otel:
        from jqc.worker.tracing import TracingObserver  # raises MissingDependencyError without the extra

        observer = TracingObserver()
    worker = jqc.Worker(
        queues,
        handler,
        concurrency=args.concurrency,
        name=args.name,
        lock=args.lock,
        grace=args.grace,
        timeout=args.timeout,
        observer=observer,
    )
    stats = worker.run(burst=args.burst, delayed=args.burst)
    if args.json:
        _emit_json(out, stats)
    else:
        out.write(f"worker {worker.id} stopped: {stats}\n")
    return 0


def cmd_workers(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    workers = conn.queue(args.queue).workers()
    if args.json:
        _emit_json(out, workers)
        return 0
    now = conn.clock.now()
    rows = [
        [w.id, w.host, w.pid, ",".join(w.queues), f"{w.active}/{w.concurrency}", f"{now - w.last_seen:.1f}s ago"]
        for w in workers
    ]
    out.write(table(rows, ["worker", "host", "pid", "queues", "active", "last seen"]) + "\n")
    return 0


def cmd_sim(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    from jqc.sim.cli import main as sim_main

    return sim_main(args)


def cmd_demo(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    from jqc import demo

    return demo.main(args.photos, args.workers, args.url, args.json_path, args.concurrency)


# -- parser -----------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("JQC_REDIS_URL"),
        help="Redis URL: redis://, rediss://, unix:// (default: $JQC_REDIS_URL, else the embedded backend)",
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="print data as JSON")


def _dlq_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", help="only failures whose reason contains this text")
    parser.add_argument("--name", help="only jobs with this name")
    parser.add_argument("--since", type=float, help="only dead letters at or after this Unix time")
    parser.add_argument("--until", type=float, help="only dead letters at or before this Unix time")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jqc", description="jqc, the Job Queue Coordinator")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("add", help="add a job")
    p.add_argument("queue")
    p.add_argument("name")
    p.add_argument("data", nargs="?", help="job data as JSON")
    p.add_argument("--job-id")
    p.add_argument("--delay", type=float, default=0.0, help="seconds")
    p.add_argument("--priority", type=int, default=0, help="0 runs first, then lower before higher")
    p.add_argument("--attempts", type=int, default=1)
    p.add_argument("--lifo", action="store_true")
    _common(p)
    p.set_defaults(handler=cmd_add)

    p = sub.add_parser("stats", help="counts per state, throughput and latency per queue")
    p.add_argument("queues", nargs="*", help="queues (default: every queue found with SCAN)")
    p.add_argument("--window", type=int, default=60, help="minutes of metrics (default 60)")
    _common(p)
    p.set_defaults(handler=cmd_stats)

    p = sub.add_parser("jobs", help="list the jobs of a queue in one state")
    p.add_argument("queue")
    p.add_argument("--state", choices=STATES, default="waiting")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    _common(p)
    p.set_defaults(handler=cmd_jobs)

    p = sub.add_parser("job", help="show one job with its log")
    p.add_argument("queue")
    p.add_argument("id")
    _common(p)
    p.set_defaults(handler=cmd_job)

    p = sub.add_parser("retry", help="send failed jobs back to waiting")
    p.add_argument("queue")
    p.add_argument("ids", nargs="*")
    p.add_argument("--all", action="store_true", help="every failed job")
    _common(p)
    p.set_defaults(handler=cmd_retry)

    for name, text in (("pause", "stop workers claiming from a queue"), ("resume", "let workers claim again")):
        p = sub.add_parser(name, help=text)
        p.add_argument("queue")
        _common(p, json_output=False)
        p.set_defaults(handler=cmd_pause)

    p = sub.add_parser("dlq", help="dead letters: list, show, replay, purge")
    p.add_argument("action", choices=("list", "show", "replay", "purge"))
    p.add_argument("queue")
    p.add_argument("ids", nargs="*", help="job ids (show takes one)")
    p.add_argument("--all", action="store_true", help="replay or purge every matching dead letter")
    p.add_argument("--limit", type=int, default=None, help="list at most this many")
    _dlq_filters(p)
    _common(p)
    p.set_defaults(handler=cmd_dlq)

    p = sub.add_parser("worker", help="run a worker process for one or more queues")
    p.add_argument("handler_spec", metavar="MODULE:FUNCTION", help="handler, or a mapping of job names to handlers")
    p.add_argument("--queue", action="append", required=True, help="queue to work on (repeat for several)")
    p.add_argument("--concurrency", type=int, default=10, help="jobs in flight per queue (default 10)")
    p.add_argument("--name", help="worker name (default: the host name)")
    p.add_argument("--lock", type=float, default=30.0, help="lock duration in seconds (default 30)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds in-flight jobs get on SIGTERM (default 30)")
    p.add_argument("--timeout", type=float, default=None, help="default per-job timeout in seconds")
    p.add_argument("--burst", action="store_true", help="stop once no job is waiting, delayed or active")
    p.add_argument(
        "--otel",
        action="store_true",
        help="an OpenTelemetry span around every job run (needs jqc[otel] and a tracer provider set up by the "
        "handler module or opentelemetry-instrument)",
    )
    _common(p)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("workers", help="list the live workers of a queue")
    p.add_argument("queue")
    _common(p)
    p.set_defaults(handler=cmd_workers)

    p = sub.add_parser("demo", help="run the photo-pipeline demo (embedded backend by default)")
    p.add_argument("--photos", type=int, default=2000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8, help="jobs in flight per worker (default 8)")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="also write the summary as JSON")
    _common(p, json_output=False)
    p.set_defaults(handler=cmd_demo, owns_connection=True)

    from jqc.coordinator.cli import add_parsers as add_coordinator_parsers
    from jqc.sim.cli import add_parser as add_sim_parser

    add_coordinator_parsers(sub)
    add_sim_parser(sub).set_defaults(handler=cmd_sim, owns_connection=True)
    return parser


def main(
    argv: Sequence[str] | None = None, *, connection: jqc.Connection | None = None, out: TextIO | None = None
) -> int:
    """Run one command; ``connection`` (for tests and embedding) overrides ``--url``."""
    args = build_parser().parse_args(argv)
    stream = out or sys.stdout
    handler: Handler = args.handler
    conn = connection
    try:
        if conn is None and not getattr(args, "owns_connection", False):
            if not args.url:
                note = "using the embedded backend, which starts empty in this process; pass --url or set JQC_REDIS_URL"
                print(f"jqc: note: {note}", file=sys.stderr)
            conn = jqc.connect(args.url)
        return handler(args, conn or jqc.connect(), stream)
    except jqc.JqcError as exc:
        print(f"jqc: error: {exc}", file=sys.stderr)
        return 1
