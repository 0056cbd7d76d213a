"""Reading and editing what a queue stores, for tests that corrupt or inspect records directly.

A job is one packed record, field ``<id>`` of the hash ``P:{Q}:jobs`` (``jqc.engine.records``); a
dead letter one of ``P:{Q}:dead``. These helpers read and rewrite single fields of such records the
way a test that damages data on purpose needs to.
"""

from __future__ import annotations

from collections.abc import Mapping

import jqc
from jqc.engine.records import pack, unpack


def job_record(conn: jqc.Connection, queue: jqc.Queue, job_id: str) -> dict[str, str]:
    """The stored fields of job ``job_id`` ({} when there is none)."""
    text = conn.sync_client().hget(queue.ops.keys.jobs, job_id)
    return unpack(text) if text else {}


def dead_record(conn: jqc.Connection, queue: jqc.Queue, job_id: str) -> dict[str, str]:
    """The stored fields of the dead letter of ``job_id`` ({} when there is none)."""
    text = conn.sync_client().hget(queue.ops.keys.dead, job_id)
    return unpack(text) if text else {}


def edit_job(conn: jqc.Connection, queue: jqc.Queue, job_id: str, change: Mapping[str, str | None]) -> None:
    """Set (or, for None, delete) fields of job ``job_id``'s stored record."""
    fields = job_record(conn, queue, job_id)
    for name, value in change.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    conn.sync_client().hset(queue.ops.keys.jobs, job_id, pack(fields))
