"""The discrete-event loop: one virtual clock, virtual workers, the real engine.

Virtual workers never block. The loop pops the next event (an arrival, a handler finishing, a
heartbeat, a fault, a stall check, a policy tick ...) and, when a worker acts, calls the engine's
real worker-side operation synchronously (``run_sync``) on one shared client, passing the worker's
own clock reading as ``now=``. A worker's clock is the virtual clock plus its offset, so clock skew
and clock jumps change only what that worker stamps. Idle workers make no calls: they wait until
the simulator hands them work (a job was added, retried, released or recovered), a delayed job
falls due (the claim reply says when), or the slow fallback poll.

Calls normally take no virtual time. Under a slow-Redis window a call is stamped when sent, runs
``latency / 2`` later and its reply arrives after ``latency``; under a partition a worker's request
or reply is lost (a coin flip per call) and it learns so after ``call_timeout``; while Redis is
restarting every call is refused. The simulator always sees the true reply, which is what the
checkers use; the worker sees what the network let through.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from jqc.clock import VIRTUAL_EPOCH, VirtualClock, now_ms
from jqc.connection import Connection, connect
from jqc.engine.calls import CommandCall, Step, run_sync
from jqc.engine.codes import Code
from jqc.engine.job import ClaimedJob, JobOptions, Keep
from jqc.engine.operations import ClaimResult, QueueOperations, RecoverResult
from jqc.errors import BackendError, LockLostError
from jqc.scaling import ScalingPolicy, make_policy
from jqc.sim import inject, pool
from jqc.sim.checkers import Checker, Exec, JobRecord, Status
from jqc.sim.config import SimConfig
from jqc.sim.events import EventLog, EventQueue
from jqc.sim.faults import plan_attempt
from jqc.sim.report import Report, build_report
from jqc.sim.rng import SimRandom
from jqc.sim.workers import BUSY, CLAIMING, DEAD, IDLE, LIVE, STOPPED, Call, Refused, TimedOut, Worker

__all__ = ["Simulator", "run"]

EPOCH_MS = int(VIRTUAL_EPOCH * 1000)


class Simulator:
    """One run. Use :func:`run` unless you need to poke at the state afterwards."""

    def __init__(self, config: SimConfig, connection: Connection | None = None, *, keep_log: bool = False) -> None:
        self.cfg = cfg = config
        self.rand = SimRandom(cfg.seed)
        s = self.rand.stream
        self.r_arrivals, self.r_mix, self.r_service = s("arrivals"), s("mix"), s("service")
        self.r_outcome, self.r_faults, self.r_net = s("outcome"), s("faults"), s("network")
        self.r_pick, self.r_backoff, self.r_global, self.r_skew = s("pick"), s("backoff"), s("global"), s("skew")
        self.q = EventQueue(s("ties"))
        self.log = EventLog(keep=keep_log)
        self.checker = Checker(where=lambda: self.log.recent[-1] if self.log.recent else "at the start")
        self.clock = VirtualClock(VIRTUAL_EPOCH)
        self._own_connection = connection is None
        self.conn = connection if connection is not None else connect(cfg.url, clock=self.clock)
        self.client = self.conn.sync_client()
        name = cfg.queue if self.conn.embedded else f"{cfg.queue}-{os.getpid()}-{os.urandom(3).hex()}"
        self.ops = QueueOperations(name, clock=self.clock, prefix=self.conn.prefix, events_max_len=0)
        keep = Keep() if cfg.keep_completed else Keep.none()
        self.options: list[JobOptions] = [dataclasses.replace(c.options, remove_on_complete=keep) for c in cfg.mix]
        weights = [c.weight for c in cfg.mix]
        total = math.fsum(weights)
        self.mix_cdf = [math.fsum(weights[: i + 1]) / total for i in range(len(weights))]
        self.lock_ms = round(cfg.lock * 1000)
        self.hb = cfg.heartbeat_s
        self.policy: ScalingPolicy = cfg.custom_policy or make_policy(
            cfg.policy,
            cfg.workers,
            target_backlog=cfg.target_backlog,
            stabilization=cfg.stabilization,
            slo=cfg.slo_wait,
            startup=cfg.startup_delay,
        )
        self.scaling = cfg.custom_policy is not None or cfg.policy != "fixed"
        self.bounds = cfg.pool_bounds

        # model and counters
        self.jobs: dict[str, JobRecord] = {}
        self.slots: list[Worker | None] = []
        self.incarnations: list[int] = []
        self.idle: dict[int, Worker] = {}
        self.target = 0
        self.unfinished = 0
        self.adds_in_flight = 0
        self.arrived = 0
        self.arrivals_done = False
        self.arrivals_end = 0.0
        self.healed = False
        self.heal_time: float | None = None
        self.deadline = math.inf
        self.liveness_bound: float | None = None
        self.calls = 0
        self.engine_seconds = 0.0
        self.max_claim_stamp = 0
        self.rate_windows: dict[int, int] = {}
        self.timer_at = math.inf
        self.timer_seq = 0
        self.down_until = 0.0
        self.reconfigure = False
        self.fault_end = 0.0  # when the last injected fault is over
        self.slow: dict[int, float] = {}
        self.slow_seq = 0
        self.latency = 0.0
        self.clock_faulted = cfg.faults.clock_faults
        self.restarts_awaiting_work = 0
        self.faults_injected: dict[str, int] = {}
        self.reached: dict[str, int] = {}
        self.duplicate_causes: dict[str, int] = {}
        self.duplicates = 0
        self.dropped = 0
        self.completed = 0
        self.dead = 0
        # areas for time averages
        self.t_last = 0.0
        self.n_pool = self.n_ready = self.n_busy = self.n_system = self.n_queue = 0
        self.a_pool = self.a_ready = self.a_busy = self.a_system = self.a_queue = 0.0
        self.window_areas: tuple[float, float] | None = None
        # scaling statistics
        self.reversals = 0
        self.last_direction = 0
        self.slo_minutes = 0
        self.minute_waits: list[float] = []
        self.timeline: list[dict[str, float]] = []
        self.waiting_heap: list[tuple[float, int, JobRecord]] = []
        self.heap_seq = 0
        self.burst_ends: list[float] = []
        self.drain_times: list[float] = []
        self.released_by_scaling = 0
        self.lost_by_scaling = 0
        self.last_tick = (0.0, 0, 0)
        self.tick_waits: list[float] = []
        self.recent_runs: deque[tuple[float, float]] = deque()  # (finished at, run time) of recent attempts
        self.completions = 0
        # what each kind of call means for the model (the true reply) and for its worker (the reply
        # the network delivered)
        self._truth: dict[str, Callable[[Call, Any, bool], None]] = {
            "add": self._t_add,
            "claim": self._t_claim,
            "complete": self._t_complete,
            "fail": self._t_fail,
            "extend": self._t_extend,
            "progress": self._t_progress,
            "release": self._t_release,
            "recover": self._t_recover,
            "counts": lambda call, result, reply: None,
        }
        self._replies: dict[str, Callable[[Call, Any], None]] = {
            "add": self._r_add,
            "claim": self._r_claim,
            "complete": self._reported,
            "fail": self._reported,
            "extend": self._r_extend,
            "progress": lambda call, result: None,
            "release": self._r_release,
            "recover": self._r_recover,
            "counts": lambda call, result: pool.counted(self, result),
        }

    # -- plumbing -----------------------------------------------------------------------------------

    def emit(self, text: str) -> None:
        self.log.write(self.q.now, text)

    def _stamp(self, w: Worker | None) -> int:
        return EPOCH_MS + math.floor((self.q.now + (w.offset if w is not None else 0.0)) * 1000)

    def _true_time(self, epoch_seconds: float, w: Worker | None) -> float:
        return epoch_seconds - VIRTUAL_EPOCH - (w.offset if w is not None else 0.0)

    def _areas(self) -> None:
        dt = self.q.now - self.t_last
        if dt > 0:
            self.a_pool += self.n_pool * dt
            self.a_ready += self.n_ready * dt
            self.a_busy += self.n_busy * dt
            self.a_system += self.n_system * dt
            self.a_queue += self.n_queue * dt
            self.t_last = self.q.now

    def _inject(self, kind: str, text: str) -> None:
        self.faults_injected[kind] = self.faults_injected.get(kind, 0) + 1
        self.emit(f"fault {kind} {text}")

    def _reach(self, kind: str) -> None:
        self.reached[kind] = self.reached.get(kind, 0) + 1

    def _engine(self, step: Step[Any]) -> Any:
        self.calls += 1
        started = time.perf_counter()
        try:
            return run_sync(self.client, step)
        except LockLostError as exc:
            return exc
        finally:
            self.engine_seconds += time.perf_counter() - started

    def _send(self, call: Call) -> None:
        """Send a call through the (possibly faulty) network to the (possibly restarting) server."""
        now = self.q.now
        call.issued = now
        if self.down_until > now:
            self._deliver(call, Refused("Redis is restarting"))
            return
        w = call.worker
        latency = self.latency
        if w is not None and w.cut_until > now:
            if self.r_net.random() < 0.5:  # the request got through; the reply is lost
                if latency > 0:
                    self.q.after(latency / 2, self._execute, call, False)
                else:
                    self._execute(call, False)
            self.q.after(self.cfg.call_timeout, self._deliver, call, TimedOut("no reply"))
            return
        if latency > 0:
            call.delayed = True
            if call.ex is not None:
                call.ex.tag("slow")
            self.q.after(latency / 2, self._execute, call, True)
        else:
            self._execute(call, True)

    def _execute(self, call: Call, reply: bool) -> None:
        if self.down_until > self.q.now:
            if reply:
                self._deliver(call, Refused("Redis went down"))
            return
        result = self._engine(call.step)
        self._truth[call.kind](call, result, reply)
        if reply:
            if call.delayed:
                self.q.at(call.issued + 2 * (self.q.now - call.issued), self._deliver, call, result)
            else:
                self._deliver(call, result)

    def _deliver(self, call: Call, result: Any) -> None:
        w = call.worker
        if w is not None:
            if w.state in (DEAD, STOPPED):
                self._orphaned(call, w)
                return
            if w.frozen_until > self.q.now:
                self.q.at(w.frozen_until, self._deliver, call, result)
                return
        self._replies[call.kind](call, result)

    def _orphaned(self, call: Call, w: Worker) -> None:
        """A reply reached a worker that is gone: a job it was just handed is held by no one."""
        ex = call.ex if call.kind == "claim" else call.extra[0] if call.kind == "complete" and call.extra else None
        if ex is not None:
            ex.tag("crash" if w.state == DEAD else "scale-down")
            if w.state == STOPPED:
                self.lost_by_scaling += 1

    # -- the run ------------------------------------------------------------------------------------

    def run(self) -> Report:
        started = time.perf_counter()
        cfg = self.cfg
        try:
            run_sync(self.client, self.ops.obliterate(force=True))
            self._configure()
            self.arrival_iter: Iterator[float] = cfg.arrival.times(self.r_arrivals)
            self.bursts_iter = cfg.arrival.bursts()
            pool.set_target(self, cfg.workers if not self.scaling else max(cfg.workers, self.bounds[0]), initial=True)
            for i in range(cfg.prefill):
                self._add(f"p{i}", self._pick_class(), measured=False)
            self._next_arrival()
            pool.next_burst(self)
            self.q.after(cfg.stall_interval, self._stall_check)
            self.q.after(cfg.idle_poll, self._idle_poll)
            self.q.after(60.0, pool.minute, self)
            if self.scaling:
                self.q.after(cfg.policy_tick, pool.tick, self)
            for fault in cfg.faults.schedule:
                tie = random.Random(f"jqc-sim:{cfg.seed}:scheduled:{fault.spec}").random()
                self.q.at_tied(fault.at, tie, inject.scheduled, self, fault)
            if cfg.faults.slow > 0:
                self.q.after(self.r_global.expovariate(cfg.faults.slow), inject.slow_fault, self)
            if cfg.faults.restart > 0:
                self.q.after(self.r_global.expovariate(cfg.faults.restart), inject.restart_fault, self)
            if cfg.faults.heal_at is not None:
                self.q.at(cfg.faults.heal_at, self._heal)
            self._loop()
            return self._finish_run(time.perf_counter() - started)
        finally:
            try:
                run_sync(self.client, self.ops.obliterate(force=True))
            finally:
                if self._own_connection:
                    self.conn.close()

    def _configure(self) -> None:
        if self.cfg.rate_limit is not None:
            run_sync(self.client, self.ops.configure(rate_limit=self.cfg.rate_limit))

    def _loop(self) -> None:
        q = self.q
        max_time = self.cfg.max_time if self.cfg.max_time is not None else math.inf
        while q:
            nxt = q.peek_time()
            assert nxt is not None
            if nxt > self.deadline or nxt > max_time:
                q.now = min(self.deadline, max_time)
                break
            handler, args = q.pop()
            handler(*args)
            if self.arrivals_done and not self.unfinished and not self.adds_in_flight:
                break
        self._areas()

    # -- arrivals -----------------------------------------------------------------------------------

    def _pick_class(self) -> int:
        u = self.r_mix.random()
        for i, edge in enumerate(self.mix_cdf):
            if u < edge:
                return i
        return len(self.mix_cdf) - 1

    def _next_arrival(self) -> None:
        cfg = self.cfg
        if cfg.jobs is not None and self.arrived >= cfg.jobs:
            self._end_arrivals()
            return
        t = next(self.arrival_iter, None)
        if t is None or (cfg.duration is not None and t > cfg.duration):
            self._end_arrivals()
            return
        self.q.at(t, self._arrive)

    def _arrive(self) -> None:
        self.arrived += 1
        self._add(f"j{self.arrived}", self._pick_class(), measured=self.arrived > self.cfg.warmup)
        self._next_arrival()

    def _end_arrivals(self) -> None:
        if self.arrivals_done:
            return
        self.arrivals_done = True
        self.arrivals_end = self.q.now
        self._areas()
        self.window_areas = (self.a_ready, self.a_busy)
        self.emit(f"arrivals end after {self.arrived} jobs")
        if self.cfg.faults.heal_at is None:
            self._heal()
        self._start_liveness()

    def _heal(self) -> None:
        """No fault starts from now on, and clocks are synchronised again (NTP caught up)."""
        if self.healed:
            return
        self.healed = True
        self.heal_time = self.q.now
        for w in self.slots:
            if w is not None and w.offset:
                w.offset = 0.0
        self.emit("faults stop")
        self._start_liveness()

    def _start_liveness(self) -> None:
        """Once faults have stopped and every job has arrived, start the liveness clock.

        It starts when the last injected fault is over (a slow window or a partition begun
        before the heal lasts its full length), with a bound from the backlog at that point.
        """
        if not (self.healed and self.arrivals_done) or self.liveness_bound is not None:
            return
        cfg = self.cfg
        bound = cfg.liveness_bound
        if bound is None:
            mean = max(c.service.mean if c.service else cfg.service.mean for c in cfg.mix)
            workers = max(1, min(self.target, self.bounds[1]) if not self.scaling else self.bounds[0])
            backlog = self.unfinished + self.adds_in_flight
            drain = backlog * mean / workers
            if cfg.rate_limit is not None:
                drain = max(drain, backlog * cfg.rate_limit[1] / cfg.rate_limit[0])
            retries = max(
                c.delay + c.attempts * (mean + c.backoff * (2 ** (c.attempts - 1) if c.exponential else 1))
                for c in cfg.mix
            )
            recovery = (cfg.lock + cfg.stall_interval + self.hb) * (cfg.max_stalls + 1) + cfg.restart_delay
            bound = 3 * drain + 2 * recovery + retries + cfg.startup_delay + cfg.policy_tick + cfg.idle_poll + 60
        self.liveness_bound = bound
        start = max(self.q.now, self.fault_end)
        self.deadline = start + bound
        self.emit(f"liveness: every job must finish within {bound:.3f}s of {start:.3f}")

    def _add(self, job_id: str, cls: int, *, measured: bool) -> None:
        self.adds_in_flight += 1
        self._send_add((job_id, cls, measured))

    def _send_add(self, spec: tuple[str, int, bool]) -> None:
        job_id, cls, _ = spec
        opts = dataclasses.replace(self.options[cls], job_id=job_id)
        self.clock.move_to(VIRTUAL_EPOCH + self.q.now)
        # add stamps with the queue's clock (no now= override): record exactly the stamp it sends
        call = Call("add", None, self.ops.add(self.cfg.mix[cls].name, None, opts), now_ms(self.clock))
        call.extra = spec
        self._send(call)

    def _t_add(self, call: Call, result: Any, reply: bool) -> None:
        job_id, cls, measured = call.extra
        if job_id in self.jobs:
            return  # a retried add of a job that exists already (the engine returned it unchanged)
        now = self.q.now
        opts = self.options[cls]
        rec = JobRecord(job_id, cls, now, now + opts.delay, opts.attempts, measured=measured)
        if opts.delay > 0:
            rec.due = call.stamp + round(opts.delay * 1000)
        self.jobs[job_id] = rec
        self._areas()
        self.n_system += 1
        self.n_queue += 1
        self.unfinished += 1
        self.heap_seq += 1
        heapq.heappush(self.waiting_heap, (rec.ready, self.heap_seq, rec))
        self.emit(f"add {job_id} {self.cfg.mix[cls].name}")

    def _r_add(self, call: Call, result: Any) -> None:
        if isinstance(result, BackendError):  # Redis is restarting: the producer tries again
            self.q.after(self.cfg.retry_backoff, self._send_add, call.extra)
            return
        self.adds_in_flight -= 1
        delay = self.options[call.extra[1]].delay
        if delay > 0:
            self._arm(self.q.now + delay)
        else:
            self._hand_out(1)

    # -- handing out work ---------------------------------------------------------------------------

    def _hand_out(self, n: int, *, cascade: bool = False) -> None:
        """Wake up to ``n`` idle workers (the longest idle first) to claim."""
        idle = self.idle
        while n > 0 and idle:
            slot = next(iter(idle))
            w = idle.pop(slot)
            w.state = CLAIMING
            self.q.at(self.q.now, self._wake, w, cascade)
            n -= 1

    def _arm(self, when: float) -> None:
        when = max(when, self.q.now + 0.001)
        if when < self.timer_at - 1e-9:
            self.timer_at = when
            self.timer_seq += 1
            self.q.at(when, self._timer, self.timer_seq)

    def _timer(self, seq: int) -> None:
        if seq != self.timer_seq:
            return
        self.timer_at = math.inf
        self._hand_out(1, cascade=True)

    def _idle_poll(self) -> None:
        self.q.after(self.cfg.idle_poll, self._idle_poll)
        if self.unfinished and self.idle:
            self._hand_out(1, cascade=True)

    def _go_idle(self, w: Worker) -> None:
        if w.draining:
            pool.stop(self, w)
            return
        w.state = IDLE
        self.idle[w.slot] = w

    # -- claiming -----------------------------------------------------------------------------------

    def _wake(self, w: Worker, cascade: bool) -> None:
        if w.state != CLAIMING:
            return
        if w.frozen_until > self.q.now:
            self.q.at(w.frozen_until, self._wake, w, cascade)
            return
        stamp = self._stamp(w)
        call = Call("claim", w, self.ops.claim(w.id, count=1, lock=self.cfg.lock, now=stamp), stamp)
        call.extra = cascade
        self._send(call)

    def _t_claim(self, call: Call, result: ClaimResult, reply: bool) -> None:
        w = call.worker
        assert w is not None
        execs = self._claimed(w, result, call, reply)
        call.ex = execs[0] if execs else None
        if result.status != Code.OK:
            self.emit(f"claim {w.id} {result.status.name.lower()}")

    def _claimed(self, w: Worker, result: ClaimResult | None, call: Call, reply: bool) -> list[Exec]:
        """Record what a claim (or a complete that fetched the next job) handed out."""
        stamp = call.stamp
        if stamp > self.max_claim_stamp:
            self.max_claim_stamp = stamp
        if result is None or not result.jobs:
            return []
        ck = self.checker
        if self.cfg.rate_limit is not None:
            limit, width = self.cfg.rate_limit
            width_ms = round(width * 1000)
            window = stamp - stamp % width_ms
            used = self.rate_windows[window] = self.rate_windows.get(window, 0) + len(result.jobs)
            if len(self.rate_windows) > 16:
                del self.rate_windows[min(self.rate_windows)]
            if used <= limit:
                ck.ok("rate_limit")
            elif self.clock_faulted:
                ck.excuse("rate_limit")
            else:
                ck.fail("rate_limit", f"{used} jobs claimed in the window starting {window}, limit {limit}")
        if self.restarts_awaiting_work:
            self._reach("restart")
            self.restarts_awaiting_work -= 1
        out = []
        for cj in result.jobs:
            job = self.jobs.get(cj.id)
            self.emit(f"claim {w.id} {cj.id}:{cj.token}")
            if job is None:
                ck.fail("total_queue", f"job {cj.id} was claimed but never added")
                job = self.jobs[cj.id] = JobRecord(cj.id, 0, self.q.now, self.q.now, 1, measured=False)
                self._areas()
                self.unfinished += 1
                self.n_system += 1
                self.n_queue += 1
            if job.status is Status.PENDING:
                ck.ok("single_holder")
            else:
                ck.fail(
                    "single_holder",
                    f"job {job.id} claimed under token {cj.token} while {job.status.value}"
                    + (f" under token {job.token}" if job.status is Status.HELD else ""),
                )
            if cj.job.attempts_made < job.attempts:
                ck.ok("max_attempts")
            else:
                ck.fail("max_attempts", f"job {job.id} claimed after {cj.job.attempts_made} of {job.attempts} attempts")
            if job.due:
                if self.max_claim_stamp >= job.due:
                    ck.ok("not_before_due")
                else:
                    ck.fail("not_before_due", f"job {job.id} claimed at {stamp}, due at {job.due} on every clock")
            ex = Exec(job, cj.token, w.id, self.q.now, stamp + self.lock_ms, self._true_time(stamp / 1000.0, w))
            ex.claimed = cj
            ex.slot = w.slot
            if not reply:
                ex.tag("partition")
            if call.delayed:
                ex.tag("slow")
            if self.down_until > self.q.now:
                ex.tag("restart")
            job.status = Status.HELD
            job.token = cj.token
            job.exec = ex
            job.executions += 1
            if job.stalled is not None:
                causes = "+".join(sorted(job.stalled.tags))
                self.duplicates += 1
                job.duplicates += 1
                if causes:
                    ck.ok("duplicates_traced")
                    self.duplicate_causes[causes] = self.duplicate_causes.get(causes, 0) + 1
                else:
                    ck.fail("duplicates_traced", f"job {job.id} runs again after an execution no fault touched")
                job.stalled = None
            if job.first_start is None:
                job.first_start = self.q.now
                self._areas()
                self.n_queue -= 1
                if job.measured:
                    wait = self.q.now - job.ready
                    self.minute_waits.append(wait)
                    self.tick_waits.append(wait)
                if self.n_queue == 0 and self.burst_ends:
                    pool.drained(self)
            out.append(ex)
        return out

    def _r_claim(self, call: Call, result: Any) -> None:
        w = call.worker
        assert w is not None
        if w.state != CLAIMING:
            return
        if isinstance(result, BackendError):
            self.q.after(self.cfg.retry_backoff, self._wake, w, False)
            return
        if call.ex is not None:
            self._start(w, call.ex)
            if call.extra:
                self._hand_out(1, cascade=True)
            return
        if result.retry_at:
            self._arm(self._true_time(result.retry_at, w))
        self._go_idle(w)

    # -- running a job ------------------------------------------------------------------------------

    def _start(self, w: Worker, ex: Exec) -> None:
        cfg = self.cfg
        now = self.q.now
        self._areas()
        self.n_busy += 1
        w.state = BUSY
        w.exec = ex
        cls = cfg.mix[ex.job.cls]
        service = (cls.service or cfg.service).sample(self.r_service)
        u = self.r_outcome.random()
        ex.outcome = "permanent" if u < cls.permanent else "transient" if u < cls.permanent + cls.transient else "ok"
        if (
            ex.outcome == "ok"
            and not self.healed
            and cfg.faults.error > 0
            and self.r_faults.random() < cfg.faults.error
        ):
            ex.outcome = "error"
        if w.fail_next:
            w.fail_next = False
            ex.outcome = "error"
        if ex.outcome == "error":
            self._inject("error", f"{w.id} {ex.job.id}")
        ex.service = service
        if ex.job.service < 0:
            ex.job.service = service
        ex.finish_at = now + service
        if not self.healed:
            for fault in plan_attempt(cfg.faults, self.r_faults, service, cfg.lock):
                if fault.kind == "pause" and fault.mode == "report":
                    ex.report_pause = fault.duration
                else:
                    self.q.at(now + fault.at, inject.attempt_fault, self, w, ex, fault)
        self.q.at(ex.finish_at, self._finish, w, ex)
        self.q.at(now + self.hb, self._heartbeat, w, ex)

    def _current(self, w: Worker, ex: Exec, handler: Callable[..., None], *args: Any) -> bool:
        """True if ``w`` is still on ``ex`` and awake; re-schedules the event while ``w`` is frozen."""
        if w.exec is not ex or w.state != BUSY:
            return False
        if w.frozen_until > self.q.now:
            self.q.at(w.frozen_until, handler, w, ex, *args)
            return False
        return True

    def _finish(self, w: Worker, ex: Exec) -> None:
        if not self._current(w, ex, self._finish):
            return
        if self.q.now < ex.finish_at:  # the handler was paused meanwhile
            self.q.at(ex.finish_at, self._finish, w, ex)
            return
        if ex.report_pause > 0 and not self.healed:
            pause, ex.report_pause = ex.report_pause, 0.0
            self.fault_end = max(self.fault_end, self.q.now + pause)
            ex.tag("pause")
            self._inject("pause", f"{w.id} for {pause:.3f}s before reporting {ex.job.id}")
            w.frozen_until = self.q.now + pause
        self._report(w, ex)

    def _report(self, w: Worker, ex: Exec) -> None:
        ex.reporting = True
        if not self._current(w, ex, self._report):
            return
        stamp = self._stamp(w)
        cj: ClaimedJob = ex.claimed
        if ex.outcome == "ok":
            fetch = 0 if (w.draining or not self.cfg.fetch_next) else 1
            done = self.ops.complete(cj, None, fetch_next=fetch, lock=self.cfg.lock, worker=w.id, now=stamp)
            self._send(Call("complete", w, done, stamp, ex))
            return
        retry = ex.outcome != "permanent"
        delay = self.ops.retry_delay(cj, rng=self.r_backoff) if retry else 0.0
        call = Call(
            "fail", w, self.ops.fail(cj, ex.outcome, retry=retry, delay=delay, worker=w.id, now=stamp), stamp, ex
        )
        call.extra = delay
        self._send(call)

    def _write(self, what: str, ex: Exec, accepted: bool) -> None:
        """Check one write about a held job against the model's current token."""
        job = ex.job
        current = job.status is Status.HELD and job.token == ex.token
        if accepted == current:
            self.checker.ok("token_fencing")
        elif accepted:
            self.checker.fail(
                "token_fencing",
                f"{what} of job {job.id} with stale token {ex.token} accepted (job {job.status.value}"
                + (f", current token {job.token})" if job.status is Status.HELD else ")"),
            )
        else:
            self.checker.fail("token_fencing", f"{what} of job {job.id} with its current token {ex.token} rejected")

    def _settle(self, job: JobRecord, status: Status) -> None:
        """A job reached a final state."""
        self._areas()
        if job.first_start is None:
            self.n_queue -= 1
        self.n_system -= 1
        job.status = status
        job.exec = None
        job.token = 0
        job.finished = self.q.now
        self.unfinished -= 1
        if status is Status.COMPLETED:
            self.completed += 1
            self.completions += 1
        elif status is Status.DEAD:
            self.dead += 1

    def _t_complete(self, call: Call, result: Any, reply: bool) -> None:
        ex = call.ex
        assert ex is not None and call.worker is not None
        accepted = not isinstance(result, LockLostError)
        self._write("complete", ex, accepted)
        ex.concluded = True
        self.emit(f"complete {call.worker.id} {ex.job.id}:{ex.token} {'ok' if accepted else 'rejected'}")
        if accepted:
            if ex.job.status is Status.HELD:
                if self.scaling:
                    self.recent_runs.append((self.q.now, self.q.now - ex.start))
                self._settle(ex.job, Status.COMPLETED)
            nxt = self._claimed(call.worker, result, call, reply)
            call.extra = (nxt[0] if nxt else None, result)

    def _t_fail(self, call: Call, result: Any, reply: bool) -> None:
        ex = call.ex
        assert ex is not None and call.worker is not None
        job = ex.job
        accepted = not isinstance(result, LockLostError)
        self._write("fail", ex, accepted)
        ex.concluded = True
        self.emit(f"fail {call.worker.id} {job.id}:{ex.token} {ex.outcome} {result if accepted else 'rejected'}")
        if not accepted or job.status is not Status.HELD:
            return
        if self.scaling:
            self.recent_runs.append((self.q.now, self.q.now - ex.start))
        job.failures += 1
        ck = self.checker
        if job.failures > job.attempts:
            ck.fail("max_attempts", f"job {job.id} failed {job.failures} times, maximum {job.attempts}")
        elif (result == "retry") != (ex.outcome != "permanent" and job.failures < job.attempts):
            ck.fail("max_attempts", f"job {job.id} answered {result!r} after failure {job.failures} of {job.attempts}")
        else:
            ck.ok("max_attempts")
        if ex.outcome == "error":
            self._reach("error")
        if result == "retry":
            job.status = Status.PENDING
            job.exec = None
            job.token = 0
            delay: float = call.extra
            job.due = call.stamp + round(delay * 1000) if delay > 0 else 0
        else:
            self._settle(job, Status.DEAD)

    def _reported(self, call: Call, result: Any) -> None:
        w, ex = call.worker, call.ex
        assert w is not None and ex is not None
        if w.exec is not ex:
            return
        if isinstance(result, BackendError):
            ex.failed_calls += 1
            self.q.after(self.cfg.retry_backoff, self._report, w, ex)
            return
        self._conclude(w, ex)
        if isinstance(result, LockLostError):
            self._fenced(ex)
            self._next_claim(w)
            return
        if ex.failed_calls and "partition" in ex.tags:
            self._reach("partition")
        if call.kind == "fail":
            if result == "retry":
                delay: float = call.extra
                if delay > 0:
                    self._arm(self.q.now + delay)
                else:
                    self._hand_out(1)
            self._next_claim(w)
            return
        nxt, following = call.extra
        if nxt is not None:
            self._start(w, nxt)
            return
        if following is not None and following.retry_at:
            self._arm(self._true_time(following.retry_at, w))
        if self.cfg.fetch_next and following is not None:
            self._go_idle(w)
        else:
            self._next_claim(w)

    def _fenced(self, ex: Exec) -> None:
        """A worker learnt that it lost its job (a write rejected or a renewal refused)."""
        self.emit(f"fenced {ex.worker} {ex.job.id}:{ex.token}")
        for kind in ("pause", "partition", "jump", "skew", "slow"):
            if kind in ex.tags:
                self._reach(kind)

    def _next_claim(self, w: Worker) -> None:
        if w.draining:
            pool.stop(self, w)
            return
        w.state = CLAIMING
        self._wake(w, False)

    def _conclude(self, w: Worker, ex: Exec) -> None:
        w.exec = None
        w.state = CLAIMING
        self._areas()
        self.n_busy -= 1

    # -- heartbeats ---------------------------------------------------------------------------------

    def _heartbeat(self, w: Worker, ex: Exec) -> None:
        if ex.reporting or not self._current(w, ex, self._heartbeat):
            return
        stamp = self._stamp(w)
        self._send(
            Call("extend", w, self.ops.extend([(ex.job.id, ex.token)], lock=self.cfg.lock, now=stamp), stamp, ex)
        )
        if self.cfg.progress:
            self._send(Call("progress", w, self.ops.progress(ex.claimed, self.q.now - ex.start), stamp, ex))
        self.q.after(self.hb, self._heartbeat, w, ex)

    def _t_extend(self, call: Call, result: dict[str, bool], reply: bool) -> None:
        ex = call.ex
        assert ex is not None and call.worker is not None
        ok = bool(result.get(ex.job.id))
        self._write("extend", ex, ok)
        if ok:
            if call.delayed and self.q.now > ex.renewed + self.cfg.lock:
                ex.tag("slow")
                self._reach("slow")
            ex.deadline = call.stamp + self.lock_ms
            ex.renewed = self._true_time(call.stamp / 1000.0, call.worker)
        self.emit(f"extend {call.worker.id} {ex.job.id}:{ex.token} {'ok' if ok else 'lost'}")

    def _r_extend(self, call: Call, result: Any) -> None:
        w, ex = call.worker, call.ex
        assert w is not None and ex is not None
        if w.exec is not ex or w.state != BUSY or isinstance(result, BackendError):
            return
        if not result.get(ex.job.id):
            self._conclude(w, ex)
            self._fenced(ex)
            self._next_claim(w)

    def _t_progress(self, call: Call, result: Any, reply: bool) -> None:
        assert call.ex is not None
        self._write("progress", call.ex, not isinstance(result, LockLostError))

    # -- releasing (graceful scale-down with a grace period) ----------------------------------------

    def _drain_deadline(self, w: Worker, ex: Exec) -> None:
        if w.exec is not ex or w.state != BUSY:
            return
        stamp = self._stamp(w)
        self._send(Call("release", w, self.ops.release(ex.claimed, now=stamp), stamp, ex))

    def _t_release(self, call: Call, result: Any, reply: bool) -> None:
        ex = call.ex
        assert ex is not None
        accepted = not isinstance(result, LockLostError)
        self._write("release", ex, accepted)
        ex.concluded = True
        self.emit(f"release {ex.worker} {ex.job.id}:{ex.token} {'ok' if accepted else 'rejected'}")
        if accepted and ex.job.status is Status.HELD:
            ex.job.status = Status.PENDING
            ex.job.exec = None
            ex.job.token = 0
            ex.job.due = 0
            self.released_by_scaling += 1

    def _r_release(self, call: Call, result: Any) -> None:
        w, ex = call.worker, call.ex
        assert w is not None and ex is not None
        if w.exec is not ex:
            return
        if isinstance(result, BackendError):
            self.q.after(self.cfg.retry_backoff, self._drain_deadline, w, ex)
            return
        self._conclude(w, ex)
        if not isinstance(result, LockLostError):
            self._hand_out(1)
        pool.stop(self, w)

    # -- stall checks -------------------------------------------------------------------------------

    def _stall_check(self) -> None:
        self.q.after(self.cfg.stall_interval, self._stall_check)
        now = self.q.now
        live = [w for w in self.slots if w is not None and w.state in LIVE and w.frozen_until <= now]
        if live:
            self._recover(live[int(self.r_pick.random() * len(live))])

    def _recover(self, w: Worker) -> None:
        stamp = self._stamp(w)
        step = self.ops.recover_stalled(limit=1000, max_stalls=self.cfg.max_stalls, now=stamp)
        self._send(Call("recover", w, step, stamp))

    def _t_recover(self, call: Call, result: RecoverResult, reply: bool) -> None:
        w = call.worker
        assert w is not None
        ck = self.checker
        for ids, status in ((result.recovered, Status.PENDING), (result.failed, Status.DEAD)):
            for job_id in ids:
                job = self.jobs.get(job_id)
                self.emit(f"recover {w.id} {job_id} {'stalled' if status is Status.PENDING else 'failed'}")
                if job is None or job.status is not Status.HELD or job.exec is None:
                    ck.fail("single_holder", f"the stall check took job {job_id}, which was not held")
                    continue
                ex = job.exec
                if call.stamp >= ex.deadline:
                    ck.ok("lock_expiry")
                else:
                    ck.fail("lock_expiry", f"job {job_id} recovered at {call.stamp}, its lock ran to {ex.deadline}")
                if self.q.now < ex.renewed + self.cfg.lock:  # not expired on the true clock
                    holder = self.slots[ex.slot] if 0 <= ex.slot < len(self.slots) else None
                    for tag in w.clock_tags:
                        ex.tag(tag)
                    if holder is not None and holder.id == ex.worker:
                        for tag in holder.clock_tags:
                            ex.tag(tag)
                    for kind in ("skew", "jump"):
                        if kind in ex.tags:
                            self._reach(kind)
                if "crash" in ex.tags:
                    self._reach("crash")
                if "slow" in ex.tags:
                    self._reach("slow")
                if "partition" in ex.tags and not ex.failed_calls:
                    self._reach("partition")
                if status is Status.PENDING:
                    job.status = Status.PENDING
                    job.exec = None
                    job.token = 0
                    job.due = 0
                    job.stalled = ex
                else:
                    self._settle(job, Status.DEAD)
        call.extra = result

    def _r_recover(self, call: Call, result: Any) -> None:
        if isinstance(result, BackendError):
            return
        if result.recovered:
            self._hand_out(len(result.recovered))
        if result.more and call.worker is not None and call.worker.state in LIVE:
            self._recover(call.worker)

    # -- the end ------------------------------------------------------------------------------------

    def _containers(self) -> dict[str, list[str]]:
        keys = self.ops.keys
        out: dict[str, list[str]] = {}
        out["wait"] = run_sync(self.client, CommandCall(("LRANGE", keys.key("wait"), 0, -1), list))
        for name in ("prio", "delayed", "active", "completed", "failed", "dlq"):
            out[name] = run_sync(self.client, CommandCall(("ZRANGE", keys.key(name), 0, -1), list))
        return out

    def _finish_run(self, wall: float) -> Report:
        ck = self.checker
        self._areas()
        final = ck.total_queue(self.jobs.values(), self._containers(), keep_completed=self.cfg.keep_completed)
        if self.healed and (not self.unfinished or self.q.now >= self.deadline):
            ck.liveness(self.jobs.values(), self.liveness_bound or 0.0)
        little = ck.littles_law(self.jobs.values(), self.q.now, self.a_system, self.a_queue)
        return build_report(self, wall, final, little)


def run(config: SimConfig, connection: Connection | None = None, *, self_check: bool = False) -> Report:
    """Run one simulation (twice with ``self_check``, comparing the event logs) and report it.

    ``connection`` overrides ``config.url`` (a test can pass ``tests.conftest.open_backend``'s);
    by default the embedded backend is used, or the real Redis at ``config.url``.
    """
    report = Simulator(config, connection).run()
    if self_check:
        again = Simulator(config, connection).run()
        report.self_check = {
            "first": report.event_log_sha256,
            "second": again.event_log_sha256,
            "equal": report.event_log_sha256 == again.event_log_sha256,
        }
    return report
