"""``jqc schedules list|add|remove|next`` on both backends: upserts, next fire times in the
schedule's zone, previews of an expression, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json

import pytest

import jqc
from tests.cli.test_commands import run


def test_add_list_next_and_remove(conn: jqc.Connection) -> None:
    code, text = run(conn, "schedules", "add", "photos", "nightly", "--cron", "30 2 * * *", "--tz", "Europe/Berlin",
                     "--data", '{"keep_days": 30}', "--missed", "skip", "--priority", "3")  # fmt: skip
    assert code == 0 and text == "nightly: revision 1, next tick 2026-01-01T02:30:00+01:00\n"
    made = conn.queue("photos").get_schedule("nightly")
    assert made is not None and made.data == {"keep_days": 30} and made.missed == "skip"
    assert made.options.priority == 3
    code, again = run(conn, "schedules", "add", "photos", "nightly", "--cron", "30 2 * * *", "--tz", "Europe/Berlin",
                      "--data", '{"keep_days": 30}', "--missed", "skip", "--priority", "3")  # fmt: skip
    assert code == 0 and "revision 1" in again  # unchanged: left as it was
    code, listed = run(conn, "schedules", "list", "photos", "--json")
    (entry,) = json.loads(listed)
    assert code == 0 and entry["name"] == "nightly" and entry["next"] == ["2026-01-01T02:30:00+01:00"]
    code, table = run(conn, "schedules", "list", "photos")
    assert code == 0 and "cron 30 2 * * * (Europe/Berlin)" in table and "(1 schedule(s) in photos)" in table
    code, coming = run(conn, "schedules", "next", "photos", "nightly", "--count", "3", "--json")
    assert json.loads(coming) == {
        "nightly": ["2026-01-01T02:30:00+01:00", "2026-01-02T02:30:00+01:00", "2026-01-03T02:30:00+01:00"]
    }
    code, text = run(conn, "schedules", "remove", "photos", "nightly")
    assert code == 0 and text == "removed schedule nightly\n"
    assert conn.queue("photos").schedules() == []


def test_next_previews_an_expression_across_a_dst_change(conn: jqc.Connection) -> None:
    assert isinstance(conn.clock, jqc.VirtualClock)
    conn.clock.move_to(1774692000.0)  # 2026-03-28 10:00 UTC
    code, text = run(conn, "schedules", "next", "--cron", "30 2 * * *", "--tz", "Europe/Berlin", "--count", "3")
    assert code == 0
    assert text.split() == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]
    code, text = run(conn, "schedules", "next", "--every", "90", "--count", "2", "--json")
    assert code == 0 and len(json.loads(text)) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add", "photos", "s", "--cron", "61 * * * *"], "invalid cron expression '61 * * * *'"),
        (["add", "photos", "s", "--cron", "* * * * *", "--tz", "Nowhere/Land"], "unknown time zone 'Nowhere/Land'"),
        (["add", "photos", "s", "--every", "0.1"], "every must be between"),
        (["add", "photos", "s"], "exactly one of --cron EXPR and --every SECONDS"),
        (["add", "photos", "s", "--cron", "* * * * *", "--every", "5"], "exactly one of"),
        (["add", "photos", "s", "--cron", "* * * * *", "--data", "{nope"], "DATA is not valid JSON"),
        (["add", "photos", "bad name", "--cron", "* * * * *"], "invalid schedule name"),
        (["add", "photos", "s", "--cron", "* * * * *", "--max-catch-up", "0"], "max_catch_up must be"),
        (["next", "--cron", "0 0 30 2 *"], "never fires"),
        (["next", "--cron", "* * * * *", "--count", "0"], "--count must be"),
        (["next"], "give a queue"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    conn: jqc.Connection, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, text = run(conn, "schedules", *argv)
    err = capsys.readouterr().err
    assert code == 2 and text == ""
    assert err.count("\n") == 1 and err.startswith("jqc: error: ") and message in err
    assert conn.queue("photos").schedules() == [] and not conn.queue("photos").exists()


def test_removing_a_schedule_that_does_not_exist_exits_1(
    conn: jqc.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    conn.queue("photos").schedule("kept", every=60)
    code, _ = run(conn, "schedules", "remove", "photos", "gone")
    err = capsys.readouterr().err
    assert code == 1 and "no schedule 'gone' in queue 'photos'; its schedules: kept" in err
