"""The engine against a small reference model, step by step, on both backends.

A hypothesis state machine drives a pure-Python :class:`Model` of one queue and the real engine
side by side: adding jobs (one by one and in bulk, with priorities, delays, LIFO, retries and
repeated custom ids), claiming by several workers, extending, completing (with fetch-next),
failing, releasing, moving the virtual clock (by any step, and onto the edges: a due time, a lock
deadline or a rate window's end, the ms before it, or the ms after), recovering stalled jobs,
pausing, removing, promoting, retrying (with and without a fresh attempt budget), rate and
concurrency limits, and writes by workers holding stale tokens (most often the takeover: lock
runs out, job recovered and claimed again, old holder writes).

After every step the engine must agree with the model on every job's state and on the exact order
of every listing, and these invariants are checked independently of the model's bookkeeping:

* each job is in exactly one state; counts per state match;
* waiting order: lower priorities first (negative ones before the default 0); within a priority,
  jobs handed back (released, recovered) and LIFO jobs run next, newest first, other jobs FIFO;
* a token is valid only while its job is active and holds it: each active job holds exactly the
  token its holder got, and no job is active in the engine that the model does not hold;
* stale tokens are refused (LockLostError) and change nothing;
* nothing is claimed before its delay or retry backoff is due;
* runs, failed attempts and the failure code match the model; failed attempts never exceed
  attempts, unless the job was retried without a fresh budget;
* a rate limit of N per window never hands out more than N jobs in one aligned window.
"""

from __future__ import annotations

import dataclasses
import os
import unittest
from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, settings, target
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import jqc
from jqc.clock import now_ms
from jqc.engine.records import unpack
from tests.conftest import open_backend

WORKERS = ("w1", "w2", "w3")
CUSTOM_IDS = ("a", "b", "7", "10")  # "7" and "10" collide with auto ids and sort unlike numbers
BIG = 10_000
PROMOTE_BATCH = 100  # delayed jobs a claim promotes at most (claim.lua)
LISTED = ("waiting", "delayed", "active", "completed", "failed")
LATE_WRITES = ("complete", "fail", "release", "extend", "progress", "log")


def ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(frozen=True)
class Spec:
    """What a test adds: options, plus a serial number stored as the job's data."""

    serial: int
    priority: int
    delay: float
    attempts: int
    lifo: bool
    job_id: str | None
    backoff: float | None

    def options(self) -> jqc.JobOptions:
        backoff = None if self.backoff is None else jqc.Backoff.fixed(self.backoff)
        return jqc.JobOptions(
            job_id=self.job_id, priority=self.priority, delay=self.delay, attempts=self.attempts,
            lifo=self.lifo, backoff=backoff,
        )  # fmt: skip


@dataclass
class MJob:
    """The model of one job."""

    id: str
    serial: int
    priority: int
    lifo: bool
    attempts: int
    backoff: float | None
    state: str = "waiting"
    order: tuple[Any, ...] = ()  # waiting: sort key in claim order
    due: int = 0  # delayed: when it may run (ms); kept afterwards
    deadline: int = 0  # active: lock deadline (ms)
    finished: int = 0  # completed / failed: when (ms)
    holder: tuple[str, int] | None = None  # active: (worker, token)
    worker: str | None = None  # last worker that claimed it (the engine keeps it)
    attempts_made: int = 0
    stalls: int = 0
    runs: int = 0
    code: str | None = None  # the last failure's code
    unreset_retries: int = 0  # retries that kept the attempt count


@dataclass
class Claimed:
    status: jqc.Code
    ids: list[str] = field(default_factory=list)
    retry_at: float | None = None


class Model:
    """One queue in plain Python: the engine's documented behaviour, nothing about Redis."""

    def __init__(self) -> None:
        self.jobs: dict[str, MJob] = {}
        self.dead: dict[str, int] = {}  # dead letters: job id -> when
        self.paused = False
        self.rate: tuple[int, int] | None = None  # (max jobs, window ms)
        self.rate_used: tuple[int, int] | None = None  # (window start, jobs claimed in it)
        self.concurrency: int | None = None
        self.last_auto_id = 0
        self.tokens = 0
        self.seq = 0

    def in_state(self, state: str) -> list[MJob]:
        return [j for j in self.jobs.values() if j.state == state]

    def listing(self, state: str) -> list[str]:
        """Job ids in the order the engine lists them."""
        jobs = self.in_state(state)
        if state == "waiting":
            jobs.sort(key=lambda j: j.order)
        elif state == "delayed":
            jobs.sort(key=lambda j: (j.due, j.id))
        elif state == "active":
            jobs.sort(key=lambda j: (j.deadline, j.id))
        else:  # finished: newest first
            jobs.sort(key=lambda j: (j.finished, j.id), reverse=True)
        return [j.id for j in jobs]

    def dead_listing(self) -> list[str]:
        return [i for _, i in sorted(((t, i) for i, t in self.dead.items()), reverse=True)]

    # -- moving jobs between states ------------------------------------------------------------

    def enqueue(self, job: MJob, *, head: bool) -> None:
        """To waiting: at the head of its priority (newest first) or at the tail (FIFO)."""
        self.seq += 1
        head = head or job.lifo
        job.state, job.holder = "waiting", None
        job.order = (job.priority, 0 if head else 1, -self.seq if head else self.seq)

    def schedule(self, job: MJob, due: int) -> None:
        job.state, job.due, job.holder = "delayed", due, None

    def fail_for_good(self, job: MJob, now: int, code: str) -> None:
        job.state, job.finished, job.holder, job.code = "failed", now, None, code
        self.dead[job.id] = now

    # -- operations (each returns what the engine should answer) ---------------------------------

    def add(self, spec: Spec, now: int) -> tuple[MJob, bool]:
        job_id = spec.job_id
        if job_id is None:
            self.last_auto_id += 1
            while str(self.last_auto_id) in self.jobs:
                self.last_auto_id += 1
            job_id = str(self.last_auto_id)
        elif job_id in self.jobs:
            return self.jobs[job_id], False
        job = MJob(job_id, spec.serial, spec.priority, spec.lifo, spec.attempts, spec.backoff)
        self.jobs[job_id] = job
        if ms(spec.delay) > 0:
            self.schedule(job, now + ms(spec.delay))
        else:
            self.enqueue(job, head=False)
        return job, True

    def claim(self, worker: str, want: int, lock_ms: int, now: int) -> Claimed:
        if self.paused:
            return Claimed(jqc.Code.PAUSED)
        due = sorted((j for j in self.in_state("delayed") if j.due <= now), key=lambda j: (j.due, j.id))
        for job in due[:PROMOTE_BATCH]:
            self.enqueue(job, head=False)
        room = want
        if self.concurrency is not None:
            free = self.concurrency - len(self.in_state("active"))
            if free <= 0:
                return Claimed(jqc.Code.CONCURRENCY_LIMITED)
            room = min(room, free)
        if self.rate is not None:
            limit, width = self.rate
            window = now - now % width
            used = self.rate_used[1] if self.rate_used and self.rate_used[0] == window else 0
            if used >= limit:
                return Claimed(jqc.Code.RATE_LIMITED, retry_at=(window + width) / 1000)
            room = min(room, limit - used)
        taken = [self.jobs[i] for i in self.listing("waiting")[:room]]
        if not taken:
            delayed = self.in_state("delayed")
            return Claimed(jqc.Code.EMPTY, retry_at=min(j.due for j in delayed) / 1000 if delayed else None)
        for job in taken:
            assert job.due <= now, f"job {job.id} claimed at {now} before it is due at {job.due}"
            # Tokens count up from the last one, never below now * 1000 (see claim.lua).
            self.tokens = max(self.tokens + 1, now * 1000 + 1)
            job.state, job.holder, job.worker, job.deadline = "active", (worker, self.tokens), worker, now + lock_ms
            job.runs += 1
        if self.rate is not None:
            self.rate_used = (window, used + len(taken))
        return Claimed(jqc.Code.OK, [j.id for j in taken])

    def complete(self, job: MJob, now: int) -> None:
        job.state, job.finished, job.holder = "completed", now, None

    def fail(self, job: MJob, now: int, delay_ms: int | None) -> str:
        """A failed attempt; ``delay_ms`` None means do not retry."""
        job.attempts_made += 1
        job.code = "unrecoverable" if delay_ms is None else "error"
        if delay_ms is None or job.attempts_made >= job.attempts:
            self.fail_for_good(job, now, job.code)
            return "failed"
        if delay_ms > 0:
            self.schedule(job, now + delay_ms)
        else:
            self.enqueue(job, head=False)
        return "retry"

    def release(self, job: MJob, now: int, delay_ms: int) -> None:
        if delay_ms > 0:
            self.schedule(job, now + delay_ms)
        else:
            self.enqueue(job, head=True)

    def recover(self, now: int, max_stalls: int) -> tuple[list[str], list[str], list[tuple[str, int]]]:
        """(recovered ids, failed ids, revoked (id, token)) for locks expired by ``now``."""
        recovered, failed, revoked = [], [], []
        for job_id in self.listing("active"):
            job = self.jobs[job_id]
            if job.deadline > now:
                break
            assert job.holder is not None
            revoked.append((job.id, job.holder[1]))
            job.stalls += 1
            if job.stalls > max_stalls:
                self.fail_for_good(job, now, "stalled")
                failed.append(job.id)
            else:
                self.enqueue(job, head=True)
                recovered.append(job.id)
        return recovered, failed, revoked

    def promote(self, job: MJob, now: int) -> None:
        job.due = now
        self.enqueue(job, head=False)

    def retry(self, job: MJob, *, reset: bool = True) -> None:
        if reset:
            job.attempts_made = job.stalls = 0
        else:
            job.unreset_retries += 1
        self.dead.pop(job.id, None)
        self.enqueue(job, head=False)


def specs() -> st.SearchStrategy[Spec]:
    return st.builds(
        Spec,
        serial=st.just(0),
        priority=st.sampled_from((-3, -1, 0, 0, 1, 2, 5)),
        delay=st.sampled_from((0.0, 0.0, 0.0004, 1.0, 2.5, 5.0)),
        attempts=st.integers(1, 3),
        lifo=st.sampled_from((False, False, True)),
        job_id=st.none() | st.sampled_from(CUSTOM_IDS),
        backoff=st.sampled_from((None, 0.0, 3.0)),
    )


def pick(items: list[Any], index: int) -> Any:
    return items[index % len(items)]


class EngineMachine(RuleBasedStateMachine):
    backend = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.clock = jqc.VirtualClock()
        self.conn = open_backend(self.backend, self.clock)
        self.queue = self.conn.queue("model")
        self.model = Model()
        self.serial = 0
        self.claims: dict[tuple[str, int], jqc.ClaimedJob] = {}  # (id, token) -> what the worker holds
        self.stale: list[tuple[str, jqc.ClaimedJob]] = []  # (worker, claim) whose token was revoked
        self.known_ids: set[str] = set()
        self.rate_claims: list[int] = []  # claim times since the rate limit was last set
        self.fenced = 0  # stale writes refused while someone else held the job

    def teardown(self) -> None:
        # steer generation towards what fencing is for: revoked tokens, used after a re-claim
        target(float(len(self.stale)), label="revoked tokens")
        target(float(self.fenced), label="stale writes to re-claimed jobs")
        if not self.conn.embedded:
            self.conn.sync_client().flushdb()
        self.conn.close()

    # -- helpers ---------------------------------------------------------------------------------

    def now(self) -> int:
        return now_ms(self.clock)

    def held(self) -> list[tuple[str, jqc.ClaimedJob]]:
        out = []
        for job in sorted(self.model.in_state("active"), key=lambda j: j.id):
            assert job.holder is not None
            out.append((job.holder[0], self.claims[job.id, job.holder[1]]))
        return out

    def next_spec(self, spec: Spec) -> Spec:
        self.serial += 1
        return dataclasses.replace(spec, serial=self.serial)

    def check_job(self, job: jqc.Job, model: MJob) -> None:
        where = f"job {model.id}"
        assert job.id == model.id
        assert job.state.value == model.state, where
        assert job.data == {"n": model.serial}, where
        opts = job.options
        assert (opts.priority, opts.lifo, opts.attempts) == (model.priority, model.lifo, model.attempts), where
        assert job.failed_attempts == model.attempts_made, where
        assert job.failed_attempts <= opts.attempts + model.unreset_retries, where
        assert job.runs == model.runs, where
        assert job.failure_code == model.code, where
        assert job.stall_count == model.stalls, where
        assert job.worker == model.worker, where
        if model.state == "delayed":
            assert job.ready_at == model.due / 1000, where

    def check_claimed(self, got: jqc.ClaimResult, want: Claimed, worker: str, now: int) -> None:
        event(f"claim: {got.status.name} {len(got.jobs)}")
        assert got.status == want.status, (got, want)
        assert [c.id for c in got.jobs] == want.ids
        if want.status != jqc.Code.OK:
            assert got.retry_at == want.retry_at
        for claimed in got.jobs:
            job = self.model.jobs[claimed.id]
            assert job.holder == (worker, claimed.token)
            assert claimed.job.worker == worker and claimed.job.state == jqc.JobState.ACTIVE
            self.claims[claimed.id, claimed.token] = claimed
        if got.jobs and self.model.rate is not None:
            limit, width = self.model.rate
            window = now - now % width
            self.rate_claims += [now] * len(got.jobs)
            in_window = sum(1 for t in self.rate_claims if t - t % width == window)
            assert in_window <= limit, f"{in_window} claims in the window at {window}, limit {limit}"
        if got.jobs and self.model.concurrency is not None:
            assert len(self.model.in_state("active")) <= self.model.concurrency

    def raw_dump(self) -> dict[str, Any]:
        """Every key of the queue and its content, except the append-only events stream."""
        client = self.conn.sync_client()
        out: dict[str, Any] = {}
        for key in client.scan_iter(match=self.queue.ops.keys.scan_pattern, count=1000):
            kind = client.type(key)
            if kind == "hash":
                out[key] = client.hgetall(key)
            elif kind == "list":
                out[key] = client.lrange(key, 0, -1)
            elif kind == "zset":
                out[key] = client.zrange(key, 0, -1, withscores=True)
        return out

    # -- producing -------------------------------------------------------------------------------

    @initialize(batch=st.lists(specs(), max_size=5))
    def start(self, batch: list[Spec]) -> None:
        if batch:
            self.add(batch, bulk=True)

    @rule(batch=st.lists(specs(), min_size=1, max_size=4), bulk=st.booleans())
    def add(self, batch: list[Spec], bulk: bool) -> None:
        """Add jobs one by one, or in one add_bulk call; a repeated custom id returns the job there."""
        batch = [self.next_spec(s) for s in batch]
        if bulk:
            jobs = self.queue.add_bulk([jqc.NewJob("task", {"n": s.serial}, s.options()) for s in batch])
        else:
            jobs = [self.queue.add("task", {"n": s.serial}, s.options()) for s in batch]
        now = self.now()
        for job, spec in zip(jobs, batch, strict=True):
            expected, created = self.model.add(spec, now)
            event(f"add: {'created' if created else 'existing'} {expected.state}")
            self.known_ids.add(expected.id)
            self.check_job(job, expected)  # an existing id returns that job, unchanged

    # -- working ---------------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS), count=st.integers(1, 3), lock=st.sampled_from((2.0, 10.0)))
    def claim(self, worker: str, count: int, lock: float) -> None:
        now = self.now()
        got = self.queue.claim(worker, count=count, lock=lock)
        self.check_claimed(got, self.model.claim(worker, count, ms(lock), now), worker, now)

    @precondition(lambda self: self.model.in_state("active"))
    @rule(index=st.integers(0, 100), lock=st.sampled_from((2.0, 10.0)), with_stale=st.booleans())
    def extend(self, index: int, lock: float, with_stale: bool) -> None:
        """The batched heartbeat: a worker renews every lock it holds (and maybe one it lost)."""
        worker = pick(self.held(), index)[0]
        mine = [c for w, c in self.held() if w == worker]
        lost = [c for w, c in self.stale if w == worker][:1] if with_stale else []
        renewed = self.queue.extend([*mine, *lost], lock=lock)
        assert renewed == {c.id: True for c in mine} | {c.id: False for c in lost}
        for claimed in mine:
            self.model.jobs[claimed.id].deadline = self.now() + ms(lock)

    @precondition(lambda self: self.model.in_state("active"))
    @rule(index=st.integers(0, 100), fetch_next=st.sampled_from((0, 2)))
    def complete(self, index: int, fetch_next: int) -> None:
        """A holder reports success, and maybe claims its next jobs in the same call."""
        worker, claimed = pick(self.held(), index)
        now = self.now()
        got = self.queue.complete(claimed, {"ok": True}, fetch_next=fetch_next, lock=10.0, worker=worker)
        self.model.complete(self.model.jobs[claimed.id], now)
        if fetch_next:
            assert got is not None
            self.check_claimed(got, self.model.claim(worker, fetch_next, ms(10.0), now), worker, now)
        else:
            assert got is None

    @precondition(lambda self: self.model.in_state("active"))
    @rule(index=st.integers(0, 100), how=st.sampled_from(("backoff", "2s", "final")))
    def fail(self, index: int, how: str) -> None:
        """A holder reports a failed attempt: retry after the job's fixed backoff, after 2 s, or never."""
        worker, claimed = pick(self.held(), index)
        job, now = self.model.jobs[claimed.id], self.now()
        if how == "backoff":
            said, delay_ms = self.queue.fail(claimed, "boom", worker=worker), ms(job.backoff or 0.0)
        elif how == "2s":
            said, delay_ms = self.queue.fail(claimed, "boom", delay=2.0, worker=worker), 2000
        else:
            said, delay_ms = self.queue.fail(claimed, "boom", retry=False, worker=worker), None
        assert said == self.model.fail(job, now, delay_ms)
        event(f"fail ({how}): {said}")

    @precondition(lambda self: self.model.in_state("active"))
    @rule(index=st.integers(0, 100), delay=st.sampled_from((0.0, 3.0)))
    def release(self, index: int, delay: float) -> None:
        """A holder hands its job back: to run next, or after 3 s."""
        _, claimed = pick(self.held(), index)
        self.queue.release(claimed, delay=delay)
        self.model.release(self.model.jobs[claimed.id], self.now(), ms(delay))

    @precondition(lambda self: self.stale)
    @rule(index=st.integers(0, 100), op=st.sampled_from(LATE_WRITES))
    def stale_write(self, index: int, op: str) -> None:
        """A worker whose lock was revoked writes anyway (lost claims of re-claimed jobs first)."""
        again = [s for s in self.stale if (j := self.model.jobs.get(s[1].id)) is not None and j.holder is not None]
        worker, claimed = pick(again + [s for s in self.stale if s not in again], index)
        self.late_write(worker, claimed, op)

    def late_write(self, worker: str, claimed: jqc.ClaimedJob, op: str) -> None:
        """Write with a revoked token: must raise LockLostError (extend: report False), change nothing."""
        job = self.model.jobs.get(claimed.id)
        event(f"stale {op}: job now {'held again' if job and job.holder else job.state if job else 'removed'}")
        self.fenced += bool(job and job.holder)
        before = self.raw_dump()
        if op == "extend":
            assert self.queue.extend([claimed], lock=10.0) == {claimed.id: False}
        else:
            try:
                if op == "complete":
                    self.queue.complete(claimed, "late", fetch_next=1, worker=worker)
                elif op == "fail":
                    self.queue.fail(claimed, "late", worker=worker)
                elif op == "release":
                    self.queue.release(claimed)
                elif op == "progress":
                    self.queue.progress(claimed, 50)
                else:
                    self.queue.log(claimed, "late")
            except jqc.LockLostError:
                pass
            else:
                raise AssertionError(f"stale token {claimed.token} of job {claimed.id} was accepted by {op}")
        assert self.raw_dump() == before, f"a refused {op} changed the queue"

    # -- time and supervision --------------------------------------------------------------------

    @rule(step=st.sampled_from((0, 1, 999, 1000, 2000, 2500, 10_000, 20_000)) | st.integers(0, 20_000))
    def tick(self, step: int) -> None:
        self.clock.advance(step / 1000)

    @rule(
        edge=st.sampled_from(("due", "deadline", "window")),
        index=st.integers(0, 100),
        offset=st.sampled_from((-1, 0, 0, 1)),
    )
    def tick_to_edge(self, edge: str, index: int, offset: int) -> None:
        """Move the clock onto an edge the scripts compare against (a delayed job's due time, an
        active job's lock deadline, the end of the rate window), or 1 ms either side of it."""
        now = self.now()
        if edge == "due":
            edges = [j.due for j in self.model.in_state("delayed")]
        elif edge == "deadline":
            edges = [j.deadline for j in self.model.in_state("active")]
        else:
            width = self.model.rate[1] if self.model.rate else 1000
            edges = [now - now % width + width]
        ahead = sorted({t + offset for t in edges if t + offset > now})
        if ahead:
            event(f"edge: {edge} {offset:+d} ms")
            self.clock.move_to((pick(ahead, index) + 0.5) / 1000)  # + 0.5: now_ms() truncates

    @rule(max_stalls=st.sampled_from((1, 2, 0)))
    def recover_stalled(self, max_stalls: int) -> None:
        got = self.queue.recover_stalled(max_stalls=max_stalls)
        recovered, failed, revoked = self.model.recover(self.now(), max_stalls)
        assert (list(got.recovered), list(got.failed), got.more) == (recovered, failed, False)
        event(f"recover: {len(recovered)} back, {len(failed)} failed")
        for key in revoked:
            claimed = self.claims.pop(key)
            self.stale.append((claimed.job.worker or "", claimed))

    @precondition(lambda self: self.model.in_state("active"))
    @rule(index=st.integers(0, 100), thief=st.sampled_from(WORKERS), op=st.sampled_from(LATE_WRITES))
    def takeover(self, index: int, thief: str, op: str) -> None:
        """The case fencing is for, built from the rules above: a holder hangs until the clock
        reaches its lock deadline (exactly), recovery takes the job back, a worker claims again
        (the job, if nothing stops it), and the first holder wakes up and writes."""
        worker, claimed = pick(self.held(), index)
        deadline = self.model.jobs[claimed.id].deadline
        if deadline > self.now():
            self.clock.move_to((deadline + 0.5) / 1000)  # + 0.5: now_ms() truncates
        self.recover_stalled(max_stalls=1)
        self.claim(thief, 3, 10.0)
        self.late_write(worker, claimed, op)

    # -- administering ---------------------------------------------------------------------------

    @rule(
        paused=st.sampled_from((False, False, False, True)),
        rate=st.sampled_from((None, None, (1, 1.0), (2, 5.0), (3, 10.0))),
        concurrency=st.sampled_from((None, None, 3, 1)),
    )
    def configure(self, paused: bool, rate: tuple[int, float] | None, concurrency: int | None) -> None:
        """Pause or resume; set or clear the rate limit (max jobs per window) and concurrency limit."""
        changed = self.queue.pause() if paused else self.queue.resume()
        assert changed == (self.model.paused != paused)
        self.model.paused = paused
        self.queue.configure(rate_limit=rate, concurrency=concurrency)
        new_rate = None if rate is None else (rate[0], ms(rate[1]))
        if new_rate != self.model.rate:
            self.rate_claims = []  # the independent window count restarts with a new limit
        if rate is None:
            self.model.rate_used = None  # clearing the limit forgets the window (set again: kept)
        self.model.rate, self.model.concurrency = new_rate, concurrency

    @rule(
        op=st.sampled_from(("remove", "promote", "retry", "retry-keep")),
        index=st.integers(0, 100),
        apt=st.booleans(),
    )
    def manage(self, op: str, index: int, apt: bool) -> None:
        """Remove a job (any but an active one), promote a delayed one or retry a finished one.

        With ``apt`` the job is one the operation applies to, if there is one; else any id ever used,
        or one never used. The engine must refuse exactly where the model says it does not apply.
        """
        states, refusal = {
            "remove": (("waiting", "delayed", "completed", "failed"), jqc.JobActiveError),
            "promote": (("delayed",), jqc.JobStateError),
            "retry": (("failed", "completed"), jqc.JobStateError),  # a completed job runs again too
            "retry-keep": (("failed", "completed"), jqc.JobStateError),
        }[op]
        fits = sorted(i for i, j in self.model.jobs.items() if j.state in states)
        job_id = pick(fits, index) if apt and fits else pick([*sorted(self.known_ids), "ghost"], index)
        job = self.model.jobs.get(job_id)
        expected = jqc.JobNotFoundError if job is None else None if job.state in states else refusal
        event(f"{op}: {expected.__name__ if expected else 'done'}")
        try:
            if op == "retry-keep":
                self.queue.retry(job_id, reset_attempts=False)
            else:
                getattr(self.queue, op)(job_id)
        except jqc.JqcError as exc:
            assert type(exc) is expected, f"{op}({job_id}) raised {exc!r}, expected {expected}"
            return
        assert expected is None and job is not None, f"{op}({job_id}) succeeded, expected {expected}"
        if op == "remove":
            del self.model.jobs[job_id]
        elif op == "promote":
            self.model.promote(job, self.now())
        else:
            self.model.retry(job, reset=op == "retry")

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def engine_matches_model(self) -> None:
        model = self.model
        counts = self.queue.counts()
        for state in LISTED:
            assert getattr(counts, state) == len(model.in_state(state)), (state, counts)
        assert (counts.dead, counts.paused) == (len(model.dead), model.paused), counts
        seen: set[str] = set()
        for state in LISTED:
            page = self.queue.list_jobs(state, 0, BIG)
            ids = [j.id for j in page.jobs]
            assert page.total == len(ids)
            assert ids == model.listing(state), f"{state}: engine {ids}, model {model.listing(state)}"
            assert not seen & set(ids), f"jobs in two states: {seen & set(ids)}"
            seen |= set(ids)
            for job in page.jobs:
                self.check_job(job, model.jobs[job.id])
        assert seen == set(model.jobs)
        dead = self.queue.dead_letters(0, BIG)
        assert [d.job.id for d in dead.letters] == model.dead_listing() and dead.total == len(model.dead)

    @invariant()
    def one_valid_token_per_active_job(self) -> None:
        """A token is valid while its job is active ('s' = 'a') and holds it ('k'): each active job
        must hold exactly its holder's token, and no other job may be active in the engine."""
        ids = sorted(self.known_ids)
        texts = self.conn.sync_client().hmget(self.queue.ops.keys.jobs, ids) if ids else []
        for job_id, text in zip(ids, texts, strict=True):
            exists = text is not None
            record = unpack(text) if text is not None else {}
            state, token = record.get("s"), record.get("k")
            job = self.model.jobs.get(job_id)
            if job is None:
                assert not exists, f"removed job {job_id} still exists"
            elif job.holder is not None:
                assert (state, token) == ("a", str(job.holder[1])), f"job {job_id}: {state} {token}, model {job.holder}"
            else:
                assert state != "a", f"job {job_id} is active in the engine only"
        for _, claimed in self.stale:
            job = self.model.jobs.get(claimed.id)
            assert job is None or job.holder is None or job.holder[1] != claimed.token


def machine_test_case(backend: str) -> type[unittest.TestCase]:
    """The test case running :class:`EngineMachine` on ``backend`` ("fake" or "redis")."""
    machine = type(f"EngineMachine_{backend}", (EngineMachine,), {"backend": backend})

    class EngineModelTest(machine.TestCase):  # type: ignore[name-defined,misc]
        def setUp(self) -> None:
            # Fail (under CI) or skip once, before any example, if the backend does not answer.
            open_backend(backend, jqc.VirtualClock()).close()

    if os.environ.get("JQC_HYPOTHESIS_PROFILE", "default") == "default":
        # The longest test of `make test`: fewer sequences there; `make soak` runs 1,000 of them.
        EngineModelTest.settings = settings(max_examples=40)
    EngineModelTest.__name__ = EngineModelTest.__qualname__ = f"TestEngineModel{backend.title()}"
    return EngineModelTest


TestEngineModelFake = machine_test_case("fake")
TestEngineModelRedis = machine_test_case("redis")
