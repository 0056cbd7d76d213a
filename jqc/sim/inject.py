"""Injecting faults: per-attempt faults on a worker, scheduled faults, slow-Redis windows and
Redis restarts (with or without the queue's data). Hung calls are :mod:`~jqc.sim.hang`'s,
failovers :mod:`~jqc.sim.failover`'s (the injector starts them).

No fault starts once the faults have healed. What is in force lives in
:class:`~jqc.sim.state.FaultState`, which the network reads; what was injected is counted in the
:class:`~jqc.sim.events.Journal` for the report's coverage.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from jqc.engine.operations import QueueOperations
from jqc.sim.checkers import Checker, Exec, Status
from jqc.sim.config import SimConfig
from jqc.sim.dispatch import Dispatcher
from jqc.sim.events import EventQueue, Journal
from jqc.sim.failover import Failovers
from jqc.sim.faults import AttemptFault, ScheduledFault
from jqc.sim.hang import HungCalls
from jqc.sim.network import Network
from jqc.sim.pool import Pool
from jqc.sim.rng import SimRandom
from jqc.sim.state import FaultState, Model, WorkerSlots
from jqc.sim.workers import LIVE, Worker, awake_on

__all__ = ["FaultInjector"]


class FaultInjector:
    """Applies faults to workers and to Redis.

    ``configure()``: set the queue's settings again (after a restart that lost them).
    """

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        checker: Checker,
        model: Model,
        slots: WorkerSlots,
        faults: FaultState,
        network: Network,
        ops: QueueOperations,
        pool: Pool,
        dispatch: Dispatcher,
        hung: HungCalls,
        rand: SimRandom,
        *,
        configure: Callable[[], None],
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.model = model
        self.slots = slots
        self.faults = faults
        self.network = network
        self.ops = ops
        self.pool = pool
        self.dispatch = dispatch
        self.hung = hung
        self.r_global, self.r_pick = rand.stream("global"), rand.stream("pick")
        self.configure = configure
        self.failovers = Failovers(
            cfg, q, journal, checker, model, faults, network, ops, rand.stream("failover"),
            hand_out=lambda n: dispatch.hand_out(min(n, len(slots.idle)), cascade=True),
        )  # fmt: skip
        if self.failovers.enabled:
            model.track_executions()

    def start(self) -> None:
        """Schedule the fault schedule, and the first slow window and restart drawn from their rates."""
        cfg = self.cfg
        for fault in cfg.faults.schedule:
            if fault.kind == "failover":
                continue  # planned by the failovers themselves (a copy is taken ahead of each)
            tie = random.Random(f"jqc-sim:{cfg.seed}:scheduled:{fault.spec}").random()
            self.q.at_tied(fault.at, tie, self.scheduled, fault)
        if cfg.faults.slow > 0:
            self.q.after(self.r_global.expovariate(cfg.faults.slow), self.slow_fault)
        if cfg.faults.restart > 0:
            self.q.after(self.r_global.expovariate(cfg.faults.restart), self.restart_fault)
        self.failovers.start()

    # -- worker faults ------------------------------------------------------------------------------

    def attempt_fault(self, w: Worker, ex: Exec, fault: AttemptFault) -> None:
        """A fault drawn for one attempt hits now (if the worker is still on it)."""
        if self.faults.healed or not awake_on(self.q, w, ex, self.attempt_fault, fault):
            return
        self.worker_fault(w, fault.kind, duration=fault.duration, by=fault.by)

    def worker_fault(self, w: Worker, kind: str, *, duration: float, by: float) -> None:
        """Crash, pause, cut off, move the clock of, hang the next report of, or make the next attempt
        fail on worker ``w``."""
        now = self.q.now
        ex = w.exec
        journal = self.journal
        if kind == "crash":
            self.pool.crash(w)
        elif kind == "pause":
            w.frozen_until = max(w.frozen_until, now + duration)
            self.faults.until(now + duration)
            if ex is not None:
                ex.tag("pause")
                ex.finish_at += duration
            journal.inject("pause", f"{w.id} for {duration:.3f}s" + (f" running {ex.job.id}" if ex else ""))
        elif kind == "partition":
            w.cut_until = max(w.cut_until, now + duration)
            self.faults.until(now + duration)
            if ex is not None:
                ex.tag("partition")
            journal.inject("partition", f"{w.id} for {duration:.3f}s")
        elif kind in ("jump", "skew"):
            w.offset = w.offset + by if kind == "jump" else by
            w.clock_tags[kind] = None
            if ex is not None:
                ex.tag(kind)
            journal.inject(kind, f"{w.id} clock now {w.offset:+.3f}s")
        elif kind == "hang":
            self.hung.arm(w)
        elif kind == "error":
            w.fail_next = True
            if ex is not None:
                ex.outcome = "error" if ex.outcome == "ok" else ex.outcome
                w.fail_next = False
                journal.inject("error", f"{w.id} {ex.job.id}")

    def scheduled(self, fault: ScheduledFault) -> None:
        """A fault of the schedule is due."""
        if self.faults.healed:
            return
        cfg = self.cfg
        if fault.kind == "slow":
            self.slow(
                fault.duration if fault.duration is not None else 60.0,
                fault.by if fault.by is not None else cfg.lock * 0.8,
            )
            return
        if fault.kind == "restart":
            self.restart(fault.duration if fault.duration is not None else 5.0, fault.persist)
            return
        slots = self.slots.slots
        if not slots:
            return
        slot = fault.worker % len(slots) if fault.worker is not None else int(self.r_pick.random() * len(slots))
        w = slots[slot]
        if w is None or w.state not in LIVE:
            self.journal.emit(f"fault {fault.kind} missed slot {slot}")
            return
        defaults = {"pause": cfg.lock * 2, "partition": cfg.lock * 1.5}
        duration = fault.duration if fault.duration is not None else defaults.get(fault.kind, 0.0)
        by = fault.by if fault.by is not None else cfg.lock * (1.5 if fault.kind == "skew" else -2.0)
        if fault.kind == "pause" and w.exec is not None and not w.exec.reporting:
            # The classic zombie: the pause hits when the handler returns, before the worker reports.
            w.exec.report_pause = max(w.exec.report_pause, duration)
            self.journal.emit(f"fault pause armed on {w.id} for {duration:.3f}s before it reports {w.exec.job.id}")
            return
        self.worker_fault(w, fault.kind, duration=duration, by=by)

    # -- slow Redis ---------------------------------------------------------------------------------

    def slow_fault(self) -> None:
        """A slow window drawn from the ``slow`` rate starts (and the next one is drawn)."""
        if self.faults.healed:
            return
        f = self.cfg.faults
        self.slow(self.r_global.uniform(*f.slow_window), self.cfg.lock * self.r_global.uniform(*f.slow_locks))
        self.q.after(self.r_global.expovariate(f.slow), self.slow_fault)

    def slow(self, duration: float, latency: float) -> None:
        """For ``duration`` seconds every call takes ``latency`` seconds (overlapping windows: the largest)."""
        faults = self.faults
        faults.slow_seq += 1
        faults.slow[faults.slow_seq] = latency
        faults.until(self.q.now + duration)
        faults.latency = max(faults.slow.values())
        self.journal.inject("slow", f"{latency:.3f}s for {duration:.3f}s")
        self.q.after(duration, self._slow_end, faults.slow_seq)

    def _slow_end(self, seq: int) -> None:
        faults = self.faults
        faults.slow.pop(seq, None)
        faults.latency = max(faults.slow.values(), default=0.0)
        self.journal.emit("slow window ends")

    # -- Redis restarts -----------------------------------------------------------------------------

    def restart_fault(self) -> None:
        """A restart drawn from the ``restart`` rate happens (and the next one is drawn)."""
        if self.faults.healed:
            return
        f = self.cfg.faults
        persist = self.r_global.random() < f.restart_persist
        self.restart(self.r_global.uniform(*f.restart_down), persist)
        self.q.after(self.r_global.expovariate(f.restart), self.restart_fault)

    def restart(self, down: float, persist: bool) -> None:
        """Redis is down for ``down`` seconds; without ``persist`` it comes back empty."""
        faults, model = self.faults, self.model
        faults.down_until = max(faults.down_until, self.q.now + down)
        faults.until(faults.down_until)
        self.journal.inject("restart", f"down {down:.3f}s, {'data kept' if persist else 'data lost'}")
        for job in model.jobs.values():
            if job.exec is not None:
                job.exec.tag("restart")
        if not persist:
            self.failovers.forget_copy()  # a replica's copy from before does not survive the data either
            self.network.engine(self.ops.obliterate(force=True))
            for job in model.jobs.values():
                if job.status in (Status.PENDING, Status.HELD):
                    model.dropped += 1
                    model.settle(job, Status.DROPPED, self.q.now)
                else:
                    job.record_dropped = True
            model.rate_windows.clear()
            faults.reconfigure = True
        self.q.at(faults.down_until, self._restart_end)

    def _restart_end(self) -> None:
        faults = self.faults
        if faults.down(self.q.now):
            return  # a later restart overlapped this one; its end takes over
        if faults.reconfigure:  # the queue's settings went with its data: the operator sets them again
            faults.reconfigure = False
            self.configure()
        self.journal.emit("Redis is back")
        faults.restarts_awaiting_work += 1
        pending = sum(1 for j in self.model.jobs.values() if j.status is Status.PENDING)
        self.dispatch.hand_out(min(pending, len(self.slots.idle)), cascade=True)
