"""Loads the Lua scripts once per process (sources built by :mod:`jqc.engine.lua_source`)."""

from __future__ import annotations

import functools
import hashlib

from jqc.backends.base import Script
from jqc.engine.lua_source import build_source, script_keys

__all__ = ["NAMES", "build_source", "script_keys", "scripts"]

NAMES = (
    "add", "claim", "complete", "fail", "extend", "progress", "log", "release", "recover",
    "pause", "configure", "remove", "promote", "retry", "change_priority", "change_delay",
    "clean", "drain", "obliterate", "list", "counts", "metrics", "replay", "purge",
    "lease", "heartbeat", "complete_many", "coordinator", "schedule_set", "schedule_fire", "schedule_remove",
    "priority_counts", "update_data", "cancel", "rate_limit",
    "flow_create", "flow_release", "flow_step", "flow_due", "flow_deliver", "flow_ack", "flow_park", "flow_abort",
)  # fmt: skip


@functools.cache
def scripts() -> dict[str, Script]:
    """Every script by name (read and hashed once per process)."""
    out: dict[str, Script] = {}
    for name in NAMES:
        source = build_source(name)
        out[name] = Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())
    return out
