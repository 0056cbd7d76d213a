"""``jqc worker`` (run a worker process for one or more queues) and ``jqc workers`` (list live ones)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, TextIO

import jqc

from .arguments import Subparsers, add_json, add_url
from .output import emit_json, table
from .validators import handler_spec

__all__ = ["add_parsers", "load_handler"]


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
        emit_json(out, stats)
    else:
        out.write(f"worker {worker.id} stopped: {stats}\n")
    return 0


def cmd_workers(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    workers = conn.queue(args.queue).workers()
    if args.json:
        emit_json(out, workers)
        return 0
    now = conn.clock.now()
    rows = [
        [w.id, w.host, w.pid, ",".join(w.queues), f"{w.active}/{w.concurrency}", f"{now - w.last_seen:.1f}s ago"]
        for w in workers
    ]
    out.write(table(rows, ["worker", "host", "pid", "queues", "active", "last seen"]) + "\n")
    return 0


def add_parsers(sub: Subparsers) -> None:
    """Register ``worker`` and ``workers``."""
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
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("workers", help="list the live workers of a queue")
    p.add_argument("queue")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_workers)
