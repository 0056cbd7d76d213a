"""Every tunable of a worker in one frozen, validated value: :class:`WorkerOptions`.

:class:`jqc.Worker` takes these as keyword arguments (``jqc.Worker(queue, handlers, lock=60)``)
and builds a :class:`WorkerOptions` from them, or takes one whole (``options=WorkerOptions(...)``),
so a caller that starts many workers with the same settings validates them once. All times are
seconds on the queues' clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from jqc.engine.job import Keep
from jqc.engine.liveness import default_stuck_after
from jqc.errors import InvalidOptionError

__all__ = ["MAX_LOCK", "WorkerOptions", "check_count", "check_seconds"]

MAX_LOCK = 24 * 3600.0  # the longest lock a worker takes on a job
_MAX_TIMEOUT = 10 * 365 * 86400.0
_DAY = 86400.0


def check_seconds(value: object, what: str, *, low: float, high: float) -> float:
    """``value`` as float seconds, or :class:`InvalidOptionError` unless it is a number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidOptionError(f"{what} must be a number of seconds between {low} and {high}, not {value!r}")
    return float(value)


def check_count(value: object, what: str, *, low: int = 1, high: int = 100_000) -> int:
    """``value`` as an int, or :class:`InvalidOptionError` unless it is an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidOptionError(f"{what} must be an int between {low} and {high}, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """The tunables of one :class:`jqc.Worker`, checked when built (bad values raise
    :class:`jqc.InvalidOptionError`). Numbers are stored as given, ints as floats for times.

    * ``concurrency``: jobs held at once per queue, for queues given without their own
      (``(queue, n)`` pairs set theirs); 1 to 100,000.
    * ``name``: the worker's name in the registry and in its id (None or "": the host name; cut
      to 150 characters).
    * ``lock``: how long a claim holds a job before stall recovery may take it back (0.01 s to a
      day); renewed while the handler runs.
    * ``renew_interval``: how often held locks are extended; None (or 0, stored as None) means
      ``lock / 3``. At most ``0.9 * lock``. See :attr:`effective_renew_interval`.
    * ``stall_interval``: how often stalled jobs are looked for (by the one worker per queue that
      holds the stall lease), and the longest an idle lane waits before claiming again; None (or 0,
      stored as None) means ``lock / 2``. See :attr:`effective_stall_interval`.
    * ``max_stalls``: how often a job may stall before it fails for good (0 fails it at once).
    * ``timeout``: the handler timeout for jobs that set none (None: no timeout).
    * ``batch``: the most jobs one claim asks for (None: the queue's concurrency; never more). See
      :meth:`lane_batch`.
    * ``grace``: how long :meth:`jqc.Worker.close` lets running jobs finish before handing them back.
    * ``heartbeat``: how often the worker renews its entry in each queue's worker registry; the
      entry lives ``3 * heartbeat`` (see :attr:`heartbeat_ttl`).
    * ``idle_block``: the longest one blocking read of the event stream lasts while idle (real
      time; kept under the connection's read timeout).
    * ``reconnect_delay``: ``(first, cap)``: the backoff after a failed Redis call starts at
      ``first`` and doubles up to ``cap`` (jittered).
    * ``connect_timeout``: how long :meth:`jqc.Worker.start` keeps trying to reach Redis before
      it gives up with :class:`jqc.ConnectionLostError` (None: forever, saying so in the log).
    * ``summary_interval``: how often the worker logs an INFO summary of what it did (done,
      failed, retried, dead-lettered in the interval, jobs held, queue depth); None or 0: never.
    * ``schedule_interval``: the longest a worker goes without looking at its queues' schedules.
      It wakes at the earliest next tick it knows of (so ticks fire on time) and, to notice
      schedules added or changed since, at least this often (five times less often while a queue
      has no schedule); one worker per queue, the holder of
      the ``schedule`` lease (held ``5 * schedule_interval``), fires the due ticks, the others look
      one interval after each tick. None or 0: this worker never drives schedules.
    * ``stuck_after``: how long a queue with a free slot may go without a claim attempt reaching
      the server before the worker counts as not consuming it (see :mod:`jqc.engine.liveness`);
      None: :func:`~jqc.engine.liveness.default_stuck_after` (60 s, or more for long idle waits).
      At least ``stall_interval + heartbeat``, since an idle worker polls every ``stall_interval``.
    * ``health_file``: a path the worker rewrites every ``heartbeat`` with what it is doing, for
      ``jqc worker --probe`` (a Kubernetes liveness probe; see :mod:`jqc.worker.probe`); None: none.
    * ``keep_completed`` / ``keep_failed``: the retention (a :class:`jqc.Keep`) of the jobs this
      worker completes / fails for good, used instead of what each job carries (its add's
      ``remove_on_complete`` / ``remove_on_fail``, by default the queue's ``default_options``);
      None: each job's own.
    """

    concurrency: int = 10
    name: str | None = None
    lock: float = 30.0
    renew_interval: float | None = None
    stall_interval: float | None = None
    max_stalls: int = 1
    timeout: float | None = None
    batch: int | None = None
    grace: float = 30.0
    heartbeat: float = 5.0
    idle_block: float = 2.0
    reconnect_delay: tuple[float, float] = (0.05, 5.0)
    connect_timeout: float | None = None
    summary_interval: float | None = 30.0
    schedule_interval: float | None = 10.0
    stuck_after: float | None = None
    health_file: str | None = None
    keep_completed: Keep | None = None
    keep_failed: Keep | None = None

    def __post_init__(self) -> None:
        lock = check_seconds(self.lock, "lock", low=0.01, high=MAX_LOCK)
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "lock", lock)
        renew = check_seconds(self.renew_interval or lock / 3, "renew_interval", low=0.001, high=lock * 0.9)
        stall = check_seconds(self.stall_interval or lock / 2, "stall_interval", low=0.001, high=_DAY)
        set_(self, "renew_interval", renew if self.renew_interval else None)
        set_(self, "stall_interval", stall if self.stall_interval else None)
        check_count(self.max_stalls, "max_stalls", low=0, high=10**9)
        if self.timeout is not None:
            set_(self, "timeout", check_seconds(self.timeout, "timeout", low=0.001, high=_MAX_TIMEOUT))
        set_(self, "grace", check_seconds(self.grace, "grace", low=0, high=_DAY))
        set_(self, "heartbeat", check_seconds(self.heartbeat, "heartbeat", low=0.001, high=3600))
        set_(self, "idle_block", check_seconds(self.idle_block, "idle_block", low=0.001, high=3600))
        first, cap = self.reconnect_delay
        check_seconds(first, "reconnect_delay[0]", low=0.001, high=3600)
        check_seconds(cap, "reconnect_delay[1]", low=first, high=3600)
        set_(self, "reconnect_delay", (first, cap))
        if self.connect_timeout is not None:
            set_(self, "connect_timeout", check_seconds(self.connect_timeout, "connect_timeout", low=0, high=_DAY))
        summary = self.summary_interval or None
        if summary is not None:
            summary = check_seconds(summary, "summary_interval", low=0.001, high=_DAY)
        set_(self, "summary_interval", summary)
        schedules = self.schedule_interval or None
        if schedules is not None:
            schedules = check_seconds(schedules, "schedule_interval", low=0.001, high=3600)
        set_(self, "schedule_interval", schedules)
        if self.stuck_after is not None:
            low = stall + self.heartbeat
            what = "stuck_after (stall_interval + heartbeat at least)"
            set_(self, "stuck_after", check_seconds(self.stuck_after, what, low=low, high=max(low, _DAY)))
        if self.health_file is not None and (not isinstance(self.health_file, str) or not self.health_file):
            raise InvalidOptionError(f"health_file must be a non-empty path, not {self.health_file!r}")
        for label in ("keep_completed", "keep_failed"):
            if getattr(self, label) is not None and not isinstance(getattr(self, label), Keep):
                raise InvalidOptionError(f"{label} must be a jqc.Keep, not {getattr(self, label)!r}")
        check_count(self.concurrency, "concurrency")
        if self.batch is not None:
            check_count(self.batch, "batch", high=10_000)
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidOptionError(f"worker name must be a non-empty str, not {self.name!r}")

    @property
    def effective_renew_interval(self) -> float:
        """Seconds between lock renewals: ``renew_interval``, or ``lock / 3`` when unset."""
        return self.renew_interval or self.lock / 3

    @property
    def effective_stall_interval(self) -> float:
        """Seconds between stall checks (and the longest idle wait): ``stall_interval``, or ``lock / 2``."""
        return self.stall_interval or self.lock / 2

    @property
    def effective_stuck_after(self) -> float:
        """Seconds without a poll, a slot free, before the worker counts as not consuming."""
        return self.stuck_after or default_stuck_after(self.effective_stall_interval, self.heartbeat)

    @property
    def heartbeat_ttl(self) -> float:
        """How long the worker's registry entry lives without a heartbeat: three missed beats."""
        return 3 * self.heartbeat

    def lane_batch(self, concurrency: int) -> int:
        """The most jobs one claim asks for on a queue worked with ``concurrency`` slots."""
        return min(self.batch if self.batch is not None else concurrency, concurrency)
