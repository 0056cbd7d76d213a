"""Running one handler once, as a worker would: ``perform_job`` and ``aperform_job``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any, Unpack

from jqc.clock import VirtualClock
from jqc.connection import Connection, connect
from jqc.engine.job import JobOptions
from jqc.engine.operations import OptionArgs
from jqc.errors import InvalidOptionError
from jqc.testing.drain import no_running_loop
from jqc.testing.limits import Limits
from jqc.testing.report import DrainError, JobReport, failure_message
from jqc.testing.session import Session
from jqc.worker.execute import Handler

__all__ = ["aperform_job", "perform_job"]

_PERFORMS = itertools.count(1)
_PERFORMER = "jqc.testing.perform_job"
_WALL_TIMEOUT = 60.0


async def aperform_job(
    handler: Handler,
    data: Any = None,
    *,
    name: str = "job",
    attempt: int = 1,
    connection: Connection | None = None,
    clock: VirtualClock | None = None,
    raise_on_failure: bool = True,
    worker_options: Mapping[str, Any] | None = None,
    **options: Unpack[OptionArgs],
) -> JobReport:
    """:func:`perform_job` for async tests."""
    __tracebackhide__ = True
    report, error = await _perform(
        handler, data, name, attempt, connection, clock, raise_on_failure, worker_options, options
    )
    if error is not None:
        raise error
    assert report is not None
    return report


def perform_job(
    handler: Handler,
    data: Any = None,
    *,
    name: str = "job",
    attempt: int = 1,
    connection: Connection | None = None,
    clock: VirtualClock | None = None,
    raise_on_failure: bool = True,
    worker_options: Mapping[str, Any] | None = None,
    **options: Unpack[OptionArgs],
) -> JobReport:
    """Run ``handler`` once on a job with ``data``, as a worker would, and report what happened.

    The job (named ``name``, with the given job ``options``) is added to a fresh queue and run by a
    real :class:`jqc.Worker`, so the handler gets a real job context: ``ctx.attempt`` is
    ``attempt`` (earlier attempts are recorded as failed), ``ctx.progress()`` and ``ctx.log()``
    are stored, ``ctx.now()`` reads the clock, a ``timeout`` applies. It runs on ``connection``
    (the queue is removed afterwards) or on a private embedded one with ``clock`` (a new
    :class:`jqc.VirtualClock` if None).

    Returns the :class:`JobReport` (``.result``, ``.state``, ``.progress``, ``.logs``...). If the
    job does not complete and ``raise_on_failure`` is set, the handler's exception is raised
    again (``jqc.Retry``, ``jqc.Fail`` and ``jqc.RateLimited`` included) with the job's history as
    a note, or a :class:`DrainError` when the handler raised nothing.
    """
    __tracebackhide__ = True
    no_running_loop("perform_job()", "await aperform_job(...)")

    async def main() -> tuple[JobReport | None, BaseException | None]:
        try:
            return await _perform(
                handler, data, name, attempt, connection, clock, raise_on_failure, worker_options, options
            )
        finally:
            if connection is not None:
                await connection.aclose()

    report, error = asyncio.run(main())
    if error is not None:
        raise error  # from here, so that the traceback goes from the test to the handler
    assert report is not None
    return report


def _check(
    attempt: object, connection: object, clock: object, worker_options: object, options: OptionArgs
) -> JobOptions:
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise InvalidOptionError(f"attempt counts from 1, not {attempt!r}")
    attempts = options.get("attempts")
    if attempts is None:
        options["attempts"] = attempt
    elif isinstance(attempts, int) and attempt > attempts:
        raise InvalidOptionError(f"attempt {attempt} is past the job's attempts={attempts}")
    options["delay"] = 0.0  # performed now, whatever its delay
    if connection is not None and clock is not None:
        raise InvalidOptionError("pass clock= or connection= (which has its clock), not both")
    if connection is not None and not isinstance(connection, Connection):
        raise InvalidOptionError(f"connection must come from jqc.connect() (or jqc_connection), not {connection!r}")
    if clock is not None and not isinstance(clock, VirtualClock):
        raise InvalidOptionError(f"clock must be a jqc.VirtualClock, not {clock!r}")
    if worker_options is not None and not isinstance(worker_options, Mapping):
        raise InvalidOptionError(f"worker_options must be a mapping of jqc.Worker options, not {worker_options!r}")
    return JobOptions(**options)


async def _perform(
    handler: Handler,
    data: Any,
    name: str,
    attempt: int,
    connection: Connection | None,
    clock: VirtualClock | None,
    raise_on_failure: bool,
    worker_options: Mapping[str, Any] | None,
    options: OptionArgs,
) -> tuple[JobReport | None, BaseException | None]:
    job_options = _check(attempt, connection, clock, worker_options, options)
    conn = connection if connection is not None else connect(clock=clock or VirtualClock())
    queue = conn.async_queue(f"jqc-perform-{next(_PERFORMS)}")
    try:
        await queue.add(name, data, job_options)
        for made in range(1, attempt):  # the attempts before this one failed
            claimed = (await queue.claim(_PERFORMER, lock=60.0)).jobs[0]
            await queue.fail(claimed, f"attempt {made} failed (made up by perform_job)", delay=0.0, worker=_PERFORMER)
        session = Session(
            [queue], handler, dict(worker_options or {}), stop_after=1, limits=Limits(wall_timeout=_WALL_TIMEOUT)
        )
        try:
            await session.run(advance_time=False)
            result = await session.report()
        finally:
            await session.close()
    finally:
        if connection is None:
            await conn.aclose()
            conn.close()
        else:
            await queue.obliterate(force=True)
    if session.timed_out or not result.jobs:
        return None, DrainError(
            f"perform_job: the handler did not finish within {_WALL_TIMEOUT:g} s of wall time"
            if session.timed_out
            else "perform_job: the job did not run",
            result=result,
        )
    report = result.jobs[0]
    if not raise_on_failure or report.succeeded:
        return report, None
    message = failure_message("perform_job: the job did not complete", (report,))
    error = report.runs[-1].error if report.runs else None
    if error is None:
        return report, DrainError(message, result=result, reports=(report,))
    error.add_note(message)
    return report, error
