"""A lagging replica of one queue: a copy of its keys as they were at one moment, and putting it back.

The ``failover`` fault (:mod:`~jqc.sim.failover`) takes a :class:`Copy` of every key of the
queue when the replica stops receiving writes, and at the failover replaces the queue's keys
with it, as a promoted replica that had not received the last writes would serve them. The copy
is logical (each key read by its type: hashes, lists, sorted sets with their exact scores,
strings, sets), so it runs on every backend through the engine's plain commands, in a fixed
order (the event log stays the same on every backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jqc.engine.calls import CommandCall, Op, Scan
from jqc.engine.keys import QueueKeys
from jqc.engine.replies import as_int, as_str, as_strs, pairs

__all__ = ["Copy", "copy_op", "restore_op"]

_GLOB = str.maketrans({c: "\\" + c for c in "\\*?[]{}"})


def _pattern(keys: QueueKeys) -> str:
    return keys.base.translate(_GLOB) + "*"


@dataclass(slots=True)
class Copy:
    """Every key of one queue at one moment: ``hashes``, ``lists``, ``zsets`` (member -> score, as
    the server printed it), ``strings`` and ``sets``, by key."""

    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    zsets: dict[str, dict[str, str]] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)
    sets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def keys(self) -> int:
        return len(self.hashes) + len(self.lists) + len(self.zsets) + len(self.strings) + len(self.sets)


def copy_op(keys: QueueKeys) -> Op[Copy]:
    """Read every key of the queue into a :class:`Copy` (streams, which the simulator does not
    keep, are left out)."""
    found: list[str] = yield Scan(_pattern(keys), 1000)
    out = Copy()
    for key in sorted(found):
        kind = yield CommandCall(("TYPE", key), as_str)
        if kind == "hash":
            out.hashes[key] = yield CommandCall(("HGETALL", key), pairs)
        elif kind == "list":
            out.lists[key] = yield CommandCall(("LRANGE", key, 0, -1), as_strs)
        elif kind == "zset":
            flat = yield CommandCall(("ZRANGE", key, 0, -1, "WITHSCORES"), as_strs)
            out.zsets[key] = dict(zip(flat[::2], flat[1::2], strict=True))
        elif kind == "string":
            out.strings[key] = yield CommandCall(("GET", key), as_str)
        elif kind == "set":
            out.sets[key] = sorted((yield CommandCall(("SMEMBERS", key), as_strs)))
    return out


def restore_op(keys: QueueKeys, copy: Copy) -> Op[int]:
    """Replace every key of the queue with ``copy``; returns the keys written."""
    found: list[str] = yield Scan(_pattern(keys), 1000)
    ordered = sorted(found)
    for at in range(0, len(ordered), 500):
        yield CommandCall(("DEL", *ordered[at : at + 500]), as_int)
    for key, fields in copy.hashes.items():
        if fields:
            yield CommandCall(("HSET", key, *(x for pair in fields.items() for x in pair)), as_int)
    for key, items in copy.lists.items():
        if items:
            yield CommandCall(("RPUSH", key, *items), as_int)
    for key, scores in copy.zsets.items():
        if scores:
            yield CommandCall(("ZADD", key, *(x for member, score in scores.items() for x in (score, member))), as_int)
    for key, value in copy.strings.items():
        yield CommandCall(("SET", key, value), lambda reply: 1)
    for key, members in copy.sets.items():
        if members:
            yield CommandCall(("SADD", key, *members), as_int)
    return copy.keys
