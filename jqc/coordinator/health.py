"""Queue health: healthy / degraded / unhealthy from stated rules, stored in Redis with its reasons.

The rules (all thresholds in :class:`HealthRules`, each can be switched off with None):

- **error rate**: failed attempts per finished attempt in the window, judged only once at least
  ``min_attempts`` attempts finished (so two failures out of three do not page anyone);
- **wait p95 against an SLO**: the ``slo_percentile`` of wait time above ``wait_slo`` is
  degraded, above ``wait_slo * slo_unhealthy_factor`` unhealthy;
- **oldest waiting job**: its age above ``oldest_waiting_degraded`` / ``oldest_waiting_unhealthy``;
- **no live workers**: jobs wait and the worker registry (``P:{Q}:workers``) has nobody whose
  heartbeat is younger than ``worker_ttl``. Without a registry, liveness is unknown and only noted;
- **not consuming**: a live worker is connected (heartbeating) but has not polled while jobs wait
  on the queue, a slot of its free and no rate limit holding it (the rule of
  :mod:`jqc.engine.liveness`, each worker's own ``stuck_after`` unless ``not_consuming_after``
  overrides it): ``not_consuming`` (degraded) when some live workers are, ``no_live_workers``
  (unhealthy) when every live worker is, since then nobody consumes;
- **stall rate**: stalled-job recoveries per ended attempt, counted from the event stream
  (``stall_scan_limit`` newest events at most; a partial count is said to be a lower bound);
- a paused queue is noted, not judged.

A check is stored in the hash ``P:{Q}:health`` (one HSET, so readers never see half a record):
``status``, ``reasons`` (JSON list), ``values`` (JSON of the numbers judged), ``at`` (checked at,
ms, from the queue's clock) and ``window`` (minutes). Nothing expires on the server: readers judge
staleness from ``at`` with their own clock.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from jqc.connection import Connection
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.calls import CommandCall, Op, run_async, run_sync
from jqc.engine.operations import QueueOperations
from jqc.engine.queue import Queue
from jqc.engine.replies import as_int, pairs
from jqc.errors import CorruptJobError, InvalidOptionError

from .metrics import QueueSnapshot, queue_names_op, snapshot_op

__all__ = [
    "HealthReport",
    "HealthRules",
    "HealthStatus",
    "Level",
    "Reason",
    "acheck",
    "aread_health",
    "check",
    "check_all",
    "check_op",
    "evaluate",
    "read_health",
    "read_op",
]


class HealthStatus(enum.StrEnum):
    """Overall state of a queue, worst first when sorted by :attr:`rank` descending."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}


class Level(enum.StrEnum):
    """How much one finding weighs: a note (info) leaves the status healthy."""

    INFO = "info"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule's finding: which rule, how bad, what it saw and against what threshold."""

    rule: str
    level: Level
    message: str
    value: float | None = None
    threshold: float | None = None


def _opt_number(value: object, name: str, *, low: float = 0.0, high: float = float("inf")) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidOptionError(f"{name} must be None or a number between {low} and {high}, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthRules:
    """The thresholds health is judged by. Rates are fractions (0.05 = 5%), times are seconds."""

    window_minutes: int = 5
    min_attempts: int = 20
    error_rate_degraded: float | None = 0.05
    error_rate_unhealthy: float | None = 0.25
    wait_slo: float | None = None
    slo_percentile: float = 95.0
    slo_unhealthy_factor: float = 2.0
    oldest_waiting_degraded: float | None = 300.0
    oldest_waiting_unhealthy: float | None = 1800.0
    no_live_workers: Level = Level.UNHEALTHY
    worker_ttl: float = 30.0
    not_consuming: Level | None = Level.DEGRADED
    not_consuming_after: float | None = None
    stall_rate_degraded: float | None = 0.05
    stall_rate_unhealthy: float | None = 0.25
    stall_scan_limit: int = 2000

    def __post_init__(self) -> None:
        w = self.window_minutes
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= 100_000:
            raise InvalidOptionError(f"window_minutes must be an int between 1 and 100000, not {w!r}")
        for name in ("min_attempts", "stall_scan_limit"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidOptionError(f"{name} must be an int >= 0, not {v!r}")
        for name in ("error_rate_degraded", "error_rate_unhealthy", "stall_rate_degraded", "stall_rate_unhealthy"):
            _opt_number(getattr(self, name), name, high=1.0)
        for name in ("wait_slo", "oldest_waiting_degraded", "oldest_waiting_unhealthy"):
            _opt_number(getattr(self, name), name)
        _opt_number(self.slo_percentile, "slo_percentile", low=1.0, high=100.0)
        _opt_number(self.slo_unhealthy_factor, "slo_unhealthy_factor", low=1.0)
        _opt_number(self.worker_ttl, "worker_ttl", low=0.001)
        _opt_number(self.not_consuming_after, "not_consuming_after", low=0.001)
        if self.not_consuming is not None and not isinstance(self.not_consuming, Level):
            raise InvalidOptionError(f"not_consuming must be None or a health.Level, not {self.not_consuming!r}")
        if not isinstance(self.no_live_workers, Level):
            raise InvalidOptionError(f"no_live_workers must be a health.Level, not {self.no_live_workers!r}")


@dataclass(frozen=True, slots=True)
class HealthReport:
    """A queue's status at ``checked_at`` (clock seconds) and the findings behind it."""

    queue: str
    status: HealthStatus
    reasons: tuple[Reason, ...]
    checked_at: float
    window_minutes: int
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_fields(self) -> dict[str, str]:
        """The stored form (one Redis hash)."""
        return {
            "status": self.status.value,
            "reasons": json.dumps([_reason_json(r) for r in self.reasons], separators=(",", ":")),
            "values": json.dumps(dict(self.values), separators=(",", ":")),
            "at": str(round(self.checked_at * 1000)),
            "window": str(self.window_minutes),
        }

    @classmethod
    def from_fields(cls, queue: str, stored: Mapping[str, str]) -> HealthReport:
        """Decode a stored record; raises :class:`CorruptJobError` when it is not one jqc wrote."""
        try:
            reasons = tuple(
                Reason(
                    rule=str(r["rule"]),
                    level=Level(r["level"]),
                    message=str(r["message"]),
                    value=r.get("value"),
                    threshold=r.get("threshold"),
                )
                for r in json.loads(stored["reasons"])
            )
            values = json.loads(stored.get("values", "{}"))
            return cls(
                queue=queue,
                status=HealthStatus(stored["status"]),
                reasons=reasons,
                checked_at=int(stored["at"]) / 1000.0,
                window_minutes=int(stored.get("window", 0)),
                values=values if isinstance(values, dict) else {},
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CorruptJobError(f"health record of queue {queue!r} cannot be decoded: {exc!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "status": self.status.value,
            "reasons": [_reason_json(r) for r in self.reasons],
            "checked_at": self.checked_at,
            "window_minutes": self.window_minutes,
            "values": dict(self.values),
        }


def _reason_json(reason: Reason) -> dict[str, Any]:
    out = asdict(reason)
    out["level"] = reason.level.value
    return out


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _graded(
    rule: str, value: float, degraded: float | None, unhealthy: float | None, what: str, fmt: Any
) -> Reason | None:
    if unhealthy is not None and value > unhealthy:
        return Reason(rule, Level.UNHEALTHY, f"{what} {fmt(value)} above {fmt(unhealthy)}", value, unhealthy)
    if degraded is not None and value > degraded:
        return Reason(rule, Level.DEGRADED, f"{what} {fmt(value)} above {fmt(degraded)}", value, degraded)
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def evaluate(snapshot: QueueSnapshot, rules: HealthRules | None = None) -> HealthReport:
    """Judge a snapshot by ``rules`` (pure: reads and writes nothing)."""
    rules = rules or HealthRules()
    reasons: list[Reason] = []

    def add(reason: Reason | None) -> None:
        if reason is not None:
            reasons.append(reason)

    attempts = snapshot.attempts
    if attempts >= max(1, rules.min_attempts):
        add(
            _graded(
                "error_rate",
                snapshot.error_rate,
                rules.error_rate_degraded,
                rules.error_rate_unhealthy,
                "error rate",
                _pct,
            )
        )
    if rules.wait_slo is not None:
        p = snapshot.wait_percentile(rules.slo_percentile)
        if p is not None:
            label = f"wait p{rules.slo_percentile:g}"
            add(_graded("wait_slo", p, rules.wait_slo, rules.wait_slo * rules.slo_unhealthy_factor, label, _s))
    if snapshot.oldest_waiting_age is not None:
        add(
            _graded(
                "oldest_waiting",
                snapshot.oldest_waiting_age,
                rules.oldest_waiting_degraded,
                rules.oldest_waiting_unhealthy,
                "oldest waiting job is",
                _s,
            )
        )
    if snapshot.live_workers is None:
        if snapshot.backlog > 0:
            add(Reason("workers", Level.INFO, "no worker registry: whether workers are live is unknown"))
    elif snapshot.live_workers == 0:
        if snapshot.backlog > 0:
            add(Reason("workers", rules.no_live_workers, f"no live workers while {snapshot.backlog} job(s) wait", 0.0))
        else:
            add(Reason("workers", Level.INFO, "no live workers (nothing waiting)", 0.0))
    elif snapshot.not_consuming and rules.not_consuming is not None:
        stuck, live = len(snapshot.not_consuming), snapshot.live_workers
        worker, why = snapshot.not_consuming[0]
        level = rules.no_live_workers if stuck >= live else rules.not_consuming
        scope = "every live worker" if stuck >= live else f"{stuck} of {live} live workers"
        more = f" (and {stuck - 1} more)" if stuck > 1 else ""
        add(Reason("not_consuming", level, f"{scope} connected but not consuming: {worker}: {why}{more}", float(stuck)))
    rate = snapshot.stall_rate
    if (
        rate is not None
        and snapshot.stalls is not None
        and snapshot.stalls.stalls + attempts >= max(1, rules.min_attempts)
    ):
        found = _graded("stall_rate", rate, rules.stall_rate_degraded, rules.stall_rate_unhealthy, "stall rate", _pct)
        if found is not None and not snapshot.stalls.complete:
            found = Reason(found.rule, found.level, found.message + " (at least)", found.value, found.threshold)
        add(found)
    if snapshot.counts.paused:
        add(Reason("paused", Level.INFO, "queue is paused"))

    worst = max((r.level for r in reasons if r.level != Level.INFO), key=_level_rank, default=None)
    status = HealthStatus.HEALTHY if worst is None else HealthStatus(worst.value)
    values = {
        "backlog": snapshot.backlog,
        "attempts": attempts,
        "error_rate": round(snapshot.error_rate, 6),
        "wait_p95": snapshot.wait_percentile(95),
        "oldest_waiting_age": snapshot.oldest_waiting_age,
        "live_workers": snapshot.live_workers,
        "not_consuming": [w for w, _ in snapshot.not_consuming],
        "stall_rate": None if rate is None else round(rate, 6),
        "throughput_per_minute": round(snapshot.throughput_per_minute, 3),
    }
    return HealthReport(snapshot.queue, status, tuple(reasons), snapshot.at, snapshot.window_minutes, values)


def _level_rank(level: Level) -> int:
    return {Level.INFO: 0, Level.DEGRADED: 1, Level.UNHEALTHY: 2}[level]


def health_key(ops: QueueOperations) -> str:
    return ops.keys.key("health")


def _store(ops: QueueOperations, report: HealthReport) -> CommandCall[int]:
    flat = [x for pair in report.to_fields().items() for x in pair]
    return CommandCall(("HSET", health_key(ops), *flat), as_int)


def check_op(ops: QueueOperations, rules: HealthRules | None = None, *, store: bool = True) -> Op[HealthReport]:
    """Read a snapshot, judge it, and (by default) store the result in ``P:{Q}:health``."""
    rules = rules or HealthRules()
    snapshot: QueueSnapshot = yield from snapshot_op(
        ops,
        window_minutes=rules.window_minutes,
        worker_ttl=rules.worker_ttl,
        stall_scan_limit=rules.stall_scan_limit if _stall_rule_on(rules) else 0,
        consuming=rules.not_consuming is not None,
        stuck_after=rules.not_consuming_after,
    )
    report = evaluate(snapshot, rules)
    if store:
        yield _store(ops, report)
    return report


def _stall_rule_on(rules: HealthRules) -> bool:
    return rules.stall_rate_degraded is not None or rules.stall_rate_unhealthy is not None


def read_op(ops: QueueOperations) -> Op[HealthReport | None]:
    """The last stored check of the queue, or None if it was never checked."""
    stored = yield CommandCall(("HGETALL", health_key(ops)), _as_dict)
    return HealthReport.from_fields(ops.name, stored) if stored else None


_as_dict = pairs


def check(queue: Queue, rules: HealthRules | None = None, *, store: bool = True) -> HealthReport:
    return run_sync(queue.connection.backend, check_op(queue.ops, rules, store=store))


async def acheck(queue: AsyncQueue, rules: HealthRules | None = None, *, store: bool = True) -> HealthReport:
    return await run_async(queue.connection.async_backend(), check_op(queue.ops, rules, store=store))


def read_health(queue: Queue) -> HealthReport | None:
    return run_sync(queue.connection.backend, read_op(queue.ops))


async def aread_health(queue: AsyncQueue) -> HealthReport | None:
    return await run_async(queue.connection.async_backend(), read_op(queue.ops))


def check_all(
    connection: Connection,
    queues: Iterable[str] | None = None,
    rules: HealthRules | None = None,
    *,
    store: bool = True,
) -> list[HealthReport]:
    """Check ``queues`` (default: every queue under the connection's prefix)."""
    if queues is None:
        names = run_sync(connection.backend, queue_names_op(connection.prefix))
    else:
        names = list(queues)
    return [check(connection.queue(name), rules, store=store) for name in names]


def rules_from(values: Mapping[str, Any]) -> HealthRules:
    """HealthRules from a mapping of field names (unknown names raise InvalidOptionError)."""
    known = {f.name for f in fields(HealthRules)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidOptionError(f"unknown health rule(s) {unknown}; known: {sorted(known)}")
    return HealthRules(**values)
