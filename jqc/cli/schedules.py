"""``jqc schedules list|add|remove|next``: a queue's schedules, their next fire times, and
changing them from a shell.

``add`` upserts (an unchanged schedule is left as it is, its next tick kept); ``next`` shows the
coming ticks of a queue's schedules, or of ``--cron``/``--every`` given on the command line, to
check an expression before using it. A bad expression, time zone or policy is one line on stderr
and exit status 2; removing a schedule that does not exist exits 1.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any, TextIO

import jqc
from jqc.engine.schedules import Schedule, ScheduleSpec
from jqc.engine.timing import MISSED, OVERLAP, Timing, zone

from .arguments import Subparsers, add_json, add_queue, add_url
from .guards import CommandRefused, existing_queue
from .output import emit_json, local_time, rich_table, show
from .validators import job_data

__all__ = ["add_parsers"]


def _when(s: Schedule) -> str:
    if s.cron is not None:
        return f"cron {s.cron} ({s.tz})"
    return f"every {s.every:g} s"


def _schedule_json(s: Schedule, count: int) -> dict[str, Any]:
    return {
        "name": s.name, "job": s.job, "data": s.data, "cron": s.cron, "every": s.every, "tz": s.tz,
        "start": s.start, "missed": s.missed, "max_catch_up": s.max_catch_up, "overlap": s.overlap,
        "grace": s.grace, "next_at": s.next_at, "next": [d.isoformat() for d in s.next_fires(count)],
        "last_tick": s.last_tick, "last_job_id": s.last_job_id, "fired": s.fired,
        "skipped_missed": s.skipped_missed, "skipped_overlap": s.skipped_overlap, "revision": s.revision,
    }  # fmt: skip


def _list(args: argparse.Namespace, queue: jqc.Queue, out: TextIO) -> int:
    found = queue.schedules()
    if args.json:
        emit_json(out, [_schedule_json(s, 1) for s in found])
        return 0
    now = queue.clock.now()
    rows = [
        [s.name, _when(s), s.job, local_time(s.next_at, now) or "never", local_time(s.last_tick, now) or "-",
         s.fired, f"{s.skipped_missed}/{s.skipped_overlap}", f"{s.missed}, overlap {s.overlap}"]
        for s in found
    ]  # fmt: skip
    headers = ["name", "when", "job", "next tick", "last tick", "fired", "skipped missed/overlap", "policy"]
    show(out, rich_table(rows, headers, caption=f"({len(found)} schedule(s) in {queue.name})"))
    return 0


def _add(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    data = job_data(None, args.data)  # read and checked before anything is written
    if (args.cron is None) == (args.every is None):
        raise jqc.InvalidScheduleError("give exactly one of --cron EXPR and --every SECONDS")
    settings: dict[str, Any] = {
        "cron": args.cron, "every": args.every, "tz": args.tz, "job": args.job, "data": data,
        "missed": args.missed, "max_catch_up": args.max_catch_up, "overlap": args.overlap, "grace": args.grace,
        "priority": args.priority, "attempts": args.attempts,
    }  # fmt: skip
    # Checked in full (expression, zone, policies) before the queue is opened for writing.
    ScheduleSpec.build(
        args.name, cron=args.cron, every=args.every, tz=args.tz, start=None, job=args.job or args.name,
        data_text="null", options=jqc.JobOptions(priority=args.priority, attempts=args.attempts),
        missed=args.missed, max_catch_up=args.max_catch_up, overlap=args.overlap, grace=args.grace,
    )  # fmt: skip
    made = existing_queue(args, conn, create=True).schedule(args.name, **settings)
    if args.json:
        emit_json(out, _schedule_json(made, args.count))
    else:
        first = made.next_fires(1)
        out.write(f"{made.name}: revision {made.revision}, next tick {first[0].isoformat() if first else 'never'}\n")
    return 0


def _remove(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    queue = existing_queue(args, conn)
    if not queue.remove_schedule(args.name):
        names = ", ".join(s.name for s in queue.schedules()) or "none"
        raise CommandRefused(f"no schedule {args.name!r} in queue {args.queue!r}; its schedules: {names}")
    out.write(f"removed schedule {args.name}\n")
    return 0


def _fires(times: list[datetime]) -> str:
    return ", ".join(t.isoformat() for t in times)


def _next(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    if args.count < 1 or args.count > 1000:
        raise jqc.InvalidScheduleError(f"--count must be between 1 and 1000, not {args.count}")
    now = conn.clock.now()
    if args.cron is not None or args.every is not None:
        if args.queue is not None:
            raise jqc.InvalidScheduleError("give a queue, or --cron/--every to preview an expression, not both")
        spec = ScheduleSpec.build(
            "preview", cron=args.cron, every=args.every, tz=args.tz, start=None, job="preview", data_text="null",
            options=jqc.JobOptions(), missed="once", max_catch_up=1, overlap="allow", grace=60.0,
        )  # fmt: skip
        timing: Timing = spec.timing_from(round(now * 1000))
        tz = zone(args.tz)
        times = [datetime.fromtimestamp(t / 1000, tz) for t in timing.next_ticks(round(now * 1000), args.count)]
        if args.json:
            emit_json(out, [t.isoformat() for t in times])
        else:
            out.write("".join(f"{t.isoformat()}\n" for t in times))
        return 0
    if args.queue is None:
        raise jqc.InvalidScheduleError("give a queue (and optionally a schedule name), or --cron/--every")
    queue = conn.queue(args.queue)
    found = queue.schedules()
    if args.name is not None:
        found = [s for s in found if s.name == args.name]
        if not found:
            raise CommandRefused(f"no schedule {args.name!r} in queue {args.queue!r}")
    if args.json:
        emit_json(out, {s.name: [t.isoformat() for t in s.next_fires(args.count)] for s in found})
        return 0
    rows = [[s.name, _when(s), _fires(s.next_fires(args.count))] for s in found]
    show(out, rich_table(rows, ["name", "when", f"next {args.count} tick(s)"]))
    return 0


def cmd_schedules(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    """Run ``jqc schedules ACTION``."""
    if args.action == "list":
        return _list(args, conn.queue(args.queue), out)
    if args.action == "add":
        return _add(args, conn, out)
    if args.action == "remove":
        return _remove(args, conn, out)
    return _next(args, conn, out)


def _timing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cron", metavar="EXPR", help="a cron expression, such as '*/5 * * * *' (quote it)")
    p.add_argument("--every", type=float, metavar="SECONDS", help="a fixed interval in seconds (at least 1)")
    p.add_argument("--tz", default="UTC", help="the IANA time zone of --cron, such as Europe/Berlin (default UTC)")


def add_parsers(sub: Subparsers) -> None:
    """Register ``schedules``."""
    p = sub.add_parser(
        "schedules",
        help="schedules: list, add, remove, next fire times",
        description="Schedules add a job on every tick of a cron expression or interval, exactly once per "
        "tick; the workers of the queue fire them.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the queue's schedules, the next to fire first")
    add_queue(listing)
    add_url(listing)
    add_json(listing)
    adding = actions.add_parser("add", help="create or change a schedule (upsert by name)")
    add_queue(adding)
    adding.add_argument("name", help="the schedule's name (also its jobs' name unless --job)")
    _timing_options(adding)
    adding.add_argument("--job", help="the name of the jobs it adds (default: the schedule's name)")
    adding.add_argument("--data", metavar="JSON", help="the jobs' data: JSON text, @FILE, or - for stdin")
    adding.add_argument("--missed", choices=MISSED, default="once", help="ticks missed while nothing ran")
    adding.add_argument("--max-catch-up", type=int, default=100, help="with --missed all: fire at most this many")
    adding.add_argument(
        "--overlap", choices=OVERLAP, default="allow", help="skip: not while the last run is unfinished"
    )
    adding.add_argument("--grace", type=float, default=60.0, help="seconds after which a tick counts as missed")
    adding.add_argument("--priority", type=int, default=0, help="the jobs' priority (lower runs first)")
    adding.add_argument("--attempts", type=int, default=1, help="the jobs' attempts")
    adding.add_argument("--count", type=int, default=5, help="with --json: how many next ticks to show")
    add_url(adding)
    add_json(adding)
    removing = actions.add_parser("remove", help="delete a schedule (the jobs it added stay)")
    add_queue(removing)
    removing.add_argument("name")
    add_url(removing)
    nexting = actions.add_parser("next", help="the next fire times of a queue's schedules, or of an expression")
    add_queue(nexting, nargs="?")
    nexting.add_argument("name", nargs="?", help="only this schedule")
    _timing_options(nexting)
    nexting.add_argument("--count", type=int, default=5, help="how many ticks (default 5)")
    add_url(nexting)
    add_json(nexting)
    p.set_defaults(handler=cmd_schedules)
