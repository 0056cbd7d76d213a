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

Before claiming, the worker waits for Redis to answer (logging every failed attempt; see
``connect_timeout``). Every Redis failure is logged as what it is and retried with a capped
exponential backoff, so a worker rides out a Redis restart; every call has a deadline in the
backend, so a silent connection fails the call instead of hanging the worker. Locks are renewed
only for runs making progress (:mod:`~jqc.worker.chores`), and a run whose lock is lost is given
up at once. Shutdown stops claiming, lets running jobs finish within a grace period, then hands
the rest back without counting an attempt, and always ends within the grace plus a few seconds
(:mod:`~jqc.worker.shutdown`); under :meth:`Worker.run` and :meth:`Worker.serve` SIGTERM and
SIGINT start it (:mod:`~jqc.worker.signals`). The log says what happens (:mod:`~jqc.worker.logs`).

:class:`Worker` is the facade; the parts live beside it: :mod:`~jqc.worker.options` (the tunables),
:mod:`~jqc.worker.lifecycle` (state and signals), :mod:`~jqc.worker.dispatch` (claiming),
:mod:`~jqc.worker.jobs` (running handlers), :mod:`~jqc.worker.settle` (reporting outcomes),
:mod:`~jqc.worker.chores` (lock renewal, stall recovery), :mod:`~jqc.worker.reporter` (stats,
heartbeat, summaries), :mod:`~jqc.worker.startup`, :mod:`~jqc.worker.signals` and
:mod:`~jqc.worker.shutdown`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import random
import signal
import socket
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, final

from jqc.engine.async_queue import AsyncQueue
from jqc.engine.job import BackoffFunction, Keep
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError
from jqc.worker.chores import Chores
from jqc.worker.dispatch import Dispatcher
from jqc.worker.execute import Handler
from jqc.worker.health import Reconnect
from jqc.worker.jobs import HandlerTable, JobRunner
from jqc.worker.lane import Lane
from jqc.worker.lifecycle import Lifecycle, WorkerState
from jqc.worker.logs import fields
from jqc.worker.observer import BoundObserver, JobObserver
from jqc.worker.options import WorkerOptions, check_count, check_seconds
from jqc.worker.reporter import Reporter, WorkerStats
from jqc.worker.shared import Shared
from jqc.worker.shutdown import GOODBYE, Shutdown
from jqc.worker.signals import handling_signals
from jqc.worker.startup import reach_redis

__all__ = ["JobObserver", "QueueSpec", "Worker", "WorkerStats"]

QueueLike: TypeAlias = AsyncQueue | Queue
QueueSpec: TypeAlias = QueueLike | Sequence[QueueLike | tuple[QueueLike, int]]

log = logging.getLogger("jqc.worker")

_SERIAL = itertools.count(1)  # keeps worker ids unique in a process even with equally seeded rngs
_DEFAULTS = WorkerOptions()


def _as_async(queue: object) -> AsyncQueue:
    if isinstance(queue, AsyncQueue):
        return queue
    if isinstance(queue, Queue):
        twin = AsyncQueue(queue.name, queue.connection)
        twin.ops = queue.ops  # the same sans-IO call builder (and so the same settings and clock)
        return twin
    raise InvalidOptionError(f"a worker runs jqc.Queue or jqc.AsyncQueue objects, not {queue!r}")


def _lanes(queues: QueueSpec, options: WorkerOptions) -> list[Lane]:
    lanes: list[Lane] = []
    items: Sequence[Any] = [queues] if isinstance(queues, (AsyncQueue, Queue)) else list(queues)
    if not items:
        raise InvalidOptionError("a worker needs at least one queue")
    for item in items:
        queue, n = item if isinstance(item, tuple) else (item, options.concurrency)
        n = check_count(n, "concurrency")
        aq = _as_async(queue)
        if any(lane.name == aq.name and lane.queue.connection is aq.connection for lane in lanes):
            raise InvalidOptionError(f"queue {aq.name!r} is listed twice")
        lanes.append(Lane(aq, n, options.lane_batch(n)))
    if any(lane.queue.clock is not lanes[0].queue.clock for lane in lanes):
        raise InvalidOptionError("all queues of a worker must share one clock")
    return lanes


@final
class Worker:
    """Runs handlers for the jobs of one or more queues.

    ``queues`` is a queue, or a list of queues and ``(queue, concurrency)`` pairs. ``handler`` is an
    ``async def handler(ctx: JobContext)`` or a plain ``def handler(ctx: SyncJobContext)`` (run in a
    thread pool), or a mapping from job name to such handlers. Its return value (JSON) is the
    job's result. All times are seconds on the queues' clock (which they must share).

    The tunables (``concurrency`` to ``health_file``) are described on
    :class:`~jqc.worker.options.WorkerOptions`; pass them as keywords, or as one ``options=``
    (then leave the keywords at their defaults). :attr:`options` holds them either way.

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
        connect_timeout: float | None = None,
        summary_interval: float | None = 30.0,
        schedule_interval: float | None = 10.0,
        stuck_after: float | None = None,
        health_file: str | None = None,
        keep_completed: Keep | None = None,
        keep_failed: Keep | None = None,
        backoff_functions: Mapping[str, BackoffFunction] | None = None,
        rng: random.Random | None = None,
        executor: concurrent.futures.Executor | None = None,
        logger: logging.Logger | None = None,
        observer: JobObserver | None = None,
        options: WorkerOptions | None = None,
    ) -> None:
        given = WorkerOptions(
            concurrency=concurrency,
            name=name,
            lock=lock,
            renew_interval=renew_interval,
            stall_interval=stall_interval,
            max_stalls=max_stalls,
            timeout=timeout,
            batch=batch,
            grace=grace,
            heartbeat=heartbeat,
            idle_block=idle_block,
            reconnect_delay=reconnect_delay,
            connect_timeout=connect_timeout,
            summary_interval=summary_interval,
            schedule_interval=schedule_interval,
            stuck_after=stuck_after,
            health_file=health_file,
            keep_completed=keep_completed,
            keep_failed=keep_failed,
        )
        if options is not None:
            if not isinstance(options, WorkerOptions):
                raise InvalidOptionError(f"options must be a jqc.worker.options.WorkerOptions, not {options!r}")
            if given != _DEFAULTS:
                raise InvalidOptionError("pass a worker's tunables as options= or as keywords, not both")
            given = options
        self.options: WorkerOptions = given
        self.rng = rng or random.Random()
        self.backoff_functions = dict(backoff_functions or {})
        self.log = logger or log
        self.lanes: list[Lane] = _lanes(queues, given)
        self.clock = self.lanes[0].queue.clock
        handlers = HandlerTable(handler)

        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = (given.name or self.host)[:150]
        if not isinstance(self.name, str) or not self.name:
            raise InvalidOptionError(f"worker name must be a non-empty str, not {given.name!r}")
        self.id = f"{self.name}:{self.pid}:{next(_SERIAL)}:{self.rng.getrandbits(24):06x}"
        first, cap = given.reconnect_delay
        self._lifecycle = Lifecycle(self.clock)
        self._shared = Shared(
            id=self.id,
            name=self.name,
            options=given,
            clock=self.clock,
            log=self.log,
            lanes=self.lanes,
            health=Reconnect(self.clock, self.log, self.id, first=first, cap=cap, rng=self.rng),
            lifecycle=self._lifecycle,
        )
        self._jobs = JobRunner(
            self._shared,
            handlers,
            rng=self.rng,
            backoff_functions=self.backoff_functions,
            executor=executor,
            hooks=BoundObserver(observer, self) if observer is not None else None,
            thread_prefix=f"jqc-{self.name[:20]}",
        )
        self._dispatcher = Dispatcher(self._shared, self._jobs.start)
        self._chores = Chores(self._shared)
        self._reporter = Reporter(self._shared, host=self.host, pid=self.pid)
        self._shutdown = Shutdown(self._shared, release=self._jobs.release, stats=self._reporter.stats)

    # -- settings (see WorkerOptions) -------------------------------------------------------------

    @property
    def lock(self) -> float:
        """Seconds each claimed job stays locked between renewals (``WorkerOptions.lock``)."""
        return self.options.lock

    @property
    def renew_interval(self) -> float:
        """Seconds between two renewals of every held lock."""
        return self.options.effective_renew_interval

    @property
    def stall_interval(self) -> float:
        """Seconds between two stall checks (by whichever worker holds the queue's stall lease)."""
        return self.options.effective_stall_interval

    @property
    def max_stalls(self) -> int:
        """How many times a job may stall (its holder died) before it fails for good."""
        return self.options.max_stalls

    @property
    def timeout(self) -> float | None:
        """The default per-run time limit in seconds (a job's own ``timeout`` wins), or None."""
        return self.options.timeout

    @property
    def grace(self) -> float:
        """Seconds running jobs get to finish when the worker closes, before they are handed back."""
        return self.options.grace

    @property
    def heartbeat(self) -> float:
        """Seconds between two heartbeats in each queue's worker registry."""
        return self.options.heartbeat

    @property
    def idle_block(self) -> float:
        """Longest a blocking wait on the event stream lasts while idle, in seconds."""
        return self.options.idle_block

    # -- public lifecycle ------------------------------------------------------------------------

    @property
    def state(self) -> WorkerState:
        """Where the worker is in its one run."""
        return self._lifecycle.state

    @property
    def stats(self) -> WorkerStats:
        """What this worker did since it started (a snapshot)."""
        return self._reporter.stats()

    @property
    def running(self) -> bool:
        """True between start and the beginning of shutdown."""
        return self._lifecycle.running

    @property
    def active(self) -> int:
        """Jobs held right now."""
        return sum(len(lane.held) for lane in self.lanes)

    def __repr__(self) -> str:
        return f"Worker({self.id!r}, queues={[lane.name for lane in self.lanes]!r}, {self._lifecycle.state.value})"

    async def start(self) -> None:
        """Reach Redis, register, then start claiming; returns once the worker runs (in background tasks).

        Until Redis answers, every failed attempt is logged with its backoff; with
        ``connect_timeout`` the worker gives up after that long with :class:`jqc.ConnectionLostError`
        (and is closed). A :meth:`close` meanwhile ends the wait.
        """
        self._lifecycle.begin()
        loop = asyncio.get_running_loop()
        try:
            reached = await reach_redis(self._shared)
        except BaseException:
            self._shutdown.finish()
            raise
        if not reached:
            return
        self._reporter.started_at = self.clock.now()
        self._jobs.open()
        self._lifecycle.registered = True
        await self._reporter.beat_all()
        self.log.info(
            "worker %s started on %s",
            self.id,
            ", ".join(f"{lane.name} (concurrency {lane.concurrency})" for lane in self.lanes),
            extra=fields("started", worker=self.id, queues={lane.name: lane.concurrency for lane in self.lanes}),
        )
        self._dispatcher.launch()
        # The chores end when halt is set (the stall loop already when claiming stops), not by
        # cancellation alone: Python 3.11's wait_for (used by redis-py) can swallow a cancel.
        self._shared.chores[:] = [
            loop.create_task(self._chores.renew_loop(), name="jqc-renew"),
            loop.create_task(self._chores.stall_loop(), name="jqc-stall"),
            loop.create_task(self._reporter.heartbeat_loop(), name="jqc-heartbeat"),
        ]
        if self.options.schedule_interval is not None:
            self._shared.chores.append(loop.create_task(self._chores.schedule_loop(), name="jqc-schedules"))
        if self.options.summary_interval is not None:
            self._shared.chores.append(loop.create_task(self._reporter.summary_loop(), name="jqc-summary"))
        if self.options.health_file is not None:
            health = self._reporter.health_file_loop(self.options.health_file)
            self._shared.chores.append(loop.create_task(health, name="jqc-health-file"))

    async def close(self, grace: float | None = None) -> None:
        """Stop claiming, give running jobs ``grace`` seconds (default: the worker's) to finish, then
        hand the rest back to waiting without counting an attempt, and unregister."""
        lifecycle = self._lifecycle
        if lifecycle.state is WorkerState.NEW:
            lifecycle.state = WorkerState.CLOSED
            return
        if lifecycle.closing is None:
            if lifecycle.state is WorkerState.CLOSED or lifecycle.killed:
                return
            wait = self.grace if grace is None else check_seconds(grace, "grace", low=0, high=86400)
            lifecycle.closing = asyncio.get_running_loop().create_task(self._shutdown.graceful(wait))
        await asyncio.shield(lifecycle.closing)

    async def kill(self) -> None:
        """Stop at once as if the process died: no hand-back, no unregistering (for tests and fault
        injection). Held jobs stay active in Redis until stall recovery takes them back."""
        if self._lifecycle.state in (WorkerState.NEW, WorkerState.CLOSED):
            self._lifecycle.state = WorkerState.CLOSED
            return
        await self._shutdown.kill()

    async def serve(self, *, handle_signals: bool = True) -> None:
        """Start (unless started) and run until :meth:`close` or :meth:`kill`; closes on cancellation.

        With ``handle_signals`` (in the main thread) SIGTERM and SIGINT close the worker gracefully
        as under :meth:`run` (a second one hands unfinished jobs back at once), unless the
        application handles them itself (see :mod:`jqc.worker.signals`).
        """
        with contextlib.ExitStack() as stack:
            if handle_signals:
                stack.enter_context(handling_signals(asyncio.get_running_loop(), self._on_signal, take_over=False))
            if self._lifecycle.state is WorkerState.NEW:
                await self.start()
            try:
                await asyncio.shield(self._lifecycle.signals.closed)
            except asyncio.CancelledError:
                await self.close()
                raise

    def _on_signal(self, sig: signal.Signals) -> None:
        self._shutdown.on_signal(sig, self.close)

    async def run_until_empty(self, *, delayed: bool = False) -> WorkerStats:
        """Burst mode: work until no job of the worker's queues is waiting (or due) or active, then close.

        With ``delayed=True`` also wait for delayed jobs (retries in backoff included) to run. A
        paused queue counts as empty.
        """
        if self._lifecycle.state is WorkerState.NEW:
            await self.start()
        closed, quiet_event = self._lifecycle.signals.closed, self._lifecycle.quiet
        try:
            while not closed.done():
                quiet_event.clear()
                if await self._all_empty(delayed):
                    break
                quiet: asyncio.Future[Any] = asyncio.ensure_future(quiet_event.wait())
                try:
                    await asyncio.wait({quiet, closed}, return_when=asyncio.FIRST_COMPLETED)
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
            with handling_signals(asyncio.get_running_loop(), self._on_signal, take_over=True):
                try:
                    if burst:
                        await self.run_until_empty(delayed=delayed)
                    else:
                        await self.serve(handle_signals=False)
                finally:
                    # The clients of this loop were made for this run; close them with it.
                    for conn in {id(lane.queue.connection): lane.queue.connection for lane in self.lanes}.values():
                        await self._shutdown.bounded(conn.aclose(), GOODBYE, what="close the connection")

        asyncio.run(main())
        return self.stats

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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
                self._shared.health.failed(f"count jobs in {lane.name}", exc)
                return False
            self._shared.health.ok(f"count jobs in {lane.name}")
            if counts.paused:
                continue
            if counts.waiting or counts.active or (delayed and counts.delayed):
                return False
        return True
