"""Claiming: one dispatcher per lane claims in batches while slots are free, and waits when idle.

An idle lane blocks on its queue's event stream (see :mod:`jqc.worker.lane`) and on the clock
until the next delayed job is due, instead of polling. A failed call backs off with the worker's
shared reconnect policy. Claimed jobs go to ``start`` (the worker's :class:`~jqc.worker.jobs.JobRunner`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from jqc.engine.codes import Code
from jqc.engine.job import ClaimedJob
from jqc.engine.operations import ClaimResult
from jqc.worker.lane import WAKE_ON, Lane, last_event_id
from jqc.worker.shared import Shared

__all__ = ["Dispatcher"]


def _consume(task: asyncio.Future[Any]) -> None:
    # An event read given up on (cancelled, or cut off when the client closed) may end in an error
    # nobody awaits; read it so asyncio does not log it as never retrieved.
    if not task.cancelled():
        task.exception()


class Dispatcher:
    """Claims jobs for the lanes of one worker and hands them to ``start``."""

    def __init__(self, shared: Shared, start: Callable[[Lane, ClaimedJob], None]) -> None:
        self.shared = shared
        self.start = start

    def launch(self) -> None:
        """Start one dispatcher task per lane (``lane.dispatcher``); each ends when claiming stops."""
        loop = asyncio.get_running_loop()
        for lane in self.shared.lanes:
            lane.dispatcher = loop.create_task(self.run(lane), name=f"jqc-dispatch-{lane.name}")

    async def run(self, lane: Lane) -> None:
        """Claim for ``lane`` while the worker runs."""
        shared, lifecycle = self.shared, self.shared.lifecycle
        while lifecycle.running:
            if lane.free <= 0:
                lane.slot_freed.clear()
                await lifecycle.until_stopped(lane.slot_freed.wait())
                continue
            wait = lane.pause_until - shared.clock.now()
            if wait > 0:
                await lifecycle.until_stopped(shared.clock.sleep(wait))
                continue
            asked = min(lane.free, lane.batch)
            started = shared.clock.now()
            try:
                result = await lane.queue.claim(shared.id, count=asked, lock=shared.options.lock)
            except Exception as exc:
                lane.claim_error = f"{type(exc).__name__}: {exc}"[:300]
                await self._pause(f"claim from {lane.name}", exc, started)
                continue
            shared.health.ok(f"claim from {lane.name}")
            lane.note(result, shared.clock.now())
            if result.status == Code.OK and result.jobs:
                for claimed in result.jobs:
                    self.start(lane, claimed)
                if len(result.jobs) < asked and lane.watch_id is not None:
                    # This claim emptied the queue and the lane still holds its place in the event
                    # stream: wait for the next event instead of claiming again (at worst a spurious
                    # wake-up; the last known due time of delayed jobs still bounds the wait). Two
                    # turns of the loop first, so the handlers just started begin before the lane
                    # sends its next blocking read.
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                    await self._idle(lane, ClaimResult(Code.EMPTY, (), lane.retry_at))
                else:
                    lane.busy()
                continue
            if not lane.held:
                lifecycle.quiet.set()
            await self._idle(lane, result)

    async def _pause(self, where: str, exc: BaseException, since: float | None = None) -> None:
        """Back off after a failed call (begun at ``since``) with the shared reconnect policy, unless stopping."""
        shared = self.shared
        await shared.lifecycle.until_stopped(shared.clock.sleep(shared.health.failed(where, exc, since=since)))

    async def _idle(self, lane: Lane, result: ClaimResult) -> None:
        shared = self.shared
        stop = shared.lifecycle.signals.stop
        names = WAKE_ON.get(result.status, frozenset())
        if names and lane.watch_id is None:
            started = shared.clock.now()
            try:
                lane.watch_id = await shared.run(lane, last_event_id(lane.queue))
            except Exception as exc:
                await self._pause(f"read the event stream of {lane.name}", exc, started)
            else:
                shared.health.ok(f"read the event stream of {lane.name}")
            return  # claim once more: whatever was added before watch_id is visible to that claim
        now = shared.clock.now()
        until = now + shared.options.effective_stall_interval
        if result.retry_at is not None:
            # Half a millisecond past the due time, so the claim's whole-ms "now" has reached it.
            until = min(until, result.retry_at + 0.0005)
        if until <= now:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(shared.clock.sleep(until - now))
        try:
            while True:
                waits: set[asyncio.Future[Any]] = {sleeper, stop}
                if names:
                    if lane.reader is None:
                        lane.reader = asyncio.ensure_future(self._read_events(lane, names))
                        lane.reader.add_done_callback(_consume)
                    waits.add(lane.reader)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                reader = lane.reader
                if reader is not None and reader in done:
                    lane.reader = None
                    if reader.cancelled():
                        return
                    failure = reader.exception()
                    if failure is not None:
                        await self._pause(f"wait for events of {lane.name}", failure)
                        return
                    if reader.result() or sleeper in done or stop.done():
                        return
                    continue
                return
        finally:
            sleeper.cancel()

    async def _read_events(self, lane: Lane, names: frozenset[str]) -> bool:
        """One bounded XREAD BLOCK from the lane's stream position; True if a wake-up event came.

        The backend gives a blocking read a deadline of its own, longer than the block: a long
        block is never mistaken for a lost connection, and a connection gone silent still fails.
        """
        start = lane.watch_id or "0-0"
        events = await lane.queue.events(start, count=100, block=max(0.001, self.shared.options.idle_block))
        self.shared.health.ok(f"wait for events of {lane.name}")
        if events and lane.watch_id == start:
            lane.watch_id = events[-1].id
        return any(event.name in names for event in events)
