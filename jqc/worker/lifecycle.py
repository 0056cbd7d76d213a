"""Where a worker is in its one run, and the signals its loops wait on.

A worker goes ``new -> running -> stopping -> closed`` once (:class:`WorkerState`); ``kill`` and a
``close`` before ``start`` jump to ``closed``. :class:`Lifecycle` holds the state and the futures
set along the way, so every loop waits on the same few signals:

* ``stop``: claiming ends (shutdown began); dispatchers and the stall loop return, idle waits end;
* ``hurry``: a second SIGTERM/SIGINT cut the grace period short;
* ``halt``: the chores (lock renewal, heartbeat) end, once no job is held any more;
* ``closed``: the worker is done (what ``serve`` and ``run_until_empty`` wait for).

The futures need a running event loop, so they are made by :meth:`Lifecycle.begin` (in
``Worker.start``), not when the worker is built. The chores end on ``halt`` rather than by
cancellation alone: Python 3.11's ``wait_for`` (used by redis-py) can swallow a cancel.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from jqc.clock import Clock

__all__ = ["Lifecycle", "Signals", "WorkerState"]


class WorkerState(enum.Enum):
    """Where a worker is in its one run."""

    NEW = "new"  # built, not started
    RUNNING = "running"  # claiming and running jobs
    STOPPING = "stopping"  # shutting down: no more claims, running jobs finish or are handed back
    CLOSED = "closed"  # done (closed, killed, or closed before it started)


@dataclass(frozen=True, slots=True)
class Signals:
    """The futures a running worker's loops wait on (see the module docstring)."""

    stop: asyncio.Future[None]
    hurry: asyncio.Future[None]
    halt: asyncio.Future[None]
    closed: asyncio.Future[None]


def _fire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Lifecycle:
    """The state of one worker's run and the signals that move it on, timed by ``clock``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.state = WorkerState.NEW
        self.killed = False  # stopped by kill(): no hand-back, writes are abandoned
        self.give_up_at: float | None = None  # shutdown: writes retried past this clock time are given up
        self.closing: asyncio.Task[None] | None = None  # the graceful shutdown, once close() began it
        self.signal_task: asyncio.Task[None] | None = None  # the close() a signal started
        self.registered = False  # it reached Redis and listed itself (so shutdown unregisters it)
        self.quiet = asyncio.Event()  # set whenever a lane may have run out of work (burst mode looks again)
        self._signals: Signals | None = None

    @property
    def running(self) -> bool:
        return self.state is WorkerState.RUNNING

    @property
    def started(self) -> bool:
        """True once :meth:`begin` made the signals."""
        return self._signals is not None

    @property
    def signals(self) -> Signals:
        if self._signals is None:
            raise RuntimeError("the worker has not started")
        return self._signals

    def begin(self) -> None:
        """``new -> running``: make the signals on the running event loop."""
        if self.state is not WorkerState.NEW:
            raise RuntimeError(f"a worker runs once; this one is {self.state.value}")
        loop = asyncio.get_running_loop()
        self.state = WorkerState.RUNNING
        self._signals = Signals(loop.create_future(), loop.create_future(), loop.create_future(), loop.create_future())

    def stop_claiming(self) -> None:
        """``-> stopping``: set ``stop`` (and wake burst mode to look again)."""
        self.state = WorkerState.STOPPING
        if self._signals is not None:
            _fire(self._signals.stop)
        self.quiet.set()

    def hurry(self) -> None:
        """Set ``hurry``: shutdown cuts the grace period short."""
        if self._signals is not None:
            _fire(self._signals.hurry)

    def halt_chores(self) -> None:
        """Set ``halt``: lock renewal and heartbeat end."""
        if self._signals is not None:
            _fire(self._signals.halt)

    def finish(self) -> None:
        """``-> closed``: set ``closed`` (and wake burst mode)."""
        self.state = WorkerState.CLOSED
        if self._signals is not None:
            _fire(self._signals.closed)
        self.quiet.set()

    async def until_stopped(self, aw: Awaitable[Any]) -> bool:
        """Wait for ``aw`` or the stop signal (``aw`` is cancelled if still running); True when stopping."""
        stop = self.signals.stop
        fut = asyncio.ensure_future(aw)
        try:
            await asyncio.wait({fut, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            fut.cancel()
        return stop.done()

    async def nap(self, seconds: float, until: asyncio.Future[None]) -> bool:
        """Sleep on the clock unless ``until`` is set first; True when it is set (time to stop)."""
        if until.done():
            return True
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({sleeper, until}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        return until.done()
