"""The ``jqc`` command: the parser assembled from every command group, and :func:`main`.

Each group module registers its commands with ``add_parsers`` (or ``add_parser``), and every command
sets ``handler`` to a function ``(args, connection, out) -> exit status``. :func:`main` opens the
connection (unless the command sets ``owns_connection``), runs the handler and turns a jqc error into
``jqc: error: ...`` on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import jqc

from . import autoscale, coordinator, demo, dlq, queues, sim, workers
from .arguments import Handler

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``jqc`` parser with every command registered."""
    parser = argparse.ArgumentParser(prog="jqc", description="jqc, the Job Queue Coordinator")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    queues.add_parsers(sub)
    dlq.add_parsers(sub)
    workers.add_parsers(sub)
    demo.add_parser(sub)
    coordinator.add_parsers(sub)
    autoscale.add_parsers(sub)
    sim.add_parser(sub)
    return parser


def main(
    argv: Sequence[str] | None = None, *, connection: jqc.Connection | None = None, out: TextIO | None = None
) -> int:
    """Run one command; ``connection`` (for tests and embedding) overrides ``--url``."""
    args = build_parser().parse_args(argv)
    stream = out or sys.stdout
    handler: Handler = args.handler
    conn = connection
    args.connection_given = connection is not None
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
