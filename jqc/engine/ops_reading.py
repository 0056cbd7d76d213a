"""Reading: jobs, logs, counts, listings, metrics, the event stream and the worker registry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from jqc import _json
from jqc.clock import now_ms
from jqc.engine.arguments import (
    BATCH,
    LISTABLE,
    positive_int,
    seconds_to_ms,
)
from jqc.engine.calls import CommandCall, Op, Reply, ScriptCall, checked
from jqc.engine.failures import FailureCode, failure_code
from jqc.engine.job import (
    DeadLetter,
    Job,
    JobOptions,
)
from jqc.engine.keys import LAYOUT_VERSION, validate_job_id
from jqc.engine.metrics import Metrics, MinuteMetrics
from jqc.engine.ops_base import OperationsBase, letter_of
from jqc.engine.records import record_of, unpack_lines
from jqc.engine.replies import as_int, as_list, as_str, as_strs, pairs
from jqc.engine.results import (
    Counts,
    Event,
    Page,
    SearchPage,
    WorkerInfo,
)
from jqc.errors import InvalidOptionError, LayoutVersionError

__all__ = ["Reading"]

T = TypeVar("T")

#: A priority's span of scores in the prio set (see include/enqueue.lua): priority * 2**32 + slot.
PRIO_SHIFT = 2**32


class Reading(OperationsBase):
    """Reading a queue: jobs, logs, counts, listings, metrics, events and workers."""

    def get_job(self, job_id: str) -> Op[Job | None]:
        """The job as stored, or None; a queue in another key layout raises LayoutVersionError."""
        validate_job_id(job_id)
        fields = yield CommandCall(("HGET", self.keys.jobs, job_id), record_of)
        if fields:
            return self._job(job_id, fields)
        yield self.check_layout()
        return None

    def check_layout(self) -> CommandCall[None]:
        """Raise :class:`jqc.LayoutVersionError` when the queue's data is in another key layout."""
        return CommandCall(("HMGET", self.keys.meta, "v", "id"), lambda r: layout_check(self.name, as_list(r)))

    def job_logs(self, job_id: str, start: int = 0, end: int = -1) -> CommandCall[list[str]]:
        validate_job_id(job_id)
        return CommandCall(
            ("HGET", self.keys.logs, job_id),
            lambda r: _lrange(unpack_lines(None if r is None else as_str(r)), start, end),
        )

    def exists(self) -> CommandCall[bool]:
        """Whether the queue exists: its meta hash is written by the first add, pause or setting."""
        return CommandCall(("EXISTS", self.keys.meta), lambda r: as_int(r) > 0)

    def counts(self) -> ScriptCall[Counts]:
        def parse(reply: Reply) -> Counts:
            b = [as_int(value) for value in checked(reply)[1:9]]
            return Counts(b[0], b[1], b[2], b[3], b[4], b[5], bool(b[6]), b[7])

        return self._call("counts", parse=parse)

    def counts_per_priority(self, priorities: Iterable[int]) -> ScriptCall[dict[int, int]]:
        """Waiting jobs of each of ``priorities`` (at most 1,000 of them), from one snapshot.

        Priority 0 is the length of the wait list; any other priority counts its score range of
        the prio set (``priority * 2**32`` up to the next priority's), O(log n) each.
        """
        if isinstance(priorities, (str, bytes)) or not isinstance(priorities, Iterable):
            raise InvalidOptionError(f"priorities must be an iterable of ints, not {priorities!r}")
        asked = list(dict.fromkeys(JobOptions(priority=p).priority for p in priorities))
        if len(asked) > 1000:
            raise InvalidOptionError(f"ask for at most 1000 priorities at once, not {len(asked)}")
        args: list[str] = []
        for priority in asked:
            args += ["", ""] if priority == 0 else [str(priority * PRIO_SHIFT), str((priority + 1) * PRIO_SHIFT)]

        def parse(reply: Reply) -> dict[int, int]:
            counts = checked(reply)[1:]
            return {p: as_int(n) for p, n in zip(asked, counts, strict=True)}

        return self._call("priority_counts", *args, parse=parse)

    def list_jobs(
        self, state: str, offset: int = 0, limit: int = 100, *, newest_first: bool = False
    ) -> ScriptCall[Page] | Op[Page]:
        """One page of ``state``; ``newest_first`` (waiting only) pages from the job that would run
        last: the order BullMQ's ``getWaiting`` uses."""
        if state not in LISTABLE or state == "dead":
            raise InvalidOptionError(f"state must be one of {LISTABLE[:-1]}, not {state!r}")
        if not isinstance(newest_first, bool):
            raise InvalidOptionError(f"newest_first must be a bool, not {newest_first!r}")
        if newest_first and state != "waiting":
            raise InvalidOptionError("newest_first applies to waiting jobs (finished ones are listed newest first)")
        offset, limit = self._offset(offset), positive_int(limit, "limit")
        if newest_first:
            return self._waiting_newest_first(offset, limit)
        return self._call("list", state, offset, limit, parse=self._parse_page)

    def _waiting_newest_first(self, offset: int, limit: int) -> Op[Page]:
        """The waiting jobs in reverse claim order: the total first, then the page it implies
        (two reads, so a job added in between can shift the page by one)."""
        probe: Page = yield self._call("list", "waiting", 0, 1, parse=self._parse_page)
        end = probe.total - offset  # one past the last job of the page, in claim order
        if end <= 0:
            return Page(probe.total, (), ())
        start = max(end - limit, 0)
        page: Page = yield self._call("list", "waiting", start, end - start, parse=self._parse_page)
        return Page(page.total, tuple(reversed(page.jobs)), page.corrupt)

    def _parse_page(self, reply: Reply) -> Page:
        total, decoded, corrupt = self._decode_listing(reply)
        return Page(total, tuple(job for job, _ in decoded), tuple(corrupt))

    def search(
        self,
        state: str,
        text: str,
        *,
        code: FailureCode | str | None = None,
        offset: int = 0,
        limit: int = 50,
        scan: int = BATCH,
    ) -> Op[SearchPage]:
        """Jobs in ``state`` (or dead letters, ``state='dead'``) whose id, name or data (as JSON text)
        contain ``text``, case-insensitively, in listing order; with ``code``, only those that
        failed with that :class:`~jqc.FailureCode`.

        Bounded: it looks at ``scan`` entries at most from ``offset`` on, in pages of the ``list``
        script (so it costs what paging costs, never a scan of the whole queue), and stops early
        once ``limit`` jobs matched. Go on from :attr:`SearchPage.next_offset`.
        """
        if state not in LISTABLE:
            raise InvalidOptionError(f"state must be one of {LISTABLE}, not {state!r}")
        if not isinstance(text, str):
            raise InvalidOptionError(f"text must be a str, not {text!r}")
        start = at = self._offset(offset)
        limit = positive_int(limit, "limit")
        budget = positive_int(scan, "scan", high=100_000)
        needle = text.casefold()
        wanted = None if code is None else failure_code(code, retry=True)
        jobs: list[Job] = []
        letters: list[DeadLetter] = []
        total = 0
        while at - start < budget and len(jobs) < limit:
            size = min(BATCH, budget - (at - start))
            reply: Reply = yield self._call("list", state, at, size, parse=lambda r: r)
            total, decoded, _ = self._decode_listing(reply)  # corrupt entries are passed over
            position = {as_str(job_id): k for k, job_id in enumerate(checked(reply)[2::2])}
            listed = len(position)
            for job, fields in decoded:
                if _matches(job, needle) and (wanted is None or job.failure_code == wanted):
                    jobs.append(job)
                    if state == "dead":
                        letters.append(letter_of(job, fields))
                    if len(jobs) == limit:
                        listed = position[job.id] + 1
                        break
            at += listed
            if (listed < size and len(jobs) < limit) or at >= total:
                return SearchPage(tuple(jobs), tuple(letters), start, None, at - start, total)
        return SearchPage(tuple(jobs), tuple(letters), start, at, at - start, total)

    def recent_events(self, count: int = 1000, before: str | None = None) -> CommandCall[list[Event]]:
        """The newest ``count`` entries of the event stream, newest first (older than ``before``, an
        entry id, when given): a bounded look back, e.g. for one job's timeline."""
        end = "+" if before is None else "(" + before
        return CommandCall(
            ("XREVRANGE", self.keys.events, end, "-", "COUNT", positive_int(count, "count", high=100_000)),
            _events,
        )

    def metrics(self, window_minutes: int = 60) -> ScriptCall[Metrics]:
        window = positive_int(window_minutes, "window_minutes", high=100_000)
        last = now_ms(self.clock) // 60000
        first = last - window + 1

        def parse(reply: Reply) -> Metrics:
            body = checked(reply)
            minutes = tuple(
                MinuteMetrics.from_fields(as_int(body[i]), pairs(body[i + 1])) for i in range(1, len(body), 2)
            )
            return Metrics(minutes, window)

        return self._call("metrics", first, last, parse=parse)

    def last_event_id(self) -> CommandCall[str]:
        """The id of the newest entry of the event stream ('0-0' when it has none): where a reader
        that wants only what comes next starts."""

        def parse(reply: Reply) -> str:
            entries = as_list(reply)
            return as_str(as_list(entries[0])[0]) if entries else "0-0"

        return CommandCall(("XREVRANGE", self.keys.events, "+", "-", "COUNT", 1), parse)

    def events(self, last_id: str = "0", count: int = 100, block: float | None = None) -> CommandCall[list[Event]]:
        """Events after ``last_id`` ('0' = from the start, '$' = only new ones, with ``block``)."""
        args: list[str | int] = ["XREAD", "COUNT", positive_int(count, "count")]
        if block is not None:
            block_ms = seconds_to_ms(block, "block", high=3600)
            args += ["BLOCK", block_ms]
        args += ["STREAMS", self.keys.events, last_id]

        def parse(reply: Reply) -> list[Event]:
            out: list[Event] = []
            for stream in as_list(reply):  # [[stream, [[id, [field, value, ...]], ...]]]
                out += _events(as_list(stream)[1])
            return out

        return CommandCall(tuple(args), parse, block=None if block is None else block_ms / 1000)

    # -- workers (registered by the worker runtime's heartbeat, see jqc/worker/registry.py) -------

    def workers(self, *, ttl: float | None = None, limit: int = BATCH) -> Op[list[WorkerInfo]]:
        """Live workers of this queue, most recently seen first.

        A worker is live while its last heartbeat is younger than ``ttl`` seconds, or than the TTL
        it registered with when ``ttl`` is None. Ages are measured on this queue's clock, never the
        server's; records of dead workers are left out here and pruned by live workers' heartbeats.
        """
        max_age = None if ttl is None else seconds_to_ms(ttl, "ttl", low=0.001)
        now = now_ms(self.clock)
        entries = yield CommandCall(
            ("ZREVRANGE", self.keys.key("workers"), 0, positive_int(limit, "limit") - 1, "WITHSCORES"), _score_pairs
        )
        out: list[WorkerInfo] = []
        records: list[Reply] = []
        if entries:
            records = yield CommandCall(("HMGET", self.keys.worker_records, *(w for w, _ in entries)), as_list)
        for (worker_id, seen), record in zip(entries, records, strict=True):
            fields = record_of(record)
            info = WorkerInfo.from_fields(worker_id, seen, fields) if fields else None
            if info is not None and now - seen <= (max_age if max_age is not None else int(info.ttl * 1000)):
                out.append(info)
        return out


def layout_check(queue: str, values: list[Reply]) -> None:
    """Raise :class:`LayoutVersionError` when meta's ``v``/``id`` (HMGET) say an older jqc wrote the queue.

    A queue this jqc writes has ``v`` = :data:`LAYOUT_VERSION`; one with another ``v``, or with job
    ids handed out but no ``v`` (which older versions left out), holds data in an older layout.
    """
    version, last_id = values[0], values[1]
    if version == str(LAYOUT_VERSION) or (version is None and last_id is None):
        return
    found = as_str(version) if version is not None else "1"
    raise LayoutVersionError(
        f"queue {queue!r} holds data in key layout {found}, this jqc reads layout {LAYOUT_VERSION}: "
        "finish its jobs with the jqc that wrote them, or obliterate it (see docs/keys.md)"
    )


def _lrange(lines: list[str], start: int, end: int) -> list[str]:
    """``lines[start..end]`` with LRANGE's inclusive, negative-from-the-end indexes."""
    n = len(lines)
    first = max(start + n if start < 0 else start, 0)
    last = min(end + n if end < 0 else end, n - 1)
    return lines[first : last + 1] if first <= last else []


def _events(reply: Reply) -> list[Event]:
    """Events from a list of stream entries ``[[id, [field, value, ...]], ...]``."""
    out: list[Event] = []
    for entry in as_list(reply):
        entry_id, raw = as_list(entry)
        fields = pairs(raw)
        at = int(fields.get("t", 0)) / 1000.0
        out.append(Event(as_str(entry_id), fields.get("e", ""), fields.get("j", ""), at, fields))
    return out


def _matches(job: Job, needle: str) -> bool:
    if needle in job.id.casefold() or needle in job.name.casefold():
        return True
    return needle in _json.encode(job.data).casefold()


def _score_pairs(reply: Reply) -> list[tuple[str, int]]:
    """(member, int score) pairs from a flat WITHSCORES reply."""
    items = as_strs(reply)
    return [(items[i], int(float(items[i + 1]))) for i in range(0, len(items) - 1, 2)]
