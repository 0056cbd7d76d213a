"""What every ``jqc`` command shares: the handler signature, ``--url``, ``--json``, and queue-name
arguments that complete in the shell (with ``argcomplete``: see the README)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, TextIO, TypeAlias

import jqc

__all__ = ["URL_HELP", "Handler", "Subparsers", "add_json", "add_queue", "add_url", "complete_queue_names"]

Handler: TypeAlias = Callable[[argparse.Namespace, jqc.Connection, TextIO], int]
"""A command: ``(parsed arguments, connection, output stream) -> exit status``, set as ``handler``."""

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The ``jqc`` parser's subcommands, on which each command group registers its commands."""

URL_HELP = (
    "the Redis server: redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss:// (TLS), unix:///PATH?db=N, "
    "redis+cluster://HOST:PORT,HOST:PORT (Redis Cluster) or redis+sentinel://HOST:PORT,HOST:PORT/SERVICE[/DB] "
    "(default: $JQC_REDIS_URL; without either, a fresh embedded store that ends with the command)"
)


def add_url(parser: argparse.ArgumentParser) -> None:
    """``--url``, defaulting to ``$JQC_REDIS_URL`` (none: the embedded backend)."""
    parser.add_argument("--url", default=os.environ.get("JQC_REDIS_URL"), help=URL_HELP)


def add_json(parser: argparse.ArgumentParser, text: str = "print data as JSON") -> None:
    """``--json``: print data as JSON instead of a table."""
    parser.add_argument("--json", action="store_true", help=text)


def complete_queue_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Shell completion of a queue name: the queues on the server the command line names (or
    ``$JQC_REDIS_URL``), none when there is no server or it does not answer within a second."""
    url = getattr(parsed_args, "url", None) or os.environ.get("JQC_REDIS_URL")
    if not url:
        return []
    try:
        conn = jqc.connect(url, socket_connect_timeout=1.0, socket_timeout=1.0)
        try:
            return [name for name in conn.queue_names() if name.startswith(prefix)]
        finally:
            conn.close()
    except Exception:  # completion must never print a traceback into the user's shell
        return []


def add_queue(parser: argparse.ArgumentParser, *names: str, **options: Any) -> argparse.Action:
    """A queue-name argument (positional ``queue`` by default) whose values complete in the shell."""
    action = parser.add_argument(*(names or ("queue",)), **options)
    action.completer = complete_queue_names  # type: ignore[attr-defined]  # read by argcomplete
    return action
