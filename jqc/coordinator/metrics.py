"""One reading of a queue's vital signs: counts, windowed metrics, oldest waiting job, live workers, stalls.

A :class:`QueueSnapshot` is what the Prometheus exposition, the health check and (later) the
autoscaler read. It is built by one sans-IO operation (:func:`snapshot_op`) run by a sync or an
async executor, so both read the same things the same way. Time comes from the queue's clock.

The calls are not one atomic read: counts and metrics are each atomic (one script), while the
oldest-job, worker and stall reads are separate plain commands a moment later. That is fine for
monitoring; nothing here changes the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jqc.clock import now_ms
from jqc.connection import Connection
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.calls import CommandCall, Op, Reply, Scan, run_async, run_sync
from jqc.engine.keys import QueueKeys, meta_scan_pattern
from jqc.engine.liveness import not_consuming
from jqc.engine.metrics import Metrics
from jqc.engine.operations import Counts, QueueOperations, WorkerInfo
from jqc.engine.queue import Queue
from jqc.engine.records import record_of
from jqc.engine.replies import as_int, as_list, as_strs, pairs
from jqc.errors import InvalidOptionError

__all__ = [
    "QueueSnapshot",
    "StallCount",
    "aread_snapshot",
    "aread_snapshots",
    "queue_names_op",
    "read_snapshot",
    "read_snapshots",
    "snapshot_op",
]

PRIO_SHIFT = 2**32  # prio zset score = priority * 2^32 + sequence (see docs/keys.md)
SCAN_COUNT = 1000


@dataclass(frozen=True, slots=True)
class StallCount:
    """Stalled-job recoveries seen in the window, read from the queue's event stream.

    ``complete`` is False when the read stopped at its limit before reaching the window's start
    (then ``stalls`` is a lower bound).
    """

    stalls: int
    complete: bool


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """What one queue looks like at ``at`` (clock seconds), with metrics over ``window_minutes``.

    ``oldest_waiting_age`` is the age (seconds since it became ready) of the longest-waiting job
    among the heads of the line: the next priority-0 job (right end of ``wait``), the next
    prioritized job, and the oldest job of the lowest priority present. It is exact for FIFO
    queues; with LIFO jobs or jobs handed back to the head it is a lower bound. None when nothing
    waits. ``live_workers`` is None when the queue has no worker registry (no worker has ever
    sent a heartbeat, or every one stopped cleanly): liveness is then unknown, not zero.
    ``stalls`` is None when stall counting is off or the queue keeps no event stream.
    ``not_consuming`` lists the live workers that look connected but not consuming (worker id,
    why), by the rule of :mod:`jqc.engine.liveness`; their records are read only while jobs wait
    on an unpaused queue (the rule flags nobody otherwise) and the caller asked for it.
    """

    queue: str
    at: float
    window_minutes: int
    counts: Counts
    metrics: Metrics
    oldest_waiting_age: float | None
    live_workers: int | None
    stalls: StallCount | None
    not_consuming: tuple[tuple[str, str], ...] = ()

    @property
    def backlog(self) -> int:
        """Jobs ready to run and not yet claimed (waiting, prioritized included)."""
        return self.counts.waiting

    @property
    def throughput_per_minute(self) -> float:
        return self.metrics.throughput_per_minute

    @property
    def error_rate(self) -> float:
        return self.metrics.error_rate

    @property
    def attempts(self) -> int:
        """Attempts that finished in the window: completed, failed for good, and failed-then-retried."""
        return self.metrics.completed + self.metrics.failed + self.metrics.retried

    def wait_percentile(self, p: float) -> float | None:
        """The p-th percentile of wait time (ready to claimed) in seconds, None without data."""
        return self.metrics.wait.percentile(p)

    def run_percentile(self, p: float) -> float | None:
        """The p-th percentile of run time (claimed to finished) in seconds, None without data."""
        return self.metrics.run.percentile(p)

    @property
    def stall_rate(self) -> float | None:
        """Stalls per attempt that ended (stalled, completed or failed) in the window; None if unknown."""
        if self.stalls is None:
            return None
        ended = self.stalls.stalls + self.attempts
        return 0.0 if ended == 0 else self.stalls.stalls / ended

    def summary(self) -> dict[str, Any]:
        """The headline numbers as plain JSON-ready values."""
        return {
            "queue": self.queue,
            "at": self.at,
            "window_minutes": self.window_minutes,
            "waiting": self.counts.waiting,
            "delayed": self.counts.delayed,
            "active": self.counts.active,
            "completed": self.counts.completed,
            "failed": self.counts.failed,
            "dead": self.counts.dead,
            "paused": self.counts.paused,
            "throughput_per_minute": round(self.throughput_per_minute, 3),
            "error_rate": round(self.error_rate, 4),
            "wait_p50": self.wait_percentile(50),
            "wait_p95": self.wait_percentile(95),
            "wait_p99": self.wait_percentile(99),
            "run_p50": self.run_percentile(50),
            "run_p95": self.run_percentile(95),
            "run_p99": self.run_percentile(99),
            "oldest_waiting_age": self.oldest_waiting_age,
            "live_workers": self.live_workers,
            "stalls": None if self.stalls is None else self.stalls.stalls,
            "stall_rate": self.stall_rate,
            "not_consuming": [{"worker": w, "reason": why} for w, why in self.not_consuming],
        }


def _check_window(window_minutes: object) -> int:
    if isinstance(window_minutes, bool) or not isinstance(window_minutes, int) or not 1 <= window_minutes <= 100_000:
        raise InvalidOptionError(f"window_minutes must be an int between 1 and 100000, not {window_minutes!r}")
    return window_minutes


def _check_seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10 * 365 * 86400:
        raise InvalidOptionError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def check_snapshot_options(window_minutes: object, worker_ttl: object, stall_scan_limit: object) -> tuple[int, float]:
    """Validate snapshot options; returns (window minutes, worker ttl seconds)."""
    if isinstance(stall_scan_limit, bool) or not isinstance(stall_scan_limit, int) or stall_scan_limit < 0:
        raise InvalidOptionError(f"stall_scan_limit must be an int >= 0, not {stall_scan_limit!r}")
    return _check_window(window_minutes), _check_seconds(worker_ttl, "worker_ttl")


_ids = as_strs
_fields = pairs


def _oldest_waiting(keys: QueueKeys, now: int) -> Op[float | None]:
    wait, prio = keys.key("wait"), keys.key("prio")
    candidates: list[str] = []
    tail = yield CommandCall(("LINDEX", wait, -1), lambda r: r)
    if tail is not None:
        candidates.append(str(tail))
    head = yield CommandCall(("ZRANGE", prio, 0, 0), _ids)
    if head:
        candidates += head
        last = yield CommandCall(("ZRANGE", prio, -1, -1), _ids)
        score = yield CommandCall(("ZSCORE", prio, last[0]), lambda r: None if r is None else float(str(r)))
        if score is not None:
            band = int(score // PRIO_SHIFT) * PRIO_SHIFT
            candidates += yield CommandCall(("ZRANGEBYSCORE", prio, band, "+inf", "LIMIT", 0, 1), _ids)
    oldest: int | None = None
    for job_id in dict.fromkeys(candidates):
        record: dict[str, str] = yield CommandCall(("HGET", keys.jobs, job_id), record_of)
        stamp = record.get("r") or record.get("t")
        if stamp is None:
            continue  # claimed or removed since we looked
        age = max(0, now - int(float(stamp)))
        oldest = age if oldest is None else max(oldest, age)
    return None if oldest is None else oldest / 1000.0


def _live_workers(keys: QueueKeys, now: int, worker_ttl: float) -> Op[int | None]:
    registry = keys.key("workers")
    total = yield CommandCall(("ZCARD", registry), as_int)
    if total == 0:
        return None
    live: int = yield CommandCall(("ZCOUNT", registry, now - round(worker_ttl * 1000), "+inf"), as_int)
    return live


def _not_consuming(
    ops: QueueOperations, counts: Counts, now: int, worker_ttl: float, after: float | None
) -> Op[tuple[tuple[str, str], ...]]:
    if counts.waiting <= 0 or counts.paused:
        return ()  # the rule flags nobody: skip reading the records
    workers: list[WorkerInfo] = yield from ops.workers(ttl=worker_ttl)
    flagged = ((w.id, not_consuming(w, counts, now / 1000.0, after=after)) for w in workers)
    return tuple((w, why) for w, why in flagged if why)


def _entries(reply: Reply) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    for entry in as_list(reply):
        entry_id, raw = as_list(entry)
        out.append((str(entry_id), _fields(raw)))
    return out


def _stalls(keys: QueueKeys, since: int, limit: int) -> Op[StallCount | None]:
    events = keys.events
    exists = yield CommandCall(("EXISTS", events), as_int)
    if not exists:
        return None
    stalls = 0
    read = 0
    end = "+"
    while read < limit:
        batch = min(500, limit - read)
        entries = yield CommandCall(("XREVRANGE", events, end, "-", "COUNT", batch), _entries)
        for _, fields in entries:
            if int(fields.get("t", "0") or 0) < since:
                return StallCount(stalls, True)
            if fields.get("e") == "stalled":
                stalls += 1
        read += len(entries)
        if len(entries) < batch:
            return StallCount(stalls, True)  # read back to the start of the stream
        end = "(" + entries[-1][0]
    return StallCount(stalls, False)


def snapshot_op(
    ops: QueueOperations,
    *,
    window_minutes: int = 5,
    worker_ttl: float = 30.0,
    stall_scan_limit: int = 0,
    consuming: bool = True,
    stuck_after: float | None = None,
) -> Op[QueueSnapshot]:
    """Read one queue's snapshot.

    ``worker_ttl``: a registered worker counts as live while its last heartbeat is younger than
    this. ``stall_scan_limit``: read at most this many of the newest events to count stalls in the
    window (0 = do not count stalls). ``consuming``: judge each live worker by the liveness rule
    (``stuck_after`` overrides the threshold each worker declares).
    """
    window, ttl = check_snapshot_options(window_minutes, worker_ttl, stall_scan_limit)
    now = now_ms(ops.clock)
    counts: Counts = yield ops.counts()
    metrics: Metrics = yield ops.metrics(window)
    oldest = yield from _oldest_waiting(ops.keys, now)
    live = yield from _live_workers(ops.keys, now, ttl)
    stalls: StallCount | None = None
    if stall_scan_limit:
        since = (now // 60000 - window + 1) * 60000  # the first minute the metrics window covers
        stalls = yield from _stalls(ops.keys, since, stall_scan_limit)
    stuck: tuple[tuple[str, str], ...] = ()
    if consuming and live:
        if stuck_after is not None:
            _check_seconds(stuck_after, "stuck_after")
        stuck = yield from _not_consuming(ops, counts, now, ttl, stuck_after)
    return QueueSnapshot(ops.name, now / 1000.0, window, counts, metrics, oldest, live, stalls, stuck)


def queue_names_op(prefix: str) -> Op[list[str]]:
    """Names of every queue under ``prefix``, found with SCAN on their meta keys (never KEYS)."""
    start = len(prefix) + 2
    found: list[str] = yield Scan(meta_scan_pattern(prefix), SCAN_COUNT)
    return sorted({key[start : key.index("}", start)] for key in found})


def read_snapshot(queue: Queue, **options: Any) -> QueueSnapshot:
    """Read ``queue``'s snapshot (options as for :func:`snapshot_op`)."""
    return run_sync(queue.connection.backend, snapshot_op(queue.ops, **options))


async def aread_snapshot(queue: AsyncQueue, **options: Any) -> QueueSnapshot:
    return await run_async(queue.connection.async_backend(), snapshot_op(queue.ops, **options))


def read_snapshots(connection: Connection, queues: Iterable[str] | None = None, **options: Any) -> list[QueueSnapshot]:
    """Snapshots of ``queues`` (default: every queue under the connection's prefix)."""
    names = list(queues) if queues is not None else run_sync(connection.backend, queue_names_op(connection.prefix))
    return [read_snapshot(connection.queue(name), **options) for name in names]


async def aread_snapshots(
    connection: Connection, queues: Iterable[str] | None = None, **options: Any
) -> list[QueueSnapshot]:
    if queues is not None:
        names = list(queues)
    else:
        names = await run_async(connection.async_backend(), queue_names_op(connection.prefix))
    return [await aread_snapshot(connection.async_queue(name), **options) for name in names]
