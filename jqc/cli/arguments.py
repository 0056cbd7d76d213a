"""What every ``jqc`` command shares: the handler signature and the ``--url`` and ``--json`` options."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TextIO, TypeAlias

import jqc

__all__ = ["Handler", "Subparsers", "add_json", "add_url"]

Handler: TypeAlias = Callable[[argparse.Namespace, jqc.Connection, TextIO], int]
"""A command: ``(parsed arguments, connection, output stream) -> exit status``, set as ``handler``."""

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The ``jqc`` parser's subcommands, on which each command group registers its commands."""

URL_HELP = "Redis URL: redis://, rediss://, unix:// (default: $JQC_REDIS_URL, else the embedded backend)"


def add_url(parser: argparse.ArgumentParser) -> None:
    """``--url``, defaulting to ``$JQC_REDIS_URL`` (none: the embedded backend)."""
    parser.add_argument("--url", default=os.environ.get("JQC_REDIS_URL"), help=URL_HELP)


def add_json(parser: argparse.ArgumentParser, text: str = "print data as JSON") -> None:
    """``--json``: print data as JSON instead of a table."""
    parser.add_argument("--json", action="store_true", help=text)
