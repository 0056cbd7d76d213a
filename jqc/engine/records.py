"""Packed records: how one job, dead letter or worker record is stored as one field of a per-queue hash.

A queue keeps every job in one hash (``P:{Q}:jobs``, field = job id) instead of a hash per job, so
that every Lua script can declare every key it touches before it runs, even a claim that learns
its job ids only inside the script (see ``docs/cluster.md``). A record's value is its fields packed
one after another as ``<name><byte length>:<value>`` (names are letters and ``_`` only, so the
length is where the digits start), for example ``d2:{}n4:sendt13:1700000000000``. A name may
repeat and the last one counts (claim and complete append what they change). The Lua side
(``include/base.lua``: ``decode``/``encode``) and this module read and write the same text; logs are
packed the same way without names (``<byte length>:<line>`` per line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from jqc.engine.replies import pairs
from jqc.errors import CorruptJobError

__all__ = ["pack", "pack_lines", "record_of", "unpack", "unpack_lines"]

_FIELD = re.compile(rb"([A-Za-z_]+)(\d+):")
_LINE = re.compile(rb"(\d+):")
_NAME = re.compile(r"[A-Za-z_]+")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def unpack(text: str) -> dict[str, str]:
    """The fields of a packed record; :class:`CorruptJobError` when the text is not one."""
    raw = _bytes(text)
    out: dict[str, str] = {}
    pos, end = 0, len(raw)
    while pos < end:
        match = _FIELD.match(raw, pos)
        if match is None:
            raise CorruptJobError(f"stored record is not packed fields at byte {pos}: {text[:60]!r}")
        start = match.end()
        pos = start + int(match.group(2))
        if pos > end:
            raise CorruptJobError(f"stored record is cut short: {text[:60]!r}")
        out[_text(match.group(1))] = _text(raw[start:pos])
    return out


def pack(fields: Mapping[str, str | int]) -> str:
    """Pack ``fields`` (names sorted, as the Lua side writes them)."""
    parts: list[bytes] = []
    for name in sorted(fields):
        if not _NAME.fullmatch(name):
            raise ValueError(f"record field names are letters and _ only, not {name!r}")
        value = _bytes(str(fields[name]))
        parts.append(b"%s%d:%s" % (name.encode("ascii"), len(value), value))
    return _text(b"".join(parts))


def unpack_lines(text: str | None) -> list[str]:
    """The lines of a packed log (None = no log)."""
    if not text:
        return []
    raw = _bytes(text)
    out: list[str] = []
    pos, end = 0, len(raw)
    while pos < end:
        match = _LINE.match(raw, pos)
        if match is None:
            raise CorruptJobError(f"stored log is not packed lines at byte {pos}")
        start = match.end()
        pos = start + int(match.group(1))
        out.append(_text(raw[start:pos]))
    return out


def pack_lines(lines: Iterable[str]) -> str:
    """Pack log ``lines``."""
    return _text(b"".join(b"%d:%s" % (len(raw), raw) for raw in map(_bytes, lines)))


def record_of(reply: object) -> dict[str, str]:
    """A record from a script or ``HGET`` reply: packed text, a flat field list, or nil (empty)."""
    if reply is None:
        return {}
    if isinstance(reply, str):
        return unpack(reply) if reply else {}
    return pairs(reply)  # type: ignore[arg-type]
