"""The producer: jobs arrive following the arrival process and are added through the engine.

Each arrival draws its class from the mix. An add is stamped with the queue's clock (set to the
virtual time); a refused add (Redis restarting) is retried after ``retry_backoff``, and a retried
add of a job that exists already changes nothing. Once acknowledged, an add wakes an idle worker
(or arms the timer for when a delayed job falls due).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

from jqc.clock import VIRTUAL_EPOCH, VirtualClock, now_ms
from jqc.engine.job import JobOptions
from jqc.engine.operations import QueueOperations
from jqc.errors import BackendError
from jqc.sim.checkers import JobRecord
from jqc.sim.config import SimConfig
from jqc.sim.dispatch import Dispatcher
from jqc.sim.events import EventQueue, Journal
from jqc.sim.network import Network
from jqc.sim.rng import SimRandom
from jqc.sim.state import Model, ScalingStats
from jqc.sim.workers import Call

__all__ = ["Producer"]


class Producer:
    """Adds the run's jobs: prefilled ones at time 0, then one per arrival until arrivals end.

    ``options``: the job options of each class of the mix. ``on_end()``: the last job has arrived.
    """

    def __init__(
        self,
        cfg: SimConfig,
        q: EventQueue,
        journal: Journal,
        clock: VirtualClock,
        model: Model,
        stats: ScalingStats,
        network: Network,
        ops: QueueOperations,
        dispatch: Dispatcher,
        rand: SimRandom,
        options: list[JobOptions],
        *,
        on_end: Callable[[], None],
    ) -> None:
        self.cfg = cfg
        self.q = q
        self.journal = journal
        self.clock = clock
        self.model = model
        self.stats = stats
        self.network = network
        self.ops = ops
        self.dispatch = dispatch
        self.r_mix = rand.stream("mix")
        self.arrivals: Iterator[float] = cfg.arrival.times(rand.stream("arrivals"))
        self.options = options
        self.on_end = on_end
        weights = [c.weight for c in cfg.mix]
        total = math.fsum(weights)
        self.mix_cdf = [math.fsum(weights[: i + 1]) / total for i in range(len(weights))]
        network.handle("add", self._t_add, self._r_add)

    def prefill(self, n: int) -> None:
        """Add ``n`` jobs now (left out of the wait statistics)."""
        for i in range(n):
            self._add(f"p{i}", self._pick_class(), measured=False)

    def _pick_class(self) -> int:
        u = self.r_mix.random()
        for i, edge in enumerate(self.mix_cdf):
            if u < edge:
                return i
        return len(self.mix_cdf) - 1

    def next_arrival(self) -> None:
        """Schedule the next arrival, or end arrivals (job count reached, process over, past the duration)."""
        cfg = self.cfg
        if cfg.jobs is not None and self.model.arrived >= cfg.jobs:
            self.on_end()
            return
        t = next(self.arrivals, None)
        if t is None or (cfg.duration is not None and t > cfg.duration):
            self.on_end()
            return
        self.q.at(t, self._arrive)

    def _arrive(self) -> None:
        model = self.model
        model.arrived += 1
        self._add(f"j{model.arrived}", self._pick_class(), measured=model.arrived > self.cfg.warmup)
        self.next_arrival()

    def _add(self, job_id: str, cls: int, *, measured: bool) -> None:
        self.model.adds_in_flight += 1
        self._send_add((job_id, cls, measured))

    def _send_add(self, spec: tuple[str, int, bool]) -> None:
        job_id, cls, _ = spec
        opts = dataclasses.replace(self.options[cls], job_id=job_id)
        self.clock.move_to(VIRTUAL_EPOCH + self.q.now)
        # add stamps with the queue's clock (no now= override): record exactly the stamp it sends
        call = Call("add", None, self.ops.add(self.cfg.mix[cls].name, None, opts), now_ms(self.clock))
        call.extra = spec
        self.network.send(call)

    def _t_add(self, call: Call, result: Any, reply: bool) -> None:
        job_id, cls, measured = call.extra
        if job_id in self.model.jobs:
            return  # a retried add of a job that exists already (the engine returned it unchanged)
        now = self.q.now
        opts = self.options[cls]
        rec = JobRecord(job_id, cls, now, now + opts.delay, opts.attempts, measured=measured)
        if opts.delay > 0:
            rec.due = call.stamp + round(opts.delay * 1000)
        self.model.enter(rec, now)
        self.stats.waiting(rec)
        self.journal.emit(f"add {job_id} {self.cfg.mix[cls].name}")

    def _r_add(self, call: Call, result: Any) -> None:
        if isinstance(result, BackendError):  # Redis is restarting: the producer tries again
            self.q.after(self.cfg.retry_backoff, self._send_add, call.extra)
            return
        self.model.adds_in_flight -= 1
        delay = self.options[call.extra[1]].delay
        if delay > 0:
            self.dispatch.arm(self.q.now + delay)
        else:
            self.dispatch.hand_out(1)
