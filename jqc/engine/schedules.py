"""Schedules: a job added on every tick of a cron expression or a fixed interval, stored in Redis.

A :class:`Schedule` is what :meth:`jqc.Queue.schedule` upserts and :meth:`jqc.Queue.schedules`
lists: its timing, the job it adds, its policies, and where it stands (next tick, last fire,
counters). The stored record is a hash per schedule (``P:{Q}:sc:<name>``, see ``docs/keys.md``);
this module encodes and decodes it. The ticks themselves are :mod:`jqc.engine.timing`'s.

Each tick's job has the id ``s:<schedule>:<tick in ms>`` (:func:`job_id_for`), so firing one tick
twice finds its job and adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jqc import _json
from jqc.engine.job import Job, JobOptions
from jqc.engine.timing import MAX_CATCH_UP, MIN_EVERY_MS, MISSED, OVERLAP, Missed, Overlap, Timing, zone
from jqc.errors import CorruptJobError, InvalidScheduleError

__all__ = ["Schedule", "ScheduleSpec", "job_id_for", "job_option_fields", "scheduled_tick", "validate_schedule_name"]

SCHEDULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_JOB_ID = re.compile(r"s:([A-Za-z0-9][A-Za-z0-9._-]{0,99}):(\d{1,16})")
MAX_EVERY_MS = 366 * 86400 * 1000


def validate_schedule_name(name: object) -> str:
    """``name`` if it is a valid schedule name (1-100 of A-Z a-z 0-9 . _ -), else :class:`InvalidScheduleError`."""
    if not isinstance(name, str) or not SCHEDULE_NAME.fullmatch(name):
        raise InvalidScheduleError(
            f"invalid schedule name {name!r}: use 1-100 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    return name


def job_id_for(name: str, tick_ms: int) -> str:
    """The id of the job schedule ``name`` adds for the tick at ``tick_ms`` (ms since the epoch)."""
    return f"s:{name}:{tick_ms}"


def scheduled_tick(job: Job | str) -> tuple[str, datetime] | None:
    """(schedule name, tick time as an aware UTC datetime) of a job a schedule added, else None."""
    match = _JOB_ID.fullmatch(job if isinstance(job, str) else job.id)
    if match is None:
        return None
    return match.group(1), datetime.fromtimestamp(int(match.group(2)) / 1000.0, zone("UTC"))


def job_option_fields(opts: JobOptions) -> list[str]:
    """The job-hash fields ``opts`` store (the same as ``add.lua`` writes for them)."""
    fields: list[str] = []
    if opts.priority != 0:
        fields += ["p", str(opts.priority)]
    if opts.lifo:
        fields += ["l", "1"]
    if opts.attempts != 1:
        fields += ["a", str(opts.attempts)]
    extra = opts.extra_json()
    kc, ka = opts.remove_on_complete.encode()
    fc, fa = opts.remove_on_fail.encode()
    for key, value in (("o", extra), ("kc", kc), ("ka", ka), ("fc", fc), ("fa", fa)):
        if value != "":
            fields += [key, value]
    return fields


def _seconds_ms(value: object, what: str, *, low_ms: int, high_ms: int) -> int:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidScheduleError(f"{what} must be a number of seconds or a timedelta, not {value!r}")
    ms = round(value * 1000)
    if not low_ms <= ms <= high_ms:
        raise InvalidScheduleError(
            f"{what} must be between {low_ms / 1000} and {high_ms / 1000} seconds, not {value!r}"
        )
    return ms


def _instant_ms(value: object, what: str) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidScheduleError(f"{what} must be an aware datetime (with a time zone), not {value!r}")
        value = value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidScheduleError(f"{what} must be an aware datetime or seconds since the epoch, not {value!r}")
    return round(value * 1000)


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a schedule is asked to be, validated and encoded as stored (see :meth:`build`)."""

    name: str
    fields: tuple[str, ...]  # the record's spec fields, as pairs
    signature: str
    timing: Timing | None  # None when start is the upsert's time (known only then)
    expression: str | None
    every_ms: int | None
    tz: str
    start_ms: int | None

    @classmethod
    def build(
        cls,
        name: str,
        *,
        cron: str | None,
        every: float | timedelta | None,
        tz: str,
        start: datetime | float | None,
        job: str,
        data_text: str,
        options: JobOptions,
        missed: str,
        max_catch_up: int,
        overlap: str,
        grace: float | timedelta,
    ) -> ScheduleSpec:
        """Validate a schedule's settings (raising :class:`InvalidScheduleError`) and encode them."""
        validate_schedule_name(name)
        if (cron is None) == (every is None):
            raise InvalidScheduleError("a schedule needs exactly one of cron= and every=")
        every_ms = None
        if cron is not None:
            if not isinstance(cron, str) or not cron.strip() or len(cron) > 200:
                raise InvalidScheduleError(f"cron must be a cron expression such as '*/5 * * * *', not {cron!r}")
            cron = " ".join(cron.split())
            zone(tz)
            if start is not None:
                raise InvalidScheduleError("start= anchors an every= schedule; a cron schedule follows its expression")
        else:
            every_ms = _seconds_ms(every, "every", low_ms=MIN_EVERY_MS, high_ms=MAX_EVERY_MS)
            if tz != "UTC":
                raise InvalidScheduleError("tz= applies to cron schedules; an every= schedule counts real time")
        start_ms = None if start is None else _instant_ms(start, "start")
        if options.job_id is not None or options.delay:
            raise InvalidScheduleError("a schedule names its jobs and adds them at their tick: no job_id or delay")
        if missed not in MISSED:
            raise InvalidScheduleError(f"missed must be one of {', '.join(MISSED)}, not {missed!r}")
        if overlap not in OVERLAP:
            raise InvalidScheduleError(f"overlap must be one of {', '.join(OVERLAP)}, not {overlap!r}")
        if isinstance(max_catch_up, bool) or not isinstance(max_catch_up, int) or not 1 <= max_catch_up <= MAX_CATCH_UP:
            raise InvalidScheduleError(
                f"max_catch_up must be an int between 1 and {MAX_CATCH_UP}, not {max_catch_up!r}"
            )
        grace_ms = _seconds_ms(grace, "grace", low_ms=0, high_ms=MAX_EVERY_MS)
        if not isinstance(job, str) or not job or len(job) > 200:
            raise InvalidScheduleError(f"job name must be a non-empty str of at most 200 characters, not {job!r}")
        spec = {
            "c": cron or "", "e": "" if every_ms is None else str(every_ms), "z": tz,
            "st": "" if start_ms is None else str(start_ms), "n": job, "d": data_text,
            "jo": json.dumps(job_option_fields(options), separators=(",", ":"), ensure_ascii=False),
            "m": missed, "mc": str(max_catch_up), "ov": overlap, "g": str(grace_ms),
        }  # fmt: skip
        signature = hashlib.sha1(json.dumps(spec, sort_keys=True).encode("utf-8", "surrogatepass")).hexdigest()
        fields = tuple(item for pair in spec.items() for item in pair)
        timing = Timing(cron, every_ms, tz, start_ms or 0) if start_ms is not None or cron is not None else None
        if timing is not None:
            timing.check()
        return cls(name, fields, signature, timing, cron, every_ms, tz, start_ms)

    def timing_from(self, anchor_ms: int) -> Timing:
        """The timing, an every= schedule without a start anchored at ``anchor_ms``."""
        if self.timing is not None:
            return self.timing
        return Timing(self.expression, self.every_ms, self.tz, anchor_ms)


def _ms_or_none(raw: str | None) -> float | None:
    return None if raw in (None, "") else int(raw) / 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A schedule as stored: what it adds and when, its policies, and where it stands.

    ``cron`` (in zone ``tz``) or ``every`` (seconds, from ``start``) says when it ticks; each tick
    adds job ``job`` with ``data`` and ``options`` under the id ``s:<name>:<tick in ms>``.
    ``missed`` says what a pass does with ticks it finds late (more than ``grace`` seconds past):
    fire ``once`` (the latest), fire ``all`` (at most ``max_catch_up``), or ``skip`` them.
    ``overlap="skip"`` skips a tick while the job of the schedule's previous tick is still
    waiting, delayed or active. Times are seconds since the epoch.

    ``next_at`` is the next tick to fire; ``last_tick`` / ``last_job_id`` the last one fired and its
    job; ``fired``, ``skipped_missed`` and ``skipped_overlap`` count ticks since the schedule was
    created; ``revision`` grows with every change of its settings.
    """

    queue: str
    name: str
    job: str
    data: Any
    options: JobOptions
    cron: str | None
    every: float | None
    tz: str
    start: float | None
    missed: Missed
    max_catch_up: int
    overlap: Overlap
    grace: float
    next_at: float | None
    last_tick: float | None = None
    last_job_id: str | None = None
    last_fired_at: float | None = None
    fired: int = 0
    skipped_missed: int = 0
    skipped_overlap: int = 0
    revision: int = 0
    created_at: float | None = None
    updated_at: float | None = None

    @property
    def timing(self) -> Timing:
        """When it ticks (see :class:`jqc.engine.timing.Timing`)."""
        every_ms = None if self.every is None else round(self.every * 1000)
        return Timing(self.cron, every_ms, self.tz, round((self.start or 0.0) * 1000))

    def next_fires(self, count: int = 5, *, after: float | None = None) -> list[datetime]:
        """The next ``count`` ticks from ``next_at`` (or after ``after``), as datetimes in the schedule's zone."""
        if after is None and self.next_at is None:
            return []
        tz = zone(self.tz)
        if after is None:
            assert self.next_at is not None
            first = round(self.next_at * 1000)
            ticks = [first, *self.timing.next_ticks(first, count - 1)] if count > 0 else []
        else:
            ticks = self.timing.next_ticks(round(after * 1000), count)
        return [datetime.fromtimestamp(t / 1000.0, tz) for t in ticks]

    def job_id(self, tick: float | datetime) -> str:
        """The id of the job this schedule adds for ``tick`` (seconds since the epoch or a datetime)."""
        return job_id_for(self.name, _instant_ms(tick, "tick"))

    @classmethod
    def from_fields(cls, queue: str, name: str, fields: Mapping[str, str]) -> Schedule:
        """Decode a stored schedule record; raise :class:`jqc.CorruptJobError` naming what is wrong."""
        try:
            g = fields.get
            option_fields = json.loads(fields["jo"])
            if not isinstance(option_fields, list):
                raise ValueError("jo is not a list")
            stand_in = dict(zip(option_fields[::2], option_fields[1::2], strict=True))
            stand_in.update(n=fields["n"], d="null", t="0")
            options = Job.from_fields(queue, "-", stand_in).options
            every = g("e") or ""
            return cls(
                queue=queue,
                name=name,
                job=fields["n"],
                data=_json.decode(fields["d"], what=f"schedule {name} data"),
                options=options,
                cron=g("c") or None,
                every=int(every) / 1000.0 if every else None,
                tz=g("z") or "UTC",
                start=_ms_or_none(g("an") or g("st")) if every else None,
                missed=_choice(g("m"), MISSED),
                max_catch_up=int(fields["mc"]),
                overlap=_choice(g("ov"), OVERLAP),
                grace=int(fields["g"]) / 1000.0,
                next_at=_ms_or_none(g("nx")),
                last_tick=_ms_or_none(g("lt")),
                last_job_id=g("lj") or None,
                last_fired_at=_ms_or_none(g("lf")),
                fired=int(g("fc") or 0),
                skipped_missed=int(g("sm") or 0),
                skipped_overlap=int(g("so") or 0),
                revision=int(g("rev") or 0),
                created_at=_ms_or_none(g("ca")),
                updated_at=_ms_or_none(g("ua")),
            )
        except CorruptJobError:
            raise
        except KeyError as exc:
            raise CorruptJobError(f"schedule {name} in queue {queue!r} lacks field {exc.args[0]!r}") from exc
        except (ValueError, TypeError) as exc:
            raise CorruptJobError(f"schedule {name} in queue {queue!r} holds an invalid value: {exc}") from exc


def _choice(raw: str | None, allowed: tuple[Any, ...]) -> Any:
    if raw not in allowed:
        raise ValueError(f"unknown policy {raw!r}")
    return raw
