"""Stopping a worker: gracefully (``close``, a first signal), or at once (``kill``).

Graceful shutdown, in order: stop claiming and wait for the dispatchers; give running jobs the
grace period (cut short by a second signal); hand the unfinished ones back to waiting without
counting an attempt (their reports are retried for at most one lock duration, after which stall
recovery takes them back); halt the chores; give up the stall lease and unregister. Killing skips
all of that, as if the process died: held jobs stay active until stall recovery takes them back.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from jqc.worker import registry
from jqc.worker.reporter import WorkerStats
from jqc.worker.shared import Shared

__all__ = ["Shutdown"]


class Shutdown:
    """Ends one worker's run; ``release`` frees its thread pool, ``stats`` says what it did."""

    def __init__(self, shared: Shared, *, release: Callable[[], None], stats: Callable[[], WorkerStats]) -> None:
        self.shared = shared
        self.release = release
        self.stats = stats

    def on_signal(self, sig: signal.Signals, close: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """SIGTERM/SIGINT under ``Worker.run``: the first starts ``close()``, a second cuts the grace short."""
        shared, lifecycle = self.shared, self.shared.lifecycle
        if lifecycle.closing is None:
            shared.log.warning(
                "worker %s: %s received, finishing in-flight jobs (grace %g s)",
                shared.id,
                sig.name,
                shared.options.grace,
            )
            lifecycle.signal_task = asyncio.get_running_loop().create_task(close())
        elif lifecycle.started and not lifecycle.signals.hurry.done():
            shared.log.warning("worker %s: %s received again, handing unfinished jobs back now", shared.id, sig.name)
            lifecycle.hurry()

    async def graceful(self, grace: float) -> None:
        """Stop claiming, let running jobs finish within ``grace`` seconds, hand the rest back, unregister."""
        shared, lifecycle = self.shared, self.shared.lifecycle
        lifecycle.stop_claiming()
        dispatchers = [lane.dispatcher for lane in shared.lanes if lane.dispatcher is not None]
        await asyncio.gather(*dispatchers, return_exceptions=True)
        for lane in shared.lanes:
            lane.busy()
        if shared.runners:
            sleeper: asyncio.Future[Any] = asyncio.ensure_future(shared.clock.sleep(grace))
            everyone: asyncio.Future[Any] = asyncio.ensure_future(asyncio.wait(set(shared.runners)))
            try:
                await asyncio.wait({sleeper, everyone, lifecycle.signals.hurry}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                everyone.cancel()
        lifecycle.give_up_at = shared.clock.now() + shared.options.lock
        unfinished = [held for lane in shared.lanes for held in lane.held.values()]
        if unfinished:
            shared.log.warning("worker %s: handing %d unfinished jobs back", shared.id, len(unfinished))
        for held in unfinished:
            held.give_up("the worker is shutting down", hand_back=True)
        if shared.runners:
            await asyncio.gather(*shared.runners, return_exceptions=True)
        lifecycle.halt_chores()
        await asyncio.gather(*shared.chores, return_exceptions=True)
        for lane in shared.lanes:
            try:
                await shared.run(lane, registry.give_up_lease(lane.queue.ops, registry.STALL_LEASE, shared.id))
                await shared.run(lane, registry.unregister(lane.queue.ops, shared.id))
            except Exception as exc:
                shared.log.warning("worker %s: could not unregister from %s: %s", shared.id, lane.name, exc)
        self.finish()
        shared.log.info("worker %s stopped: %s", shared.id, self.stats())

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
