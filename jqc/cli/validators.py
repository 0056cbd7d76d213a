"""The checks of ``jqc`` options, in one place so every command words and handles them alike.

Two kinds, as the commands have always used them:

- argparse types (:func:`rate_limit`): a bad value is a usage error, exit status 2;
- checks a command runs on its parsed options (the rest): a bad value raises jqc's
  :class:`~jqc.errors.InvalidOptionError` (or :class:`~jqc.errors.DataNotJsonError`), which ``jqc``
  prints as one line ``jqc: error: ...`` with exit status 2, and which code calling a handler can
  catch.

Ranges of numeric options that the library checks itself (job options, worker and simulator
settings, scaling policies) are left to the library, which raises the same typed errors.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

from jqc.errors import DataNotJsonError, InvalidOptionError

__all__ = [
    "handler_spec",
    "instant",
    "job_data",
    "json_data",
    "name_value",
    "rate_limit",
    "require_positive",
    "worker_range",
]


def handler_spec(spec: str) -> tuple[str, str]:
    """``MODULE:FUNCTION`` (the handler of ``jqc worker`` and ``jqc pool``) split into its two parts."""
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise InvalidOptionError(f"handler must be given as MODULE:FUNCTION, not {spec!r}")
    return module, attribute


def json_data(text: str | None) -> Any:
    """A job's ``DATA`` argument: JSON text, or None when it was left out."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataNotJsonError(f"DATA is not valid JSON: {exc}") from None


def job_data(positional: str | None, source: str | None) -> Any:
    """A job's data from ``DATA`` or ``--data`` (JSON text, ``@FILE`` or ``-`` for stdin), decoded.

    Everything is read and decoded before the command writes anything, so bad JSON, an unreadable
    file or both forms at once end in one typed error and nothing enqueued.
    """
    if positional is not None and source is not None:
        raise InvalidOptionError("give the job data once: as DATA or with --data, not both")
    if source is None:
        return json_data(positional)
    if source == "-":
        text, where = sys.stdin.read(), "stdin"
    elif source.startswith("@"):
        path = Path(source[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidOptionError(f"--data {source}: cannot read {path}: {exc}") from None
        where = str(path)
    else:
        return json_data(source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataNotJsonError(f"job data from {where} is not valid JSON: {exc}") from None


def name_value(item: str, option: str) -> tuple[str, str]:
    """A ``NAME=VALUE`` option (such as ``--rule``) split at the first ``=``, both parts stripped."""
    name, sep, value = item.partition("=")
    if not sep:
        raise InvalidOptionError(f"{option} takes NAME=VALUE, not {item!r}")
    return name.strip(), value.strip()


def require_positive(args: argparse.Namespace, *names: str) -> None:
    """Each named option (by its attribute name) must be > 0."""
    for name in names:
        if getattr(args, name) <= 0:
            raise InvalidOptionError(f"--{name.replace('_', '-')} must be > 0")


def worker_range(low: int, high: int) -> None:
    """``--min`` and ``--max`` workers: ``0 <= --min <= --max`` and ``--max >= 1``."""
    if not 0 <= low <= high or high < 1:
        raise InvalidOptionError(f"need 0 <= --min <= --max and --max >= 1, not {low} and {high}")


def rate_limit(text: str) -> tuple[int, float]:
    """argparse type of a rate limit ``N/S`` (N jobs per S seconds, S defaulting to 1)."""
    count, _, per = text.partition("/")
    try:
        return int(count), float(per or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate limit must look like 100/1 (jobs per seconds), not {text!r}") from None


def instant(text: str) -> float:
    """argparse type of a point in time: seconds since the epoch, or ISO 8601 (UTC unless it says)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a time must be seconds since the epoch or ISO 8601 (2026-01-31T12:00:00Z), not {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()
