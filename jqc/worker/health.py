"""Staying up while Redis is not: one shared, capped exponential backoff for every worker loop.

The first failure of an outage is logged as a warning, later ones only now and then, and the first
success after it logs how long Redis was out of reach. Waits go through the injected clock.
"""

from __future__ import annotations

import logging
import random

from jqc.clock import Clock
from jqc.errors import BackendError, ConnectionLostError, ServerRefusedError

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

    def failed(self, where: str, exc: BaseException) -> float:
        """Record a failed call; returns the seconds to wait before trying again.

        Every failure is retried with backoff (a worker must outlive its server's bad moments), but
        each is logged as what it is: a lost connection or a passing server state (READONLY,
        LOADING, BUSY, CLUSTERDOWN ...) as a warning, a refusal that needs an operator (OOM,
        NOPERM, bad credentials) as an error without a traceback, anything else as an error with one.
        """
        self.failures += 1
        if self.failures == 1:
            self._since = self.clock.now()
            self.outages += 1
            self._cause = exc
        delay = min(self.cap, self.first * 2.0 ** min(self.failures - 1, 30))
        delay *= 0.5 + 0.5 * self.rng.random()
        kind = type(exc).__name__
        if isinstance(exc, BackendError):
            if self.failures == 1:
                self.log.warning("worker %s: %s: %s: %s; retrying with backoff", self.worker, where, kind, exc)
            elif self.failures % 25 == 0:
                self.log.warning(
                    "worker %s: %s still failing after %d tries: %s: %s", self.worker, where, self.failures, kind, exc
                )
        elif isinstance(exc, ServerRefusedError):
            if self.failures == 1 or self.failures % 25 == 0:
                self.log.error(
                    "worker %s: %s: the server refuses: %s: %s; retrying with backoff until it is fixed",
                    self.worker, where, kind, exc,
                )  # fmt: skip
        else:
            self.log.error("worker %s: %s failed unexpectedly", self.worker, where, exc_info=exc)
        return delay

    def ok(self) -> None:
        """Record a successful call (logs the recovery after an outage)."""
        if self.failures:
            lasted = self.clock.now() - (self._since if self._since is not None else self.clock.now())
            if isinstance(self._cause, ConnectionLostError):
                self.log.warning(
                    "worker %s: reconnected to Redis after %.1f s (%d failed calls)", self.worker, lasted, self.failures
                )
            else:
                self.log.warning(
                    "worker %s: Redis serves again after %.1f s (%d failed calls; first: %s)",
                    self.worker, lasted, self.failures, type(self._cause).__name__,
                )  # fmt: skip
            self.failures = 0
            self._since = None
            self._cause = None
