"""The ``jqc`` command: the parser assembled from every command group, and :func:`main`.

Each group module registers its commands with ``add_parsers`` (or ``add_parser``), and every command
sets ``handler`` to a function ``(args, connection, out) -> exit status``. :func:`main` opens the
connection (unless the command sets ``owns_connection``), runs the handler and turns a jqc error
into one line ``jqc: error: ...`` on stderr: exit status 2 for bad input (a malformed URL, option
value or job data: :class:`~jqc.errors.InvalidInputError`, like argparse's own usage errors), 1
for the rest (a refusal, a missing job, an unreachable server).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import argcomplete

import jqc

from . import about, autoscale, cancel, coordinator, dashboard, demo, dlq, flows, queues, schedules, sim, workers
from .arguments import Handler
from .guards import opened_in_process

__all__ = ["EPILOG", "build_parser", "main"]

EPILOG = """\
reaching a server:
  Every command that reads or changes queues takes --url URL, and defaults to $JQC_REDIS_URL:
    jqc stats --url redis://localhost:6379/0
    export JQC_REDIS_URL=redis://:PASSWORD@redis.internal:6379/0
    jqc jobs photos --state failed
  URL forms: redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://... (TLS), unix:///PATH?db=N,
    redis+cluster://HOST:PORT,HOST:PORT (Redis Cluster), redis+sentinel://HOST:PORT,HOST:PORT/SERVICE[/DB].
  With neither, a command runs on the embedded backend: a fresh, empty store inside this one
  process. `jqc demo` and `jqc sim` use it on purpose; commands that change a queue refuse it.

exit status: 0 done, 1 refused or a check failed, 2 bad arguments (usage, URL, option or data).
shell completion: eval "$(register-python-argcomplete jqc)" (commands, options, queue names)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``jqc`` parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="jqc",
        description="jqc, the Job Queue Coordinator: production job queues on Redis, operated from a shell.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"jqc {jqc.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    queues.add_parsers(sub)
    cancel.add_parser(sub)
    dlq.add_parsers(sub)
    schedules.add_parsers(sub)
    flows.add_parsers(sub)
    workers.add_parsers(sub)
    demo.add_parser(sub)
    coordinator.add_parsers(sub)
    autoscale.add_parsers(sub)
    dashboard.add_parser(sub)
    sim.add_parser(sub)
    about.add_parser(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(
    argv: Sequence[str] | None = None, *, connection: jqc.Connection | None = None, out: TextIO | None = None
) -> int:
    """Run one command; ``connection`` (for tests and embedding) overrides ``--url``."""
    parser = build_parser()
    argcomplete.autocomplete(parser)  # does nothing unless the shell asks for completions
    args = parser.parse_args(argv)
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
            opened_in_process(args, conn.in_process)
        return handler(args, conn or jqc.connect(), stream)
    except jqc.InvalidInputError as exc:
        print(f"jqc: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except jqc.JqcError as exc:
        print(f"jqc: error: {_one_line(exc)}", file=sys.stderr)
        return 1
