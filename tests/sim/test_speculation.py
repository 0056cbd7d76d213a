"""Lock renewals sent with the next call (jqc/sim/speculation.py): the same report as sending each
one on its own, on both backends, with a fencing bug planted in the engine too (the run is then done
over without keeping calls), and nothing reads the server before the kept calls have run."""

from __future__ import annotations

from typing import Any

import pytest

import jqc
from jqc.engine.calls import CommandCall, run_sync
from jqc.engine.operations import QueueOperations
from jqc.engine.replies import as_strs
from jqc.sim import run
from jqc.sim.attempts import Attempts
from jqc.sim.runner import Simulator
from jqc.sim.speculation import DeferredCalls, SpeculationMissed
from jqc.sim.workers import Call
from tests.conftest import open_backend
from tests.sim.helpers import planted
from tests.sim.test_determinism import FAULTY
from tests.sim.test_planted import ZOMBIES


@pytest.mark.parametrize("kind", ["fake", "redis"])
def test_keeping_renewals_gives_the_report_of_sending_each_alone(kind: str) -> None:
    conn = open_backend(kind, jqc.VirtualClock())
    try:
        kept = Simulator(FAULTY, conn)
        fast = kept.run()
        plain = run(FAULTY, conn, speculate=False)
    finally:
        conn.close()
    assert kept.speculate and isinstance(kept.backend, DeferredCalls) and kept.backend.kept > 50
    assert fast.ok and plain.ok
    assert fast.event_log_sha256 == plain.event_log_sha256
    assert fast.engine_calls == plain.engine_calls
    assert fast.to_json()["invariants"] == plain.to_json()["invariants"]


def test_a_wrong_guess_makes_the_run_start_over_without_keeping(monkeypatch: pytest.MonkeyPatch) -> None:
    guessed: list[int] = []
    right_guess = Attempts._g_extend

    def wrong_once(call: Call) -> dict[str, bool]:
        guessed.append(1)
        right = right_guess(call)
        return {k: not v for k, v in right.items()} if len(guessed) == 40 else right

    monkeypatch.setattr(Attempts, "_g_extend", staticmethod(wrong_once))
    sim = Simulator(FAULTY)
    report = sim.run()
    assert len(guessed) == 40 and not sim.speculate  # found out, and the run done over without guessing
    monkeypatch.undo()
    assert report.ok
    assert report.event_log_sha256 == run(FAULTY, speculate=False).event_log_sha256


def test_a_planted_renewal_bug_is_reported_as_without_keeping(fast: jqc.Connection) -> None:
    # extend.lua answers "renewed" for a stale token (and renews nothing): a zombie keeps running.
    with planted("extend", "out[#out + 1] = 0", "out[#out + 1] = 1"):
        found = None
        for seed in range(20):
            sim = Simulator(ZOMBIES.replace(seed=seed), fast)
            report = sim.run()
            if not report.ok:
                found = sim, report
                break
        assert found is not None, "the planted bug went unnoticed"
        sim, report = found
        plain = run(ZOMBIES.replace(seed=report.seed), fast, speculate=False)
    assert not sim.speculate  # the kept renewal's reply gave it away
    assert report.invariants["token_fencing"]["violations"] > 0
    assert report.event_log_sha256 == plain.event_log_sha256
    assert report.invariants == plain.invariants


def test_kept_calls_run_before_anything_reads_the_server() -> None:
    conn = jqc.connect(clock=jqc.VirtualClock())
    ops = QueueOperations("q", clock=conn.clock, prefix=conn.prefix)
    backend = DeferredCalls(conn.backend)
    q = conn.queue("q")
    job = q.add("x")
    claimed = q.claim("w").jobs[0]
    renew = ops.extend([claimed], lock=60)
    assert not backend.defer(renew, {job.id: True})  # its script has not run here yet: run it now
    assert run_sync(backend, renew) == {job.id: True}
    assert backend.defer(ops.extend([claimed], lock=90), {job.id: True})
    active = CommandCall(("ZRANGE", ops.keys.key("active"), 0, -1, "WITHSCORES"), as_strs)
    deadline = float(run_sync(backend, active)[1])  # the kept renewal ran first
    assert deadline == conn.clock.now() * 1000 + 90_000
    assert backend.defer(ops.extend([claimed], lock=120), {job.id: False})  # a wrong answer ...
    with pytest.raises(SpeculationMissed, match="extend answered"):
        run_sync(backend, ops.progress(claimed, 5))  # ... found out by the next call, which still runs
    assert q.get_job(job.id) is not None
    conn.close()


def test_kept_calls_go_ahead_of_the_next_script_in_one_batch() -> None:
    conn = jqc.connect(clock=jqc.VirtualClock())
    ops = QueueOperations("q", clock=conn.clock, prefix=conn.prefix)
    sent: list[list[str]] = []
    real = conn.backend

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def run_batch(self, calls: Any) -> Any:
            sent.append([c.script.name for c in calls])
            return real.run_batch(calls)

    backend = DeferredCalls(Recording())  # type: ignore[arg-type]
    q = conn.queue("q")
    q.add("x")
    q.add("y")
    first, second = q.claim("w", count=2).jobs
    run_sync(backend, ops.extend([first], lock=60))
    run_sync(backend, ops.complete(first, None))
    assert backend.defer(ops.extend([second], lock=60), {second.id: True})
    run_sync(backend, ops.complete(second, None))
    assert sent[-1] == ["extend", "complete"]
    assert q.counts().completed == 2
    conn.close()
