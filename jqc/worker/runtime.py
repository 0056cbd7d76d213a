"""The worker runtime: claims jobs from one or more queues and runs their handlers on asyncio.

One :class:`Worker` holds, per queue, up to ``concurrency`` jobs. Around the handlers run a few
small loops, all timed by the queues' injected clock:

* a dispatcher per queue claims in batches when slots are free; a finishing job claims its
  successor in the same call (``complete(..., fetch_next=1)``), and jobs that finish while an
  earlier completion is on its way are reported together, claiming as many successors, in one
  round trip (``complete_many``); an idle dispatcher blocks on the queue's event stream (see
  :mod:`jqc.worker.lane`) instead of polling;
* one renewal loop extends the locks of every held job in one call per queue, every
  ``renew_interval``; a job whose lock turns out lost is given up (its writes would be rejected);
* one stall loop recovers jobs whose lock expired, on every queue where this worker holds the
  ``stall`` lease (one worker at a time per queue);
* one heartbeat loop keeps the worker listed in each queue's worker registry.

Every Redis failure is logged and retried with a capped exponential backoff, so a worker rides
out a Redis restart. Shutdown stops claiming, lets running jobs finish within a grace period, then
hands the rest back without counting an attempt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import random
import signal
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar, final

from jqc import _json
from jqc.clock import hold
from jqc.engine.calls import Step, run_async
from jqc.engine.codes import Code
from jqc.engine.job import BackoffFunction, ClaimedJob
from jqc.engine.operations import ClaimResult, CompleteResult
from jqc.engine.queue import AsyncQueue, Queue
from jqc.errors import InvalidInputError, InvalidOptionError, LockLostError
from jqc.worker import registry
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.execute import Handler, Kind, Outcome, is_async, run_handler
from jqc.worker.health import Reconnect
from jqc.worker.lane import WAKE_ON, Finished, Held, Lane, last_event_id

__all__ = ["JobObserver", "QueueSpec", "Worker", "WorkerStats"]

T = TypeVar("T")
QueueLike: TypeAlias = AsyncQueue | Queue
QueueSpec: TypeAlias = QueueLike | Sequence[QueueLike | tuple[QueueLike, int]]

log = logging.getLogger("jqc.worker")

_MAX_LOCK = 24 * 3600.0
_REPORT_BATCH = 64  # successes reported in one call at most (bounds the time one script runs)
_REPORTERS = 1  # report calls in flight per lane (more did not pay: each call costs a round trip of CPU)
_SERIAL = itertools.count(1)  # keeps worker ids unique in a process even with equally seeded rngs


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """What one worker did, counted since it started."""

    completed: int = 0
    retried: int = 0  # failed attempts that will run again
    failed: int = 0  # jobs failed for good by this worker
    released: int = 0  # handed back without counting an attempt (rate limited, shutdown)
    lost: int = 0  # jobs given up because their lock was lost (a write was rejected)
    timed_out: int = 0
    recovered: int = 0  # stalled jobs this worker's stall checks put back to waiting
    stalled_failed: int = 0  # stalled jobs failed for good for stalling too often
    reconnects: int = 0  # outages of Redis this worker rode out

    @property
    def processed(self) -> int:
        return self.completed + self.retried + self.failed


def _seconds(value: object, what: str, *, low: float, high: float, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidOptionError(f"{what} must be a number of seconds between {low} and {high}, not {value!r}")
    return float(value)


def _count(value: object, what: str, *, low: int = 1, high: int = 100_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidOptionError(f"{what} must be an int between {low} and {high}, not {value!r}")
    return value


def _as_async(queue: object) -> AsyncQueue:
    if isinstance(queue, AsyncQueue):
        return queue
    if isinstance(queue, Queue):
        twin = AsyncQueue(queue.name, queue.connection)
        twin.ops = queue.ops  # the same sans-IO call builder (and so the same settings and clock)
        return twin
    raise InvalidOptionError(f"a worker runs jqc.Queue or jqc.AsyncQueue objects, not {queue!r}")


def _socket_timeout(client: Any) -> float | None:
    """The read timeout of a redis-py client's connections (None when unset or unknown)."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    value = kwargs.get("socket_timeout") if isinstance(kwargs, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _consume(task: asyncio.Future[Any]) -> None:
    # An event read given up on (cancelled, or cut off when the client closed) may end in an error
    # nobody awaits; read it so asyncio does not log it as never retrieved.
    if not task.cancelled():
        task.exception()


class JobObserver(Protocol):
    """Told when each handler run starts and ends (``jqc.testing`` records runs and injects faults with it).

    Both are awaited in the job's task on the worker's event loop: ``started`` just before the
    handler is called, ``finished`` once it returned, raised, timed out or was given up, before the
    worker reports the outcome. The job stays held (its lock renewed) meanwhile. An exception from
    either is logged and otherwise ignored; cancellation (the worker being killed) goes through.
    """

    async def started(self, worker: Worker, ctx: JobContext | SyncJobContext) -> None: ...

    async def finished(self, worker: Worker, ctx: JobContext | SyncJobContext, outcome: Outcome) -> None: ...


@final
class Worker:
    """Runs handlers for the jobs of one or more queues.

    ``queues`` is a queue, or a list of queues and ``(queue, concurrency)`` pairs. ``handler`` is an
    ``async def handler(ctx: JobContext)`` or a plain ``def handler(ctx: SyncJobContext)`` (run in a
    thread pool), or a mapping from job name to such handlers. Its return value (JSON) is the
    job's result. All times are seconds on the queues' clock (which they must share).

    A worker runs once: ``await start()`` then ``await close()``, or ``async with``, or
    ``await serve()``, ``await run_until_empty()``, or the blocking ``run()``.
    """

    def __init__(
        self,
        queues: QueueSpec,
        handler: Handler | Mapping[str, Handler],
        *,
        concurrency: int = 10,
        name: str | None = None,
        lock: float = 30.0,
        renew_interval: float | None = None,
        stall_interval: float | None = None,
        max_stalls: int = 1,
        timeout: float | None = None,
        batch: int | None = None,
        grace: float = 30.0,
        heartbeat: float = 5.0,
        idle_block: float = 2.0,
        reconnect_delay: tuple[float, float] = (0.05, 5.0),
        backoff_functions: Mapping[str, BackoffFunction] | None = None,
        rng: random.Random | None = None,
        executor: concurrent.futures.Executor | None = None,
        logger: logging.Logger | None = None,
        observer: JobObserver | None = None,
    ) -> None:
        self.lock = float(_seconds(lock, "lock", low=0.01, high=_MAX_LOCK) or 0)
        default_renew = self.lock / 3
        self.renew_interval = float(
            _seconds(renew_interval or default_renew, "renew_interval", low=0.001, high=self.lock * 0.9) or 0
        )
        default_stall = self.lock / 2
        self.stall_interval = float(
            _seconds(stall_interval or default_stall, "stall_interval", low=0.001, high=86400) or 0
        )
        self.max_stalls = _count(max_stalls, "max_stalls", low=0, high=10**9)
        self.timeout = _seconds(timeout, "timeout", low=0.001, high=10 * 365 * 86400.0, allow_none=True)
        self.grace = float(_seconds(grace, "grace", low=0, high=86400) or 0)
        self.heartbeat = float(_seconds(heartbeat, "heartbeat", low=0.001, high=3600) or 0)
        self.idle_block = float(_seconds(idle_block, "idle_block", low=0.001, high=3600) or 0)
        first, cap = reconnect_delay
        _seconds(first, "reconnect_delay[0]", low=0.001, high=3600)
        _seconds(cap, "reconnect_delay[1]", low=first, high=3600)
        self.rng = rng or random.Random()
        self.backoff_functions = dict(backoff_functions or {})
        self.log = logger or log
        self._observer = observer

        self.lanes: list[Lane] = []
        items: Sequence[Any] = [queues] if isinstance(queues, (AsyncQueue, Queue)) else list(queues)
        if not items:
            raise InvalidOptionError("a worker needs at least one queue")
        for item in items:
            queue, n = item if isinstance(item, tuple) else (item, concurrency)
            n = _count(n, "concurrency")
            lane_batch = _count(batch, "batch", high=10_000) if batch is not None else n
            aq = _as_async(queue)
            if any(lane.name == aq.name and lane.queue.connection is aq.connection for lane in self.lanes):
                raise InvalidOptionError(f"queue {aq.name!r} is listed twice")
            self.lanes.append(Lane(aq, n, min(lane_batch, n)))
        self.clock = self.lanes[0].queue.clock
        if any(lane.queue.clock is not self.clock for lane in self.lanes):
            raise InvalidOptionError("all queues of a worker must share one clock")

        if callable(handler):
            self._handlers: dict[str, tuple[Handler, bool]] = {}
            self._default: tuple[Handler, bool] | None = (handler, is_async(handler))
        elif isinstance(handler, Mapping) and handler:
            self._handlers = {}
            for job_name, fn in handler.items():
                if not isinstance(job_name, str) or not callable(fn):
                    raise InvalidOptionError(f"handlers map job names to callables, not {job_name!r}: {fn!r}")
                self._handlers[job_name] = (fn, is_async(fn))
            self._default = None
        else:
            raise InvalidOptionError(
                f"handler must be a callable or a mapping of job names to callables, not {handler!r}"
            )

        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = (name or self.host)[:150]
        if not isinstance(self.name, str) or not self.name:
            raise InvalidOptionError(f"worker name must be a non-empty str, not {name!r}")
        self.id = f"{self.name}:{self.pid}:{next(_SERIAL)}:{self.rng.getrandbits(24):06x}"
        self._executor = executor
        self._own_executor = False
        self._health = Reconnect(self.clock, self.log, self.id, first=first, cap=cap, rng=self.rng)
        self._stats: Counter[str] = Counter()
        self._runners: set[asyncio.Task[None]] = set()
        self._chores: list[asyncio.Task[None]] = []
        self._halt: asyncio.Future[None] | None = None  # set when the chores (renewal, heartbeat) must end
        self._killed = False
        self._started_at = 0.0
        self._state = "new"  # new -> running -> stopping -> closed
        self._stop: asyncio.Future[None] | None = None
        self._hurry: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._quiet = asyncio.Event()
        self._give_up_at: float | None = None
        self._signal_task: asyncio.Task[None] | None = None

    # -- public lifecycle ------------------------------------------------------------------------

    @property
    def stats(self) -> WorkerStats:
        counts = dict(self._stats)
        counts["reconnects"] = self._health.outages
        return WorkerStats(**counts)

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def active(self) -> int:
        """Jobs held right now."""
        return sum(len(lane.held) for lane in self.lanes)

    def __repr__(self) -> str:
        return f"Worker({self.id!r}, queues={[lane.name for lane in self.lanes]!r}, {self._state})"

    async def start(self) -> None:
        """Register, then start claiming; returns at once (the worker runs in background tasks)."""
        if self._state != "new":
            raise RuntimeError(f"a worker runs once; this one is {self._state}")
        loop = asyncio.get_running_loop()
        self._state = "running"
        self._stop = loop.create_future()
        self._hurry = loop.create_future()
        self._closed = loop.create_future()
        self._halt = loop.create_future()
        self._started_at = self.clock.now()
        if self._executor is None and any(not a for _, a in self._all_handlers()):
            workers = sum(lane.concurrency for lane in self.lanes)
            self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=f"jqc-{self.name[:20]}")
            self._own_executor = True
        await self._beat_all()
        self.log.info(
            "worker %s started on %s",
            self.id,
            ", ".join(f"{lane.name} (concurrency {lane.concurrency})" for lane in self.lanes),
        )
        for lane in self.lanes:
            lane.dispatcher = loop.create_task(self._dispatch(lane), name=f"jqc-dispatch-{lane.name}")
        # The chores end when _halt is set (the stall loop already when claiming stops), not by
        # cancellation alone: Python 3.11's wait_for (used by redis-py) can swallow a cancel.
        self._chores = [
            loop.create_task(self._renew_loop(), name="jqc-renew"),
            loop.create_task(self._stall_loop(), name="jqc-stall"),
            loop.create_task(self._heartbeat_loop(), name="jqc-heartbeat"),
        ]

    async def close(self, grace: float | None = None) -> None:
        """Stop claiming, give running jobs ``grace`` seconds (default: the worker's) to finish, then
        hand the rest back to waiting without counting an attempt, and unregister."""
        if self._state == "new":
            self._state = "closed"
            return
        if self._closing is None:
            if self._state == "closed" or self._killed:
                return
            wait = self.grace if grace is None else float(_seconds(grace, "grace", low=0, high=86400) or 0)
            self._closing = asyncio.get_running_loop().create_task(self._shutdown(wait))
        await asyncio.shield(self._closing)

    async def kill(self) -> None:
        """Stop at once as if the process died: no hand-back, no unregistering (for tests and fault
        injection). Held jobs stay active in Redis until stall recovery takes them back."""
        if self._state in ("new", "closed"):
            self._state = "closed"
            return
        self._killed = True
        self._signal_stop()
        self._halt_chores()
        tasks: list[asyncio.Future[Any]] = [*self._runners, *self._chores]
        tasks += [lane.dispatcher for lane in self.lanes if lane.dispatcher is not None]
        for lane in self.lanes:
            for held in list(lane.held.values()):
                held.ctx._abandon("the worker was killed")
        if self._closing is not None:
            tasks.append(self._closing)
        for task in tasks:
            task.cancel()
        self._finish()  # before waiting: whatever still runs (a swallowed cancel) sees the worker closed
        await asyncio.gather(*tasks, return_exceptions=True)
        self.log.warning("worker %s killed", self.id)

    async def serve(self) -> None:
        """Start (unless started) and run until :meth:`close` or :meth:`kill`; closes on cancellation."""
        if self._state == "new":
            await self.start()
        assert self._closed is not None
        try:
            await asyncio.shield(self._closed)
        except asyncio.CancelledError:
            await self.close()
            raise

    async def run_until_empty(self, *, delayed: bool = False) -> WorkerStats:
        """Burst mode: work until no job of the worker's queues is waiting (or due) or active, then close.

        With ``delayed=True`` also wait for delayed jobs (retries in backoff included) to run. A
        paused queue counts as empty.
        """
        if self._state == "new":
            await self.start()
        assert self._closed is not None
        try:
            while not self._closed.done():
                self._quiet.clear()
                if await self._all_empty(delayed):
                    break
                quiet: asyncio.Future[Any] = asyncio.ensure_future(self._quiet.wait())
                try:
                    await asyncio.wait({quiet, self._closed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    quiet.cancel()
        finally:
            await self.close()
        return self.stats

    def run(self, *, burst: bool = False, delayed: bool = False) -> WorkerStats:
        """Run the worker in a new event loop until SIGTERM/SIGINT (or until empty with ``burst``).

        The first signal closes gracefully (in-flight jobs get the grace period); a second one cuts
        the grace short and hands unfinished jobs back at once.
        """

        async def main() -> None:
            loop = asyncio.get_running_loop()
            installed: list[signal.Signals] = []
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not the main thread
                    pass
            try:
                if burst:
                    await self.run_until_empty(delayed=delayed)
                else:
                    await self.serve()
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)
                # The clients of this loop were made for this run; close them with it.
                for conn in {id(lane.queue.connection): lane.queue.connection for lane in self.lanes}.values():
                    await conn.aclose()

        asyncio.run(main())
        return self.stats

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- shutdown ---------------------------------------------------------------------------------

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._closing is None:
            self.log.warning(
                "worker %s: %s received, finishing in-flight jobs (grace %g s)", self.id, sig.name, self.grace
            )
            self._signal_task = asyncio.get_running_loop().create_task(self.close())
        elif self._hurry is not None and not self._hurry.done():
            self.log.warning("worker %s: %s received again, handing unfinished jobs back now", self.id, sig.name)
            self._hurry.set_result(None)

    def _signal_stop(self) -> None:
        self._state = "stopping"
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)
        self._quiet.set()

    async def _shutdown(self, grace: float) -> None:
        self._signal_stop()
        dispatchers = [lane.dispatcher for lane in self.lanes if lane.dispatcher is not None]
        await asyncio.gather(*dispatchers, return_exceptions=True)
        for lane in self.lanes:
            lane.busy()
        if self._runners:
            assert self._hurry is not None
            sleeper: asyncio.Future[Any] = asyncio.ensure_future(self.clock.sleep(grace))
            everyone: asyncio.Future[Any] = asyncio.ensure_future(asyncio.wait(set(self._runners)))
            try:
                await asyncio.wait({sleeper, everyone, self._hurry}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                everyone.cancel()
        self._give_up_at = self.clock.now() + self.lock
        unfinished = [held for lane in self.lanes for held in lane.held.values()]
        if unfinished:
            self.log.warning("worker %s: handing %d unfinished jobs back", self.id, len(unfinished))
        for held in unfinished:
            held.give_up("the worker is shutting down", hand_back=True)
        if self._runners:
            await asyncio.gather(*self._runners, return_exceptions=True)
        self._halt_chores()
        await asyncio.gather(*self._chores, return_exceptions=True)
        for lane in self.lanes:
            try:
                await self._run(lane, registry.give_up_lease(lane.queue.ops, registry.STALL_LEASE, self.id))
                await self._run(lane, registry.unregister(lane.queue.ops, self.id))
            except Exception as exc:
                self.log.warning("worker %s: could not unregister from %s: %s", self.id, lane.name, exc)
        self._finish()
        self.log.info("worker %s stopped: %s", self.id, self.stats)

    def _halt_chores(self) -> None:
        if self._halt is not None and not self._halt.done():
            self._halt.set_result(None)

    def _finish(self) -> None:
        self._state = "closed"
        for lane in self.lanes:
            lane.busy()
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        self._quiet.set()

    # -- helpers ----------------------------------------------------------------------------------

    def _all_handlers(self) -> list[tuple[Handler, bool]]:
        return [*self._handlers.values(), *([self._default] if self._default else [])]

    async def _run(self, lane: Lane, step: Step[T]) -> T:
        with hold(self.clock):  # as AsyncQueue does: a virtual clock must not autojump while the call is in flight
            return await run_async(lane.queue.connection.async_backend(), step)

    async def _until_stopped(self, aw: Awaitable[Any]) -> bool:
        """Wait for ``aw`` or the stop signal; True when stopping."""
        assert self._stop is not None
        fut = asyncio.ensure_future(aw)
        try:
            await asyncio.wait({fut, self._stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            fut.cancel()
        return self._stop.done()

    async def _pause(self, where: str, exc: BaseException) -> None:
        """Back off after a failed call (the shared reconnect policy), unless stopping."""
        await self._until_stopped(self.clock.sleep(self._health.failed(where, exc)))

    def _accepting(self, lane: Lane) -> bool:
        return self._state == "running" and self.clock.now() >= lane.pause_until

    # -- claiming ---------------------------------------------------------------------------------

    async def _dispatch(self, lane: Lane) -> None:
        while self._state == "running":
            if lane.free <= 0:
                lane.slot_freed.clear()
                await self._until_stopped(lane.slot_freed.wait())
                continue
            wait = lane.pause_until - self.clock.now()
            if wait > 0:
                await self._until_stopped(self.clock.sleep(wait))
                continue
            asked = min(lane.free, lane.batch)
            try:
                result = await lane.queue.claim(self.id, count=asked, lock=self.lock)
            except Exception as exc:
                await self._pause(f"claim from {lane.name}", exc)
                continue
            self._health.ok()
            lane.note(result)
            if result.status == Code.OK and result.jobs:
                for claimed in result.jobs:
                    self._start_job(lane, claimed)
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
                self._quiet.set()
            await self._idle(lane, result)

    async def _idle(self, lane: Lane, result: ClaimResult) -> None:
        assert self._stop is not None
        names = WAKE_ON.get(result.status, frozenset())
        if names and lane.watch_id is None:
            try:
                lane.watch_id = await self._run(lane, last_event_id(lane.queue))
            except Exception as exc:
                await self._pause(f"read the event stream of {lane.name}", exc)
            return  # claim once more: whatever was added before watch_id is visible to that claim
        now = self.clock.now()
        until = now + self.stall_interval
        if result.retry_at is not None:
            # Half a millisecond past the due time, so the claim's whole-ms "now" has reached it.
            until = min(until, result.retry_at + 0.0005)
        if until <= now:
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(until - now))
        try:
            while True:
                waits: set[asyncio.Future[Any]] = {sleeper, self._stop}
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
                    if reader.result() or sleeper in done or self._stop.done():
                        return
                    continue
                return
        finally:
            sleeper.cancel()

    async def _read_events(self, lane: Lane, names: frozenset[str]) -> bool:
        """One bounded XREAD BLOCK from the lane's stream position; True if a wake-up event came."""
        start = lane.watch_id or "0-0"
        block = self.idle_block
        limit = _socket_timeout(lane.queue.connection.async_backend())
        if limit is not None:
            block = min(block, 0.8 * limit)  # a block as long as the read timeout would read as an outage
        events = await lane.queue.events(start, count=100, block=max(0.001, block))
        self._health.ok()
        if events and lane.watch_id == start:
            lane.watch_id = events[-1].id
        return any(event.name in names for event in events)

    # -- running jobs -----------------------------------------------------------------------------

    def _hold(self, lane: Lane, claimed: ClaimedJob) -> Held:
        loop = asyncio.get_running_loop()
        entry = self._handler_for(claimed.job.name)
        ctx: JobContext | SyncJobContext
        if entry is None or entry[1]:
            ctx = JobContext(lane.queue, claimed, self.id)
        else:
            ctx = SyncJobContext(lane.queue, claimed, self.id, loop)
        held = Held(lane, claimed, ctx, loop.create_future())
        stale = lane.held.get(claimed.id)
        if stale is not None:
            # The job was claimed again (by us): its earlier token is revoked, so that run is lost.
            self.log.warning("worker %s: lost the lock of job %s in %s (claimed again)", self.id, claimed.id, lane.name)
            stale.give_up("lock lost: the job was claimed again", hand_back=False)
        lane.held[claimed.id] = held
        return held

    def _start_job(self, lane: Lane, claimed: ClaimedJob) -> None:
        held = self._hold(lane, claimed)
        task = asyncio.get_running_loop().create_task(self._work(held), name=f"jqc-job-{lane.name}-{claimed.id}")
        self._runners.add(task)
        task.add_done_callback(self._runners.discard)

    def _handler_for(self, job_name: str) -> tuple[Handler, bool] | None:
        return self._handlers.get(job_name, self._default)

    async def _work(self, held: Held | None) -> None:
        """Run a job, report it, and go on with the job its completion claimed (if any)."""
        while held is not None:
            lane = held.lane
            try:
                held = await self._process(held)
            finally:
                lane.slot_freed.set()
                if not lane.held:
                    self._quiet.set()

    async def _process(self, held: Held) -> Held | None:
        lane = held.lane
        try:
            if self._state != "running":
                held.give_up("the worker is shutting down", hand_back=True)
                outcome = Outcome(Kind.ABORTED, reason="the worker is shutting down")
            else:
                outcome = await self._observed(held)
            return await self._settle(held, outcome)
        finally:
            if lane.held.get(held.id) is held:
                del lane.held[held.id]

    async def _observed(self, held: Held) -> Outcome:
        """Run the job's handler, telling the observer (if any) before and after."""
        observer = self._observer
        if observer is None:
            return await self._execute(held)
        await self._tell(observer.started(self, held.ctx))
        outcome = await self._execute(held)
        await self._tell(observer.finished(self, held.ctx, outcome))
        return outcome

    async def _tell(self, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:
            self.log.exception("worker %s: the job observer failed", self.id)

    async def _execute(self, held: Held) -> Outcome:
        job = held.claimed.job
        entry = self._handler_for(job.name)
        if entry is None:
            return Outcome(Kind.FAIL, reason=f"no handler for job name {job.name!r} on worker {self.name}")
        handler, asynchronous = entry
        timeout = job.options.timeout if job.options.timeout is not None else self.timeout
        return await run_handler(
            handler,
            held.ctx,
            asynchronous=asynchronous,
            clock=self.clock,
            timeout=timeout,
            abort=held.abort,
            executor=self._executor,
        )

    async def _settle(self, held: Held, outcome: Outcome) -> Held | None:
        """Report the outcome; returns the next job when the completion claimed one."""
        lane, claimed, queue = held.lane, held.claimed, held.lane.queue
        held.settling = True
        kind = outcome.kind
        if kind is Kind.ABORTED and not held.hand_back:
            self._stats["lost"] += 1
            self.log.warning("worker %s: gave up job %s of %s: %s", self.id, claimed.id, lane.name, outcome.reason)
            return None
        if kind is Kind.ABORTED or kind is Kind.RATE_LIMITED:
            if kind is Kind.RATE_LIMITED:
                lane.pause_until = max(lane.pause_until, self.clock.now() + (outcome.delay or 0.0))
                self.log.info("worker %s: %s rate limited, pausing claims for %g s", self.id, lane.name, outcome.delay)
            if await self._write(held, "release", lambda: queue.release(claimed)):
                self._stats["released"] += 1
            return None
        if kind is Kind.DONE:
            try:
                if outcome.result is not None:  # None always can
                    _json.encode(outcome.result, what="result", max_bytes=queue.ops.max_data_bytes)
            except InvalidInputError as exc:
                outcome = Outcome(Kind.FAIL, reason=f"the handler's result cannot be stored: {exc}")
            else:
                return await self._report_done(held, outcome.result)
        await self._report_failure(held, outcome)
        return None

    async def _report_done(self, held: Held, result: Any) -> Held | None:
        """Queue a success for the lane's reporter; returns the job its completion claimed next."""
        lane = held.lane
        loop = asyncio.get_running_loop()
        finished = Finished(held, result, loop.create_future())
        lane.finished.append(finished)
        if lane.reporters < _REPORTERS:
            lane.reporters += 1
            task = loop.create_task(self._report_finished(lane), name=f"jqc-report-{lane.name}")
            self._runners.add(task)
            task.add_done_callback(self._runners.discard)
        return await finished.reply

    async def _report_finished(self, lane: Lane) -> None:
        """Report the lane's successes, all that finished meanwhile in one round trip, until none is left.

        One job alone goes by ``complete`` (a stale token raises); several by ``complete_many`` (a
        stale token fails only its own job). Either way each success asks for a successor while the
        worker accepts work, so a busy lane claims and completes in the same calls.
        """
        size = max(1, min(_REPORT_BATCH, -(-lane.concurrency // _REPORTERS)))
        try:
            while lane.finished:
                batch = lane.finished[:size]
                del lane.finished[:size]
                try:
                    await self._complete(lane, batch)
                finally:
                    for item in batch:
                        if not item.reply.done():
                            item.reply.set_result(None)
        finally:
            lane.reporters -= 1

    async def _complete(self, lane: Lane, batch: list[Finished]) -> None:
        queue = lane.queue
        fetch = len(batch) if self._accepting(lane) else 0
        following: ClaimResult | None = None
        if len(batch) == 1:
            held, result = batch[0].held, batch[0].result
            got: list[ClaimResult | None] = []

            async def complete() -> None:
                got.append(await queue.complete(held.claimed, result, fetch_next=fetch, lock=self.lock, worker=self.id))

            if not await self._write(held, "complete", complete):
                return
            self._stats["completed"] += 1
            following = got[-1] if got else None
        else:
            reports: list[CompleteResult] = []

            async def complete_many() -> None:
                done = [(item.held.claimed, item.result) for item in batch]
                reports.append(await queue.complete_many(done, fetch_next=fetch, lock=self.lock, worker=self.id))

            if not await self._write_batch(lane, batch, complete_many) or not reports:
                return
            report = reports[-1]
            self._stats["completed"] += len(report.completed)
            for job_id in report.lost:
                self._stats["lost"] += 1
                self.log.warning(
                    "worker %s: complete of job %s in %s rejected: its lock was lost", self.id, job_id, lane.name
                )
            following = report.next
        if following is None:
            return
        lane.note(following)
        if following.status != Code.OK:
            return
        for item, claimed in zip(batch, following.jobs, strict=False):
            if not item.reply.done():
                item.reply.set_result(self._hold(lane, claimed))
            elif not self._killed:  # its runner is gone: give the job a runner of its own
                self._start_job(lane, claimed)

    async def _report_failure(self, held: Held, outcome: Outcome) -> None:
        """A failed attempt (error, timeout, Retry), or a failure for good (Fail)."""
        claimed, queue = held.claimed, held.lane.queue
        if outcome.kind is Kind.TIMEOUT:
            self._stats["timed_out"] += 1
        retry = outcome.kind is not Kind.FAIL
        delay = outcome.delay if outcome.kind is Kind.RETRY else None
        reason = outcome.reason or outcome.kind.value
        if retry and delay is None:
            # Computed once here (not on every retried write) so a custom backoff runs once.
            try:
                delay = queue.ops.retry_delay(
                    claimed, error=outcome.error, rng=self.rng, backoff_functions=self.backoff_functions
                )
            except Exception as exc:
                retry, reason = False, f"{reason} (not retried: {exc})"
        verdict: list[str] = []

        async def fail() -> None:
            verdict.append(
                await queue.fail(
                    claimed,
                    reason,
                    traceback=outcome.traceback,
                    retry=retry,
                    delay=delay,
                    error=outcome.error,
                    rng=self.rng,
                    backoff_functions=self.backoff_functions,
                    worker=self.id,
                )
            )

        if await self._write(held, "fail", fail):
            self._stats["retried" if verdict and verdict[-1] == "retry" else "failed"] += 1

    async def _write(self, held: Held, what: str, call: Callable[[], Awaitable[Any]]) -> bool:
        """Report about a held job, retrying through outages; False if the job was lost or given up."""
        return await self._retrying(held.lane, f"job {held.id}", what, call)

    async def _write_batch(self, lane: Lane, batch: list[Finished], call: Callable[[], Awaitable[Any]]) -> bool:
        """Report about several held jobs in one call, retrying through outages; False if given up."""
        return await self._retrying(lane, f"jobs {', '.join(item.held.id for item in batch)}", "complete", call)

    async def _retrying(self, lane: Lane, jobs: str, what: str, call: Callable[[], Awaitable[Any]]) -> bool:
        while True:
            if self._killed:
                return False
            try:
                await call()
            except LockLostError as exc:
                self._stats["lost"] += 1
                self.log.warning("worker %s: %s of %s in %s rejected: %s", self.id, what, jobs, lane.name, exc)
                return False
            except Exception as exc:
                delay = self._health.failed(f"{what} {jobs} in {lane.name}", exc)
                if self._give_up_at is not None and self.clock.now() + delay > self._give_up_at:
                    self.log.warning(
                        "worker %s: could not %s %s in %s before stopping; stall recovery will take it back",
                        self.id, what, jobs, lane.name,
                    )  # fmt: skip
                    return False
                await self.clock.sleep(delay)
                continue
            self._health.ok()
            return not self._killed

    # -- chores: lock renewal, stall recovery, heartbeat ------------------------------------------

    async def _nap(self, seconds: float, until: asyncio.Future[None] | None) -> bool:
        """Sleep on the clock unless ``until`` is set first; True when it is set (time to stop)."""
        assert until is not None
        if until.done():
            return True
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({sleeper, until}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        return until.done()

    async def _renew_loop(self) -> None:
        while not await self._nap(self.renew_interval, self._halt):
            for lane in self.lanes:
                if lane.held:
                    await self._renew(lane)

    async def _renew(self, lane: Lane) -> None:
        snapshot = list(lane.held.values())
        try:
            renewed = await lane.queue.extend([h.claimed for h in snapshot], lock=self.lock)
        except Exception as exc:
            self._health.failed(f"renew locks in {lane.name}", exc)
            return
        self._health.ok()
        for held in snapshot:
            # A job being reported may have just completed (renewal and completion raced): its
            # write finds out for itself, so only a running handler is given up here.
            if renewed.get(held.id, False) or held.settling or held.abort.done() or lane.held.get(held.id) is not held:
                continue
            self.log.warning("worker %s: lost the lock of job %s in %s", self.id, held.id, lane.name)
            held.give_up("lock lost", hand_back=False)

    async def _stall_loop(self) -> None:
        while self._state == "running":
            for lane in self.lanes:
                await self._check_stalled(lane)
            if await self._nap(self.stall_interval, self._stop):
                return

    async def _check_stalled(self, lane: Lane) -> None:
        try:
            if not await self._run(
                lane, registry.lease(lane.queue.ops, registry.STALL_LEASE, self.id, self.stall_interval)
            ):
                return
            for _ in range(10):
                found = await lane.queue.recover_stalled(max_stalls=self.max_stalls)
                self._stats["recovered"] += len(found.recovered)
                self._stats["stalled_failed"] += len(found.failed)
                if found.recovered or found.failed:
                    self.log.warning(
                        "worker %s: stalled jobs in %s: %d put back (%s), %d failed for stalling too often (%s)",
                        self.id, lane.name, len(found.recovered), ", ".join(found.recovered[:10]),
                        len(found.failed), ", ".join(found.failed[:10]),
                    )  # fmt: skip
                if not found.more:
                    break
        except Exception as exc:
            self._health.failed(f"stall check of {lane.name}", exc)
            return
        self._health.ok()

    async def _heartbeat_loop(self) -> None:
        while not await self._nap(self.heartbeat, self._halt):
            await self._beat_all()

    async def _beat_all(self) -> None:
        queues = [lane.name for lane in self.lanes]
        for lane in self.lanes:
            record = {
                "name": self.name,
                "host": self.host,
                "pid": self.pid,
                "queues": queues,
                "active": len(lane.held),
                "concurrency": lane.concurrency,
                "started": int(self._started_at * 1000),
            }
            ttl = 3 * self.heartbeat
            try:
                await self._run(
                    lane, registry.heartbeat(lane.queue.ops, self.id, record, ttl=ttl, prune_after=10 * ttl)
                )
            except Exception as exc:
                self._health.failed(f"heartbeat in {lane.name}", exc)
                continue
            self._health.ok()

    # -- burst mode -------------------------------------------------------------------------------

    async def _all_empty(self, delayed: bool) -> bool:
        if any(lane.held or not lane.empty_seen for lane in self.lanes):
            return False
        now = self.clock.now()
        for lane in self.lanes:
            if not delayed and lane.last is not None and lane.last.retry_at is not None and lane.last.retry_at <= now:
                return False
            try:
                counts = await lane.queue.counts()
            except Exception as exc:
                self._health.failed(f"count jobs in {lane.name}", exc)
                return False
            if counts.paused:
                continue
            if counts.waiting or counts.active or (delayed and counts.delayed):
                return False
        return True
