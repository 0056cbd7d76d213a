"""Waiting for a job to finish (``Queue.wait_for``, ``AsyncQueue.wait_for``, ``Job.wait``).

A waiter is woken by the queue's event stream, never by polling the job: every waiter of one queue
on one backend (the sync backend, or one event loop's asyncio backend) shares one reader, which
blocks on ``XREAD BLOCK`` from the stream's position and hands each event to the waiters of its
job. A waiter reads the job when it starts (after the reader has fixed its position in the stream,
so no event can fall between the two), again whenever an event may have ended it (``completed``,
``failed``, ``removed``, ``drained``), and once more when its time is up: a job that finished
before the deadline is never reported as timed out, even when its event was never written (a
worker with events off) or was trimmed away.

Time: the timeout is measured on the queue's clock. Async waiters sleep on it (a virtual clock's
autojump may move it while the reader blocks, since a blocked read holds no clock); sync waiters
block until another thread moves a virtual clock past their deadline (see
:func:`jqc.clock.block_until`). The reader's blocking reads are real time, in rounds of at most
:data:`WAIT_ROUND` seconds, on both backends (the embedded one blocks on its store's changes); they
end early when an entry arrives and never decide a timeout.

The decisions (what a read job or an event means for the wait) are written once, as a generator
that yields calls and waits; a sync and an async runner drive it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeAlias

from jqc.backends.base import AsyncBackend, SyncBackend
from jqc.clock import Clock, block_until, hold
from jqc.engine.calls import Step, run_async, run_sync
from jqc.engine.job import MAX_DELAY, Job, JobState
from jqc.engine.keys import validate_job_id
from jqc.engine.ops_reading import Reading
from jqc.engine.results import Event
from jqc.errors import InvalidOptionError, JobFailedError, JobNotFoundError, JqcError, WaitTimeoutError

__all__ = ["WAIT_ROUND", "wait_async", "wait_sync"]

#: Seconds of real time one shared blocking read of the event stream lasts at most.
WAIT_ROUND = 2.0
#: Events that may end the wait for their job, and events (without a job) that may end any wait.
ENDS_JOB = frozenset({"completed", "failed", "removed", "cancelled"})
ENDS_ANY = frozenset({"drained"})


@dataclass(frozen=True, slots=True)
class _Until:
    """Wait for the next event about the job, or until ``deadline`` (queue clock; None: no limit)."""

    deadline: float | None


Plan: TypeAlias = Generator["Step[Any] | _Until", Any, Any]


def _checked_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout <= MAX_DELAY:
        raise InvalidOptionError(f"timeout must be None or a number of seconds from 0 to {MAX_DELAY}, not {timeout!r}")
    if math.isnan(timeout):
        raise InvalidOptionError("timeout must not be NaN")
    return float(timeout)


def _settled(job: Job | None, job_id: str, queue: str, woken_by: Event | None) -> tuple[bool, Any]:
    """(True, result) when the wait ends with a result, (False, None) to go on waiting; raises
    :class:`JobFailedError` or :class:`JobNotFoundError` when it ends otherwise."""
    if job is not None:
        if job.state is JobState.COMPLETED:
            return True, job.result
        if job.state is JobState.FAILED:
            raise JobFailedError(job_id, job.failure_reason, job.failure_code, traceback=job.traceback, job=job)
        return False, None
    if woken_by is not None and woken_by.name == "failed":  # deleted as it failed (remove_on_fail)
        raise JobFailedError(job_id, woken_by.fields.get("reason"), woken_by.fields.get("code") or None)
    if woken_by is not None and woken_by.name == "cancelled":  # cancelled before it started: deleted
        raise JobFailedError(job_id, f"cancelled: {woken_by.fields.get('reason', '')}", "cancelled")
    if woken_by is not None and woken_by.name == "completed":
        raise JobNotFoundError(
            f"job {job_id} of queue {queue!r} completed, but its record was deleted before its result "
            "could be read (remove_on_complete): keep completed jobs a while to wait for their results"
        )
    raise JobNotFoundError(f"job {job_id} is not in queue {queue!r} (never added, or removed)")


def _plan(ops: Reading, job_id: str, timeout: float | None, deadline: float | None, events: bool) -> Plan:
    """The wait, as calls to run and waits to make; returns the result or raises."""
    job: Job | None = yield ops.get_job(job_id)
    done, result = _settled(job, job_id, ops.name, None)
    if done:
        return result
    if not events:
        raise InvalidOptionError(
            f"job {job_id} has not finished, and waiting for it needs the event stream: this queue object "
            "was opened with events_max_len=0 (open one with events to wait)"
        )
    while True:
        event: Event | None = yield _Until(deadline)
        job = yield ops.get_job(job_id)
        done, result = _settled(job, job_id, ops.name, event)
        if done:
            return result
        if event is None:  # time is up, and that last read found it unfinished
            assert timeout is not None and job is not None
            raise WaitTimeoutError(job_id, timeout, job.state)


class _Waiter:
    """One wait: the events about its job handed over by the reader, or the reader's failure."""

    __slots__ = ("error", "events", "job_id", "wake")

    def __init__(self, job_id: str, wake: threading.Event | asyncio.Event) -> None:
        self.job_id = job_id
        self.events: list[Event] = []
        self.error: JqcError | None = None
        self.wake = wake


class _Watch:
    """The waiters of one queue's stream on one backend, and where its reader has read to."""

    def __init__(self) -> None:
        self.waiters: dict[str, list[_Waiter]] = {}
        self.position: str | None = None

    def deliver(self, events: list[Event]) -> list[_Waiter]:
        """Hand each event to the waiters it concerns; returns those to wake."""
        woken: list[_Waiter] = []
        for event in events:
            if event.name in ENDS_JOB:
                concerned = self.waiters.get(event.job_id, [])
            elif event.name in ENDS_ANY:
                concerned = [w for waiters in self.waiters.values() for w in waiters]
            else:
                continue
            for waiter in concerned:
                waiter.events.append(event)
                woken.append(waiter)
        return woken

    def fail(self, error: JqcError) -> list[_Waiter]:
        """Every waiter gets the reader's failure; the next reader starts from a fresh position."""
        self.position = None
        everyone = [w for waiters in self.waiters.values() for w in waiters]
        for waiter in everyone:
            waiter.error = error
        return everyone

    def add(self, waiter: _Waiter) -> None:
        self.waiters.setdefault(waiter.job_id, []).append(waiter)

    def remove(self, waiter: _Waiter) -> None:
        waiters = self.waiters.get(waiter.job_id, [])
        if waiter in waiters:
            waiters.remove(waiter)
        if not waiters:
            self.waiters.pop(waiter.job_id, None)


def _take(waiter: _Waiter) -> Event | None:
    if waiter.error is not None:
        raise waiter.error
    return waiter.events.pop(0) if waiter.events else None


# -- sync: one reader thread per (sync backend, stream) --------------------------------------------


class _SyncWatch(_Watch):
    """Its reader is a thread that runs while there are waiters (the backend is kept by the thread
    only, so the registry's weak reference to it can lapse)."""

    def __init__(self, ops: Reading) -> None:
        super().__init__()
        self.ops = ops
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.thread: threading.Thread | None = None

    def join(self, waiter: _Waiter, backend: SyncBackend) -> None:
        """Register ``waiter``; return once the reader's position is fixed (or it failed)."""
        with self.lock:
            self.add(waiter)
            if self.thread is None:
                self.ready = threading.Event()
                name = f"jqc-wait-{self.ops.name}"
                self.thread = threading.Thread(target=self._read, args=(backend,), name=name, daemon=True)
                self.thread.start()
            ready = self.ready
        ready.wait()

    def leave(self, waiter: _Waiter) -> None:
        with self.lock:
            self.remove(waiter)

    def _read(self, backend: SyncBackend) -> None:
        try:
            position = run_sync(backend, self.ops.last_event_id())
            with self.lock:
                self.position = position
            self.ready.set()
            while True:
                with self.lock:
                    if not self.waiters:
                        self.thread, self.position = None, None
                        return
                    position = self.position
                assert position is not None
                events = run_sync(backend, self.ops.events(position, count=1000, block=WAIT_ROUND))
                with self.lock:
                    if events:
                        self.position = events[-1].id
                    woken = self.deliver(events)
                for waiter in woken:
                    waiter.wake.set()
        except JqcError as exc:
            with self.lock:
                woken = self.fail(exc)
                self.thread = None
            self.ready.set()
            for waiter in woken:
                waiter.wake.set()

    def next_event(self, waiter: _Waiter, clock: Clock, deadline: float | None) -> Event | None:
        wake = waiter.wake
        assert isinstance(wake, threading.Event)
        while True:
            with self.lock:
                event = _take(waiter)
            if event is not None or (deadline is not None and clock.now() >= deadline):
                return event
            block_until(clock, wake, deadline)
            wake.clear()  # whatever set it is in waiter.events (checked next) or is the deadline


_SYNC: weakref.WeakKeyDictionary[SyncBackend, dict[str, _SyncWatch]] = weakref.WeakKeyDictionary()
_SYNC_LOCK = threading.Lock()


def wait_sync(backend: SyncBackend, ops: Reading, job_id: str, timeout: float | None) -> Any:
    """Block until job ``job_id`` finishes: its result, or the typed error (see the module docstring)."""
    validate_job_id(job_id)
    limit = _checked_timeout(timeout)
    deadline = None if limit is None else ops.clock.now() + limit
    events = ops.events_max_len > 0 and limit != 0
    with _SYNC_LOCK:
        watches = _SYNC.setdefault(backend, {})
        watch = watches.get(ops.keys.events) or watches.setdefault(ops.keys.events, _SyncWatch(ops))
    waiter = _Waiter(job_id, threading.Event())
    if events:
        watch.join(waiter, backend)
    try:
        plan = _plan(ops, job_id, limit, deadline, events or limit == 0)
        request = next(plan)
        while True:
            if isinstance(request, _Until):
                request = plan.send(watch.next_event(waiter, ops.clock, request.deadline))
            else:
                request = plan.send(run_sync(backend, request))
    except StopIteration as stop:
        return stop.value
    finally:
        if events:
            watch.leave(waiter)


# -- async: one reader task per (event loop's backend, stream) ---------------------------------------


class _AsyncWatch(_Watch):
    """Its reader is a task that runs while there are waiters, cancelled when the last one leaves."""

    def __init__(self, ops: Reading) -> None:
        super().__init__()
        self.ops = ops
        self.task: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] | None = None

    async def join(self, waiter: _Waiter, backend: AsyncBackend) -> None:
        self.add(waiter)
        if self.task is None or self.task.done():
            self.ready = asyncio.get_running_loop().create_future()
            self.task = asyncio.ensure_future(self._read(backend, self.ready))
        assert self.ready is not None
        await asyncio.shield(self.ready)

    def leave(self, waiter: _Waiter) -> None:
        self.remove(waiter)
        if not self.waiters and self.task is not None:
            self.task.cancel()  # nobody left to wake: end the blocked read now
            self.task, self.position = None, None

    async def _read(self, backend: AsyncBackend, ready: asyncio.Future[None]) -> None:
        try:
            with hold(self.ops.clock):
                self.position = await run_async(backend, self.ops.last_event_id())
            ready.set_result(None)
            while self.waiters and self.position is not None:
                events = await run_async(backend, self.ops.events(self.position, count=1000, block=WAIT_ROUND))
                if events:
                    self.position = events[-1].id
                for waiter in self.deliver(events):
                    waiter.wake.set()
        except JqcError as exc:
            for waiter in self.fail(exc):
                waiter.wake.set()
            if not ready.done():
                ready.set_exception(exc)

    async def next_event(self, waiter: _Waiter, clock: Clock, deadline: float | None) -> Event | None:
        wake = waiter.wake
        assert isinstance(wake, asyncio.Event)
        while True:
            event = _take(waiter)
            if event is not None or (deadline is not None and clock.now() >= deadline):
                return event
            woken = asyncio.ensure_future(wake.wait())
            waits: set[asyncio.Future[Any]] = {woken}
            if deadline is not None:
                waits.add(asyncio.ensure_future(clock.sleep(deadline - clock.now())))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pending in waits:
                    pending.cancel()
            wake.clear()


_ASYNC: weakref.WeakKeyDictionary[AsyncBackend, dict[str, _AsyncWatch]] = weakref.WeakKeyDictionary()


async def wait_async(backend: AsyncBackend, ops: Reading, job_id: str, timeout: float | None) -> Any:
    """The coroutine form of :func:`wait_sync`."""
    validate_job_id(job_id)
    limit = _checked_timeout(timeout)
    deadline = None if limit is None else ops.clock.now() + limit
    events = ops.events_max_len > 0 and limit != 0
    watches = _ASYNC.setdefault(backend, {})
    watch = watches.get(ops.keys.events) or watches.setdefault(ops.keys.events, _AsyncWatch(ops))
    waiter = _Waiter(job_id, asyncio.Event())
    try:
        if events:
            await watch.join(waiter, backend)
        plan = _plan(ops, job_id, limit, deadline, events or limit == 0)
        request = next(plan)
        while True:
            if isinstance(request, _Until):
                request = plan.send(await watch.next_event(waiter, ops.clock, request.deadline))
            else:
                with hold(ops.clock):
                    reply = await run_async(backend, request)
                request = plan.send(reply)
    except StopIteration as stop:
        return stop.value
    finally:
        if events:
            watch.leave(waiter)
