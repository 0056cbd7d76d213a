"""What the dashboard's pages show, read through jqc's queue and coordinator APIs (asyncio).

Nothing here names a Redis key: every read is a :class:`jqc.AsyncQueue` method or a coordinator
operation, so the dashboard follows the engine wherever its key layout goes. Every read is
bounded: counts and metrics are one script each, listings and searches one page (or one bounded
search step), a job's timeline a bounded look back through its queue's events, the schedules page
at most ``Settings.schedules_shown`` schedules per queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jqc.clock import now_ms
from jqc.connection import Connection
from jqc.coordinator import health
from jqc.coordinator.health import HealthReport
from jqc.coordinator.lock import Lease, ScaleDecision, read_decision_op, read_lock
from jqc.coordinator.metrics import QueueSnapshot, aread_snapshot, queue_names_op
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.calls import run_async
from jqc.engine.job import DeadLetter, Job
from jqc.engine.liveness import not_consuming
from jqc.engine.metrics import Metrics
from jqc.engine.results import Counts, Event, SearchPage, WorkerInfo
from jqc.engine.schedules import Schedule
from jqc.errors import CorruptJobError, PermissionDeniedError

from .formatting import Spark, sparks

__all__ = [
    "STATES",
    "Decision",
    "JobView",
    "Listing",
    "QueueNames",
    "QueueRow",
    "ScheduleRow",
    "Schedules",
    "Settings",
    "WorkerRow",
    "decisions",
    "job_view",
    "listing",
    "queue_row",
    "schedule_rows",
    "worker_rows",
]

log = logging.getLogger("jqc.dashboard")

#: The states a queue page lists, in the order of its tabs.
STATES = ("waiting", "delayed", "active", "completed", "failed", "dead")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How the dashboard reads: page size, search budget, health rules, what counts as idle."""

    read_only: bool = False
    queues: tuple[str, ...] | None = None
    page_size: int = 50
    search_scan: int = 500
    bulk_limit: int = 10_000
    timeline_events: int = 5000  # events a job page looks back through, at most
    schedules_shown: int = 200  # schedules per queue on the schedules page, the next to fire first
    late_after: float = 60.0  # seconds past its next tick before a schedule is flagged late
    worker_ttl: float = 30.0
    idle_after: float | None = None  # None: each worker's own stuck_after
    health_rules: health.HealthRules = dataclasses.field(default_factory=health.HealthRules)
    title: str = "jqc"


class QueueNames:
    """The queues to show: the configured ones, else every queue under the connection's prefix.

    Finding them is a SCAN of the whole keyspace (jqc keeps no list of queues), which takes a
    second or more on a server holding millions of keys, so the names found are kept and
    rediscovered in the background once they are ``refresh`` seconds old (real time: this paces
    the dashboard's own reads): a page never waits for a scan except the very first one, or while
    no queue was found yet. A queue added since appears within ``refresh`` seconds.
    """

    def __init__(self, refresh: float = 10.0) -> None:
        self.refresh = refresh
        self._names: list[str] = []
        self._at = -float("inf")
        self._task: asyncio.Task[None] | None = None

    async def _scan(self, conn: Connection) -> None:
        found: list[str] = await run_async(conn.async_backend(), queue_names_op(conn.prefix))
        self._names, self._at = found, time.monotonic()

    async def get(self, conn: Connection, settings: Settings) -> list[str]:
        """The names, from the last scan when there is one (starting a fresh one when it is old)."""
        if settings.queues is not None:
            return list(settings.queues)
        if not self._names:
            await self._scan(conn)
        elif time.monotonic() - self._at > self.refresh and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._scan(conn))
            self._task.add_done_callback(_quiet)
        return list(self._names)


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("dashboard: finding the queues failed: %s", task.exception())


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queue on the overview: counts, the hour's figures and charts, and its health now."""

    name: str
    counts: Counts
    hour: QueueSnapshot
    health: HealthReport
    stored_health: HealthReport | None
    charts: tuple[Spark, Spark, Spark]

    def wait(self, p: float) -> float | None:
        """The p-th percentile of wait time over the hour (seconds)."""
        return self.hour.wait_percentile(p)

    def run(self, p: float) -> float | None:
        """The p-th percentile of run time over the hour (seconds)."""
        return self.hour.run_percentile(p)


def _recent(snapshot: QueueSnapshot, minutes: int) -> QueueSnapshot:
    """The same snapshot judged over its last ``minutes`` minutes only (the health rules' window)."""
    last = int(snapshot.at * 1000) // 60000
    kept = tuple(m for m in snapshot.metrics.minutes if m.minute > last - minutes)
    return dataclasses.replace(snapshot, metrics=Metrics(kept, minutes), window_minutes=minutes)


async def queue_row(conn: Connection, name: str, settings: Settings) -> QueueRow:
    """Read one overview row: one snapshot over the last hour, health judged on the rules' window."""
    aq = conn.async_queue(name)
    rules = settings.health_rules
    hour = await aread_snapshot(aq, window_minutes=max(60, rules.window_minutes), worker_ttl=rules.worker_ttl)
    report = health.evaluate(_recent(hour, rules.window_minutes), rules)
    try:
        stored = await health.aread_health(aq)
    except CorruptJobError:
        stored = None
    last_minute = now_ms(aq.clock) // 60000
    return QueueRow(name, hour.counts, hour, report, stored, sparks(hour.metrics, last_minute))


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of a queue page's list: jobs (or dead letters) in a state, or one search step."""

    state: str
    offset: int
    total: int
    jobs: tuple[Job, ...]
    letters: tuple[DeadLetter, ...]
    corrupt: tuple[tuple[str, str], ...]
    query: str
    code: str | None
    found: Job | None  # the job whose id is exactly the query, wherever it is
    search: SearchPage | None

    @property
    def next_offset(self) -> int | None:
        """Where the next page (or search step) starts; None at the end."""
        if self.search is not None:
            return self.search.next_offset
        return None if self.offset + max(len(self.jobs), 1) >= self.total else self.offset + len(self.jobs)


async def listing(
    conn: Connection, name: str, state: str, settings: Settings, *, offset: int, query: str, code: str | None
) -> Listing:
    """The page at ``offset`` of ``state``, or with a query (or a failure code) one bounded search step."""
    aq = conn.async_queue(name)
    size = settings.page_size
    if query or code:
        found = await aq.get_job(query) if query else None
        step = await aq.search(state, query, code=code, offset=offset, limit=size, scan=settings.search_scan)
        return Listing(state, offset, step.total, step.jobs, step.letters, (), query, code, found, step)
    if state == "dead":
        dead = await aq.dead_letters(offset, size)
        jobs = tuple(letter.job for letter in dead.letters)
        return Listing(state, offset, dead.total, jobs, dead.letters, dead.corrupt, "", None, None, None)
    page = await aq.list_jobs(state, offset, size)
    return Listing(state, offset, page.total, page.jobs, (), page.corrupt, "", None, None, None)


@dataclass(frozen=True, slots=True)
class JobView:
    """Everything the job page shows: the job, its log, its events (oldest first), its worker; or,
    for a job removed after it failed for good, its dead-letter record (``letter``, whose ``job``
    is the job as it was then)."""

    job: Job
    logs: tuple[str, ...]
    timeline: tuple[Event, ...]
    timeline_complete: bool
    worker: WorkerInfo | None
    letter: DeadLetter | None = None


TIMELINE_FIRST, TIMELINE_STEP = 100, 1000  # stream entries in the first read of a job's timeline, then per read


async def _timeline(aq: AsyncQueue, job: Job, budget: int) -> tuple[tuple[Event, ...], bool]:
    """The job's events, oldest first, and whether that is all of them.

    Looks back from the newest entry of the queue's stream (a short first read, then pages of
    :data:`TIMELINE_STEP` entries) and stops once it saw the job's ``added`` event or passed the
    job's creation (nothing older is this job's), reached the stream's oldest entry, or read
    ``budget`` entries: a recent job's page costs one short read, a busy queue's a few reads at
    most, and in a quiet queue it finds a job's whole life however long ago it started. Complete
    means it saw the job's ``added`` event or an entry from before the job existed; a stream that
    ends before either was trimmed of the job's first events (or keeps none: ``events_max_len=0``).

    When the stream's oldest entry (one read of one entry) is newer than the job, its first events
    are gone and the timeline cannot be complete: then it looks back through one page only, so an
    old job's page costs what a recent one's does.
    """
    oldest = await aq.events("0", count=1)
    if not oldest or oldest[0].at > job.created_at:
        budget = min(budget, TIMELINE_STEP)
    mine: list[Event] = []
    before: str | None = None
    read, passed = 0, False
    while read < budget:
        step = min(TIMELINE_STEP if read else TIMELINE_FIRST, budget - read)
        page = await aq.recent_events(step, before)
        read += len(page)
        # Not an older job of the same id (removed, then added again): its events came before.
        mine += [e for e in page if e.job_id == job.id and e.at >= job.created_at]
        passed = bool(page) and page[-1].at < job.created_at
        born = any(e.name == "added" for e in mine)  # its first event: nothing older is its
        if passed or born or len(page) < step:
            break
        before = page[-1].id
    return tuple(reversed(mine)), passed or born


async def job_view(conn: Connection, name: str, job_id: str, settings: Settings) -> JobView | None:
    """The job page's data; for a job that is gone, its dead letter if it has one (see
    :func:`dead_letter_of`); None when there is neither."""
    aq = conn.async_queue(name)
    job = await aq.get_job(job_id)
    letter = None
    if job is None:
        letter = await dead_letter_of(aq, job_id, settings)
        if letter is None:
            return None
        job = letter.job
    logs = await aq.job_logs(job_id, -500, -1) if letter is None else []
    timeline, complete = await _timeline(aq, job, settings.timeline_events)
    worker = None
    if job.worker and letter is None:
        worker = next((w for w in await aq.workers() if w.id == job.worker), None)
    return JobView(job, tuple(logs), timeline, complete, worker, letter)


async def dead_letter_of(aq: AsyncQueue, job_id: str, settings: Settings) -> DeadLetter | None:
    """The dead letter of ``job_id`` among the newest ``settings.search_scan`` ones (one bounded
    search step; dead letters have no lookup by id): what the job page shows of a job removed
    after it failed for good, whose record stays to be replayed or purged."""
    step = await aq.search("dead", job_id, limit=settings.search_scan, scan=settings.search_scan)
    return next((letter for letter in step.letters if letter.job.id == job_id), None)


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A worker in one queue, and whether it looks connected but not consuming."""

    queue: str
    info: WorkerInfo
    flagged: str  # why it looks stuck, or ''


async def worker_rows(conn: Connection, names: Sequence[str], settings: Settings) -> list[WorkerRow]:
    """Live workers of each queue (their last heartbeat within their TTL), flagged by the liveness rule
    (:func:`jqc.engine.liveness.not_consuming`): connected, a slot free, work waiting, no recent poll."""
    rows: list[WorkerRow] = []
    for name in names:
        aq = conn.async_queue(name)
        workers = await aq.workers()
        if not workers:
            continue
        counts = await aq.counts()
        now = aq.clock.now()
        rows += [WorkerRow(name, w, not_consuming(w, counts, now, after=settings.idle_after)) for w in workers]
    return rows


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A schedule of one queue: its settings and standing, its next fire times, and how late it runs."""

    queue: str
    schedule: Schedule
    next_fires: tuple[datetime, ...]  # in the schedule's own time zone
    late: float  # seconds its next tick is overdue (0 while it is not, or within Settings.late_after)


@dataclass(frozen=True, slots=True)
class Schedules:
    """The schedules page: every shown queue's schedules, the next to fire first."""

    rows: tuple[ScheduleRow, ...]
    errors: tuple[tuple[str, str], ...]  # (queue, why its schedules could not be read)
    capped: tuple[str, ...]  # queues with more schedules than Settings.schedules_shown


async def schedule_rows(conn: Connection, names: Sequence[str], settings: Settings, *, fires: int = 3) -> Schedules:
    """The schedules of ``names`` (at most ``settings.schedules_shown`` per queue), each with its
    next ``fires`` ticks and, when its next tick is more than ``settings.late_after`` seconds past,
    how late it is: workers fire ticks, so a late schedule means none of its queue's does."""
    rows: list[ScheduleRow] = []
    errors: list[tuple[str, str]] = []
    capped: list[str] = []
    shown = settings.schedules_shown
    for name in names:
        aq = conn.async_queue(name)
        try:
            found = await aq.schedules(shown + 1)
        except CorruptJobError as exc:
            errors.append((name, str(exc)))
            continue
        if len(found) > shown:
            capped.append(name)
        now = aq.clock.now()
        for schedule in found[:shown]:
            overdue = 0.0 if schedule.next_at is None else now - schedule.next_at
            late = overdue if overdue > settings.late_after else 0.0
            rows.append(ScheduleRow(name, schedule, tuple(schedule.next_fires(fires)), late))
    return Schedules(tuple(rows), tuple(errors), tuple(capped))


@dataclass(frozen=True, slots=True)
class Decision:
    """A queue's last published autoscaling decision and the state of its coordinator lock."""

    queue: str
    decision: ScaleDecision | None
    lease: Lease | None  # None when this user may not read the lock (the observer role)
    error: str


async def decisions(conn: Connection, names: Sequence[str]) -> list[Decision]:
    """The autoscaler's last decision per queue (queues with neither decision nor lock holder left out)."""
    out: list[Decision] = []
    backend = conn.async_backend()
    for name in names:
        ops = conn.async_queue(name).ops
        try:
            lease: Lease | None = await run_async(backend, read_lock(ops))
        except PermissionDeniedError:
            lease = None  # reading the lock runs its script, which only the coordinator role may
        try:
            decision: ScaleDecision | None = await run_async(backend, read_decision_op(ops))
            error = ""
        except CorruptJobError as exc:
            decision, error = None, str(exc)
        if decision is not None or (lease is not None and lease.holder) or error:
            out.append(Decision(name, decision, lease, error))
    return out


def values_of(mapping: Any) -> list[tuple[str, Any]]:
    """A mapping's items sorted by key, for the templates."""
    return sorted(dict(mapping).items())
