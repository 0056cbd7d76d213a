"""``jqc worker`` as an operator meets it: it refuses the embedded backend, says every failed attempt
to reach Redis and gives up with ``--connect-timeout``, logs JSON with ``--log-format json``,
prints "stopped" once, and passes ``--max-stalls`` and the connection flags on."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jqc
from jqc.cli import main
from tests.conftest import REDIS_URL, open_backend
from tests.worker.processes import ROOT, WorkerProcess, free_port

STEADY = "tests.worker.chaos_handlers:steady"


def _jqc(*argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jqc", *argv], capture_output=True, text=True, timeout=timeout, check=False,
        cwd=ROOT, env=env or dict(os.environ),
    )  # fmt: skip


def test_the_worker_refuses_the_embedded_backend() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JQC_REDIS_URL"}
    for extra in ([], ["--url", "memory://"]):
        done = _jqc("worker", STEADY, "--queue", "q", *extra, env=env)
        assert done.returncode == 2, done  # a usage error, like every refused input
        assert "jqc worker needs a Redis server" in done.stderr and "JQC_REDIS_URL" in done.stderr
        assert "embedded backend lives inside one process" in done.stderr


def test_connect_timeout_gives_up_with_exit_1_after_logging_each_attempt() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = _jqc("worker", STEADY, "--queue", "q", "--url", url, "--connect-timeout", "1.5")
    assert done.returncode == 1, done
    attempts = [line for line in done.stderr.splitlines() if "WARNING" in line and "cannot reach Redis at" in line]
    assert len(attempts) >= 2 and "(attempt 1)" in attempts[0] and "(attempt 2)" in attempts[1]
    assert all("next attempt in" in line and "giving up 1.5 s after the first attempt" in line for line in attempts)
    assert "jqc: error: could not reach Redis at" in done.stderr and "within 1.5 s" in done.stderr


def test_without_connect_timeout_it_waits_saying_so_and_sigterm_ends_it(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    worker = WorkerProcess([STEADY, "--queue", "q", "--url", url], tmp_path / "worker.log", dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while worker.output().count("cannot reach Redis") < 2:
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.05)
        assert "with no time limit" in worker.output()
        worker.signal(signal.SIGTERM)
        assert worker.wait(60) == 0, worker.output()
    finally:
        worker.kill()


@pytest.mark.redis_only
def test_json_logs_one_object_per_line_and_stopped_once() -> None:
    conn = open_backend("redis")
    try:
        q = conn.queue("cli-json")
        q.add("work", {"ms": 1})
        q.add("work", {"ms": "x"}, attempts=2, backoff=jqc.Backoff.fixed(0.1))  # TypeError: retried, then dead
        done = _jqc("worker", STEADY, "--queue", q.name, "--url", REDIS_URL, "--burst", "--log-format", "json")
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""  # no second "stopped" line: the log has it
        records = [json.loads(line) for line in done.stderr.splitlines()]
        events = [record.get("event") for record in records]
        assert events.count("started") == 1 and events.count("stopped") == 1
        assert events.count("attempt_failed") == 1 and events.count("dead_letter") == 1
        failed = next(r for r in records if r.get("event") == "attempt_failed")
        assert (failed["attempt"], failed["attempts"], failed["error_type"]) == (1, 2, "TypeError")
        assert failed["level"] == "WARNING" and failed["queue"] == "cli-json" and failed["job_name"] == "work"
        stopped = next(r for r in records if r.get("event") == "stopped")
        assert stopped["stats"]["completed"] == 1 and stopped["stats"]["failed"] == 1
        text = _jqc("worker", STEADY, "--queue", q.name, "--url", REDIS_URL, "--burst")
        assert text.returncode == 0 and text.stdout == "" and text.stderr.count(" stopped: ") == 1
    finally:
        conn.sync_client().flushdb()
        conn.close()


def _stalled_twice(conn: jqc.Connection) -> str:
    """A job whose earlier workers died holding it twice (its stall count is 1, its lock expired again)."""
    q = conn.queue("stalls")
    job = q.add("work", {"ms": 1})
    q.claim("ghost-1", lock=0.01)
    time.sleep(0.05)
    assert q.recover_stalled(max_stalls=5).recovered == (job.id,)
    q.claim("ghost-2", lock=0.01)
    time.sleep(0.05)
    return job.id


@pytest.mark.parametrize(("max_stalls", "state"), [(None, jqc.JobState.FAILED), ("3", jqc.JobState.COMPLETED)])
def test_max_stalls_is_passed_to_the_worker(max_stalls: str | None, state: jqc.JobState) -> None:
    conn = jqc.connect()
    job_id = _stalled_twice(conn)
    argv = ["worker", STEADY, "--queue", "stalls", "--burst", "--summary-interval", "0"]
    argv += ["--max-stalls", max_stalls] if max_stalls else []
    assert main(argv, connection=conn, out=io.StringIO()) == 0
    stored = conn.queue("stalls").get_job(job_id)
    assert stored is not None and stored.state == state and stored.stall_count == 2
    assert main(["worker", STEADY, "--queue", "stalls", "--max-stalls", "-1"], connection=conn) == 2  # refused input


def test_connection_flags_reach_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[jqc.Connection] = []

    def fake_run(self: jqc.Worker, *, burst: bool = False, delayed: bool = False) -> jqc.WorkerStats:
        seen.extend(lane.queue.connection for lane in self.lanes)
        return self.stats

    monkeypatch.setattr(jqc.Worker, "run", fake_run)
    argv = ["worker", STEADY, "--queue", "q", "--url", "redis://127.0.0.1:1/0", "--socket-timeout", "3"]
    argv += ["--socket-connect-timeout", "2", "--health-check-interval", "0", "--no-keepalive"]
    assert main(argv, out=io.StringIO()) == 0
    config = seen[0].factory.config  # type: ignore[attr-defined]
    assert (config.socket_timeout, config.socket_connect_timeout, config.health_check_interval) == (3.0, 2.0, 0.0)
    assert config.socket_keepalive is False and config.call_deadline == 6.0
    assert main(["worker", STEADY, "--queue", "q", "--url", "redis://127.0.0.1:1/0"], out=io.StringIO()) == 0
    defaults = seen[1].factory.config  # type: ignore[attr-defined]
    assert (defaults.socket_timeout, defaults.socket_keepalive, defaults.call_deadline) == (10.0, True, 16.0)


def _health(path: Path, *, at: float, polled: float | None, active: int = 0, hold: float | None = None,
            error: str = "") -> None:  # fmt: skip
    lane = {"queue": "q", "concurrency": 2, "active": active, "polled": polled, "hold": hold, "error": error}
    facts = {"worker": "w-1", "at": at, "started": at - 600, "stuck_after": 60.0, "stopping": False, "queues": [lane]}
    path.write_text(json.dumps(facts))


def test_probe_exits_0_while_consuming_and_1_with_a_one_line_reason_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "health.json"
    now = jqc.SystemClock().now()

    def probe(*extra: str) -> tuple[int, str]:
        out = io.StringIO()
        code = main(["worker", "--probe", "--health-file", str(path), *extra], out=out)
        return code, out.getvalue()

    _health(path, at=now, polled=now - 5)
    assert probe() == (0, "worker w-1 is consuming q\n")
    _health(path, at=now, polled=now - 90, error="PermissionDeniedError: NOPERM")
    code, out = probe()
    assert code == 1 and out.count("\n") == 1 and "not consuming q" in out and "NOPERM" in out
    ago = re.search(r"was (\d+) s ago", out)  # (the probe reads the real clock: a loaded machine adds seconds)
    assert ago and 90 <= int(ago.group(1)) < 150, out
    assert probe("--stuck-after", "120")[0] == 0  # the operator's limit wins over the worker's
    _health(path, at=now, polled=now - 90, active=2)
    assert probe()[0] == 0  # busy is not stuck
    _health(path, at=now, polled=now - 90, hold=now + 30)
    assert probe()[0] == 0  # rate limited
    _health(path, at=now - 120, polled=now - 121)
    code, out = probe()
    assert code == 1 and "has not rewritten its health file for 120 s" in out
    path.write_text("{not json")
    assert probe()[0] == 1
    path.unlink()
    code, out = probe()
    assert code == 1 and "no health file at" in out
    monkeypatch.setenv("JQC_HEALTH_FILE", str(path))
    _health(path, at=now, polled=now)
    out_io = io.StringIO()
    assert main(["worker", "--probe"], out=out_io) == 0 and "consuming q" in out_io.getvalue()
    monkeypatch.delenv("JQC_HEALTH_FILE")
    assert main(["worker", "--probe"], out=io.StringIO()) == 2  # no file named: a usage error
    assert main(["worker", STEADY], out=io.StringIO()) == 2  # a worker needs --queue


@pytest.mark.redis_only
def test_a_running_worker_process_passes_its_probe_and_fails_it_once_stopped(tmp_path: Path) -> None:
    conn = open_backend("redis")
    path = tmp_path / "health.json"
    worker = WorkerProcess([STEADY, "--queue", "probed", "--url", REDIS_URL, "--health-file", str(path)],
                           tmp_path / "worker.log", dict(os.environ))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < deadline and worker.proc.poll() is None, worker.output()
            time.sleep(0.05)
        done = _jqc("worker", "--probe", "--health-file", str(path))
        assert done.returncode == 0 and done.stdout.startswith("worker ") and "is consuming probed" in done.stdout
        worker.signal(signal.SIGTERM)
        assert worker.wait(60) == 0, worker.output()
        done = _jqc("worker", "--probe", "--health-file", str(path))
        assert done.returncode == 1 and "no health file" in done.stdout
    finally:
        worker.kill()
        conn.sync_client().flushdb()
        conn.close()
