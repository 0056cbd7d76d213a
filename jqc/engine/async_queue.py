"""AsyncQueue (asyncio): the twin of :class:`~jqc.engine.queue.Queue`, method for method, over the
same :class:`QueueOperations` calls run by the async executor.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Unpack

from jqc.clock import hold
from jqc.engine.calls import Step, run_async
from jqc.engine.failures import FailureCode
from jqc.engine.flows import Flow, FlowNode
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
from jqc.engine.ops_flows import REPAIR_GRACE
from jqc.engine.ops_schedules import ScheduleArgs
from jqc.engine.queue_base import QueueBase, T
from jqc.engine.schedules import Schedule
from jqc.engine.waiting import wait_async
from jqc.errors import JqcError, PermissionDeniedError

__all__ = ["AsyncQueue"]


class AsyncQueue(QueueBase):
    """A queue, used from asyncio code. Each event loop gets its own client."""

    async def _run(self, step: Step[T]) -> T:
        with hold(self.clock):  # a virtual clock must not autojump while the call is in flight
            return await run_async(self.connection.async_backend(), step)

    async def add(
        self, name: str, data: Any = None, options: JobOptions | None = None, **overrides: Unpack[OptionArgs]
    ) -> Job:
        """The coroutine form of :meth:`Queue.add`."""
        job: Job = self._bound(await self._run(self.ops.add(name, data, self.ops.options(options, overrides))))
        return job

    async def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> list[Job]:
        """The coroutine form of :meth:`Queue.add_bulk`."""
        return [self._bound(job) for job in await self._run(self.ops.add_bulk(jobs))]

    async def wait_for(self, job_id: str, timeout: float | None = None) -> Any:
        """The coroutine form of :meth:`Queue.wait_for`. The timeout sleeps on the queue's clock (a
        virtual clock's autojump moves it while the shared stream read blocks); every waiter of
        this queue in this event loop shares one reader."""
        return await wait_async(self.connection.async_backend(), self.ops, job_id, timeout)

    async def get_job(self, job_id: str) -> Job | None:
        """The coroutine form of :meth:`Queue.get_job`."""
        job: Job | None = self._bound(await self._run(self.ops.get_job(job_id)))
        return job

    async def job_logs(self, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        """The coroutine form of :meth:`Queue.job_logs`."""
        return await self._run(self.ops.job_logs(job_id, start, end))

    async def exists(self) -> bool:
        """Whether the queue exists (it has had a job, a pause or a setting)."""
        return await self._run(self.ops.exists())

    async def counts(self) -> Counts:
        """The coroutine form of :meth:`Queue.counts`."""
        return await self._run(self.ops.counts())

    async def counts_per_priority(self, priorities: Iterable[int]) -> dict[int, int]:
        """The coroutine form of :meth:`Queue.counts_per_priority`."""
        return await self._run(self.ops.counts_per_priority(priorities))

    async def list_jobs(self, state: str, offset: int = 0, limit: int = 100, *, newest_first: bool = False) -> Page:
        """The coroutine form of :meth:`Queue.list_jobs`."""
        return await self._run(self.ops.list_jobs(state, offset, limit, newest_first=newest_first))

    async def dead_letters(self, offset: int = 0, limit: int = 100) -> DeadLetterPage:
        """The coroutine form of :meth:`Queue.dead_letters`."""
        return await self._run(self.ops.dead_letters(offset, limit))

    async def search(
        self,
        state: str,
        text: str = "",
        *,
        code: FailureCode | str | None = None,
        offset: int = 0,
        limit: int = 50,
        scan: int = 1000,
    ) -> SearchPage:
        """The coroutine form of :meth:`Queue.search`."""
        return await self._run(self.ops.search(state, text, code=code, offset=offset, limit=limit, scan=scan))

    async def recent_events(self, count: int = 1000, before: str | None = None) -> list[Event]:
        """The coroutine form of :meth:`Queue.recent_events`."""
        return await self._run(self.ops.recent_events(count, before))

    async def replay_dead(self, job_id: str) -> None:
        """The coroutine form of :meth:`Queue.replay_dead`."""
        await self._run(self.ops.replay_flow(job_id))

    async def purge_dead(self, job_id: str) -> int:
        """The coroutine form of :meth:`Queue.purge_dead`."""
        return await self._run(self.ops.purge_dead(job_id))

    async def purge_all_dead(self) -> int:
        """The coroutine form of :meth:`Queue.purge_all_dead`."""
        return await self._run(self.ops.purge_all_dead())

    async def find_dead(self, match: Callable[[DeadLetter], bool], *, limit: int | None = None) -> list[DeadLetter]:
        """The coroutine form of :meth:`Queue.find_dead`."""
        return await self._run(self.ops.find_dead(match, limit=limit))

    async def metrics(self, window_minutes: int = 60) -> Metrics:
        """The coroutine form of :meth:`Queue.metrics`."""
        return await self._run(self.ops.metrics(window_minutes))

    async def events(self, last_id: str = "0", count: int = 100, block: float | None = None) -> list[Event]:
        """The coroutine form of :meth:`Queue.events`."""
        step = self.ops.events(last_id, count, block)
        if block is None:
            return await self._run(step)
        return await run_async(self.connection.async_backend(), step)  # waiting: time may move

    async def listen(self, last_id: str = "$", *, block: float = 5.0, count: int = 100) -> AsyncIterator[Event]:
        """The async form of :meth:`Queue.listen`: ``async for event in queue.listen(): ...``."""
        position = await self._run(self.ops.event_position(last_id))
        while True:
            for event in await self.events(position, count, block):
                position = event.id
                yield event

    async def publish(self, name: str, fields: Mapping[str, str] | None = None, *, job_id: str = "") -> str:
        """The coroutine form of :meth:`Queue.publish`."""
        return await self._run(self.ops.publish(name, fields, job_id=job_id))

    async def trim_events(self, max_len: int = 0) -> int:
        """The coroutine form of :meth:`Queue.trim_events`."""
        return await self._run(self.ops.trim_events(max_len))

    async def pause(self) -> bool:
        """The coroutine form of :meth:`Queue.pause`."""
        return await self._run(self.ops.pause(True))

    async def resume(self) -> bool:
        """The coroutine form of :meth:`Queue.resume`."""
        return await self._run(self.ops.pause(False))

    async def configure(self, **settings: Any) -> None:
        """The coroutine form of :meth:`Queue.configure`."""
        await self._run(self.ops.configure(**settings))

    async def forget_dedup(self, key: str) -> bool:
        """The coroutine form of :meth:`Queue.forget_dedup`."""
        return await self._run(self.ops.forget_dedup(key))

    async def settings(self) -> QueueSettings:
        """The coroutine form of :meth:`Queue.settings`."""
        return await self._run(self.ops.settings())

    async def limit_rate(self, seconds: float) -> float | None:
        """The coroutine form of :meth:`Queue.limit_rate`."""
        return await self._run(self.ops.limit_rate(seconds))

    async def remove(self, job_id: str, *, children: bool = False) -> list[str]:
        """The coroutine form of :meth:`Queue.remove`."""
        if children:
            return await self._run(self.ops.remove_flow(job_id))
        await self._run(self.ops.remove(job_id))
        return [f"{self.name}/{job_id}"]

    async def add_flow(self, flow: Flow) -> FlowNode:
        """The coroutine form of :meth:`Queue.add_flow`."""
        plan = self.ops.plan(flow)
        try:
            return await self._run(self.ops.add_flow(plan))
        except PermissionDeniedError:  # a queue of the flow refused us: take back what was written
            for call in self.ops.abort_calls(plan):
                with contextlib.suppress(JqcError):
                    await self._run(call)
            raise

    async def add_children(self, claimed: ClaimedJob, children: Sequence[Flow]) -> int:
        """The coroutine form of :meth:`Queue.add_children`."""
        return await self._run(self.ops.park(claimed, children))

    async def flow(self, job_id: str) -> FlowNode | None:
        """The coroutine form of :meth:`Queue.flow`."""
        return await self._run(self.ops.flow(job_id))

    async def repair_flows(self, *, grace: float = REPAIR_GRACE) -> int:
        """The coroutine form of :meth:`Queue.repair_flows`."""
        return await self._run(self.ops.repair_flows(grace=grace))

    async def cancel(self, job_id: str, reason: str = "", *, retry: bool = False) -> str:
        """The coroutine form of :meth:`Queue.cancel`."""
        return await self._run(self.ops.cancel(job_id, reason, retry=retry))

    async def promote(self, job_id: str) -> None:
        """The coroutine form of :meth:`Queue.promote`."""
        await self._run(self.ops.promote(job_id))

    async def promote_all(self, limit: int | None = None) -> list[str]:
        """The coroutine form of :meth:`Queue.promote_all`."""
        return await self._run(self.ops.promote_all(limit))

    async def retry(self, job_id: str, *, reset_attempts: bool = True) -> None:
        """The coroutine form of :meth:`Queue.retry`."""
        await self._run(self.ops.retry(job_id, reset_attempts=reset_attempts))

    async def retry_failed(
        self, limit: int | None = None, *, before: float | None = None, reset_attempts: bool = True
    ) -> list[str]:
        """The coroutine form of :meth:`Queue.retry_failed`."""
        return await self._run(self.ops.retry_failed(limit, before=before, reset_attempts=reset_attempts))

    async def retry_completed(
        self, limit: int | None = None, *, before: float | None = None, reset_attempts: bool = True
    ) -> list[str]:
        """The coroutine form of :meth:`Queue.retry_completed`."""
        return await self._run(
            self.ops.retry_finished("completed", limit, before=before, reset_attempts=reset_attempts)
        )

    async def update_data(self, job_id: str, data: Any) -> None:
        """The coroutine form of :meth:`Queue.update_data`."""
        await self._run(self.ops.update_data(job_id, data))

    async def change_priority(self, job_id: str, priority: int) -> None:
        """The coroutine form of :meth:`Queue.change_priority`."""
        await self._run(self.ops.change_priority(job_id, priority))

    async def change_delay(self, job_id: str, delay: float) -> None:
        """The coroutine form of :meth:`Queue.change_delay`."""
        await self._run(self.ops.change_delay(job_id, delay))

    async def clean(self, state: str, grace: float, limit: int = BATCH) -> list[str]:
        """The coroutine form of :meth:`Queue.clean`."""
        return await self._run(self.ops.clean(state, grace, limit))

    async def drain(self, *, delayed: bool = False) -> int:
        """The coroutine form of :meth:`Queue.drain`."""
        return await self._run(self.ops.drain(delayed=delayed))

    async def obliterate(self, *, force: bool = False) -> int:
        """The coroutine form of :meth:`Queue.obliterate`."""
        return await self._run(self.ops.obliterate(force=force))

    async def schedule(
        self, name: str, options: JobOptions | None = None, **settings: Unpack[ScheduleArgs]
    ) -> Schedule:
        """The coroutine form of :meth:`Queue.schedule`."""
        return await self._run(self.ops.upsert_schedule(name, options, settings))

    async def get_schedule(self, name: str) -> Schedule | None:
        """The coroutine form of :meth:`Queue.get_schedule`."""
        return await self._run(self.ops.get_schedule(name))

    async def schedules(self, limit: int = 1000) -> list[Schedule]:
        """The coroutine form of :meth:`Queue.schedules`."""
        return await self._run(self.ops.schedules(limit))

    async def remove_schedule(self, name: str) -> bool:
        """The coroutine form of :meth:`Queue.remove_schedule`."""
        return await self._run(self.ops.remove_schedule(name))

    async def claim(self, worker: str, *, count: int = 1, lock: float = 30.0) -> ClaimResult:
        """The coroutine form of :meth:`Queue.claim`."""
        return await self._run(self.ops.claim(worker, count=count, lock=lock))

    async def extend(self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0) -> dict[str, bool]:
        """The coroutine form of :meth:`Queue.extend`."""
        return await self._run(self.ops.extend(held, lock=lock))

    async def renew(self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0) -> Renewal:
        """The coroutine form of :meth:`Queue.renew`."""
        return await self._run(self.ops.renew(held, lock=lock))

    async def complete(
        self,
        claimed: ClaimedJob,
        result: Any = None,
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        keep: Keep | None = None,
    ) -> ClaimResult | None:
        """The coroutine form of :meth:`Queue.complete`."""
        return await self._run(
            self.ops.complete(claimed, result, fetch_next=fetch_next, lock=lock, worker=worker, keep=keep)
        )

    async def complete_many(
        self,
        done: Sequence[tuple[ClaimedJob, Any]],
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        keep: Keep | None = None,
    ) -> CompleteResult:
        """The coroutine form of :meth:`Queue.complete_many`."""
        return await self._run(self.ops.complete_many(done, fetch_next=fetch_next, lock=lock, worker=worker, keep=keep))

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
        keep: Keep | None = None,
    ) -> str:
        """The coroutine form of :meth:`Queue.fail`."""
        return await self._run(
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

    async def fail_and_fetch(
        self, claimed: ClaimedJob, reason: str, *, fetch_next: int = 1, lock: float = 30.0, worker: str, **how: Any
    ) -> FailResult:
        """The coroutine form of :meth:`Queue.fail_and_fetch`."""
        return await self._run(
            self.ops.fail_and_fetch(claimed, reason, fetch_next=fetch_next, lock=lock, worker=worker, **how)
        )

    async def release_and_fetch(
        self, claimed: ClaimedJob, *, delay: float = 0.0, fetch_next: int = 1, lock: float = 30.0, worker: str
    ) -> ClaimResult | None:
        """The coroutine form of :meth:`Queue.release_and_fetch`."""
        return await self._run(
            self.ops.release_and_fetch(claimed, delay=delay, fetch_next=fetch_next, lock=lock, worker=worker)
        )

    async def release(self, claimed: ClaimedJob, *, delay: float = 0.0) -> None:
        """The coroutine form of :meth:`Queue.release`."""
        await self._run(self.ops.release(claimed, delay=delay))

    async def progress(self, claimed: ClaimedJob, value: Any) -> None:
        """The coroutine form of :meth:`Queue.progress`."""
        await self._run(self.ops.progress(claimed, value))

    async def log(self, claimed: ClaimedJob, line: str) -> int:
        """The coroutine form of :meth:`Queue.log`."""
        return await self._run(self.ops.log(claimed, line))

    async def recover_stalled(self, *, limit: int = BATCH, max_stalls: int = 1) -> RecoverResult:
        """The coroutine form of :meth:`Queue.recover_stalled`."""
        return await self._run(self.ops.recover_flow(self.ops.recover_stalled(limit=limit, max_stalls=max_stalls)))

    async def workers(self, *, ttl: float | None = None) -> list[WorkerInfo]:
        """The coroutine form of :meth:`Queue.workers`."""
        return await self._run(self.ops.workers(ttl=ttl))
