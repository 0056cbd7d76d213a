"""The discrete-event loop: one virtual clock, virtual workers, the real engine.

Virtual workers never block. The loop pops the next event (an arrival, a handler finishing, a
heartbeat, a fault, a stall check, a policy tick ...) and, when a worker acts, calls the engine's
real worker-side operation synchronously (``run_sync``) on one shared client, passing the worker's
own clock reading as ``now=``. A worker's clock is the virtual clock plus its offset, so clock skew
and clock jumps change only what that worker stamps.

:class:`Simulator` builds the run's state (:mod:`jqc.sim.state`) and its parts, each handed the
state it works on: the network (:mod:`~jqc.sim.network`), the producer (:mod:`~jqc.sim.producer`),
the pool (:mod:`~jqc.sim.pool`), claiming (:mod:`~jqc.sim.dispatch`), running jobs
(:mod:`~jqc.sim.attempts`), stall checks (:mod:`~jqc.sim.recovery`), faults
(:mod:`~jqc.sim.inject`, hung calls in :mod:`~jqc.sim.hang`) and policy ticks
(:mod:`~jqc.sim.scaler`). It runs the loop, decides when faults heal and the liveness clock
starts, and checks the final state.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

from jqc.backends.base import SyncBackend
from jqc.clock import VIRTUAL_EPOCH, VirtualClock
from jqc.connection import Connection, connect
from jqc.engine.calls import CommandCall, run_sync
from jqc.engine.job import JobOptions, Keep
from jqc.engine.operations import QueueOperations
from jqc.engine.replies import as_strs
from jqc.errors import InvalidOptionError
from jqc.scaling import ScalingPolicy, make_policy
from jqc.sim.attempts import Attempts
from jqc.sim.checkers import Checker, JobRecord
from jqc.sim.config import SimConfig
from jqc.sim.dispatch import Dispatcher
from jqc.sim.events import EventLog, EventQueue, Journal
from jqc.sim.hang import HungCalls
from jqc.sim.inject import FaultInjector
from jqc.sim.network import Network
from jqc.sim.pool import Pool
from jqc.sim.producer import Producer
from jqc.sim.progress import ProgressCallback, SimProgress
from jqc.sim.recovery import StallChecks
from jqc.sim.report import Report, build_report
from jqc.sim.rng import SimRandom
from jqc.sim.scaler import Scaler
from jqc.sim.schedules import ScheduleDrivers
from jqc.sim.speculation import DeferredCalls, SpeculationMissed
from jqc.sim.state import FaultState, Model, ScalingStats, TimeAverages, WorkerSlots

__all__ = ["Simulator", "run"]


class Simulator:
    """One run. Use :func:`run` unless you need to poke at the state afterwards (:attr:`jobs`, :attr:`log`).

    ``on_progress`` is called with a :class:`~jqc.sim.progress.SimProgress` before the first
    event, every ``progress_every`` events and at the end (see :mod:`jqc.sim.progress`).
    """

    def __init__(
        self,
        config: SimConfig,
        connection: Connection | None = None,
        *,
        keep_log: bool = False,
        on_progress: ProgressCallback | None = None,
        progress_every: int = 250,
        speculate: bool = True,
    ) -> None:
        if progress_every < 1:
            raise InvalidOptionError(f"progress_every must be at least 1 event, not {progress_every!r}")
        self.on_progress = on_progress
        self.progress_every = progress_every
        self._given = (connection, keep_log)
        self._build(config, speculate)

    def _build(self, config: SimConfig, speculate: bool) -> None:
        """Make the run's state and parts afresh (again when a speculated run is done over)."""
        connection, keep_log = self._given
        self.speculate = speculate
        self.cfg = cfg = config
        self.rand = rand = SimRandom(cfg.seed)
        self.q = q = EventQueue(rand.stream("ties"))
        self.log = EventLog(keep=keep_log)
        self.journal = journal = Journal(q, self.log)
        self.checker = checker = Checker(where=lambda: self.log.recent[-1] if self.log.recent else "at the start")
        self.clock = VirtualClock(VIRTUAL_EPOCH)
        self._own_connection = connection is None
        self.conn = connection if connection is not None else connect(cfg.url, clock=self.clock)
        self.backend: SyncBackend = DeferredCalls(self.conn.backend) if speculate else self.conn.backend
        name = cfg.queue if self.conn.in_process else f"{cfg.queue}-{os.getpid()}-{os.urandom(3).hex()}"
        self.ops = ops = QueueOperations(name, clock=self.clock, prefix=self.conn.prefix, events_max_len=0)
        keep = Keep() if cfg.keep_completed else Keep.none()
        options: list[JobOptions] = [dataclasses.replace(c.options, remove_on_complete=keep) for c in cfg.mix]
        self.policy: ScalingPolicy = cfg.custom_policy or make_policy(
            cfg.policy,
            cfg.workers,
            target_backlog=cfg.target_backlog,
            stabilization=cfg.stabilization,
            slo=cfg.slo_wait,
            startup=cfg.startup_delay,
        )
        self.scaling = cfg.custom_policy is not None or cfg.policy != "fixed"

        # the state of the run
        self.averages = averages = TimeAverages()
        self.model = model = Model(averages)
        self.slots = slots = WorkerSlots(cfg.pool_bounds)
        self.faults = faults = FaultState(clock_faulted=cfg.faults.clock_faults)
        self.stats = stats = ScalingStats()
        self.liveness_bound: float | None = None
        self.deadline = math.inf  # the liveness deadline, once it runs

        # its parts; a few call back into parts built after them, hence the late-bound lambdas
        self.network = network = Network(
            q, faults, stats, rand.stream("network"), self.backend, call_timeout=cfg.call_timeout
        )
        self.pool = pool = Pool(
            cfg,
            q,
            journal,
            slots,
            averages,
            faults,
            stats,
            rand.stream("skew"),
            on_ready=lambda w: self.dispatch.wake(w, False),
            on_drain_deadline=lambda w, ex: self.attempts.drain_deadline(w, ex),
        )
        self.dispatch = dispatch = Dispatcher(
            cfg,
            q,
            journal,
            checker,
            model,
            slots,
            averages,
            faults,
            stats,
            network,
            ops,
            pool,
            start=lambda w, ex: self.attempts.start(w, ex),
        )
        self.hung = hung = HungCalls(cfg, q, journal, checker, faults, network, ops)
        self.injector = injector = FaultInjector(
            cfg,
            q,
            journal,
            checker,
            model,
            slots,
            faults,
            network,
            ops,
            pool,
            dispatch,
            hung,
            rand,
            configure=self._configure,
        )
        self.attempts = Attempts(
            cfg,
            q,
            journal,
            checker,
            model,
            averages,
            faults,
            stats,
            network,
            ops,
            pool,
            dispatch,
            injector,
            hung,
            rand,
            scaling=self.scaling,
        )
        self.stall_checks = StallChecks(
            cfg, q, journal, checker, model, slots, network, ops, dispatch, rand.stream("pick")
        )
        self.producer = Producer(
            cfg, q, journal, self.clock, model, stats, network, ops, dispatch, rand, options, on_end=self._end_arrivals
        )
        self.scaler = Scaler(cfg, q, model, slots, averages, stats, network, ops, pool, self.policy)
        self.schedules = ScheduleDrivers(
            cfg.schedules, q, journal, checker, model, slots, faults, stats, ops, dispatch, self.clock, self.backend,
            rand.stream("schedules"), job=cfg.mix[0].name, attempts=options[0].attempts,
            crash=0.1 if cfg.faults.crash else 0.0, data_may_vanish=cfg.faults.restart > 0,
        )  # fmt: skip

    @property
    def jobs(self) -> dict[str, JobRecord]:
        """The model's record of every job added, in the order they were added."""
        return self.model.jobs

    # -- the run ------------------------------------------------------------------------------------

    def run(self) -> Report:
        """Run to the end (every job finished, the liveness deadline or ``max_time``) and report.

        With ``speculate`` (the default) lock renewals are sent with the next call
        (:mod:`jqc.sim.speculation`); if one answers otherwise than fencing allows, the run is done
        again from the start without that, so the report is the same either way (``on_progress``
        then sees the run start over).
        """
        try:
            return self._run()
        except SpeculationMissed:
            self._build(self.cfg, speculate=False)
            return self._run()

    def _run(self) -> Report:
        started = time.perf_counter()
        cfg = self.cfg
        try:
            run_sync(self.backend, self.ops.obliterate(force=True))
            self._configure()
            initial = cfg.workers if not self.scaling else max(cfg.workers, self.slots.bounds[0])
            self.pool.set_target(initial, initial=True)
            self.producer.prefill(cfg.prefill)
            self.producer.next_arrival()
            self.schedules.start()
            self.scaler.next_burst()
            self.q.after(cfg.stall_interval, self.stall_checks.check)
            self.q.after(cfg.idle_poll, self.dispatch.idle_poll)
            self.q.after(60.0, self.scaler.minute)
            if self.scaling:
                self.q.after(cfg.policy_tick, self.scaler.tick)
            self.injector.start()
            if cfg.faults.heal_at is not None:
                self.q.at(cfg.faults.heal_at, self._heal)
            self._loop()
            return self._finish_run(time.perf_counter() - started)
        finally:
            try:
                run_sync(self.backend, self.ops.obliterate(force=True))
            finally:
                if self._own_connection:
                    self.conn.close()

    def _configure(self) -> None:
        if self.cfg.rate_limit is not None:
            run_sync(self.backend, self.ops.configure(rate_limit=self.cfg.rate_limit))

    def _loop(self) -> None:
        q, model = self.q, self.model
        max_time = self.cfg.max_time if self.cfg.max_time is not None else math.inf
        on_progress, every = self.on_progress, self.progress_every
        if on_progress is not None:
            on_progress(self.progress())
        while q:
            nxt = q.peek_time()
            assert nxt is not None
            if nxt > self.deadline or nxt > max_time:
                q.now = min(self.deadline, max_time)
                break
            handler, args = q.pop()
            handler(*args)
            if model.arrivals_done and not model.unfinished and not model.adds_in_flight:
                break
            if on_progress is not None and q.processed % every == 0:
                on_progress(self.progress())
        self.averages.advance(q.now)
        if on_progress is not None:
            on_progress(self.progress(finished=True))

    def progress(self, *, finished: bool = False) -> SimProgress:
        """Where the run is now (what ``on_progress`` is handed)."""
        model, cfg = self.model, self.cfg
        if model.arrivals_done:
            expected: int | None = cfg.prefill + model.arrived
        elif cfg.jobs is not None:
            expected = cfg.prefill + cfg.jobs
        else:
            expected = None
        return SimProgress(
            virtual_seconds=self.q.now,
            events=self.q.processed,
            jobs_added=len(model.jobs),
            jobs_done=model.completed + model.dead + model.dropped + model.lost_failover,
            jobs_expected=expected,
            finished=finished,
        )

    # -- healing and liveness -----------------------------------------------------------------------

    def _end_arrivals(self) -> None:
        model = self.model
        if model.arrivals_done:
            return
        model.arrivals_done = True
        model.arrivals_end = self.q.now
        self.averages.close_window(self.q.now)
        self.journal.emit(f"arrivals end after {model.arrived} jobs")
        if self.cfg.faults.heal_at is None:
            self._heal()
        self._start_liveness()

    def _heal(self) -> None:
        """No fault starts from now on, and clocks are synchronised again (NTP caught up)."""
        faults = self.faults
        if faults.healed:
            return
        faults.healed = True
        faults.heal_time = self.q.now
        for w in self.slots.workers():
            if w.offset:
                w.offset = 0.0
        self.journal.emit("faults stop")
        self._start_liveness()

    def _start_liveness(self) -> None:
        """Once faults have stopped and every job has arrived, start the liveness clock.

        It starts when the last injected fault is over (a slow window or a partition begun
        before the heal lasts its full length), with a bound from the backlog at that point.
        """
        model = self.model
        if not (self.faults.healed and model.arrivals_done) or self.liveness_bound is not None:
            return
        cfg = self.cfg
        bound = cfg.liveness_bound
        if bound is None:
            low, high = self.slots.bounds
            mean = max(c.service.mean if c.service else cfg.service.mean for c in cfg.mix)
            workers = max(1, min(self.slots.target, high) if not self.scaling else low)
            backlog = model.unfinished + model.adds_in_flight
            drain = backlog * mean / workers
            if cfg.rate_limit is not None:
                drain = max(drain, backlog * cfg.rate_limit[1] / cfg.rate_limit[0])
            retries = max(
                c.delay + c.attempts * (mean + c.backoff * (2 ** (c.attempts - 1) if c.exponential else 1))
                for c in cfg.mix
            )
            recovery = (cfg.lock + cfg.stall_interval + cfg.heartbeat_s) * (cfg.max_stalls + 1) + cfg.restart_delay
            bound = 3 * drain + 2 * recovery + retries + cfg.startup_delay + cfg.policy_tick + cfg.idle_poll + 60
        self.liveness_bound = bound
        start = max(self.q.now, self.faults.fault_end)
        self.deadline = start + bound
        self.journal.emit(f"liveness: every job must finish within {bound:.3f}s of {start:.3f}")

    # -- the end ------------------------------------------------------------------------------------

    def _containers(self) -> dict[str, list[str]]:
        keys = self.ops.keys
        out: dict[str, list[str]] = {}
        out["wait"] = run_sync(self.backend, CommandCall(("LRANGE", keys.key("wait"), 0, -1), as_strs))
        for name in ("prio", "delayed", "active", "completed", "failed", "dlq"):
            out[name] = run_sync(self.backend, CommandCall(("ZRANGE", keys.key(name), 0, -1), as_strs))
        return out

    def _finish_run(self, wall: float) -> Report:
        ck, model, averages = self.checker, self.model, self.averages
        averages.advance(self.q.now)
        self.hung.finish()
        self.schedules.check()
        final = ck.total_queue(model.jobs.values(), self._containers(), keep_completed=self.cfg.keep_completed)
        if self.faults.healed and (not model.unfinished or self.q.now >= self.deadline):
            ck.liveness(model.jobs.values(), self.liveness_bound or 0.0)
        little = ck.littles_law(model.jobs.values(), self.q.now, averages.a_system, averages.a_queue)
        return build_report(
            self.cfg,
            backend=self.conn.kind,
            journal=self.journal,
            checker=ck,
            model=model,
            averages=averages,
            scaling=self.stats,
            target=self.slots.target,
            policy=self.policy.name,
            engine_calls=self.network.calls,
            engine_seconds=self.network.engine_seconds,
            liveness_bound=self.liveness_bound,
            wall=wall,
            final=final,
            little=little,
            failover=self.injector.failovers.counts if self.injector.failovers.enabled else None,
        )


def run(
    config: SimConfig,
    connection: Connection | None = None,
    *,
    self_check: bool = False,
    on_progress: ProgressCallback | None = None,
    speculate: bool = True,
) -> Report:
    """Run one simulation (twice with ``self_check``, comparing the event logs) and report it.

    ``connection`` overrides ``config.url`` (a test can pass ``tests.conftest.open_backend``'s);
    by default the embedded backend is used, or the real Redis at ``config.url``.
    ``on_progress`` follows the run (each run, with ``self_check``): see :mod:`jqc.sim.progress`.
    ``speculate=False`` sends every lock renewal on its own (see :meth:`Simulator.run`; the same report).
    """
    report = Simulator(config, connection, on_progress=on_progress, speculate=speculate).run()
    if self_check:
        again = Simulator(config, connection, on_progress=on_progress, speculate=speculate).run()
        report.self_check = {
            "first": report.event_log_sha256,
            "second": again.event_log_sha256,
            "equal": report.event_log_sha256 == again.event_log_sha256,
        }
    return report
