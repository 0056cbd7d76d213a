"""How the dashboard writes numbers, times and data: the templates' filters, and the small charts."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jqc.engine.metrics import Metrics, MinuteMetrics

__all__ = ["Spark", "ago", "duration", "pretty", "sparks", "when", "zoned"]


def duration(seconds: float | None) -> str:
    """``0.8 ms``, ``340 ms``, ``2.5 s``, ``4.2 min``, ``3.1 h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def when(stamp: float | None) -> str:
    """A clock time as UTC ``YYYY-MM-DD HH:MM:SS``; ``-`` for None or 0."""
    if not stamp:
        return "-"
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def zoned(moment: datetime.datetime) -> str:
    """An aware datetime in its own zone, ``YYYY-MM-DD HH:MM:SS CET`` (a schedule's next ticks)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def ago(stamp: float | None, now: float) -> str:
    """How long before ``now`` (the dashboard's clock) ``stamp`` was: ``12.0 s ago``."""
    if not stamp:
        return "never"
    delta = now - stamp
    return f"in {duration(-delta)}" if delta < 0 else f"{duration(delta)} ago"


def pretty(value: Any) -> str:
    """JSON, indented, non-ASCII kept (what an operator reads on a job page)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True, slots=True)
class Spark:
    """One small SVG chart over the last hour: bars (throughput) or a polyline (a percentile)."""

    width: int
    height: int
    bars: tuple[tuple[int, float, float, float], ...]  # x, height of completed, height of failed, value
    line: str  # polyline points, empty for a bar chart
    peak: float
    label: str


WIDTH, HEIGHT = 120, 28


def _minutes(metrics: Metrics, last_minute: int) -> list[MinuteMetrics | None]:
    by_minute = {m.minute: m for m in metrics.minutes}
    first = last_minute - metrics.window_minutes + 1
    return [by_minute.get(minute) for minute in range(first, last_minute + 1)]


def _line(values: Sequence[float | None], peak: float) -> str:
    step = WIDTH / max(1, len(values) - 1)
    points = [
        f"{i * step:.1f},{HEIGHT - 1 - (v / peak) * (HEIGHT - 2):.1f}" for i, v in enumerate(values) if v is not None
    ]
    return " ".join(points)


def sparks(metrics: Metrics, last_minute: int) -> tuple[Spark, Spark, Spark]:
    """Throughput per minute (completed and failed bars), p95 wait and p95 run time per minute."""
    minutes = _minutes(metrics, last_minute)
    n = max(1, len(minutes))
    done = [(m.completed, m.failed) if m else (0, 0) for m in minutes]
    peak = max((c + f for c, f in done), default=0) or 1
    bar_w = WIDTH / n
    bars = tuple(
        (round(i * bar_w), (c / peak) * HEIGHT, (f / peak) * HEIGHT, float(c + f)) for i, (c, f) in enumerate(done)
    )
    throughput = Spark(WIDTH, HEIGHT, bars, "", float(peak), "jobs per minute")
    out = [throughput]
    for which, label in (("wait", "p95 wait"), ("run", "p95 run time")):
        values = [None if m is None else getattr(m, which).percentile(95) for m in minutes]
        top = max((v for v in values if v is not None), default=0.0) or 1.0
        out.append(Spark(WIDTH, HEIGHT, (), _line(values, top), top, label))
    return out[0], out[1], out[2]
