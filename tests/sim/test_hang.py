"""Hung calls (``hang``): a report that never returns is abandoned at the worker's call deadline,
the job it held is recovered within its bound, and the ``hung_calls`` invariant catches a worker
model that lost either defence (the call deadline, bounded renewal)."""

from __future__ import annotations

import math

import pytest

import jqc
import jqc.sim.hang as hang
from jqc.errors import InvalidOptionError
from jqc.sim import Exponential, JobClass, Poisson, SimConfig, Simulator, parse_faults
from jqc.sim.hang import recovery_bound
from jqc.sim.report import Report

BASE = SimConfig(
    seed=11,
    workers=6,
    jobs=200,
    arrival=Poisson(4.0),
    service=Exponential(1.0),
    lock=3.0,
    stall_interval=1.0,
    mix=(JobClass(attempts=3, backoff=0.2),),
)
ONE_HANG = BASE.replace(faults=parse_faults("hang@5/0"))  # worker slot 0 is busy at t=5 with seed 11


def run_logged(config: SimConfig, conn: jqc.Connection) -> tuple[Report, list[str]]:
    sim = Simulator(config, conn, keep_log=True)
    report = sim.run()
    assert sim.log.lines is not None
    return report, sim.log.lines


def hung_examples(report: Report) -> list[str]:
    return [e for e in report.violation_examples if e.startswith("hung_calls:")]


def test_the_fault_parses_and_round_trips() -> None:
    faults = parse_faults("hang=0.25,hang@3/1")
    assert faults.hang == 0.25 and [f.kind for f in faults.schedule] == ["hang"]
    assert parse_faults(faults.spec) == faults
    with pytest.raises(InvalidOptionError, match="hang must be a probability"):
        parse_faults("hang=2")


def test_hung_reports_are_abandoned_and_their_jobs_recovered(fast: jqc.Connection) -> None:
    report, log = run_logged(BASE.replace(faults=parse_faults("hang=0.1")), fast)
    assert report.ok, report.render()
    assert report.lost == 0 and report.pending == 0 and report.completed == report.jobs
    injected = report.faults_injected["hang"]
    assert injected >= 5
    assert report.coverage["hang"]["reached"] == injected  # every hang's jobs came back within the bound
    assert report.invariants["hung_calls"]["checked"] >= injected
    # both kinds of hang happened: a request swallowed, and one that ran with its reply lost
    assert any(line.endswith("never reached Redis") for line in log)
    assert any(line.endswith("ran, its reply is lost") for line in log)
    assert sum(" abandons its " in line for line in log) == injected
    # a job re-run after a hang is explained by it (a lost complete reply's fetched job stalls)
    assert all("hang" in cause.split("+") for cause in report.duplicate_causes), report.duplicate_causes


def test_a_scheduled_hang_hits_the_next_report(fast: jqc.Connection) -> None:
    report, log = run_logged(ONE_HANG, fast)
    assert report.ok, report.render()
    assert report.faults_injected == {"hang": 1}
    armed = next(line for line in log if "fault hang armed on w0.1" in line)
    job = armed.split()[-3]
    hung = next(line for line in log if line.split()[1:3] == ["fault", "hang"] and f" of {job}:" in line)
    assert float(hung.split()[0]) >= float(armed.split()[0])
    abandoned = next(line for line in log if f"abandons its complete of {job}" in line)
    assert float(abandoned.split()[0]) == pytest.approx(float(hung.split()[0]) + BASE.call_timeout)
    assert any(line.split()[1:3] == ["complete", "w0.1"] and line.split()[3].startswith(f"{job}:") for line in log)


def test_a_deadline_longer_than_the_lock_leaves_it_to_bounded_renewal(fast: jqc.Connection) -> None:
    """The worker's retried report comes too late: renewal stopped one lock after the report
    began, so the lock ran out and the stall check took the job back; the late write is fenced."""
    config = ONE_HANG.replace(call_timeout=10.0)
    report, log = run_logged(config, fast)
    assert report.ok, report.render()
    assert recovery_bound(config) == 2 * config.lock + config.stall_interval
    job = next(line for line in log if "fault hang armed" in line).split()[-3]
    hung = next(i for i, line in enumerate(log) if f"fault hang w0.1 complete of {job}:" in line)
    token = log[hung].split()[6]  # "<time> fault hang w0.1 complete of <job>:<token> ..."
    stopped = next(i for i, line in enumerate(log) if f"stops renewing {job}" in line)
    renewals = [i for i, line in enumerate(log) if line.split()[1:4] == ["extend", "w0.1", token]]
    # while its report hangs, the worker renews the lock over its other connections, for one lock only
    assert any(hung < i < stopped for i in renewals) and max(renewals) < stopped
    assert float(log[stopped].split()[0]) - float(log[hung].split()[0]) == pytest.approx(config.lock)
    assert any(" recover " in line and f" {job} stalled" in line for line in log)
    assert any(line.split()[1:3] == ["complete", "w0.1"] and line.endswith("rejected") for line in log)
    assert report.coverage["hang"]["reached"] == 1


def test_planted_bug_no_call_deadline_is_caught(fast: jqc.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a call deadline the worker waits forever; bounded renewal still frees its job."""
    monkeypatch.setattr(hang, "call_deadline", lambda cfg: math.inf)
    report = Simulator(ONE_HANG, fast).run()
    assert not report.ok
    examples = hung_examples(report)
    assert examples and all("still waits on its complete" in e for e in examples), examples
    assert report.completed == report.jobs  # the stall check recovered the job; the others ran it


def test_planted_bug_unbounded_renewal_without_deadline_is_caught(
    fast: jqc.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20's half-open worker: no deadline and renewal forever, so the job is never recovered."""
    monkeypatch.setattr(hang, "call_deadline", lambda cfg: math.inf)
    monkeypatch.setattr(hang, "renewal_bound", lambda cfg: math.inf)
    report = Simulator(ONE_HANG, fast).run()
    assert not report.ok
    assert any("still held under token" in e for e in hung_examples(report)), report.violation_examples
    assert report.invariants["liveness"]["violations"] == 1  # and it never finishes


def test_other_faults_excuse_a_late_recovery_but_liveness_still_catches_it(
    fast: jqc.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hang, "call_deadline", lambda cfg: math.inf)
    monkeypatch.setattr(hang, "renewal_bound", lambda cfg: math.inf)
    report = Simulator(ONE_HANG.replace(faults=parse_faults("hang@5/0,crash@40/3")), fast).run()
    assert report.invariants["hung_calls"]["violations"] == 0
    assert report.invariants["hung_calls"].get("excused", 0) >= 1
    assert report.invariants["liveness"]["violations"] >= 1 and not report.ok
