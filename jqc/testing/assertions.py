"""Assertions about what queues hold, with failure messages that show the nearest candidates and why
each one does not match.

``assert_enqueued``, ``refute_enqueued`` and ``all_enqueued`` (``enqueued_jobs`` is its older name)
take a target and criteria. The target is a :class:`jqc.Queue` or :class:`jqc.AsyncQueue` (read
synchronously, which is fine in async tests), a list of them, or a :class:`jqc.Connection` for
every queue on it. The criteria are described in :mod:`jqc.testing.matching`; ``state`` says where
to look (waiting and delayed by default: "enqueued"), ``count`` asks for an exact number of matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jqc.connection import Connection
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.job import Job, JobState
from jqc.engine.queue import Queue
from jqc.errors import InvalidOptionError
from jqc.testing.matching import (
    DEFAULT_STATES,
    UNSET,
    Criteria,
    count_of,
    criteria,
    delay_of,
    secs,
    short,
)

__all__ = ["all_enqueued", "assert_enqueued", "enqueued_jobs", "refute_enqueued"]

_PAGE = 500
_SHOWN = 20
_COUNTED = ("waiting", "delayed", "active", "completed", "failed")

Target = Queue | AsyncQueue | Connection | Sequence[Queue | AsyncQueue]


def _sync(queue: object) -> Queue:
    if isinstance(queue, Queue):
        return queue
    if isinstance(queue, AsyncQueue):
        twin = Queue(queue.name, queue.connection)
        twin.ops = queue.ops
        return twin
    raise InvalidOptionError(
        f"expected a jqc.Queue, a jqc.AsyncQueue, a list of them or a jqc.Connection, not {queue!r}"
    )


def _queues(target: object) -> tuple[list[Queue], str]:
    """The queues to search and how to name them in messages."""
    if isinstance(target, Connection):
        queues = [target.queue(name) for name in target.queue_names()]
        names = ", ".join(repr(q.name) for q in queues) or "there are none"
        return queues, f"any queue of the connection ({names})"
    if isinstance(target, (Queue, AsyncQueue)):
        queue = _sync(target)
        return [queue], f"queue {queue.name!r}"
    if isinstance(target, (list, tuple)) and target:
        queues = [_sync(q) for q in target]
        return queues, "queues " + ", ".join(repr(q.name) for q in queues)
    raise InvalidOptionError(
        f"expected a jqc.Queue, a jqc.AsyncQueue, a list of them or a jqc.Connection, not {target!r}"
    )


def _jobs(queues: list[Queue], states: tuple[JobState, ...]) -> list[Job]:
    jobs: list[Job] = []
    for queue in queues:
        for state in states:
            offset = 0
            while True:
                page = queue.list_jobs(state.value, offset, _PAGE)
                jobs.extend(page.jobs)
                offset += _PAGE
                if offset >= page.total:
                    break
    return jobs


class _Search:
    """One search: the queues, the criteria, every candidate and why it misses."""

    def __init__(self, target: object, rules: Criteria) -> None:
        self.queues, self.where = _queues(target)
        self.rules = rules
        self.now = {q.name: q.clock.now() for q in self.queues}
        self.candidates = [(job, rules.reasons(job, self.now[job.queue])) for job in _jobs(self.queues, rules.states)]
        self.matches = [job for job, why in self.candidates if not why]

    def failure(self, expected: str) -> str:
        return (
            f"expected {expected} matching {self.rules.describe()} in {self.where}, found {len(self.matches)}\n"
            f"{self.listing()}"
        )

    def listing(self) -> str:
        states = self.rules.states
        several = len(self.queues) > 1 or not self.queues
        if states == DEFAULT_STATES:
            label, scope = "enqueued", "waiting and delayed, in run order"
        else:
            label, scope = "jobs", " and ".join(s.value for s in states)
        names = ", ".join(repr(q.name) for q in self.queues) or "no queue"
        lines = [f"{label} in {names} ({scope}): {len(self.candidates) or 'nothing'}"]
        shown = self.candidates
        if len(shown) > _SHOWN:  # the nearest ones, in their order
            nearest = sorted(range(len(shown)), key=lambda i: (len(shown[i][1]), i))[:_SHOWN]
            shown = [shown[i] for i in sorted(nearest)]
        for job, why in shown:
            lines.extend(self._line(job, why, several))
        if len(self.candidates) > len(shown):
            lines.append(f"  ... and {len(self.candidates) - len(shown)} more, none nearer a match")
        lines.extend(self._elsewhere(states))
        return "\n".join(lines)

    def _line(self, job: Job, why: list[str], several: bool) -> list[str]:
        place = f" in {job.queue!r}" if several else ""
        text = (
            f"  - {job.name!r} id={job.id}{place} data={short(job.data)} "
            f"delay={secs(delay_of(job, self.now[job.queue]))} priority={job.options.priority}"
            f"{self.rules.extra_fields(job, self.now[job.queue])} ({job.state.value})"
        )
        lines = [text + (f"  <- {why[0]}" if why else "  <- matches")]
        if len(why) > 1:
            lines.append(f"      also: {'; '.join(why[1:])}")
        return lines

    def _elsewhere(self, states: tuple[JobState, ...]) -> list[str]:
        """What the search did not look at: other states' counts, the job named by job_id, a pause."""
        lines: list[str] = []
        searched = {s.value for s in states}
        totals = dict.fromkeys([*_COUNTED, "dead"], 0)
        paused = []
        for queue in self.queues:
            counts = queue.counts()
            for state in totals:
                totals[state] += getattr(counts, state)
            if counts.paused:
                paused.append(queue.name)
        labels = {"dead": "dead-lettered"}
        others = [f"{n} {labels.get(s, s)}" for s, n in totals.items() if n and s not in searched]
        if others:
            lines.append("  not shown: " + ", ".join(others))
        job_id = self.rules.given.get("job_id")
        if isinstance(job_id, str) and not any(job.id == job_id for job, _ in self.candidates):
            for queue in self.queues:
                job = queue.get_job(job_id)
                if job is not None:
                    lines.append(
                        f"  job {job_id!r} is {job.state.value} in {queue.name!r} (not searched: state= says where "
                        "to look)"
                    )
        if paused:
            lines.append(
                "  (the queue is paused)" if len(self.queues) == 1 else f"  (paused: {', '.join(map(repr, paused))})"
            )
        return lines


def _rules(given: dict[str, Any], unknown: dict[str, Any]) -> Criteria:
    state = given.pop("state")
    tolerance = given.pop("tolerance")
    return criteria(tolerance=tolerance, state=state, unknown=unknown, **given)


def assert_enqueued(
    target: Target,
    *,
    job_id: Any = UNSET,
    name: Any = UNSET,
    data: Any = UNSET,
    state: Any = None,
    delay: Any = UNSET,
    due_at: Any = UNSET,
    priority: Any = UNSET,
    attempts: Any = UNSET,
    attempts_made: Any = UNSET,
    timeout: Any = UNSET,
    backoff: Any = UNSET,
    meta: Any = UNSET,
    where: Any = UNSET,
    count: int | None = None,
    tolerance: float = 0.001,
    **unknown: Any,
) -> list[Job]:
    """Assert that a job matches (exactly ``count`` of them, if given); return the matches.

    The failure message lists the nearest candidates (every one, up to 20) and why each does not
    match. The criteria and targets are described in :mod:`jqc.testing.matching` and above.
    """
    __tracebackhide__ = True
    given = {k: v for k, v in locals().items() if k[0] != "_" and k not in ("target", "count", "unknown")}
    wanted = count_of(count)
    search = _Search(target, _rules(given, unknown))
    found = len(search.matches)
    if (wanted is None and not found) or (wanted is not None and found != wanted):
        expected = "a job" if wanted is None else f"{wanted} job{'s' if wanted != 1 else ''}"
        raise AssertionError(search.failure(expected))
    return search.matches


def refute_enqueued(
    target: Target,
    *,
    job_id: Any = UNSET,
    name: Any = UNSET,
    data: Any = UNSET,
    state: Any = None,
    delay: Any = UNSET,
    due_at: Any = UNSET,
    priority: Any = UNSET,
    attempts: Any = UNSET,
    attempts_made: Any = UNSET,
    timeout: Any = UNSET,
    backoff: Any = UNSET,
    meta: Any = UNSET,
    where: Any = UNSET,
    tolerance: float = 0.001,
    **unknown: Any,
) -> None:
    """Assert that no job matches; the failure message lists the matches (and the other candidates)."""
    __tracebackhide__ = True
    given = {k: v for k, v in locals().items() if k[0] != "_" and k not in ("target", "unknown")}
    search = _Search(target, _rules(given, unknown))
    if search.matches:
        raise AssertionError(search.failure("no job"))


def all_enqueued(
    target: Target,
    *,
    job_id: Any = UNSET,
    name: Any = UNSET,
    data: Any = UNSET,
    state: Any = None,
    delay: Any = UNSET,
    due_at: Any = UNSET,
    priority: Any = UNSET,
    attempts: Any = UNSET,
    attempts_made: Any = UNSET,
    timeout: Any = UNSET,
    backoff: Any = UNSET,
    meta: Any = UNSET,
    where: Any = UNSET,
    tolerance: float = 0.001,
    **unknown: Any,
) -> list[Job]:
    """The jobs that match, in the order listed (per queue: each state in turn, waiting jobs in run
    order, delayed ones by due time); all of them in the states searched when no criterion is given."""
    given = {k: v for k, v in locals().items() if k[0] != "_" and k not in ("target", "unknown")}
    return _Search(target, _rules(given, unknown)).matches


def enqueued_jobs(
    target: Target,
    *,
    states: Any = None,
    **criteria_args: Any,
) -> list[Job]:
    """:func:`all_enqueued` by its first name (``states=`` is ``state=``)."""
    if states is not None:
        if "state" in criteria_args:
            raise InvalidOptionError("pass state= (or its old name states=), not both")
        criteria_args["state"] = states
    return all_enqueued(target, **criteria_args)
