"""``jqc dlq list|show|replay|purge``: the dead letters of a queue, filtered by reason, name and time."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

import jqc
from jqc.engine.job import DeadLetter

from .arguments import Subparsers, add_json, add_url
from .output import emit_json, table

__all__ = ["add_parsers"]


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
            emit_json(out, letters)
            return 0
        rows = [[d.job.id, d.job.name, d.job.attempts_made, d.dead_at, d.worker, d.job.failure_reason] for d in letters]
        out.write(table(rows, ["id", "name", "attempts", "dead at", "worker", "reason"]) + "\n")
        return 0
    if args.action == "show":
        (job_id,) = args.ids or [None]
        letters = queue.find_dead(lambda d: d.job.id == job_id, limit=1)
        if not letters:
            raise jqc.JobNotFoundError(f"no dead letter for job {job_id!r} in queue {args.queue!r}")
        emit_json(out, letters[0])
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
        emit_json(out, ids)
    else:
        out.write(f"{verb} {len(ids)} dead letter(s)\n")
    return 0


def add_parsers(sub: Subparsers) -> None:
    """Register ``dlq``."""
    p = sub.add_parser("dlq", help="dead letters: list, show, replay, purge")
    p.add_argument("action", choices=("list", "show", "replay", "purge"))
    p.add_argument("queue")
    p.add_argument("ids", nargs="*", help="job ids (show takes one)")
    p.add_argument("--all", action="store_true", help="replay or purge every matching dead letter")
    p.add_argument("--limit", type=int, default=None, help="list at most this many")
    p.add_argument("--reason", help="only failures whose reason contains this text")
    p.add_argument("--name", help="only jobs with this name")
    p.add_argument("--since", type=float, help="only dead letters at or after this Unix time")
    p.add_argument("--until", type=float, help="only dead letters at or before this Unix time")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_dlq)
