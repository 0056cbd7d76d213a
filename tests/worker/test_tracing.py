"""OpenTelemetry spans around job runs (jqc.worker.tracing), recorded with the SDK's in-memory exporter.

The worker runs on the autojumping virtual clock, so span timestamps are virtual time: a handler
that sleeps 5 s on the clock makes a span exactly 5 s long.
"""

from __future__ import annotations

import importlib
import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import jqc
from jqc.worker import tracing


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def runs(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.startswith("process ")]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def produce(provider: TracerProvider, queue: jqc.Queue, name: str, data: Any = None, **options: Any) -> Any:
    """Add a job from inside a producer span, carrying its trace context; returns the span's context."""
    with provider.get_tracer("app").start_as_current_span("upload", kind=SpanKind.PRODUCER) as span:
        queue.add(name, data, meta=tracing.inject({"tenant": "acme"}), **options)
        return span.get_span_context()


async def test_a_run_is_a_child_of_the_producers_span(
    conn: jqc.Connection, clock: jqc.VirtualClock, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    q = conn.queue("photos")
    producer = produce(provider, q, "thumb", 7)
    stored = q.list_jobs("waiting").jobs[0]
    assert stored.options.meta is not None and set(stored.options.meta) == {"tenant", "traceparent"}
    seen: list[Any] = []

    async def thumb(ctx: jqc.JobContext) -> int:
        seen.append(trace.get_current_span().get_span_context())
        await clock.sleep(5)
        return int(ctx.data) * 2

    worker = jqc.Worker(q, thumb, observer=tracing.TracingObserver(provider))
    assert (await worker.run_until_empty()).completed == 1
    (span,) = runs(exporter)
    assert span.name == "process photos" and span.kind is SpanKind.CONSUMER
    assert span.parent is not None and span.parent.span_id == producer.span_id
    assert span.context.trace_id == producer.trace_id and not span.links
    assert seen == [span.context]  # current while the handler ran
    assert span.status.status_code is StatusCode.UNSET
    assert span.start_time is not None and span.end_time is not None
    assert span.end_time - span.start_time == 5_000_000_000  # the virtual clock's 5 s
    a = attrs(span)
    assert a["messaging.system"] == "jqc" and a["messaging.destination.name"] == "photos"
    assert a["messaging.operation"] == "process" and a["messaging.message.id"] == stored.id
    assert (a["jqc.job.name"], a["jqc.job.attempt"], a["jqc.job.attempts"], a["jqc.job.outcome"]) == (
        "thumb",
        1,
        1,
        "done",
    )
    assert a["jqc.worker.id"] == worker.id and "jqc.job.retry" not in a and "error.type" not in a


async def test_a_failed_attempt_is_an_error_and_says_it_will_be_retried(
    conn: jqc.Connection, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    q = conn.queue("photos")
    producer = produce(provider, q, "flaky", attempts=2, backoff=jqc.Backoff.fixed(10))

    def flaky(ctx: jqc.SyncJobContext) -> str:
        assert trace.get_current_span().is_recording()  # the span reaches the thread pool too
        if ctx.attempt == 1:
            raise ValueError("bad pixels")
        return "ok"

    stats = await jqc.Worker(q, flaky, observer=tracing.TracingObserver(provider)).run_until_empty(delayed=True)
    assert (stats.retried, stats.completed) == (1, 1)
    first, second = sorted(runs(exporter), key=lambda s: attrs(s)["jqc.job.attempt"])
    a = attrs(first)
    assert first.status.status_code is StatusCode.ERROR and first.status.description == "ValueError: bad pixels"
    assert (a["jqc.job.outcome"], a["jqc.job.retry"], a["error.type"]) == ("error", True, "ValueError")
    (event,) = first.events
    assert event.name == "exception" and dict(event.attributes or {})["exception.message"] == "bad pixels"
    assert attrs(second)["jqc.job.outcome"] == "done" and second.status.status_code is StatusCode.UNSET
    assert all(s.parent is not None and s.parent.span_id == producer.span_id for s in (first, second))


async def test_a_timeout_and_a_failure_for_good_are_errors_not_retried(
    conn: jqc.Connection, clock: jqc.VirtualClock, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    q = conn.queue("photos")
    q.add("slow", timeout=2.0)
    q.add("broken")
    q.add("again", attempts=3)
    q.add("nobody")

    async def slow(ctx: jqc.JobContext) -> None:
        await clock.sleep(60)

    async def broken(ctx: jqc.JobContext) -> None:
        raise jqc.Fail("corrupt image")

    async def again(ctx: jqc.JobContext) -> None:
        raise jqc.Retry(delay=30)

    handlers = {"slow": slow, "broken": broken, "again": again}
    worker = jqc.Worker(q, handlers, concurrency=1, observer=tracing.TracingObserver(provider))
    stats = await worker.run_until_empty(delayed=True)
    assert stats.timed_out == 1 and stats.failed == 4 and stats.retried == 2
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in runs(exporter):
        by_name.setdefault(attrs(span)["jqc.job.name"], []).append(span)
    (timed_out,) = by_name["slow"]
    assert timed_out.end_time is not None and timed_out.start_time is not None
    assert timed_out.end_time - timed_out.start_time == 2_000_000_000
    a = attrs(timed_out)
    assert (a["jqc.job.outcome"], a["jqc.job.retry"], a["error.type"]) == ("timeout", False, "TimeoutError")
    assert timed_out.status.status_code is StatusCode.ERROR and timed_out.parent is None  # no trace context
    a = attrs(by_name["broken"][0])
    assert (a["jqc.job.outcome"], a["jqc.job.retry"], a["jqc.job.reason"]) == ("fail", False, "corrupt image")
    assert by_name["broken"][0].status.status_code is StatusCode.ERROR
    retried = sorted(by_name["again"], key=lambda s: attrs(s)["jqc.job.attempt"])
    assert [(attrs(s)["jqc.job.retry"], attrs(s)["jqc.job.delay_s"]) for s in retried] == [
        (True, 30.0),
        (True, 30.0),
        (False, 30.0),
    ]
    a = attrs(by_name["nobody"][0])
    assert (a["jqc.job.outcome"], a["error.type"]) == ("fail", "fail")  # no handler: no exception to record


async def test_link_only_starts_a_new_trace_linked_to_the_producer(
    conn: jqc.Connection, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    q = conn.queue("photos")
    producer = produce(provider, q, "thumb")
    await jqc.Worker(q, lambda ctx: None, observer=tracing.TracingObserver(provider, link_only=True)).run_until_empty()
    (span,) = runs(exporter)
    assert span.parent is None and span.context.trace_id != producer.trace_id
    assert [link.context.span_id for link in span.links] == [producer.span_id]


class Broken(SpanProcessor):
    """A span processor (an exporter, say) that fails at every step."""

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        raise RuntimeError("processor broke on start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor broke on end")


class BrokenProvider(trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        raise RuntimeError("no tracer today")


async def test_a_failing_tracer_never_breaks_the_worker(
    conn: jqc.Connection, caplog: pytest.LogCaptureFixture, exporter: InMemorySpanExporter
) -> None:
    caplog.set_level(logging.ERROR)
    q = conn.queue("photos")
    for i in range(5):
        q.add("thumb", i, attempts=2)
    provider = TracerProvider()
    provider.add_span_processor(Broken())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    calls = 0

    async def thumb(ctx: jqc.JobContext) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("once")
        return int(ctx.data)

    stats = await jqc.Worker(q, thumb, concurrency=2, observer=tracing.TracingObserver(provider)).run_until_empty(
        delayed=True
    )
    assert stats.completed == 5 and stats.retried == 1
    assert any("the job observer failed" in r.getMessage() for r in caplog.records)
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached
    assert q.counts().completed == 5
    with pytest.raises(RuntimeError, match="no tracer today"):
        tracing.TracingObserver(BrokenProvider())


def test_inject_and_extract(provider: TracerProvider) -> None:
    assert tracing.inject() == {}  # outside a span: nothing to carry
    assert tracing.inject({"k": "v"}) == {"k": "v"}
    with provider.get_tracer("app").start_as_current_span("upload") as span:
        meta = tracing.inject()
    span_id = span.get_span_context().span_id
    assert meta["traceparent"].split("-")[2] == f"{span_id:016x}"
    job = jqc.connect().queue("q").add("x", meta=meta)
    carried = tracing.extract(job)
    assert carried is not None and trace.get_current_span(carried).get_span_context().span_id == span_id
    assert tracing.extract(jqc.connect().queue("q").add("y", meta={"tenant": "acme"})) is None
    assert tracing.extract(jqc.connect().queue("q").add("z")) is None


@pytest.mark.parametrize(
    "meta",
    [{"a": 1}, {"": "x"}, {"k" * 101: "x"}, {"k": "v" * 8193}, {f"k{i}": "v" for i in range(33)}, ["traceparent"]],
)
def test_meta_must_be_a_small_mapping_of_strings(meta: Any) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        jqc.JobOptions(meta=meta)


def test_meta_is_a_copy_and_round_trips_through_redis(queue: jqc.Queue) -> None:
    given = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    job = queue.add("x", meta=given)
    given["traceparent"] = "changed"
    assert job.options.meta == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    claimed = queue.claim("w").jobs[0]
    assert claimed.job.options.meta == job.options.meta
    assert queue.add("plain").options.meta is None and jqc.JobOptions(meta={}).meta is None
    hash(job.options)  # options stay hashable


def test_without_opentelemetry_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "jqc.worker.tracing")
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(jqc.MissingDependencyError, match=r"pip install 'jqc\[otel\]'"):
        importlib.import_module("jqc.worker.tracing")


def test_worker_command_otel_flag(conn: jqc.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    from jqc import cli
    from jqc.cli import workers as worker_commands

    built: list[Any] = []
    real = jqc.Worker

    def recording(*args: Any, **kwargs: Any) -> jqc.Worker:
        built.append(kwargs.get("observer"))
        return real(*args, **kwargs)

    monkeypatch.setattr(jqc, "Worker", recording)
    monkeypatch.setattr(worker_commands, "load_handler", lambda spec: lambda ctx: None)
    conn.queue("q").add("x")
    for flags in ((), ("--otel",)):
        assert cli.main(["worker", "m:f", "--queue", "q", "--burst", *flags], connection=conn, out=io.StringIO()) == 0
    assert built[0] is None and isinstance(built[1], tracing.TracingObserver)
    assert conn.queue("q").counts().completed == 1
