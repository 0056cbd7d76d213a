"""The Prometheus exposition on both backends: text, WSGI, ASGI, HTTP server, and a Redis outage."""

from __future__ import annotations

import asyncio
import builtins
import io
import math
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

import jqc
from jqc.coordinator import health, prometheus
from jqc.engine.calls import run_sync
from tests.coordinator.conftest import heartbeat


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def busy_queue(conn: jqc.Connection, clock: jqc.VirtualClock) -> jqc.Queue:
    queue = conn.queue("photos")
    for _ in range(5):
        queue.add("x")
    queue.add("later", delay=600)
    clock.advance(2)
    for _ in range(3):
        held = queue.claim("w").jobs[0]
        clock.advance(0.25)
        queue.complete(held)
    queue.fail(queue.claim("w").jobs[0], "boom")
    clock.advance(8)
    return queue


def test_exposition_names_and_values(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = busy_queue(conn, clock)
    conn.queue("idle").add("y")
    text = prometheus.render(conn, window_minutes=5)
    found = samples(text)
    assert value(found, "jqc_up") == 1.0
    assert value(found, "jqc_window_minutes") == 5.0
    assert value(found, "jqc_jobs", queue="photos", state="waiting") == 1.0
    assert value(found, "jqc_jobs", queue="photos", state="delayed") == 1.0
    assert value(found, "jqc_jobs", queue="photos", state="completed") == 3.0
    assert value(found, "jqc_jobs", queue="photos", state="dead") == 1.0
    assert value(found, "jqc_backlog_jobs", queue="photos") == 1.0
    assert value(found, "jqc_oldest_waiting_age_seconds", queue="photos") == pytest.approx(10.75)
    assert value(found, "jqc_window_completed_jobs", queue="photos") == 3.0
    assert value(found, "jqc_window_failed_jobs", queue="photos") == 1.0
    assert value(found, "jqc_throughput_jobs_per_minute", queue="photos") == pytest.approx(0.6)
    assert value(found, "jqc_error_ratio", queue="photos") == pytest.approx(0.25)
    assert value(found, "jqc_wait_seconds", queue="photos", quantile="0.5") == pytest.approx(2.25, rel=0.15)
    assert value(found, "jqc_run_seconds", queue="photos", quantile="0.99") == pytest.approx(0.25, rel=0.15)
    assert math.isnan(value(found, "jqc_wait_seconds", queue="idle", quantile="0.95"))
    assert value(found, "jqc_queue_paused", queue="idle") == 0.0
    # no registry, no stored health check, no stall counting: those series are left out
    names = {name for name, _ in found}
    assert not {"jqc_live_workers", "jqc_health_status", "jqc_window_stalled_jobs"} & names
    assert "# TYPE jqc_wait_seconds summary" in text and "jqc_wait_seconds_count" not in text
    assert queue.counts().waiting == 1  # reading changed nothing


def test_workers_health_and_stalls_appear_when_known(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    run_sync(conn.backend, heartbeat(queue.ops, "w1", "name", "w1"))
    health.check(queue)
    found = samples(prometheus.render(conn, ["photos"], stall_scan_limit=100))
    assert value(found, "jqc_live_workers", queue="photos") == 1.0
    assert value(found, "jqc_health_status", queue="photos") == 0.0
    assert value(found, "jqc_health_checked_timestamp_seconds", queue="photos") == pytest.approx(clock.now())
    assert value(found, "jqc_window_stalled_jobs", queue="photos") == 0.0


def test_a_corrupt_health_record_does_not_hide_the_metrics(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    conn.sync_client().hset("jqc:{photos}:health", "status", "sideways")
    found = samples(prometheus.render(conn))
    assert value(found, "jqc_backlog_jobs", queue="photos") == 1.0


def test_redis_down_is_reported_not_raised(clock: jqc.VirtualClock) -> None:
    dead = jqc.connect("redis://127.0.0.1:1/0", clock=clock, socket_connect_timeout=0.5)
    found = samples(prometheus.render(dead))
    assert found == {("jqc_up", ()): 0.0}


def test_wsgi_app(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    app = prometheus.wsgi_app(conn)
    status: list[str] = []

    def start(code: str, headers: list[tuple[str, str]]) -> None:
        status.append(code)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, start)).decode()
    assert status == ["200 OK"] and 'jqc_jobs{queue="photos",state="waiting"} 1.0' in body


async def call_asgi(app: Any, accept: str = "") -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": [(b"accept", accept.encode())]}
    await app(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


async def test_asgi_app_reads_redis_asynchronously(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    app = prometheus.asgi_app(conn)
    status, headers, body = await call_asgi(app)
    assert status == 200 and headers[b"content-type"].startswith(b"text/plain")
    assert value(samples(body.decode()), "jqc_backlog_jobs", queue="photos") == 1.0
    status, headers, body = await call_asgi(app, "application/openmetrics-text; version=1.0.0")
    assert b"openmetrics" in headers[b"content-type"] and body.endswith(b"# EOF\n")
    await conn.aclose()


async def test_asgi_app_answers_lifespan_events(conn: jqc.Connection) -> None:
    app = prometheus.asgi_app(conn)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": kind})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, inbox.get, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_serve_over_http(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    server, thread = prometheus.serve(conn, port=0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as response:
            body = response.read().decode()
        assert value(samples(body), "jqc_jobs", queue="photos", state="waiting") == 1.0
    finally:
        server.shutdown()
        server.server_close()
    thread.join(timeout=5)


def test_collector_registers_without_reading_redis(clock: jqc.VirtualClock) -> None:
    dead = jqc.connect("redis://127.0.0.1:1/0", clock=clock, socket_connect_timeout=0.5)
    registry = CollectorRegistry()
    collector = prometheus.JqcCollector(dead, ["photos"])
    registry.register(collector)  # describe() is empty: nothing is read until a scrape
    assert collector.describe() == []


@pytest.mark.parametrize(
    "options",
    [{"window_minutes": 0}, {"quantiles": [1.5]}, {"worker_ttl": -1}, {"stall_scan_limit": -2}],
)
def test_bad_collector_options(conn: jqc.Connection, options: dict[str, Any]) -> None:
    with pytest.raises(jqc.InvalidOptionError):
        prometheus.JqcCollector(conn, **options)
    with pytest.raises(jqc.InvalidQueueNameError):
        prometheus.JqcCollector(conn, ["bad name"])


def test_missing_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("prometheus_client"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(jqc.MissingDependencyError, match=r"pip install 'jqc\[prometheus\]'"):
        prometheus.render(jqc.connect())
