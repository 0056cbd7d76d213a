"""The worker pool: starting, stopping and replacing virtual workers.

A new worker is ready after the start-up delay (then it may have its clock skewed, and starts
claiming). Scaling down cancels starting workers first, then stops idle ones, then drains busy
ones (they finish their job without taking another, or release it after ``drain_grace``). A
crashed worker is replaced after ``restart_delay`` if the pool still needs it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from jqc.sim.checkers import Exec
from jqc.sim.config import SimConfig
from jqc.sim.events import EventQueue, Journal
from jqc.sim.state import FaultState, ScalingStats, TimeAverages, WorkerSlots
from jqc.sim.workers import BUSY, CLAIMING, DEAD, IDLE, STARTING, STOPPED, Worker

__all__ = ["Pool"]


class Pool:
    """Steers :class:`~jqc.sim.state.WorkerSlots` to its target and carries out worker crashes.

    ``on_ready(w)``: a worker finished starting and must begin claiming. ``on_drain_deadline(w, ex)``:
    a draining worker still holds ``ex`` after the drain grace and must release it.
    """

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        slots: WorkerSlots,
        averages: TimeAverages,
        faults: FaultState,
        scaling: ScalingStats,
        skew_rng: random.Random,
        *,
        on_ready: Callable[[Worker], None],
        on_drain_deadline: Callable[[Worker, Exec], None],
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.slots = slots
        self.averages = averages
        self.faults = faults
        self.scaling = scaling
        self.skew_rng = skew_rng
        self.on_ready = on_ready
        self.on_drain_deadline = on_drain_deadline

    def set_target(self, n: int, *, initial: bool = False) -> None:
        """Steer the pool to ``n`` workers (clamped to its bounds)."""
        slots, stats = self.slots, self.scaling
        low, high = slots.bounds
        n = min(max(n, low), high)
        if not initial and n != slots.target:
            direction = 1 if n > slots.target else -1
            if stats.last_direction and direction != stats.last_direction:
                stats.reversals += 1
            stats.last_direction = direction
            self.journal.emit(f"scale {slots.target} -> {n}")
        slots.target = n
        running = slots.running()
        if n > len(running):
            for _ in range(n - len(running)):
                self.spawn(0.0 if initial else self.cfg.startup_delay)
        elif n < len(running):
            order = {STARTING: 0, IDLE: 1, CLAIMING: 2, BUSY: 3}
            victims = sorted(running, key=lambda w: (order[w.state], -w.slot))[: len(running) - n]
            for w in victims:
                self.retire(w)

    def _free_slot(self) -> int:
        slots = self.slots
        for i, w in enumerate(slots.slots):
            if w is None or w.state == STOPPED:
                return i
        slots.slots.append(None)
        slots.incarnations.append(0)
        return len(slots.slots) - 1

    def spawn(self, delay: float, slot: int | None = None) -> None:
        """Start a worker in ``slot`` (default: the first free one), ready after ``delay`` seconds."""
        slots = self.slots
        slot = self._free_slot() if slot is None else slot
        slots.incarnations[slot] += 1
        w = Worker(slot, slots.incarnations[slot])
        slots.slots[slot] = w
        self.averages.change(self.q.now, pool=1)
        if delay > 0:
            self.q.after(delay, self._ready, w)
        else:
            self._ready(w)

    def _ready(self, w: Worker) -> None:
        if w.state != STARTING:
            return
        cfg = self.cfg
        if not self.faults.healed and cfg.faults.skew > 0 and self.skew_rng.random() < cfg.faults.skew:
            w.offset = cfg.lock * cfg.faults.skew_locks * self.skew_rng.uniform(-1.0, 1.0)
            w.clock_tags["skew"] = None
            self.journal.inject("skew", f"{w.id} by {w.offset:+.3f}s")
        self.averages.change(self.q.now, ready=1)
        self.journal.emit(f"start {w.id}")
        w.state = CLAIMING
        self.on_ready(w)

    def retire(self, w: Worker) -> None:
        """Scale ``w`` down: at once if it is starting or idle, else once its job is done."""
        if w.state in (STARTING, IDLE):
            self.stop(w)
            return
        w.draining = True
        self.journal.emit(f"drain {w.id}")
        if w.state == BUSY and w.exec is not None and self.cfg.drain_grace is not None:
            self.q.after(self.cfg.drain_grace, self.on_drain_deadline, w, w.exec)

    def stop(self, w: Worker) -> None:
        """``w`` leaves the pool (scaled down)."""
        self.averages.change(self.q.now, ready=-1 if w.state != STARTING else 0, pool=-1)
        self.slots.idle.pop(w.slot, None)
        w.state = STOPPED
        self.journal.emit(f"stop {w.id}")

    def crash(self, w: Worker) -> None:
        """``w`` dies (an injected fault); its slot is refilled after the restart delay."""
        self.averages.change(self.q.now, busy=-1 if w.exec is not None else 0, ready=-1, pool=-1)
        if w.exec is not None:
            w.exec.tag("crash")
        self.slots.idle.pop(w.slot, None)
        w.state = DEAD
        self.journal.inject("crash", f"{w.id}" + (f" running {w.exec.job.id}" if w.exec else ""))
        self.q.after(self.cfg.restart_delay, self._respawn, w)

    def _respawn(self, old: Worker) -> None:
        if self.slots.slots[old.slot] is not old:
            return
        if len(self.slots.running()) < self.slots.target:
            self.spawn(0.0, old.slot)
        else:
            old.state = STOPPED
