"""The error a drain ends with, if any: each one says what happened and what is still pending."""

from __future__ import annotations

from collections.abc import Sequence

from jqc.engine.job import Job, JobState
from jqc.testing.report import DrainError, DrainResult, failure_message, plural
from jqc.testing.session import QueueLike, Session

__all__ = ["pending_listing", "verdict"]

_SHOWN = 20


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _offset(seconds: float) -> str:
    ms = round(seconds * 1000)
    whole, frac = divmod(abs(ms), 1000)
    sign = "-" if ms < 0 else "+"
    return f"{sign}{whole}s" if frac == 0 else f"{sign}{whole}.{frac:03d}".rstrip("0") + "s"


def _pending_line(job: Job, now: float, origin: float) -> str:
    where = job.state.value
    if job.state is JobState.DELAYED:
        where += f", due at {_offset(job.ready_at - origin)} (in {_offset(job.ready_at - now).lstrip('+')})"
    return (
        f"  - {job.name!r} id={job.id} in {job.queue!r} data={_short(job.data)}: {where}; "
        f"attempts made {job.attempts_made} of {job.options.attempts}"
    )


def pending_listing(result: DrainResult) -> str:
    """What the drain left active, waiting or delayed, one line per job (times from the drain's start)."""
    if not result.pending:
        return "still pending: nothing"
    lines = [f"still pending (clock at {_offset(result.elapsed)}): {plural(len(result.pending), 'job')}"]
    for job in result.pending[:_SHOWN]:
        lines.append(_pending_line(job, result.finished_at, result.started_at))
    if len(result.pending) > _SHOWN:
        lines.append(f"  ... and {len(result.pending) - _SHOWN} more")
    return "\n".join(lines)


def verdict(
    session: Session, result: DrainResult, queues: Sequence[QueueLike], raise_on_failure: bool
) -> BaseException | None:
    """The error a drain ends with, if any (the exception of an ``until`` predicate that raised, as is)."""
    names = ", ".join(repr(q.name) for q in queues)
    limits = session.limits
    if session.timed_out:
        still = [f"{r.job_id} ({r.queue})" for r in session.runs if r.finished_at is None]
        return DrainError(
            failure_message(
                f"the drain of {names} did not finish within {limits.wall_timeout:g} s of wall time "
                f"(a handler waiting for something that never comes?); runs not finished: "
                f"{', '.join(still) or 'none'}",
                tuple(r for r in result.jobs if not r.succeeded),
                result,
            )
            + "\n\n"
            + pending_listing(result),
            result=result,
        )
    if session.failure is not None:
        session.failure.add_note(f"(raised by the until= predicate of the drain of {names})")
        return session.failure
    if session.overflow:
        return DrainError(
            f"the drain of {names} stopped after max_runs={limits.max_runs} runs: jobs keep coming "
            f"(a job that enqueues itself, retries without end, or a schedule?); pass until= or jobs= "
            f"to stop it earlier, or a larger max_runs\n\n{result.summary()}\n{pending_listing(result)}",
            result=result,
        )
    if result.ended_by == "idle" and limits.jobs is not None:
        return DrainError(
            f"the drain of {names} ran out of jobs with {len(session.finished_jobs)} of jobs={limits.jobs} "
            f"finished (completed or failed for good)\n\n{result.summary()}\n{pending_listing(result)}",
            result=result,
        )
    if result.ended_by == "idle" and limits.until_true is not None:
        return DrainError(
            f"the drain of {names} ran out of jobs before {limits.describe()} held\n\n"
            f"{result.summary()}\n{pending_listing(result)}",
            result=result,
        )
    missed = session.injector.unfired()
    if missed:
        ran = ", ".join(f"{r.name!r} ({plural(len(r.runs), 'run')})" for r in result.jobs) or "no job"
        return DrainError(
            f"fault(s) never injected: {', '.join(f.describe() for f in missed)}; no matching run "
            f"(or it ended before the fault's time). The drain ran: {ran}",
            result=result,
        )
    failed = result.failed
    if result.ended_by != "idle":  # stopped early: a job waiting out a retry is pending, not failed
        failed = tuple(report for report in failed if report.state is JobState.FAILED)
    if raise_on_failure and failed:
        if len(result.jobs) == 1:
            headline = f"the job drained from {names} failed"
        else:
            headline = f"{len(failed)} of the {len(result.jobs)} jobs drained from {names} failed"
        return DrainError(
            failure_message(headline + " (pass raise_on_failure=False to inspect instead):", failed, result),
            result=result,
            reports=failed,
        )
    return None
