"""``jqc worker`` (run a worker process for one or more queues, or ``--probe`` the local one) and
``jqc workers`` (list live ones, flagging those connected but not consuming)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, TextIO

import jqc
from jqc.engine.liveness import not_consuming
from jqc.worker import logs, probe

from .arguments import Subparsers, add_json, add_url
from .output import emit_json, jsonable, table
from .validators import handler_spec

__all__ = ["HEALTH_FILE_ENV", "add_parsers", "load_handler"]

#: The environment variable naming the health file, for ``jqc worker`` and ``jqc worker --probe`` alike.
HEALTH_FILE_ENV = "JQC_HEALTH_FILE"


def load_handler(spec: str) -> Any:
    """Import ``module:attribute`` (a handler, or a mapping of job names to handlers)."""
    module_name, attribute = handler_spec(spec)
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


EMBEDDED_REFUSAL = (
    "jqc worker needs a Redis server: pass --url redis://HOST:PORT/DB or set JQC_REDIS_URL. The embedded "
    "backend lives inside one process, so nothing else could ever add jobs for this worker"
)


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The connection options given as flags (the rest keep the URL's or the defaults)."""
    options: dict[str, Any] = {}
    for name in ("socket_timeout", "socket_connect_timeout", "health_check_interval"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.no_keepalive:
        options["socket_keepalive"] = False
    return options


def _worker_connection(args: argparse.Namespace, conn: jqc.Connection) -> jqc.Connection:
    """The connection the worker runs on: the one given to :func:`jqc.cli.main`, else one to ``--url``."""
    if getattr(args, "connection_given", False):
        return conn
    made = jqc.connect(args.url, **_client_options(args))
    if made.in_process:
        raise jqc.InvalidOptionError(EMBEDDED_REFUSAL)
    return made


def cmd_worker(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    if args.probe:
        return cmd_probe(args, out)
    if not args.handler_spec or not args.queue:
        raise jqc.InvalidOptionError("jqc worker needs MODULE:FUNCTION and at least one --queue (or --probe)")
    conn = _worker_connection(args, conn)
    handler = load_handler(args.handler_spec)
    logs.configure(args.log_format, level=getattr(logging, args.log_level.upper()))  # unless the module did
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
        max_stalls=args.max_stalls,
        connect_timeout=args.connect_timeout,
        summary_interval=args.summary_interval,
        stuck_after=args.stuck_after,
        health_file=args.health_file or os.environ.get(HEALTH_FILE_ENV) or None,
        observer=observer,
    )
    stats = worker.run(burst=args.burst, delayed=args.burst)
    if args.json:
        emit_json(out, stats)  # (the log says "stopped" already: no second line in text mode)
    return 0


def cmd_workers(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = conn.queue(args.queue)
    workers = queue.workers()
    counts = queue.counts() if workers else None
    now = conn.clock.now()
    flags = [not_consuming(w, counts, now, after=args.stuck_after) if counts else "" for w in workers]
    if args.json:
        emit_json(out, [{**jsonable(w), "not_consuming": flag} for w, flag in zip(workers, flags, strict=True)])
        return 0
    rows = [
        [
            w.id, w.host, w.pid, ",".join(w.queues), f"{w.active}/{w.concurrency}",
            "never" if w.polled is None else f"{now - w.polled:.1f}s ago", f"{now - w.last_seen:.1f}s ago",
            f"NO: {flag}" if flag else "yes",
        ]
        for w, flag in zip(workers, flags, strict=True)
    ]  # fmt: skip
    out.write(table(rows, ["worker", "host", "pid", "queues", "active", "last poll", "last seen", "consuming"]) + "\n")
    return 0


def cmd_probe(args: argparse.Namespace, out: TextIO) -> int:
    """``jqc worker --probe``: judge the local worker's health file; exit 0 when it consumes."""
    path = args.health_file or os.environ.get(HEALTH_FILE_ENV)
    if not path:
        raise jqc.InvalidOptionError(f"--probe needs --health-file PATH (or {HEALTH_FILE_ENV} set)")
    verdict = probe.judge(path, jqc.SystemClock().now(), stuck_after=args.stuck_after)
    out.write(verdict.reason + "\n")
    out.flush()
    return 0 if verdict.ok else 1


def add_parsers(sub: Subparsers) -> None:
    """Register ``worker`` and ``workers``."""
    p = sub.add_parser("worker", help="run a worker process for one or more queues")
    p.add_argument(
        "handler_spec", metavar="MODULE:FUNCTION", nargs="?", help="handler, or a mapping of job names to handlers"
    )
    p.add_argument("--queue", action="append", help="queue to work on (repeat for several; required)")
    p.add_argument("--concurrency", type=int, default=10, help="jobs in flight per queue (default 10)")
    p.add_argument("--name", help="worker name (default: the host name)")
    p.add_argument("--lock", type=float, default=30.0, help="lock duration in seconds (default 30)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds in-flight jobs get on SIGTERM (default 30)")
    p.add_argument("--timeout", type=float, default=None, help="default per-job timeout in seconds")
    p.add_argument(
        "--max-stalls",
        type=int,
        default=1,
        help="how often a job may stall (its worker died or hung holding it) before it is dead-lettered "
        "(default 1; a queue's own max_stalls setting wins). Low: a poison job that crashes workers stops "
        "soon; high: innocent jobs survive crashing hosts",
    )
    p.add_argument("--burst", action="store_true", help="stop once no job is waiting, delayed or active")
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=None,
        metavar="S",
        help="give up (exit 1) if Redis cannot be reached within S seconds at start (default: keep trying, "
        "logging every attempt)",
    )
    p.add_argument(
        "--socket-timeout",
        type=float,
        default=None,
        metavar="S",
        help="read deadline of every call (default 10; blocking waits get their own); a silent connection "
        "fails the call after this long and is replaced",
    )
    p.add_argument(
        "--socket-connect-timeout",
        type=float,
        default=None,
        metavar="S",
        help="how long opening one connection may take (default 5)",
    )
    p.add_argument(
        "--health-check-interval",
        type=float,
        default=None,
        metavar="S",
        help="PING a pooled connection idle this long before reusing it (default 15; 0: never)",
    )
    p.add_argument("--no-keepalive", action="store_true", help="turn TCP keepalive off (default on: 30 s idle)")
    p.add_argument("--log-format", choices=logs.FORMATS, default="text", help="log lines as text or JSON objects")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info", help="(default info)")
    p.add_argument(
        "--summary-interval",
        type=float,
        default=30.0,
        metavar="S",
        help="log a summary (done, failed, retried, dead-lettered, active, queue depth) every S seconds "
        "(default 30; 0: never)",
    )
    p.add_argument(
        "--otel",
        action="store_true",
        help="an OpenTelemetry span around every job run (needs jqc[otel] and a tracer provider set up by the "
        "handler module or opentelemetry-instrument)",
    )
    p.add_argument(
        "--health-file",
        metavar="PATH",
        help=f"rewrite PATH every heartbeat with what the worker is doing, for --probe (default: ${HEALTH_FILE_ENV})",
    )
    p.add_argument(
        "--stuck-after",
        type=float,
        default=None,
        metavar="S",
        help="a queue with a free slot and no claim reaching Redis for S seconds means not consuming "
        "(default 60, or twice stall interval + heartbeat when longer)",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="do not run a worker: judge the local one's --health-file and exit 0 when it is consuming, "
        "1 with a one-line reason otherwise (a Kubernetes livenessProbe)",
    )
    add_url(p)
    add_json(p, "print the worker's stats as JSON when it stops")
    p.set_defaults(handler=cmd_worker, owns_connection=True)

    p = sub.add_parser("workers", help="list the live workers of a queue, flagging those not consuming")
    p.add_argument("queue")
    p.add_argument(
        "--stuck-after",
        type=float,
        default=None,
        metavar="S",
        help="flag a worker with a free slot whose claims have not reached Redis for S seconds while jobs "
        "wait (default: each worker's own limit, 60 s unless set)",
    )
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_workers)
