"""When a schedule fires: its ticks (cron in a time zone, or a fixed interval) and which due ticks
one pass fires under the schedule's missed-ticks policy.

Cron expressions are read by croniter; time zones come from :mod:`zoneinfo`. Every tick is a real
instant, in whole milliseconds since the epoch (UTC), so two hosts agree on it whatever their local
time zone. Pure functions of their arguments: no clock is read here.

Daylight saving time, for a cron schedule in a zone that has it (``docs/workflows.md`` tells it with
an example):

* a wall time that does not exist (02:30 on the spring-forward night in Europe/Berlin) fires at
  the first instant after the gap (03:00 summer time), once;
* a wall time that happens twice (02:30 on the fall-back night) fires once, at its first
  occurrence, unless the expression's hour field is ``*``: then both occurrences are ticks of
  their own, so ``*/30 * * * *`` keeps firing every 30 real minutes through the repeated hour.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from jqc.errors import InvalidScheduleError

__all__ = ["ENUMERATION_LIMIT", "MAX_CATCH_UP", "Missed", "Overlap", "Plan", "Timing", "plan", "zone"]

Missed = Literal["once", "all", "skip"]
Overlap = Literal["allow", "skip"]
MISSED: tuple[Missed, ...] = ("once", "all", "skip")
OVERLAP: tuple[Overlap, ...] = ("allow", "skip")

#: The most ticks one ``missed="all"`` pass may fire (``max_catch_up`` is at most this).
MAX_CATCH_UP = 1000
#: Due ticks counted one by one before a pass jumps to the latest (a cron schedule after a long outage).
ENUMERATION_LIMIT = 10_000
MIN_EVERY_MS = 1000


@functools.lru_cache(maxsize=256)
def zone(name: object) -> ZoneInfo:
    """The IANA time zone ``name`` (``"Europe/Berlin"``, ``"UTC"``), or :class:`InvalidScheduleError`."""
    if not isinstance(name, str) or not name or len(name) > 100:
        raise InvalidScheduleError(f"tz must be an IANA time zone name such as 'Europe/Berlin', not {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidScheduleError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from None


def _every_hour(expression: str) -> bool:
    hours = croniter(expression).expanded[1]
    return hours == ["*"] or len(hours) == 24


@dataclass(frozen=True, slots=True)
class Timing:
    """A schedule's ticks: a cron ``expression`` in zone ``tz``, or one every ``every_ms`` from ``start_ms``."""

    expression: str | None
    every_ms: int | None
    tz: str
    start_ms: int

    def check(self) -> None:
        """Raise :class:`InvalidScheduleError` unless this timing has a next tick (checked once, at upsert)."""
        if self.expression is None:
            return
        try:
            _every_hour(self.expression)
        except (CroniterError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise InvalidScheduleError(f"invalid cron expression {self.expression!r}: {exc}") from None
        if next(self.after(self.start_ms), None) is None:
            raise InvalidScheduleError(f"cron expression {self.expression!r} never fires")

    def after(self, ms: int) -> Iterator[int]:
        """The ticks strictly after ``ms``, in order (endless, except for a cron that never matches)."""
        if self.every_ms is not None:
            k = max(0, (ms - self.start_ms) // self.every_ms + 1)
            while True:
                yield self.start_ms + k * self.every_ms
                k += 1
        assert self.expression is not None
        tz = zone(self.tz)
        it = croniter(self.expression, datetime.fromtimestamp(ms / 1000.0, tz))
        both_folds = _every_hour(self.expression)
        last = ms
        while True:
            try:
                when: datetime = it.get_next(datetime)
            except CroniterError:  # no further match (a date that never comes)
                return
            tick = round(when.timestamp() * 1000)
            if tick <= last or (when.fold == 1 and not both_folds and _ambiguous(when)):
                continue
            last = tick
            yield tick

    def latest(self, ms: int) -> int | None:
        """The last tick at or before ``ms`` (None if there is none after the start)."""
        if self.every_ms is not None:
            if ms < self.start_ms + self.every_ms:
                return None
            return self.start_ms + ((ms - self.start_ms) // self.every_ms) * self.every_ms
        assert self.expression is not None
        tz = zone(self.tz)
        it = croniter(self.expression, datetime.fromtimestamp((ms + 1) / 1000.0, tz))
        both_folds = _every_hour(self.expression)
        for _ in range(3):
            try:
                when: datetime = it.get_prev(datetime)
            except CroniterError:
                return None
            if not (when.fold == 1 and not both_folds and _ambiguous(when)):
                return min(ms, round(when.timestamp() * 1000))
        return None

    def next_ticks(self, after_ms: int, count: int) -> list[int]:
        """The first ``count`` ticks after ``after_ms``."""
        out: list[int] = []
        if count <= 0:
            return out
        for tick in self.after(after_ms):
            out.append(tick)
            if len(out) >= count:
                break
        return out


def _ambiguous(when: datetime) -> bool:
    """True when ``when``'s wall time happens twice in its zone (it has another UTC offset with fold=0)."""
    return when.replace(fold=0).utcoffset() != when.utcoffset()


@dataclass(frozen=True, slots=True)
class Plan:
    """What one pass does with a schedule whose next tick is due: the ticks to fire (ascending),
    how many due ticks the missed policy skips, and the schedule's next tick after the pass."""

    fire: tuple[int, ...]
    skipped: int
    next: int | None


def plan(timing: Timing, *, next_tick: int, now: int, missed: Missed, cap: int, grace_ms: int) -> Plan | None:
    """The pass at ``now`` for a schedule whose next tick is ``next_tick`` (None if it is not due).

    The due ticks are ``next_tick`` and every later tick up to ``now``. A tick is *late* when
    ``now`` is more than ``grace_ms`` past it (the drivers were all down, or busy). Then:

    * ``once``: fire the latest due tick only, skip the others;
    * ``all``: fire every due tick, the newest ``cap`` of them when there are more (skip the rest);
    * ``skip``: fire only the ticks that are not late (at most ``cap``), skip the late ones.
    """
    if next_tick > now:
        return None
    due: list[int] = [next_tick]
    following: int | None = None
    counted_all = True
    for tick in timing.after(next_tick):
        if tick > now:
            following = tick
            break
        due.append(tick)
        if len(due) >= ENUMERATION_LIMIT:
            counted_all = False
            break
    total = len(due)
    if not counted_all:
        latest = timing.latest(now)
        if timing.every_ms is not None:
            total = (now - next_tick) // timing.every_ms + 1
        if latest is not None and latest > due[-1]:
            due.append(latest)
            total = max(total, len(due))
        following = next(timing.after(now), None)
    if missed == "once":
        fire = due[-1:]
    elif missed == "all":
        fire = due[-cap:]
    else:
        fire = [t for t in due if now - t <= grace_ms][-cap:]
    return Plan(tuple(fire), total - len(fire), following)
