"""When a drain stops: its limits, checked once when the drain is asked for.

A drain runs until one of these ends it:

* idle (the default): no job of its queues is waiting, delayed (with ``advance_time``) or active;
* ``until``: a clock time (a number of seconds since the epoch, an aware ``datetime``, or a
  ``timedelta`` from now): every job due at or before it runs, none starts after it, and the clock
  is left there; or a predicate (a callable taking no argument, returning a bool or an awaitable
  of one), checked before the first run, before every run and whenever the queues go idle;
* ``jobs``: that many jobs *finished* (completed, or failed for good) in this drain.

``max_runs`` (runs of handlers) and ``wall_timeout`` (seconds of real time) are the safety limits
that stop a drain that would never end; reaching one is an error. So is going idle before
``jobs`` jobs finished or before an ``until`` predicate held.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

from jqc.errors import InvalidOptionError

__all__ = ["Limits", "Predicate", "Until", "check_count", "holds", "limits"]

Predicate: TypeAlias = Callable[[], bool | Awaitable[bool]]
Until: TypeAlias = float | int | datetime | timedelta | Predicate


def check_count(value: object, what: str, *, low: int) -> int:
    """``value`` if it is an int >= ``low``, else :class:`InvalidOptionError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidOptionError(f"{what} must be an int >= {low}, not {value!r}")
    return value


def _needs_arguments(fn: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # (a builtin without a signature: let the call tell)
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.default is inspect.Parameter.empty and p.kind in positional for p in parameters)


def _clock_time(until: object, now: float) -> float:
    if isinstance(until, timedelta):
        seconds = until.total_seconds()
        if seconds < 0:
            raise InvalidOptionError(f"until= as a timedelta counts forward from now, not {until!r}")
        return now + seconds
    if isinstance(until, datetime):
        if until.tzinfo is None:
            raise InvalidOptionError(
                f"until= needs an aware datetime (e.g. datetime(2026, 1, 2, tzinfo=UTC)), not the naive {until!r}"
            )
        when = until.timestamp()
    elif isinstance(until, (int, float)) and not isinstance(until, bool) and math.isfinite(until):
        when = float(until)
    else:
        raise InvalidOptionError(
            "until= takes a clock time (seconds since the epoch, an aware datetime, or a timedelta from now) "
            f"or a predicate (a callable with no arguments), not {until!r}"
        )
    if when < now:
        raise InvalidOptionError(f"until={until!r} is in the past: the clock reads {now!r}")
    return when


@dataclass(frozen=True, slots=True)
class Limits:
    """A drain's stopping rules, validated (see the module docstring)."""

    max_runs: int = 10_000
    until_time: float | None = None
    until_true: Predicate | None = None
    jobs: int | None = None
    wall_timeout: float | None = 60.0

    def describe(self) -> str:
        """What the drain was asked to run until, for messages."""
        if self.jobs is not None:
            return f"jobs={self.jobs}"
        if self.until_true is not None:
            return f"until={getattr(self.until_true, '__name__', 'predicate')}()"
        if self.until_time is not None:
            return f"until={self.until_time!r}"
        return "idle"


def limits(
    *,
    now: float,
    until: Until | None,
    jobs: int | None,
    max_runs: int,
    wall_timeout: float | None,
    advance_time: bool,
) -> Limits:
    """Check a drain's arguments; raise :class:`InvalidOptionError` naming the one that is wrong."""
    check_count(max_runs, "max_runs", low=1)
    if wall_timeout is not None and (
        isinstance(wall_timeout, bool) or not isinstance(wall_timeout, (int, float)) or not wall_timeout > 0
    ):
        raise InvalidOptionError(f"wall_timeout must be a number of seconds > 0 (or None), not {wall_timeout!r}")
    if not isinstance(advance_time, bool):
        raise InvalidOptionError(f"advance_time must be a bool, not {advance_time!r}")
    if jobs is not None:
        check_count(jobs, "jobs", low=1)
    if until is not None and jobs is not None:
        raise InvalidOptionError("pass until= or jobs=, not both: a drain stops at the first of its limits")
    until_time: float | None = None
    until_true: Predicate | None = None
    if until is not None:
        if callable(until) and not isinstance(until, (datetime, timedelta)):
            if _needs_arguments(until):
                raise InvalidOptionError(f"an until= predicate is called with no arguments, but {until!r} needs some")
            until_true = until
        else:
            until_time = _clock_time(until, now)
            if not advance_time:
                raise InvalidOptionError("until= a clock time moves the clock: it cannot go with advance_time=False")
    return Limits(
        max_runs=max_runs,
        until_time=until_time,
        until_true=until_true,
        jobs=jobs,
        wall_timeout=None if wall_timeout is None else float(wall_timeout),
    )


async def holds(predicate: Predicate) -> bool:
    """Evaluate an ``until`` predicate (awaiting it when it returns an awaitable)."""
    value = predicate()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)
