"""Autoscaling live: the coordinator that runs a scaling policy on one queue under a lock.

:class:`LiveMetrics` turns the queue snapshots of :mod:`jqc.coordinator.metrics` into the
:class:`~jqc.scaling.metrics.PoolMetrics` a policy takes (usually :class:`~jqc.scaling.slo.SloPolicy`,
the very object ``jqc sim`` evaluates). :class:`Coordinator` takes the queue's fenced lock
(:mod:`jqc.coordinator.lock`), reads a snapshot, decides, publishes the decision (fenced) and hands
the target to an :class:`Actuator` (``jqc pool``'s process supervisor, or nothing when an external
orchestrator reads the published ``jqc_target_workers``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from jqc.clock import hold
from jqc.connection import Connection
from jqc.engine.calls import Op, run_async, run_sync
from jqc.engine.operations import QueueOperations
from jqc.errors import InvalidOptionError, JqcError
from jqc.scaling.checks import check_positive
from jqc.scaling.metrics import PoolMetrics, ScalingPolicy

from .lock import Lease, ScaleDecision, acquire, publish, release
from .metrics import QueueSnapshot, snapshot_op

__all__ = [
    "Actuator",
    "Coordinator",
    "LiveMetrics",
    "PoolState",
    "Tick",
    "run_coordinator",
]

log = logging.getLogger("jqc.autoscale")


# -- live metrics -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolState:
    """A pool as its actuator sees it: workers taking jobs, still starting, and draining."""

    ready: int
    starting: int = 0
    draining: int = 0

    @property
    def current(self) -> int:
        return self.ready + self.starting


@dataclass(slots=True)
class LiveMetrics:
    """Turns successive :class:`QueueSnapshot` readings into the :class:`PoolMetrics` a policy takes.

    Completions per second come from the engine's per-minute counters of the current and the
    previous minute (attempts that finished: completed, failed and retried), divided by the exact
    time they cover. The arrival rate is that plus the change in jobs present (waiting and active)
    since the previous snapshot. The mean run time comes from the window's run-time histogram.
    ``not_consuming`` counts the live workers the liveness rule flags (:mod:`jqc.engine.liveness`).
    """

    _previous: tuple[float, int] | None = None

    def completion_rate(self, snap: QueueSnapshot) -> float:
        now_minute = math.floor(snap.at / 60)
        first = now_minute - 1
        done = sum(m.completed + m.failed + m.retried for m in snap.metrics.minutes if m.minute >= first)
        span = snap.at - first * 60.0
        return done / span if span > 0 else 0.0

    def metrics(
        self, snap: QueueSnapshot, state: PoolState, *, target: int, min_workers: int, max_workers: int
    ) -> PoolMetrics:
        completions = self.completion_rate(snap)
        present = snap.counts.waiting + snap.counts.active
        arrivals = completions
        if self._previous is not None and snap.at > self._previous[0]:
            arrivals = max(0.0, completions + (present - self._previous[1]) / (snap.at - self._previous[0]))
        self._previous = (snap.at, present)
        return PoolMetrics(
            now=snap.at,
            waiting=snap.counts.waiting,
            delayed=snap.counts.delayed,
            active=snap.counts.active,
            ready=state.ready,
            starting=state.starting,
            draining=state.draining,
            busy=snap.counts.active,
            target=target,
            arrival_rate=arrivals,
            completion_rate=completions,
            wait_p95=snap.wait_percentile(95),
            oldest_wait=snap.oldest_waiting_age or 0.0,
            min_workers=min_workers,
            max_workers=max_workers,
            service_time=snap.metrics.run.mean(),
            not_consuming=len(snap.not_consuming),
        )


# -- the coordinator ----------------------------------------------------------------------------


class Actuator(Protocol):
    """What carries a decision out: ``jqc pool``'s supervisor, or anything that changes a worker count."""

    def pool_state(self) -> PoolState | None:
        """The pool as it is now (None: unknown, judge from the queue's worker registry)."""
        ...

    def apply(self, target: int) -> None:
        """Bring the pool to ``target`` workers (draining the ones it stops)."""
        ...

    def stand_down(self) -> None:
        """Another coordinator holds the lock now: stop acting (a local pool drains its workers)."""
        ...


@dataclass(frozen=True, slots=True)
class Tick:
    """One round of a coordinator: did it lead, what did it decide, did it act."""

    leader: bool
    lease: Lease
    decision: ScaleDecision | None = None
    acted: bool = False
    lost: bool = False  # it held the lock at the previous tick and does not any more


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


class Coordinator:
    """Decides one queue's worker count, one coordinator at a time.

    Each :meth:`tick` (or :meth:`atick`): take or keep the queue's coordinator lock; if held, read a
    snapshot, ask the policy, publish the decision fenced by the lock's token, and, while the lock
    is still valid on this coordinator's clock (``lock_ttl`` minus ``margin`` after the call was
    sent), hand the target to the actuator. A coordinator that finds the lock taken does nothing;
    one that loses it calls ``actuator.stand_down()``. When the holder stops ticking (it died), its
    lock expires after ``lock_ttl`` and the next coordinator to tick takes over with a larger token.
    """

    def __init__(
        self,
        connection: Connection,
        queue: str,
        policy: ScalingPolicy,
        *,
        actuator: Actuator | None = None,
        min_workers: int = 1,
        max_workers: int = 10,
        holder: str | None = None,
        lock_ttl: float = 45.0,
        margin: float | None = None,
        window_minutes: int = 5,
        worker_ttl: float = 30.0,
    ) -> None:
        if isinstance(min_workers, bool) or not isinstance(min_workers, int) or min_workers < 0:
            raise InvalidOptionError(f"min_workers must be an int >= 0, not {min_workers!r}")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < max(1, min_workers):
            raise InvalidOptionError(f"max_workers must be an int >= max(1, min_workers), not {max_workers!r}")
        self.connection = connection
        self.ops: QueueOperations = connection.queue(queue).ops
        self.clock = connection.clock
        self.policy = policy
        self.actuator = actuator
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.holder = holder or default_holder()
        self.lock_ttl = check_positive(lock_ttl, "lock_ttl")
        self.margin = (
            min(self.lock_ttl * 0.2, 5.0) if margin is None else check_positive(margin, "margin", allow_zero=True)
        )
        if self.margin >= self.lock_ttl:
            raise InvalidOptionError("margin must be shorter than lock_ttl")
        self.window_minutes = window_minutes
        self.worker_ttl = worker_ttl
        self.token = 0
        self.target: int | None = None
        self.lease: Lease | None = None
        self.live = LiveMetrics()

    @property
    def queue(self) -> str:
        return self.ops.name

    def _state(self, snap: QueueSnapshot) -> PoolState:
        state = self.actuator.pool_state() if self.actuator is not None else None
        if state is not None:
            return state
        if snap.live_workers is not None:
            # A worker that is connected but not consuming does not count as ready: the policy
            # sizes the pool by the workers that take jobs.
            return PoolState(max(0, snap.live_workers - len(snap.not_consuming)))
        return PoolState(self.target if self.target is not None else self.min_workers)

    def tick_op(self) -> Op[Tick]:
        """The Redis side of one tick (lock, snapshot, decision, fenced publish); acting is left to the caller."""
        had = self.token
        lease: Lease = yield acquire(self.ops, self.holder, self.lock_ttl, self.token)
        if not lease.done:
            self.token = 0
            return Tick(False, lease, lost=had > 0)
        if lease.token != had:
            self.token = lease.token
            reset: Callable[[], None] | None = getattr(self.policy, "reset", None)
            if reset is not None:
                reset()  # a new term: estimates from an earlier one are stale
            self.target = None
        snap: QueueSnapshot = yield from snapshot_op(
            self.ops, window_minutes=self.window_minutes, worker_ttl=self.worker_ttl
        )
        state = self._state(snap)
        current = (
            self.target if self.target is not None else min(max(state.current, self.min_workers), self.max_workers)
        )
        metrics = self.live.metrics(
            snap, state, target=current, min_workers=self.min_workers, max_workers=self.max_workers
        )
        target = int(self.policy.decide(metrics))
        target = min(max(target, self.min_workers), self.max_workers)
        decision = ScaleDecision(
            queue=self.queue,
            target=target,
            reasons=tuple(getattr(self.policy, "reasons", ()) or ()),
            token=lease.token,
            holder=self.holder,
            at=snap.at,
            policy=self.policy.name,
            values={
                **dict(getattr(self.policy, "values", {}) or {}),
                "min": self.min_workers,
                "max": self.max_workers,
                "ready": state.ready,
                "starting": state.starting,
                "draining": state.draining,
                "not_consuming": len(snap.not_consuming),
            },
        )
        published: Lease = yield publish(self.ops, self.holder, lease.token, decision)
        if not published.done:
            self.token = 0
            return Tick(False, published, lost=True)
        return Tick(True, lease, decision)

    def _act(self, tick: Tick) -> Tick:
        self.lease = tick.lease
        if tick.leader and tick.decision is not None:
            if tick.lease.valid(self.clock.now(), self.margin):
                self.target = tick.decision.target
                if self.actuator is not None:
                    self.actuator.apply(tick.decision.target)
                return Tick(True, tick.lease, tick.decision, acted=True)
            return tick
        if tick.lost and self.actuator is not None:
            self.actuator.stand_down()
        return tick

    def may_act(self) -> bool:
        """True while this coordinator holds the lock with time in hand, on its own clock."""
        return self.lease is not None and self.token > 0 and self.lease.valid(self.clock.now(), self.margin)

    def tick(self) -> Tick:
        """One round with the connection's sync client."""
        return self._act(run_sync(self.connection.backend, self.tick_op()))

    async def atick(self) -> Tick:
        """One round with the connection's asyncio client."""
        with hold(self.clock):
            tick = await run_async(self.connection.async_backend(), self.tick_op())
        return self._act(tick)

    def _release_call(self) -> Any:
        token, self.token = self.token, 0
        self.lease = None
        return release(self.ops, self.holder, token)

    def release(self) -> bool:
        """Give the lock up (on a clean stop), so a standby takes over at once."""
        if not self.token:
            return False
        done: bool = run_sync(self.connection.backend, self._release_call()).done
        return done

    async def arelease(self) -> bool:
        if not self.token:
            return False
        with hold(self.clock):
            lease: Lease = await run_async(self.connection.async_backend(), self._release_call())
        return lease.done


async def run_coordinator(
    coordinator: Coordinator,
    *,
    interval: float = 15.0,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[Tick], None] | None = None,
) -> int:
    """Tick ``coordinator`` every ``interval`` seconds of its clock until ``stop`` is set (or for
    ``duration`` seconds); returns the ticks at which it led. Redis errors are logged and retried at
    the next tick. The lock is released at the end, so a standby takes over at once."""
    clock = coordinator.clock
    stop = stop or asyncio.Event()
    started = clock.now()
    led = 0
    try:
        while not stop.is_set() and (duration is None or clock.now() - started < duration):
            try:
                tick = await coordinator.atick()
            except JqcError as exc:
                log.warning("coordinator of %s: tick failed: %s", coordinator.queue, exc)
            else:
                led += tick.leader
                if on_tick is not None:
                    on_tick(tick)
            wait = interval if duration is None else min(interval, max(0.0, started + duration - clock.now()))
            sleeper = asyncio.ensure_future(clock.sleep(wait))
            waiter = asyncio.ensure_future(stop.wait())
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, waiter):
                task.cancel()
            await asyncio.gather(sleeper, waiter, return_exceptions=True)
    finally:
        try:
            await coordinator.arelease()
        except JqcError as exc:
            log.warning("coordinator of %s: could not release the lock: %s", coordinator.queue, exc)
    return led
