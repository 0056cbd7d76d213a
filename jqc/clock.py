"""Time, injected: every engine, worker and simulator reading of "now" goes through a :class:`Clock`.

The engine passes the caller's ``now`` to every Lua script, so nothing in jqc depends on the Redis
server's clock or on keys expiring there. Swapping :class:`SystemClock` for :class:`VirtualClock`
therefore moves delays, backoff, lock expiry, stall detection, rate windows and retention together,
on the embedded backend and on a real server alike.

Clock skew between hosts: each client stamps its own time. A worker whose clock runs *ahead* sees
locks expire early (it may recover jobs that are still being worked, which fencing tokens then
make harmless: the old holder's writes are rejected) and promotes delayed jobs early by the skew;
a clock running *behind* delays both. Keep hosts NTP-synchronised to well under the lock duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock", "block_until", "hold", "now_ms"]


@runtime_checkable
class Clock(Protocol):
    """Where jqc gets the time and how it waits."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


def hold(clock: Clock) -> contextlib.AbstractContextManager[None]:
    """``clock.hold()`` for a clock that has one (VirtualClock), else a context that does nothing."""
    holder = getattr(clock, "hold", None)
    return holder() if holder is not None else contextlib.nullcontext()


def now_ms(clock: Clock) -> int:
    """The clock's time in whole milliseconds, as the scripts take it."""
    return int(clock.now() * 1000)


def block_until(clock: Clock, wake: threading.Event, when: float | None) -> None:
    """Block the calling thread until ``wake`` is set or ``clock`` reads ``when`` or later (never, for None).

    What sync code uses to wait on a clock: on the system clock a real-time wait; on a
    :class:`VirtualClock` until another thread moves the clock past ``when`` (the waiting thread
    never moves it itself); on any other clock, real-time slices of at most 50 ms that re-read it.
    """
    if when is None:
        wake.wait()
    elif isinstance(clock, VirtualClock):
        clock._block_until(wake, when)
    elif isinstance(clock, SystemClock):
        wake.wait(max(0.0, when - time.time()))
    else:
        while not wake.is_set() and (left := when - clock.now()) > 0:
            wake.wait(min(left, 0.05))


class SystemClock:
    """The real wall clock (the only place in jqc that reads it)."""

    def now(self) -> float:
        """The wall clock: seconds since the Unix epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time (asyncio.sleep)."""
        await asyncio.sleep(max(0.0, seconds))


#: 2026-01-01T00:00:00Z, a fixed, readable start for virtual time.
VIRTUAL_EPOCH = 1_767_225_600.0


class _Busy:
    """One :meth:`VirtualClock.busy` block: open until it exits; ``waiting`` counts its clock sleeps."""

    __slots__ = ("clock", "open", "waiting")

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.open = True
        self.waiting = 0


_BUSY: contextvars.ContextVar[_Busy | None] = contextvars.ContextVar("jqc_clock_busy", default=None)


class VirtualClock:
    """A clock that only moves when told to (or, with ``autojump``, when everyone is asleep).

    ``advance`` and ``move_to`` wake every :meth:`sleep` whose deadline has been reached, in
    deadline order. With ``autojump=True`` a sleeper that finds nothing else runnable on the event
    loop jumps the clock straight to the earliest deadline, so simulated hours pass in
    milliseconds of wall time.

    Real work in flight (a Redis round trip, say) leaves the event loop with nothing runnable
    although the program is not idle. Code doing such work wraps it in :meth:`hold` (the engine's
    asyncio calls do), and autojump waits until no hold is left, so virtual time never races
    past a lock while its renewal is on the wire. :meth:`busy` holds the clock for a piece of work
    that may itself wait on this clock (a job handler under test): time stands still while it
    works, and moves while it sleeps on the clock.
    """

    def __init__(self, start: float = VIRTUAL_EPOCH, *, autojump: bool = False) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.autojump = autojump
        self._jumper: asyncio.Task[None] | None = None
        self._holds = 0
        self._released: asyncio.Event | None = None
        self._released_loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[tuple[float, int, threading.Event]] = []  # sync waiters (block_until)
        self._threads_lock = threading.Lock()

    def now(self) -> float:
        """The virtual time, in seconds since the Unix epoch: it moves only by advance, move_to or an autojump."""
        return self._now

    def advance(
        self, seconds: float | timedelta = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0
    ) -> None:
        """Move time forward by ``seconds`` (a number or a timedelta) plus ``minutes``, ``hours`` and
        ``days`` (``advance(days=1)``); the sum must not be negative."""
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        seconds = seconds + 60.0 * minutes + 3600.0 * hours + 86400.0 * days
        if seconds < 0:
            raise ValueError("a virtual clock advances by a non-negative amount; use move_to to go back")
        self.move_to(self._now + seconds)

    def move_to(self, when: float) -> None:
        """Set the time to ``when`` (backwards too, to model a clock jump) and wake due sleepers."""
        self._now = float(when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done() and not fut.get_loop().is_closed():  # one clock may outlive many loops
                fut.set_result(None)
        if self._threads:
            with self._threads_lock:
                while self._threads and self._threads[0][0] <= self._now:
                    heapq.heappop(self._threads)[2].set()

    def _block_until(self, wake: threading.Event, when: float) -> None:
        """:func:`block_until` on this clock: ``wake`` is set by whichever thread moves the time to ``when``."""
        entry = (when, next(self._order), wake)
        with self._threads_lock:
            if self._now >= when:
                return
            heapq.heappush(self._threads, entry)
        try:
            wake.wait()
        finally:
            with self._threads_lock:
                if entry in self._threads:
                    self._threads.remove(entry)
                    heapq.heapify(self._threads)

    def freeze(self) -> None:
        """Stop autojumping: time moves only by :meth:`advance` and :meth:`move_to`."""
        self.autojump = False

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Mark real work in flight: autojump does not move time until every hold is released."""
        self._holds += 1
        try:
            yield
        finally:
            self._release()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Hold the clock while this block (and the tasks it starts) works, except while it waits in
        this clock's :meth:`sleep`: its real waits do not let autojump move time, its clock sleeps do."""
        state = _Busy(self)
        self._holds += 1
        token = _BUSY.set(state)
        try:
            yield
        finally:
            _BUSY.reset(token)
            state.open = False
            if state.waiting == 0:
                self._release()

    def _release(self) -> None:
        self._holds -= 1
        if self._holds == 0 and self._released is not None:
            self._released.set()

    def next_deadline(self) -> float | None:
        """The earliest pending sleep deadline, if any."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def sleep(self, seconds: float) -> None:
        """Wait until the virtual time has moved on ``seconds`` (with autojump it jumps once every task waits)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), fut))
        jumper = self._jumper
        if self.autojump and (jumper is None or jumper.done() or jumper.get_loop() is not loop):
            self._jumper = loop.create_task(self._autojump())
        busy = _BUSY.get()
        if busy is None or busy.clock is not self or not busy.open:
            await fut
            return
        busy.waiting += 1  # a busy block asleep on this clock lets time move
        if busy.waiting == 1:
            self._release()
        try:
            await fut
        finally:
            busy.waiting -= 1
            if busy.waiting == 0 and busy.open:  # (a block that ended meanwhile has no hold to take back)
                self._holds += 1

    async def _autojump(self) -> None:
        # Let every runnable task run first; jump only when the loop has nothing else to do.
        loop = asyncio.get_running_loop()
        while self.autojump:  # freeze() stops a jumper that is already running, too
            for _ in range(20):
                await asyncio.sleep(0)
            if self._holds:
                if self._released is None or self._released_loop is not loop:  # an Event binds to one loop
                    self._released, self._released_loop = asyncio.Event(), loop
                self._released.clear()
                await self._released.wait()
                continue
            ready = getattr(loop, "_ready", None)
            if ready is not None and len(ready) > 0:
                continue
            deadline = self.next_deadline()
            if deadline is None:
                return
            self.move_to(max(deadline, self._now))
