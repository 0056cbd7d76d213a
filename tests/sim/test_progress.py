"""Progress: the simulator hands virtual time and counts to a callback without changing the run,
and ``jqc sim`` draws a rich bar from them on a terminal's stderr, and nothing when piped."""

from __future__ import annotations

import argparse
import io
import json
import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jqc
from jqc.cli.progress import virtual_time
from jqc.cli.sim import add_parser
from jqc.cli.sim import run_sim as main
from jqc.sim import Exponential, Poisson, SimConfig, SimProgress, Simulator, parse_faults
from jqc.sim.report import Report

SMALL = SimConfig(seed=3, workers=3, jobs=40, arrival=Poisson(4.0), service=Exponential(0.5), lock=3.0)
ARGV = "--workers 4 --jobs 150 --arrival poisson:rate=3 --lock 3 --stall-interval 1 --seed 5"


def follow(config: SimConfig, conn: jqc.Connection, every: int = 250) -> tuple[Report, list[SimProgress]]:
    seen: list[SimProgress] = []
    report = Simulator(config, conn, on_progress=seen.append, progress_every=every).run()
    return report, seen


def assert_monotone(seen: list[SimProgress]) -> None:
    for field in ("virtual_seconds", "events", "jobs_added", "jobs_done"):
        values = [getattr(p, field) for p in seen]
        assert values == sorted(values), (field, values)
    assert [p.finished for p in seen] == [False] * (len(seen) - 1) + [True]
    assert all(p.jobs_done <= p.jobs_added for p in seen)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    every=st.integers(1, 400),
    faults=st.sampled_from(["", "crash=0.1", "hang=0.2,pause=0.05", "restart@3:duration=2:persist=0"]),
)
def test_the_callback_sees_monotone_virtual_time_and_counts(
    fast: jqc.Connection, seed: int, every: int, faults: str
) -> None:
    report, seen = follow(SMALL.replace(seed=seed, faults=parse_faults(faults)), fast, every)
    assert_monotone(seen)
    last = seen[-1]
    assert last.virtual_seconds == report.virtual_seconds
    assert last.jobs_added == report.jobs
    assert last.jobs_done == report.completed + report.dead_lettered + report.dropped_by_redis
    assert {p.jobs_expected for p in seen} == {SMALL.jobs}
    # before the first event, every `every` events, and at the end
    assert len(seen) in (last.events // every + 1, last.events // every + 2)


def test_a_duration_run_learns_how_many_jobs_it_adds_when_arrivals_end(fast: jqc.Connection) -> None:
    report, seen = follow(SMALL.replace(jobs=None, duration=10.0, prefill=5), fast, every=20)
    assert_monotone(seen)
    assert seen[0].jobs_expected is None
    assert seen[-1].jobs_expected == report.jobs == seen[-1].jobs_added
    known = [p.jobs_expected for p in seen if p.jobs_expected is not None]
    assert known and set(known) == {report.jobs}


def test_following_a_run_does_not_change_it(fast: jqc.Connection) -> None:
    config = SMALL.replace(faults=parse_faults("crash=0.05,hang=0.1"))
    plain = Simulator(config, fast).run()
    followed, seen = follow(config, fast, every=7)
    assert len(seen) > 3
    assert followed.event_log_sha256 == plain.event_log_sha256


def test_progress_every_must_be_at_least_one() -> None:
    with pytest.raises(jqc.InvalidOptionError, match="progress_every must be at least 1"):
        Simulator(SMALL, progress_every=0)


def test_virtual_time_reads_like_a_duration() -> None:
    seconds = (0.0, 3.25, 59.94, 59.96, 125.0, 3723.4, 3599.7)
    assert [virtual_time(s) for s in seconds] == ["0.0s", "3.2s", "59.9s", "1m00s", "2m05s", "1h02m03s", "1h00m00s"]


def parse(argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jqc")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["sim", *shlex.split(argv)])


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def use_terminal(monkeypatch: pytest.MonkeyPatch) -> FakeTerminal:
    """Make stderr a terminal rich can draw on, whatever the environment running the tests says.

    Called inside the test: pytest's capture sets ``sys.stderr`` again when the test body starts.
    """
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    err = FakeTerminal()
    monkeypatch.setattr("sys.stderr", err)
    return err


def test_piped_output_has_no_bar_and_no_control_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(parse(ARGV)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "\x1b" not in out and "jobs 150: completed 150" in out


def test_json_on_stdout_is_json_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(parse(ARGV + " --json -")) == 0
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["jobs"] == 150 and report["ok"] is True


def test_a_terminal_gets_a_bar_of_jobs_done_and_virtual_time(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = use_terminal(monkeypatch)
    assert main(parse(ARGV + " --self-check")) == 0
    drawn = terminal.getvalue()
    assert "\x1b[" in drawn  # drawn and redrawn in place
    assert "150/150" in drawn and "jobs done" in drawn and "virtual " in drawn
    assert "seed 5" in drawn and "self-check" in drawn  # one bar per run
    out = capsys.readouterr().out
    assert "\x1b" not in out and "self-check: a second run of seed 5 gave the same event log" in out


@pytest.mark.parametrize("flag", ["--quiet", "--json -"])
def test_quiet_and_json_draw_no_bar_even_on_a_terminal(
    flag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = use_terminal(monkeypatch)
    assert main(parse(f"{ARGV} {flag}")) == 0
    assert terminal.getvalue() == ""
    assert "\x1b" not in capsys.readouterr().out
