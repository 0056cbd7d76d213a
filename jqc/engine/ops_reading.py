"""Reading: jobs, logs, counts, listings, metrics, the event stream and the worker registry."""

from __future__ import annotations

from typing import TypeVar

from jqc.clock import now_ms
from jqc.engine.arguments import (
    BATCH,
    LISTABLE,
    positive_int,
    seconds_to_ms,
)
from jqc.engine.calls import CommandCall, Op, Reply, ScriptCall, checked
from jqc.engine.job import (
    Job,
)
from jqc.engine.keys import validate_job_id
from jqc.engine.metrics import Metrics, MinuteMetrics
from jqc.engine.ops_base import OperationsBase
from jqc.engine.replies import as_int, as_list, as_str, as_strs, pairs
from jqc.engine.results import (
    Counts,
    Event,
    Page,
    WorkerInfo,
)
from jqc.errors import InvalidOptionError

__all__ = ["Reading"]

T = TypeVar("T")


class Reading(OperationsBase):
    """Reading a queue: jobs, logs, counts, listings, metrics, events and workers."""

    def get_job(self, job_id: str) -> CommandCall[Job | None]:
        validate_job_id(job_id)
        return CommandCall(
            ("HGETALL", self.keys.job(job_id)),
            lambda r: self._job(job_id, pairs(r)) if r else None,
        )

    def job_logs(self, job_id: str, start: int = 0, end: int = -1) -> CommandCall[list[str]]:
        validate_job_id(job_id)
        return CommandCall(("LRANGE", self.keys.log(job_id), start, end), as_strs)

    def exists(self) -> CommandCall[bool]:
        """Whether the queue exists: its meta hash is written by the first add, pause or setting."""
        return CommandCall(("EXISTS", self.keys.meta), lambda r: as_int(r) > 0)

    def counts(self) -> ScriptCall[Counts]:
        def parse(reply: Reply) -> Counts:
            b = [as_int(value) for value in checked(reply)[1:8]]
            return Counts(b[0], b[1], b[2], b[3], b[4], b[5], bool(b[6]))

        return self._call("counts", parse=parse)

    def list_jobs(self, state: str, offset: int = 0, limit: int = 100) -> ScriptCall[Page]:
        if state not in LISTABLE or state == "dead":
            raise InvalidOptionError(f"state must be one of {LISTABLE[:-1]}, not {state!r}")
        return self._call("list", state, self._offset(offset), positive_int(limit, "limit"), parse=self._parse_page)

    def _parse_page(self, reply: Reply) -> Page:
        total, decoded, corrupt = self._decode_listing(reply)
        return Page(total, tuple(job for job, _ in decoded), tuple(corrupt))

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
                for entry in as_list(as_list(stream)[1]):
                    entry_id, raw = as_list(entry)
                    fields = pairs(raw)
                    at = int(fields.get("t", 0)) / 1000.0
                    out.append(Event(as_str(entry_id), fields.get("e", ""), fields.get("j", ""), at, fields))
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
