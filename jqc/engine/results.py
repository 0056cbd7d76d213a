"""What queue operations answer: claims, completions, counts, pages, events, worker records.

Plain frozen dataclasses, shared by the sync and async queues, the worker, the coordinator and the
simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jqc import _json
from jqc.engine.codes import Code
from jqc.engine.job import ClaimedJob, DeadLetter, Job
from jqc.errors import CorruptJobError

__all__ = [
    "ClaimResult",
    "CompleteResult",
    "Counts",
    "DeadLetterPage",
    "Event",
    "Page",
    "RecoverResult",
    "SearchPage",
    "WorkerInfo",
]


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What a claim got: jobs (status OK), or why none and when to try again.

    ``retry_at`` is the clock time at which something may become claimable (the next delayed
    job's due time, or when the rate window reopens); None when unknown. ``corrupt`` lists jobs
    that were claimed but whose stored hash could not be decoded, as (id, token, reason): the
    claim operation fails each for good with that reason (dead-lettered), so none is run or lost.
    """

    status: Code
    jobs: tuple[ClaimedJob, ...] = ()
    retry_at: float | None = None
    corrupt: tuple[tuple[str, int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CompleteResult:
    """What ``complete_many`` did: jobs completed, jobs whose lock was lost, and the next claim."""

    completed: tuple[str, ...]
    lost: tuple[str, ...]
    next: ClaimResult | None


@dataclass(frozen=True, slots=True)
class Counts:
    """Jobs per state, from one atomic snapshot."""

    waiting: int
    delayed: int
    active: int
    completed: int
    failed: int
    dead: int
    paused: bool
    waiting_children: int = 0
    """Flow parents (and nodes of flows being created) waiting for their children."""

    @property
    def total(self) -> int:
        """Jobs stored in the queue (dead letters are copies of failed jobs, not counted)."""
        return self.waiting + self.delayed + self.active + self.completed + self.failed + self.waiting_children


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing and how many there are in all.

    A job whose stored hash cannot be decoded does not spoil the page: it is listed in
    ``corrupt`` as (id, reason) instead of ``jobs``.
    """

    total: int
    jobs: tuple[Job, ...]
    corrupt: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """One page of dead letters, newest first, and how many there are in all."""

    total: int
    letters: tuple[DeadLetter, ...]
    corrupt: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One bounded step of a search through a listing (``Queue.search``).

    ``jobs`` matched (dead letters as :class:`DeadLetter` when searching ``dead``); ``scanned``
    entries were looked at, from ``offset`` on; ``next_offset`` is where the next step starts, or
    None once the listing was read to its end. ``total`` is the listing's length when last read.
    """

    jobs: tuple[Job, ...]
    letters: tuple[DeadLetter, ...]
    offset: int
    next_offset: int | None
    scanned: int
    total: int


@dataclass(frozen=True, slots=True)
class RecoverResult:
    """Stalled jobs put back to waiting, and those failed for stalling too often."""

    recovered: tuple[str, ...]
    failed: tuple[str, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class FailResult:
    """A failure report that also claimed (``Queue.fail_and_fetch``): ``verdict`` is 'retry' or
    'failed', ``next`` what the claim in the same call got (None when none was asked for)."""

    verdict: str
    next: ClaimResult | None


@dataclass(frozen=True, slots=True)
class Renewal:
    """What one lock renewal found: which held jobs are still held, and which of them
    :meth:`jqc.Queue.cancel` has marked (job id -> the canceller's reason), so their holder stops them."""

    held: Mapping[str, bool]
    cancelled: Mapping[str, str]


#: Bytes of a job's encoded result that its ``completed`` event carries at most (complete.lua).
EVENT_RESULT_MAX = 4096

#: Events the engine writes; a producer's own events (``Queue.publish``) take other names.
ENGINE_EVENTS = frozenset(
    {
        "active", "added", "cancelled", "cancelling", "completed", "deduplicated", "delayed", "drained", "failed",
        "orphan",
        "paused", "progress", "removed", "resumed", "retrying", "scheduled", "stalled", "unscheduled",
        "updated", "waiting",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the queue's event stream.

    ``fields`` holds every field as written, ``e`` (name), ``j`` (job id) and ``t`` (time, ms)
    included. ``added`` events carry the job's name (``n``); ``completed`` events its result
    (``rv``, JSON) when it is at most :data:`EVENT_RESULT_MAX` bytes: see :attr:`has_result`.
    """

    id: str
    name: str
    job_id: str
    at: float
    fields: Mapping[str, str]

    @property
    def has_result(self) -> bool:
        """True for a ``completed`` event that carries its job's result (small enough to)."""
        return "rv" in self.fields

    @property
    def result(self) -> Any:
        """The job's result on a ``completed`` event that carries it (None otherwise: read the
        job with ``get_job`` when :attr:`has_result` is False)."""
        text = self.fields.get("rv")
        return None if text is None else _json.decode(text, what=f"result in event {self.id}")

    @property
    def job_name(self) -> str | None:
        """The job's name on an ``added`` event (None on other events)."""
        return self.fields.get("n")


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker as its last heartbeat described it (``Queue.workers()``).

    ``last_claim``: when (the worker's clock) it last claimed a job of this queue; None if it has
    not since it started (or it is a version that did not say). ``polled``: when its last claim
    attempt on this queue reached the server, whether or not it got a job (None: none yet, or a
    version that did not say). ``hold_until``: claiming on this queue is held off until then (the
    queue's rate limit, or a handler that raised :class:`jqc.RateLimited`); None when not.
    ``claim_error``: why its last claim attempt failed ('' when it reached the server).
    ``stuck_after``: the seconds without a poll after which it counts as not consuming while
    work waits (see :mod:`jqc.engine.liveness`); None: the default. ``stopping``: it is shutting
    down and claims no more.
    """

    id: str
    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    active: int
    concurrency: int
    started_at: float
    last_seen: float
    ttl: float
    last_claim: float | None = None
    polled: float | None = None
    hold_until: float | None = None
    claim_error: str = ""
    stuck_after: float | None = None
    stopping: bool = False

    @classmethod
    def from_fields(cls, worker_id: str, seen_ms: int, fields: Mapping[str, str]) -> WorkerInfo | None:
        """Decode a worker record; None when it is not one jqc wrote."""
        try:
            queues = _json.decode(fields.get("queues", "[]"), what=f"worker {worker_id} queues")
            return cls(
                id=worker_id,
                name=fields.get("name", worker_id),
                host=fields.get("host", ""),
                pid=int(fields.get("pid", 0)),
                queues=tuple(str(q) for q in queues) if isinstance(queues, list) else (),
                active=int(fields.get("active", 0)),
                concurrency=int(fields.get("concurrency", 0)),
                started_at=int(fields.get("started", 0)) / 1000.0,
                last_seen=seen_ms / 1000.0,
                ttl=int(fields.get("ttl", 30_000)) / 1000.0,
                last_claim=_ms_or_none(fields.get("claimed")),
                polled=_ms_or_none(fields.get("polled")),
                hold_until=_ms_or_none(fields.get("hold")),
                claim_error=fields.get("error", ""),
                stuck_after=_ms_or_none(fields.get("after")),
                stopping=fields.get("stopping", "0") == "1",
            )
        except (ValueError, TypeError, CorruptJobError):
            return None


def _ms_or_none(value: str | None) -> float | None:
    """A stored millisecond time or duration as seconds; None when absent or 0."""
    return int(value) / 1000.0 if value and value != "0" else None
