"""Reply codes shared by every Lua script, and the one place that maps them to Python errors.

The Lua side never spells a code as a number: the script loader prepends ``local NAME = value`` for
each member of :class:`Code`, so this enum is the single source of truth. A test checks that every
code name a script uses is defined here and mapped below.
"""

from __future__ import annotations

import enum

from jqc import errors


class Code(enum.IntEnum):
    """First element of every script reply. Non-negative values are outcomes, negative are errors."""

    OK = 0
    EMPTY = 1  # nothing claimable right now; second element is the next wake-up time (ms) or 0
    PAUSED = 2  # the queue is paused
    RATE_LIMITED = 3  # the rate window is full; second element is when it reopens (ms)
    CONCURRENCY_LIMITED = 4  # the queue-wide concurrency limit is reached
    MORE = 6  # a bounded operation stopped at its limit; call again
    JOB_NOT_FOUND = -1
    LOCK_LOST = -2
    WRONG_STATE = -3
    JOB_ACTIVE = -4
    BAD_ARGUMENT = -5
    LAYOUT_MISMATCH = -6  # the queue's data is in another key layout (meta.v)


#: Outcome codes are handled by the caller; error codes raise these exceptions.
ERRORS: dict[Code, type[errors.JqcError]] = {
    Code.JOB_NOT_FOUND: errors.JobNotFoundError,
    Code.LOCK_LOST: errors.LockLostError,
    Code.WRONG_STATE: errors.JobStateError,
    Code.JOB_ACTIVE: errors.JobActiveError,
    Code.BAD_ARGUMENT: errors.InvalidInputError,
    Code.LAYOUT_MISMATCH: errors.LayoutVersionError,
}

OUTCOMES: frozenset[Code] = frozenset(c for c in Code if c >= 0)


def lua_prelude() -> str:
    """The Lua lines that define every code as a local, prepended to each script."""
    names = [c.name for c in Code]
    values = [str(int(c)) for c in Code]
    return f"local {', '.join(names)} = {', '.join(values)}\n"


def raise_for(code: int, detail: str) -> None:
    """Raise the typed error for an error ``code``; outcome codes return silently."""
    try:
        member = Code(code)
    except ValueError:
        raise errors.ScriptReplyError(f"unknown reply code {code!r} ({detail})") from None
    if member in OUTCOMES:
        return
    raise ERRORS[member](detail)
