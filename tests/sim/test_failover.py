"""Failovers that lose the last writes (``failover``): a replica that lagged behind is promoted.

What may happen is counted, never silent: acknowledged adds of the lost window are "lost with
failover", completions undone run again (every re-run traced to the failover), claims and
renewals undone. What may not happen does not: every invariant holds (one container per job, no
token handed out twice, nothing lost outside the counts), on both backends with the same event
log. With the engine's token floor planted out, the token check catches the repeat.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
from pathlib import Path

import pytest

import jqc
from jqc.cli import main
from jqc.engine.calls import run_sync
from jqc.engine.operations import QueueOperations
from jqc.errors import InvalidOptionError
from jqc.sim import FaultConfig, JobClass, LogNormal, Poisson, SimConfig, Simulator, parse_faults, run
from jqc.sim.replica import copy_op, restore_op
from jqc.sim.report import Report
from tests.conftest import open_backend
from tests.sim.helpers import planted

BASE = SimConfig(
    seed=11,
    workers=6,
    jobs=300,
    arrival=Poisson(4.0),
    service=LogNormal(1.0, 0.5),
    lock=3.0,
    stall_interval=1.0,
    mix=(
        JobClass(name="resize", attempts=3, backoff=0.5, transient=0.05),
        JobClass(name="urgent", weight=0.3, priority=1, delay=1.0, attempts=2, permanent=0.1),
    ),
)
ONE = BASE.replace(faults=parse_faults("failover@30:by=1.5:duration=3"))
MANY = BASE.replace(
    jobs=300,
    faults=parse_faults(
        "crash=0.02,pause=0.02,partition=0.02,error=0.02,hang=0.02,slow=0.01,restart=0.01,failover=0.05",
        FaultConfig(restart_persist=0.5),
    ),
    rate_limit=(30, 1.0),
)


def _accounted(report: Report) -> None:
    """Every job added is completed, dead-lettered, pending, dropped by Redis or lost with failover."""
    assert report.lost == 0
    assert (
        report.completed + report.dead_lettered + report.pending + report.dropped_by_redis + report.lost_with_failover
        == report.jobs
    )
    assert report.lost_with_failover == report.failover["adds_lost"]


def test_the_fault_parses_round_trips_and_refuses_bad_sizes() -> None:
    faults = parse_faults("failover=0.01,failover@30:by=0.8:duration=4")
    assert faults.failover == 0.01 and [f.spec for f in faults.schedule] == ["failover@30:duration=4:by=0.8"]
    assert parse_faults(faults.spec) == faults
    with pytest.raises(InvalidOptionError, match="fault failover must be a rate"):
        parse_faults("failover=-1")
    with pytest.raises(InvalidOptionError, match="failover_lag"):
        FaultConfig(failover_lag=(2.0, 1.0))


def test_a_failover_loses_the_lag_of_writes_and_every_loss_is_counted() -> None:
    sim = Simulator(ONE, keep_log=True)
    report = sim.run()
    assert report.ok, report.render()
    _accounted(report)
    counts = report.failover
    assert counts["failovers"] == 1 and report.faults_injected == {"failover": 1}
    # 1.5 s of writes at 4 adds/s and six busy workers: adds lost, and completions undone
    assert counts["adds_lost"] >= 1 and counts["completions_undone"] >= 1
    assert report.coverage["failover"]["reached"] == 1  # work resumed on the promoted replica
    assert report.duplicates >= counts["completions_undone"]
    assert report.duplicate_causes and all("failover" in c.split("+") for c in report.duplicate_causes)
    assert report.invariants["failover"]["checked"] > 0
    assert report.invariants["token_fencing"]["violations"] == 0
    assert "lost with failover" in report.render() and "failovers: failovers 1, adds lost" in report.render()
    lines = sim.log.lines or []
    (fault,) = [line for line in lines if " fault failover " in line]
    assert float(fault.split()[0]) == pytest.approx(30.0) and "replica 1.500s behind" in fault
    lost = [line.split()[-1] for line in lines if " failover lost " in line]
    assert len(lost) == counts["adds_lost"]
    for job_id in lost:  # each one was added within the lost window, before the failover
        (added,) = [line for line in lines if line.split()[1:3] == ["add", job_id]]
        assert 28.5 <= float(added.split()[0]) <= 30.0


@pytest.mark.parametrize("backend", ["fake", "redis"])
def test_failovers_among_every_other_fault_keep_every_invariant_on_both_backends(backend: str) -> None:
    conn = open_backend(backend, jqc.VirtualClock())
    try:
        report = run(MANY, conn)
    finally:
        conn.close()
    assert report.ok, report.render()
    _accounted(report)
    assert report.failover["failovers"] >= 2
    if backend == "redis":
        assert report.event_log_sha256 == run(MANY).event_log_sha256  # the same log as on the embedded backend


def test_with_the_token_floor_planted_out_the_repeated_tokens_are_caught() -> None:
    """Expected to fail the run: without claim.lua's floor at now * 1000, the token counter goes
    back with the lost writes and the next claims hand out tokens the lost window already had."""
    old, new = "if token <= NOW * 1000 then", "if token == 1 then"
    with contextlib.ExitStack() as stack:
        for script in ("claim", "complete", "complete_many"):
            stack.enter_context(planted(script, old, new))
        report = run(ONE)
    assert not report.ok
    assert report.invariants["token_fencing"]["violations"] >= 1
    assert any("was handed out before" in e for e in report.violation_examples), report.violation_examples


@pytest.mark.parametrize("backend", ["fake", "redis"])
def test_the_replica_copy_puts_back_every_key_exactly(backend: str) -> None:
    conn = open_backend(backend, jqc.VirtualClock())
    try:
        ops = QueueOperations("replica-test", clock=conn.clock, prefix=conn.prefix)
        queue = conn.queue("replica-test")
        queue.add_bulk([jqc.NewJob("a", {"n": i}, jqc.JobOptions(priority=i % 3, delay=i % 2)) for i in range(20)])
        queue.claim("w", count=5)

        def everything() -> dict[str, object]:
            copy = run_sync(conn.backend, copy_op(ops.keys))
            return {"h": copy.hashes, "l": copy.lists, "z": copy.zsets, "s": copy.strings, "t": copy.sets}

        before = everything()
        copy = run_sync(conn.backend, copy_op(ops.keys))
        queue.add_bulk([jqc.NewJob("b", i) for i in range(5)])
        queue.claim("w2", count=3)
        assert everything() != before
        assert run_sync(conn.backend, restore_op(ops.keys, copy)) == copy.keys
        assert everything() == before
        assert queue.counts().active == 5 and queue.counts().total == 20
    finally:
        queue.obliterate(force=True)
        conn.close()


def test_the_cli_exercises_failovers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    argv = "sim --workers 5 --jobs 200 --arrival poisson:rate=3 --service lognormal:mean=1,sigma=0.5 "
    argv += f"--faults failover=0.02,failover@20:by=1:duration=2 --lock 3 --stall-interval 1 --seed 5 --json {out}"
    assert main(shlex.split(argv), out=io.StringIO()) == 0
    report = json.loads(out.read_text())
    assert report["ok"] and report["failover"]["failovers"] >= 1 and report["lost"] == 0
    assert report["invariants"]["failover"]["violations"] == 0
    assert "--faults failover=0.02,failover@20:duration=2:by=1" in report["replay_command"]
