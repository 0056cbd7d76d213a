"""Faults to inject into a drain, to check that handlers are idempotent.

* :func:`crash_worker`: the worker dies as if its process were killed: nothing is reported, the job
  stays active under its lock. The drain starts a new worker, whose stall check recovers the job
  once the lock has expired (on the virtual clock), and the job runs again.
* :func:`expire_lock`: the job's lock expires and the job is recovered while the run goes on. The
  run's late writes (``ctx.progress``, ``ctx.log``, its completion or failure) are rejected with
  :class:`jqc.LockLostError` and change nothing, and the job runs again.
* :func:`drop_connection`: the worker's connection to Redis fails for ``duration`` seconds (virtual
  time); the worker backs off, retries, and carries on once it is back.

Each fault hits one run: the ``run``-th run of a job whose name is ``name`` (any job when None) and,
if given, whose id is ``job``. ``at`` says when: ``"start"`` (before the handler is called),
``"end"`` (after it returned or raised, before the worker reports the outcome), or a number of
seconds into the run (virtual time, for async handlers that wait on the clock; time stands still
while a plain-function handler runs, so such a fault never hits one).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from jqc.backends.base import Arg, AsyncBackend, Outcome, Reply, Script, ScriptInvocation
from jqc.connection import Connection
from jqc.engine.host import Host
from jqc.engine.job import Job
from jqc.errors import ConnectionLostError, InvalidOptionError

__all__ = ["At", "Fault", "FaultKind", "crash_worker", "drop_connection", "expire_lock"]

FaultKind = Literal["crash", "expire_lock", "drop_connection"]
At = Literal["start", "end"] | float
_KINDS = ("crash", "expire_lock", "drop_connection")
_HELPERS = {"crash": "crash_worker", "expire_lock": "expire_lock", "drop_connection": "drop_connection"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault to inject into one run (build it with the functions below)."""

    kind: FaultKind
    name: str | None = None
    job_id: str | None = None
    run: int = 1
    at: At = "end"
    duration: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidOptionError(f"unknown fault {self.kind!r}: use one of {', '.join(_KINDS)}")
        if isinstance(self.run, bool) or not isinstance(self.run, int) or self.run < 1:
            raise InvalidOptionError(f"run counts from 1, not {self.run!r}")
        if self.at not in ("start", "end") and (
            isinstance(self.at, bool)
            or not isinstance(self.at, (int, float))
            or not math.isfinite(self.at)
            or self.at < 0
        ):
            raise InvalidOptionError(f'at must be "start", "end" or seconds >= 0 into the run, not {self.at!r}')
        if isinstance(self.duration, bool) or not isinstance(self.duration, (int, float)) or not self.duration > 0:
            raise InvalidOptionError(f"duration must be a number of seconds > 0, not {self.duration!r}")

    def matches(self, name: str, job_id: str) -> bool:
        return (self.name is None or self.name == name) and (self.job_id is None or self.job_id == job_id)

    def describe(self) -> str:
        args = [repr(self.name)] if self.name is not None else []
        if self.job_id is not None:
            args.append(f"job={self.job_id!r}")
        if self.run != 1:
            args.append(f"run={self.run}")
        args.append(f"at={self.at!r}")
        if self.kind == "drop_connection":
            args.append(f"duration={self.duration:g}")
        return f"{_HELPERS[self.kind]}({', '.join(args)})"


def _job_id(job: Job | str | None) -> str | None:
    return job.id if isinstance(job, Job) else job


def crash_worker(name: str | None = None, *, job: Job | str | None = None, run: int = 1, at: At = "end") -> Fault:
    """Kill the worker during a run of a matching job; the job is recovered after its lock expires and runs again.

    With the default ``at="end"`` the handler has done all its work and the worker dies before
    reporting it, the case that makes handlers run twice in production.
    """
    return Fault(kind="crash", name=name, job_id=_job_id(job), run=run, at=at)


def expire_lock(name: str | None = None, *, job: Job | str | None = None, run: int = 1, at: At = "end") -> Fault:
    """Let a matching job's lock expire mid-run: it is recovered, the run's late writes are rejected
    (:class:`jqc.LockLostError`) and the job runs again."""
    return Fault(kind="expire_lock", name=name, job_id=_job_id(job), run=run, at=at)


def drop_connection(
    name: str | None = None, *, job: Job | str | None = None, run: int = 1, at: At = "end", duration: float = 5.0
) -> Fault:
    """Cut the worker off from Redis for ``duration`` seconds during a run of a matching job.

    Shorter than the worker's lock (30 s by default), the worker rides it out: the job completes
    once, late. Longer, the lock may expire and the job run again.
    """
    return Fault(kind="drop_connection", name=name, job_id=_job_id(job), run=run, at=at, duration=duration)


class Network:
    """The drain's switch on its workers' Redis traffic: while it is down every call fails at once,
    and a call in flight when it goes down loses its reply (it may have run), as on a dropped
    connection. The producer side of the test is not affected."""

    def __init__(self) -> None:
        self.down = 0  # a count, so that overlapping outages end when the last one does
        self.drops = 0  # outages begun so far
        self.refused = 0

    def drop(self) -> None:
        self.down += 1
        self.drops += 1

    def restore(self) -> None:
        self.down -= 1

    def check(self) -> int:
        """Refuse a call while down; else return a mark for :meth:`check_reply`."""
        if self.down:
            self.refused += 1
            raise ConnectionLostError("cannot reach Redis: jqc.testing dropped the worker's connection")
        return self.drops

    def check_reply(self, mark: int) -> None:
        if self.drops != mark:
            self.refused += 1
            raise ConnectionLostError("cannot reach Redis: jqc.testing dropped the connection before the reply came")


class FaultyBackend:
    """An asyncio backend whose calls go through a :class:`Network` (it wraps any backend)."""

    def __init__(self, inner: AsyncBackend, network: Network) -> None:
        self.inner = inner
        self.network = network

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        mark = self.network.check()
        reply = await self.inner.run_script(script, keys, args)
        self.network.check_reply(mark)
        return reply

    async def run_command(self, *args: Arg) -> Reply:
        mark = self.network.check()
        reply = await self.inner.run_command(*args)
        self.network.check_reply(mark)
        return reply

    async def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        mark = self.network.check()
        outcomes = await self.inner.run_batch(calls)
        self.network.check_reply(mark)
        return outcomes

    async def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        mark = self.network.check()
        reply = await self.inner.run_blocking(*args, timeout=timeout)
        self.network.check_reply(mark)
        return reply

    async def scan(self, match: str, *, count: int = 1000) -> AsyncIterator[str]:
        self.network.check()
        async for key in self.inner.scan(match, count=count):
            yield key

    async def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        mark = self.network.check()
        replies = await self.inner.run_on_each_server(*args)
        self.network.check_reply(mark)
        return replies

    async def aclose(self) -> None:
        await self.inner.aclose()


class WorkerConnection(Connection):
    """The drain workers' view of a connection: the same server, key prefix and clock, but asyncio
    backends of their own (closed when the drain ends) whose calls go through a :class:`Network`.
    Closing it leaves the base connection's sync connections open."""

    base: Connection

    @classmethod
    def of(cls, base: Host, network: Network) -> WorkerConnection:
        """The view of ``base`` whose asyncio calls go through ``network``."""
        if not isinstance(base, Connection):
            raise InvalidOptionError(f"a drain needs queues made by jqc.connect(), not on {base!r}")
        factory = base.factory
        view = cls.over(
            factory,
            clock=base.clock,
            prefix=base.prefix,
            make_async=lambda: FaultyBackend(factory.async_backend(), network),
        )
        view.base = base
        return view

    def close(self) -> None:
        """Nothing to do: the sync connections belong to the base connection (use :meth:`aclose`)."""
