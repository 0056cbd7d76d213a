"""Running one handler call: async handlers as tasks, plain functions in a thread pool, both raced
against the job's timeout (on the injected clock) and against the worker giving the job up.

The result is an :class:`Outcome` that says what to report; nothing here talks to Redis.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import enum
import functools
import inspect
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from jqc.clock import Clock
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.control import Fail, RateLimited, Retry, WaitingForChildren

__all__ = ["AsyncHandler", "Handler", "Kind", "Outcome", "SyncHandler", "is_async", "run_handler"]

AsyncHandler: TypeAlias = Callable[[JobContext], Awaitable[Any]]
SyncHandler: TypeAlias = Callable[[SyncJobContext], Any]
Handler: TypeAlias = AsyncHandler | SyncHandler


class Kind(enum.Enum):
    DONE = "done"  # returned a result: complete
    ERROR = "error"  # raised: a failed attempt, retried by the job's backoff while attempts remain
    TIMEOUT = "timeout"  # ran past its timeout: a failed attempt
    RETRY = "retry"  # raised Retry: a failed attempt, retried after the given delay
    FAIL = "fail"  # raised Fail: failed for good
    RATE_LIMITED = "rate_limited"  # raised RateLimited: handed back, claiming paused
    ABORTED = "aborted"  # the worker stopped waiting (lock lost, shutdown): see ``reason``
    PARKED = "parked"  # waits for the children it added (ctx.wait_for_children): nothing to report
    CANCELLED = "cancelled"  # Queue.cancel marked the job: failed with code cancelled (retried if allowed)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    result: Any = None
    reason: str = ""
    error: BaseException | None = None
    traceback: str | None = None
    delay: float | None = None


def is_async(handler: Callable[..., Any]) -> bool:
    """True for ``async def`` functions (also wrapped in functools.partial) and async callables."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - an object's async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _from_exception(exc: BaseException) -> Outcome:
    if isinstance(exc, Retry):
        return Outcome(Kind.RETRY, reason=str(exc), error=exc, delay=exc.delay)
    if isinstance(exc, Fail):
        return Outcome(Kind.FAIL, reason=exc.reason, error=exc)
    if isinstance(exc, WaitingForChildren):
        return Outcome(Kind.PARKED, reason=str(exc))
    if isinstance(exc, RateLimited):
        return Outcome(Kind.RATE_LIMITED, reason=str(exc), error=exc, delay=exc.delay)
    tb = "".join(traceback.format_exception(exc))
    return Outcome(Kind.ERROR, reason=_describe(exc), error=exc, traceback=tb)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    # A handler the worker gave up on may still finish or fail later; read its outcome so asyncio
    # does not log "exception was never retrieved".
    if not fut.cancelled():
        fut.exception()


async def run_handler(
    handler: Handler,
    ctx: JobContext | SyncJobContext,
    *,
    asynchronous: bool,
    clock: Clock,
    timeout: float | None,
    abort: asyncio.Future[str],
    executor: concurrent.futures.Executor | None,
) -> Outcome:
    """Run ``handler(ctx)`` until it returns, raises, times out, or ``abort`` gets a reason."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any]
    try:
        if asynchronous:
            fut = asyncio.ensure_future(cast(AsyncHandler, handler)(cast(JobContext, ctx)))
        else:
            call = functools.partial(
                contextvars.copy_context().run, cast(SyncHandler, handler), cast(SyncJobContext, ctx)
            )
            fut = loop.run_in_executor(executor, call)
    except Exception as exc:  # e.g. a handler that takes other arguments
        return _from_exception(exc)
    sleeper: asyncio.Future[None] | None = None
    if timeout is not None:
        sleeper = asyncio.ensure_future(clock.sleep(timeout))
    watched = (fut, abort) if sleeper is None else (fut, abort, sleeper)
    # What asyncio.wait(FIRST_COMPLETED) does, without its sets: it runs for every job.
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    for watch in watched:
        watch.add_done_callback(wake)
    try:
        await waiter
    except asyncio.CancelledError:
        fut.cancel()
        fut.add_done_callback(_retrieve)
        ctx._abandon("the worker was stopped")
        raise
    finally:
        for watch in watched:
            watch.remove_done_callback(wake)
        if sleeper is not None:
            sleeper.cancel()
    if fut.done():
        if fut.cancelled():
            return Outcome(Kind.ERROR, reason="handler was cancelled")
        failure = fut.exception()
        if failure is not None:
            return _from_exception(failure)
        result = fut.result()
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            return Outcome(Kind.FAIL, reason="a plain-function handler returned an awaitable; declare it `async def`")
        return Outcome(Kind.DONE, result=result)
    fut.cancel()
    fut.add_done_callback(_retrieve)
    if abort.done():
        reason = abort.result()
        ctx._abandon(reason)
        return Outcome(Kind.ABORTED, reason=reason)
    ctx._abandon("timed out")
    return Outcome(
        Kind.TIMEOUT, reason=f"timed out after {timeout:g} s", error=TimeoutError(f"timed out after {timeout:g} s")
    )
