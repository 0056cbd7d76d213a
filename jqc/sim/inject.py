"""Injecting faults: per-attempt faults on a worker, scheduled faults, slow-Redis windows and
Redis restarts (with or without the queue's data).

Each function takes the :class:`~jqc.sim.runner.Simulator` first; most are its event handlers.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from jqc.engine.calls import run_sync
from jqc.sim import pool
from jqc.sim.checkers import Exec, Status
from jqc.sim.faults import AttemptFault, ScheduledFault
from jqc.sim.workers import LIVE, Worker

if TYPE_CHECKING:
    from jqc.sim.runner import Simulator


def attempt_fault(sim: Simulator, w: Worker, ex: Exec, fault: AttemptFault) -> None:
    if sim.healed or not sim._current(w, ex, functools.partial(attempt_fault, sim), fault):
        return
    worker_fault(sim, w, fault.kind, duration=fault.duration, by=fault.by)


def worker_fault(sim: Simulator, w: Worker, kind: str, *, duration: float, by: float) -> None:
    now = sim.q.now
    ex = w.exec
    if kind == "crash":
        pool.crash(sim, w)
    elif kind == "pause":
        w.frozen_until = max(w.frozen_until, now + duration)
        sim.fault_end = max(sim.fault_end, now + duration)
        if ex is not None:
            ex.tag("pause")
            ex.finish_at += duration
        sim._inject("pause", f"{w.id} for {duration:.3f}s" + (f" running {ex.job.id}" if ex else ""))
    elif kind == "partition":
        w.cut_until = max(w.cut_until, now + duration)
        sim.fault_end = max(sim.fault_end, now + duration)
        if ex is not None:
            ex.tag("partition")
        sim._inject("partition", f"{w.id} for {duration:.3f}s")
    elif kind in ("jump", "skew"):
        w.offset = w.offset + by if kind == "jump" else by
        w.clock_tags[kind] = None
        if ex is not None:
            ex.tag(kind)
        sim._inject(kind, f"{w.id} clock now {w.offset:+.3f}s")
    elif kind == "error":
        w.fail_next = True
        if ex is not None:
            ex.outcome = "error" if ex.outcome == "ok" else ex.outcome
            w.fail_next = False
            sim._inject("error", f"{w.id} {ex.job.id}")


def scheduled(sim: Simulator, fault: ScheduledFault) -> None:
    if sim.healed:
        return
    cfg = sim.cfg
    if fault.kind == "slow":
        slow(
            sim,
            fault.duration if fault.duration is not None else 60.0,
            fault.by if fault.by is not None else cfg.lock * 0.8,
        )
        return
    if fault.kind == "restart":
        restart(sim, fault.duration if fault.duration is not None else 5.0, fault.persist)
        return
    if not sim.slots:
        return
    slot = fault.worker % len(sim.slots) if fault.worker is not None else int(sim.r_pick.random() * len(sim.slots))
    w = sim.slots[slot]
    if w is None or w.state not in LIVE:
        sim.emit(f"fault {fault.kind} missed slot {slot}")
        return
    defaults = {"pause": cfg.lock * 2, "partition": cfg.lock * 1.5}
    duration = fault.duration if fault.duration is not None else defaults.get(fault.kind, 0.0)
    by = fault.by if fault.by is not None else cfg.lock * (1.5 if fault.kind == "skew" else -2.0)
    if fault.kind == "pause" and w.exec is not None and not w.exec.reporting:
        # The classic zombie: the pause hits when the handler returns, before the worker reports.
        w.exec.report_pause = max(w.exec.report_pause, duration)
        sim.emit(f"fault pause armed on {w.id} for {duration:.3f}s before it reports {w.exec.job.id}")
        return
    worker_fault(sim, w, fault.kind, duration=duration, by=by)


def slow_fault(sim: Simulator) -> None:
    if sim.healed:
        return
    f = sim.cfg.faults
    slow(sim, sim.r_global.uniform(*f.slow_window), sim.cfg.lock * sim.r_global.uniform(*f.slow_locks))
    sim.q.after(sim.r_global.expovariate(f.slow), slow_fault, sim)


def slow(sim: Simulator, duration: float, latency: float) -> None:
    sim.slow_seq += 1
    sim.slow[sim.slow_seq] = latency
    sim.fault_end = max(sim.fault_end, sim.q.now + duration)
    sim.latency = max(sim.slow.values())
    sim._inject("slow", f"{latency:.3f}s for {duration:.3f}s")
    sim.q.after(duration, slow_end, sim, sim.slow_seq)


def slow_end(sim: Simulator, seq: int) -> None:
    sim.slow.pop(seq, None)
    sim.latency = max(sim.slow.values(), default=0.0)
    sim.emit("slow window ends")


def restart_fault(sim: Simulator) -> None:
    if sim.healed:
        return
    f = sim.cfg.faults
    persist = sim.r_global.random() < f.restart_persist
    restart(sim, sim.r_global.uniform(*f.restart_down), persist)
    sim.q.after(sim.r_global.expovariate(f.restart), restart_fault, sim)


def restart(sim: Simulator, down: float, persist: bool) -> None:
    sim.down_until = max(sim.down_until, sim.q.now + down)
    sim.fault_end = max(sim.fault_end, sim.down_until)
    sim._inject("restart", f"down {down:.3f}s, {'data kept' if persist else 'data lost'}")
    for job in sim.jobs.values():
        if job.exec is not None:
            job.exec.tag("restart")
    if not persist:
        sim.calls += 1
        run_sync(sim.client, sim.ops.obliterate(force=True))
        for job in sim.jobs.values():
            if job.status in (Status.PENDING, Status.HELD):
                sim.dropped += 1
                sim._settle(job, Status.DROPPED)
            else:
                job.record_dropped = True
        sim.rate_windows.clear()
        sim.reconfigure = True
    sim.q.at(sim.down_until, restart_end, sim)


def restart_end(sim: Simulator) -> None:
    if sim.down_until > sim.q.now:
        return  # a later restart overlapped this one; its end takes over
    if sim.reconfigure:  # the queue's settings went with its data: the operator sets them again
        sim.reconfigure = False
        sim._configure()
    sim.emit("Redis is back")
    sim.restarts_awaiting_work += 1
    pending = sum(1 for j in sim.jobs.values() if j.status is Status.PENDING)
    sim._hand_out(min(pending, len(sim.idle)), cascade=True)
