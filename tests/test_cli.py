"""The jqc command line, run in-process against both backends."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import jqc
from jqc.cli import main
from tests.conftest import REDIS_URL, open_backend


def run(conn: jqc.Connection, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), connection=conn, out=out)
    return code, out.getvalue()


def test_add_then_job_and_jobs(conn: jqc.Connection) -> None:
    argv = ["add", "photos", "thumbnail", '{"photoId": "1"}', "--priority", "2", "--attempts", "3", "--create"]
    code, out = run(conn, *argv)
    assert code == 0
    job_id = out.strip()
    code, out = run(conn, "job", "photos", job_id, "--json")
    shown = json.loads(out)
    assert shown["job"]["data"] == {"photoId": "1"} and shown["job"]["options"]["attempts"] == 3
    code, out = run(conn, "jobs", "photos", "--state", "waiting")
    assert code == 0 and "thumbnail" in out and "(1-1 of 1 waiting)" in out


def test_add_rejects_bad_json_with_a_clear_error(conn: jqc.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(conn, "add", "photos", "x", "{nope", "--create")
    assert code == 2
    assert "DATA is not valid JSON" in capsys.readouterr().err
    assert conn.queue("photos").counts().waiting == 0


def test_stats_lists_every_queue(conn: jqc.Connection) -> None:
    conn.queue("a").add("x")
    conn.queue("b").add("y", job_id="custom")
    q = conn.queue("b")
    q.complete(q.claim("w").jobs[0])
    code, out = run(conn, "stats")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["queue", "waiting", "delayed"]
    assert [line.split()[0] for line in lines[2:4]] == ["a", "b"]
    code, out = run(conn, "stats", "b", "--json")
    (stats,) = json.loads(out)
    assert stats["counts"]["completed"] == 1 and stats["throughput_per_min"] > 0


def test_pause_resume_and_retry(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    job = q.add("x")
    assert run(conn, "pause", "photos") == (0, "photos paused\n")
    assert run(conn, "pause", "photos") == (0, "photos was already paused\n")
    assert q.claim("w").status == jqc.Code.PAUSED
    run(conn, "resume", "photos")
    q.fail(q.claim("w").jobs[0], "boom")
    assert run(conn, "retry", "photos", job.id) == (0, "retried 1 job(s)\n")
    assert q.counts().waiting == 1
    code, _ = run(conn, "retry", "photos")
    assert code == 2  # a usage error


def test_promote_one_or_all(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    first, second, third = (q.add("x", i, delay=60 + i) for i in range(3))
    assert run(conn, "promote", "photos", first.id) == (0, "promoted 1 job(s)\n")
    code, out = run(conn, "promote", "photos", "--all", "--json")
    assert code == 0 and json.loads(out) == [second.id, third.id]
    assert (q.counts().waiting, q.counts().delayed) == (3, 0)
    assert run(conn, "promote", "photos")[0] == 2  # neither ids nor --all: a usage error
    assert run(conn, "promote", "photos", first.id)[0] != 0  # not delayed any more: refused


def test_retry_completed_or_failed_before_a_time(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    q = conn.queue("photos")
    done = q.add("x", 1)
    q.complete(q.claim("w").jobs[0], "ok")
    old = q.add("x", 2)
    q.fail(q.claim("w").jobs[0], "boom", retry=False)
    cut = clock.now()
    clock.advance(60)
    new = q.add("x", 3)
    q.fail(q.claim("w").jobs[0], "boom", retry=False)
    code, out = run(conn, "retry", "photos", "--all", "--state", "completed", "--json")
    assert code == 0 and json.loads(out) == [done.id]
    code, out = run(conn, "retry", "photos", "--all", "--before", str(cut), "--json")
    assert code == 0 and json.loads(out) == [old.id]
    assert q.get_job(new.id).state is jqc.JobState.FAILED  # type: ignore[union-attr]
    assert run(conn, "retry", "photos", new.id, "--before", str(cut))[0] == 2  # ids and --before: refused
    with pytest.raises(SystemExit):
        run(conn, "retry", "photos", "--all", "--before", "last tuesday")


def test_cancel_removes_a_waiting_job_and_marks_an_active_one(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    waiting, active = q.add("x", 1), q.add("x", 2)
    q.remove(waiting.id)
    waiting = q.add("x", 1)
    assert q.claim("w").jobs[0].id == active.id
    code, out = run(conn, "cancel", "photos", waiting.id, active.id, "--reason", "wrong input", "--json")
    assert code == 0 and json.loads(out) == {waiting.id: "removed", active.id: "marked"}
    assert q.get_job(waiting.id) is None and q.get_job(active.id).cancel_reason == "wrong input"  # type: ignore[union-attr]
    assert run(conn, "cancel", "photos", "nope")[0] == 1  # a missing job: refused, one line
    with pytest.raises(SystemExit) as usage:
        run(conn, "cancel", "photos")  # no id: argparse's usage error
    assert usage.value.code == 2


def test_dlq_list_show_replay_purge(conn: jqc.Connection) -> None:
    q = conn.queue("photos")
    q.add_bulk([("resize", i) for i in range(4)])
    for i in range(4):
        q.fail(q.claim("w").jobs[0], "timeout" if i < 3 else "corrupt")
    code, out = run(conn, "dlq", "list", "photos", "--match", "timeout", "--json")
    assert sorted(d["job"]["data"] for d in json.loads(out)) == [0, 1, 2]
    code, out = run(conn, "dlq", "show", "photos", "4", "--json")
    assert json.loads(out)[0]["job"]["failure_reason"] == "corrupt"
    assert run(conn, "dlq", "replay", "photos", "--match", "timeout") == (0, "replayed 3 dead letter(s)\n")
    assert q.counts().waiting == 3 and q.dead_letters().total == 1
    assert run(conn, "dlq", "purge", "photos", "--all") == (0, "purged 1 dead letter(s)\n")
    assert q.dead_letters().total == 0
    code, _ = run(conn, "dlq", "replay", "photos")
    assert code == 2  # a usage error


def test_unknown_job_is_an_error(conn: jqc.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(conn, "job", "photos", "nope")[0] == 1
    assert "no job 'nope'" in capsys.readouterr().err


def test_python_dash_m_runs_the_demo_and_writes_json(tmp_path: Path) -> None:
    path = f"{tmp_path}/demo.json"
    done = subprocess.run(
        [sys.executable, "-m", "jqc", "demo", "--photos", "200", "--json", path],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(Path(path).read_text())
    assert summary["lost"] == 0 and summary["completed_twice"] == 0
    assert summary["completed"] + summary["dead_lettered"] == summary["jobs"]
    assert summary["planned_jobs"] - summary["not_created"] == summary["jobs"] and summary["planned_jobs"] == 600
    assert summary["recovered_stalls"] >= 1
    # Every number it prints adds up: the progress ends at the real total, the kill is explained.
    finished = re.findall(r"finished +(\d+)/(\d+) jobs", done.stdout)
    assert finished[-1] == (str(summary["jobs"]), str(summary["jobs"]))
    held, stranded = summary["killed_holding"], summary["stranded"]
    assert f"killed holding {held} job(s): {stranded} " in done.stdout
    total = f"= {summary['jobs']} = {summary['completed']} completed + {summary['dead_lettered']} dead-lettered"
    assert total in done.stdout


def test_worker_command_runs_a_handler_module_in_burst_mode(tmp_path: Path) -> None:
    conn = open_backend("redis")
    try:
        (tmp_path / "demo_handlers.py").write_text(
            "def thumb(ctx):\n    return {'photo': ctx.data['photoId'], 'attempt': ctx.attempt}\n"
        )
        q = conn.queue("cli-worker")
        q.add_bulk([("thumb", {"photoId": str(i)}) for i in range(5)])
        done = subprocess.run(
            [sys.executable, "-m", "jqc", "worker", "demo_handlers:thumb", "--queue", "cli-worker", "--burst",
             "--url", REDIS_URL, "--json"],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["completed"] == 5
        assert q.counts().completed == 5
        assert q.get_job("1").result == {"photo": "0", "attempt": 1}  # type: ignore[union-attr]
    finally:
        conn.sync_client().flushdb()
        conn.close()


def test_worker_command_rejects_a_bad_handler_spec(conn: jqc.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(conn, "worker", "no_colon_here", "--queue", "q")[0] == 2  # bad arguments: a usage error
    assert "MODULE:FUNCTION" in capsys.readouterr().err
    assert run(conn, "worker", "no_such_module_xyz:f", "--queue", "q")[0] == 2
    assert "cannot import" in capsys.readouterr().err


async def test_workers_command_lists_live_workers(conn: jqc.Connection) -> None:
    queue = conn.async_queue("photos")
    worker = jqc.Worker(queue, lambda ctx: None, name="lister", heartbeat=0.5)
    await worker.start()
    try:
        code, out = await asyncio.to_thread(run, conn, "workers", "photos", "--json")
        (info,) = json.loads(out)
        assert code == 0 and info["name"] == "lister" and info["queues"] == ["photos"]
    finally:
        await worker.close()
        await conn.aclose()
