"""``jqc dlq list|show|replay|purge``: the dead letters of a queue, filtered by failure code
(``--reason``), message text (``--match``), job name and time."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

import jqc
from jqc.engine.failures import FailureCode
from jqc.engine.job import DeadLetter

from .arguments import Subparsers, add_json, add_queue, add_url
from .guards import existing_queue
from .output import emit_json, job_json, local_time, rich_table, show
from .queues import job_table

__all__ = ["add_parsers"]

CODES = [c.value for c in FailureCode]


def _dead_filter(args: argparse.Namespace) -> Callable[[DeadLetter], bool]:
    def match(letter: DeadLetter) -> bool:
        if args.reason and letter.code != args.reason:
            return False
        if args.match and args.match.lower() not in (letter.reason or "").lower():
            return False
        if args.name and letter.job.name != args.name:
            return False
        if args.since is not None and letter.dead_at < args.since:
            return False
        return not (args.until is not None and letter.dead_at > args.until)

    return match


def _filtered(args: argparse.Namespace) -> bool:
    return bool(args.reason or args.match or args.name or args.since is not None or args.until is not None)


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "job": job_json(letter.job),
        "dead_at": letter.dead_at,
        "worker": letter.worker,
        "code": letter.code,
        "reason": letter.reason,
    }


def _list(args: argparse.Namespace, queue: jqc.Queue, out: TextIO) -> int:
    letters = queue.find_dead(_dead_filter(args), limit=args.limit)
    if args.json:
        emit_json(out, [_letter_json(d) for d in letters])
        return 0
    now = queue.clock.now()
    rows = [
        [d.job.id, d.job.name, d.job.runs, f"{d.job.failed_attempts}/{d.job.options.attempts}",
         local_time(d.dead_at, now), d.worker, d.code, d.reason]
        for d in letters
    ]  # fmt: skip
    headers = ["id", "name", "runs", "failed/allowed", "dead at", "worker", "code", "reason"]
    caption = f"({len(letters)} dead letter(s){' matching' if _filtered(args) else ''})"
    show(out, rich_table(rows, headers, caption=caption))
    undecodable = queue.dead_letters(0, 1).corrupt
    if undecodable:
        out.write("some dead letters cannot be decoded (code corrupt); `jqc dlq show` and --json skip them\n")
    return 0


def _show(args: argparse.Namespace, queue: jqc.Queue, out: TextIO) -> int:
    if not args.ids:
        raise jqc.InvalidOptionError("jqc dlq show takes one or more job ids: jqc dlq show QUEUE ID [ID ...]")
    wanted = list(dict.fromkeys(args.ids))
    found = {d.job.id: d for d in queue.find_dead(lambda d: d.job.id in wanted)}
    letters = [found[i] for i in wanted if i in found]
    if args.json:
        emit_json(out, [_letter_json(d) for d in letters])
    else:
        now = queue.clock.now()
        for letter in letters:
            table = job_table(letter.job, (), now)
            table.add_row("dead at", local_time(letter.dead_at, now))
            table.add_row("code", letter.code or "-")
            table.add_row("reason", letter.reason or "-")
            table.title = f"dead letter {letter.job.id}"
            show(out, table)
    missing = [i for i in wanted if i not in found]
    if missing:
        raise jqc.JobNotFoundError(f"no dead letter for job(s) {', '.join(missing)} in queue {args.queue!r}")
    return 0


def cmd_dlq(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    if args.action == "list":
        return _list(args, conn.queue(args.queue), out)
    if args.action == "show":
        return _show(args, conn.queue(args.queue), out)
    if not (args.ids or args.all or _filtered(args)):
        raise jqc.InvalidOptionError(f"name job ids to {args.action}, pass a filter, or pass --all")
    queue = existing_queue(args, conn)
    ids = list(args.ids) if args.ids else [d.job.id for d in queue.find_dead(_dead_filter(args))]
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
    p = sub.add_parser(
        "dlq",
        help="dead letters: list, show, replay, purge",
        description="Dead letters keep a failure code (--reason) beside the failure message (--match). "
        f"Codes: {', '.join(CODES)}.",
    )
    p.add_argument("action", choices=("list", "show", "replay", "purge"))
    add_queue(p)
    p.add_argument("ids", nargs="*", help="job ids (show takes one or more)")
    p.add_argument("--all", action="store_true", help="replay or purge every matching dead letter")
    p.add_argument("--limit", type=int, default=None, help="list at most this many")
    p.add_argument("--reason", choices=CODES, metavar="CODE", help=f"only this failure code: {', '.join(CODES)}")
    p.add_argument("--match", metavar="TEXT", help="only failures whose message contains TEXT (any case)")
    p.add_argument("--name", help="only jobs with this name")
    p.add_argument("--since", type=float, help="only dead letters at or after this Unix time")
    p.add_argument("--until", type=float, help="only dead letters at or before this Unix time")
    add_url(p)
    add_json(p)
    p.set_defaults(handler=cmd_dlq)
