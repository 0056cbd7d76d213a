"""Scheduling: upsert, read, list and remove schedules, and fire their due ticks (sans-IO calls).

A schedule lives in two keys of its queue: its record ``P:{Q}:sc:<name>`` (a hash: settings and
state) and its entry in ``P:{Q}:schedules`` (a sorted set scored by the next tick, in ms), which
lets a driver find the due schedules with one range read. Every write is one script with every key
it touches declared (``schedule_set``, ``schedule_fire``, ``schedule_remove``).

Exactly once per tick: :meth:`Scheduling.fire` sends the state the caller read (revision, next
tick, last job); the script applies the pass only if the record still says so, and adds each
tick's job under the deterministic id ``s:<schedule>:<tick ms>`` only if no job has it yet. Two
drivers racing, a driver that crashed between its read and its write, or a clock that jumped back
change nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from jqc import _json
from jqc.clock import now_ms
from jqc.engine.arguments import positive_int
from jqc.engine.calls import CommandCall, Op, Reply, ScriptCall, checked
from jqc.engine.job import JobOptions
from jqc.engine.ops_producing import OptionArgs, Producing
from jqc.engine.replies import as_int, as_list, as_strs, pairs
from jqc.engine.schedules import Schedule, ScheduleSpec, job_id_for, validate_schedule_name
from jqc.engine.timing import Plan
from jqc.errors import InvalidScheduleError, ScriptReplyError

__all__ = ["FireResult", "ScheduleArgs", "Scheduling", "StoredSchedule"]

T = TypeVar("T")
_UPSERT_TRIES = 8


class ScheduleArgs(OptionArgs, total=False):
    """Keyword settings of ``Queue.schedule``: the schedule's own, then overrides of its jobs' options."""

    cron: str | None
    every: float | timedelta | None
    tz: str
    start: datetime | float | None
    job: str | None
    data: Any
    missed: str
    max_catch_up: int
    overlap: str
    grace: float | timedelta


_OPTION_NAMES = frozenset(OptionArgs.__annotations__)
_SETTING_NAMES = frozenset(ScheduleArgs.__annotations__) - _OPTION_NAMES


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A schedule as read (decoded) and the raw record it came from (what a fire compares)."""

    schedule: Schedule
    fields: Mapping[str, str]

    @property
    def next_tick(self) -> int | None:
        """The stored next tick in ms (None: it never fires again)."""
        raw = self.fields.get("nx")
        return int(raw) if raw else None


@dataclass(frozen=True, slots=True)
class FireResult:
    """What one fire did: ``applied`` is False when the schedule was gone or had moved on since it
    was read (another driver fired it, or it was changed or removed): then nothing was written.
    ``fired`` are the ids of the jobs added; ``skipped_overlap`` ticks skipped while the previous
    run was unfinished; ``repeated`` ticks whose job existed already."""

    schedule: str
    applied: bool
    fired: tuple[str, ...] = ()
    skipped_missed: int = 0
    skipped_overlap: int = 0
    repeated: int = 0
    next_tick: int | None = None


class Scheduling(Producing):
    """The schedule operations of one queue."""

    def upsert_schedule(self, name: str, options: JobOptions | None, settings: Mapping[str, Any]) -> Op[Schedule]:
        """:meth:`schedule` from ``Queue.schedule``'s keywords: schedule settings and job option overrides."""
        unknown = set(settings) - _SETTING_NAMES - _OPTION_NAMES
        if unknown:
            raise InvalidScheduleError(
                f"unknown schedule setting(s) {sorted(unknown)}; known: {', '.join(sorted(_SETTING_NAMES))} "
                "and the job options"
            )
        overrides: Any = {k: v for k, v in settings.items() if k in _OPTION_NAMES}
        own = {k: v for k, v in settings.items() if k in _SETTING_NAMES}
        return self.schedule(name, options=self.options(options, overrides), **own)

    @property
    def schedules_key(self) -> str:
        """The sorted set of the queue's schedules, scored by next tick (ms)."""
        return self.keys.key("schedules")

    def schedule_key(self, name: str) -> str:
        """The record (hash) of schedule ``name``."""
        return self.keys.key("sc:" + name)

    def _script(self, script: str, keys: tuple[str, ...], *args: str | int, parse: Any, now: int) -> ScriptCall[Any]:
        return ScriptCall(script, keys, (now, self.events_max_len, *args), parse)

    def _read(self, name: str) -> CommandCall[dict[str, str]]:
        return CommandCall(("HGETALL", self.schedule_key(name)), pairs)

    def schedule(
        self,
        name: str,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        tz: str = "UTC",
        start: datetime | float | None = None,
        job: str | None = None,
        data: Any = None,
        options: JobOptions | None = None,
        missed: str = "once",
        max_catch_up: int = 100,
        overlap: str = "allow",
        grace: float | timedelta = 60.0,
    ) -> Op[Schedule]:
        """Create schedule ``name``, or change it if its settings differ (an unchanged upsert writes
        nothing and keeps its next tick); see :meth:`jqc.Queue.schedule`."""
        text = _json.encode(data, what="data", max_bytes=self.max_data_bytes)
        spec = ScheduleSpec.build(
            name, cron=cron, every=every, tz=tz, start=start, job=name if job is None else job, data_text=text,
            options=options if options is not None else JobOptions(), missed=missed, max_catch_up=max_catch_up,
            overlap=overlap, grace=grace,
        )  # fmt: skip
        for _ in range(_UPSERT_TRIES):
            raw: dict[str, str] = yield self._read(name)
            if raw.get("sig") == spec.signature:
                return Schedule.from_fields(self.name, name, raw)
            now = now_ms(self.clock)
            anchor = spec.start_ms if spec.start_ms is not None else now
            after = max(now, int(raw.get("lt") or -1))  # never again a tick it fired already
            first = next(spec.timing_from(anchor).after(after), None)
            if first is None:
                raise InvalidScheduleError(f"schedule {name!r} has no tick after now")
            written = yield self._script(
                "schedule_set",
                self.declared("schedule_set", record=self.schedule_key(name)),
                name, int(raw.get("rev") or 0), spec.signature, first, anchor, *spec.fields,
                parse=lambda r: as_int(checked(r)[1]) == 1, now=now,
            )  # fmt: skip
            if written:
                stored: dict[str, str] = yield self._read(name)
                return Schedule.from_fields(self.name, name, stored)
        raise ScriptReplyError(f"schedule {name!r} kept changing under this upsert; try again")

    def get_schedule(self, name: str) -> CommandCall[Schedule | None]:
        """Schedule ``name`` as stored, or None."""
        validate_schedule_name(name)
        return CommandCall(
            ("HGETALL", self.schedule_key(name)),
            lambda r: Schedule.from_fields(self.name, name, f) if (f := pairs(r)) else None,
        )

    def read_schedule(self, name: str) -> CommandCall[StoredSchedule | None]:
        """Schedule ``name`` and its raw record (what :meth:`fire` needs), or None."""
        return CommandCall(
            ("HGETALL", self.schedule_key(name)),
            lambda r: StoredSchedule(Schedule.from_fields(self.name, name, f), f) if (f := pairs(r)) else None,
        )

    def schedule_names(self, limit: int = 1000) -> CommandCall[list[str]]:
        """Names of the queue's schedules, the next to fire first (at most ``limit``)."""
        return CommandCall(("ZRANGE", self.schedules_key, 0, positive_int(limit, "limit") - 1), as_strs)

    def schedules(self, limit: int = 1000) -> Op[list[Schedule]]:
        """The queue's schedules, the next to fire first (at most ``limit``)."""
        names: list[str] = yield self.schedule_names(limit)
        out: list[Schedule] = []
        for name in names:
            found: Schedule | None = yield self.get_schedule(name)
            if found is not None:
                out.append(found)
        return out

    def remove_schedule(self, name: str) -> ScriptCall[bool]:
        """Delete schedule ``name`` (the jobs it added stay); True if it existed."""
        validate_schedule_name(name)
        return self._script(
            "schedule_remove",
            self.declared("schedule_remove", record=self.schedule_key(name)),
            name,
            parse=lambda r: as_int(checked(r)[1]) == 1,
            now=now_ms(self.clock),
        )

    def earliest_tick(self) -> CommandCall[int | None]:
        """The earliest next tick (ms) of any of the queue's schedules; None when none will fire."""

        def parse(reply: Reply) -> int | None:
            head = as_strs(reply)
            if len(head) < 2 or head[1] in ("inf", "+inf"):
                return None
            return int(float(head[1]))

        return CommandCall(("ZRANGE", self.schedules_key, 0, 0, "WITHSCORES"), parse)

    def due_schedules(self, now: int, limit: int = 100) -> CommandCall[list[str]]:
        """Names of schedules whose next tick is at or before ``now`` (ms), the most overdue first."""
        return CommandCall(
            ("ZRANGEBYSCORE", self.schedules_key, "-inf", now, "LIMIT", 0, positive_int(limit, "limit")), as_strs
        )

    def fire(self, stored: StoredSchedule, plan: Plan, now: int) -> ScriptCall[FireResult]:
        """Fire ``plan``'s ticks of ``stored`` (read before), if it has not changed since."""
        sched, raw = stored.schedule, stored.fields
        last = raw.get("lj") or ""
        ids = [job_id_for(sched.name, tick) for tick in plan.fire]
        keys = self.declared("schedule_fire", record=self.schedule_key(sched.name))
        ticks = [str(item) for tick, job_id in zip(plan.fire, ids, strict=True) for item in (tick, job_id)]
        job_fields = ["n", raw["n"], "d", raw["d"], *as_strs(_json.decode(raw["jo"], what="schedule options"))]
        opts = sched.options

        def parse(reply: Reply) -> FireResult:
            body = checked(reply)
            if not as_int(body[1]):
                return FireResult(sched.name, False)
            fired = tuple(as_strs(as_list(body[2])))
            return FireResult(sched.name, True, fired, plan.skipped, as_int(body[3]), as_int(body[4]), plan.next)

        return self._script(
            "schedule_fire", keys,
            sched.name, raw.get("rev", ""), raw.get("nx", ""), last, "" if plan.next is None else plan.next,
            "1" if sched.overlap == "skip" else "", plan.skipped, opts.priority, "1" if opts.lifo else "",
            len(plan.fire), *ticks, *job_fields,
            parse=parse, now=now,
        )  # fmt: skip
