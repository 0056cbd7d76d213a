"""``jqc version``: the versions of jqc and of what it runs on, for a bug report or a deploy check."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata
from typing import TextIO

import jqc

from .arguments import Subparsers, add_json
from .output import emit_json, rich_table, show

__all__ = ["add_parser", "versions"]

DEPENDENCIES = ("redis", "hiredis", "fakeredis", "lupa", "rich", "argcomplete")


def versions() -> dict[str, str | None]:
    """jqc's version, Python's, and each runtime dependency's (None when it is not installed)."""
    found: dict[str, str | None] = {"jqc": jqc.__version__, "python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def cmd_version(args: argparse.Namespace, conn: jqc.Connection, out: TextIO) -> int:
    found = versions()
    if args.json:
        emit_json(out, found)
    else:
        rows = [[name, value or "not installed"] for name, value in found.items()]
        show(out, rich_table(rows, ["package", "version"]))
    return 0


def add_parser(sub: Subparsers) -> None:
    """Register ``version`` (it needs no connection)."""
    p = sub.add_parser("version", help="show the versions of jqc, Python and jqc's dependencies")
    add_json(p)
    p.set_defaults(handler=cmd_version, owns_connection=True)
