"""Deduplication of adds: a key that makes later adds of the same work return the job already there.

Three modes, chosen by :class:`Dedup`'s fields:

* **simple** (``Dedup("k")``): while the job added under ``k`` has not finished (waiting, delayed
  or active), later adds with ``k`` create nothing and return it; once it completed or failed (or
  was removed) the key is free again;
* **throttle** (``Dedup("k", ttl=60)``): for ``ttl`` seconds after the add that created the job,
  later adds with ``k`` return it, whether or not it finished meanwhile;
* **debounce** (``Dedup("k", debounce=True)``): while the job has not started (waiting or delayed),
  a later add with ``k`` *replaces* its data and, for a delayed job when that add has a ``delay``,
  restarts its delay from now (a waiting job keeps its place; other options stay the pending
  job's); once it started, the next add creates a new job. Debounce with a delay on every add:
  the job runs ``delay`` after the last add of a burst, with the last add's data.

The add that was deduplicated returns the existing job with ``Job.deduplicated`` set: its id is the
job it was deduplicated against. Keys live in the queue's ``dd`` hash, judged on the caller's clock
(never the server's), one field per key (``Queue.forget_dedup`` releases one by hand).
"""

from __future__ import annotations

from dataclasses import dataclass

from jqc.engine.backoff import MAX_DELAY
from jqc.engine.backoff import number as _number
from jqc.errors import InvalidOptionError

__all__ = ["MAX_DEDUP_KEY", "Dedup"]

MAX_DEDUP_KEY = 200


@dataclass(frozen=True, slots=True, kw_only=False)
class Dedup:
    """A deduplication key and its mode (see :mod:`jqc.engine.dedup`): simple by default, throttle
    with ``ttl`` (seconds), debounce with ``debounce=True``."""

    key: str
    ttl: float | None = None
    debounce: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not 0 < len(self.key) <= MAX_DEDUP_KEY:
            raise InvalidOptionError(f"a dedup key must be a str of 1-{MAX_DEDUP_KEY} characters, not {self.key!r}")
        if not isinstance(self.debounce, bool):
            raise InvalidOptionError(f"debounce must be a bool, not {self.debounce!r}")
        if self.ttl is not None:
            if self.debounce:
                raise InvalidOptionError(
                    "a debounce key lasts while its job is pending: give ttl or debounce, not both"
                )
            _number(self.ttl, "dedup ttl", low=0.001, high=MAX_DELAY)

    @property
    def mode(self) -> str:
        """The one-letter mode add.lua reads: 's' simple, 't' throttle, 'b' debounce."""
        if self.debounce:
            return "b"
        return "s" if self.ttl is None else "t"

    def script_args(self) -> list[str | int]:
        """The three add.lua option-group values: key, ttl in ms ('' if none), mode."""
        return [self.key, "" if self.ttl is None else round(self.ttl * 1000), self.mode]
