"""``jqc pool``: supervise local ``jqc worker`` processes, sized by the coordinator under the queue's lock.

:class:`WorkerPool` is the actuator. It spawns worker processes, stops surplus ones gracefully
(SIGTERM: the worker stops claiming, finishes its jobs within its grace period and exits; a worker
still alive ``kill_after`` seconds after that is killed, and the stall check hands its jobs to
others), and restarts crashed ones with a growing delay. It knows a worker is ready when the worker
appears in the queue's worker registry, and measures start-up times from that.

:func:`run_pool` ties it to a :class:`~jqc.coordinator.autoscale.Coordinator`: every ``interval``
seconds the coordinator takes or keeps the queue's lock, decides and publishes; the pool follows the
decision only while the lock is valid on this process's clock. A pool that does not hold the lock
keeps no workers (it is a standby that takes over when the holder dies), and every change of the
set of processes, crash restarts included, waits until it holds the lock.

Processes come from a ``launcher`` (default :func:`popen_launcher`), so tests can inject fakes.
Children get their own process group (a Ctrl-C at the terminal reaches only the pool, which then
drains them once) and, on Linux, SIGTERM when the pool dies, so a killed pool never leaves
orphans. The Redis URL goes to them through ``JQC_REDIS_URL`` in their environment, never on a
command line where ``ps`` would show its password.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from jqc.clock import Clock, SystemClock
from jqc.connection import Connection
from jqc.engine.operations import WorkerInfo
from jqc.errors import InvalidOptionError, JqcError
from jqc.scaling import SloPolicy

from .autoscale import Coordinator, PoolState, Tick

__all__ = [
    "Launcher",
    "PoolStats",
    "ProcessHandle",
    "WorkerPool",
    "popen_launcher",
    "run_pool",
    "worker_command",
]

log = logging.getLogger("jqc.pool")


class ProcessHandle(Protocol):
    """What the pool needs of a child process (``subprocess.Popen`` has it)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


Launcher = Callable[[Sequence[str], Mapping[str, str]], ProcessHandle]


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: drain when the pool dies
    if os.getppid() == 1:  # the pool died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def popen_launcher(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, set to get SIGTERM if the pool dies (Linux)."""
    return subprocess.Popen(
        list(argv), env=dict(env), stdin=subprocess.DEVNULL, process_group=0, preexec_fn=_child_setup
    )


def worker_command(
    handler: str,
    queue: str,
    *,
    concurrency: int = 10,
    grace: float = 30.0,
    lock: float | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``jqc worker`` command line of one pool member (the URL goes in the environment)."""
    argv = [sys.executable, "-m", "jqc", "worker", handler, "--queue", queue]
    argv += ["--concurrency", str(concurrency), "--grace", f"{grace:g}"]
    if lock is not None:
        argv += ["--lock", f"{lock:g}"]
    return argv + list(extra)


@dataclass(slots=True)
class _Child:
    handle: ProcessHandle
    slot: int
    started: float
    ready: float | None = None  # when it was first seen in the worker registry
    stopping: float | None = None  # when it was told to drain
    killed: bool = False
    active: int = 0  # jobs in hand at its last heartbeat


@dataclass(slots=True)
class PoolStats:
    """What a pool did: processes spawned, drained, crashed (and restarted), killed after the grace."""

    spawned: int = 0
    drained: int = 0
    crashed: int = 0
    killed: int = 0
    ticks: int = 0
    led: int = 0  # ticks at which this pool held the lock
    decisions: list[tuple[float, int]] = field(default_factory=list)  # (time, target) when it changed


class WorkerPool:
    """Supervises local worker processes; the :class:`~jqc.coordinator.autoscale.Actuator` of ``jqc pool``.

    ``command``: the argv of one worker. ``startup``: seconds assumed before a worker is ready when
    the registry cannot tell (see :meth:`observe`). ``grace``: the workers' own grace period;
    a draining worker still alive ``grace + kill_after`` seconds after SIGTERM is killed.
    ``restart_delay``: wait before replacing a crashed worker, doubling for each crash in a row
    up to ``max_restart_delay`` (a worker that ran ``stable`` seconds resets it).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        launcher: Launcher | None = None,
        clock: Clock | None = None,
        startup: float = 5.0,
        grace: float = 30.0,
        kill_after: float = 10.0,
        restart_delay: float = 1.0,
        max_restart_delay: float = 60.0,
        stable: float = 60.0,
    ) -> None:
        if not command:
            raise InvalidOptionError("the worker command must not be empty")
        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.launcher: Launcher = launcher or popen_launcher
        self.clock: Clock = clock or SystemClock()
        self.startup = startup
        self.grace = grace
        self.kill_after = kill_after
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.stable = stable
        self.target = 0
        self.children: list[_Child] = []
        self.stats = PoolStats()
        self.startups: list[float] = []  # measured start-up times, newest last
        self._slots = 0
        self._crashes = 0  # crashes in a row
        self._restart_at = 0.0
        self._registry = False  # whether observe() has reported the registry at least once

    # -- the Actuator protocol --------------------------------------------------------------------

    def pool_state(self) -> PoolState:
        now = self.clock.now()
        ready = starting = draining = 0
        for child in self.children:
            if child.stopping is not None:
                draining += 1
            elif self._is_ready(child, now):
                ready += 1
            else:
                starting += 1
        return PoolState(ready, starting, draining)

    def apply(self, target: int) -> None:
        if target != self.target:
            self.stats.decisions.append((self.clock.now(), target))
        self.target = max(0, int(target))
        self._converge()

    def stand_down(self) -> None:
        if self.target or self.running:
            log.info("pool: another coordinator holds the lock; draining %d worker(s)", len(self.running))
        self.apply(0)

    # -- supervision ------------------------------------------------------------------------------

    @property
    def running(self) -> list[_Child]:
        """Children not told to stop."""
        return [c for c in self.children if c.stopping is None]

    @property
    def draining(self) -> list[_Child]:
        return [c for c in self.children if c.stopping is not None]

    def _is_ready(self, child: _Child, now: float) -> bool:
        if child.ready is not None:
            return True
        return not self._registry and now - child.started >= self.startup

    @property
    def measured_startup(self) -> float | None:
        """The median of the last start-up times seen through the registry (None before any)."""
        recent = sorted(self.startups[-20:])
        return recent[len(recent) // 2] if recent else None

    def observe(self, workers: Sequence[WorkerInfo], host: str | None = None) -> None:
        """Mark children ready that the queue's worker registry lists (by pid, on this host)."""
        self._registry = True
        host = host or socket.gethostname()
        seen = {w.pid: w for w in workers if w.host == host}
        now = self.clock.now()
        for child in self.children:
            info = seen.get(child.handle.pid)
            if info is None:
                continue
            child.active = info.active
            if child.ready is None:
                child.ready = now
                self.startups.append(now - child.started)

    def poll(self, *, may_act: bool = True) -> None:
        """Reap exited children, kill drains past their deadline, and (when allowed) converge to the target.

        A child that exits while it was not told to stop crashed; it is replaced after the restart
        delay. ``may_act`` False (the lock is not held with time in hand) only reaps and kills.
        """
        now = self.clock.now()
        for child in list(self.children):
            code = child.handle.poll()
            if code is None:
                if (
                    child.stopping is not None
                    and not child.killed
                    and now >= child.stopping + self.grace + self.kill_after
                ):
                    log.warning(
                        "pool: worker pid %d still running %.0f s after SIGTERM: killing it",
                        child.handle.pid,
                        now - child.stopping,
                    )
                    child.handle.kill()
                    child.killed = True
                    self.stats.killed += 1
                continue
            self.children.remove(child)
            if child.stopping is not None:
                self.stats.drained += 1
                log.info("pool: worker pid %d stopped (exit %s)", child.handle.pid, code)
                continue
            self.stats.crashed += 1
            lived = now - child.started
            self._crashes = 1 if lived >= self.stable else self._crashes + 1
            delay = min(self.max_restart_delay, self.restart_delay * 2 ** (self._crashes - 1))
            self._restart_at = max(self._restart_at, now + delay)
            log.warning(
                "pool: worker pid %d exited with %s after %.1f s; replacing it in %.1f s",
                child.handle.pid,
                code,
                lived,
                delay,
            )
        if may_act:
            self._converge()

    def _converge(self) -> None:
        now = self.clock.now()
        running = self.running
        if len(running) > self.target:
            # Stop those not ready first (nothing lost), then the least busy, newest first.
            order = sorted(running, key=lambda c: (self._is_ready(c, now), c.active, -c.started, -c.slot))
            for child in order[: len(running) - self.target]:
                self._stop(child, now)
        elif len(running) < self.target and now >= self._restart_at:
            for _ in range(self.target - len(running)):
                self._spawn(now)

    def _spawn(self, now: float) -> None:
        self._slots += 1
        handle = self.launcher(self.command, self.env)
        self.children.append(_Child(handle, self._slots, now))
        self.stats.spawned += 1
        log.info("pool: started worker pid %d (%d of %d)", handle.pid, len(self.running), self.target)

    def _stop(self, child: _Child, now: float) -> None:
        child.stopping = now
        try:
            child.handle.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        log.info("pool: draining worker pid %d", child.handle.pid)

    def close(self) -> None:
        """Tell every child to drain (the caller waits with :meth:`poll` until :attr:`children` is empty)."""
        self.target = 0
        now = self.clock.now()
        for child in self.running:
            self._stop(child, now)

    def hurry(self) -> None:
        """A second stop request: signal draining children again (a jqc worker then hands its jobs back)."""
        for child in self.draining:
            try:
                child.handle.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass


# -- the loop -----------------------------------------------------------------------------------


async def _pause(clock: Clock, seconds: float, stop: asyncio.Event) -> None:
    if stop.is_set() or seconds <= 0:
        await asyncio.sleep(0)
        return
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waiter):
            if not task.done():
                task.cancel()
        await asyncio.gather(sleeper, waiter, return_exceptions=True)


def _describe(tick: Tick) -> str:
    if tick.decision is None:
        return "standby"
    d = tick.decision
    return f"target {d.target} (token {d.token}): " + "; ".join(d.reasons)


async def run_pool(
    connection: Connection,
    queue: str,
    pool: WorkerPool,
    coordinator: Coordinator,
    *,
    interval: float = 15.0,
    poll_every: float = 0.5,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
    out: TextIO | None = None,
) -> PoolStats:
    """Run the coordinator every ``interval`` seconds and supervise the pool until ``stop`` is set
    (or ``duration`` seconds passed); then drain every worker, wait for them, and release the lock."""
    clock = connection.clock
    stop = stop or asyncio.Event()
    started = clock.now()
    next_tick = started
    last_target: int | None = None
    leading = False
    aqueue = connection.async_queue(queue)

    def say(text: str) -> None:
        if out is not None:
            out.write(text + "\n")
            out.flush()

    try:
        while not stop.is_set():
            now = clock.now()
            if duration is not None and now - started >= duration:
                break
            if now >= next_tick:
                next_tick = now + interval
                try:
                    pool.observe(await aqueue.workers())
                    measured = pool.measured_startup
                    policy = coordinator.policy
                    if measured is not None and isinstance(policy, SloPolicy) and policy.startup < measured:
                        policy.startup = measured  # workers take longer to start than assumed
                    tick = await coordinator.atick()
                except JqcError as exc:
                    log.warning("pool: coordinator tick failed: %s", exc)
                    say(f"pool: cannot reach Redis ({exc}); keeping {len(pool.running)} worker(s)")
                else:
                    pool.stats.ticks += 1
                    if tick.leader:
                        pool.stats.led += 1
                    if tick.leader != leading:
                        leading = tick.leader
                        say(
                            f"pool: {'holding' if leading else 'lost'} the coordinator lock of {queue!r}"
                            + (f" (token {tick.lease.token})" if leading else f" (held by {tick.lease.holder})")
                        )
                    target = tick.decision.target if tick.decision is not None else None
                    if target is not None and target != last_target:
                        say(f"pool: {_describe(tick)}")
                    last_target = target
            pool.poll(may_act=coordinator.may_act())
            await _pause(clock, min(poll_every, max(0.0, next_tick - clock.now())), stop)
    finally:
        pool.close()
        say(f"pool: draining {len(pool.children)} worker(s)")
        deadline = clock.now() + pool.grace + pool.kill_after + 1.0
        while pool.children and clock.now() < deadline:
            pool.poll(may_act=False)
            await clock.sleep(0.05)
        for child in pool.children:
            child.handle.kill()
        try:
            await coordinator.arelease()
        except JqcError as exc:
            log.warning("pool: could not release the coordinator lock: %s", exc)
    stats = pool.stats
    say(
        f"pool: stopped; {stats.spawned} spawned, {stats.drained} drained, {stats.crashed} crashed, "
        f"{stats.killed} killed after the grace period"
    )
    return stats


def default_lock_ttl(interval: float) -> float:
    """A lock outlives three missed ticks (and at least 10 s)."""
    return max(10.0, 3 * interval)
