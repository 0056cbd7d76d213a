"""Producing: add and add_bulk, with options merged and checked before anything is written."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, TypeVar

from jqc import _json
from jqc.clock import now_ms
from jqc.engine.arguments import (
    BULK_CHUNK,
    MAX_NAME,
)
from jqc.engine.calls import Batch, CommandCall, Op, Reply, ScriptCall, checked
from jqc.engine.job import (
    Backoff,
    Dedup,
    Job,
    JobOptions,
    JobState,
    Keep,
    NewJob,
)
from jqc.engine.ops_base import OperationsBase
from jqc.engine.records import record_of
from jqc.engine.replies import as_int, as_str
from jqc.errors import InvalidOptionError

__all__ = ["OptionArgs", "Producing"]

T = TypeVar("T")


class OptionArgs(TypedDict, total=False):
    """Keyword overrides of :class:`JobOptions` accepted by ``add``."""

    job_id: str | None
    delay: float
    priority: int
    lifo: bool
    attempts: int
    backoff: Backoff | None
    timeout: float | None
    remove_on_complete: Keep
    remove_on_fail: Keep
    meta: Mapping[str, str] | None
    dedup: Dedup | None


class Producing(OperationsBase):
    """Adding jobs: one at a time or in bulk (500 per script call, chunks pipelined)."""

    def options(self, options: JobOptions | None, overrides: OptionArgs) -> JobOptions:
        """The options of one add, merged in one order whatever form they come in: the queue's
        ``default_options``, then every field of ``options`` that differs from
        :class:`JobOptions`'s own default, then the keyword ``overrides`` (which win even when they
        give the default value). Each field is taken whole (a ``meta`` mapping replaces, not merges).
        """
        if options is not None and not isinstance(options, JobOptions):
            raise InvalidOptionError(f"options must be a jqc.JobOptions, not {options!r}")
        base = self.default_options if options is None else _merged(self.default_options, options)
        if not overrides:
            return base
        try:
            return dataclasses.replace(base, **overrides)
        except TypeError as exc:
            raise InvalidOptionError(str(exc)) from exc

    def _check_name(self, name: object) -> str:
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise InvalidOptionError(f"job name must be a non-empty str of at most {MAX_NAME} characters, not {name!r}")
        return name

    @staticmethod
    def _option_args(opts: JobOptions) -> list[str | int]:
        """The 12 script arguments shared by every job added with ``opts`` (see add.lua)."""
        kc, ka = opts.remove_on_complete.encode()
        fc, fa = opts.remove_on_fail.encode()
        lifo = "1" if opts.lifo else ""
        dedup = opts.dedup.script_args() if opts.dedup is not None else ["", "", ""]
        return [round(opts.delay * 1000), opts.priority, lifo, opts.attempts, opts.extra_json(), kc, ka, fc, fa, *dedup]

    def _add_call(self, specs: Sequence[tuple[str, Any, JobOptions]]) -> ScriptCall[list[Job]]:
        """One add.lua call for ``specs``: options are sent once per distinct JobOptions."""
        group_of: dict[int, int] = {}
        group_args: list[str | int] = []
        job_args: list[str | int] = []
        for name, data, opts in specs:
            group = group_of.get(id(opts))
            if group is None:
                group = group_of[id(opts)] = len(group_of) + 1
                group_args += self._option_args(opts)
            text = _json.encode(data, what="data", max_bytes=self.max_data_bytes)
            job_args += [opts.job_id or "", self._check_name(name), text, group]
        now = now_ms(self.clock)
        return self._call(
            "add", len(group_of), *group_args, len(specs), *job_args,
            parse=lambda r: self._parse_added(r, now, specs), now=now,
        )  # fmt: skip

    def _parse_added(self, reply: Reply, now: int, specs: Sequence[tuple[str, Any, JobOptions]]) -> list[Job]:
        """The jobs as stored. Each keeps the options it was added with (``job_id`` as given, None
        for an automatic id; ``delay`` rounded to whole ms as add.lua stores it, so a sub-ms delay
        is no delay); a job whose id (or dedup key) was taken is that job as stored, with
        ``deduplicated`` set."""
        body = checked(reply)
        jobs: list[Job] = []
        created_at = now / 1000.0
        rounded: dict[int, JobOptions] = {}
        for i, (name, data, opts) in enumerate(specs):
            job_id, created, fields = as_str(body[1 + 3 * i]), as_int(body[2 + 3 * i]), body[3 + 3 * i]
            if created != 1:  # 0: its job_id was taken; 2: its dedup key was
                existing = self._job(job_id, record_of(fields))
                kept = dataclasses.replace(existing.options, job_id=job_id if created == 0 else None)
                jobs.append(dataclasses.replace(existing, options=kept, deduplicated=True))
                continue
            delay_ms = round(opts.delay * 1000)
            options = opts
            if delay_ms != opts.delay * 1000:
                options = rounded.get(id(opts)) or rounded.setdefault(
                    id(opts), dataclasses.replace(opts, delay=delay_ms / 1000.0)
                )
            jobs.append(
                Job(
                    queue=self.name,
                    id=job_id,
                    name=name,
                    data=data,
                    state=JobState.DELAYED if delay_ms > 0 else JobState.WAITING,
                    options=options,
                    created_at=created_at,
                    ready_at=created_at + delay_ms / 1000.0,
                )
            )
        return jobs

    def add(self, name: str, data: Any, opts: JobOptions) -> ScriptCall[Job]:
        call = self._add_call([(name, data, opts)])
        return ScriptCall(call.script, call.keys, call.args, lambda r: call.parse(r)[0])

    def forget_dedup(self, key: str) -> CommandCall[bool]:
        """Release a dedup key now, whatever its mode (True if it was held): the next add with it
        creates a job."""
        return CommandCall(("HDEL", self.keys.key("dd"), Dedup(key).key), lambda r: bool(as_int(r)))

    def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> Op[list[Job]]:
        """Validate every job first (nothing is written if one is bad), then add in chunks."""
        calls: list[ScriptCall[list[Job]]] = []
        chunk: list[tuple[str, Any, JobOptions]] = []
        merged: dict[int, tuple[object, JobOptions]] = {}  # one merge per distinct options object

        def options_of(given: JobOptions | None) -> JobOptions:
            seen = merged.get(id(given))
            if seen is None or seen[0] is not given:
                seen = merged[id(given)] = (given, self.options(given, {}))
            return seen[1]

        for item in jobs:
            if isinstance(item, NewJob):
                spec = (item.name, item.data, options_of(item.options))
            elif isinstance(item, tuple) and 1 <= len(item) <= 3:
                spec = (item[0], item[1] if len(item) > 1 else None, options_of(item[2] if len(item) > 2 else None))
            else:
                raise InvalidOptionError(f"add_bulk takes NewJob or (name, data[, options]) tuples, not {item!r}")
            chunk.append(spec)
            if len(chunk) == BULK_CHUNK:
                calls.append(self._add_call(chunk))
                chunk = []
        if chunk:
            calls.append(self._add_call(chunk))
        return self._add_chunks(calls)

    def _add_chunks(self, calls: list[ScriptCall[list[Job]]]) -> Op[list[Job]]:
        if len(calls) == 1:
            only: list[Job] = yield calls[0]
            return only
        chunks: list[list[Job]] = yield Batch(tuple(calls))  # pipelined: one round trip in all
        return [job for chunk in chunks for job in chunk]


_DEFAULTS = JobOptions()
_FIELDS = tuple(f.name for f in dataclasses.fields(JobOptions))


def _merged(defaults: JobOptions, options: JobOptions) -> JobOptions:
    """``defaults`` with every field of ``options`` that is not :class:`JobOptions`'s default."""
    if defaults == _DEFAULTS or options is defaults:
        return options
    changed = {name: getattr(options, name) for name in _FIELDS if getattr(options, name) != getattr(_DEFAULTS, name)}
    return dataclasses.replace(defaults, **changed) if changed else defaults
