"""The worker's logs: one WARNING per failed attempt and per dead letter, completions at DEBUG, a
periodic INFO summary, "stopped" once; stable fields for machines and a JSON formatter; a worker
that cannot reach Redis logs every attempt and, with ``connect_timeout``, gives up with a typed error."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import jqc
from jqc.worker import logs
from tests.servers import private_redis
from tests.worker.helpers import until


def _events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "jqc", {}).get("event") == event]


async def test_failed_attempts_dead_letters_and_completions_are_logged(
    conn: jqc.Connection, clock: jqc.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jqc.worker")
    q = conn.queue("photos")
    doomed = q.add("resize", {"fail": True}, attempts=2, backoff=jqc.Backoff.fixed(5))
    fine = q.add("resize", {"fail": False})

    async def work(ctx: jqc.JobContext) -> str:
        if ctx.data["fail"]:
            raise ValueError(f"bad pixels on attempt {ctx.attempt}")
        return "ok"

    await jqc.Worker(q, work, summary_interval=None).run_until_empty(delayed=True)

    [failed] = _events(caplog, "attempt_failed")
    assert failed.levelno == logging.WARNING
    fields = failed.jqc  # type: ignore[attr-defined]
    assert {k: fields[k] for k in ("job", "job_name", "queue", "attempt", "attempts", "error_type")} == {
        "job": doomed.id, "job_name": "resize", "queue": "photos", "attempt": 1, "attempts": 2,
        "error_type": "ValueError",
    }  # fmt: skip
    assert fields["error"] == "bad pixels on attempt 1" and fields["retry_in"] == pytest.approx(5, abs=0.01)
    message = failed.getMessage()
    assert f"job {doomed.id} (resize) in photos failed attempt 1/2: ValueError: bad pixels on attempt 1" in message
    assert "retrying at " in message and fields["retry_at"] in message

    [dead] = _events(caplog, "dead_letter")
    assert dead.levelno == logging.WARNING and dead.jqc["attempt"] == 2 and dead.jqc["reason"] == "error"  # type: ignore[attr-defined]
    assert "failed for good at attempt 2/2: ValueError: bad pixels on attempt 2; dead-lettered" in dead.getMessage()

    done = _events(caplog, "completed")
    assert [r.jqc["job"] for r in done] == [fine.id] and all(r.levelno == logging.DEBUG for r in done)  # type: ignore[attr-defined]
    assert len(_events(caplog, "stopped")) == 1
    assert sum("stopped" in r.getMessage() for r in caplog.records) == 1


async def test_a_summary_is_logged_every_interval(
    conn: jqc.Connection, clock: jqc.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jqc.worker")
    q = conn.queue("photos")
    for i in range(5):
        q.add("resize", i)
    q.add("resize", -1, attempts=1)
    q.add("later", None, delay=3600)

    async def work(ctx: jqc.JobContext) -> None:
        if ctx.data < 0:
            raise RuntimeError("no")

    worker = jqc.Worker(q, work, summary_interval=10)
    await worker.start()
    await until(clock, lambda: bool(_events(caplog, "summary")), within=30)
    await worker.close()
    first = _events(caplog, "summary")[0]
    assert first.levelno == logging.INFO
    facts = first.jqc  # type: ignore[attr-defined]
    assert (facts["done"], facts["failed"], facts["retried"], facts["dead"]) == (5, 1, 0, 1)
    assert (facts["active"], facts["waiting"], facts["delayed"], facts["interval"]) == (0, 0, 1, 10.0)
    assert facts["queues"] == {"photos": {"waiting": 0, "delayed": 1}}
    assert "in the last 10 s: 5 done, 1 failed (0 retried, 1 dead-lettered); 0 active; photos: 0 waiting" in (
        first.getMessage()
    )


async def test_a_job_that_stalls_too_often_is_logged_as_a_dead_letter(
    conn: jqc.Connection, clock: jqc.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jqc.worker")
    q = conn.queue("photos")
    job = q.add("resize", None)
    started = asyncio.Event()

    async def hang(ctx: jqc.JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    dying = jqc.Worker(q, hang, lock=2, max_stalls=0)
    await dying.start()
    await asyncio.wait_for(started.wait(), 10)
    await dying.kill()
    checker = jqc.Worker(q, hang, lock=2, max_stalls=0)
    await checker.start()
    await until(clock, lambda: bool(_events(caplog, "dead_letter")), within=30)
    await checker.close()
    [dead] = _events(caplog, "dead_letter")
    assert dead.jqc["job"] == job.id and dead.jqc["reason"] == "stalled"  # type: ignore[attr-defined]
    assert q.counts().dead == 1


def test_the_json_formatter_prints_one_object_per_line_with_stable_fields() -> None:
    logger = logging.getLogger("jqc.test.json")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        extra = logs.fields("attempt_failed", worker="w1", job="7", attempt=1, message="not mine", time="no")
        logger.warning("job %s failed\nsecond line", "7", extra=extra)
        try:
            raise KeyError("boom")
        except KeyError:
            logger.exception("with a traceback")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(first)[:4] == ["time", "level", "logger", "message"]
    assert first["level"] == "WARNING" and first["logger"] == "jqc.test.json"
    assert first["message"] == "job 7 failed\nsecond line"  # the record's, not a field's of that name
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert (first["event"], first["worker"], first["job"], first["attempt"]) == ("attempt_failed", "w1", "7", 1)
    assert "KeyError: 'boom'" in second["exception"] and second["level"] == "ERROR"


def test_configure_leaves_an_applications_own_logging_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    stream = io.StringIO()
    assert logs.configure("json", stream=stream)
    logging.getLogger("jqc.worker").info("hello", extra=logs.fields("started", worker="w"))
    assert json.loads(stream.getvalue())["event"] == "started"
    assert not logs.configure("text")  # configured already (by the application, say): left alone
    assert len(root.handlers) == 1
    with pytest.raises(jqc.InvalidOptionError):
        logs.configure("xml")


async def test_an_unreachable_redis_is_logged_at_every_attempt_and_a_connect_timeout_gives_up(
    caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    caplog.set_level(logging.WARNING, logger="jqc.worker")
    conn = jqc.connect(f"redis://127.0.0.1:{unused_tcp_port}/0", socket_connect_timeout=0.5)
    worker = jqc.Worker(conn.async_queue("q"), _noop, connect_timeout=0.3, reconnect_delay=(0.01, 0.05))
    with pytest.raises(jqc.ConnectionLostError, match=r"could not reach Redis .* within 0\.3 s"):
        await worker.start()
    assert worker.state is jqc.worker.WorkerState.CLOSED
    attempts = _events(caplog, "unreachable")
    assert len(attempts) >= 2 and [r.jqc["attempt"] for r in attempts] == list(range(1, len(attempts) + 1))  # type: ignore[attr-defined]
    assert "cannot reach Redis" in attempts[0].getMessage() and "next attempt in" in attempts[0].getMessage()
    assert "giving up 0.3 s after the first attempt" in attempts[0].getMessage()
    await conn.aclose()


async def test_without_a_connect_timeout_the_worker_waits_saying_so_until_closed(
    caplog: pytest.LogCaptureFixture, unused_tcp_port: int
) -> None:
    caplog.set_level(logging.WARNING, logger="jqc.worker")
    conn = jqc.connect(f"redis://127.0.0.1:{unused_tcp_port}/0", socket_connect_timeout=0.5)
    worker = jqc.Worker(conn.async_queue("q"), _noop, reconnect_delay=(0.01, 0.05))
    starting = asyncio.ensure_future(worker.start())
    deadline = asyncio.get_running_loop().time() + 30
    while len(_events(caplog, "unreachable")) < 3:
        assert asyncio.get_running_loop().time() < deadline, "no attempts logged"
        await asyncio.sleep(0.01)
    assert "no time limit" in _events(caplog, "unreachable")[0].getMessage()
    await worker.close()
    await asyncio.wait_for(starting, 30)  # the close ended the wait
    assert worker.state is jqc.worker.WorkerState.CLOSED and not worker.running
    await conn.aclose()


async def _noop(ctx: jqc.JobContext) -> Any:
    return None


async def test_bad_credentials_at_start_are_logged_as_errors_not_as_an_unreachable_server(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.WARNING, logger="jqc.worker")
    with private_redis(tmp_path) as server:
        server.client().config_set("requirepass", "right")
        conn = jqc.connect(f"unix://:wrong@{server.socket}")
        worker = jqc.Worker(conn.async_queue("q"), _noop, connect_timeout=0.3, reconnect_delay=(0.01, 0.05))
        with pytest.raises(jqc.ConnectionLostError, match="AuthenticationFailedError"):
            await worker.start()
        await conn.aclose()
    attempts = _events(caplog, "unreachable")
    assert attempts[0].levelno == logging.ERROR and "cannot use Redis" in attempts[0].getMessage()
