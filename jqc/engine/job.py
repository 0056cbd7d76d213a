"""Jobs and their options: frozen, keyword-only dataclasses, validated on construction.

(:class:`Backoff` lives in :mod:`jqc.engine.backoff` and is re-exported here.)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jqc import _json
from jqc.engine.backoff import MAX_DELAY, Backoff, BackoffFunction
from jqc.engine.backoff import number as _number
from jqc.engine.dedup import Dedup
from jqc.engine.failures import FailureCode
from jqc.engine.flow_records import ChildOutcome, children_of, parent_of
from jqc.engine.keys import validate_job_id
from jqc.errors import CorruptJobError, InvalidOptionError

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_DELAY",
    "MAX_PRIORITY",
    "Backoff",
    "BackoffFunction",
    "ClaimedJob",
    "DeadLetter",
    "Dedup",
    "Job",
    "JobOptions",
    "JobState",
    "Keep",
    "NewJob",
]

MAX_PRIORITY = 2**21 - 1
MAX_ATTEMPTS = 1_000_000
MAX_META = 32  # entries of JobOptions.meta
MAX_META_KEY = 100
MAX_META_VALUE = 8192  # characters: room for W3C baggage (8192 bytes at most)


class JobState(enum.StrEnum):
    """Where a job is. A job is in exactly one state at any instant."""

    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING_CHILDREN = "waiting-children"
    """A flow parent (or a node of a flow being created) waiting until its children are done."""

    @classmethod
    def from_code(cls, code: str) -> JobState:
        """The state stored under the one-letter ``code`` (raises CorruptJobError for an unknown one)."""
        try:
            return _STATE_CODES[code]
        except KeyError:
            raise CorruptJobError(f"unknown job state code {code!r}") from None


_STATE_CODES = {
    "w": JobState.WAITING,
    "d": JobState.DELAYED,
    "a": JobState.ACTIVE,
    "c": JobState.COMPLETED,
    "f": JobState.FAILED,
    "p": JobState.WAITING_CHILDREN,
}


def _integer(value: object, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise InvalidOptionError(f"{name} must be between {low} and {high}, not {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Keep:
    """Which finished jobs to keep: at most ``count`` newest and none older than ``age`` seconds.

    ``Keep()`` keeps all, ``Keep.none()`` deletes a job as soon as it finishes.
    """

    count: int | None = None
    age: float | None = None

    def __post_init__(self) -> None:
        if self.count is not None:
            _integer(self.count, "Keep.count", low=0, high=2**40)
        if self.age is not None:
            _number(self.age, "Keep.age", low=0, high=MAX_DELAY)

    @classmethod
    def all(cls) -> Keep:
        """Keep every finished job (the default)."""
        return cls()

    @classmethod
    def none(cls) -> Keep:
        """Delete the job as soon as it finishes."""
        return cls(count=0)

    @classmethod
    def last(cls, count: int) -> Keep:
        """Keep the newest ``count`` finished jobs of the queue (older ones are trimmed as new ones finish)."""
        return cls(count=count)

    @classmethod
    def younger_than(cls, seconds: float) -> Keep:
        """Keep finished jobs for ``seconds`` after they finished (trimmed as new ones finish)."""
        return cls(age=seconds)

    def encode(self) -> tuple[str, str]:
        """(count, age in ms) as script arguments; '' means unlimited."""
        count = "" if self.count is None else str(self.count)
        age = "" if self.age is None else str(int(self.age * 1000))
        return count, age


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """Options of one job. All times are seconds.

    ``priority``: lower runs first, from ``-MAX_PRIORITY`` to ``MAX_PRIORITY``; the default 0 runs
    before every positive priority and after every negative one (negative = more urgent than the
    default), FIFO within one priority (LIFO if ``lifo``). ``attempts``: how many failed attempts
    the job may have in all (the first run included) before it fails for good; a run that
    completes or stalls uses none (stalls have their own budget, the queue's ``max_stalls``).
    ``timeout`` is enforced by the worker. ``meta``: a few string pairs carried with the job for
    whoever runs it, such as a W3C ``traceparent`` from the producer (see
    :mod:`jqc.worker.tracing`); jqc itself does not read them. ``dedup``: a :class:`Dedup` key that
    makes later adds of the same work return this job instead of creating another (see
    :mod:`jqc.engine.dedup`); it applies when adding and is not stored with the job.
    """

    job_id: str | None = None
    delay: float = 0.0
    priority: int = 0
    lifo: bool = False
    attempts: int = 1
    backoff: Backoff | None = None
    timeout: float | None = None
    remove_on_complete: Keep = field(default_factory=Keep)
    remove_on_fail: Keep = field(default_factory=Keep)
    meta: Mapping[str, str] | None = field(default=None, hash=False)
    dedup: Dedup | None = None

    def __post_init__(self) -> None:
        if self.job_id is not None:
            validate_job_id(self.job_id)
        _number(self.delay, "delay", low=0, high=MAX_DELAY)
        _integer(self.priority, "priority", low=-MAX_PRIORITY, high=MAX_PRIORITY)
        if not isinstance(self.lifo, bool):
            raise InvalidOptionError(f"lifo must be a bool, not {self.lifo!r}")
        _integer(self.attempts, "attempts", low=1, high=MAX_ATTEMPTS)
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise InvalidOptionError(f"backoff must be a jqc.Backoff, not {self.backoff!r}")
        if self.timeout is not None:
            _number(self.timeout, "timeout", low=0.001, high=MAX_DELAY)
        for name in ("remove_on_complete", "remove_on_fail"):
            if not isinstance(getattr(self, name), Keep):
                raise InvalidOptionError(f"{name} must be a jqc.Keep, not {getattr(self, name)!r}")
        if self.meta is not None:
            object.__setattr__(self, "meta", _meta(self.meta))
        if self.dedup is not None and not isinstance(self.dedup, Dedup):
            raise InvalidOptionError(f"dedup must be a jqc.Dedup, not {self.dedup!r}")

    def extra_json(self) -> str:
        """Options only Python reads (backoff, timeout, meta), as stored JSON ('' when none)."""
        extra: dict[str, Any] = {}
        if self.backoff is not None:
            extra["backoff"] = self.backoff.to_json()
        if self.timeout is not None:
            extra["timeout"] = self.timeout
        if self.meta:
            extra["meta"] = dict(self.meta)
        return _json.encode(extra, what="options") if extra else ""


def _meta(value: object) -> Mapping[str, str] | None:
    """A copy of ``value`` if it is a small mapping of str to str (None when empty)."""
    if not isinstance(value, Mapping):
        raise InvalidOptionError(f"meta must be a mapping of str to str, not {type(value).__name__} {value!r}")
    if len(value) > MAX_META:
        raise InvalidOptionError(f"meta holds at most {MAX_META} entries, not {len(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_META_KEY:
            raise InvalidOptionError(f"meta keys must be str of 1-{MAX_META_KEY} characters, not {key!r}")
        if not isinstance(item, str) or len(item) > MAX_META_VALUE:
            raise InvalidOptionError(f"meta[{key!r}] must be a str of at most {MAX_META_VALUE} characters")
    return dict(value) if value else None


def _ms(fields: Mapping[str, str], key: str) -> float | None:
    raw = fields.get(key)
    return None if raw is None else int(raw) / 1000.0


def _keep(fields: Mapping[str, str], count_key: str, age_key: str) -> Keep:
    count, age = fields.get(count_key), fields.get(age_key)
    return Keep(count=None if count is None else int(count), age=None if age is None else int(age) / 1000.0)


# Decoded options by their stored fields: the jobs of a queue mostly share a few sets of options,
# and a JobOptions is immutable, so claiming a job need not validate its options anew each time.
_OPTIONS: dict[tuple[str | None, ...], JobOptions] = {}
_OPTIONS_MAX = 1024


def _stored_options(job_id: str, fields: Mapping[str, str]) -> JobOptions:
    g = fields.get
    key = (g("p"), g("l"), g("a"), g("o"), g("kc"), g("ka"), g("fc"), g("fa"))
    options = _OPTIONS.get(key)
    if options is not None:
        return options
    extra = _json.decode(fields["o"], what=f"job {job_id} options") if "o" in fields else {}
    backoff = Backoff.from_json(extra["backoff"]) if "backoff" in extra else None
    options = JobOptions(
        job_id=None,
        delay=0.0,
        priority=int(fields.get("p", 0)),
        lifo=fields.get("l") == "1",
        attempts=int(fields.get("a", 1)),
        backoff=backoff,
        timeout=extra.get("timeout"),
        remove_on_complete=_keep(fields, "kc", "ka"),
        remove_on_fail=_keep(fields, "fc", "fa"),
        meta=extra.get("meta"),
    )
    if options.meta is not None:
        return options  # meta is mostly per job (a trace context): caching it would only evict the rest
    if len(_OPTIONS) >= _OPTIONS_MAX:
        _OPTIONS.clear()
    _OPTIONS[key] = options
    return options


class _Bound:
    """Room for the queue object that returned a job (for :meth:`Job.wait`): a slot, not a field,
    so it is never compared, printed, or copied by ``dataclasses.replace`` or ``asdict``."""

    __slots__ = ("_source",)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job(_Bound):
    """A snapshot of one job as stored in Redis.

    ``options`` says how the job runs. The add-time options live in the job itself (``id``,
    ``ready_at``). The job that ``add`` returns keeps them in ``options`` too, as stored:
    ``job_id`` as given (None for an automatic id: see ``id``), ``delay`` rounded to whole ms. A
    job read back from Redis (``get_job``, listings, claims) carries None and 0 there.

    Counting, the same everywhere (API, ``jqc job``, dead letters, docs):

    * ``runs``: times a worker claimed the job; every run counts, whatever its end (completed,
      failed, stalled, handed back, or still running);
    * ``failed_attempts``: runs that ended in a reported failure (an error, a timeout, ``Retry``,
      ``Fail``); ``options.attempts`` bounds them;
    * ``attempts_left``: failures the job may still have before it fails for good;
    * ``attempts_made``: attempts that ended in an outcome: the failed ones, plus the one that
      completed the job (so 1 after a successful first run, as in BullMQ). A run that stalled or
      was handed back is a run but not an attempt made.

    ``stall_count`` counts runs whose lock expired (its budget is the queue's ``max_stalls``);
    ``failure_reason`` is the last failure's message and ``failure_code`` its stable code.
    A flow member (``docs/workflows.md``) knows its ``parent`` (queue, id), a flow parent its
    ``children`` with their outcomes.
    ``cancel_reason`` is set while an active job is marked by ``Queue.cancel`` (None otherwise).
    ``deduplicated`` is True on the job an add returned without creating one (its ``Dedup`` key,
    or its ``job_id``, was taken): this is the job it was deduplicated against, as stored.
    """

    queue: str
    id: str
    name: str
    data: Any
    state: JobState
    options: JobOptions
    created_at: float
    ready_at: float
    started_at: float | None = None
    finished_at: float | None = None
    runs: int = 0
    failed_attempts: int = 0
    stall_count: int = 0
    retried: int = 0
    replayed: int = 0
    result: Any = None
    failure_reason: str | None = None
    failure_code: FailureCode | None = None
    traceback: str | None = None
    progress: Any = None
    worker: str | None = None
    parent: tuple[str, str] | None = None
    children: tuple[ChildOutcome, ...] = ()
    cancel_reason: str | None = None
    deduplicated: bool = field(default=False, compare=False)

    def wait(self, timeout: float | None = None) -> Any:
        """Wait until this job finishes: its result, or :class:`jqc.JobFailedError` carrying the
        failure, or :class:`jqc.WaitTimeoutError` after ``timeout`` seconds of the queue's clock
        (None: no limit). The same as ``queue.wait_for(job.id, timeout)`` on the queue that
        returned this job (``add``, ``add_bulk``, ``get_job``): from a :class:`jqc.Queue` it
        blocks, from a :class:`jqc.AsyncQueue` it returns an awaitable (``await job.wait(5)``).
        """
        source = getattr(self, "_source", None)
        if source is None:
            raise InvalidOptionError(
                f"job {self.id} was not returned by a queue (add, add_bulk, get_job): use queue.wait_for(job_id)"
            )
        return source.wait_for(self.id, timeout)

    @property
    def attempts_left(self) -> int:
        """Failed attempts the job may still have before it fails for good (0 once it has)."""
        if self.state is JobState.FAILED:
            return 0
        return max(0, self.options.attempts - self.failed_attempts)

    @property
    def attempts_made(self) -> int:
        """Attempts that ended in an outcome: :attr:`failed_attempts`, plus 1 once the job
        completed (1 after a successful first run). Stalled and handed-back runs are counted in
        :attr:`runs` only."""
        return self.failed_attempts + (1 if self.state is JobState.COMPLETED else 0)

    @classmethod
    def from_fields(cls, queue: str, job_id: str, fields: Mapping[str, str]) -> Job:
        """Decode a job hash; raise :class:`CorruptJobError` naming what is wrong."""
        try:
            options = _stored_options(job_id, fields)
            created = int(fields["t"]) / 1000.0
            return cls(
                queue=queue,
                id=job_id,
                name=fields["n"],
                data=_json.decode(fields["d"], what=f"job {job_id} data"),
                state=JobState.from_code(fields.get("s", "w")),
                options=options,
                created_at=created,
                ready_at=_ms(fields, "r") or created,
                started_at=_ms(fields, "ps"),
                finished_at=_ms(fields, "fo"),
                runs=int(fields.get("rn", 0)),
                failed_attempts=int(fields.get("am", 0)),
                stall_count=int(fields.get("sc", 0)),
                retried=int(fields.get("rt", 0)),
                replayed=int(fields.get("rp", 0)),
                result=_json.decode(fields["rv"], what=f"job {job_id} result") if "rv" in fields else None,
                failure_reason=fields.get("fr"),
                failure_code=FailureCode(fields["fk"]) if "fk" in fields else None,
                traceback=fields.get("tb") or None,
                progress=_json.decode(fields["pg"], what=f"job {job_id} progress") if "pg" in fields else None,
                worker=fields.get("w"),
                parent=parent_of(fields),
                children=children_of(fields),
                cancel_reason=fields.get("cx"),
            )
        except CorruptJobError:
            raise
        except KeyError as exc:
            raise CorruptJobError(f"job {job_id} in queue {queue!r} lacks field {exc.args[0]!r}") from exc
        except (ValueError, TypeError, InvalidOptionError) as exc:
            raise CorruptJobError(f"job {job_id} in queue {queue!r} holds an invalid value: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedJob:
    """A job handed to one worker: valid while ``token`` is the job's current fencing token."""

    job: Job
    token: int
    lock_until: float

    @property
    def id(self) -> str:
        """The held job's id."""
        return self.job.id


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """The record kept of a job that failed for good: the job as it was then (its counters,
    ``failure_reason`` and ``failure_code`` included), when, and its last worker."""

    job: Job
    dead_at: float
    worker: str | None

    @property
    def reason(self) -> str | None:
        """Why it failed, in words (the job's last failure message)."""
        return self.job.failure_reason

    @property
    def code(self) -> FailureCode | None:
        """Why it failed, as a stable code (None for records written before jqc kept codes)."""
        return self.job.failure_code


@dataclass(frozen=True, slots=True)
class NewJob:
    """One job to add in :meth:`Queue.add_bulk`."""

    name: str
    data: Any = None
    options: JobOptions | None = None
