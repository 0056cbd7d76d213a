"""Loads the Lua scripts once per process: resolves includes, prepends the reply codes."""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources

from jqc.backends.base import Script
from jqc.engine.codes import lua_prelude

_INCLUDE = re.compile(r"^--@include (.+)$", re.MULTILINE)

NAMES = (
    "add", "claim", "complete", "fail", "extend", "progress", "log", "release", "recover",
    "pause", "configure", "remove", "promote", "retry", "change_priority", "change_delay",
    "clean", "drain", "obliterate", "list", "counts", "metrics", "replay", "purge",
    "lease", "heartbeat", "complete_many", "coordinator", "schedule_set", "schedule_fire", "schedule_remove",
    "priority_counts", "update_data", "cancel", "rate_limit",
)  # fmt: skip


def _read(path: str) -> str:
    return resources.files("jqc.engine").joinpath("lua", path).read_text("utf-8")


def build_source(name: str) -> str:
    """The source Redis runs for ``name``: code prelude, then the file with includes expanded."""
    text = _read(f"{name}.lua")

    def expand(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split(",")]
        return "\n".join(_read(f"include/{p}.lua") for p in parts)

    return lua_prelude() + _INCLUDE.sub(expand, text, count=1)


@functools.cache
def scripts() -> dict[str, Script]:
    """Every script by name (read and hashed once per process)."""
    out: dict[str, Script] = {}
    for name in NAMES:
        source = build_source(name)
        out[name] = Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())
    return out
