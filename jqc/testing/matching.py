"""The criteria of ``assert_enqueued`` and friends: each means one thing, checked once, with a reason per miss.

Each criterion is optional; a job matches when it meets every one given:

* ``job_id``: the job's id (a ``str``, or a :class:`jqc.Job` for its id);
* ``name``: the job's name;
* ``data``: a subset of the job's data: a dict matches when each of its keys is in the job's data
  with a matching value (recursively); anything else compares with ``==``, so
  ``unittest.mock.ANY`` and ``pytest.approx`` work inside it;
* ``state``: where the job is (a :class:`jqc.JobState` or its name, or a collection of them); it
  also says where to look: the default is waiting and delayed, "enqueued";
* ``delay``: the seconds until the job can run, from *now* on the queue's clock: 0 for a job that
  can run now, the rest of its delay or backoff for a delayed one (a number or a ``timedelta``);
* ``due_at``: the clock time from which the job can run (seconds since the epoch, or an aware
  ``datetime``); ``delay`` and ``due_at`` compare within ``tolerance`` seconds;
* ``priority``, ``attempts``, ``timeout``, ``backoff``: the job options of those names, as given to
  ``add`` (``priority`` 0 runs first, then 1, 2, ...; ``attempts`` is how many it may make);
* ``attempts_made``: :attr:`jqc.Job.attempts_made`, the attempts that ended so far: the failed
  ones, plus the one that completed it (0 for a job that has not finished an attempt);
* ``meta``: a subset of the job's ``meta``, like ``data``;
* ``where``: a callable given the :class:`jqc.Job`, true for a match.

Criteria named after ``add``'s options mean what they mean there: a job added with ``delay=60``
now has ``delay=60`` now, and 0 a minute later, when it can run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jqc.engine.job import Backoff, Job, JobState
from jqc.errors import InvalidOptionError

__all__ = ["DEFAULT_STATES", "UNSET", "Criteria", "count_of", "criteria", "data_mismatch", "delay_of", "secs", "short"]

DEFAULT_STATES = (JobState.WAITING, JobState.DELAYED)
UNSET: Any = object()  # a criterion not given
_STATE_NAMES = ", ".join(repr(s.value) for s in JobState)
_NUMERIC = ("priority", "attempts", "attempts_made", "timeout")
_ORDER = ("job_id", "name", "data", "state", "delay", "due_at", "priority", "attempts", "attempts_made",
          "timeout", "backoff", "meta", "where")  # fmt: skip
_HINTS = {
    "id": "job_id",
    "attempt": "attempts_made (attempts ended so far) or attempts (the option)",
    "states": "state",
    "queue": "a list of queues (or a jqc.Connection for all of them) as the first argument",
    "args": "data",
    "kwargs": "data",
    "scheduled_at": "due_at",
    "eta": "due_at",
    "countdown": "delay",
}


def short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def secs(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def data_mismatch(expected: Any, actual: Any, path: str) -> str | None:
    """Why ``expected`` is not contained in ``actual`` (None when it is)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{path} is {short(actual)}, not a mapping"
        for key, value in expected.items():
            if key not in actual:
                return f"{path} has no key {key!r}"
            why = data_mismatch(value, actual[key], f"{path}[{key!r}]")
            if why:
                return why
        return None
    return None if expected == actual else f"{path} is {short(actual)}, not {short(expected)}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _matcher(value: object, what: str, allowed: str) -> Any:
    """A value compared with ``==`` (ANY, pytest.approx...); plain values of the wrong kind are refused."""
    if isinstance(value, (str, bytes, bool, Mapping, list, tuple, set)) or value is None:
        raise InvalidOptionError(f"{what} must be {allowed}, not {value!r}")
    return value


def _seconds(value: object, what: str) -> Any:
    if isinstance(value, timedelta) and what == "delay":
        value = value.total_seconds()
    if isinstance(value, datetime) and what == "due_at":
        if value.tzinfo is None:
            raise InvalidOptionError(f"due_at needs an aware datetime (tzinfo=UTC), not the naive {value!r}")
        value = value.timestamp()
    if _is_number(value):
        if what == "delay" and value < 0:  # type: ignore[operator]
            raise InvalidOptionError(f"delay is the seconds until a job can run, >= 0, not {value!r}")
        return float(value)  # type: ignore[arg-type]
    kind = "a number of seconds or a timedelta" if what == "delay" else "a clock time or an aware datetime"
    return _matcher(value, what, kind)


def _states(value: object) -> tuple[JobState, ...]:
    items: Iterable[object] = [value] if isinstance(value, (str, JobState)) else value  # type: ignore[assignment]
    if not isinstance(items, Iterable):
        raise InvalidOptionError(f"state must be a jqc.JobState, its name, or a list of them, not {value!r}")
    found: list[JobState] = []
    for item in items:
        if isinstance(item, JobState):
            found.append(item)
            continue
        if item in ("dead", "dead_lettered", "dead-lettered"):
            raise InvalidOptionError(
                "a job that failed for good is in state 'failed' (its dead letter is a copy, listed by "
                "Queue.dead_letters()): use state='failed'"
            )
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            found.append(JobState(item))
        except ValueError:
            raise InvalidOptionError(f"unknown job state {item!r}: use one of {_STATE_NAMES}") from None
    if not found:
        raise InvalidOptionError("state= names no state")
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Criteria:
    """What a job must be to match: the criteria given (by name), where to look, and the tolerance."""

    given: Mapping[str, Any]
    states: tuple[JobState, ...]
    tolerance: float

    def reasons(self, job: Job, now: float) -> list[str]:
        """Why ``job`` does not match, one reason per criterion it misses (empty when it matches)."""
        why: list[str] = []
        opts = job.options
        for key, expected in self.given.items():
            if key == "job_id" and job.id != expected:
                why.append(f"id is {job.id!r}")
            elif key == "name" and job.name != expected:
                why.append(f"name is {job.name!r}")
            elif key == "data":
                miss = data_mismatch(expected, job.data, "data")
                if miss:
                    why.append(miss)
            elif key == "state" and job.state not in self.states:
                why.append(f"state is {job.state.value!r}")
            elif key == "delay" and not self._close(delay_of(job, now), expected):
                why.append(f"delay is {secs(delay_of(job, now))}, not {_shown(expected)}")
            elif key == "due_at" and not self._close(job.ready_at, expected):
                why.append(f"due_at is {job.ready_at!r}, not {_shown(expected, seconds=False)}")
            elif key in ("priority", "attempts", "timeout", "backoff") and getattr(opts, key) != expected:
                why.append(f"{key} is {getattr(opts, key)!r}, not {expected!r}")
            elif key == "attempts_made" and job.attempts_made != expected:
                why.append(f"attempts_made is {job.attempts_made}, not {expected!r}")
            elif key == "meta":
                miss = data_mismatch(expected, dict(opts.meta or {}), "meta")
                if miss:
                    why.append(miss)
            elif key == "where" and not expected(job):
                why.append(f"where={getattr(expected, '__name__', 'predicate')} is false")
        return why

    def _close(self, actual: float, expected: Any) -> bool:
        if isinstance(expected, float):
            return abs(actual - expected) <= self.tolerance
        return bool(actual == expected)

    def describe(self) -> str:
        shown = [f"{k}={v!r}" for k, v in self.given.items() if k not in ("state", "where")]
        if "state" in self.given:
            shown.append("state=" + "/".join(s.value for s in self.states))
        if "where" in self.given:
            shown.append(f"where={getattr(self.given['where'], '__name__', 'predicate')}")
        return ", ".join(shown) or "anything"

    def extra_fields(self, job: Job, now: float) -> str:
        """The fields of ``job`` that the criteria name beyond a listing's usual ones, as text."""
        parts = []
        for key in ("attempts", "attempts_made", "timeout", "backoff", "meta"):
            if key in self.given:
                value = job.attempts_made if key == "attempts_made" else getattr(job.options, key)
                parts.append(f"{key}={value!r}")
        if "due_at" in self.given:
            parts.append(f"due_at={job.ready_at!r}")
        return "".join(" " + part for part in parts)


def _shown(expected: Any, *, seconds: bool = True) -> str:
    if isinstance(expected, float):
        return secs(expected) if seconds else repr(expected)
    return repr(expected)


def delay_of(job: Job, now: float) -> float:
    """Seconds until ``job`` can run, from ``now``: 0 when it can run now."""
    return max(0.0, job.ready_at - now)


def criteria(
    *,
    tolerance: object = 0.001,
    state: object = None,
    unknown: Mapping[str, object] | None = None,
    **given: Any,
) -> Criteria:
    """Check the criteria given (those left as ``UNSET`` are dropped); raise :class:`InvalidOptionError`."""
    if unknown:
        hints = [f"{k}= (did you mean {_HINTS[k]}?)" if k in _HINTS else f"{k}=" for k in sorted(unknown)]
        raise InvalidOptionError(f"unknown criteria: {', '.join(hints)}; known: {', '.join(_ORDER)}, count, tolerance")
    if not _is_number(tolerance) or tolerance < 0:  # type: ignore[operator]
        raise InvalidOptionError(f"tolerance must be a number of seconds >= 0, not {tolerance!r}")
    checked: dict[str, Any] = {}
    for key in _ORDER:
        if key == "state":
            if state is not None:
                checked["state"] = state
            continue
        value = given.get(key, UNSET)
        if value is UNSET:
            continue
        if key == "job_id":
            value = value.id if isinstance(value, Job) else value
            if not isinstance(value, str):
                raise InvalidOptionError(f"job_id must be a str or a jqc.Job, not {value!r}")
        elif key in ("delay", "due_at"):
            value = _seconds(value, key)
        elif key in _NUMERIC and not _is_number(value):
            allowed = "an int" if key != "timeout" else "a number of seconds (or None)"
            if not (key == "timeout" and value is None):
                value = _matcher(value, key, allowed)
        elif key == "backoff" and value is not None and not isinstance(value, Backoff):
            value = _matcher(value, key, "a jqc.Backoff (or None)")
        elif key == "meta" and not isinstance(value, Mapping):
            raise InvalidOptionError(f"meta must be a mapping (a subset of the job's meta), not {value!r}")
        elif key == "where" and not callable(value):
            raise InvalidOptionError(f"where must be a callable taking a jqc.Job, not {value!r}")
        checked[key] = value
    states = DEFAULT_STATES if state is None else _states(state)
    return Criteria(given=checked, states=states, tolerance=float(tolerance))  # type: ignore[arg-type]


def count_of(value: object) -> int | None:
    """``count=`` checked: None (at least one) or an int >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOptionError(f"count must be an int >= 0 (or None for at least one), not {value!r}")
    return value
