"""The ``cancel`` command: stop jobs, removing those not started and marking those running."""

from __future__ import annotations

import argparse
from typing import TextIO

import jqc

from .arguments import Subparsers, add_json, add_queue, add_url
from .guards import existing_queue
from .output import emit_json

__all__ = ["add_parser"]


def cmd_cancel(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Cancel each named job; a finished or missing one stops the command with a one-line error."""
    queue = existing_queue(args, conn)
    done: dict[str, str] = {}
    for job_id in args.ids:
        done[job_id] = queue.cancel(job_id, args.reason, retry=args.retry)
    if args.json:
        emit_json(out, done)
        return 0
    for job_id, what in done.items():
        note = {
            "removed": "removed (it had not started)",
            "failed": "failed (a flow child that had not started: its parent is told)",
        }.get(what, "marked: its worker stops it at the next renewal")
        out.write(f"{job_id}: {note}\n")
    return 0


def add_parser(sub: Subparsers) -> None:
    """Register ``cancel``."""
    p = sub.add_parser(
        "cancel",
        help="cancel jobs: a waiting or delayed job is removed, a running one is stopped by its worker",
    )
    add_queue(p)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--reason", default="", help="why (stored as the failure reason: 'cancelled: REASON')")
    p.add_argument("--retry", action="store_true", help="let a running job be retried if attempts remain")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_cancel)
