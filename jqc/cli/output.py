"""How the ``jqc`` commands print: aligned text tables, JSON, milliseconds and UTC timestamps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import jqc

__all__ = ["emit_json", "jsonable", "ms", "table", "when"]


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses, mappings, sequences and jqc enums turned into JSON types."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (jqc.JobState, jqc.Code)):
        return value.name.lower() if isinstance(value, jqc.Code) else value.value
    return value


def emit_json(out: TextIO, value: Any) -> None:
    """Write ``value`` as indented JSON and a newline (what ``--json`` prints)."""
    out.write(json.dumps(jsonable(value), indent=2, default=str) + "\n")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ms(seconds: float | None) -> str:
    """Seconds shown as milliseconds with one decimal, ``-`` for no value."""
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def when(seconds: float) -> str:
    """A Unix time shown as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
