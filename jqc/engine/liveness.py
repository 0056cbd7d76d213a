"""Liveness means consuming: the one rule that says a connected worker has stopped consuming a queue.

A worker's heartbeat (see :mod:`jqc.worker.reporter`) says, per queue, when its last claim
attempt *reached the server* (``polled``, whether or not it got a job), whether claiming is held
off and until when (a rate limit), why its last claim failed, how many jobs it holds out of how
many slots, and after how long without a poll it counts as stuck (``stuck_after``). A healthy
worker polls at least every ``stall_interval`` even when idle (its wait for events is bounded by
it), so a stale ``polled`` means its claim loop is wedged, its claims keep failing, or it is
cut off, while its heartbeat still runs.

:func:`not_consuming` is what health checks (:mod:`jqc.coordinator.health`), ``jqc workers``, the
autoscaler's metrics and the dashboard's workers page all apply. A worker is flagged only when
all of these hold:

* jobs wait on the queue (``waiting`` > 0) and the queue is not paused;
* the worker has a free slot on it (busy is not stuck) and is not shutting down;
* claiming is not held off past now (a rate limit or a handler's ``RateLimited``);
* its last poll (or its start, or the end of its last hold, whichever is latest) is older than
  its ``stuck_after``.

The heartbeat is itself a few seconds old when read; ``stuck_after`` leaves room for that.
"""

from __future__ import annotations

from jqc.engine.results import Counts, WorkerInfo

__all__ = ["DEFAULT_STUCK_AFTER", "default_stuck_after", "not_consuming"]

#: Seconds without a claim attempt reaching the server, while work waits, before a worker counts
#: as not consuming (unless its own idle wait is longer: see :func:`default_stuck_after`).
DEFAULT_STUCK_AFTER = 60.0


def default_stuck_after(idle_wait: float, heartbeat: float) -> float:
    """The threshold for a worker whose idle wait is bounded by ``idle_wait`` and which beats every
    ``heartbeat`` seconds: :data:`DEFAULT_STUCK_AFTER`, or twice their sum when that is longer (a
    healthy idle worker polls at least every ``idle_wait``; its report lags up to one beat)."""
    return max(DEFAULT_STUCK_AFTER, 2.0 * (idle_wait + heartbeat))


def _s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def not_consuming(info: WorkerInfo, counts: Counts, now: float, *, after: float | None = None) -> str:
    """Why ``info`` (a live worker of the queue ``counts`` describes) looks connected but not
    consuming at clock time ``now``; '' when it does not.

    ``after`` overrides the worker's own ``stuck_after`` (seconds). Records of workers too old to
    report ``polled`` are judged by their last claim that got a job.
    """
    if counts.waiting <= 0 or counts.paused or info.stopping:
        return ""
    if info.concurrency > 0 and info.active >= info.concurrency:
        return ""  # busy is not stuck
    if info.hold_until is not None and info.hold_until > now:
        return ""  # rate limited: it claims again when the window reopens
    limit = after if after is not None else (info.stuck_after or DEFAULT_STUCK_AFTER)
    last = info.polled if info.polled is not None else info.last_claim
    if last is None and info.started_at <= 0:
        return ""  # a record that says neither when it started nor when it polled: nothing to judge
    since = max(t for t in (last, info.started_at, info.hold_until) if t is not None)
    quiet = now - since
    if quiet <= limit:
        return ""
    free = info.concurrency - info.active
    what = (
        f"none of its claims has reached the server since it started {_s(quiet)} ago"
        if last is None or last < info.started_at
        else f"its last claim to reach the server was {_s(now - last)} ago"
    )
    reason = f"{counts.waiting} job(s) wait, it has {free} free slot(s), and {what} (limit {_s(limit)})"
    if info.claim_error:
        reason += f"; its claims fail: {info.claim_error}"
    return reason
