"""What every part of one running worker shares, handed to each part explicitly.

The parts (:mod:`~jqc.worker.dispatch`, :mod:`~jqc.worker.jobs`, :mod:`~jqc.worker.settle`,
:mod:`~jqc.worker.chores`, :mod:`~jqc.worker.reporter`, :mod:`~jqc.worker.shutdown`) each get the
one :class:`Shared` the :class:`jqc.Worker` built, instead of reaching into the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jqc.clock import Clock, hold
from jqc.engine.calls import Step, run_async
from jqc.worker.health import Reconnect
from jqc.worker.lane import Lane
from jqc.worker.lifecycle import Lifecycle
from jqc.worker.options import WorkerOptions

__all__ = ["Shared"]

T = TypeVar("T")


@dataclass(eq=False)
class Shared:
    """One worker's identity, settings, lanes and run state."""

    id: str
    name: str  # the worker's name (its host's unless given)
    options: WorkerOptions
    clock: Clock  # the queues' clock (they share one)
    log: logging.Logger
    lanes: list[Lane]
    health: Reconnect  # the shared reconnect backoff of every loop
    lifecycle: Lifecycle
    tally: Counter[str] = field(default_factory=Counter)  # what :class:`WorkerStats` counts, by field name
    runners: set[asyncio.Task[None]] = field(default_factory=set)  # job and report tasks (shutdown waits for them)
    chores: list[asyncio.Task[None]] = field(default_factory=list)  # renewal, stall check, heartbeat (end on halt)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``work`` as one of the worker's runners (kill cancels them, shutdown waits for them)."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self.runners.add(task)
        task.add_done_callback(self.runners.discard)
        return task

    def accepting(self, lane: Lane) -> bool:
        """True while the worker takes new jobs for ``lane`` (running, and the lane not rate limited)."""
        return self.lifecycle.running and self.clock.now() >= lane.pause_until

    async def run(self, lane: Lane, step: Step[T]) -> T:
        """Run one engine step on the lane's connection."""
        with hold(self.clock):  # as AsyncQueue does: a virtual clock must not autojump while the call is in flight
            return await run_async(lane.queue.connection.async_backend(), step)
