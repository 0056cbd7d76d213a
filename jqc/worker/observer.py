"""Watching a worker's handler runs: :class:`JobObserver` (``jqc.testing`` records runs and injects
faults with it; :mod:`jqc.worker.tracing` opens spans with it)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.execute import Outcome

if TYPE_CHECKING:
    from jqc.worker.runtime import Worker

__all__ = ["BoundObserver", "JobObserver"]


class JobObserver(Protocol):
    """Told when each handler run starts and ends (``jqc.testing`` records runs and injects faults with it).

    Both are awaited in the job's task on the worker's event loop: ``started`` just before the
    handler is called, ``finished`` once it returned, raised, timed out or was given up, before the
    worker reports the outcome. The job stays held (its lock renewed) meanwhile. An exception from
    either is logged and otherwise ignored; cancellation (the worker being killed) goes through.
    """

    async def started(self, worker: Worker, ctx: JobContext | SyncJobContext) -> None: ...

    async def finished(self, worker: Worker, ctx: JobContext | SyncJobContext, outcome: Outcome) -> None: ...


class BoundObserver:
    """A :class:`JobObserver` told about the runs of one worker (the job runner's hooks)."""

    def __init__(self, observer: JobObserver, worker: Worker) -> None:
        self.observer = observer
        self.worker = worker

    def started(self, ctx: JobContext | SyncJobContext) -> Awaitable[None]:
        return self.observer.started(self.worker, ctx)

    def finished(self, ctx: JobContext | SyncJobContext, outcome: Outcome) -> Awaitable[None]:
        return self.observer.finished(self.worker, ctx, outcome)
