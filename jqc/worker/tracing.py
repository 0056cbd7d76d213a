"""OpenTelemetry spans around job runs, with the producer's trace context carried in the job.

Needs ``opentelemetry-api`` (``pip install 'jqc[otel]'``); without it, importing this module raises
:class:`~jqc.MissingDependencyError`. Only the API is used: spans go wherever the application's
tracer provider sends them (the SDK, set up by the application or by ``opentelemetry-instrument``),
and cost next to nothing when none is set up.

Producer side: the current trace context goes into the job's ``meta`` as text (W3C
``traceparent`` and ``tracestate``, and ``baggage``, by the global propagator)::

    queue.add("thumbnail", data, meta=tracing.inject())

Worker side: one ``CONSUMER`` span per handler run, named ``process <queue>``, a child of the
producer's span when the job carries one (or, with ``link_only=True``, the root of a new trace
linked to it)::

    jqc.Worker(queue, handlers, observer=tracing.TracingObserver())   # or: jqc worker --otel

The span is current while the handler runs (async handlers and plain functions in the thread pool
alike), so spans the handler opens nest under it. Its timestamps come from the worker's clock, like
everything else the worker times. A killed worker (no ``finished`` call) leaves its spans unended,
as a dead process would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import Token
from typing import TYPE_CHECKING, final

from jqc.engine.job import Job
from jqc.errors import MissingDependencyError
from jqc.worker.context import JobContext, SyncJobContext
from jqc.worker.execute import Kind, Outcome

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised with the package hidden
    raise MissingDependencyError("OpenTelemetry spans need opentelemetry-api: pip install 'jqc[otel]'") from exc

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.util.types import AttributeValue

    from jqc.worker.runtime import Worker

__all__ = ["INSTALL", "TracingObserver", "extract", "inject"]

INSTALL = "pip install 'jqc[otel]'"
TRACER_NAME = "jqc"
_FAILED = (Kind.ERROR, Kind.TIMEOUT, Kind.RETRY, Kind.FAIL)  # attempts that count as failed
_RETRYABLE = (Kind.ERROR, Kind.TIMEOUT, Kind.RETRY)
_MAX_REASON = 1000

log = logging.getLogger("jqc.worker.tracing")


def inject(meta: Mapping[str, str] | None = None, *, context: Context | None = None) -> dict[str, str]:
    """``meta`` plus the trace context of ``context`` (default: the current one), as text for a job's
    ``meta`` option. Outside any span nothing is added."""
    carrier = dict(meta or {})
    propagate.inject(carrier, context=context)
    return carrier


def extract(job: Job) -> Context | None:
    """The trace context a job carries in its ``meta`` (None when it carries none)."""
    meta = job.options.meta
    if not meta:
        return None
    fields = propagate.get_global_textmap().fields
    if not any(name in meta for name in fields):
        return None
    return propagate.extract(dict(meta))


def _ns(worker: Worker) -> int:
    return int(worker.clock.now() * 1e9)


@final
class TracingObserver:
    """A :class:`~jqc.JobObserver` that opens a span for every handler run.

    ``tracer_provider``: where spans go (default: the global provider). ``link_only``: start each
    run's trace afresh, linked to the producer's span, instead of continuing the producer's trace
    (for producers whose traces would otherwise grow without end, such as a job adding jobs).

    Attributes: ``messaging.system`` = ``jqc``, ``messaging.destination.name`` (the queue),
    ``messaging.operation`` and ``messaging.operation.type`` = ``process``,
    ``messaging.message.id`` (the job id), ``jqc.job.name``, ``jqc.job.attempt`` (1 for the first
    run), ``jqc.job.attempts`` (allowed in all), ``jqc.job.wait_s`` (ready to claimed),
    ``jqc.worker.id``; when it ends ``jqc.job.outcome`` (``done``, ``error``, ``timeout``,
    ``retry``, ``fail``, ``rate_limited``, ``aborted``), and for a failed attempt ``jqc.job.retry``
    (whether attempts remain, so it will run again), ``jqc.job.reason``, ``error.type``, the
    exception as an event and the status ``ERROR``. A run handed back (rate limited, lock lost,
    shutdown) is not an error; its reason is in ``jqc.job.reason``.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None, *, link_only: bool = False) -> None:
        from jqc._version import __version__

        self.tracer = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=tracer_provider)
        self.link_only = link_only
        self._open: dict[int, tuple[trace.Span, Token[Context]]] = {}

    def __repr__(self) -> str:
        return f"TracingObserver(link_only={self.link_only}, open={len(self._open)})"

    async def started(self, worker: Worker, ctx: JobContext | SyncJobContext) -> None:
        job = ctx.job
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "jqc",
            "messaging.destination.name": ctx.queue,
            "messaging.operation": "process",
            "messaging.operation.type": "process",
            "messaging.message.id": job.id,
            "jqc.job.name": job.name,
            "jqc.job.attempt": ctx.attempt,
            "jqc.job.attempts": job.options.attempts,
            "jqc.worker.id": worker.id,
        }
        if job.started_at is not None:
            attributes["jqc.job.wait_s"] = round(max(0.0, job.started_at - job.ready_at), 6)
        carried = extract(job)
        links: list[Link] = []
        parent: Context = otel_context.Context()  # a run's trace starts at its producer, not the worker
        if carried is not None:
            producer = trace.get_current_span(carried).get_span_context()
            if self.link_only:
                parent = trace.set_span_in_context(trace.INVALID_SPAN, carried)  # keeps the baggage
                if producer.is_valid:
                    links.append(Link(producer))
            else:
                parent = carried
        span = self.tracer.start_span(
            f"process {ctx.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
            start_time=_ns(worker),
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self._open[id(ctx)] = (span, token)

    async def finished(self, worker: Worker, ctx: JobContext | SyncJobContext, outcome: Outcome) -> None:
        entry = self._open.pop(id(ctx), None)
        if entry is None:
            return
        span, token = entry
        try:
            self._describe(span, ctx, outcome, _ns(worker))
        finally:
            try:
                span.end(end_time=_ns(worker))
            finally:
                otel_context.detach(token)

    @staticmethod
    def _describe(span: trace.Span, ctx: JobContext | SyncJobContext, outcome: Outcome, now: int) -> None:
        kind = outcome.kind
        span.set_attribute("jqc.job.outcome", kind.value)
        if outcome.reason and kind is not Kind.DONE:
            span.set_attribute("jqc.job.reason", outcome.reason[:_MAX_REASON])
        if outcome.delay is not None:
            span.set_attribute("jqc.job.delay_s", outcome.delay)
        if kind not in _FAILED:
            return
        span.set_attribute("jqc.job.retry", kind in _RETRYABLE and ctx.attempt < ctx.job.options.attempts)
        error = outcome.error
        span.set_attribute("error.type", type(error).__qualname__ if error is not None else kind.value)
        if error is not None:
            span.record_exception(error, timestamp=now)
        span.set_status(Status(StatusCode.ERROR, (outcome.reason or kind.value)[:_MAX_REASON]))
