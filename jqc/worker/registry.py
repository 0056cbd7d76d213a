"""Sans-IO calls for the worker's queue-wide coordination: the stall-check lease and the heartbeat.

Both are one Lua script each (``lease.lua``, ``heartbeat.lua``) and, like every engine call, take
the caller's clock: a lease's expiry and a worker's last-seen time are compared with the clock of
whoever reads them, never with the server's, and no key relies on server-side expiry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jqc.clock import now_ms
from jqc.engine.calls import ScriptCall, checked
from jqc.engine.operations import QueueOperations
from jqc.engine.replies import as_int

__all__ = ["STALL_LEASE", "heartbeat", "lease", "unregister"]

#: The lease that lets one worker at a time run the stall check of a queue (key ``P:{Q}:stall-lease``).
STALL_LEASE = "stall"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def lease(ops: QueueOperations, name: str, holder: str, duration: float) -> ScriptCall[bool]:
    """Take or keep the named lease for ``duration`` seconds; True when ``holder`` has it now."""
    return ScriptCall(
        "lease",
        ops.lease_keys(name),
        (now_ms(ops.clock), ops.events_max_len, name, holder, _ms(duration)),
        lambda reply: bool(checked(reply)[1]),
    )


def give_up_lease(ops: QueueOperations, name: str, holder: str) -> ScriptCall[bool]:
    """Drop the named lease if ``holder`` has it, so another worker can take it at once."""
    return ScriptCall(
        "lease", ops.lease_keys(name), (now_ms(ops.clock), ops.events_max_len, name, holder, 0), lambda reply: False
    )


def heartbeat(
    ops: QueueOperations, worker: str, record: Mapping[str, Any], *, ttl: float, prune_after: float
) -> ScriptCall[int]:
    """Register or refresh ``worker`` in the queue's worker list; returns dead records pruned.

    ``record`` values are stored as text (lists and dicts as JSON). Records last seen more than
    ``prune_after`` seconds ago are deleted, a bounded number per beat.
    """
    now = now_ms(ops.clock)
    fields: list[str | int] = ["ttl", _ms(ttl)]
    for key, value in record.items():
        fields += [key, value if isinstance(value, (str, int)) else json.dumps(value, separators=(",", ":"))]
    return ScriptCall(
        "heartbeat",
        ops.declared("heartbeat"),
        (now, ops.events_max_len, worker, now - _ms(prune_after), *fields),
        lambda reply: as_int(checked(reply)[1]),
    )


def unregister(ops: QueueOperations, worker: str) -> ScriptCall[int]:
    """Remove ``worker`` from the queue's worker list (a clean stop)."""
    return ScriptCall(
        "heartbeat",
        ops.declared("heartbeat"),
        (now_ms(ops.clock), ops.events_max_len, worker, 0),
        lambda reply: as_int(checked(reply)[1]),
    )
