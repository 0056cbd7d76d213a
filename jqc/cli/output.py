"""How the ``jqc`` commands print: through ``rich``, tables and colour on a terminal, plain aligned
text when the output is piped or captured, and JSON with ``--json``.

Plain output has no colour codes, no box characters, no wrapping and no trailing spaces, so it
stays easy to ``grep``, ``awk`` and diff; ``NO_COLOR`` turns colour off on a terminal too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

import jqc

__all__ = [
    "age",
    "console",
    "emit_json",
    "is_terminal",
    "job_json",
    "jsonable",
    "local_time",
    "ms",
    "rich_table",
    "show",
    "styled",
    "table",
    "when",
]

# A header rule of dashes and nothing else: what piped output looks like.
PLAIN = box.Box("    \n    \n -- \n    \n    \n -- \n    \n    \n", ascii=True)
PLAIN_WIDTH = 10_000  # wide enough that rich never wraps or cuts a piped line

STYLES = {
    "waiting": "cyan",
    "delayed": "blue",
    "active": "yellow",
    "completed": "green",
    "failed": "red",
    "dead": "red",
    "healthy": "green",
    "degraded": "yellow",
    "unhealthy": "bold red",
    "ok": "green",
    "warn": "yellow",
    "fail": "bold red",
}


def is_terminal(out: TextIO) -> bool:
    """True when ``out`` is an interactive terminal (then colour and boxes are used)."""
    isatty = getattr(out, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def console(out: TextIO) -> Console:
    """A rich console writing to ``out``: colour on a terminal, plain text otherwise."""
    if is_terminal(out):
        return Console(file=out, highlight=False, emoji=False)
    return Console(file=out, width=PLAIN_WIDTH, color_system=None, force_terminal=False, highlight=False, emoji=False)


def show(out: TextIO, renderable: RenderableType) -> None:
    """Print a table (or any rich renderable) to ``out``, plain when ``out`` is not a terminal."""
    terminal = is_terminal(out)
    if isinstance(renderable, Table):
        renderable.box = box.SIMPLE_HEAVY if terminal else PLAIN
        renderable.show_edge = terminal
    if terminal:
        console(out).print(renderable)
        return
    plain = console(out)
    with plain.capture() as captured:
        plain.print(renderable)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def styled(value: Any) -> Text:
    """A state or status word (``failed``, ``healthy``, ...), coloured by its meaning on a terminal."""
    text = "-" if value is None else str(value)
    return Text(text, style=STYLES.get(text.lower(), ""))


def _cell(value: Any) -> Text:
    """A cell: ``-`` for None, else the text as is (never read as rich markup)."""
    if isinstance(value, Text):
        return value
    return Text("-" if value is None else str(value))


def rich_table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], *, title: str | None = None, caption: str | None = None
) -> Table:
    """A table of ``rows`` under ``headers`` (print it with :func:`show`)."""
    grid = Table(title=title, caption=caption, pad_edge=False, header_style="bold", title_justify="left")
    grid.caption_justify = "left"
    for header in headers:
        grid.add_column(header)
    for row in rows:
        grid.add_row(*(_cell(cell) for cell in row))
    return grid


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """The plain text of a table (for code that builds strings); :func:`show` prints one."""
    plain = Console(width=PLAIN_WIDTH, color_system=None, force_terminal=False, highlight=False, emoji=False)
    grid = rich_table(rows, headers)
    grid.box, grid.show_edge = PLAIN, False
    with plain.capture() as captured:
        plain.print(grid)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


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


def job_json(job: jqc.Job) -> dict[str, Any]:
    """A job as JSON, with the counters that are computed rather than stored (``attempts_left``)."""
    out: dict[str, Any] = jsonable(job)
    out["attempts_left"] = job.attempts_left
    return out


def emit_json(out: TextIO, value: Any) -> None:
    """Write ``value`` as indented JSON and a newline (what ``--json`` prints)."""
    out.write(json.dumps(jsonable(value), indent=2, default=str) + "\n")


def ms(seconds: float | None, *, missing: str = "-") -> str:
    """Seconds shown as milliseconds with one decimal; ``missing`` for no value."""
    return missing if seconds is None else f"{seconds * 1000:.1f}"


def when(seconds: float) -> str:
    """A Unix time shown as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float) -> str:
    """A duration in words a person reads at a glance: ``850 ms``, ``42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(math.floor(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def local_time(seconds: float | None, now: float) -> str | None:
    """A Unix time in the local time zone with its distance from ``now``: ``2026-11-28 14:03:05
    (3 min 5 s ago)``, ``... (in 30 s)``; None for no time."""
    if seconds is None:
        return None
    stamp = datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    delta = now - seconds
    return f"{stamp} ({age(delta)} ago)" if delta >= 0 else f"{stamp} (in {age(delta)})"
