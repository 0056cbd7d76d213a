"""The Redis key layout of one queue.

Every key of queue ``Q`` under prefix ``P`` starts with ``P:{Q}:``. The braces are a Redis Cluster
hash tag: all of a queue's keys hash to one slot, so each Lua script touches one slot only, and
different queues spread across a cluster. Every script receives every key it touches in ``KEYS``
(named on its ``--@keys`` line, see :mod:`jqc.engine.lua_source`); none is built inside Lua. See
``docs/keys.md`` for types and meanings.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from jqc.errors import InvalidJobIdError, InvalidQueueNameError

QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
MAX_JOB_ID = 200
# Control characters, and lone surrogates (which UTF-8, and so Redis, cannot carry).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name, else raise :class:`InvalidQueueNameError`."""
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise InvalidQueueNameError(
            f"invalid queue name {name!r}: use 1-100 characters from A-Z a-z 0-9 . _ : -, "
            "starting with a letter or digit"
        )
    return name


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` if it is a valid custom job id, else raise :class:`InvalidJobIdError`."""
    if not isinstance(job_id, str) or not job_id or len(job_id) > MAX_JOB_ID or _CONTROL.search(job_id):
        raise InvalidJobIdError(
            f"invalid job id {job_id!r}: use a non-empty str of at most {MAX_JOB_ID} characters "
            "without control characters or lone surrogates"
        )
    return job_id


#: Key names a script may declare (its ``--@keys`` line) and the suffix of each under ``P:{Q}:``.
#: A script that needs a key named at call time (a schedule's record, a lease) declares a name not
#: listed here and its caller passes that key (:meth:`QueueKeys.declared`).
SUFFIXES: dict[str, str] = {
    "meta": "meta", "wait": "wait", "prio": "prio", "delayed": "delayed", "active": "active",
    "completed": "completed", "failed": "failed", "dlq": "dlq", "events": "events", "minutes": "mi",
    "jobs": "jobs", "logs": "logs", "dead": "dead", "metrics": "metrics", "workers": "workers",
    "winfo": "winfo", "schedules": "schedules",
    "parked": "wc", "flows": "fl", "coordinator": "coordinator", "autoscale": "autoscale",
    "dedup": "dd",
}  # fmt: skip

#: The layout version every add writes to ``meta.v``; data of another version is refused.
LAYOUT_VERSION = 2


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Names of one queue's keys."""

    prefix: str
    queue: str

    @property
    def base(self) -> str:
        """The common prefix, hash tag included: every key of the queue starts with it."""
        return f"{self.prefix}:{{{self.queue}}}:"

    def key(self, suffix: str) -> str:
        """The key ``P:{Q}:<suffix>``."""
        return self.base + suffix

    def declared(self, names: tuple[str, ...], **given: str) -> tuple[str, ...]:
        """The keys of ``names`` (a script's ``--@keys``), in order; names not in :data:`SUFFIXES`
        come from ``given`` (whole keys, which must be this queue's)."""
        if not given:
            return _declared(self.base, names)
        out: list[str] = []
        for name in names:
            key = given[name] if name in given else self.base + SUFFIXES[name]
            if not key.startswith(self.base):
                raise ValueError(f"key {key!r} is not a key of queue {self.queue!r}")
            out.append(key)
        return tuple(out)

    @property
    def meta(self) -> str:
        """The queue's meta hash: settings and counters; listings find queues by it."""
        return self.base + "meta"

    @property
    def events(self) -> str:
        """The capped event stream."""
        return self.base + "events"

    @property
    def minutes(self) -> str:
        """The sorted set of minutes that have metrics."""
        return self.base + "mi"

    @property
    def jobs(self) -> str:
        """The hash of every job's packed record (field = job id, see :mod:`jqc.engine.records`)."""
        return self.base + "jobs"

    @property
    def logs(self) -> str:
        """The hash of every job's packed log lines (field = job id)."""
        return self.base + "logs"

    @property
    def dead(self) -> str:
        """The hash of dead-letter records (field = job id)."""
        return self.base + "dead"

    @property
    def metrics(self) -> str:
        """The hash of per-minute counters (field = ``<minute>:<counter>``)."""
        return self.base + "metrics"

    @property
    def worker_records(self) -> str:
        """The hash of live workers' packed records (field = worker id)."""
        return self.base + "winfo"

    @property
    def scan_pattern(self) -> str:
        """A SCAN MATCH pattern for every key of this queue (braces escaped for glob matching)."""
        return f"{self.prefix}:\\{{{self.queue}\\}}:*"


@functools.lru_cache(maxsize=8192)
def _declared(base: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(base + SUFFIXES[name] for name in names)


def meta_scan_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern that finds the meta hash of every queue under ``prefix``."""
    return f"{prefix}:\\{{*\\}}:meta"
