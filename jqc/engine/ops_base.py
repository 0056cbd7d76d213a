"""The base of the queue operations: settings, and how a script call is built."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from jqc.clock import Clock, now_ms
from jqc.engine.arguments import (
    positive_int,
)
from jqc.engine.calls import Op, Reply, ScriptCall, checked, code_of
from jqc.engine.codes import Code
from jqc.engine.job import (
    DeadLetter,
    Job,
    JobOptions,
)
from jqc.engine.keys import QueueKeys, validate_queue_name
from jqc.engine.lua_source import script_keys
from jqc.engine.records import record_of
from jqc.engine.replies import as_int, as_str, as_strs
from jqc.errors import CorruptJobError, InvalidOptionError

__all__ = ["OperationsBase", "code_and_count", "code_and_ids", "letter_of"]

T = TypeVar("T")


class OperationsBase:
    """What every group of operations shares: the queue's name, keys, clock and limits, and the one
    way a script call is built (``now`` and the events cap always come first)."""

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
        self.max_data_bytes = positive_int(max_data_bytes, "max_data_bytes", high=512 * 1024 * 1024)
        if isinstance(events_max_len, bool) or not isinstance(events_max_len, int) or events_max_len < 0:
            raise InvalidOptionError(f"events_max_len must be an int >= 0, not {events_max_len!r}")
        self.events_max_len = events_max_len
        self.log_max_lines = positive_int(log_max_lines, "log_max_lines")

    # -- plumbing ---------------------------------------------------------------------------------

    def _call(
        self, script: str, *args: str | int | float, parse: Callable[[Reply], T], now: int | None = None
    ) -> ScriptCall[T]:
        stamp = now_ms(self.clock) if now is None else now
        return ScriptCall(script, self.declared(script), (stamp, self.events_max_len, *args), parse)

    def declared(self, script: str, **given: str) -> tuple[str, ...]:
        """The keys ``script`` declares (its ``--@keys`` line), in ``KEYS`` order, for this queue;
        ``given`` names the keys chosen at call time (a schedule's ``record``, a ``lease``)."""
        return self.keys.declared(script_keys(script), **given)

    def lease_keys(self, name: str) -> tuple[str, ...]:
        """The keys of ``lease.lua`` for the lease ``name`` (``P:{Q}:<name>-lease``)."""
        return self.declared("lease", lease=self.keys.key(name + "-lease"))

    def deliver_many(self, child_ids: list[str]) -> Op[None]:
        """Deliver the outcomes of flow children ``child_ids`` of this queue to their parents
        (:class:`jqc.engine.ops_flows.Flowing` does; here, for operation groups used alone, nothing)."""
        return
        yield

    def _job(self, job_id: str, fields: Mapping[str, str]) -> Job:
        return Job.from_fields(self.name, job_id, fields)

    def _ok(self, reply: Reply) -> None:
        checked(reply)

    def _offset(self, offset: object) -> int:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidOptionError(f"offset must be an int >= 0, not {offset!r}")
        return offset

    def _decode_listing(self, reply: Reply) -> tuple[int, list[tuple[Job, dict[str, str]]], list[tuple[str, str]]]:
        body = checked(reply)
        decoded: list[tuple[Job, dict[str, str]]] = []
        corrupt: list[tuple[str, str]] = []
        for i in range(2, len(body), 2):
            job_id, fields = as_str(body[i]), record_of(body[i + 1])
            if not fields:
                continue  # removed between the index read and the hash read
            try:
                decoded.append((self._job(job_id, fields), fields))
            except CorruptJobError as exc:
                corrupt.append((job_id, str(exc)))
        return as_int(body[1]), decoded, corrupt


def code_and_count(reply: Reply) -> tuple[Code, int]:
    """A bounded operation's reply: {code, how many it did}."""
    body = checked(reply)
    return code_of(body), as_int(body[1])


def code_and_ids(reply: Reply) -> tuple[Code, list[str]]:
    """A bounded operation's reply: {code, ids it did}."""
    body = checked(reply)
    return code_of(body), as_strs(body[1])


def letter_of(job: Job, fields: Mapping[str, str]) -> DeadLetter:
    """The dead letter of a listed dead-letter record (``job`` decoded from its ``fields``)."""
    return DeadLetter(job=job, dead_at=int(fields.get("dat", 0)) / 1000.0, worker=fields.get("dw") or None)
