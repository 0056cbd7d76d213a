"""Staying up while Redis is not: one shared, capped exponential backoff for every worker loop.

The first failure of an outage is logged as a warning, later ones only now and then, and the first
success after it logs how long Redis was out of reach. Each call site backs off on its own
consecutive failures, so a call the server keeps refusing (NOPERM on one queue's keys) backs off
even while the worker's other calls succeed; such a refusal is logged as the call's own, not as
an outage. Each failure is logged as what it is (see
:meth:`Reconnect.failed`). Before a worker starts, :meth:`Reconnect.reach` waits for Redis to
answer, logging every failed attempt. Waits go through the injected clock.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from jqc.clock import Clock
from jqc.errors import ConnectionLostError, JqcError, ServerRefusedError
from jqc.worker.logs import fields

__all__ = ["Reconnect"]


@dataclass(slots=True)
class _Streak:
    """Consecutive failures of one call site: since when, the first error, how many, and whether
    it failed on its own (a refusal, or while other calls succeeded) at some point."""

    since: float
    first: BaseException
    count: int = 0
    alone: bool = False


class Reconnect:
    """Tracks consecutive failed calls, per call site and as outages of Redis, and says how long to
    back off before the next try."""

    def __init__(
        self, clock: Clock, log: logging.Logger, worker: str, *, first: float, cap: float, rng: random.Random
    ) -> None:
        self.clock = clock
        self.log = log
        self.worker = worker
        self.first = first
        self.cap = cap
        self.rng = rng
        self.failures = 0
        self.outages = 0
        self._since: float | None = None
        self._cause: BaseException | None = None
        self._streaks: dict[str, _Streak] = {}

    @property
    def down(self) -> bool:
        return self.failures > 0

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures: doubling from ``first`` up to
        ``cap``, jittered down by up to half."""
        delay = min(self.cap, self.first * 2.0 ** min(failures - 1, 30))
        return delay * (0.5 + 0.5 * self.rng.random())

    async def reach(
        self,
        probe: Callable[[], Awaitable[object]],
        *,
        where: str,
        timeout: float | None,
        nap: Callable[[float], Awaitable[bool]],
    ) -> bool:
        """Call ``probe`` until it succeeds, backing off between attempts and logging each failed
        one; True once it succeeded, False if ``nap`` (the wait between attempts) says to stop.

        With ``timeout`` (seconds) it gives up with :class:`jqc.ConnectionLostError` once the next
        attempt would start later than that after the first; without, it tries forever (and says so).
        """
        started = self.clock.now()
        attempt = 0
        while True:
            attempt += 1
            try:
                await probe()
            except Exception as exc:
                delay = self.backoff(attempt)
                waited = self.clock.now() - started
                kind = type(exc).__name__
                if timeout is not None and waited + delay > timeout:
                    self.log.error(
                        "worker %s: could not reach Redis at %s within %g s (%d attempts): %s: %s; giving up",
                        self.worker, where, timeout, attempt, kind, exc,
                        extra=fields("unreachable", worker=self.worker, url=where, attempt=attempt, error_type=kind,
                                     error=str(exc), retry_in=None),
                    )  # fmt: skip
                    raise ConnectionLostError(
                        f"could not reach Redis at {where} within {timeout:g} s ({attempt} attempts); "
                        f"last error: {kind}: {exc}"
                    ) from exc
                limit = (
                    f"giving up {timeout:g} s after the first attempt"
                    if timeout is not None
                    else "waiting for it with no time limit (connect_timeout, jqc worker --connect-timeout, sets one)"
                )
                refused = isinstance(exc, ServerRefusedError)  # bad credentials, an ACL: an operator must act
                self.log.log(
                    logging.ERROR if refused else logging.WARNING,
                    "worker %s: cannot %s Redis at %s (attempt %d): %s: %s; next attempt in %.1f s, %s",
                    self.worker, "use" if refused else "reach", where, attempt, kind, exc, delay, limit,
                    extra=fields("unreachable", worker=self.worker, url=where, attempt=attempt, error_type=kind,
                                 error=str(exc), retry_in=round(delay, 3)),
                )  # fmt: skip
                if await nap(delay):
                    return False
                continue
            if attempt > 1:
                self.log.warning(
                    "worker %s: reached Redis at %s after %d attempts (%.1f s)",
                    self.worker, where, attempt, self.clock.now() - started,
                )  # fmt: skip
            return True

    def failed(self, where: str, exc: BaseException, *, since: float | None = None, key: str | None = None) -> float:
        """Record a failed call (begun at clock time ``since``, if known); returns the seconds to
        wait before trying again. ``key`` names the call site (default ``where``): its backoff
        grows with its own consecutive failures, which only its own success (``ok(key)``) resets,
        so a call the server keeps refusing backs off even while the worker's other calls succeed.

        Every failure is retried with backoff (a worker must outlive its server's bad moments), but
        each is logged as what it is: a lost connection or a passing server state (READONLY,
        LOADING, BUSY, CLUSTERDOWN ...) as a warning, and as an outage of Redis, timed from the
        start of its first failed call; a refusal that needs an operator (OOM, NOPERM, bad
        credentials) as an error without a traceback; anything else as an error with one. A
        refusal, or a failure that goes on while other calls succeed, is this call's own: logged
        when it starts and every 25th time, and when the call is accepted again.
        """
        key = key or where
        started = since if since is not None else self.clock.now()
        streak = self._streaks.get(key)
        if streak is None:
            streak = self._streaks[key] = _Streak(started, exc)
        streak.count += 1
        delay = self.backoff(streak.count)
        kind = type(exc).__name__
        facts = fields(
            "redis_error", worker=self.worker, where=where, error_type=kind, error=str(exc),
            retry_in=round(delay, 3), failed_calls=streak.count,
        )  # fmt: skip
        if isinstance(exc, JqcError) and exc.retryable:  # a lost connection or a passing server state
            if streak.count == 1 or self.failures:
                self._outage(where, exc, started, delay, facts)
            else:  # this call fails again while others succeed: not an outage of Redis
                streak.alone = True
                if streak.count % 25 == 0:
                    self.log.warning(
                        "worker %s: %s still failing after %d tries while other calls succeed: %s: %s",
                        self.worker, where, streak.count, kind, exc, extra=facts,
                    )  # fmt: skip
        elif streak.count == 1 or streak.count % 25 == 0:
            streak.alone = True
            if isinstance(exc, ServerRefusedError):
                self.log.error(
                    "worker %s: %s: the server refuses: %s: %s; retrying with backoff until it is fixed "
                    "(%d refused so far, next try in %.1f s)",
                    self.worker, where, kind, exc, streak.count, delay, extra=facts,
                )  # fmt: skip
            else:
                self.log.error(
                    "worker %s: %s failed unexpectedly (%d times so far)", self.worker, where, streak.count,
                    exc_info=exc, extra=facts,
                )  # fmt: skip
        else:
            streak.alone = True
        return delay

    def _outage(self, where: str, exc: BaseException, started: float, delay: float, facts: dict[str, object]) -> None:
        """Count a failure of an outage of Redis (the first one begins it) and log it now and then."""
        self.failures += 1
        if self.failures == 1:
            self._since = started
            self.outages += 1
            self._cause = exc
        kind = type(exc).__name__
        if self.failures == 1:
            self.log.warning(
                "worker %s: %s: %s: %s; retrying with backoff (next try in %.2f s)",
                self.worker, where, kind, exc, delay, extra=facts,
            )  # fmt: skip
        elif self.failures % 25 == 0:
            self.log.warning(
                "worker %s: %s still failing after %d tries: %s: %s",
                self.worker, where, self.failures, kind, exc, extra=facts,
            )  # fmt: skip

    def ok(self, key: str | None = None) -> None:
        """Record a successful call, of the call site ``key`` if given (logs the recovery after an
        outage, and that of a call that kept failing on its own)."""
        streak = self._streaks.pop(key, None) if key is not None else None
        if streak is not None and streak.alone:
            lasted = self.clock.now() - streak.since
            cause = type(streak.first).__name__
            refused = isinstance(streak.first, ServerRefusedError)
            self.log.warning(
                "worker %s: %s is accepted again after %.1f s (%d %s calls; first: %s)",
                self.worker, key, lasted, streak.count, "refused" if refused else "failed", cause,
                extra=fields("redis_ok", worker=self.worker, where=key, outage=round(lasted, 3),
                             failed_calls=streak.count, first_error_type=cause),
            )  # fmt: skip
        if self.failures:
            lasted = self.clock.now() - (self._since if self._since is not None else self.clock.now())
            cause = type(self._cause).__name__
            facts = fields("redis_ok", worker=self.worker, outage=round(lasted, 3), failed_calls=self.failures,
                           first_error_type=cause)  # fmt: skip
            if isinstance(self._cause, ConnectionLostError):
                self.log.warning(
                    "worker %s: reconnected to Redis after %.1f s (%d failed calls; first: %s)",
                    self.worker, lasted, self.failures, cause, extra=facts,
                )  # fmt: skip
            else:
                self.log.warning(
                    "worker %s: Redis serves again after %.1f s (%d failed calls; first: %s)",
                    self.worker, lasted, self.failures, cause, extra=facts,
                )  # fmt: skip
            self.failures = 0
            self._since = None
            self._cause = None
