"""The coordinator's commands, registered on a parser the way ``jqc.cli`` will register them."""

from __future__ import annotations

import argparse
import io
import json
import secrets
import threading
import time
import urllib.request
from typing import Any

import pytest

import jqc
from jqc.cli.coordinator import add_parsers
from jqc.coordinator import health, prometheus
from jqc.engine.calls import run_sync
from tests.conftest import REDIS_URL
from tests.coordinator.conftest import heartbeat


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jqc")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p


def run(conn: jqc.Connection, *argv: str) -> tuple[int, str]:
    args = parser().parse_args(list(argv))
    out = io.StringIO()
    code = args.handler(args, conn, out)
    return code, out.getvalue()


def test_every_command_sets_a_handler() -> None:
    p = parser()
    for argv in (["metrics", "serve"], ["metrics", "show"], ["health"], ["doctor"], ["acl", "--role", "worker"]):
        assert callable(p.parse_args(argv).handler)
    assert p.parse_args(["acl", "--role", "worker"]).owns_connection


def test_health_exit_codes(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    assert run(conn, "health") == (0, run(conn, "health", "--read")[1])
    code, out = run(conn, "health", "photos")
    assert code == 0 and out.splitlines()[2].split()[:2] == ["photos", "healthy"]
    clock.advance(600)  # the job has waited 10 minutes: degraded by default
    assert run(conn, "health")[0] == 0
    assert run(conn, "health", "--strict")[0] == 1
    run_sync(conn.backend, heartbeat(queue.ops, "w1", "name", "w1"))
    clock.advance(60)  # and its only worker went silent
    code, out = run(conn, "health")
    assert code == 2 and "no live workers while 1 job(s) wait" in out
    code, out = run(
        conn, "health", "--json", "--rule", "no_live_workers=degraded", "--rule", "oldest-waiting-degraded=none"
    )
    (report,) = json.loads(out)
    assert code == 0 and report["status"] == "degraded"
    assert health.read_health(queue) is not None and health.read_health(queue).status.value == "degraded"  # type: ignore[union-attr]


def test_health_options(conn: jqc.Connection) -> None:
    assert run(conn, "health") == (0, "no queues\n")
    assert run(conn, "health", "--read") == (0, "no stored health checks\n")
    conn.queue("photos").add("x")
    assert run(conn, "health", "--no-store")[0] == 0
    assert run(conn, "health", "--read")[1] == "no stored health checks\n"
    with pytest.raises(jqc.InvalidOptionError):
        run(conn, "health", "--rule", "wait_slo")
    with pytest.raises(jqc.InvalidOptionError):
        run(conn, "health", "--rule", "wait_slo=soon")
    out = run(conn, "health", "--wait-slo", "0.5", "--window", "10", "--json")[1]
    assert json.loads(out)[0]["window_minutes"] == 10


def test_doctor(conn: jqc.Connection) -> None:
    code, out = run(conn, "doctor")
    assert out.splitlines()[0].split() == ["level", "check", "finding"]
    if conn.embedded:
        assert code == 0 and "embedded backend" in out
    data = json.loads(run(conn, "doctor", "--json")[1])
    assert data["findings"][0]["check"] == "connection"


def test_acl_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = jqc.connect()
    code, out = run(conn, "acl", "--role", "producer", "--queue", "photos")
    assert code == 0 and out.startswith("ACL SETUSER jqc-producer-photos reset on resetkeys")
    out = run(conn, "acl", "--role", "worker", "--role", "producer", "--format", "rules")[1]
    assert "+rpop" in out.splitlines() and "~jqc:{*}:*" in out.splitlines()
    out = run(conn, "acl", "--role", "observer", "--queue", "q", "--format", "acl-file", "--user", "mon")[1]
    assert out.startswith("user mon reset on ")
    monkeypatch.setenv("JQC_TEST_PW", "s3cret-pw")
    out = run(
        conn, "acl", "--role", "admin", "--format", "json", "--password-env", "JQC_TEST_PW", "--url", "redis://h/3"
    )[1]
    data = json.loads(out)
    assert data["user"] == "jqc-admin-all" and "+select|3" in data["rules"] and "s3cret-pw" not in out
    assert any(a.startswith("#") for a in data["setuser"])
    with pytest.raises(jqc.InvalidOptionError, match="password-env"):
        run(conn, "acl", "--role", "worker", "--apply")
    with pytest.raises(jqc.InvalidOptionError, match="real Redis"):
        run(conn, "acl", "--role", "worker", "--apply", "--password-env", "JQC_TEST_PW")
    monkeypatch.delenv("JQC_TEST_PW")
    with pytest.raises(jqc.InvalidOptionError, match="empty or not set"):
        run(conn, "acl", "--role", "worker", "--password-env", "JQC_TEST_PW")


def test_acl_apply_on_a_real_server(admin: jqc.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    user = f"jqc-test-{secrets.token_hex(6)}"
    monkeypatch.setenv("JQC_TEST_PW", secrets.token_urlsafe(16))
    try:
        code, out = run(
            admin, "acl", "--role", "worker", "--queue", "photos", "--user", user, "--apply",
            "--password-env", "JQC_TEST_PW", "--url", REDIS_URL,
        )  # fmt: skip
        assert code == 0 and user in out
        rules: Any = admin.sync_client().execute_command("ACL", "GETUSER", user)
        assert "jqc:{photos}" in str(rules) and "+@all" not in str(rules)
    finally:
        admin.sync_client().execute_command("ACL", "DELUSER", user)


def test_metrics_show(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    code, out = run(conn, "metrics", "show", "--window", "15")
    assert code == 0 and 'jqc_backlog_jobs{queue="photos"} 1.0' in out and "jqc_window_minutes 15.0" in out


def test_metrics_serve(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    out = io.StringIO()
    args = parser().parse_args(["metrics", "serve", "--port", "0", "--addr", "127.0.0.1", "--duration", "1"])
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(args.handler(args, conn, out)))
    thread.start()
    deadline = time.monotonic() + 5
    while "serving" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    url = out.getvalue().split(" on ")[1].strip()
    with urllib.request.urlopen(url, timeout=5) as response:
        assert b'jqc_backlog_jobs{queue="photos"} 1.0' in response.read()
    thread.join(timeout=10)
    assert result == [0]


def test_metrics_serve_on_a_busy_port(conn: jqc.Connection) -> None:
    server, _ = prometheus.serve(conn, port=0, addr="127.0.0.1")
    try:
        with pytest.raises(jqc.InvalidOptionError, match="cannot listen"):
            run(conn, "metrics", "serve", "--port", str(server.server_port), "--addr", "127.0.0.1", "--duration", "0")
    finally:
        server.shutdown()
        server.server_close()
