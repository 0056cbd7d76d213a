"""Settling a job: reporting its handler's outcome to Redis (complete, fail, release).

Successes are batched per lane: jobs that finish while an earlier completion is on its way are
reported together, in one ``complete_many`` round trip that also claims as many successors while
the worker accepts work (one job alone goes by ``complete(..., fetch_next=1)``). Every write is
retried through Redis outages until it lands, its token is rejected (the lock was lost), or
shutdown's deadline passes (stall recovery then takes the job back). Once the handler returned,
the job's lock is renewed for at most one lock duration while its outcome is reported (see
:class:`~jqc.worker.lane.Held`): a report stuck longer than that lets the lock go.
"""

from __future__ import annotations

import asyncio
import logging
import random
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from jqc import _json
from jqc.engine.codes import Code
from jqc.engine.failures import FailureCode
from jqc.engine.job import BackoffFunction, ClaimedJob
from jqc.engine.operations import ClaimResult, CompleteResult, FailResult
from jqc.errors import InvalidInputError, LockLostError
from jqc.worker.execute import Kind, Outcome
from jqc.worker.lane import Finished, Held, Lane
from jqc.worker.logs import fields, iso_time
from jqc.worker.shared import Shared

__all__ = ["Settler", "Successors"]

_REPORT_BATCH = 64  # successes reported in one call at most (bounds the time one script runs)
# The stable failure code stored with each failed attempt, by how the handler ended (else error).
_FAILURE_CODES = {
    Kind.TIMEOUT: FailureCode.TIMEOUT,
    Kind.FAIL: FailureCode.UNRECOVERABLE,
    Kind.CANCELLED: FailureCode.CANCELLED,
}
_REPORTERS = 1  # report calls in flight per lane (more did not pay: each call costs a round trip of CPU)


class Successors(Protocol):
    """Takes over the jobs a completion claimed next."""

    def hold(self, lane: Lane, claimed: ClaimedJob) -> Held:
        """Hold ``claimed`` (its lock renewed from now on) for the runner that reported its predecessor."""
        ...

    def start(self, lane: Lane, claimed: ClaimedJob) -> None:
        """Hold ``claimed`` and run it in a task of its own."""
        ...


class Settler:
    """Reports outcomes for one worker; jobs its completions claim go to ``successors``."""

    def __init__(
        self,
        shared: Shared,
        successors: Successors,
        *,
        rng: random.Random,
        backoff_functions: Mapping[str, BackoffFunction],
    ) -> None:
        self.shared = shared
        self.successors = successors
        self.rng = rng
        self.backoff_functions = backoff_functions

    async def settle(self, held: Held, outcome: Outcome) -> Held | None:
        """Report the outcome; returns the next job when the completion claimed one."""
        shared = self.shared
        lane, claimed, queue = held.lane, held.claimed, held.lane.queue
        held.settling = True
        held.renew_until = shared.clock.now() + shared.options.lock
        if outcome.kind is Kind.PARKED:  # the job left the worker for waiting-children in ctx.wait_for_children
            shared.tally["parked"] += 1
            return None
        if held.cancel_reason is not None:  # however the handler ended: fail.lua ends it as cancelled
            outcome = Outcome(Kind.CANCELLED, reason=f"cancelled: {held.cancel_reason}", error=outcome.error,
                              traceback=outcome.traceback)  # fmt: skip
        kind = outcome.kind
        if kind is Kind.ABORTED and not held.hand_back:
            shared.tally["lost"] += 1
            shared.log.warning("worker %s: gave up job %s of %s: %s", shared.id, claimed.id, lane.name, outcome.reason)
            return None
        if kind is Kind.ABORTED or kind is Kind.RATE_LIMITED:
            if kind is Kind.RATE_LIMITED:
                lane.pause_until = max(lane.pause_until, shared.clock.now() + (outcome.delay or 0.0))
                shared.log.info(
                    "worker %s: %s rate limited, pausing claims for %g s", shared.id, lane.name, outcome.delay
                )
                if getattr(outcome.error, "queue_wide", False):
                    await self._limit_queue(lane, outcome.delay or 0.0)
            if await self._write(held, "release", lambda: queue.release(claimed)):
                shared.tally["released"] += 1
            return None
        if kind is Kind.DONE:
            try:
                if outcome.result is not None:  # None always can
                    _json.encode(outcome.result, what="result", max_bytes=queue.ops.max_data_bytes)
            except InvalidInputError as exc:
                outcome = Outcome(
                    Kind.FAIL,
                    reason=f"the handler's result cannot be stored: {exc}",
                    error=exc,
                    traceback="".join(traceback.format_exception(exc)),
                )
            else:
                return await self._report_done(held, outcome.result)
        return await self._report_failure(held, outcome)

    async def _limit_queue(self, lane: Lane, delay: float) -> None:
        """A handler's ``RateLimited(queue_wide=True)``: hold off every worker's claims on the
        queue (one try: should it fail, this worker still pauses, and the job is handed back)."""
        shared, started = self.shared, self.shared.clock.now()
        try:
            await lane.queue.limit_rate(delay)
        except Exception as exc:
            shared.health.failed(f"limit rate of {lane.name}", exc, since=started)
        else:
            shared.health.ok(f"limit rate of {lane.name}")

    async def _report_done(self, held: Held, result: Any) -> Held | None:
        """Queue a success for the lane's reporter; returns the job its completion claimed next."""
        lane = held.lane
        loop = asyncio.get_running_loop()
        finished = Finished(held, result, loop.create_future())
        lane.finished.append(finished)
        if lane.reporters < _REPORTERS:
            lane.reporters += 1
            self.shared.spawn(self._report_finished(lane), name=f"jqc-report-{lane.name}")
        return await finished.reply

    async def _report_finished(self, lane: Lane) -> None:
        """Report the lane's successes, all that finished meanwhile in one round trip, until none is left.

        One job alone goes by ``complete`` (a stale token raises); several by ``complete_many`` (a
        stale token fails only its own job). Either way each success asks for a successor while the
        worker accepts work, so a busy lane claims and completes in the same calls.
        """
        size = max(1, min(_REPORT_BATCH, -(-lane.concurrency // _REPORTERS)))
        try:
            while lane.finished:
                batch = lane.finished[:size]
                del lane.finished[:size]
                try:
                    await self._complete(lane, batch)
                finally:
                    for item in batch:
                        if not item.reply.done():
                            item.reply.set_result(None)
        finally:
            lane.reporters -= 1

    async def _complete(self, lane: Lane, batch: list[Finished]) -> None:
        shared, queue, lock = self.shared, lane.queue, self.shared.options.lock
        keep = shared.options.keep_completed
        fetch = len(batch) if shared.accepting(lane) else 0
        following: ClaimResult | None = None
        if len(batch) == 1:
            held, result = batch[0].held, batch[0].result
            got: list[ClaimResult | None] = []

            async def complete() -> None:
                got.append(
                    await queue.complete(held.claimed, result, fetch_next=fetch, lock=lock, worker=shared.id, keep=keep)
                )

            if not await self._write(held, "complete", complete):
                return
            shared.tally["completed"] += 1
            self._completed(lane, [held])
            following = got[-1] if got else None
        else:
            reports: list[CompleteResult] = []

            async def complete_many() -> None:
                done = [(item.held.claimed, item.result) for item in batch]
                reports.append(
                    await queue.complete_many(done, fetch_next=fetch, lock=lock, worker=shared.id, keep=keep)
                )

            if not await self._write_batch(lane, batch, complete_many) or not reports:
                return
            report = reports[-1]
            shared.tally["completed"] += len(report.completed)
            if shared.log.isEnabledFor(logging.DEBUG):
                done = set(report.completed)
                self._completed(lane, [item.held for item in batch if item.held.id in done])
            for job_id in report.lost:
                shared.tally["lost"] += 1
                for item in batch:
                    if item.held.id == job_id:
                        item.held.ctx._abandon("lock lost: its completion was rejected")
                shared.log.warning(
                    "worker %s: complete of job %s in %s rejected: its lock was lost", shared.id, job_id, lane.name
                )
            following = report.next
        if following is None:
            return
        lane.note(following, shared.clock.now())
        if following.status != Code.OK:
            return
        for item, claimed in zip(batch, following.jobs, strict=False):
            if not item.reply.done():
                item.reply.set_result(self.successors.hold(lane, claimed))
            elif not shared.lifecycle.killed:  # its runner is gone: give the job a runner of its own
                self.successors.start(lane, claimed)

    async def _report_failure(self, held: Held, outcome: Outcome) -> Held | None:
        """A failed attempt (error, timeout, Retry), or a failure for good (Fail); while the worker
        accepts work the same call claims the job's successor, which is returned."""
        shared, claimed, queue, lane = self.shared, held.claimed, held.lane.queue, held.lane
        if outcome.kind is Kind.TIMEOUT:
            shared.tally["timed_out"] += 1
        retry = outcome.kind is not Kind.FAIL and outcome.kind is not Kind.CANCELLED  # cancel: the mark decides
        delay = outcome.delay if outcome.kind is Kind.RETRY else None
        reason = outcome.reason or outcome.kind.value
        if retry and delay is None:
            # Computed once here (not on every retried write) so a custom backoff runs once.
            try:
                delay = queue.ops.retry_delay(
                    claimed, error=outcome.error, rng=self.rng, backoff_functions=self.backoff_functions
                )
            except Exception as exc:
                retry, reason = False, f"{reason} (not retried: {exc})"
        verdict: list[FailResult] = []
        fetch = 1 if shared.accepting(lane) else 0

        async def fail() -> None:
            verdict.append(
                await queue.fail_and_fetch(
                    claimed,
                    reason,
                    fetch_next=fetch,
                    lock=shared.options.lock,
                    worker=shared.id,
                    traceback=outcome.traceback,
                    retry=retry,
                    delay=delay,
                    error=outcome.error,
                    rng=self.rng,
                    backoff_functions=self.backoff_functions,
                    code=_FAILURE_CODES.get(outcome.kind, FailureCode.ERROR),
                    keep=shared.options.keep_failed,
                )
            )

        if not await self._write(held, "fail", fail):
            return None
        retried = bool(verdict) and verdict[-1].verdict == "retry"
        shared.tally["retried" if retried else "failed"] += 1
        self._failed(held, outcome, reason, shared.clock.now() + (delay or 0.0) if retried else None)
        following = verdict[-1].next if verdict else None
        if following is None:
            return None
        lane.note(following, shared.clock.now())
        if following.status != Code.OK or not following.jobs:
            return None
        return self.successors.hold(lane, following.jobs[0])

    def _completed(self, lane: Lane, held: list[Held]) -> None:
        """One DEBUG line per completed job."""
        shared = self.shared
        if not shared.log.isEnabledFor(logging.DEBUG):
            return
        for h in held:
            job = h.claimed.job
            shared.log.debug(
                "worker %s: job %s (%s) in %s completed (attempt %d)",
                shared.id, job.id, job.name, lane.name, h.ctx.attempt,
                extra=fields("completed", worker=shared.id, queue=lane.name, job=job.id, job_name=job.name,
                             attempt=h.ctx.attempt),
            )  # fmt: skip

    def _failed(self, held: Held, outcome: Outcome, reason: str, retry_at: float | None) -> None:
        """One WARNING line per failed attempt: retried at ``retry_at``, or (None) dead-lettered."""
        shared, lane, job = self.shared, held.lane, held.claimed.job
        attempt, allowed = held.ctx.attempt, job.options.attempts
        error_type = type(outcome.error).__name__ if outcome.error is not None else outcome.kind.value
        error = str(outcome.error) if outcome.error is not None and str(outcome.error) else reason
        facts = dict(
            worker=shared.id, queue=lane.name, job=job.id, job_name=job.name, attempt=attempt, attempts=allowed,
            error_type=error_type, error=error,
        )  # fmt: skip
        if retry_at is not None:
            retry_in = max(0.0, retry_at - shared.clock.now())
            shared.log.warning(
                "worker %s: job %s (%s) in %s failed attempt %d/%d: %s: %s; retrying at %s (in %.1f s)",
                shared.id, job.id, job.name, lane.name, attempt, allowed, error_type, error, iso_time(retry_at),
                retry_in,
                extra=fields("attempt_failed", **facts, retry_at=iso_time(retry_at), retry_in=round(retry_in, 3)),
            )  # fmt: skip
            return
        why = {Kind.FAIL: "failed", Kind.TIMEOUT: "timeout", Kind.CANCELLED: "cancelled"}.get(outcome.kind, "error")
        shared.log.warning(
            "worker %s: job %s (%s) in %s failed for good at attempt %d/%d: %s: %s; dead-lettered",
            shared.id, job.id, job.name, lane.name, attempt, allowed, error_type, error,
            extra=fields("dead_letter", **facts, reason=why),
        )  # fmt: skip

    async def _write(self, held: Held, what: str, call: Callable[[], Awaitable[Any]]) -> bool:
        """Report about a held job, retrying through outages; False if the job was lost or given up."""
        return await self._retrying(held.lane, [held], what, call)

    async def _write_batch(self, lane: Lane, batch: list[Finished], call: Callable[[], Awaitable[Any]]) -> bool:
        """Report about several held jobs in one call, retrying through outages; False if given up."""
        return await self._retrying(lane, [item.held for item in batch], "complete", call)

    async def _retrying(self, lane: Lane, held: list[Held], what: str, call: Callable[[], Awaitable[Any]]) -> bool:
        shared, lifecycle = self.shared, self.shared.lifecycle
        jobs = f"job {held[0].id}" if len(held) == 1 else f"jobs {', '.join(h.id for h in held)}"
        site = f"{what} in {lane.name}"  # the call site, whichever jobs: its backoff is its own
        while True:
            if lifecycle.killed:
                return False
            started = shared.clock.now()
            try:
                await call()
            except LockLostError as exc:
                shared.tally["lost"] += 1
                for h in held:
                    h.ctx._abandon(f"lock lost: {exc}")
                shared.log.warning("worker %s: %s of %s in %s rejected: %s", shared.id, what, jobs, lane.name, exc)
                return False
            except Exception as exc:
                delay = shared.health.failed(f"{what} {jobs} in {lane.name}", exc, since=started, key=site)
                if lifecycle.give_up_at is not None and shared.clock.now() + delay > lifecycle.give_up_at:
                    shared.log.warning(
                        "worker %s: could not %s %s in %s before stopping; stall recovery will take it back",
                        shared.id, what, jobs, lane.name,
                    )  # fmt: skip
                    return False
                await shared.clock.sleep(delay)
                continue
            shared.health.ok(site)
            return not lifecycle.killed
