"""``jqc pool``'s supervisor: with injected processes on a virtual clock, with real processes, and one
real ``jqc pool`` run against a real Redis."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jqc
from jqc.cli import main as jqc_main
from jqc.coordinator import lock
from jqc.coordinator.autoscale import Coordinator, PoolState
from jqc.coordinator.pool import WorkerPool, popen_launcher, run_pool, worker_command
from jqc.engine.calls import run_sync
from jqc.engine.operations import WorkerInfo
from jqc.scaling import FixedPolicy
from tests.conftest import REDIS_URL, open_backend

_pids = itertools.count(50_000)


class FakeProcess:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.pid = next(_pids)
        self.code: int | None = None
        self.signals: list[int] = []
        self.obeys_sigterm = True

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def kill(self) -> None:
        self.code = -9

    def finish_drain(self) -> None:
        if self.signals and self.obeys_sigterm:
            self.code = 0


class FakeLauncher:
    def __init__(self) -> None:
        self.procs: list[FakeProcess] = []

    def __call__(self, argv: Sequence[str], env: Mapping[str, str]) -> FakeProcess:
        proc = FakeProcess(argv, env)
        self.procs.append(proc)
        return proc

    def alive(self) -> list[FakeProcess]:
        return [p for p in self.procs if p.code is None]

    def drain(self) -> None:
        for p in self.procs:
            if p.code is None:
                p.finish_drain()


def info(pid: int, active: int = 0, host: str = "here") -> WorkerInfo:
    return WorkerInfo(f"w{pid}", "w", host, pid, ("q",), active, 4, 0.0, 0.0, 15.0)


def make_pool(clock: jqc.VirtualClock, **kw: Any) -> tuple[WorkerPool, FakeLauncher]:
    launcher = FakeLauncher()
    options: dict[str, Any] = {"startup": 5.0, "grace": 10.0, "kill_after": 5.0, "restart_delay": 1.0}
    options.update(kw)
    pool = WorkerPool(["worker"], env={"JQC_REDIS_URL": "redis://secret@h"}, launcher=launcher, clock=clock, **options)
    return pool, launcher


def test_spawn_ready_after_start_up_and_drain_the_surplus(clock: jqc.VirtualClock) -> None:
    pool, launcher = make_pool(clock)
    pool.apply(3)
    assert len(launcher.procs) == 3 and pool.pool_state() == PoolState(0, 3, 0)
    assert launcher.procs[0].env["JQC_REDIS_URL"] == "redis://secret@h" and "secret" not in " ".join(pool.command)
    clock.advance(5)
    assert pool.pool_state().ready == 3
    pool.apply(1)
    term = [p for p in launcher.procs if p.signals]
    assert len(term) == 2 and all(p.signals == [signal.SIGTERM] for p in term)
    assert pool.pool_state().draining == 2 and pool.pool_state().current == 1
    pool.poll()
    assert pool.stats.drained == 0  # still finishing their jobs
    launcher.drain()
    pool.poll()
    assert pool.stats.drained == 2 and len(pool.children) == 1 and len(launcher.procs) == 3  # nobody replaced


def test_the_registry_tells_who_is_ready_and_how_long_start_up_takes(clock: jqc.VirtualClock) -> None:
    pool, launcher = make_pool(clock)
    pool.apply(3)
    clock.advance(2)
    a, b, c = launcher.procs
    pool.observe([info(a.pid, active=3), info(b.pid, active=0), info(c.pid, host="elsewhere")], host="here")
    clock.advance(10)
    state = pool.pool_state()
    assert (state.ready, state.starting) == (2, 1)  # c is not on this host: not seen yet
    assert pool.measured_startup == 2.0
    pool.apply(1)  # stop the one not ready first, then the least busy
    assert c.signals and b.signals and not a.signals


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(clock: jqc.VirtualClock) -> None:
    pool, launcher = make_pool(clock)
    pool.apply(1)
    (p,) = launcher.procs
    p.obeys_sigterm = False
    pool.apply(0)
    clock.advance(14.9)
    pool.poll()
    assert p.code is None
    clock.advance(0.2)
    pool.poll()
    assert p.code == -9 and pool.stats.killed == 1
    pool.poll()
    assert pool.stats.drained == 1 and not pool.children


def test_crashed_workers_are_replaced_after_a_growing_delay(clock: jqc.VirtualClock) -> None:
    pool, launcher = make_pool(clock, restart_delay=1.0, stable=60.0)
    pool.apply(2)
    launcher.procs[0].code = 1
    pool.poll()
    assert pool.stats.crashed == 1 and len(launcher.alive()) == 1
    clock.advance(0.9)
    pool.poll()
    assert len(launcher.alive()) == 1
    clock.advance(0.2)
    pool.poll()
    assert len(launcher.alive()) == 2 and pool.stats.spawned == 3
    launcher.procs[-1].code = 1  # it crashes at once: the next restart waits twice as long
    pool.poll()
    clock.advance(1.5)
    pool.poll()
    assert len(launcher.alive()) == 1
    clock.advance(0.6)
    pool.poll(may_act=False)  # without the lock nothing is started
    assert len(launcher.alive()) == 1
    pool.poll()
    assert len(launcher.alive()) == 2


def test_stand_down_drains_everything(clock: jqc.VirtualClock) -> None:
    pool, launcher = make_pool(clock)
    pool.apply(4)
    pool.stand_down()
    assert pool.target == 0 and all(p.signals == [signal.SIGTERM] for p in launcher.procs)
    pool.hurry()  # a second stop request signals them again
    assert all(p.signals == [signal.SIGTERM, signal.SIGTERM] for p in launcher.procs)


def test_worker_command_has_no_url() -> None:
    argv = worker_command("app:handle", "photos", concurrency=4, grace=20.0, lock=60.0, extra=["--timeout", "9"])
    assert argv[:4] == [sys.executable, "-m", "jqc", "worker"]
    expected = "app:handle --queue photos --concurrency 4 --grace 20 --lock 60 --timeout 9"
    assert argv[4:] == expected.split()


# -- two pools on one queue, on a virtual clock -------------------------------------------------------


async def test_two_pools_one_leads_the_other_stands_by_and_takes_over(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    clock.autojump = True
    pools = {}
    coordinators = {}
    for name in "AB":
        pool, launcher = make_pool(clock, startup=1.0, grace=2.0, kill_after=1.0)
        pools[name] = (pool, launcher)
        coordinators[name] = Coordinator(
            conn, "photos", FixedPolicy(3), actuator=pool, holder=name, lock_ttl=10.0, min_workers=2, max_workers=5
        )
    overlap: list[float] = []
    frozen = asyncio.Event()
    original = coordinators["A"].atick

    async def a_tick() -> Any:
        if clock.now() - start >= 30.0:
            await frozen.wait()  # A hangs (a stuck process): it never ticks again
        return await original()

    coordinators["A"].atick = a_tick  # type: ignore[method-assign]

    async def watch() -> None:
        while True:
            for _, launcher in pools.values():
                launcher.drain()  # fake workers exit as soon as they are told to stop
            if pools["A"][0].running and pools["B"][0].running and coordinators["A"].may_act():
                overlap.append(clock.now())
            await clock.sleep(0.25)

    start = clock.now()
    watcher = asyncio.ensure_future(watch())
    a = asyncio.ensure_future(run_pool(conn, "photos", pools["A"][0], coordinators["A"], interval=2.0, duration=120))
    while not coordinators["A"].may_act():  # A starts first and takes the lock
        await clock.sleep(0.01)
    b = asyncio.ensure_future(run_pool(conn, "photos", pools["B"][0], coordinators["B"], interval=2.0, duration=80))
    await b
    assert pools["B"][0].stats.spawned == 3 and pools["B"][0].stats.led > 0
    first_b = pools["B"][0].stats.decisions[0][0]
    assert 30.0 + 8.0 <= first_b - start <= 30.0 + 13.0  # after A's lock expired (ttl 10 s, ticks every 2 s)
    assert pools["A"][0].stats.spawned == 3  # A ran its pool until it hung; its workers were never stopped by B
    assert overlap == []
    frozen.set()  # A wakes up: its lock is gone, so it stands down
    await a
    assert pools["A"][0].stats.drained == 3
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await conn.aclose()


# -- real processes -----------------------------------------------------------------------------------

CHILD = """
import signal, sys, time
mode = sys.argv[1]
if mode == "obey":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(0.05)
"""


def wait_for(predicate: Any, pool: WorkerPool, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool.poll()
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_real_processes_drain_crash_restart_and_kill() -> None:
    pool = WorkerPool(
        [sys.executable, "-c", CHILD, "obey"],
        env=dict(os.environ),
        launcher=popen_launcher,
        startup=0.1,
        grace=0.3,
        kill_after=0.2,
        restart_delay=0.1,
    )
    try:
        pool.apply(2)
        first = [c.handle.pid for c in pool.children]
        pool.apply(1)
        wait_for(lambda: pool.stats.drained == 1, pool)  # SIGTERM: it exited 0 by itself
        (survivor,) = pool.children
        os.kill(survivor.handle.pid, signal.SIGKILL)
        wait_for(lambda: pool.stats.crashed == 1 and len(pool.children) == 1, pool)
        assert pool.children[0].handle.pid not in first  # replaced by a new process
        pool.command[-1] = "ignore"  # the next ones ignore SIGTERM
        pool.apply(2)
        stubborn = pool.children[-1]
        assert isinstance(stubborn.handle, subprocess.Popen)
        time.sleep(0.3)  # let it install its handler
        pool.apply(1)
        pool.close()
        wait_for(lambda: not pool.children, pool)
        assert pool.stats.killed == 1 and stubborn.handle.returncode == -signal.SIGKILL
    finally:
        for child in pool.children:
            child.handle.kill()


def test_jqc_pool_runs_real_workers_against_redis(tmp_path: Any) -> None:
    """A real ``jqc pool`` process: it keeps 2-3 workers, they drain the queue, and SIGTERM stops it
    cleanly (every worker drained and unregistered, the coordinator lock released). The test waits
    on outcomes with generous deadlines, so a slow machine only makes it slower."""
    conn = open_backend("redis")  # fails (instead of skipping) when CI is set and Redis is down
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    log = tmp_path / "pool.log"
    try:
        queue = conn.queue("pool-smoke")
        for i in range(20):
            queue.add("job", {"i": i})
        argv = ["pool", "tests.coordinator.pool_handler:handle", "--queue", "pool-smoke", "--min", "2", "--max", "3"]
        argv += ["--concurrency", "2", "--interval", "0.5", "--grace", "5", "--url", REDIS_URL, "--json"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jqc", *argv], cwd=root, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 120
            while queue.counts().completed < 20:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"the pool did not finish the jobs: {queue.counts()}"
                time.sleep(0.1)
            while run_sync(conn.backend, lock.read_decision_op(queue.ops)) is None:
                assert time.monotonic() < deadline, "the coordinator published no decision"
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = log.read_text()
        stats = json.loads(text[text.index("{") :])
        assert stats["spawned"] >= 2 and stats["drained"] == stats["spawned"] and stats["crashed"] == 0
        assert stats["led"] == stats["ticks"] > 0
        assert "holding the coordinator lock" in text
        counts = queue.counts()
        assert counts.completed == 20 and counts.active == 0
        decision = run_sync(conn.backend, lock.read_decision_op(queue.ops))
        assert decision is not None and 2 <= decision.target <= 3 and decision.token == 1
        assert run_sync(conn.backend, lock.read_lock(queue.ops)).holder == ""  # released on exit
        assert not queue.workers()  # every worker unregistered cleanly
    finally:
        conn.sync_client().flushdb()
        conn.close()


def test_jqc_pool_refuses_the_embedded_backend_and_bad_bounds() -> None:
    err = io.StringIO()
    assert jqc_main(["pool", "m:f", "--queue", "q"], connection=jqc.connect(), out=err) != 0
    assert jqc_main(["pool", "nocolon", "--queue", "q", "--url", REDIS_URL]) != 0
