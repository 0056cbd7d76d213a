"""Reading the per-minute counters and log-scaled histograms that complete and fail record.

Bucket 0 holds durations under 1 ms; bucket b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms, a quarter
octave (about 19%) wide, so a percentile read from it is within about 10% of the true value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


def bucket_of(ms: float) -> int:
    """The bucket a duration in ms falls in (mirrors the Lua ``bucket`` function)."""
    if ms < 1:
        return 0
    return math.floor(math.log2(ms) * 4) + 1


def bucket_midpoint_ms(bucket: int) -> float:
    """A representative duration for a bucket: its geometric midpoint (0.5 ms for bucket 0)."""
    if bucket <= 0:
        return 0.5
    return float(2.0 ** ((bucket - 0.5) / 4))


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts per bucket; percentiles in seconds.

    A histogram over a window in which no job finished has no samples: its percentiles and mean
    are None (not 0, which would claim that jobs waited or ran for no time), and its repr says so.
    """

    counts: Mapping[int, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        total = self.total
        if total == 0:
            return "Histogram(no samples: no job finished in the window)"
        p50, p95 = self.percentile(50), self.percentile(95)
        return f"Histogram({total} samples, p50 ~{(p50 or 0) * 1000:.1f} ms, p95 ~{(p95 or 0) * 1000:.1f} ms)"

    @property
    def total(self) -> int:
        """Samples counted."""
        return sum(self.counts.values())

    def percentile(self, p: float) -> float | None:
        """The p-th percentile (0 < p <= 100) in seconds, or None when there are no samples (no job
        completed or failed in the window: wait and run times are recorded when a run ends)."""
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(p / 100.0 * total))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return bucket_midpoint_ms(b) / 1000.0
        return bucket_midpoint_ms(max(self.counts)) / 1000.0

    def mean(self) -> float | None:
        """The mean in seconds (from bucket midpoints), or None when there are no samples."""
        total = self.total
        if total == 0:
            return None
        return sum(bucket_midpoint_ms(b) * n for b, n in self.counts.items()) / total / 1000.0


@dataclass(frozen=True, slots=True)
class MinuteMetrics:
    """What one minute recorded."""

    minute: int
    completed: int
    failed: int
    retried: int
    wait: Histogram
    run: Histogram

    @classmethod
    def from_fields(cls, minute: int, fields: Mapping[str, str]) -> MinuteMetrics:
        wait: Counter[int] = Counter()
        run: Counter[int] = Counter()
        for key, value in fields.items():
            if key[0] == "w":
                wait[int(key[1:])] += int(value)
            elif key[0] == "r":
                run[int(key[1:])] += int(value)
        return cls(
            minute=minute,
            completed=int(fields.get("c", 0)),
            failed=int(fields.get("f", 0)),
            retried=int(fields.get("x", 0)),
            wait=Histogram(dict(wait)),
            run=Histogram(dict(run)),
        )


@dataclass(frozen=True, slots=True)
class Metrics:
    """Metrics of one queue over a window of whole minutes."""

    minutes: tuple[MinuteMetrics, ...]
    window_minutes: int

    @property
    def completed(self) -> int:
        """Jobs completed in the window."""
        return sum(m.completed for m in self.minutes)

    @property
    def failed(self) -> int:
        """Jobs failed for good (dead-lettered) in the window."""
        return sum(m.failed for m in self.minutes)

    @property
    def retried(self) -> int:
        """Failed attempts that will run again, in the window."""
        return sum(m.retried for m in self.minutes)

    @property
    def throughput_per_minute(self) -> float:
        """Completed jobs per minute over the window."""
        return self.completed / max(1, self.window_minutes)

    @property
    def error_rate(self) -> float:
        """Failed attempts (retried or final) per attempt that finished."""
        attempts = self.completed + self.failed + self.retried
        return 0.0 if attempts == 0 else (self.failed + self.retried) / attempts

    def _merge(self, which: str) -> Histogram:
        total: Counter[int] = Counter()
        for m in self.minutes:
            total.update(getattr(m, which).counts)
        return Histogram(dict(total))

    @property
    def wait(self) -> Histogram:
        """Time from ready (added, due or retried) to claimed, over the window."""
        return self._merge("wait")

    @property
    def run(self) -> Histogram:
        """Time from claimed to finished, over the window."""
        return self._merge("run")
