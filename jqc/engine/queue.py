"""Queue (sync): thin runners over :class:`QueueOperations` (its asyncio twin is in
:mod:`jqc.engine.async_queue`).

Every method builds its call(s) in :mod:`jqc.engine.operations` and hands them to the sync
executor, so the two classes cannot drift apart in behaviour.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Unpack

from jqc.engine.failures import FailureCode
from jqc.engine.job import BackoffFunction, ClaimedJob, DeadLetter, Job, JobOptions, Keep, NewJob
from jqc.engine.metrics import Metrics
from jqc.engine.operations import (
    BATCH,
    ClaimResult,
    CompleteResult,
    Counts,
    DeadLetterPage,
    Event,
    FailResult,
    OptionArgs,
    Page,
    QueueSettings,
    RecoverResult,
    Renewal,
    SearchPage,
    WorkerInfo,
)
from jqc.engine.ops_schedules import ScheduleArgs
from jqc.engine.queue_flows import QueueFlows
from jqc.engine.schedules import Schedule
from jqc.engine.waiting import wait_sync

__all__ = ["Queue"]


class Queue(QueueFlows):
    """A queue, used from synchronous code. Safe to share between threads."""

    # producing
    def add(
        self, name: str, data: Any = None, options: JobOptions | None = None, **overrides: Unpack[OptionArgs]
    ) -> Job:
        """Add a job; if ``job_id`` names an existing job, return that job unchanged.

        ``options`` and the keyword ``overrides`` merge onto the queue's ``default_options``
        (see :class:`Queue`): defaults, then the fields of ``options`` that are not
        ``JobOptions()``'s defaults, then the keywords.
        """
        job: Job = self._bound(self._run(self.ops.add(name, data, self.ops.options(options, overrides))))
        return job

    def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> list[Job]:
        """Add many jobs, one round trip per chunk of 500; all are validated before any is written."""
        return [self._bound(job) for job in self._run(self.ops.add_bulk(jobs))]

    def wait_for(self, job_id: str, timeout: float | None = None) -> Any:
        """Block until job ``job_id`` finishes and return its result; a job already finished
        answers at once.

        Raises :class:`jqc.JobFailedError` (carrying the failure) if it failed for good,
        :class:`jqc.WaitTimeoutError` if it has not finished after ``timeout`` seconds of the
        queue's clock (None: no limit; 0: look once), :class:`jqc.JobNotFoundError` if there is no
        such job or it was removed (or deleted on completion by ``remove_on_complete``). Woken by
        the event stream, one shared reader for every waiter of this queue (see ``docs/jobs.md``);
        a queue opened with ``events_max_len=0`` cannot wait (:class:`jqc.InvalidOptionError`).
        On a virtual clock the timeout passes only when another thread moves the clock.
        """
        return wait_sync(self.connection.backend, self.ops, job_id, timeout)

    # reading
    def get_job(self, job_id: str) -> Job | None:
        """The job ``job_id`` as stored now, or None if there is none (removed, or never added)."""
        job: Job | None = self._bound(self._run(self.ops.get_job(job_id)))
        return job

    def job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        """Lines the job's handler logged (``ctx.log``), oldest first; ``start``/``end`` as for LRANGE."""
        return self._run(self.ops.job_logs(job_id, start, end))

    def exists(self) -> bool:
        """Whether the queue exists (it has had a job, a pause or a setting)."""
        return self._run(self.ops.exists())

    def counts(self) -> Counts:
        """Jobs per state and the paused flag, from one atomic snapshot."""
        return self._run(self.ops.counts())

    def counts_per_priority(self, priorities: Iterable[int]) -> dict[int, int]:
        """How many waiting jobs each of ``priorities`` has, from one atomic snapshot:
        ``{priority: count}`` in the order asked (delayed jobs are not counted until they wait)."""
        return self._run(self.ops.counts_per_priority(priorities))

    def list_jobs(self, state: str, offset: int = 0, limit: int = 100, *, newest_first: bool = False) -> Page:
        """One page of the jobs in ``state`` (waiting, delayed, active, completed or failed) and the total.

        Waiting jobs come in claim order (``newest_first=True``: reversed, the job that would run
        last first, as BullMQ lists them), delayed ones by due time, finished ones newest first.
        """
        return self._run(self.ops.list_jobs(state, offset, limit, newest_first=newest_first))

    def dead_letters(self, offset: int = 0, limit: int = 100) -> DeadLetterPage:
        """One page of dead letters, newest first, and how many there are in all."""
        return self._run(self.ops.dead_letters(offset, limit))

    def search(
        self,
        state: str,
        text: str = "",
        *,
        code: FailureCode | str | None = None,
        offset: int = 0,
        limit: int = 50,
        scan: int = 1000,
    ) -> SearchPage:
        """Jobs in ``state`` (``'dead'``: dead letters) whose id, name or JSON data contain ``text``
        (case-insensitive), and that failed with ``code`` when given, looking at ``scan`` entries
        at most from ``offset``; go on from ``next_offset``. Each step costs what paging costs:
        never a scan of the whole queue.
        """
        return self._run(self.ops.search(state, text, code=code, offset=offset, limit=limit, scan=scan))

    def recent_events(self, count: int = 1000, before: str | None = None) -> list[Event]:
        """The newest ``count`` entries of the event stream, newest first (before entry id ``before``)."""
        return self._run(self.ops.recent_events(count, before))

    def replay_dead(self, job_id: str) -> None:
        """Send a dead-lettered job back to waiting (its attempts start again; the replay is counted)."""
        self._run(self.ops.replay_flow(job_id))

    def purge_dead(self, job_id: str) -> int:
        """Delete the dead-letter record of ``job_id``; returns how many were deleted (0 or 1)."""
        return self._run(self.ops.purge_dead(job_id))

    def purge_all_dead(self) -> int:
        """Delete every dead-letter record, in bounded batches; returns how many were deleted."""
        return self._run(self.ops.purge_all_dead())

    def find_dead(self, match: Callable[[DeadLetter], bool], *, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters (newest first) for which ``match`` is true, read page by page, at most ``limit``."""
        return self._run(self.ops.find_dead(match, limit=limit))

    def metrics(self, window_minutes: int = 60) -> Metrics:
        """Throughput and wait/run-time histograms of the last ``window_minutes`` minutes (on the queue's clock)."""
        return self._run(self.ops.metrics(window_minutes))

    def events(self, last_id: str = "0", count: int = 100, block: float | None = None) -> list[Event]:
        """Entries of the queue's event stream after ``last_id`` (``'0'`` from the start, ``'$'`` new ones).

        With ``block`` (seconds) the call waits on the server for the next entry; the wait is real time.
        """
        return self._run(self.ops.events(last_id, count, block))

    def listen(self, last_id: str = "$", *, block: float = 5.0, count: int = 100) -> Iterator[Event]:
        """Every event of the queue's stream after ``last_id`` ('$': from now on, '0': from the
        oldest kept), as it arrives: a listener's loop (``for event in queue.listen(): ...``).

        '$' is resolved when iteration starts (the first ``next``), not when ``listen`` is called;
        pass an entry id to start from a known point. It blocks on the server (real time)
        ``block`` seconds at a time and never ends by itself; break out of it. Nothing is missed
        between reads, but entries trimmed away before they are read are (the stream is capped
        at ``events_max_len``).
        """
        position = self._run(self.ops.event_position(last_id))
        while True:
            for event in self.events(position, count, block):
                position = event.id
                yield event

    def publish(self, name: str, fields: Mapping[str, str] | None = None, *, job_id: str = "") -> str:
        """Append a custom event to the queue's stream, for listeners (``listen``, ``events``):
        ``name`` must not be one of the engine's events, ``fields`` maps str to str. Returns its id."""
        return self._run(self.ops.publish(name, fields, job_id=job_id))

    def trim_events(self, max_len: int = 0) -> int:
        """Cut the event stream to its newest ``max_len`` entries (0 empties it); returns how many
        were deleted. Writes trim it approximately to ``events_max_len`` anyway."""
        return self._run(self.ops.trim_events(max_len))

    # administering
    def pause(self) -> bool:
        """Stop handing out jobs (adds still work); returns True if the queue was not paused already."""
        return self._run(self.ops.pause(True))

    def resume(self) -> bool:
        """Hand out jobs again after :meth:`pause`; returns True if the queue was paused."""
        return self._run(self.ops.pause(False))

    def configure(self, **settings: Any) -> None:
        """Set queue-wide settings: ``rate_limit=(max, per_seconds)``, ``concurrency``, ``max_stalls``,
        ``dead_letter_cap``, ``metrics_minutes``; None clears a setting, leaving it out keeps it.
        """
        self._run(self.ops.configure(**settings))

    def forget_dedup(self, key: str) -> bool:
        """Release the dedup key ``key`` now (True if it was held), so the next add with it creates
        a job; keys otherwise free themselves (simple and debounce: once their job started or
        finished; throttle: after the ttl)."""
        return self._run(self.ops.forget_dedup(key))

    def settings(self) -> QueueSettings:
        """The queue's settings as stored (concurrency limit, rate limit, stall and dead-letter
        caps, metrics kept, paused), with how many claims the current rate window has left, when
        it reopens, and until when a :meth:`limit_rate` hold runs."""
        return self._run(self.ops.settings())

    def limit_rate(self, seconds: float) -> float | None:
        """Hold off every worker's claims on this queue for ``seconds`` (0 lifts the hold): the
        queue-wide manual rate limit, for when a shared upstream says slow down. A shorter hold
        never cuts a running longer one. Returns when the hold ends (None once lifted).
        ``jqc.RateLimited`` raised by a handler pauses only its own worker unless it says
        ``queue_wide=True``, which calls this."""
        return self._run(self.ops.limit_rate(seconds))

    def remove(self, job_id: str, *, children: bool = False) -> list[str]:
        """Delete a job that is not held by a worker (raises :class:`jqc.JobActiveError` if it is).

        With ``children=True`` (a flow parent) also every job below it, on any queue, that has not
        finished and that no worker holds. Returns the ``queue/id`` of every job deleted.
        """
        if children:
            return self._run(self.ops.remove_flow(job_id))
        self._run(self.ops.remove(job_id))
        return [f"{self.name}/{job_id}"]

    def cancel(self, job_id: str, reason: str = "", *, retry: bool = False) -> str:
        """Cancel a job; returns ``'removed'``, ``'marked'`` or (a flow child) ``'failed'``.

        A job that has not started (waiting or delayed) is deleted, with a ``cancelled`` event. A
        job a worker holds is marked: its worker sets the handler's cancellation signal within one
        lock renewal (``ctx.cancelled`` and ``ctx.stop_event`` for a plain function, an asyncio
        cancellation for an ``async def`` one), and the run ends failed with code ``cancelled``,
        however the handler ended (a handler that returns first does not complete the job). It is
        not retried unless ``retry=True`` (then it is while attempts remain). A finished job raises
        :class:`jqc.JobStateError`, a missing one :class:`jqc.JobNotFoundError`. Flows: see ``docs/workflows.md``.
        """
        return self._run(self.ops.cancel(job_id, reason, retry=retry))

    def promote(self, job_id: str) -> None:
        """Make a delayed job wait now instead of at its due time."""
        self._run(self.ops.promote(job_id))

    def promote_all(self, limit: int | None = None) -> list[str]:
        """Make every delayed job wait now (at most ``limit``), soonest due first; returns their ids.

        Each job moves atomically on its own (a batch of promotions per round trip, the whole is not
        one atomic step): a job delayed while it runs may be promoted too, one that stopped being
        delayed meanwhile (claimed once due, removed) is passed over.
        """
        return self._run(self.ops.promote_all(limit))

    def retry(self, job_id: str, *, reset_attempts: bool = True) -> None:
        """Send a failed or completed job back to waiting (``reset_attempts``: with a fresh attempt
        budget; a completed job's result is cleared). Other states raise :class:`jqc.JobStateError`."""
        self._run(self.ops.retry(job_id, reset_attempts=reset_attempts))

    def retry_failed(
        self, limit: int | None = None, *, before: float | None = None, reset_attempts: bool = True
    ) -> list[str]:
        """Retry the oldest failed jobs (all of them when ``limit`` is None), only those that failed
        at or before ``before`` (seconds on the queue's clock) if given; returns their ids."""
        return self._run(self.ops.retry_failed(limit, before=before, reset_attempts=reset_attempts))

    def retry_completed(
        self, limit: int | None = None, *, before: float | None = None, reset_attempts: bool = True
    ) -> list[str]:
        """Run completed jobs again, oldest first (all of them when ``limit`` is None; only those
        that completed at or before ``before`` if given); returns their ids. Each moves atomically
        on its own, the whole is not one atomic step."""
        return self._run(self.ops.retry_finished("completed", limit, before=before, reset_attempts=reset_attempts))

    def update_data(self, job_id: str, data: Any) -> None:
        """Replace the data of a job that has not started (waiting or delayed), checked as ``add``
        checks data. Refused with :class:`jqc.JobActiveError` once a worker holds it,
        :class:`jqc.JobStateError` once it finished, :class:`jqc.JobNotFoundError` if it is gone."""
        self._run(self.ops.update_data(job_id, data))

    def change_priority(self, job_id: str, priority: int) -> None:
        """Give a waiting or delayed job another priority (lower runs first)."""
        self._run(self.ops.change_priority(job_id, priority))

    def change_delay(self, job_id: str, delay: float) -> None:
        """Make a delayed job due ``delay`` seconds from now."""
        self._run(self.ops.change_delay(job_id, delay))

    def clean(self, state: str, grace: float, limit: int = BATCH) -> list[str]:
        """Delete up to ``limit`` jobs in ``state`` that finished (completed, failed) or were created
        (waiting, delayed) ``grace`` seconds ago or earlier; returns their ids.

        The cut-off is inclusive, on the queue's clock in whole ms: ``clean("completed", 0)``
        deletes a job that completed at this very instant too.
        """
        return self._run(self.ops.clean(state, grace, limit))

    def drain(self, *, delayed: bool = False) -> int:
        """Delete every waiting job (and, with ``delayed=True``, every delayed one); returns how many."""
        return self._run(self.ops.drain(delayed=delayed))

    def obliterate(self, *, force: bool = False) -> int:
        """Delete every key of the queue; refuses while jobs are active unless ``force=True``."""
        return self._run(self.ops.obliterate(force=force))

    # scheduling
    def schedule(self, name: str, options: JobOptions | None = None, **settings: Unpack[ScheduleArgs]) -> Schedule:
        """Create or change schedule ``name``: a job added on every tick, exactly once per tick.

        ``cron="*/5 * * * *"`` with ``tz="Europe/Berlin"`` (IANA zone, default UTC), or
        ``every=timedelta(minutes=5)`` (or seconds, at least 1; from ``start``, default now). Each
        tick adds job ``job`` (default: the schedule's name) with ``data`` and the job options
        (``options`` and keywords such as ``priority=``, ``attempts=``), id ``s:<name>:<tick ms>``.
        ``missed`` ("once", "all" at most ``max_catch_up``, "skip") says what to do with ticks more
        than ``grace`` seconds late; ``overlap="skip"`` skips a tick while the previous tick's job
        has not finished. Upserting unchanged settings changes nothing (its next tick is kept), so
        every process may declare its schedules at start. Workers of the queue fire the ticks.
        Bad settings raise :class:`jqc.InvalidScheduleError`.
        """
        return self._run(self.ops.upsert_schedule(name, options, settings))

    def get_schedule(self, name: str) -> Schedule | None:
        """Schedule ``name`` as stored now (settings, next tick, counters), or None."""
        return self._run(self.ops.get_schedule(name))

    def schedules(self, limit: int = 1000) -> list[Schedule]:
        """The queue's schedules, the next to fire first."""
        return self._run(self.ops.schedules(limit))

    def remove_schedule(self, name: str) -> bool:
        """Delete schedule ``name`` (jobs it added stay); True if it existed."""
        return self._run(self.ops.remove_schedule(name))

    # working
    def claim(self, worker: str, *, count: int = 1, lock: float = 30.0) -> ClaimResult:
        """Claim up to ``count`` jobs for ``worker`` under fresh fencing tokens, each locked for ``lock`` seconds.

        What the worker runtime calls; use it directly to build your own worker.
        """
        return self._run(self.ops.claim(worker, count=count, lock=lock))

    def extend(self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0) -> dict[str, bool]:
        """Renew the locks of held jobs by ``lock`` seconds; returns job id -> still held."""
        return self._run(self.ops.extend(held, lock=lock))

    def renew(self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0) -> Renewal:
        """Renew as :meth:`extend` does, also reporting which held jobs :meth:`cancel` marked."""
        return self._run(self.ops.renew(held, lock=lock))

    def complete(
        self,
        claimed: ClaimedJob,
        result: Any = None,
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        keep: Keep | None = None,
    ) -> ClaimResult | None:
        """Report success of a held job with its ``result``; with ``fetch_next`` > 0 also claim that many more."""
        return self._run(self.ops.complete(claimed, result, fetch_next=fetch_next, lock=lock, worker=worker, keep=keep))

    def complete_many(
        self,
        done: Sequence[tuple[ClaimedJob, Any]],
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        keep: Keep | None = None,
    ) -> CompleteResult:
        """Complete many held jobs and claim up to ``fetch_next`` more, in one round trip."""
        return self._run(self.ops.complete_many(done, fetch_next=fetch_next, lock=lock, worker=worker, keep=keep))

    def fail(
        self,
        claimed: ClaimedJob,
        reason: str,
        *,
        traceback: str | None = None,
        retry: bool = True,
        delay: float | None = None,
        error: BaseException | None = None,
        rng: random.Random | None = None,
        backoff_functions: Mapping[str, BackoffFunction] | None = None,
        worker: str = "",
        code: FailureCode | str | None = None,
        keep: Keep | None = None,
    ) -> str:
        """Report a failed attempt; the delay comes from the job's backoff unless given."""
        return self._run(
            self.ops.fail_flow(
                claimed,
                self.ops.fail(
                    claimed,
                    reason,
                    traceback=traceback,
                    retry=retry,
                    delay=delay,
                    error=error,
                    rng=rng,
                    backoff_functions=backoff_functions,
                    worker=worker,
                    code=code,
                    keep=keep,
                ),
            )
        )

    def fail_and_fetch(
        self, claimed: ClaimedJob, reason: str, *, fetch_next: int = 1, lock: float = 30.0, worker: str, **how: Any
    ) -> FailResult:
        """:meth:`fail` (``how``: its options) and claim ``fetch_next`` next jobs for ``worker`` in
        the same round trip, as ``complete(..., fetch_next=)`` does; returns the verdict and the claim."""
        return self._run(
            self.ops.fail_and_fetch(claimed, reason, fetch_next=fetch_next, lock=lock, worker=worker, **how)
        )

    def release_and_fetch(
        self, claimed: ClaimedJob, *, delay: float = 0.0, fetch_next: int = 1, lock: float = 30.0, worker: str
    ) -> ClaimResult | None:
        """:meth:`release` (to waiting, or delayed by ``delay``) and claim ``fetch_next`` next jobs
        for ``worker`` in the same round trip. With no delay the job goes back to the head of its
        priority, so the claim may hand it straight back."""
        return self._run(
            self.ops.release_and_fetch(claimed, delay=delay, fetch_next=fetch_next, lock=lock, worker=worker)
        )

    def release(self, claimed: ClaimedJob, *, delay: float = 0.0) -> None:
        """Hand a held job back without counting an attempt (to waiting, or delayed by ``delay``)."""
        self._run(self.ops.release(claimed, delay=delay))

    def progress(self, claimed: ClaimedJob, value: Any) -> None:
        """Record the held job's progress (any JSON value); rejected once the lock is lost."""
        self._run(self.ops.progress(claimed, value))

    def log(self, claimed: ClaimedJob, line: str) -> int:
        """Append a line to the held job's log; returns the log's length (it keeps the newest lines)."""
        return self._run(self.ops.log(claimed, line))

    def recover_stalled(self, *, limit: int = BATCH, max_stalls: int = 1) -> RecoverResult:
        """Put back jobs whose lock expired (their holder died or froze); those that stalled more
        than ``max_stalls`` times fail for good. What the worker's stall check calls.
        """
        return self._run(self.ops.recover_flow(self.ops.recover_stalled(limit=limit, max_stalls=max_stalls)))

    def workers(self, *, ttl: float | None = None) -> list[WorkerInfo]:
        """Live workers of this queue (see :meth:`QueueOperations.workers`)."""
        return self._run(self.ops.workers(ttl=ttl))
