"""Prometheus exposition of every queue's snapshot, through the ``prometheus-client`` library.

Mount it in an existing app (:func:`wsgi_app`, :func:`asgi_app`), register :class:`JqcCollector`
in your own registry, or run a small server (:func:`serve`, ``jqc metrics serve``). Each scrape
reads Redis (a few calls per queue), so keep the scrape interval at the usual 15 s or more.

Metric names and labels (``queue`` on every per-queue metric):

=====================================  =========  ============================================
``jqc_up``                             gauge      1 when the last read of Redis succeeded
``jqc_jobs{state}``                    gauge      jobs per state: waiting, delayed, active,
                                                  completed, failed (kept by retention), dead
``jqc_queue_paused``                   gauge      1 while paused
``jqc_backlog_jobs``                   gauge      jobs ready to run and not claimed
``jqc_oldest_waiting_age_seconds``     gauge      age of the longest-waiting job (0 if none)
``jqc_window_completed_jobs``          gauge      completed in the window
``jqc_window_failed_jobs``             gauge      failed for good in the window
``jqc_window_retried_jobs``            gauge      failed attempts that will be retried
``jqc_throughput_jobs_per_minute``     gauge      completed per minute over the window
``jqc_error_ratio``                    gauge      failed attempts per finished attempt
``jqc_wait_seconds{quantile}``         summary    wait time (ready to claimed) quantiles
``jqc_run_seconds{quantile}``          summary    run time (claimed to finished) quantiles
``jqc_live_workers``                   gauge      workers with a fresh heartbeat (only when the
                                                  queue has a worker registry)
``jqc_window_stalled_jobs``            gauge      stall recoveries in the window (when counted)
``jqc_health_status``                  gauge      last stored health check: 0 healthy,
                                                  1 degraded, 2 unhealthy (when checked)
``jqc_health_checked_timestamp_seconds`` gauge    when that check ran (queue clock)
``jqc_target_workers``                 gauge      worker count the queue's coordinator decided
                                                  (when one publishes; what KEDA or a Kubernetes
                                                  HPA on an external metric should scale to)
``jqc_target_workers_timestamp_seconds`` gauge    when that decision was made (coordinator clock)
``jqc_coordinator_token``              gauge      fencing token of the coordinator that decided
``jqc_window_minutes``                 gauge      the window the windowed metrics cover
``jqc_scrape_duration_seconds``        gauge      how long reading Redis took (queue clock)
=====================================  =========  ============================================

The windowed numbers are sliding windows over the engine's per-minute buckets, not monotonic
counters: graph them as they are, never through ``rate()``. For that reason the summaries carry
quantiles only, with no ``_count``/``_sum``. A quantile without data in the window is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jqc.connection import Connection
from jqc.engine.calls import Op, run_async, run_sync
from jqc.errors import InvalidOptionError, JqcError, MissingDependencyError

from .health import HealthReport, read_op
from .lock import ScaleDecision, read_decision_op
from .metrics import QueueSnapshot, check_snapshot_options, queue_names_op, snapshot_op

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = ["DEFAULT_PORT", "JqcCollector", "asgi_app", "families", "registry", "render", "serve", "wsgi_app"]

DEFAULT_PORT = 9640
INSTALL = "pip install 'jqc[prometheus]'"
QUANTILES = (0.5, 0.95, 0.99)
_STATES = ("waiting", "delayed", "active", "completed", "failed", "dead")


def _require() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"the Prometheus exposition needs prometheus-client: {INSTALL}") from exc


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def families(
    snapshots: Sequence[tuple[QueueSnapshot, HealthReport | None]],
    *,
    up: bool = True,
    duration: float | None = None,
    window_minutes: int | None = None,
    quantiles: Sequence[float] = QUANTILES,
    decisions: Mapping[str, ScaleDecision] | None = None,
) -> list[Metric]:
    """The metric families for some snapshots and published scaling decisions (pure: reads nothing)."""
    _require()
    from prometheus_client.metrics_core import GaugeMetricFamily, Metric

    out: list[Metric] = []
    g_up = GaugeMetricFamily("jqc_up", "1 when the last read of Redis succeeded, else 0")
    g_up.add_metric([], 1.0 if up else 0.0)
    out.append(g_up)
    if duration is not None:
        g = GaugeMetricFamily("jqc_scrape_duration_seconds", "Time spent reading Redis for this scrape")
        g.add_metric([], duration)
        out.append(g)
    if window_minutes is not None:
        g = GaugeMetricFamily("jqc_window_minutes", "Minutes covered by the windowed jqc metrics")
        g.add_metric([], float(window_minutes))
        out.append(g)

    def gauge(name: str, doc: str, labels: Sequence[str] = ("queue",)) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=list(labels))
        out.append(family)
        return family

    jobs = gauge("jqc_jobs", "Jobs per state", ("queue", "state"))
    paused = gauge("jqc_queue_paused", "1 while the queue is paused")
    backlog = gauge("jqc_backlog_jobs", "Jobs ready to run and not yet claimed")
    oldest = gauge("jqc_oldest_waiting_age_seconds", "Age of the longest-waiting job (0 when none waits)")
    completed = gauge("jqc_window_completed_jobs", "Jobs completed in the window")
    failed = gauge("jqc_window_failed_jobs", "Jobs failed for good in the window")
    retried = gauge("jqc_window_retried_jobs", "Failed attempts in the window that will be retried")
    throughput = gauge("jqc_throughput_jobs_per_minute", "Jobs completed per minute over the window")
    errors = gauge("jqc_error_ratio", "Failed attempts per finished attempt over the window")
    wait = Metric("jqc_wait_seconds", "Wait time (ready to claimed) over the window", "summary")
    run = Metric("jqc_run_seconds", "Run time (claimed to finished) over the window", "summary")
    out += [wait, run]
    live = gauge("jqc_live_workers", "Workers whose last heartbeat is fresh (only with a worker registry)")
    stuck = gauge(
        "jqc_not_consuming_workers",
        "Live workers connected but not consuming: jobs wait, a slot is free, no recent claim reached Redis",
    )
    stalled = gauge("jqc_window_stalled_jobs", "Stalled-job recoveries in the window (when counted)")
    health = gauge("jqc_health_status", "Last stored health check: 0 healthy, 1 degraded, 2 unhealthy")
    checked = gauge("jqc_health_checked_timestamp_seconds", "When the last stored health check ran")
    target = gauge("jqc_target_workers", "Worker count the queue's coordinator decided (autoscaling target)")
    decided = gauge("jqc_target_workers_timestamp_seconds", "When the coordinator made that decision")
    token = gauge("jqc_coordinator_token", "Fencing token of the coordinator that made the decision")
    for name, decision in sorted((decisions or {}).items()):
        target.add_metric([name], float(decision.target))
        decided.add_metric([name], decision.at)
        token.add_metric([name], float(decision.token))

    for snap, report in snapshots:
        q = [snap.queue]
        c = snap.counts
        for state in _STATES:
            jobs.add_metric([snap.queue, state], float(getattr(c, state)))
        paused.add_metric(q, 1.0 if c.paused else 0.0)
        backlog.add_metric(q, float(snap.backlog))
        oldest.add_metric(q, snap.oldest_waiting_age or 0.0)
        completed.add_metric(q, float(snap.metrics.completed))
        failed.add_metric(q, float(snap.metrics.failed))
        retried.add_metric(q, float(snap.metrics.retried))
        throughput.add_metric(q, snap.throughput_per_minute)
        errors.add_metric(q, snap.error_rate)
        for quantile in quantiles:
            labels = {"queue": snap.queue, "quantile": f"{quantile:g}"}
            wait.add_sample("jqc_wait_seconds", labels, _nan(snap.wait_percentile(quantile * 100)))
            run.add_sample("jqc_run_seconds", labels, _nan(snap.run_percentile(quantile * 100)))
        if snap.live_workers is not None:
            live.add_metric(q, float(snap.live_workers))
            stuck.add_metric(q, float(len(snap.not_consuming)))
        if snap.stalls is not None:
            stalled.add_metric(q, float(snap.stalls.stalls))
        if report is not None:
            health.add_metric(q, float(report.status.rank))
            checked.add_metric(q, report.checked_at)
    return [f for f in out if f.samples or f.name in ("jqc_up",)]


@dataclass(frozen=True, slots=True)
class Scrape:
    """What one scrape read: each queue's snapshot with its stored health check, and published decisions."""

    snapshots: list[tuple[QueueSnapshot, HealthReport | None]]
    decisions: dict[str, ScaleDecision]


def _scrape_op(
    connection: Connection, queues: Sequence[str] | None, window_minutes: int, worker_ttl: float, stall_scan_limit: int
) -> Op[Scrape]:
    names = list(queues) if queues is not None else (yield from queue_names_op(connection.prefix))
    out: list[tuple[QueueSnapshot, HealthReport | None]] = []
    decisions: dict[str, ScaleDecision] = {}
    for name in names:
        ops = connection.queue(name).ops
        snap = yield from snapshot_op(
            ops, window_minutes=window_minutes, worker_ttl=worker_ttl, stall_scan_limit=stall_scan_limit
        )
        try:
            report = yield from read_op(ops)
        except JqcError:
            report = None  # an unreadable health record must not hide the queue's metrics
        out.append((snap, report))
        try:
            decision = yield from read_decision_op(ops)
        except JqcError:
            decision = None
        if decision is not None:
            decisions[name] = decision
    return Scrape(out, decisions)


class JqcCollector:
    """A prometheus-client collector: each ``collect()`` reads every queue's snapshot from Redis.

    ``queues`` limits it to some queues (default: every queue under the connection's prefix,
    found with SCAN). When Redis cannot be read, it yields ``jqc_up 0`` and nothing else, so a
    scrape still succeeds and the outage is visible.
    """

    def __init__(
        self,
        connection: Connection,
        queues: Iterable[str] | None = None,
        *,
        window_minutes: int = 5,
        worker_ttl: float = 30.0,
        stall_scan_limit: int = 0,
        quantiles: Sequence[float] = QUANTILES,
    ) -> None:
        _require()
        if not isinstance(connection, Connection):
            raise InvalidOptionError(f"connection must come from jqc.connect(), not {connection!r}")
        for q in quantiles:
            if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q <= 1:
                raise InvalidOptionError(f"quantiles must be numbers in (0, 1], not {q!r}")
        self.connection = connection
        self.queues = None if queues is None else [connection.queue(name).name for name in queues]
        self.window_minutes = window_minutes
        self.worker_ttl = worker_ttl
        self.stall_scan_limit = stall_scan_limit
        self.quantiles = tuple(quantiles)
        check_snapshot_options(window_minutes, worker_ttl, stall_scan_limit)  # now, not at the first scrape

    def scrape_op(self) -> Op[Scrape]:
        return _scrape_op(self.connection, self.queues, self.window_minutes, self.worker_ttl, self.stall_scan_limit)

    def _families(self, read: Callable[[], Scrape]) -> list[Metric]:
        clock = self.connection.clock
        start = clock.now()
        try:
            scrape = read()
        except JqcError:
            return families([], up=False)
        return families(
            scrape.snapshots,
            duration=max(0.0, clock.now() - start),
            window_minutes=self.window_minutes,
            quantiles=self.quantiles,
            decisions=scrape.decisions,
        )

    def collect(self) -> Iterator[Metric]:
        yield from self._families(lambda: run_sync(self.connection.backend, self.scrape_op()))

    async def acollect(self) -> list[Metric]:
        """The same families, read with the connection's asyncio client."""
        clock = self.connection.clock
        start = clock.now()
        try:
            scrape = await run_async(self.connection.async_backend(), self.scrape_op())
        except JqcError:
            return families([], up=False)
        return families(
            scrape.snapshots,
            duration=max(0.0, clock.now() - start),
            window_minutes=self.window_minutes,
            quantiles=self.quantiles,
            decisions=scrape.decisions,
        )

    def describe(self) -> list[Metric]:
        # Registering must not read Redis; an empty description opts out of duplicate-name checks.
        return []


class _Fixed:
    """A collector that yields families read beforehand (what the ASGI app renders)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics

    def describe(self) -> list[Metric]:
        return []


def registry(connection: Connection, queues: Iterable[str] | None = None, **options: Any) -> CollectorRegistry:
    """A fresh registry holding only a :class:`JqcCollector` (options as for the collector)."""
    _require()
    from prometheus_client.registry import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(JqcCollector(connection, queues, **options))
    return reg


def wsgi_app(connection: Connection, queues: Iterable[str] | None = None, **options: Any) -> Callable[..., Any]:
    """A WSGI app serving the exposition (mount it at ``/metrics`` of a WSGI server or framework)."""
    _require()
    from prometheus_client import make_wsgi_app

    return make_wsgi_app(registry(connection, queues, **options))


AsgiApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


def asgi_app(connection: Connection, queues: Iterable[str] | None = None, **options: Any) -> AsgiApp:
    """An ASGI app serving the exposition; it reads Redis with the asyncio client, never blocking the loop."""
    _require()
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.registry import CollectorRegistry

    collector = JqcCollector(connection, queues, **options)

    async def app(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope.get("type") == "lifespan":
            while True:
                message = await receive()
                if message.get("type") == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message.get("type") == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope.get("type") != "http":
            return
        accept = ",".join(
            value.decode("latin-1") for name, value in scope.get("headers", []) if name.lower() == b"accept"
        )
        encoder, content_type = choose_encoder(accept)
        reg = CollectorRegistry(auto_describe=False)
        reg.register(_Fixed(await collector.acollect()))
        body = encoder(reg)
        headers = [(b"content-type", content_type.encode("latin-1"))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def render(connection: Connection, queues: Iterable[str] | None = None, **options: Any) -> str:
    """The exposition text, read once (what a scrape would get)."""
    _require()
    from prometheus_client import generate_latest

    return generate_latest(registry(connection, queues, **options)).decode("utf-8")


def serve(
    connection: Connection,
    port: int = DEFAULT_PORT,
    addr: str = "0.0.0.0",
    queues: Iterable[str] | None = None,
    **options: Any,
) -> tuple[Any, Any]:
    """Serve the exposition over HTTP from a daemon thread; returns (server, thread).

    Stop it with ``server.shutdown(); server.server_close()``. Port 0 picks a free port
    (``server.server_port`` says which).
    """
    _require()
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=addr, registry=registry(connection, queues, **options))
    return server, thread
