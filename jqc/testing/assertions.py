"""Assertions about what a queue holds, with failure messages that show what *was* enqueued.

Criteria, each optional:

* ``name``: the job name;
* ``data``: a subset of the job's data. A dict matches when each of its keys is in the job's data
  with a matching value (recursively); anything else compares with ``==``, so
  ``unittest.mock.ANY`` and ``pytest.approx`` work inside it;
* ``delay``: the delay the job was added with (its due time minus its creation time), in seconds,
  within ``tolerance``;
* ``priority``: the job's priority.

"Enqueued" means waiting or delayed. The queue may be a :class:`jqc.Queue` or a
:class:`jqc.AsyncQueue` (read synchronously, which is fine in async tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jqc.engine.job import Job
from jqc.engine.queue import AsyncQueue, Queue

__all__ = ["assert_enqueued", "enqueued_jobs", "refute_enqueued"]

_UNSET: Any = object()
_PENDING = ("waiting", "delayed")
_PAGE = 500
_SHOWN = 50


def _sync(queue: Queue | AsyncQueue) -> Queue:
    if isinstance(queue, Queue):
        return queue
    if isinstance(queue, AsyncQueue):
        twin = Queue(queue.name, queue.connection)
        twin.ops = queue.ops
        return twin
    raise TypeError(f"expected a jqc.Queue or jqc.AsyncQueue, not {queue!r}")


def _data_mismatch(expected: Any, actual: Any, path: str) -> str | None:
    """Why ``expected`` is not contained in ``actual`` (None when it is)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{path} is {_short(actual)}, not a mapping"
        for key, value in expected.items():
            if key not in actual:
                return f"{path} has no key {key!r}"
            why = _data_mismatch(value, actual[key], f"{path}[{key!r}]")
            if why:
                return why
        return None
    return None if expected == actual else f"{path} is {_short(actual)}, not {_short(expected)}"


def _delay(job: Job) -> float:
    return max(0.0, job.ready_at - job.created_at)


def _mismatch(job: Job, name: Any, data: Any, delay: Any, priority: Any, tolerance: float) -> str | None:
    """Why ``job`` does not match (None when it does)."""
    if name is not _UNSET and job.name != name:
        return f"name is {job.name!r}"
    if data is not _UNSET:
        why = _data_mismatch(data, job.data, "data")
        if why:
            return why
    if delay is not _UNSET and abs(_delay(job) - float(delay)) > tolerance:
        return f"delay is {_secs(_delay(job))}, not {_secs(float(delay))}"
    if priority is not _UNSET and job.options.priority != priority:
        return f"priority is {job.options.priority}, not {priority!r}"
    return None


def enqueued_jobs(
    queue: Queue | AsyncQueue,
    *,
    name: Any = _UNSET,
    data: Any = _UNSET,
    delay: Any = _UNSET,
    priority: Any = _UNSET,
    tolerance: float = 0.001,
    states: tuple[str, ...] = _PENDING,
) -> list[Job]:
    """The jobs of ``queue`` in ``states`` (default: waiting, then delayed; each in run order) that
    match the criteria (all of them when none is given)."""
    sync = _sync(queue)
    jobs: list[Job] = []
    for state in states:
        offset = 0
        while True:
            page = sync.list_jobs(state, offset, _PAGE)
            jobs.extend(page.jobs)
            offset += _PAGE
            if offset >= page.total:
                break
    return [job for job in jobs if _mismatch(job, name, data, delay, priority, tolerance) is None]


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _secs(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _criteria(name: Any, data: Any, delay: Any, priority: Any) -> str:
    given = [
        (k, v) for k, v in (("name", name), ("data", data), ("delay", delay), ("priority", priority)) if v is not _UNSET
    ]
    return ", ".join(f"{k}={v!r}" for k, v in given) or "anything"


def _listing(queue: Queue, jobs: list[Job], name: Any, data: Any, delay: Any, priority: Any, tolerance: float) -> str:
    lines = [f"enqueued in {queue.name!r} (waiting and delayed, in run order): {len(jobs) or 'nothing'}"]
    for job in jobs[:_SHOWN]:
        why = _mismatch(job, name, data, delay, priority, tolerance)
        lines.append(
            f"  - {job.name!r} id={job.id} data={_short(job.data)} delay={_secs(_delay(job))} "
            f"priority={job.options.priority} ({job.state.value})" + (f"  <- {why}" if why else "  <- matches")
        )
    if len(jobs) > _SHOWN:
        lines.append(f"  ... and {len(jobs) - _SHOWN} more")
    counts = queue.counts()
    others = [(n, s) for n, s in ((counts.active, "active"), (counts.completed, "completed"),
                                  (counts.failed, "failed"), (counts.dead, "dead-lettered")) if n]  # fmt: skip
    if others:
        lines.append("  not shown: " + ", ".join(f"{n} {s}" for n, s in others))
    if counts.paused:
        lines.append("  (the queue is paused)")
    return "\n".join(lines)


def assert_enqueued(
    queue: Queue | AsyncQueue,
    *,
    name: Any = _UNSET,
    data: Any = _UNSET,
    delay: Any = _UNSET,
    priority: Any = _UNSET,
    count: int | None = None,
    tolerance: float = 0.001,
) -> list[Job]:
    """Assert that a waiting or delayed job matches (exactly ``count`` of them, if given); return the matches.

    The failure message lists every enqueued job and why each does not match.
    """
    __tracebackhide__ = True
    sync = _sync(queue)
    jobs = enqueued_jobs(sync)
    found = [job for job in jobs if _mismatch(job, name, data, delay, priority, tolerance) is None]
    if (count is None and not found) or (count is not None and len(found) != count):
        wanted = "a job" if count is None else f"{count} job{'s' if count != 1 else ''}"
        raise AssertionError(
            f"expected {wanted} matching {_criteria(name, data, delay, priority)} in queue {sync.name!r}, "
            f"found {len(found)}\n{_listing(sync, jobs, name, data, delay, priority, tolerance)}"
        )
    return found


def refute_enqueued(
    queue: Queue | AsyncQueue,
    *,
    name: Any = _UNSET,
    data: Any = _UNSET,
    delay: Any = _UNSET,
    priority: Any = _UNSET,
    tolerance: float = 0.001,
) -> None:
    """Assert that no waiting or delayed job matches; the failure message lists what was enqueued."""
    __tracebackhide__ = True
    sync = _sync(queue)
    jobs = enqueued_jobs(sync)
    found = [job for job in jobs if _mismatch(job, name, data, delay, priority, tolerance) is None]
    if found:
        raise AssertionError(
            f"expected no job matching {_criteria(name, data, delay, priority)} in queue {sync.name!r}, "
            f"found {len(found)}\n{_listing(sync, jobs, name, data, delay, priority, tolerance)}"
        )
