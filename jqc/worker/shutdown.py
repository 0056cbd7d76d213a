"""Stopping a worker: gracefully (``close``, a first signal), or at once (``kill``).

Graceful shutdown always ends within ``grace + WRAP_UP + GOODBYE`` seconds on the worker's clock,
whatever a call to Redis is doing, in order:

1. stop claiming; running jobs (and the reports of finished ones) get the grace period, cut short
   by a second SIGTERM/SIGINT (:meth:`Lifecycle.hurry`);
2. the unfinished ones are handed back to waiting without counting an attempt; hand-backs and
   last reports are retried through outages for at most :data:`WRAP_UP` seconds, and whatever is
   still in flight then is abandoned (its job stays active until stall recovery takes it back);
3. the chores halt (a call they have in flight is abandoned);
4. the worker gives up the stall lease and unregisters, for at most :data:`GOODBYE` seconds (an
   entry left behind expires after three missed heartbeats).

Killing skips all of that, as if the process died: held jobs stay active until stall recovery
takes them back.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import asdict
from typing import Any

from jqc.worker import registry
from jqc.worker.logs import fields
from jqc.worker.reporter import WorkerStats
from jqc.worker.shared import Shared
from jqc.workflows import SCHEDULE_LEASE

__all__ = ["GOODBYE", "WRAP_UP", "Shutdown"]

#: Seconds after the grace period that hand-backs and last reports may take, whatever Redis does.
WRAP_UP = 5.0
#: Seconds giving up the stall lease and unregistering may take at the very end.
GOODBYE = 2.0
_CANCELLED = 0.5  # how long abandoned tasks get to end once cancelled (a cancel can be swallowed)


class Shutdown:
    """Ends one worker's run; ``release`` frees its thread pool, ``stats`` says what it did."""

    def __init__(self, shared: Shared, *, release: Callable[[], None], stats: Callable[[], WorkerStats]) -> None:
        self.shared = shared
        self.release = release
        self.stats = stats

    def on_signal(self, sig: signal.Signals, close: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """SIGTERM/SIGINT: the first starts ``close()``, a second cuts the grace short."""
        shared, lifecycle = self.shared, self.shared.lifecycle
        if lifecycle.closing is None:
            shared.log.warning(
                "worker %s: %s received, finishing in-flight jobs (grace %g s; send it again to hand them back now)",
                shared.id, sig.name, shared.options.grace,
                extra=fields("signal", worker=shared.id, signal=sig.name, grace=shared.options.grace, again=False),
            )  # fmt: skip
            lifecycle.signal_task = asyncio.get_running_loop().create_task(close())
        elif lifecycle.started and not lifecycle.signals.hurry.done():
            shared.log.warning(
                "worker %s: %s received again, handing unfinished jobs back now",
                shared.id, sig.name,
                extra=fields("signal", worker=shared.id, signal=sig.name, grace=shared.options.grace, again=True),
            )  # fmt: skip
            lifecycle.hurry()

    async def _within(self, seconds: float, tasks: Iterable[asyncio.Future[Any]], *, hurry: bool = False) -> bool:
        """Wait until every task is done, ``seconds`` pass on the clock, or (with ``hurry``) a second
        signal comes; True when every task is done."""
        pending = {task for task in tasks if not task.done()}
        if not pending:
            return True
        lifecycle = self.shared.lifecycle
        sleeper: asyncio.Future[Any] = asyncio.ensure_future(self.shared.clock.sleep(seconds))
        everyone: asyncio.Future[Any] = asyncio.ensure_future(asyncio.wait(pending))
        waits: set[asyncio.Future[Any]] = {sleeper, everyone}
        if hurry:
            waits.add(lifecycle.signals.hurry)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            everyone.cancel()
        return all(task.done() for task in pending)

    async def _abandon(self, tasks: Iterable[asyncio.Future[Any]], what: str) -> None:
        """Cancel the tasks still running (their calls in flight are abandoned) and give them a moment."""
        pending = [task for task in tasks if not task.done()]
        if not pending:
            return
        self.shared.log.warning("worker %s: abandoning %d %s still in flight", self.shared.id, len(pending), what)
        for task in pending:
            task.cancel()
        await self._within(_CANCELLED, pending)

    async def _bounded(self, call: Awaitable[Any], seconds: float) -> None:
        """Run ``call`` for at most ``seconds`` on the clock (then it is cancelled); errors propagate."""
        task = asyncio.ensure_future(call)
        if not await self._within(seconds, [task]):
            task.cancel()
            await self._within(_CANCELLED, [task])
            raise TimeoutError(f"no answer within {seconds:g} s")
        task.result()

    async def bounded(self, call: Awaitable[Any], seconds: float, *, what: str) -> None:
        """Run ``call`` for at most ``seconds``; a failure or an overrun is logged, not raised."""
        try:
            await self._bounded(call, seconds)
        except Exception as exc:
            self.shared.log.warning("worker %s: could not %s: %s", self.shared.id, what, exc)

    async def graceful(self, grace: float) -> None:
        """Stop claiming, let running jobs finish within ``grace`` seconds, hand the rest back, unregister."""
        shared, lifecycle = self.shared, self.shared.lifecycle
        lifecycle.stop_claiming()
        dispatchers = [lane.dispatcher for lane in shared.lanes if lane.dispatcher is not None]
        # Claiming stopped: dispatchers end at once unless a claim is in flight; the grace covers it.
        await self._within(grace, [*dispatchers, *shared.runners], hurry=True)
        await self._abandon(dispatchers, "claims")
        for lane in shared.lanes:
            lane.busy()
        lifecycle.give_up_at = shared.clock.now() + WRAP_UP
        unfinished = [held for lane in shared.lanes for held in lane.held.values() if not held.settling]
        if unfinished:
            shared.log.warning("worker %s: handing %d unfinished jobs back", shared.id, len(unfinished))
        for held in unfinished:
            held.give_up("the worker is shutting down", hand_back=True)
        if not await self._within(WRAP_UP, shared.runners):
            await self._abandon(shared.runners, "job reports (stall recovery takes their jobs back)")
        lifecycle.halt_chores()
        if not await self._within(_CANCELLED, shared.chores):
            await self._abandon(shared.chores, "chores")
        if lifecycle.registered:
            await self._goodbye()
        self.finish()
        stats = self.stats()
        shared.log.info(
            "worker %s stopped: %s", shared.id, stats, extra=fields("stopped", worker=shared.id, stats=asdict(stats))
        )

    async def _goodbye(self) -> None:
        """Give up the stall and schedule leases and unregister, within :data:`GOODBYE` seconds in all."""
        shared = self.shared
        deadline = shared.clock.now() + GOODBYE
        for lane in shared.lanes:
            try:
                left = deadline - shared.clock.now()
                if left <= 0:
                    raise TimeoutError(f"out of time ({GOODBYE:g} s)")
                for name in (registry.STALL_LEASE, SCHEDULE_LEASE):
                    await self._bounded(shared.run(lane, registry.give_up_lease(lane.queue.ops, name, shared.id)), left)
                await self._bounded(shared.run(lane, registry.unregister(lane.queue.ops, shared.id)), left)
            except Exception as exc:
                shared.log.warning(
                    "worker %s: could not unregister from %s (its entry expires on its own): %s",
                    shared.id,
                    lane.name,
                    exc,
                )

    async def kill(self) -> None:
        """Stop at once: cancel every task, abandon held jobs where they are, close."""
        shared, lifecycle = self.shared, self.shared.lifecycle
        lifecycle.killed = True
        lifecycle.stop_claiming()
        lifecycle.halt_chores()
        tasks: list[asyncio.Future[Any]] = [*shared.runners, *shared.chores]
        tasks += [lane.dispatcher for lane in shared.lanes if lane.dispatcher is not None]
        for lane in shared.lanes:
            for held in list(lane.held.values()):
                held.ctx._abandon("the worker was killed")
        if lifecycle.closing is not None:
            tasks.append(lifecycle.closing)
        for task in tasks:
            task.cancel()
        self.finish()  # before waiting: whatever still runs (a swallowed cancel) sees the worker closed
        await asyncio.gather(*tasks, return_exceptions=True)
        shared.log.warning("worker %s killed", shared.id)

    def finish(self) -> None:
        """Closed: stop watching the event streams, free the thread pool, set ``closed``."""
        for lane in self.shared.lanes:
            lane.busy()
        self.release()
        self.shared.lifecycle.finish()
