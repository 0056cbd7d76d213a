"""The Redis key layout of one queue.

Every key of queue ``Q`` under prefix ``P`` starts with ``P:{Q}:``. The braces are a Redis Cluster
hash tag: all of a queue's keys hash to one slot, so each Lua script touches one slot only, and
different queues spread across a cluster. Scripts receive ``P:{Q}:`` as ``KEYS[1]`` and derive every
other key from it with the suffixes below (see ``docs/keys.md`` for types and meanings).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Names of one queue's keys."""

    prefix: str
    queue: str

    @property
    def base(self) -> str:
        """The common prefix, hash tag included, passed to every script as KEYS[1]."""
        return f"{self.prefix}:{{{self.queue}}}:"

    def key(self, suffix: str) -> str:
        return self.base + suffix

    def job(self, job_id: str) -> str:
        return self.base + "j:" + job_id

    def log(self, job_id: str) -> str:
        return self.base + "l:" + job_id

    def dead(self, job_id: str) -> str:
        return self.base + "dl:" + job_id

    def minute(self, minute: int) -> str:
        return self.base + f"m:{minute}"

    @property
    def meta(self) -> str:
        return self.base + "meta"

    @property
    def events(self) -> str:
        return self.base + "events"

    @property
    def minutes(self) -> str:
        return self.base + "mi"

    @property
    def scan_pattern(self) -> str:
        """A SCAN MATCH pattern for every key of this queue (braces escaped for glob matching)."""
        return f"{self.prefix}:\\{{{self.queue}\\}}:*"


def meta_scan_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern that finds the meta hash of every queue under ``prefix``."""
    return f"{prefix}:\\{{*\\}}:meta"
