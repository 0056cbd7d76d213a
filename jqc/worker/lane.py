"""One queue as a worker sees it: its slots, the jobs it holds, and how it waits when idle.

Idle wake-up without polling: when a claim finds nothing, the lane notes the event stream's last
entry id and claims once more (so a job added in between is seen by that claim), then blocks on
``XREAD BLOCK`` from that id, on both backends. Events that may make a job claimable wake it at
once; a clock sleep bounds the wait (the next delayed job's due time, or the poll interval), so it
also wakes when delayed jobs fall due and when the stream is off. The XREAD block is real time and
bounded; everything else waits on the injected clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from jqc.engine.async_queue import AsyncQueue
from jqc.engine.calls import CommandCall
from jqc.engine.codes import Code
from jqc.engine.job import ClaimedJob
from jqc.engine.operations import ClaimResult
from jqc.worker.context import JobContext, SyncJobContext

__all__ = ["WAKE_ON", "Finished", "Held", "Lane", "last_event_id"]

#: Events that may make a job claimable, by why the last claim got nothing. 'delayed' and
#: 'retrying' may move the next due time earlier, so they wake an idle lane to claim again.
WAKE_ON: dict[Code, frozenset[str]] = {
    Code.EMPTY: frozenset({"added", "waiting", "retrying", "delayed", "resumed"}),
    Code.PAUSED: frozenset({"resumed"}),
    Code.CONCURRENCY_LIMITED: frozenset(
        {"completed", "failed", "retrying", "waiting", "delayed", "stalled", "removed"}
    ),
    Code.RATE_LIMITED: frozenset(),  # the window reopens at a known time: just sleep until then
}


def last_event_id(queue: AsyncQueue) -> CommandCall[str]:
    """The id of the newest entry in the queue's event stream ('0-0' when there is none)."""

    def parse(reply: Any) -> str:
        if reply and isinstance(reply, (list, tuple)) and reply[0]:
            return str(reply[0][0])
        return "0-0"

    return CommandCall(("XREVRANGE", queue.ops.keys.events, "+", "-", "COUNT", 1), parse)


@dataclass(eq=False)
class Held:
    """A job this worker holds: what renewal extends and what shutdown hands back.

    Times are on the worker's clock. ``lock_until`` is the lock's deadline as last set (by the
    claim, then by each renewal): past it, another worker may take the job back. ``renew_until``
    bounds renewal: a run that should have ended by then (its timeout plus a margin; once the
    handler returned, one lock duration to report the outcome) is not renewed any more, so a stuck
    holder loses the lock and stall recovery takes the job back. None: renewed while the handler runs.
    """

    lane: Lane
    claimed: ClaimedJob
    ctx: JobContext | SyncJobContext
    abort: asyncio.Future[str]
    hand_back: bool = False  # given up to be released (shutdown), not because the lock was lost
    settling: bool = False  # the handler is done and its outcome is being reported
    lock_until: float = 0.0
    renew_until: float | None = None
    unrenewed: bool = False  # renewal stopped for it (past renew_until); logged once
    cancel_reason: str | None = None  # Queue.cancel marked it: the run is stopped and reported cancelled

    @property
    def id(self) -> str:
        return self.claimed.id

    @property
    def running(self) -> bool:
        """True while its handler runs (not yet settling, not given up)."""
        return not self.settling and not self.abort.done()

    def renewable(self, now: float) -> bool:
        """True while renewal should extend its lock (see :attr:`renew_until`)."""
        return self.renew_until is None or now < self.renew_until

    def cancel(self, reason: str) -> None:
        """``Queue.cancel`` marked the job: stop its handler (as :meth:`give_up` does) and report
        the run cancelled."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.give_up(f"cancelled: {reason}", hand_back=False)

    def give_up(self, reason: str, *, hand_back: bool) -> None:
        """Stop waiting for the handler (it is cancelled if async, abandoned in its thread if not)."""
        self.ctx._abandon(reason)
        if not self.abort.done():
            self.hand_back = hand_back
            self.abort.set_result(reason)


@dataclass(eq=False, slots=True)
class Finished:
    """A job whose handler returned: its result waits to be reported with the others that finished
    meanwhile; ``reply`` gets the job its completion claimed next (or None)."""

    held: Held
    result: Any
    reply: asyncio.Future[Held | None]


@dataclass(eq=False)
class Lane:
    """Per-queue state of one worker."""

    queue: AsyncQueue
    concurrency: int
    batch: int
    held: dict[str, Held] = field(default_factory=dict)
    slot_freed: asyncio.Event = field(default_factory=asyncio.Event)
    pause_until: float = 0.0  # claiming paused (a handler raised RateLimited) until this clock time
    empty_seen: bool = False  # the last claim (or fetch-next) found nothing to do
    last: ClaimResult | None = None  # the last claim that found nothing, and why (None after a claim got jobs)
    retry_at: float | None = None  # when the last claim that found nothing said to look again
    watch_id: str | None = None  # event-stream position while idle; None while busy
    reader: asyncio.Task[bool] | None = None
    dispatcher: asyncio.Task[None] | None = None
    finished: list[Finished] = field(default_factory=list)  # successes not yet reported
    reporters: int = 0  # tasks reporting ``finished``, one batch per round trip each
    claimed_at: float | None = None  # clock time of the last claim (or fetch-next) that got a job
    polled_at: float | None = None  # clock time of the last claim attempt that reached the server
    claim_error: str = ""  # why the last claim attempt failed ('' once one reaches the server)

    @property
    def name(self) -> str:
        return self.queue.name

    @property
    def free(self) -> int:
        return self.concurrency - len(self.held)

    def note(self, result: ClaimResult, now: float) -> None:
        """Remember what a claim (or a complete's fetch-next) found at clock time ``now``."""
        self.polled_at = now
        self.claim_error = ""
        if result.status == Code.OK and result.jobs:
            self.claimed_at = now
            self.empty_seen = False
            self.last = None
        else:
            self.empty_seen = True
            self.last = result
            self.retry_at = result.retry_at

    def hold_until(self, now: float) -> float | None:
        """Until when claiming is held off on purpose (a handler's RateLimited, or the queue's rate
        limit as the last claim reported it), if that is later than ``now``."""
        until = self.pause_until
        if self.last is not None and self.last.status == Code.RATE_LIMITED and self.retry_at is not None:
            until = max(until, self.retry_at)
        return until if until > now else None

    def busy(self) -> None:
        """The lane got jobs: stop watching the event stream until it is idle again."""
        self.watch_id = None
        if self.reader is not None:
            self.reader.cancel()
            self.reader = None
