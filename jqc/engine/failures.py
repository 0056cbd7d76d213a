"""Failure codes: a stable word for *why* a job failed, kept beside the free-text message.

The message (``Job.failure_reason``) is for people and changes with the error ("timed out after
1 s", "OSError: disk full"); the code (``Job.failure_code``, field ``fk``) is one of a few fixed
words that scripts, filters and alerts can rely on (``jqc dlq list --reason timeout``).
"""

from __future__ import annotations

import enum

from jqc.errors import InvalidOptionError

__all__ = ["FailureCode", "failure_code"]


class FailureCode(enum.StrEnum):
    """Why an attempt failed (for a dead letter: why the job failed for good)."""

    ERROR = "error"
    """The handler raised (or asked for a retry) and no attempts were left, or it was not retried."""
    TIMEOUT = "timeout"
    """The handler ran past its timeout."""
    UNRECOVERABLE = "unrecoverable"
    """Failed for good on purpose, whatever attempts were left: the handler raised ``jqc.Fail``,
    no handler was registered for the job's name, its result could not be stored, or a caller
    failed it with ``retry=False``."""
    STALLED = "stalled"
    """Its lock expired more often than the queue's ``max_stalls`` allows (worker crashes or hangs)."""
    CORRUPT = "corrupt"
    """Its stored hash could not be decoded when it was claimed, so it could not run."""
    CHILD = "child"
    """A child of this flow parent failed for good under the default policy ("fail the parent")."""
    CANCELLED = "cancelled"
    """``Queue.cancel`` stopped it while a worker held it (retried only if the canceller allowed it)."""


def failure_code(code: FailureCode | str | None, *, retry: bool) -> FailureCode:
    """The code to store for a failed attempt: ``code`` if given (checked), else ``error`` for an
    attempt that may be retried and ``unrecoverable`` for one failed for good on purpose."""
    if code is None:
        return FailureCode.ERROR if retry else FailureCode.UNRECOVERABLE
    try:
        return FailureCode(code)
    except ValueError:
        known = ", ".join(c.value for c in FailureCode)
        raise InvalidOptionError(f"unknown failure code {code!r}; known: {known}") from None
