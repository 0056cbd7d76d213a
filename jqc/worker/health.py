"""Staying up while Redis is not: one shared, capped exponential backoff for every worker loop.

The first failure of an outage is logged as a warning, later ones only now and then, and the first
success after it logs how long Redis was out of reach. Each failure is logged as what it is (see
:meth:`Reconnect.failed`). Before a worker starts, :meth:`Reconnect.reach` waits for Redis to
answer, logging every failed attempt. Waits go through the injected clock.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

from jqc.clock import Clock
from jqc.errors import ConnectionLostError, JqcError, ServerRefusedError
from jqc.worker.logs import fields

__all__ = ["Reconnect"]


class Reconnect:
    """Tracks consecutive failed calls and says how long to back off before the next one."""

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

    def failed(self, where: str, exc: BaseException, *, since: float | None = None) -> float:
        """Record a failed call (begun at clock time ``since``, if known); returns the seconds to
        wait before trying again. An outage is timed from the start of its first failed call, so a
        call that failed by timing out counts the time it waited.

        Every failure is retried with backoff (a worker must outlive its server's bad moments), but
        each is logged as what it is: a lost connection or a passing server state (READONLY,
        LOADING, BUSY, CLUSTERDOWN ...) as a warning, a refusal that needs an operator (OOM,
        NOPERM, bad credentials) as an error without a traceback, anything else as an error with one.
        """
        self.failures += 1
        if self.failures == 1:
            self._since = since if since is not None else self.clock.now()
            self.outages += 1
            self._cause = exc
        delay = self.backoff(self.failures)
        kind = type(exc).__name__
        facts = fields(
            "redis_error", worker=self.worker, where=where, error_type=kind, error=str(exc),
            retry_in=round(delay, 3), failed_calls=self.failures,
        )  # fmt: skip
        if isinstance(exc, JqcError) and exc.retryable:  # a lost connection or a passing server state
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
        elif isinstance(exc, ServerRefusedError):
            if self.failures == 1 or self.failures % 25 == 0:
                self.log.error(
                    "worker %s: %s: the server refuses: %s: %s; retrying with backoff until it is fixed",
                    self.worker, where, kind, exc, extra=facts,
                )  # fmt: skip
        else:
            self.log.error("worker %s: %s failed unexpectedly", self.worker, where, exc_info=exc, extra=facts)
        return delay

    def ok(self) -> None:
        """Record a successful call (logs the recovery after an outage)."""
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
