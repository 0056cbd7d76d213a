"""Every client jqc makes goes over TLS with the same settings: workers (in-process and the ``jqc
worker`` command), the CLI's inspection commands, the coordinator and the Prometheus exporter,
here against the server that demands a client certificate."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest

import jqc
from jqc.cli import main
from jqc.coordinator import health, prometheus
from jqc.coordinator.autoscale import Coordinator
from jqc.scaling import SloPolicy
from tests.security.tls_servers import Certs, TlsRedis
from tests.worker.processes import ROOT

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def url(mtls_server: TlsRedis, certs: Certs, clean_tls: None) -> str:
    pair = certs.client
    return mtls_server.tls_url(
        f"ssl_ca_certs={quote(str(certs.ca))}&ssl_certfile={quote(str(pair.cert))}&ssl_keyfile={quote(str(pair.key))}"
    )


@pytest.fixture
def conn(url: str) -> Iterator[jqc.Connection]:
    connection = jqc.connect(url)
    yield connection
    connection.close()


def test_a_worker_runs_jobs_over_mutual_tls(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    queue.add_bulk([("double", i) for i in range(20)])
    worker = jqc.Worker(queue, lambda ctx: ctx.data * 2, concurrency=4, connect_timeout=10)
    stats = worker.run(burst=True)
    assert stats.completed == 20 and stats.failed == 0
    assert queue.counts().completed == 20


def test_the_worker_command_runs_jobs_over_mutual_tls(conn: jqc.Connection, url: str) -> None:
    queue = conn.queue("photos")
    queue.add_bulk([("sleep", {"ms": 1}) for _ in range(10)])
    env = dict(os.environ, JQC_REDIS_URL=url)
    done = subprocess.run(
        [sys.executable, "-m", "jqc", "worker", "tests.worker.chaos_handlers:steady", "--queue", "photos", "--burst",
         "--connect-timeout", "20"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert queue.counts().completed == 10


def test_the_cli_inspects_queues_over_mutual_tls(conn: jqc.Connection, url: str) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    for argv in (["stats"], ["jobs", "photos", "--state", "waiting"], ["workers", "photos"], ["health", "photos"]):
        out = io.StringIO()
        assert main([*argv, "--url", url], out=out) == 0, argv
    out = io.StringIO()
    main(["doctor", "--url", url, "--json"], out=out)
    tls = [f for f in json.loads(out.getvalue())["findings"] if f["check"] == "tls"]
    assert (
        tls == [{"check": "tls", "level": "ok", "message": tls[0]["message"]}]
        and "client certificate" in tls[0]["message"]
    )


def test_the_coordinator_and_the_exporter_work_over_mutual_tls(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    tick = Coordinator(conn, "photos", SloPolicy(slo=60.0), min_workers=1, max_workers=3, holder="c1").tick()
    assert tick.leader and tick.decision is not None
    assert health.check(queue).queue == "photos"
    assert "jqc_up 1.0" in prometheus.render(conn, ["photos"])
