"""The state of one run, in explicit objects that the parts of the simulator are handed.

- :class:`TimeAverages`: counts that change over time (workers, busy workers, jobs in the system
  and in the queue) and their time integrals, for Little's law, utilisation and worker-seconds;
- :class:`Model`: what the simulator knows for sure about every job it added, and the run's
  counters (arrivals, completions, duplicates ...);
- :class:`WorkerSlots`: the worker pool, one slot per worker process, and its target size;
- :class:`FaultState`: the faults in force (Redis down, slow windows, healed or not);
- :class:`ScalingStats`: what the scaling report is made of (SLO minutes, drain times after
  bursts, reversals) and what a policy tick measures (recent waits and run times).

They hold data and the small updates that keep it consistent; the event handlers that change them
live in :mod:`~jqc.sim.network`, :mod:`~jqc.sim.pool`, :mod:`~jqc.sim.dispatch`,
:mod:`~jqc.sim.attempts`, :mod:`~jqc.sim.recovery`, :mod:`~jqc.sim.inject` and
:mod:`~jqc.sim.scaler`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

from jqc.sim.checkers import Exec, JobRecord, Status
from jqc.sim.workers import LIVE, STARTING, Worker

__all__ = ["FaultState", "Model", "ScalingStats", "TimeAverages", "WorkerSlots"]


class TimeAverages:
    """Counts over time and their areas (integrals over virtual time).

    ``pool``: workers started and not stopped; ``ready``: of those, the ones past their start-up;
    ``busy``: workers running a job; ``system``: jobs added and not finished; ``queue``: of those,
    the ones not started yet. :meth:`change` first adds each count times the time since the last
    change to its area, then applies the change, so the areas are exact step integrals.
    """

    __slots__ = (
        "a_busy",
        "a_pool",
        "a_queue",
        "a_ready",
        "a_system",
        "n_busy",
        "n_pool",
        "n_queue",
        "n_ready",
        "n_system",
        "t_last",
        "window_areas",
    )

    def __init__(self) -> None:
        self.t_last = 0.0
        self.n_pool = self.n_ready = self.n_busy = self.n_system = self.n_queue = 0
        self.a_pool = self.a_ready = self.a_busy = self.a_system = self.a_queue = 0.0
        self.window_areas: tuple[float, float] | None = None  # (ready, busy) areas when arrivals ended

    def advance(self, now: float) -> None:
        """Add the counts' areas up to ``now``."""
        dt = now - self.t_last
        if dt > 0:
            self.a_pool += self.n_pool * dt
            self.a_ready += self.n_ready * dt
            self.a_busy += self.n_busy * dt
            self.a_system += self.n_system * dt
            self.a_queue += self.n_queue * dt
            self.t_last = now

    def change(
        self, now: float, *, pool: int = 0, ready: int = 0, busy: int = 0, system: int = 0, queue: int = 0
    ) -> None:
        """Advance to ``now``, then change the counts by the given amounts."""
        self.advance(now)
        self.n_pool += pool
        self.n_ready += ready
        self.n_busy += busy
        self.n_system += system
        self.n_queue += queue

    def close_window(self, now: float) -> None:
        """Arrivals ended: keep the ready and busy areas so far (utilisation is measured up to here)."""
        self.advance(now)
        self.window_areas = (self.a_ready, self.a_busy)


class Model:
    """The simulator's knowledge of every job, and the counters of the run.

    It tracks the truth (every engine reply as it really was, even one a partition kept from its
    worker), which is what the invariants are checked against.
    """

    __slots__ = (
        "adds_in_flight",
        "arrivals_done",
        "arrivals_end",
        "arrived",
        "averages",
        "completed",
        "completions",
        "dead",
        "dropped",
        "duplicate_causes",
        "duplicates",
        "execs",
        "jobs",
        "lost_failover",
        "max_claim_stamp",
        "rate_windows",
        "tokens",
        "unfinished",
    )

    def __init__(self, averages: TimeAverages) -> None:
        self.averages = averages
        self.jobs: dict[str, JobRecord] = {}
        self.unfinished = 0  # jobs added (or found) and not finished
        self.adds_in_flight = 0  # adds sent and not yet acknowledged to the producer
        self.arrived = 0
        self.arrivals_done = False
        self.arrivals_end = 0.0
        self.completed = 0
        self.completions = 0  # completions so far (a policy tick takes the difference)
        self.dead = 0
        self.dropped = 0  # jobs Redis lost in a restart without persistence
        self.duplicates = 0
        self.duplicate_causes: dict[str, int] = {}
        self.max_claim_stamp = 0  # the latest stamp any claim carried
        self.rate_windows: dict[int, int] = {}  # rate-limit window start (ms) -> jobs claimed in it
        self.lost_failover = 0  # acknowledged adds a failover lost
        # Kept only in runs with failovers (see track_executions): every execution of each job, and
        # every token handed out (with its job).
        self.execs: dict[str, list[Exec]] | None = None
        self.tokens: dict[int, str] | None = None

    def track_executions(self) -> None:
        """Keep every execution and token from now on (a failover may bring an old one back)."""
        self.execs, self.tokens = {}, {}

    def executed(self, ex: Exec) -> str | None:
        """Record a new execution; returns the job an earlier execution got the same token for, if one did."""
        if self.execs is None or self.tokens is None:
            return None
        self.execs.setdefault(ex.job.id, []).append(ex)
        before = self.tokens.get(ex.token)
        self.tokens[ex.token] = ex.job.id
        return before

    def enter(self, job: JobRecord, now: float) -> None:
        """A job is known to be in the queue from now on (added, or found claimed)."""
        self.jobs[job.id] = job
        self.averages.change(now, system=1, queue=1)
        self.unfinished += 1

    def unfinish(self, job: JobRecord, now: float) -> None:
        """A failover undid the job's end: it is unfinished again, and was so all along (for Little's law)."""
        assert job.finished is not None
        averages = self.averages
        averages.advance(now)
        averages.a_system += now - job.finished
        averages.change(now, system=1, queue=1 if job.first_start is None else 0)
        if job.first_start is None:
            averages.a_queue += now - job.finished
        if job.status is Status.COMPLETED:
            self.completed -= 1
        elif job.status is Status.DEAD:
            self.dead -= 1
        job.finished = None
        self.unfinished += 1

    def settle(self, job: JobRecord, status: Status, now: float) -> None:
        """A job reached a final state."""
        self.averages.change(now, queue=-1 if job.first_start is None else 0, system=-1)
        job.status = status
        job.exec = None
        job.token = 0
        job.finished = now
        self.unfinished -= 1
        if status is Status.COMPLETED:
            self.completed += 1
            self.completions += 1
        elif status is Status.DEAD:
            self.dead += 1


class WorkerSlots:
    """The pool: ``slots[i]`` is the current incarnation of slot ``i`` (a :class:`Worker`), ``idle``
    the idle ones in the order they went idle, ``target`` the size the pool is steered to, within
    ``bounds`` (min, max)."""

    __slots__ = ("bounds", "idle", "incarnations", "slots", "target")

    def __init__(self, bounds: tuple[int, int]) -> None:
        self.bounds = bounds
        self.slots: list[Worker | None] = []
        self.incarnations: list[int] = []
        self.idle: dict[int, Worker] = {}
        self.target = 0

    def workers(self) -> list[Worker]:
        """Every slot's current incarnation, whatever its state."""
        return [w for w in self.slots if w is not None]

    def running(self) -> list[Worker]:
        """Workers starting or live and not draining: the ones that count toward the target."""
        return [w for w in self.slots if w is not None and w.state in (STARTING, *LIVE) and not w.draining]


class FaultState:
    """The faults in force: whether they have healed, Redis down until when, the slow windows open
    (their latencies) and the call latency they make, and when the last injected fault ends."""

    __slots__ = (
        "clock_faulted",
        "down_until",
        "failovers_awaiting_work",
        "fault_end",
        "heal_time",
        "healed",
        "latency",
        "reconfigure",
        "restarts_awaiting_work",
        "slow",
        "slow_seq",
    )

    def __init__(self, *, clock_faulted: bool) -> None:
        self.healed = False
        self.heal_time: float | None = None
        self.down_until = 0.0  # Redis refuses every call until then
        self.reconfigure = False  # a restart lost the queue's settings: set them again when it is back
        self.fault_end = 0.0  # when the last injected fault is over
        self.slow: dict[int, float] = {}  # open slow windows: sequence number -> latency
        self.slow_seq = 0
        self.latency = 0.0  # what every call takes now (the largest open window's)
        self.clock_faulted = clock_faulted  # clocks may disagree: rate-window checks are excused
        self.restarts_awaiting_work = 0  # restarts after which no job was claimed yet
        self.failovers_awaiting_work = 0  # failovers after which no job was claimed yet

    def until(self, end: float) -> None:
        """A fault lasts until ``end``."""
        self.fault_end = max(self.fault_end, end)

    def down(self, now: float) -> bool:
        """True while Redis is restarting."""
        return self.down_until > now


class ScalingStats:
    """What the scaling part of the report is made of, and what a policy tick measures."""

    __slots__ = (
        "burst_ends",
        "drain_times",
        "heap_seq",
        "last_direction",
        "last_tick",
        "lost_by_scaling",
        "minute_waits",
        "recent_runs",
        "released_by_scaling",
        "reversals",
        "slo_minutes",
        "tick_waits",
        "timeline",
        "waiting_heap",
    )

    def __init__(self) -> None:
        self.reversals = 0  # changes of scaling direction
        self.last_direction = 0
        self.slo_minutes = 0  # minutes whose p95 wait (or oldest waiting job) exceeded the SLO
        self.minute_waits: list[float] = []  # waits of the jobs started this minute
        self.timeline: list[dict[str, float]] = []
        self.waiting_heap: list[tuple[float, int, JobRecord]] = []  # (ready at, seq, job), for the oldest wait
        self.heap_seq = 0
        self.burst_ends: list[float] = []  # ends of bursts whose backlog is not drained yet
        self.drain_times: list[float] = []
        self.released_by_scaling = 0
        self.lost_by_scaling = 0
        self.last_tick = (0.0, 0, 0)  # (time, completions, arrivals) at the last policy tick
        self.tick_waits: list[float] = []  # waits of the jobs started since the last policy tick
        self.recent_runs: deque[tuple[float, float]] = deque()  # (finished at, run time) of recent attempts

    def waiting(self, job: JobRecord) -> None:
        """A job joined the queue (it waits from ``job.ready``)."""
        self.heap_seq += 1
        heapq.heappush(self.waiting_heap, (job.ready, self.heap_seq, job))

    def oldest_wait(self, now: float) -> float:
        """How long the oldest job not started yet has waited."""
        heap = self.waiting_heap
        while heap and (heap[0][2].first_start is not None or heap[0][2].finished is not None):
            heapq.heappop(heap)
        return max(0.0, now - heap[0][0]) if heap else 0.0

    def started(self, wait: float) -> None:
        """A measured job started after waiting ``wait`` seconds."""
        self.minute_waits.append(wait)
        self.tick_waits.append(wait)

    def drained(self, now: float) -> None:
        """The queue is empty: every burst that ended before now has drained."""
        for end in self.burst_ends:
            self.drain_times.append(round(now - end, 6))
        self.burst_ends = []

    def mean_run(self, now: float, window: float) -> float | None:
        """The mean run time of the attempts that finished in the last ``window`` seconds."""
        runs = self.recent_runs
        while runs and runs[0][0] < now - window:
            runs.popleft()
        return math.fsum(r for _, r in runs) / len(runs) if runs else None
