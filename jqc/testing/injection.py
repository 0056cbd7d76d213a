"""Injecting a drain's faults into the runs they match (the faults themselves: :mod:`jqc.testing.faults`).

Each fault hits one run, the ``run``-th run of a matching job: at its start, at its end (after the
handler returned or raised, before the worker reports), or a number of virtual seconds in. A
crash kills the worker (the session starts a new one after the phase); a lock expiry moves the
job's lock into the past and lets a stall check recover it; a dropped connection cuts the workers
off from Redis for a while.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeAlias

from jqc.clock import Clock, VirtualClock
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError
from jqc.testing.faults import Fault, Network
from jqc.testing.report import Run
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.runtime import Worker

#: A run: (queue name, job id, token).
RunKey: TypeAlias = tuple[str, str, int]


class InjectionHost(Protocol):
    """What the injector needs from the drain session that owns it."""

    @property
    def bases(self) -> Mapping[str, Queue | AsyncQueue]: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def runs(self) -> list[Run]: ...

    @property
    def network(self) -> Network: ...

    @property
    def tasks(self) -> set[asyncio.Future[Any]]: ...

    @property
    def active(self) -> Mapping[RunKey, int]: ...


__all__ = ["Injector"]


class Injector:
    """The faults of one session, and which of them have fired."""

    def __init__(self, session: InjectionHost, faults: Sequence[Fault]) -> None:
        for fault in faults:
            if not isinstance(fault, Fault):
                raise InvalidOptionError(
                    f"faults are made by crash_worker(), expire_lock() or drop_connection(), not {fault!r}"
                )
        self.session = session
        self.faults = list(faults)
        self.hits = [0] * len(self.faults)  # runs of matching jobs seen, per fault
        self.fired = [False] * len(self.faults)
        self.armed: dict[RunKey, list[int]] = {}  # faults to inject when the run ends
        self.timers: dict[RunKey, list[asyncio.Task[None]]] = {}
        self.kill_task: asyncio.Future[None] | None = None

    async def run_started(self, worker: Worker, ctx: JobContext | SyncJobContext, index: int) -> None:
        """A recorded run is about to call its handler: inject what hits it now, arm the rest."""
        key = (ctx.queue, ctx.id, ctx.token)
        for i, fault in enumerate(self.faults):
            if self.fired[i] or not fault.matches(ctx.name, ctx.id):
                continue
            self.hits[i] += 1
            if self.hits[i] != fault.run:
                continue
            if fault.at == "start":
                await self._inject(i, worker, ctx, index, blocking=True)
            elif fault.at == "end":
                self.armed.setdefault(key, []).append(i)
            else:
                timer = asyncio.ensure_future(self._timer(i, float(fault.at), worker, ctx, index))
                self.timers.setdefault(key, []).append(timer)
                self.session.tasks.add(timer)

    def run_ended(self, key: RunKey) -> None:
        """The handler returned, raised or was given up: faults timed into the run no longer apply."""
        for timer in self.timers.pop(key, []):
            timer.cancel()

    async def run_finished(self, worker: Worker, ctx: JobContext | SyncJobContext, key: RunKey, index: int) -> None:
        """The run's outcome is recorded: inject the faults armed for its end."""
        for i in self.armed.pop(key, []):
            await self._inject(i, worker, ctx, index, blocking=True)

    async def after_phase(self) -> bool:
        """Wait for a killed worker to be gone; True when one was (the session starts another)."""
        if self.kill_task is None:
            return False
        killing, self.kill_task = self.kill_task, None
        await killing
        return True

    async def wind_down(self) -> None:
        self.session.network.down = 0  # (an outage still on when the drain ended is over)

    def unfired(self) -> list[Fault]:
        return [fault for fault, fired in zip(self.faults, self.fired, strict=True) if not fired]

    def fired_descriptions(self) -> tuple[str, ...]:
        return tuple(fault.describe() for fault, fired in zip(self.faults, self.fired, strict=True) if fired)

    # -- injecting -------------------------------------------------------------------------------

    async def _timer(self, i: int, after: float, worker: Worker, ctx: JobContext | SyncJobContext, index: int) -> None:
        await self.session.clock.sleep(after)
        if (ctx.queue, ctx.id, ctx.token) in self.session.active and worker.running:
            await self._inject(i, worker, ctx, index, blocking=False)

    async def _inject(
        self, i: int, worker: Worker, ctx: JobContext | SyncJobContext, index: int, *, blocking: bool
    ) -> None:
        session = self.session
        fault = self.faults[i]
        self.fired[i] = True
        session.runs[index] = dataclasses.replace(session.runs[index], fault=fault.describe())
        if fault.kind == "crash":
            if self.kill_task is None:
                self.kill_task = asyncio.ensure_future(worker.kill())
            if blocking:  # the worker dies here: this task is cancelled, nothing is reported
                never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                await never
        elif fault.kind == "expire_lock":
            self._expire(ctx, worker)
        else:
            session.network.drop()
            restore = asyncio.ensure_future(self._restore(fault.duration))
            session.tasks.add(restore)

    def _expire(self, ctx: JobContext | SyncJobContext, worker: Worker) -> None:
        """Move the job's lock deadline into the past and let a stall check recover it.

        The deadline moves through a renewal stamped by a clock one second behind (what a lagging
        host would send), with the run's own token; then ``recover_stalled`` revokes the token. Both
        are sync calls, so no renewal of the worker's can slip in between.
        """
        base = self.session.bases[ctx.queue]
        now = self.session.clock.now()
        Queue(base.name, base.connection, clock=VirtualClock(now - 1.0)).extend([ctx.claimed], lock=0.001)
        current = Queue(base.name, base.connection)
        current.ops = base.ops
        current.recover_stalled(max_stalls=worker.max_stalls)

    async def _restore(self, after: float) -> None:
        try:
            await self.session.clock.sleep(after)
        finally:
            self.session.network.restore()
