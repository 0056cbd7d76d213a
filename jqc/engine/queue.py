"""Queue (sync) and AsyncQueue (asyncio): thin runners over :class:`QueueOperations`.

Every method builds its call(s) in :mod:`jqc.engine.operations` and hands them to the sync or async
executor, so the two classes cannot drift apart in behaviour.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, Unpack

from jqc.clock import Clock, hold
from jqc.engine.calls import Step, run_async, run_sync
from jqc.engine.failures import FailureCode
from jqc.engine.host import Host
from jqc.engine.job import BackoffFunction, ClaimedJob, DeadLetter, Job, JobOptions, NewJob
from jqc.engine.metrics import Metrics
from jqc.engine.operations import (
    BATCH,
    ClaimResult,
    CompleteResult,
    Counts,
    DeadLetterPage,
    Event,
    OptionArgs,
    Page,
    QueueOperations,
    RecoverResult,
    WorkerInfo,
)
from jqc.errors import InvalidOptionError

__all__ = ["AsyncQueue", "Queue"]

T = TypeVar("T")


class _QueueBase:
    def __init__(
        self,
        name: str,
        connection: Host,
        *,
        clock: Clock | None = None,
        default_options: JobOptions | None = None,
        max_data_bytes: int = 512 * 1024,
        events_max_len: int = 10_000,
        log_max_lines: int = 1000,
    ) -> None:
        if not isinstance(connection, Host):
            raise InvalidOptionError(f"connection must come from jqc.connect(), not {connection!r}")
        self.connection = connection
        self.ops = QueueOperations(
            name,
            clock=clock or connection.clock,
            prefix=connection.prefix,
            default_options=default_options,
            max_data_bytes=max_data_bytes,
            events_max_len=events_max_len,
            log_max_lines=log_max_lines,
        )

    @property
    def name(self) -> str:
        return self.ops.name

    @property
    def clock(self) -> Clock:
        return self.ops.clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.connection!r})"


class Queue(_QueueBase):
    """A queue, used from synchronous code. Safe to share between threads."""

    def _run(self, step: Step[T]) -> T:
        return run_sync(self.connection.backend, step)

    # producing
    def add(
        self, name: str, data: Any = None, options: JobOptions | None = None, **overrides: Unpack[OptionArgs]
    ) -> Job:
        """Add a job; if ``job_id`` names an existing job, return that job unchanged."""
        return self._run(self.ops.add(name, data, self.ops.options(options, overrides)))

    def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> list[Job]:
        """Add many jobs, one round trip per chunk of 500; all are validated before any is written."""
        return self._run(self.ops.add_bulk(jobs))

    # reading
    def get_job(self, job_id: str) -> Job | None:
        return self._run(self.ops.get_job(job_id))

    def job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        return self._run(self.ops.job_logs(job_id, start, end))

    def exists(self) -> bool:
        """Whether the queue exists (it has had a job, a pause or a setting)."""
        return self._run(self.ops.exists())

    def counts(self) -> Counts:
        return self._run(self.ops.counts())

    def list_jobs(self, state: str, offset: int = 0, limit: int = 100) -> Page:
        return self._run(self.ops.list_jobs(state, offset, limit))

    def dead_letters(self, offset: int = 0, limit: int = 100) -> DeadLetterPage:
        return self._run(self.ops.dead_letters(offset, limit))

    def replay_dead(self, job_id: str) -> None:
        self._run(self.ops.replay_dead(job_id))

    def purge_dead(self, job_id: str) -> int:
        return self._run(self.ops.purge_dead(job_id))

    def purge_all_dead(self) -> int:
        return self._run(self.ops.purge_all_dead())

    def find_dead(self, match: Callable[[DeadLetter], bool], *, limit: int | None = None) -> list[DeadLetter]:
        return self._run(self.ops.find_dead(match, limit=limit))

    def metrics(self, window_minutes: int = 60) -> Metrics:
        return self._run(self.ops.metrics(window_minutes))

    def events(self, last_id: str = "0", count: int = 100, block: float | None = None) -> list[Event]:
        return self._run(self.ops.events(last_id, count, block))

    # administering
    def pause(self) -> bool:
        return self._run(self.ops.pause(True))

    def resume(self) -> bool:
        return self._run(self.ops.pause(False))

    def configure(self, **settings: Any) -> None:
        self._run(self.ops.configure(**settings))

    def remove(self, job_id: str) -> None:
        self._run(self.ops.remove(job_id))

    def promote(self, job_id: str) -> None:
        self._run(self.ops.promote(job_id))

    def retry(self, job_id: str, *, reset_attempts: bool = True) -> None:
        """Send a failed job back to waiting (``reset_attempts``: with a fresh attempt budget)."""
        self._run(self.ops.retry(job_id, reset_attempts=reset_attempts))

    def retry_failed(self, limit: int | None = None, *, reset_attempts: bool = True) -> list[str]:
        return self._run(self.ops.retry_failed(limit, reset_attempts=reset_attempts))

    def change_priority(self, job_id: str, priority: int) -> None:
        self._run(self.ops.change_priority(job_id, priority))

    def change_delay(self, job_id: str, delay: float) -> None:
        self._run(self.ops.change_delay(job_id, delay))

    def clean(self, state: str, grace: float, limit: int = BATCH) -> list[str]:
        return self._run(self.ops.clean(state, grace, limit))

    def drain(self, *, delayed: bool = False) -> int:
        return self._run(self.ops.drain(delayed=delayed))

    def obliterate(self, *, force: bool = False) -> int:
        return self._run(self.ops.obliterate(force=force))

    # working
    def claim(self, worker: str, *, count: int = 1, lock: float = 30.0) -> ClaimResult:
        return self._run(self.ops.claim(worker, count=count, lock=lock))

    def extend(self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0) -> dict[str, bool]:
        return self._run(self.ops.extend(held, lock=lock))

    def complete(
        self, claimed: ClaimedJob, result: Any = None, *, fetch_next: int = 0, lock: float = 30.0, worker: str = ""
    ) -> ClaimResult | None:
        return self._run(self.ops.complete(claimed, result, fetch_next=fetch_next, lock=lock, worker=worker))

    def complete_many(
        self, done: Sequence[tuple[ClaimedJob, Any]], *, fetch_next: int = 0, lock: float = 30.0, worker: str = ""
    ) -> CompleteResult:
        """Complete many held jobs and claim up to ``fetch_next`` more, in one round trip."""
        return self._run(self.ops.complete_many(done, fetch_next=fetch_next, lock=lock, worker=worker))

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
    ) -> str:
        """Report a failed attempt; the delay comes from the job's backoff unless given."""
        return self._run(
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
            )
        )

    def release(self, claimed: ClaimedJob, *, delay: float = 0.0) -> None:
        self._run(self.ops.release(claimed, delay=delay))

    def progress(self, claimed: ClaimedJob, value: Any) -> None:
        self._run(self.ops.progress(claimed, value))

    def log(self, claimed: ClaimedJob, line: str) -> int:
        return self._run(self.ops.log(claimed, line))

    def recover_stalled(self, *, limit: int = BATCH, max_stalls: int = 1) -> RecoverResult:
        return self._run(self.ops.recover_stalled(limit=limit, max_stalls=max_stalls))

    def workers(self, *, ttl: float | None = None) -> list[WorkerInfo]:
        """Live workers of this queue (see :meth:`QueueOperations.workers`)."""
        return self._run(self.ops.workers(ttl=ttl))


class AsyncQueue(_QueueBase):
    """A queue, used from asyncio code. Each event loop gets its own client."""

    async def _run(self, step: Step[T]) -> T:
        with hold(self.clock):  # a virtual clock must not autojump while the call is in flight
            return await run_async(self.connection.async_backend(), step)

    async def add(
        self, name: str, data: Any = None, options: JobOptions | None = None, **overrides: Unpack[OptionArgs]
    ) -> Job:
        return await self._run(self.ops.add(name, data, self.ops.options(options, overrides)))

    async def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> list[Job]:
        return await self._run(self.ops.add_bulk(jobs))

    async def get_job(self, job_id: str) -> Job | None:
        return await self._run(self.ops.get_job(job_id))

    async def job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        return await self._run(self.ops.job_logs(job_id, start, end))

    async def exists(self) -> bool:
        """Whether the queue exists (it has had a job, a pause or a setting)."""
        return await self._run(self.ops.exists())

    async def counts(self) -> Counts:
        return await self._run(self.ops.counts())

    async def list_jobs(self, state: str, offset: int = 0, limit: int = 100) -> Page:
        return await self._run(self.ops.list_jobs(state, offset, limit))

    async def dead_letters(self, offset: int = 0, limit: int = 100) -> DeadLetterPage:
        return await self._run(self.ops.dead_letters(offset, limit))

    async def replay_dead(self, job_id: str) -> None:
        await self._run(self.ops.replay_dead(job_id))

    async def purge_dead(self, job_id: str) -> int:
        return await self._run(self.ops.purge_dead(job_id))

    async def purge_all_dead(self) -> int:
        return await self._run(self.ops.purge_all_dead())

    async def find_dead(self, match: Callable[[DeadLetter], bool], *, limit: int | None = None) -> list[DeadLetter]:
        return await self._run(self.ops.find_dead(match, limit=limit))

    async def metrics(self, window_minutes: int = 60) -> Metrics:
        return await self._run(self.ops.metrics(window_minutes))

    async def events(self, last_id: str = "0", count: int = 100, block: float | None = None) -> list[Event]:
        step = self.ops.events(last_id, count, block)
        if block is None:
            return await self._run(step)
        return await run_async(self.connection.async_backend(), step)  # waiting: time may move

    async def pause(self) -> bool:
        return await self._run(self.ops.pause(True))

    async def resume(self) -> bool:
        return await self._run(self.ops.pause(False))

    async def configure(self, **settings: Any) -> None:
        await self._run(self.ops.configure(**settings))

    async def remove(self, job_id: str) -> None:
        await self._run(self.ops.remove(job_id))

    async def promote(self, job_id: str) -> None:
        await self._run(self.ops.promote(job_id))

    async def retry(self, job_id: str, *, reset_attempts: bool = True) -> None:
        """Send a failed job back to waiting (``reset_attempts``: with a fresh attempt budget)."""
        await self._run(self.ops.retry(job_id, reset_attempts=reset_attempts))

    async def retry_failed(self, limit: int | None = None, *, reset_attempts: bool = True) -> list[str]:
        return await self._run(self.ops.retry_failed(limit, reset_attempts=reset_attempts))

    async def change_priority(self, job_id: str, priority: int) -> None:
        await self._run(self.ops.change_priority(job_id, priority))

    async def change_delay(self, job_id: str, delay: float) -> None:
        await self._run(self.ops.change_delay(job_id, delay))

    async def clean(self, state: str, grace: float, limit: int = BATCH) -> list[str]:
        return await self._run(self.ops.clean(state, grace, limit))

    async def drain(self, *, delayed: bool = False) -> int:
        return await self._run(self.ops.drain(delayed=delayed))

    async def obliterate(self, *, force: bool = False) -> int:
        return await self._run(self.ops.obliterate(force=force))

    async def claim(self, worker: str, *, count: int = 1, lock: float = 30.0) -> ClaimResult:
        return await self._run(self.ops.claim(worker, count=count, lock=lock))

    async def extend(self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0) -> dict[str, bool]:
        return await self._run(self.ops.extend(held, lock=lock))

    async def complete(
        self, claimed: ClaimedJob, result: Any = None, *, fetch_next: int = 0, lock: float = 30.0, worker: str = ""
    ) -> ClaimResult | None:
        return await self._run(self.ops.complete(claimed, result, fetch_next=fetch_next, lock=lock, worker=worker))

    async def complete_many(
        self, done: Sequence[tuple[ClaimedJob, Any]], *, fetch_next: int = 0, lock: float = 30.0, worker: str = ""
    ) -> CompleteResult:
        return await self._run(self.ops.complete_many(done, fetch_next=fetch_next, lock=lock, worker=worker))

    async def fail(
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
    ) -> str:
        return await self._run(
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
            )
        )

    async def release(self, claimed: ClaimedJob, *, delay: float = 0.0) -> None:
        await self._run(self.ops.release(claimed, delay=delay))

    async def progress(self, claimed: ClaimedJob, value: Any) -> None:
        await self._run(self.ops.progress(claimed, value))

    async def log(self, claimed: ClaimedJob, line: str) -> int:
        return await self._run(self.ops.log(claimed, line))

    async def recover_stalled(self, *, limit: int = BATCH, max_stalls: int = 1) -> RecoverResult:
        return await self._run(self.ops.recover_stalled(limit=limit, max_stalls=max_stalls))

    async def workers(self, *, ttl: float | None = None) -> list[WorkerInfo]:
        return await self._run(self.ops.workers(ttl=ttl))
