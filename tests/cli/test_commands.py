"""The command line as a newcomer meets it: reaching a server, refusals that say what to do, dead
letters by failure code, readable jobs, job data from files and stdin, rich output, completion."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import argcomplete
import pytest

import jqc
from jqc.cli import build_parser, main
from tests.conftest import REDIS_URL, open_backend


def run(conn: jqc.Connection | None, *argv: str, out: io.StringIO | None = None) -> tuple[int, str]:
    stream = out or io.StringIO()
    code = main(list(argv), connection=conn, out=stream)
    return code, stream.getvalue()


class Terminal(io.StringIO):
    """Output that says it is an interactive terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def fail_one(queue: jqc.Queue, reason: str, **how: object) -> None:
    queue.fail(queue.claim("w").jobs[0], reason, **how)  # type: ignore[arg-type]


# -- reaching a server -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("redis://127.0.0.1:1/banana", "banana"),
        ("redis://127.0.0.1:notaport/0", "notaport"),
        ("mysql://127.0.0.1/0", "mysql"),
        ("redis://127.0.0.1:1/-3", "-3"),
        ("redis:///0", "host"),
        ("redis://127.0.0.1:1/0?colour=blue", "colour"),
    ],
)
def test_a_malformed_url_is_one_line_and_exit_2(
    url: str, named: str, capsys: pytest.CaptureFixture[str], no_server_env: None
) -> None:
    code, _ = run(None, "stats", "--url", url)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("jqc: error: ") and named in err
    assert "Traceback" not in err


def test_a_database_out_of_the_servers_range_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], no_server_env: None
) -> None:
    open_backend("redis").close()  # skip (or fail under CI) when the test server does not answer
    code, _ = run(None, "stats", "--url", REDIS_URL.rsplit("/", 1)[0] + "/99999")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "database number" in err


def test_bad_option_values_are_usage_errors(conn: jqc.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(conn, "add", "photos", "x", "--priority", str(2**40), "--create")
    assert code == 2 and "priority must be between" in capsys.readouterr().err
    assert not conn.queue("photos").exists()


def test_help_says_how_to_reach_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0
    assert "--url" in text and "JQC_REDIS_URL" in text and "redis://" in text and "embedded" in text
    assert "JQC_REDIS_URL" in build_parser()._subparsers._group_actions[0].choices["jobs"].format_help()  # type: ignore[union-attr]


def test_version_flag_and_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"jqc {jqc.__version__}\n"
    code, out = run(None, "version", "--json")
    found = json.loads(out)
    assert code == 0 and found["jqc"] == jqc.__version__ and found["redis"] and found["rich"]
    code, out = run(None, "version")
    assert code == 0 and re.search(rf"^jqc\s+{re.escape(jqc.__version__)}$", out, re.M)


# -- refusing what would do the wrong thing ---------------------------------------------------------


STATE_CHANGING = [
    ("add", "typo", "x"),
    ("pause", "typo"),
    ("resume", "typo"),
    ("retry", "typo", "1"),
    ("promote", "typo", "--all"),
    ("cancel", "typo", "1"),
    ("dlq", "replay", "typo", "1"),
    ("dlq", "purge", "typo", "--all"),
]


@pytest.mark.parametrize("argv", STATE_CHANGING, ids=lambda a: " ".join(a[:2]))
def test_changing_a_queue_that_does_not_exist_is_refused(
    conn: jqc.Connection, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    conn.queue("photos").add("x")
    code, _ = run(conn, *argv)
    err = capsys.readouterr().err
    assert code == 1
    assert "no such queue 'typo'" in err and "known queues: photos" in err
    assert conn.queue_names() == ["photos"]  # nothing created


def test_create_makes_a_new_queue_where_it_makes_sense(conn: jqc.Connection) -> None:
    assert run(conn, "pause", "fresh", "--create") == (0, "fresh paused\n")
    assert conn.queue("fresh").counts().paused
    code, out = run(conn, "add", "other", "x", "--create")
    assert code == 0 and conn.queue("other").get_job(out.strip()) is not None


@pytest.mark.parametrize("argv", [*STATE_CHANGING, ("add", "typo", "x", "--create")], ids=lambda a: " ".join(a))
def test_changing_the_embedded_store_of_one_command_is_refused(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], no_server_env: None
) -> None:
    code, _ = run(None, *argv)
    err = capsys.readouterr().err
    assert code == 1 and "embedded backend" in err and "--url" in err and "JQC_REDIS_URL" in err


def test_reading_the_embedded_store_is_allowed_with_a_note(
    capsys: pytest.CaptureFixture[str], no_server_env: None
) -> None:
    assert run(None, "stats") == (0, "no queues\n")
    assert "embedded backend" in capsys.readouterr().err


# -- dead letters by code and message ------------------------------------------------------------


@pytest.fixture
def dead(conn: jqc.Connection) -> jqc.Queue:
    queue = conn.queue("photos")
    queue.add_bulk([("resize", i) for i in range(4)])
    fail_one(queue, "timed out after 1 s", code="timeout")
    fail_one(queue, "timed out after 2 s", code="timeout")
    fail_one(queue, "OSError: disk full")
    fail_one(queue, "corrupt image header", retry=False)
    return queue


def test_dlq_filters_on_the_code_and_on_the_message(conn: jqc.Connection, dead: jqc.Queue) -> None:
    code, out = run(conn, "dlq", "list", "photos", "--reason", "timeout", "--json")
    letters = json.loads(out)
    assert code == 0 and sorted(d["job"]["data"] for d in letters) == [0, 1]
    assert {(d["code"], d["reason"]) for d in letters} == {
        ("timeout", "timed out after 1 s"),
        ("timeout", "timed out after 2 s"),
    }
    code, out = run(conn, "dlq", "list", "photos", "--match", "DISK", "--json")
    assert [d["job"]["data"] for d in json.loads(out)] == [2]
    code, out = run(conn, "dlq", "list", "photos", "--reason", "unrecoverable")
    assert "unrecoverable" in out and "corrupt image header" in out and "timed out" not in out
    code, out = run(conn, "dlq", "list", "photos")
    header = out.splitlines()[0].split()
    assert "code" in header and "reason" in header and "runs" in header
    assert run(conn, "dlq", "replay", "photos", "--reason", "timeout") == (0, "replayed 2 dead letter(s)\n")
    assert dead.counts().waiting == 2 and dead.dead_letters().total == 2


def test_dlq_rejects_an_unknown_code(conn: jqc.Connection, dead: jqc.Queue, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        run(conn, "dlq", "list", "photos", "--reason", "timed-out")
    assert done.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_dlq_show_takes_many_ids_and_needs_one(
    conn: jqc.Connection, dead: jqc.Queue, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(conn, "dlq", "show", "photos", "1", "3", "--json")
    assert code == 0 and [d["job"]["id"] for d in json.loads(out)] == ["1", "3"]
    code, out = run(conn, "dlq", "show", "photos", "1", "3")
    assert code == 0 and "dead letter 1" in out and "dead letter 3" in out and "OSError: disk full" in out
    code, _ = run(conn, "dlq", "show", "photos")
    assert code == 2 and "takes one or more job ids" in capsys.readouterr().err
    code, out = run(conn, "dlq", "show", "photos", "2", "nope")
    assert code == 1 and "dead letter 2" in out and "no dead letter for job(s) nope" in capsys.readouterr().err


# -- one job, readable -------------------------------------------------------------------------------


def test_job_is_a_readable_table(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    queue = conn.queue("photos")
    job = queue.add("thumbnail", {"photoId": "1"}, attempts=3)
    clock.advance(90)
    fail_one(queue, "OSError: disk full", delay=0)
    queue.claim("w2")
    code, out = run(conn, "job", "photos", job.id)
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert code == 0
    assert "active" in rows["state"] and "w2" in rows["worker"]
    assert rows["runs"].split()[-1] == "2"
    assert "1 of 3 failed, 2 left" in rows["attempts"]
    assert "error: OSError: disk full" in rows["last error"]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d .*\(1 min 30 s ago\)", rows["created"])
    assert "'photoId'" not in out and "JobState" not in out and "1700000000" not in out  # no reprs, no raw times


def test_job_json_has_every_counter(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    job = queue.add("x", attempts=2)
    queue.complete(queue.claim("w").jobs[0])
    _, out = run(conn, "job", "photos", job.id, "--json")
    shown = json.loads(out)["job"]
    assert (shown["runs"], shown["failed_attempts"], shown["attempts_left"]) == (1, 0, 2)


def test_jobs_shows_runs_and_attempts(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    queue.add("x", attempts=3)
    fail_one(queue, "boom", delay=0)
    _, out = run(conn, "jobs", "photos")
    header, _, row = out.splitlines()[:3]
    assert header.split()[4:6] == ["runs", "failed/allowed"]
    assert row.split()[4:6] == ["1", "1/3"] and "error: boom" in row


# -- job data -----------------------------------------------------------------------------------------


def test_add_reads_data_from_a_file_and_from_stdin(
    conn: jqc.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = conn.queue("photos")
    queue.add("seed")
    (tmp_path / "job.json").write_text('{"photoId": "from-file"}')
    code, out = run(conn, "add", "photos", "x", "--data", f"@{tmp_path / 'job.json'}")
    assert code == 0 and queue.get_job(out.strip()).data == {"photoId": "from-file"}  # type: ignore[union-attr]
    monkeypatch.setattr("sys.stdin", io.StringIO('[1, 2, "three"]'))
    code, out = run(conn, "add", "photos", "x", "--data", "-")
    assert code == 0 and queue.get_job(out.strip()).data == [1, 2, "three"]  # type: ignore[union-attr]
    code, out = run(conn, "add", "photos", "x", "--data", '{"inline": true}')
    assert code == 0 and queue.get_job(out.strip()).data == {"inline": True}  # type: ignore[union-attr]


@pytest.mark.parametrize("source", ["@bad.json", "-", "@missing.json", "{nope"])
def test_bad_job_data_is_one_line_and_enqueues_nothing(
    conn: jqc.Connection,
    source: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "bad.json").write_text('{"photoId": ')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("not json"))
    code, _ = run(conn, "add", "photos", "x", "--data", source, "--create")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("jqc: error: ")
    assert not conn.queue("photos").exists()  # not even the queue was created


def test_add_takes_the_data_once(conn: jqc.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(conn, "add", "photos", "x", "{}", "--data", "{}", "--create")[0] == 2
    assert "not both" in capsys.readouterr().err


# -- output --------------------------------------------------------------------------------------------


def test_piped_output_is_plain_and_a_terminal_gets_colour(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    queue.add("x")
    fail_one(queue, "boom", retry=False)
    code, piped = run(conn, "jobs", "photos", "--state", "failed")
    assert code == 0 and "\x1b[" not in piped and not re.search(r"[━─│┃]", piped)
    assert all(line == line.rstrip() for line in piped.splitlines())
    code, shown = run(conn, "jobs", "photos", "--state", "failed", out=Terminal())
    assert code == 0 and "\x1b[" in shown  # colour and bold on a terminal


def test_no_color_turns_colour_off_on_a_terminal(conn: jqc.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    conn.queue("photos").add("x")
    monkeypatch.setenv("NO_COLOR", "1")
    code, shown = run(conn, "jobs", "photos", out=Terminal())
    assert code == 0 and not re.search(r"\x1b\[[0-9;]*3\dm", shown)  # no foreground colour


def test_every_command_that_prints_data_takes_json() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    data_commands = ["add", "stats", "jobs", "job", "retry", "promote", "cancel", "pause", "resume", "dlq",
                     "workers", "worker", "health", "doctor", "pool", "autoscale", "version"]  # fmt: skip
    for name in data_commands:
        assert "--json" in commands[name].format_help(), name


def test_stats_says_why_a_percentile_is_missing(conn: jqc.Connection) -> None:
    conn.queue("photos").add("x")
    code, out = run(conn, "stats")
    assert code == 0 and "n/a" in out.splitlines()[2] and "n/a: no job finished in the window" in out


# -- shell completion ------------------------------------------------------------------------------


class Finder(argcomplete.CompletionFinder):
    """argcomplete's finder, with its debug output on stderr (its default fd 9 is pytest's)."""

    def _init_debug_stream(self) -> None:
        argcomplete.io.debug_stream = sys.stderr


def complete(line: str, monkeypatch: pytest.MonkeyPatch, url: str | None = None) -> list[str]:
    """What the shell would offer for ``line`` (argcomplete's protocol, run in-process)."""
    env = {"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if url:
        monkeypatch.setenv("JQC_REDIS_URL", url)
    else:
        monkeypatch.delenv("JQC_REDIS_URL", raising=False)
    out = io.StringIO()

    def stop(code: int = 0) -> None:
        raise SystemExit(code)

    with pytest.raises(SystemExit):
        Finder()(build_parser(), exit_method=stop, output_stream=out)
    return [c.strip() for c in out.getvalue().split("\n") if c.strip()]


def test_commands_and_options_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    assert complete("jqc pa", monkeypatch) == ["pause"]
    assert "--reason" in complete("jqc dlq list photos --re", monkeypatch)
    assert complete("jqc dlq list photos --reason ti", monkeypatch) == ["timeout"]


def test_queue_names_complete_from_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = open_backend("redis")
    try:
        conn.queue("photos").add("x")
        conn.queue("physics").add("x")
        conn.queue("mail").add("x")
        assert sorted(complete("jqc pause ph", monkeypatch, REDIS_URL)) == ["photos", "physics"]
        assert complete("jqc pause ph", monkeypatch) == []  # no server named: nothing to offer
        unreachable = "redis://127.0.0.1:1/0"
        assert complete("jqc pause ph", monkeypatch, unreachable) == []  # never a traceback
    finally:
        conn.sync_client().flushdb()
        conn.close()
        os.environ.pop("_ARGCOMPLETE", None)
