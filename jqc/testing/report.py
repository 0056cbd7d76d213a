"""What ``drain`` and ``perform_job`` saw: every run of every job, and each job's history as text."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jqc.engine.failures import FailureCode
from jqc.engine.job import Job, JobState
from jqc.testing.handlers import WRAPPER_NAMES
from jqc.worker.runtime import WorkerStats

__all__ = ["DrainError", "DrainResult", "JobReport", "Run"]

#: Outcomes of a run that count as a failed attempt (the handler raised, timed out, or had no handler).
FAILED_OUTCOMES = ("error", "timeout", "retry", "fail")
_MAX_TRACEBACKS = 3
_MAX_LOG_LINES = 50
WRAPPER_ENDINGS = tuple(f", in {name}" for name in WRAPPER_NAMES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One run of a handler for one job, as the worker saw it.

    ``queue`` and ``job_id`` name the job; ``attempt`` is the attempt this run was (``ctx.attempt``),
    ``token`` the fencing token of its claim and ``worker`` the id of the worker that ran it.
    ``outcome`` is ``"done"`` (returned ``result``), ``"error"`` (raised ``error``), ``"timeout"``,
    ``"retry"`` / ``"fail"`` / ``"rate_limited"`` (raised :class:`jqc.Retry`, :class:`jqc.Fail`,
    :class:`jqc.RateLimited`), ``"aborted"`` (the worker gave the run up: lock lost, shutting down)
    or ``"crashed"`` (the worker died during the run); ``reason`` says why in words and
    ``traceback`` is the formatted traceback of an ``"error"``. ``fault`` names the fault injected
    into this run, if any. ``started_at`` and ``finished_at`` are times on the queue's clock;
    ``finished_at`` is None for a crashed run.
    """

    queue: str
    job_id: str
    attempt: int
    token: int
    worker: str
    started_at: float
    finished_at: float | None = None
    outcome: str = "crashed"
    result: Any = None
    reason: str = ""
    traceback: str | None = None
    error: BaseException | None = None
    fault: str | None = None

    @property
    def failed(self) -> bool:
        """True when this run was a failed attempt."""
        return self.outcome in FAILED_OUTCOMES


@dataclass(frozen=True, slots=True, kw_only=True)
class JobReport:
    """One job: its runs, its state when the drain ended and its log lines.

    ``queue``, ``id``, ``name`` and ``data`` say which job; ``runs`` are its :class:`Run` records in
    order; ``job`` is the job as stored at the end (None when it no longer exists, for instance
    removed on completion with ``remove_on_complete=jqc.Keep.none()``); ``logs`` its log lines.
    The properties read from those: ``state``, ``succeeded``, ``failed``, ``cancelled``, ``result``,
    ``error``, ``progress`` and ``failure_reason``; :meth:`history` tells it all as text.
    """

    queue: str
    id: str
    name: str
    data: Any
    runs: tuple[Run, ...]
    job: Job | None
    logs: tuple[str, ...] = ()
    origin: float = 0.0  # history times are shown relative to this clock time

    @property
    def state(self) -> JobState | None:
        return self.job.state if self.job is not None else None

    @property
    def succeeded(self) -> bool:
        """True when the job completed (or, removed on completion, its last run returned)."""
        if self.job is not None:
            return self.job.state is JobState.COMPLETED
        return bool(self.runs) and self.runs[-1].outcome == "done" and self.runs[-1].fault is None

    @property
    def cancelled(self) -> bool:
        """True when ``Queue.cancel`` ended the job (failed with code ``cancelled``): a job stopped
        on purpose, which a drain does not count as failed."""
        return self.job is not None and self.job.failure_code is FailureCode.CANCELLED

    @property
    def failed(self) -> bool:
        """True when the job failed for good, or had a failed attempt and did not complete (a
        cancelled job is not failed: see :attr:`cancelled`)."""
        if self.succeeded or self.cancelled:
            return False
        return self.state is JobState.FAILED or any(run.failed for run in self.runs)

    @property
    def result(self) -> Any:
        """The job's result: as stored (JSON) when the job still exists, else as its last run returned."""
        if self.job is not None:
            return self.job.result
        return self.runs[-1].result if self.runs else None

    @property
    def error(self) -> BaseException | None:
        """The exception the last failed run raised (None if no run raised)."""
        for run in reversed(self.runs):
            if run.error is not None:
                return run.error
        return None

    @property
    def progress(self) -> Any:
        return self.job.progress if self.job is not None else None

    @property
    def failure_reason(self) -> str | None:
        if self.job is not None and self.job.failure_reason:
            return self.job.failure_reason
        failed = [run for run in self.runs if run.failed]
        return failed[-1].reason if failed else None

    def history(self) -> str:
        """The job's story as text: state, every run, the tracebacks and the log."""
        lines = [f"job {self.id} {self.name!r} in queue {self.queue!r}, data={_short(self.data)}"]
        lines.append(f"  state: {self._state_line()}")
        lines.append(f"  runs ({len(self.runs)}):" if self.runs else "  runs: none")
        for i, run in enumerate(self.runs, 1):
            lines.append(f"    {i}. attempt {run.attempt} at {_at(run.started_at - self.origin)}: {_describe(run)}")
        # The last traceback in full, and earlier ones only where the code path differs.
        shown: list[tuple[int, str]] = []
        paths: set[tuple[str, ...]] = set()
        for i, run in reversed(list(enumerate(self.runs, 1))):
            if run.traceback and _frames(run.traceback) not in paths:
                paths.add(_frames(run.traceback))
                shown.insert(0, (i, run.traceback))
        if len(shown) > _MAX_TRACEBACKS:
            lines.append(f"  ({len(shown) - _MAX_TRACEBACKS} earlier tracebacks left out; see report.runs)")
        for i, text in shown[-_MAX_TRACEBACKS:]:
            lines.append(f"  traceback of run {i}:")
            lines.extend("    " + line for line in _without_wrapper(text.rstrip("\n").splitlines()))
        if self.logs:
            lines.append(f"  log ({plural(len(self.logs), 'line')}):")
            if len(self.logs) > _MAX_LOG_LINES:
                lines.append(f"    ... {len(self.logs) - _MAX_LOG_LINES} earlier lines left out")
            lines.extend("    " + line for line in self.logs[-_MAX_LOG_LINES:])
        else:
            lines.append("  log: empty")
        return "\n".join(lines)

    def _state_line(self) -> str:
        job = self.job
        if job is None:
            return "removed" + (" (completed)" if self.succeeded else "")
        text = job.state.value
        if job.state is JobState.FAILED:
            text += " for good (dead-lettered)"
        elif job.state is JobState.DELAYED:
            text += f", due at {_at(job.ready_at - self.origin)}"
        text += f"; attempts made {job.attempts_made} of {job.options.attempts}"
        if job.stall_count:
            text += f"; stalled {job.stall_count} time(s)"
        if job.state is not JobState.COMPLETED and job.failure_reason:
            text += f"; last failure: {job.failure_reason}"
        return text

    def __repr__(self) -> str:
        state = self.state.value if self.state is not None else "removed"
        return (
            f"JobReport(queue={self.queue!r}, id={self.id!r}, name={self.name!r}, state={state}, runs={len(self.runs)})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainResult:
    """What one drain did: a report per job it ran (in the order of their first run).

    * ``jobs``: a :class:`JobReport` per job that ran (iterating the result gives the same);
    * ``stats``: the :class:`jqc.WorkerStats` of the workers the drain ran, added up (more than one
      when a fault crashed one);
    * ``started_at``, ``finished_at``: clock times, so ``elapsed`` is virtual time;
    * ``faults``: the faults injected, described;
    * ``ended_by``: why the drain stopped: ``"idle"`` (nothing left to run), ``"until"``,
      ``"jobs"``, or a safety limit (``"max_runs"``, ``"wall_timeout"``);
    * ``pending``: the jobs of the drained queues still active, waiting or delayed when it stopped
      (in that order, at most 20 per state and queue), as :class:`jqc.Job` snapshots.
    """

    jobs: tuple[JobReport, ...]
    stats: WorkerStats
    started_at: float
    finished_at: float
    faults: tuple[str, ...] = ()
    ended_by: str = "idle"
    pending: tuple[Job, ...] = ()

    @property
    def elapsed(self) -> float:
        return self.finished_at - self.started_at

    @property
    def runs(self) -> int:
        return sum(len(report.runs) for report in self.jobs)

    @property
    def completed(self) -> tuple[JobReport, ...]:
        return tuple(report for report in self.jobs if report.succeeded)

    @property
    def failed(self) -> tuple[JobReport, ...]:
        return tuple(report for report in self.jobs if report.failed)

    @property
    def results(self) -> list[Any]:
        """The results of the jobs that completed, in the order they completed."""
        done = [report for report in self.jobs if report.succeeded]
        done.sort(key=lambda report: _finish_time(report))
        return [report.result for report in done]

    def job(self, job: Job | str) -> JobReport:
        """The report of ``job`` (a :class:`jqc.Job` or a job id)."""
        for report in self.jobs:
            if isinstance(job, Job):
                if report.id == job.id and report.queue == job.queue:
                    return report
            elif report.id == job:
                return report
        ran = ", ".join(f"{r.id} ({r.name!r})" for r in self.jobs) or "none"
        wanted = job.id if isinstance(job, Job) else job
        raise KeyError(f"the drain did not run job {wanted!r}; it ran: {ran}")

    def __iter__(self) -> Iterator[JobReport]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def summary(self) -> str:
        s = self.stats
        return (
            f"{plural(len(self.jobs), 'job')}, {plural(self.runs, 'run')} in {_at(self.elapsed).lstrip('+')} "
            f"of clock time: {s.completed} completed, {s.retried} retried, {s.failed} failed, {s.lost} lost"
        )


class DrainError(AssertionError):
    """A drain (or perform_job) found jobs that failed; the message tells each one's history.

    ``result`` is the :class:`DrainResult` (None when the drain itself could not finish), and
    ``reports`` the jobs at fault.
    """

    def __init__(self, message: str, *, result: DrainResult | None = None, reports: tuple[JobReport, ...] = ()):
        super().__init__(message)
        self.result = result
        self.reports = reports


def failure_message(headline: str, reports: tuple[JobReport, ...], result: DrainResult | None = None) -> str:
    parts = [headline]
    if result is not None:
        parts.append(result.summary())
    parts.extend(report.history() for report in reports)
    return "\n\n".join(parts)


def add_stats(total: WorkerStats, more: WorkerStats) -> WorkerStats:
    return WorkerStats(
        **{f.name: getattr(total, f.name) + getattr(more, f.name) for f in dataclasses.fields(WorkerStats)}
    )


def _finish_time(report: JobReport) -> float:
    last = report.runs[-1] if report.runs else None
    if last is not None and last.finished_at is not None:
        return last.finished_at
    if report.job is not None and report.job.finished_at is not None:
        return report.job.finished_at
    return 0.0


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _without_wrapper(lines: list[str]) -> list[str]:
    """A formatted traceback without the frame of jqc.testing's handler wrapper (``busy_handler``)."""
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith('  File "'):
            skipping = line.endswith(WRAPPER_ENDINGS) and "jqc" in line and "testing" in line
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            out.append(line)
    return out


def _frames(traceback: str) -> tuple[str, ...]:
    """The "File ..." lines of a formatted traceback: its code path, whatever the message."""
    return tuple(line for line in traceback.splitlines() if line.lstrip().startswith("File "))


def _describe(run: Run) -> str:
    text = {
        "done": f"returned {_short(run.result)}",
        "error": f"raised {run.reason}",
        "timeout": run.reason or "timed out",
        "retry": f"raised Retry: {run.reason}",
        "fail": f"failed: {run.reason}",
        "rate_limited": f"raised RateLimited: {run.reason}",
        "aborted": f"given up by the worker: {run.reason}",
        "crashed": "the worker died during the run",
    }.get(run.outcome, f"{run.outcome}: {run.reason}")
    if run.fault:
        text += f" [fault: {run.fault}]"
    return text


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _at(seconds: float) -> str:
    """A clock offset such as ``+86400s`` or ``+1.5s`` (to the millisecond)."""
    ms = round(seconds * 1000)
    whole, frac = divmod(abs(ms), 1000)
    sign = "-" if ms < 0 else "+"
    return f"{sign}{whole}s" if frac == 0 else f"{sign}{whole}.{frac:03d}".rstrip("0") + "s"
