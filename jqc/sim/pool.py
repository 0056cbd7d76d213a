"""The worker pool: starting, stopping and replacing workers, scaling ticks, and the per-minute
figures the scaling report is made of (SLO minutes, drain time after bursts, reversals).

Each function takes the :class:`~jqc.sim.runner.Simulator` first; most are its event handlers.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

from jqc.engine.operations import Counts
from jqc.errors import BackendError
from jqc.scaling import PoolMetrics
from jqc.sim.report import percentile
from jqc.sim.workers import BUSY, CLAIMING, DEAD, IDLE, LIVE, STARTING, STOPPED, Call, Worker

if TYPE_CHECKING:
    from jqc.sim.runner import Simulator

#: Seconds of finished attempts whose mean run time a policy sees (as a live coordinator reads it
#: from the engine's run-time histogram over its metrics window).
RUN_WINDOW = 300.0


def set_target(sim: Simulator, n: int, *, initial: bool = False) -> None:
    low, high = sim.bounds
    n = min(max(n, low), high)
    if not initial and n != sim.target:
        direction = 1 if n > sim.target else -1
        if sim.last_direction and direction != sim.last_direction:
            sim.reversals += 1
        sim.last_direction = direction
        sim.emit(f"scale {sim.target} -> {n}")
    sim.target = n
    running = [w for w in sim.slots if w is not None and w.state in (STARTING, *LIVE) and not w.draining]
    if n > len(running):
        for _ in range(n - len(running)):
            spawn(sim, 0.0 if initial else sim.cfg.startup_delay)
    elif n < len(running):
        order = {STARTING: 0, IDLE: 1, CLAIMING: 2, BUSY: 3}
        victims = sorted(running, key=lambda w: (order[w.state], -w.slot))[: len(running) - n]
        for w in victims:
            retire(sim, w)


def free_slot(sim: Simulator) -> int:
    for i, w in enumerate(sim.slots):
        if w is None or w.state == STOPPED:
            return i
    sim.slots.append(None)
    sim.incarnations.append(0)
    return len(sim.slots) - 1


def spawn(sim: Simulator, delay: float, slot: int | None = None) -> None:
    slot = free_slot(sim) if slot is None else slot
    sim.incarnations[slot] += 1
    w = Worker(slot, sim.incarnations[slot])
    sim.slots[slot] = w
    sim._areas()
    sim.n_pool += 1
    if delay > 0:
        sim.q.after(delay, ready, sim, w)
    else:
        ready(sim, w)


def ready(sim: Simulator, w: Worker) -> None:
    if w.state != STARTING:
        return
    cfg = sim.cfg
    if not sim.healed and cfg.faults.skew > 0 and sim.r_skew.random() < cfg.faults.skew:
        w.offset = cfg.lock * cfg.faults.skew_locks * sim.r_skew.uniform(-1.0, 1.0)
        w.clock_tags["skew"] = None
        sim._inject("skew", f"{w.id} by {w.offset:+.3f}s")
    sim._areas()
    sim.n_ready += 1
    sim.emit(f"start {w.id}")
    w.state = CLAIMING
    sim._wake(w, False)


def retire(sim: Simulator, w: Worker) -> None:
    if w.state in (STARTING, IDLE):
        stop(sim, w)
        return
    w.draining = True
    sim.emit(f"drain {w.id}")
    if w.state == BUSY and w.exec is not None and sim.cfg.drain_grace is not None:
        sim.q.after(sim.cfg.drain_grace, sim._drain_deadline, w, w.exec)


def stop(sim: Simulator, w: Worker) -> None:
    sim._areas()
    if w.state != STARTING:
        sim.n_ready -= 1
    sim.n_pool -= 1
    sim.idle.pop(w.slot, None)
    w.state = STOPPED
    sim.emit(f"stop {w.id}")


def crash(sim: Simulator, w: Worker) -> None:
    sim._areas()
    if w.exec is not None:
        w.exec.tag("crash")
        sim.n_busy -= 1
    sim.n_ready -= 1
    sim.n_pool -= 1
    sim.idle.pop(w.slot, None)
    w.state = DEAD
    sim._inject("crash", f"{w.id}" + (f" running {w.exec.job.id}" if w.exec else ""))
    sim.q.after(sim.cfg.restart_delay, respawn, sim, w)


def respawn(sim: Simulator, old: Worker) -> None:
    if sim.slots[old.slot] is not old:
        return
    running = sum(1 for w in sim.slots if w is not None and w.state in (STARTING, *LIVE) and not w.draining)
    if running < sim.target:
        spawn(sim, 0.0, old.slot)
    else:
        old.state = STOPPED


def tick(sim: Simulator) -> None:
    sim.q.after(sim.cfg.policy_tick, tick, sim)
    if sim.down_until > sim.q.now:
        return
    sim._send(Call("counts", None, sim.ops.counts(), sim._stamp(None)))


def counted(sim: Simulator, result: Counts | BackendError) -> None:
    """A policy tick got the queue's counts: decide and apply the target."""
    if isinstance(result, BackendError):
        return
    now = sim.q.now
    then, completions, arrivals = sim.last_tick
    span = max(now - then, 1e-9)
    states = [w.state for w in sim.slots if w is not None]
    draining = sum(1 for w in sim.slots if w is not None and w.draining and w.state in LIVE)
    waits = sorted(sim.tick_waits)
    runs = sim.recent_runs
    while runs and runs[0][0] < now - RUN_WINDOW:
        runs.popleft()
    metrics = PoolMetrics(
        now=now,
        waiting=result.waiting,
        delayed=result.delayed,
        active=result.active,
        ready=sum(1 for s in states if s in LIVE) - draining,
        starting=states.count(STARTING),
        draining=draining,
        busy=sim.n_busy,
        target=sim.target,
        arrival_rate=(sim.arrived - arrivals) / span,
        completion_rate=(sim.completions - completions) / span,
        wait_p95=percentile(waits, 0.95) if waits else None,
        oldest_wait=oldest_wait(sim),
        min_workers=sim.bounds[0],
        max_workers=sim.bounds[1],
        service_time=math.fsum(r for _, r in runs) / len(runs) if runs else None,
    )
    sim.last_tick = (now, sim.completions, sim.arrived)
    sim.tick_waits = []
    set_target(sim, int(sim.policy.decide(metrics)))


# -- minutes, bursts, SLO -----------------------------------------------------------------------


def oldest_wait(sim: Simulator) -> float:
    heap = sim.waiting_heap
    while heap and (heap[0][2].first_start is not None or heap[0][2].finished is not None):
        heapq.heappop(heap)
    return max(0.0, sim.q.now - heap[0][0]) if heap else 0.0


def minute(sim: Simulator) -> None:
    sim.q.after(60.0, minute, sim)
    waits = sorted(sim.minute_waits)
    p95 = percentile(waits, 0.95) if waits else 0.0
    oldest = oldest_wait(sim)
    bad = p95 > sim.cfg.slo_wait or oldest > sim.cfg.slo_wait
    sim.slo_minutes += bad
    sim.timeline.append(
        {
            "minute": round(sim.q.now / 60.0),
            "started": len(waits),
            "wait_p95_s": round(p95, 6),
            "oldest_wait_s": round(oldest, 6),
            "waiting": sim.n_queue,
            "workers": sim.n_pool,
            "busy": sim.n_busy,
            "target": sim.target,
        }
    )
    sim.minute_waits = []


def next_burst(sim: Simulator) -> None:
    for start, end in sim.bursts_iter:
        if sim.cfg.duration is not None and start > sim.cfg.duration:
            return
        sim.q.at(end, burst_end, sim, end)
        return


def burst_end(sim: Simulator, end: float) -> None:
    if sim.arrivals_done and end > sim.arrivals_end:
        return
    sim.burst_ends.append(end)
    if sim.n_queue == 0:
        drained(sim)
    next_burst(sim)


def drained(sim: Simulator) -> None:
    for end in sim.burst_ends:
        sim.drain_times.append(round(sim.q.now - end, 6))
    sim.burst_ends = []
