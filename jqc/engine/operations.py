"""Every queue operation, built once as sans-IO calls; Queue and AsyncQueue only run them.

Each method returns a :class:`~jqc.engine.calls.ScriptCall`, a
:class:`~jqc.engine.calls.CommandCall`, or a generator of them (for bounded loops), never touching a
client itself. Times in the public API are seconds (float); scripts take whole milliseconds.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

from jqc import _json
from jqc.clock import Clock, now_ms
from jqc.engine.calls import Batch, CommandCall, Op, Reply, Scan, ScriptCall, checked, code_of
from jqc.engine.codes import Code
from jqc.engine.job import (
    Backoff,
    BackoffFunction,
    ClaimedJob,
    DeadLetter,
    Job,
    JobOptions,
    JobState,
    Keep,
    NewJob,
)
from jqc.engine.keys import QueueKeys, validate_job_id, validate_queue_name
from jqc.engine.metrics import Metrics, MinuteMetrics
from jqc.engine.replies import as_int, as_list, as_str, as_strs, pairs
from jqc.errors import CorruptJobError, InvalidOptionError

T = TypeVar("T")

BULK_CHUNK = 500
BATCH = 1000
MAX_NAME = 200
MAX_LOCK = 24 * 3600.0
LISTABLE = ("waiting", "delayed", "active", "completed", "failed", "dead")
CLEANABLE = ("completed", "failed", "delayed", "waiting")


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


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What a claim got: jobs (status OK), or why none and when to try again.

    ``retry_at`` is the clock time at which something may become claimable (the next delayed
    job's due time, or when the rate window reopens); None when unknown. ``corrupt`` lists jobs
    that were claimed but whose stored hash could not be decoded, as (id, token, reason): the
    claim operation fails each for good with that reason (dead-lettered), so none is run or lost.
    """

    status: Code
    jobs: tuple[ClaimedJob, ...] = ()
    retry_at: float | None = None
    corrupt: tuple[tuple[str, int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CompleteResult:
    """What ``complete_many`` did: jobs completed, jobs whose lock was lost, and the next claim."""

    completed: tuple[str, ...]
    lost: tuple[str, ...]
    next: ClaimResult | None


@dataclass(frozen=True, slots=True)
class Counts:
    """Jobs per state, from one atomic snapshot."""

    waiting: int
    delayed: int
    active: int
    completed: int
    failed: int
    dead: int
    paused: bool

    @property
    def total(self) -> int:
        """Jobs stored in the queue (dead letters are copies of failed jobs, not counted)."""
        return self.waiting + self.delayed + self.active + self.completed + self.failed


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing and how many there are in all.

    A job whose stored hash cannot be decoded does not spoil the page: it is listed in
    ``corrupt`` as (id, reason) instead of ``jobs``.
    """

    total: int
    jobs: tuple[Job, ...]
    corrupt: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """One page of dead letters, newest first, and how many there are in all."""

    total: int
    letters: tuple[DeadLetter, ...]
    corrupt: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RecoverResult:
    """Stalled jobs put back to waiting, and those failed for stalling too often."""

    recovered: tuple[str, ...]
    failed: tuple[str, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the queue's event stream."""

    id: str
    name: str
    job_id: str
    at: float
    fields: Mapping[str, str]


def _seconds_to_ms(value: object, name: str, *, low: float = 0.0, high: float = 10 * 365 * 86400.0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidOptionError(f"{name} must be a number of seconds between {low} and {high}, not {value!r}")
    return round(value * 1000)


def _positive_int(value: object, name: str, *, high: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise InvalidOptionError(f"{name} must be an int between 1 and {high}, not {value!r}")
    return value


def _worker_id(worker: object) -> str:
    if not isinstance(worker, str) or not worker or len(worker) > MAX_NAME:
        raise InvalidOptionError(f"worker id must be a non-empty str of at most {MAX_NAME} characters, not {worker!r}")
    return worker


class QueueOperations:
    """Builds the calls of one queue. Holds no connection and does no I/O."""

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        prefix: str = "jqc",
        default_options: JobOptions | None = None,
        max_data_bytes: int = 512 * 1024,
        events_max_len: int = 10_000,
        log_max_lines: int = 1000,
    ) -> None:
        self.name = validate_queue_name(name)
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise InvalidOptionError(f"prefix must be a non-empty str without braces, not {prefix!r}")
        self.keys = QueueKeys(prefix, name)
        self.clock = clock
        self.default_options = default_options or JobOptions()
        self.max_data_bytes = _positive_int(max_data_bytes, "max_data_bytes", high=512 * 1024 * 1024)
        if isinstance(events_max_len, bool) or not isinstance(events_max_len, int) or events_max_len < 0:
            raise InvalidOptionError(f"events_max_len must be an int >= 0, not {events_max_len!r}")
        self.events_max_len = events_max_len
        self.log_max_lines = _positive_int(log_max_lines, "log_max_lines")

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(
        self, script: str, *args: str | int | float, parse: Callable[[Reply], T], now: int | None = None
    ) -> ScriptCall[T]:
        stamp = now_ms(self.clock) if now is None else now
        return ScriptCall(script, (self.keys.base,), (stamp, self.events_max_len, *args), parse)

    def _job(self, job_id: str, fields: Mapping[str, str]) -> Job:
        return Job.from_fields(self.name, job_id, fields)

    # -- producing --------------------------------------------------------------------------------

    def options(self, options: JobOptions | None, overrides: OptionArgs) -> JobOptions:
        """Merge per-call overrides onto the given or default options, validating the result."""
        base = options if options is not None else self.default_options
        if not isinstance(base, JobOptions):
            raise InvalidOptionError(f"options must be a jqc.JobOptions, not {base!r}")
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
        """The 9 script arguments shared by every job added with ``opts`` (see add.lua)."""
        kc, ka = opts.remove_on_complete.encode()
        fc, fa = opts.remove_on_fail.encode()
        lifo = "1" if opts.lifo else ""
        return [round(opts.delay * 1000), opts.priority, lifo, opts.attempts, opts.extra_json(), kc, ka, fc, fa]

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
        body = checked(reply)
        jobs: list[Job] = []
        created_at = now / 1000.0
        stored: dict[int, JobOptions] = {}  # Job.options carries no add-time job_id or delay
        for i, (name, data, opts) in enumerate(specs):
            job_id, created, fields = as_str(body[1 + 3 * i]), as_int(body[2 + 3 * i]), body[3 + 3 * i]
            if not created:
                jobs.append(self._job(job_id, pairs(fields)))
                continue
            options = stored.get(id(opts))
            if options is None:
                plain = opts.job_id is None and opts.delay == 0.0
                options = stored[id(opts)] = opts if plain else dataclasses.replace(opts, job_id=None, delay=0.0)
            delay_ms = round(opts.delay * 1000)  # as add.lua decides: a sub-ms delay is no delay
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

    def add_bulk(self, jobs: Iterable[NewJob | tuple[Any, ...]]) -> Op[list[Job]]:
        """Validate every job first (nothing is written if one is bad), then add in chunks."""
        calls: list[ScriptCall[list[Job]]] = []
        chunk: list[tuple[str, Any, JobOptions]] = []
        for item in jobs:
            if isinstance(item, NewJob):
                spec = (item.name, item.data, self.options(item.options, {}))
            elif isinstance(item, tuple) and 1 <= len(item) <= 3:
                spec = (
                    item[0],
                    item[1] if len(item) > 1 else None,
                    self.options(item[2] if len(item) > 2 else None, {}),
                )
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

    # -- reading ----------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> CommandCall[Job | None]:
        validate_job_id(job_id)
        return CommandCall(
            ("HGETALL", self.keys.job(job_id)),
            lambda r: self._job(job_id, pairs(r)) if r else None,
        )

    def job_logs(self, job_id: str, start: int = 0, end: int = -1) -> CommandCall[list[str]]:
        validate_job_id(job_id)
        return CommandCall(("LRANGE", self.keys.log(job_id), start, end), as_strs)

    def counts(self) -> ScriptCall[Counts]:
        def parse(reply: Reply) -> Counts:
            b = [as_int(value) for value in checked(reply)[1:8]]
            return Counts(b[0], b[1], b[2], b[3], b[4], b[5], bool(b[6]))

        return self._call("counts", parse=parse)

    def list_jobs(self, state: str, offset: int = 0, limit: int = 100) -> ScriptCall[Page]:
        if state not in LISTABLE or state == "dead":
            raise InvalidOptionError(f"state must be one of {LISTABLE[:-1]}, not {state!r}")
        return self._call("list", state, self._offset(offset), _positive_int(limit, "limit"), parse=self._parse_page)

    def _offset(self, offset: object) -> int:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidOptionError(f"offset must be an int >= 0, not {offset!r}")
        return offset

    def _decode_listing(self, reply: Reply) -> tuple[int, list[tuple[Job, dict[str, str]]], list[tuple[str, str]]]:
        body = checked(reply)
        decoded: list[tuple[Job, dict[str, str]]] = []
        corrupt: list[tuple[str, str]] = []
        for i in range(2, len(body), 2):
            job_id, fields = as_str(body[i]), pairs(body[i + 1])
            if not fields:
                continue  # removed between the index read and the hash read
            try:
                decoded.append((self._job(job_id, fields), fields))
            except CorruptJobError as exc:
                corrupt.append((job_id, str(exc)))
        return as_int(body[1]), decoded, corrupt

    def _parse_page(self, reply: Reply) -> Page:
        total, decoded, corrupt = self._decode_listing(reply)
        return Page(total, tuple(job for job, _ in decoded), tuple(corrupt))

    def dead_letters(self, offset: int = 0, limit: int = 100) -> ScriptCall[DeadLetterPage]:
        def parse(reply: Reply) -> DeadLetterPage:
            total, decoded, corrupt = self._decode_listing(reply)
            letters = tuple(
                DeadLetter(job=job, dead_at=int(fields.get("dat", 0)) / 1000.0, worker=fields.get("dw") or None)
                for job, fields in decoded
            )
            return DeadLetterPage(total, letters, tuple(corrupt))

        return self._call("list", "dead", self._offset(offset), _positive_int(limit, "limit"), parse=parse)

    def replay_dead(self, job_id: str) -> ScriptCall[None]:
        """Send a dead-lettered job back to waiting (attempts reset, replay counted)."""
        return self._call("replay", validate_job_id(job_id), parse=self._ok)

    def purge_dead(self, job_id: str) -> ScriptCall[int]:
        """Delete one dead-letter record."""
        return self._call("purge", validate_job_id(job_id), 1, parse=lambda r: as_int(checked(r)[1]))

    def purge_all_dead(self) -> Op[int]:
        """Delete every dead-letter record, in bounded batches."""
        deleted: int = 0
        while True:
            code, n = yield self._call("purge", "", BATCH, parse=_code_and_count)
            deleted += n
            if code != Code.MORE or n == 0:
                return deleted

    def find_dead(self, match: Callable[[DeadLetter], bool], *, limit: int | None = None) -> Op[list[DeadLetter]]:
        """Dead letters (newest first) for which ``match`` is true, reading page by page."""
        found: list[DeadLetter] = []
        offset = 0
        while limit is None or len(found) < limit:
            page: DeadLetterPage = yield self.dead_letters(offset, BATCH)
            found.extend(letter for letter in page.letters if match(letter))
            offset += BATCH
            if offset >= page.total:
                break
        return found if limit is None else found[:limit]

    def metrics(self, window_minutes: int = 60) -> ScriptCall[Metrics]:
        window = _positive_int(window_minutes, "window_minutes", high=100_000)
        last = now_ms(self.clock) // 60000
        first = last - window + 1

        def parse(reply: Reply) -> Metrics:
            body = checked(reply)
            minutes = tuple(
                MinuteMetrics.from_fields(as_int(body[i]), pairs(body[i + 1])) for i in range(1, len(body), 2)
            )
            return Metrics(minutes, window)

        return self._call("metrics", first, last, parse=parse)

    def events(self, last_id: str = "0", count: int = 100, block: float | None = None) -> CommandCall[list[Event]]:
        """Events after ``last_id`` ('0' = from the start, '$' = only new ones, with ``block``)."""
        args: list[str | int] = ["XREAD", "COUNT", _positive_int(count, "count")]
        if block is not None:
            block_ms = _seconds_to_ms(block, "block", high=3600)
            args += ["BLOCK", block_ms]
        args += ["STREAMS", self.keys.events, last_id]

        def parse(reply: Reply) -> list[Event]:
            out: list[Event] = []
            for stream in as_list(reply):  # [[stream, [[id, [field, value, ...]], ...]]]
                for entry in as_list(as_list(stream)[1]):
                    entry_id, raw = as_list(entry)
                    fields = pairs(raw)
                    at = int(fields.get("t", 0)) / 1000.0
                    out.append(Event(as_str(entry_id), fields.get("e", ""), fields.get("j", ""), at, fields))
            return out

        return CommandCall(tuple(args), parse, block=None if block is None else block_ms / 1000)

    # -- administering ----------------------------------------------------------------------------

    def _ok(self, reply: Reply) -> None:
        checked(reply)

    def pause(self, paused: bool) -> ScriptCall[bool]:
        return self._call("pause", "1" if paused else "0", parse=lambda r: bool(checked(r)[1]))

    def configure(
        self,
        *,
        rate_limit: tuple[int, float] | bool | None = False,
        concurrency: int | bool | None = False,
        max_stalls: int | bool | None = False,
        dead_letter_cap: int | bool | None = False,
        metrics_minutes: int | bool | None = False,
        **unknown: object,
    ) -> ScriptCall[None]:
        """Set queue-wide settings; pass None to clear one, leave it out (False) to keep it."""
        if unknown:
            known = "rate_limit, concurrency, max_stalls, dead_letter_cap, metrics_minutes"
            raise InvalidOptionError(f"unknown queue setting(s) {sorted(unknown)}; known: {known}")
        args: list[str | int] = []
        if rate_limit is not False:
            if rate_limit is None:
                args += ["rlm", "", "rlw", ""]
            else:
                if not isinstance(rate_limit, tuple) or len(rate_limit) != 2:
                    raise InvalidOptionError(f"rate_limit must be (max jobs, per seconds), not {rate_limit!r}")
                args += ["rlm", _positive_int(rate_limit[0], "rate limit max", high=10**9)]
                args += ["rlw", _seconds_to_ms(rate_limit[1], "rate limit window", low=0.001, high=86400 * 31)]
        for key, value, label in (
            ("cc", concurrency, "concurrency"),
            ("ms", max_stalls, "max_stalls"),
            ("dm", dead_letter_cap, "dead_letter_cap"),
            ("mr", metrics_minutes, "metrics_minutes"),
        ):
            if value is False:
                continue
            if value is None:
                args += [key, ""]
            elif key == "ms" and value == 0:
                args += [key, 0]
            else:
                args += [key, _positive_int(value, label, high=10**9)]
        return self._call("configure", *args, parse=self._ok)

    def remove(self, job_id: str) -> ScriptCall[None]:
        return self._call("remove", validate_job_id(job_id), parse=self._ok)

    def promote(self, job_id: str) -> ScriptCall[None]:
        return self._call("promote", validate_job_id(job_id), parse=self._ok)

    def retry(self, job_id: str) -> ScriptCall[None]:
        return self._call("retry", validate_job_id(job_id), 1, parse=self._ok)

    def retry_failed(self, limit: int | None = None) -> Op[list[str]]:
        """Retry the oldest failed jobs (all of them when ``limit`` is None), in batches."""
        budget = None if limit is None else _positive_int(limit, "limit", high=10**9)
        done: list[str] = []
        while budget is None or len(done) < budget:
            size = BATCH if budget is None else min(BATCH, budget - len(done))
            code, ids = yield self._call("retry", "", size, parse=_code_and_ids)
            done.extend(ids)
            if code != Code.MORE or not ids:
                break
        return done

    def change_priority(self, job_id: str, priority: int) -> ScriptCall[None]:
        opts = JobOptions(priority=priority)
        return self._call("change_priority", validate_job_id(job_id), opts.priority, parse=self._ok)

    def change_delay(self, job_id: str, delay: float) -> ScriptCall[None]:
        return self._call("change_delay", validate_job_id(job_id), _seconds_to_ms(delay, "delay"), parse=self._ok)

    def clean(self, state: str, grace: float, limit: int = BATCH) -> ScriptCall[list[str]]:
        """Delete up to ``limit`` jobs in ``state`` finished (or created) more than ``grace`` s ago."""
        if state not in CLEANABLE:
            raise InvalidOptionError(f"state must be one of {CLEANABLE}, not {state!r}")
        return self._call(
            "clean",
            state,
            _seconds_to_ms(grace, "grace"),
            _positive_int(limit, "limit"),
            parse=lambda r: as_strs(checked(r)[1]),
        )

    def drain(self, *, delayed: bool = False) -> Op[int]:
        deleted: int = 0
        while True:
            code, n = yield self._call("drain", "1" if delayed else "0", BATCH, parse=_code_and_count)
            deleted += n
            if code != Code.MORE:
                return deleted

    def obliterate(self, *, force: bool = False) -> Op[int]:
        """Delete every key of the queue: scripted batches, then a SCAN sweep for strays."""
        deleted: int = 0
        while True:
            code, n = yield self._call("obliterate", "1" if force else "0", BATCH, parse=_code_and_count)
            deleted += n
            if code != Code.MORE:
                break
        strays: list[str] = yield Scan(self.keys.scan_pattern, BATCH)
        for start in range(0, len(strays), BATCH):
            yield CommandCall(("DEL", *strays[start : start + BATCH]), as_int)
        return deleted

    # -- working (what the worker runtime and the simulator call) ---------------------------------

    def claim(self, worker: str, *, count: int = 1, lock: float = 30.0, now: int | None = None) -> Op[ClaimResult]:
        stamp = now_ms(self.clock) if now is None else now
        result: ClaimResult = yield self._call(
            "claim",
            _positive_int(count, "count", high=10_000),
            _seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK),
            _worker_id(worker),
            parse=lambda r: self._parse_claim(r, worker, stamp),
            now=stamp,
        )
        yield from self.dead_letter_corrupt(result, worker)
        return result

    def dead_letter_corrupt(self, result: ClaimResult | None, worker: str) -> Op[None]:
        """Fail for good (the decoding error as reason) every claimed job whose hash is corrupt."""
        for job_id, token, reason in result.corrupt if result else ():
            yield self._call("fail", job_id, token, f"corrupt job: {reason}", "", worker or "-", -1, parse=lambda r: r)

    def _parse_claim(self, reply: Reply, worker: str, now: int) -> ClaimResult:
        body = checked(reply)
        code = code_of(body)
        if code != Code.OK:
            when = as_int(body[1]) if len(body) > 1 else 0
            return ClaimResult(code, (), when / 1000.0 if when else None)
        deadline = as_int(body[1]) / 1000.0
        jobs = []
        corrupt = []
        for i in range(2, len(body), 3):
            job_id, token, fields = as_str(body[i]), as_int(body[i + 1]), pairs(body[i + 2])
            fields.update(s="a", k=str(token), ps=str(now), w=worker)
            try:
                jobs.append(ClaimedJob(job=self._job(job_id, fields), token=token, lock_until=deadline))
            except CorruptJobError as exc:
                corrupt.append((job_id, token, str(exc)))
        return ClaimResult(Code.OK, tuple(jobs), None, tuple(corrupt))

    def extend(
        self, held: Sequence[ClaimedJob | tuple[str, int]], *, lock: float = 30.0, now: int | None = None
    ) -> ScriptCall[dict[str, bool]]:
        """Renew many locks at once; returns job id -> still held."""
        held_pairs = [(h.id, h.token) if isinstance(h, ClaimedJob) else h for h in held]
        args = [str(a) for pair in held_pairs for a in pair]

        def parse(reply: Reply) -> dict[str, bool]:
            body = checked(reply)
            return {job_id: bool(as_int(ok)) for (job_id, _), ok in zip(held_pairs, body[2:], strict=True)}

        return self._call("extend", _seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK), *args, parse=parse, now=now)

    def complete(
        self,
        claimed: ClaimedJob,
        result: Any = None,
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        now: int | None = None,
    ) -> Op[ClaimResult | None]:
        """Report success; with ``fetch_next`` > 0 also claim that many next jobs for ``worker``."""
        stamp = now_ms(self.clock) if now is None else now
        text = _json.encode(result, what="result", max_bytes=self.max_data_bytes)
        if fetch_next:
            _worker_id(worker)

        def parse(reply: Reply) -> ClaimResult | None:
            body = checked(reply)
            return self._parse_claim(body[1], worker, stamp) if fetch_next else None

        following: ClaimResult | None = yield self._call(
            "complete",
            claimed.id,
            claimed.token,
            text,
            fetch_next,
            _seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK),
            worker or "-",
            parse=parse,
            now=stamp,
        )
        yield from self.dead_letter_corrupt(following, worker)
        return following

    def complete_many(
        self,
        done: Sequence[tuple[ClaimedJob, Any]],
        *,
        fetch_next: int = 0,
        lock: float = 30.0,
        worker: str = "",
        now: int | None = None,
    ) -> Op[CompleteResult]:
        """Report many successes and claim the next jobs, in one round trip.

        A job whose token is stale is reported in ``lost`` and left unchanged; the others complete.
        """
        stamp = now_ms(self.clock) if now is None else now
        args: list[str | int] = [len(done)]
        for claimed, result in done:
            args += [claimed.id, claimed.token, _json.encode(result, what="result", max_bytes=self.max_data_bytes)]
        if fetch_next:
            _worker_id(worker)
        args += [fetch_next, _seconds_to_ms(lock, "lock", low=0.001, high=MAX_LOCK), worker or "-"]
        ids = [claimed.id for claimed, _ in done]

        def parse(reply: Reply) -> CompleteResult:
            body = checked(reply)
            flags = [as_int(ok) for ok in as_list(body[1])]
            completed = tuple(i for i, ok in zip(ids, flags, strict=True) if ok)
            lost = tuple(i for i, ok in zip(ids, flags, strict=True) if not ok)
            following = self._parse_claim(body[2], worker, stamp) if fetch_next else None
            return CompleteResult(completed, lost, following)

        outcome: CompleteResult = yield self._call("complete_many", *args, parse=parse, now=stamp)
        yield from self.dead_letter_corrupt(outcome.next, worker)
        return outcome

    def retry_delay(
        self,
        claimed: ClaimedJob,
        *,
        error: BaseException | None = None,
        rng: random.Random | None = None,
        backoff_functions: Mapping[str, BackoffFunction] | None = None,
    ) -> float:
        """Seconds to wait before the next attempt, from the job's backoff policy."""
        backoff = claimed.job.options.backoff
        if backoff is None:
            return 0.0
        return backoff.seconds(claimed.job.attempts_made + 1, rng=rng, error=error, functions=backoff_functions)

    def fail(
        self,
        claimed: ClaimedJob,
        reason: str,
        *,
        traceback: str | None = None,
        retry: bool = True,
        delay: float | None = None,
        error: BaseException | None = None,
        rng: random.Random | None = None,
        backoff_functions: Mapping[str, BackoffFunction] | None = None,
        worker: str = "",
        now: int | None = None,
    ) -> ScriptCall[str]:
        """Report a failed attempt: 'retry' if it will run again, else 'failed' (dead-lettered).

        The retry delay is ``delay`` if given, else the job's backoff policy. If that policy cannot
        be computed (say, a custom backoff whose function is not registered), the job fails for
        good with the reason saying why, rather than being lost or retried blindly.
        """
        if not isinstance(reason, str):
            raise InvalidOptionError(f"failure reason must be a str, not {reason!r}")
        if retry and delay is None:
            try:
                delay = self.retry_delay(claimed, error=error, rng=rng, backoff_functions=backoff_functions)
            except InvalidOptionError as exc:
                retry, reason = False, f"{reason} (not retried: {exc})"
        delay_ms = _seconds_to_ms(delay or 0.0, "retry delay") if retry else -1
        return self._call(
            "fail",
            claimed.id,
            claimed.token,
            reason[:10_000],
            (traceback or "")[:100_000],
            worker or "-",
            delay_ms,
            parse=lambda r: as_str(checked(r)[1]),
            now=now,
        )

    def release(self, claimed: ClaimedJob, *, delay: float = 0.0, now: int | None = None) -> ScriptCall[None]:
        """Hand a job back without counting an attempt."""
        return self._call("release", claimed.id, claimed.token, _seconds_to_ms(delay, "delay"), parse=self._ok, now=now)

    def progress(self, claimed: ClaimedJob, value: Any) -> ScriptCall[None]:
        text = _json.encode(value, what="progress", max_bytes=64 * 1024)
        return self._call("progress", claimed.id, claimed.token, text, parse=self._ok)

    def log(self, claimed: ClaimedJob, line: str) -> ScriptCall[int]:
        if not isinstance(line, str):
            raise InvalidOptionError(f"a log line must be a str, not {line!r}")
        return self._call(
            "log", claimed.id, claimed.token, line[:10_000], self.log_max_lines, parse=lambda r: as_int(checked(r)[1])
        )

    def recover_stalled(
        self, *, limit: int = BATCH, max_stalls: int = 1, now: int | None = None
    ) -> ScriptCall[RecoverResult]:
        if isinstance(max_stalls, bool) or not isinstance(max_stalls, int) or max_stalls < 0:
            raise InvalidOptionError(f"max_stalls must be an int >= 0, not {max_stalls!r}")

        def parse(reply: Reply) -> RecoverResult:
            body = checked(reply)
            return RecoverResult(tuple(as_strs(body[1])), tuple(as_strs(body[2])), code_of(body) == Code.MORE)

        return self._call("recover", _positive_int(limit, "limit"), max_stalls, parse=parse, now=now)

    # -- workers (registered by the worker runtime's heartbeat, see jqc/worker/registry.py) -------

    def workers(self, *, ttl: float | None = None, limit: int = BATCH) -> Op[list[WorkerInfo]]:
        """Live workers of this queue, most recently seen first.

        A worker is live while its last heartbeat is younger than ``ttl`` seconds, or than the TTL
        it registered with when ``ttl`` is None. Ages are measured on this queue's clock, never the
        server's; records of dead workers are left out here and pruned by live workers' heartbeats.
        """
        max_age = None if ttl is None else _seconds_to_ms(ttl, "ttl", low=0.001)
        now = now_ms(self.clock)
        entries = yield CommandCall(
            ("ZREVRANGE", self.keys.key("workers"), 0, _positive_int(limit, "limit") - 1, "WITHSCORES"), _score_pairs
        )
        out: list[WorkerInfo] = []
        for worker_id, seen in entries:
            fields = yield CommandCall(("HGETALL", self.keys.key("worker:" + worker_id)), pairs)
            info = WorkerInfo.from_fields(worker_id, seen, fields) if fields else None
            if info is not None and now - seen <= (max_age if max_age is not None else int(info.ttl * 1000)):
                out.append(info)
        return out


def _score_pairs(reply: Reply) -> list[tuple[str, int]]:
    """(member, int score) pairs from a flat WITHSCORES reply."""
    items = as_strs(reply)
    return [(items[i], int(float(items[i + 1]))) for i in range(0, len(items) - 1, 2)]


def _code_and_count(reply: Reply) -> tuple[Code, int]:
    """A bounded operation's reply: {code, how many it did}."""
    body = checked(reply)
    return code_of(body), as_int(body[1])


def _code_and_ids(reply: Reply) -> tuple[Code, list[str]]:
    """A bounded operation's reply: {code, ids it did}."""
    body = checked(reply)
    return code_of(body), as_strs(body[1])


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker as its last heartbeat described it (``Queue.workers()``)."""

    id: str
    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    active: int
    concurrency: int
    started_at: float
    last_seen: float
    ttl: float

    @classmethod
    def from_fields(cls, worker_id: str, seen_ms: int, fields: Mapping[str, str]) -> WorkerInfo | None:
        """Decode a worker record; None when it is not one jqc wrote."""
        try:
            queues = _json.decode(fields.get("queues", "[]"), what=f"worker {worker_id} queues")
            return cls(
                id=worker_id,
                name=fields.get("name", worker_id),
                host=fields.get("host", ""),
                pid=int(fields.get("pid", 0)),
                queues=tuple(str(q) for q in queues) if isinstance(queues, list) else (),
                active=int(fields.get("active", 0)),
                concurrency=int(fields.get("concurrency", 0)),
                started_at=int(fields.get("started", 0)) / 1000.0,
                last_seen=seen_ms / 1000.0,
                ttl=int(fields.get("ttl", 30_000)) / 1000.0,
            )
        except (ValueError, TypeError, CorruptJobError):
            return None
