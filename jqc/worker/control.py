"""Control-flow exceptions a handler raises to tell the worker what to do with its job.

They are signals, not errors: the worker catches them and reports the job accordingly.

* ``raise Retry(delay=30)``: this attempt failed; run the job again after 30 s (or after the job's
  backoff when ``delay`` is None). The attempt counts: with no attempts left the job fails for good.
* ``raise Fail("bad input")``: fail the job for good now (dead-lettered), whatever attempts remain.
* ``raise RateLimited(10)``: hand the job back to waiting without counting an attempt, and stop
  claiming from its queue on this worker for 10 s (``queue_wide=True``: on every worker).
* ``ctx.wait_for_children([...])`` raises :class:`WaitingForChildren` once the job waits for the
  children it just added: the job already left the worker, so nothing is reported.
"""

from __future__ import annotations

import math

from jqc.errors import InvalidOptionError

__all__ = ["Fail", "JobControl", "RateLimited", "Retry", "WaitingForChildren"]


def _delay(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidOptionError(f"{what} delay must be a finite number of seconds >= 0, not {value!r}")
    return float(value)


class JobControl(Exception):
    """Base of the exceptions a handler raises to steer its job."""


class Retry(JobControl):
    """Fail this attempt and run the job again after ``delay`` seconds (None: the job's backoff)."""

    def __init__(self, delay: float | None = None, reason: str = "") -> None:
        self.delay = None if delay is None else _delay(delay, "Retry")
        self.reason = reason
        super().__init__(
            reason or (f"retry requested in {self.delay:g} s" if self.delay is not None else "retry requested")
        )


class Fail(JobControl):
    """Fail the job for good now, with ``reason``, without using the attempts it has left."""

    def __init__(self, reason: str = "failed by handler") -> None:
        self.reason = reason
        super().__init__(reason)


class RateLimited(JobControl):
    """Hand the job back without counting an attempt and pause claiming from its queue for ``delay`` s.

    By default only the worker whose handler raised it pauses; with ``queue_wide=True`` the worker
    also holds off every worker's claims on the queue for ``delay`` (``Queue.limit_rate``), for
    a limit that all workers share (one upstream API key, say).
    """

    def __init__(self, delay: float, reason: str = "", *, queue_wide: bool = False) -> None:
        self.delay = _delay(delay, "RateLimited")
        self.reason = reason
        if not isinstance(queue_wide, bool):
            raise InvalidOptionError(f"queue_wide must be a bool, not {queue_wide!r}")
        self.queue_wide = queue_wide
        super().__init__(reason or f"rate limited for {self.delay:g} s")


class WaitingForChildren(JobControl):
    """Raised by ``ctx.wait_for_children``: the job now waits for its children (its lock released);
    it runs again, from the start, once they are done. Let it propagate out of the handler."""

    def __init__(self, added: int) -> None:
        self.added = added
        super().__init__(f"waiting for children ({added} added)")
