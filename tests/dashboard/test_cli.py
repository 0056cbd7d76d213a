"""``jqc dashboard``: what it refuses in one line, and that it serves the dashboard with uvicorn
(read-only, behind basic auth from the environment) in a process of its own, on a real Redis."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import jqc
from jqc.cli import main

from .browser import bound_socket
from .conftest import DASHBOARD_REDIS_URL, _live_connection

ROOT = Path(__file__).resolve().parents[2]


def test_it_refuses_the_embedded_backend(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    assert main(["dashboard"]) == 1
    assert "jqc dashboard needs a server" in capsys.readouterr().err


def test_bad_credentials_and_ports_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    conn = jqc.connect()
    for argv in (["--basic-auth", "nopassword"], ["--basic-auth", ":x"], ["--port", "70000"]):
        assert main(["dashboard", *argv], connection=conn, out=io.StringIO()) == 2
        assert capsys.readouterr().err.startswith("jqc: error: ")


def _get(url: str, auth: str | None = None, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method, data=b"paused=1" if method == "POST" else None)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_it_serves_the_dashboard_read_only_behind_basic_auth() -> None:
    _live_connection("redis").close()  # fails under CI without Redis (the command reads prefix jqc)
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()  # the command binds it again at once
    env = {**os.environ, "JQC_DASHBOARD_AUTH": "ops:s3cret", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "jqc", "dashboard", "--url", DASHBOARD_REDIS_URL, "--port", str(port), "--read-only"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while _up(base) is False:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "jqc dashboard did not answer within 30 s"
            time.sleep(0.1)
        assert _get(base + "/") == 401
        assert _get(base + "/", "ops:wrong") == 401
        assert _get(base + "/", "ops:s3cret") == 200
        assert _get(base + "/workers", "ops:s3cret") == 200
        assert _get(base + "/queues/cli-check/pause", "ops:s3cret", method="POST") in (404, 405)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert "serving the jqc dashboard of redis://127.0.0.1:6379" in out and "read-only, basic auth" in out
    assert "s3cret" not in out + err


def _up(base: str) -> bool:
    try:
        _get(base + "/")
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
