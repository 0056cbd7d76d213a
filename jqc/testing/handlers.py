"""Handlers under a test's virtual clock: time stands still while they work, and a drain can hold a run back.

Plain-function handlers run in :class:`HoldingExecutor`'s threads, which hold the virtual clock
while a handler runs; async handlers are wrapped to hold it (:meth:`jqc.VirtualClock.busy`). Both
wrappers also ask the drain whether the run may go ahead at all: a drain that has reached its limit
(``max_runs``, ``until``, ``jobs``) withholds the runs its worker still claims, which hands each job
back unrun, without counting an attempt (see :mod:`jqc.testing.session`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, Protocol, TypeAlias, TypeVar

from jqc.clock import Clock, VirtualClock, hold
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.control import RateLimited
from jqc.worker.execute import AsyncHandler, Handler, SyncHandler, is_async

__all__ = ["WRAPPER_NAMES", "Gate", "Handlers", "HoldingExecutor", "Withheld", "prepare"]

Handlers: TypeAlias = Handler | Mapping[str, Handler]
P = ParamSpec("P")
R = TypeVar("R")

#: The names of the wrappers' frames, left out of the tracebacks a drain reports.
WRAPPER_NAMES = ("busy_handler", "gated_handler")


class Withheld(RateLimited):
    """Raised instead of calling the handler for a run the drain holds back: the job is handed back
    to waiting unrun (a release, as for :class:`jqc.RateLimited`) and no attempt is counted."""

    def __init__(self) -> None:
        super().__init__(0.0, "held back: the drain reached its limit")


class Gate(Protocol):
    """Says whether a claimed run may call its handler."""

    def withheld(self, ctx: JobContext | SyncJobContext) -> bool: ...


class HoldingExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs plain-function handlers in threads, holding the virtual clock while one runs.

    So a handler's real duration never moves virtual time (nor expires its lock), and a test's
    times come out the same on every run. Must be submitted to from the event loop's thread (as
    ``loop.run_in_executor`` does).
    """

    def __init__(self, clock: Clock, max_workers: int) -> None:
        super().__init__(max_workers, thread_name_prefix="jqc-test")
        self._clock = clock
        self.pending: set[concurrent.futures.Future[Any]] = set()

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[R]:
        loop = asyncio.get_running_loop()
        held = hold(self._clock)
        held.__enter__()
        fut = super().submit(fn, *args, **kwargs)
        self.pending.add(fut)

        def release(done: concurrent.futures.Future[Any]) -> None:
            self.pending.discard(done)
            held.__exit__(None, None, None)

        def on_done(done: concurrent.futures.Future[Any]) -> None:
            try:
                loop.call_soon_threadsafe(release, done)
            except RuntimeError:  # the loop is gone (a handler thread outlived its drain): no race left
                with contextlib.suppress(Exception):
                    release(done)

        # Registered once run_in_executor has added its own callback (the one that wakes the awaiting
        # task), so that the hold ends only after that wake-up is scheduled: the thread may be
        # preempted between two callbacks, and autojump must not find the loop idle in between.
        loop.call_soon(fut.add_done_callback, on_done)
        return fut


def _wrap(fn: Any, clock: Clock, gate: Gate) -> Any:
    if not callable(fn):
        return fn  # (the worker's handler table reports it)
    if is_async(fn):
        handler: AsyncHandler = fn
        busy = clock.busy if isinstance(clock, VirtualClock) else contextlib.nullcontext

        async def busy_handler(ctx: JobContext) -> Any:
            __tracebackhide__ = True  # (and left out of the history's tracebacks)
            if gate.withheld(ctx):
                raise Withheld()
            with busy():
                return await handler(ctx)

        return busy_handler
    plain: SyncHandler = fn

    def gated_handler(ctx: SyncJobContext) -> Any:
        __tracebackhide__ = True
        if gate.withheld(ctx):
            raise Withheld()
        return plain(ctx)

    return gated_handler


def prepare(handlers: Handlers, clock: Clock, gate: Gate) -> Handlers:
    """``handlers`` wrapped for a drain on ``clock`` (async ones hold a virtual clock while they work)."""
    if isinstance(handlers, Mapping):
        return {name: _wrap(fn, clock, gate) for name, fn in handlers.items()}
    wrapped: Handlers = _wrap(handlers, clock, gate)
    return wrapped
