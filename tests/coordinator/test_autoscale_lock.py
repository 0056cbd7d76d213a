"""The fenced coordinator lock, the published decision and two coordinators racing (both backends)."""

from __future__ import annotations

import io
import itertools
import json
import random
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

import jqc
from jqc.cli import main as jqc_main
from jqc.coordinator import lock, prometheus
from jqc.coordinator.autoscale import Coordinator, PoolState
from jqc.coordinator.lock import ScaleDecision
from jqc.engine.calls import ScriptCall, checked, run_sync
from jqc.scaling import FixedPolicy, SloPolicy
from tests.sim.helpers import planted


def call(conn: jqc.Connection, step: ScriptCall[lock.Lease]) -> lock.Lease:
    return run_sync(conn.backend, step)


def test_take_keep_expire_and_take_over_with_a_larger_token(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    ops = conn.queue("photos").ops
    a = call(conn, lock.acquire(ops, "A", 10.0))
    assert (a.done, a.holder, a.token) == (True, "A", 1)
    assert a.expires == pytest.approx(clock.now() + 10.0, abs=0.001)
    b = call(conn, lock.acquire(ops, "B", 10.0))
    assert (b.done, b.holder, b.token) == (False, "A", 1)  # held: B learns who has it
    clock.advance(6)
    kept = call(conn, lock.acquire(ops, "A", 10.0, token=1))
    assert kept.done and kept.token == 1 and kept.expires == pytest.approx(clock.now() + 10.0, abs=0.001)
    clock.advance(9.9)
    assert not call(conn, lock.acquire(ops, "B", 10.0)).done  # not expired yet on B's clock
    clock.advance(0.2)
    b = call(conn, lock.acquire(ops, "B", 10.0))
    assert (b.done, b.holder, b.token) == (True, "B", 2)  # expired: B takes over, token grows
    late = call(conn, lock.acquire(ops, "A", 10.0, token=1))
    assert (late.done, late.holder, late.token) == (False, "B", 2)  # A's old token keeps nothing
    assert call(conn, lock.read_lock(ops)) == lock.Lease(False, "B", 2, b.expires)


def test_only_the_current_token_publishes_and_releases(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    ops = conn.queue("photos").ops
    a = call(conn, lock.acquire(ops, "A", 5.0))
    decision = ScaleDecision("photos", 7, ("because",), policy="test", values={"x": 1})
    assert call(conn, lock.publish(ops, "A", a.token, decision)).done
    clock.advance(5.0)
    assert not call(conn, lock.publish(ops, "A", a.token, decision)).done  # expired: no more writes
    b = call(conn, lock.acquire(ops, "B", 5.0))
    stale = ScaleDecision("photos", 99, ("stale",))
    assert not call(conn, lock.publish(ops, "A", a.token, stale)).done  # fenced
    assert not call(conn, lock.publish(ops, "A", b.token, stale)).done  # someone else's token
    assert not call(conn, lock.release(ops, "A", a.token)).done
    found = run_sync(conn.backend, lock.read_decision_op(ops))
    assert found is not None and found.target == 7 and found.reasons == ("because",)
    assert (found.token, found.holder, found.policy, found.values) == (1, "A", "test", {"x": 1})
    assert call(conn, lock.publish(ops, "B", b.token, ScaleDecision("photos", 3, ()))).done
    found = run_sync(conn.backend, lock.read_decision_op(ops))
    assert found is not None and (found.target, found.token, found.holder) == (3, 2, "B")
    assert found.at == pytest.approx(clock.now(), abs=0.001)
    released = call(conn, lock.release(ops, "B", b.token))
    assert released.done and released.holder == ""
    c = call(conn, lock.acquire(ops, "C", 5.0))
    assert c.done and c.token == 3  # free at once after a release; tokens never go back


def test_the_script_refuses_bad_arguments(conn: jqc.Connection) -> None:
    ops = conn.queue("photos").ops
    base = ops.declared("coordinator")
    now = int(conn.clock.now() * 1000)
    for args in [(now, 0, "acquire", "", 1000, 0), (now, 0, "explode", "A", 1000, 0), (now, 0, "acquire", "A", 0, 0)]:
        with pytest.raises(jqc.InvalidInputError):
            run_sync(conn.backend, ScriptCall("coordinator", base, args, checked))
    a = call(conn, lock.acquire(ops, "A", 5.0))
    with pytest.raises(jqc.InvalidInputError):
        odd = (now, 0, "publish", "A", 0, a.token, "x")
        run_sync(conn.backend, ScriptCall("coordinator", base, odd, checked))
    with pytest.raises(jqc.InvalidOptionError):
        lock.acquire(ops, "A", 0.0)
    with pytest.raises(jqc.InvalidOptionError):
        lock.acquire(ops, "", 1.0)


# -- two coordinators race ----------------------------------------------------------------------


@dataclass
class Recorder:
    """An actuator that records what it was told, when, and under which lease."""

    name: str
    clock: jqc.VirtualClock
    log: list[tuple[float, str, int]] = field(default_factory=list)
    stood_down: int = 0
    target: int = 0
    coordinator: Coordinator | None = None

    def pool_state(self) -> PoolState:
        return PoolState(self.target)

    def apply(self, target: int) -> None:
        assert self.coordinator is not None and self.coordinator.may_act()
        self.target = target
        self.log.append((self.clock.now(), self.name, self.coordinator.token))

    def stand_down(self) -> None:
        self.stood_down += 1
        self.target = 0


def coordinator(
    conn: jqc.Connection, clock: jqc.VirtualClock, name: str, target: int, ttl: float = 30.0
) -> Coordinator:
    recorder = Recorder(name, clock)
    c = Coordinator(
        conn, "photos", FixedPolicy(target), actuator=recorder, holder=name, lock_ttl=ttl, margin=3.0, max_workers=20
    )
    recorder.coordinator = c
    return c


def acts(c: Coordinator) -> list[tuple[float, str, int]]:
    assert isinstance(c.actuator, Recorder)
    return c.actuator.log


def test_two_coordinators_race_only_one_acts_and_the_other_takes_over_when_it_dies(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    a = coordinator(conn, clock, "A", 4)
    b = coordinator(conn, clock, "B", 6)
    for _ in range(10):  # both tick every 5 s; A got there first
        assert a.tick().acted
        assert not b.tick().acted
        clock.advance(5)
    assert acts(b) == [] and len(acts(a)) == 10 and {t for _, _, t in acts(a)} == {1}
    published = prometheus_target(conn)
    assert published == 4
    # A dies: it stops ticking. B keeps trying and takes over once A's lock has expired.
    died = acts(a)[-1][0]  # its last tick
    taken = None
    while taken is None:
        clock.advance(5)
        if b.tick().acted:
            taken = clock.now()
    assert died + 30.0 <= taken <= died + 35.0
    assert acts(b)[0][2] == 2  # a new term, a larger fencing token
    assert prometheus_target(conn) == 6
    # A comes back (it was only paused): its lock is gone, it must not act, and it stands down.
    tick = a.tick()
    assert not tick.leader and not tick.acted and tick.lost and tick.lease.holder == "B"
    assert a.actuator is not None and isinstance(a.actuator, Recorder) and a.actuator.stood_down == 1
    assert not a.may_act()
    assert b.tick().acted
    # B stops cleanly: it releases the lock and A takes over at once.
    assert b.release()
    assert a.tick().acted and a.token == 3


def prometheus_target(conn: jqc.Connection) -> float:
    text = prometheus.render(conn, ["photos"])
    for family in text_string_to_metric_families(text):
        if family.name == "jqc_target_workers":
            (sample,) = family.samples
            assert sample.labels == {"queue": "photos"}
            return sample.value
    raise AssertionError("no jqc_target_workers in the exposition")


def interleave(conn: jqc.Connection, clock: jqc.VirtualClock, seed: int = 20261127) -> None:
    """Three coordinators tick in a seeded random order; some pause past the lock's expiry (zombies)
    and come back. Each act is valid until its lease's expiry less the margin: no two acts of
    different terms may have overlapping validity, terms only grow, and someone always leads."""
    rng = random.Random(seed)
    cs = [coordinator(conn, clock, name, i + 2, ttl=10.0) for i, name in enumerate("ABC")]
    paused_until = {c.holder: 0.0 for c in cs}
    windows: list[tuple[float, float, str, int]] = []
    for _ in range(300):
        clock.advance(rng.choice([0.5, 1.0, 2.0, 3.0]))
        c = rng.choice(cs)
        if clock.now() < paused_until[c.holder]:
            continue
        if rng.random() < 0.03:
            paused_until[c.holder] = clock.now() + rng.uniform(5.0, 25.0)  # a GC pause or a partition
            continue
        tick = c.tick()
        if tick.acted:
            windows.append((clock.now(), tick.lease.expires - c.margin, c.holder, c.token))
    assert len({h for _, _, h, _ in windows}) >= 2, "the schedule never caused a takeover"
    tokens = [t for _, _, _, t in windows]
    assert tokens == sorted(tokens)
    for (_, e1, h1, t1), (s2, _, h2, t2) in itertools.pairwise(windows):
        if t1 != t2:
            assert s2 >= e1, f"{h2} (token {t2}) acted at {s2} while {h1} (token {t1}) could until {e1}"
        else:
            assert h1 == h2


def test_random_interleavings_never_let_two_coordinators_act_at_once(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    interleave(conn, clock)


def test_the_interleaving_check_catches_a_lock_taken_before_it_expires(
    conn: jqc.Connection, clock: jqc.VirtualClock
) -> None:
    early = "local held = h ~= '' and x > NOW + 4000"  # a planted bug: the lock is free 4 s early
    with planted("coordinator", "local held = h ~= '' and x > NOW", early):
        with pytest.raises(AssertionError, match="could until"):
            interleave(conn, clock)


async def test_async_ticks_and_a_decision_from_real_queue_metrics(conn: jqc.Connection) -> None:
    queue = conn.queue("photos")
    for i in range(30):
        queue.add("resize", {"i": i})
    c = Coordinator(conn, "photos", SloPolicy(slo=60.0, startup=10.0), holder="A", min_workers=1, max_workers=8)
    tick = await c.atick()
    assert tick.acted and tick.decision is not None
    assert tick.decision.target == 8  # 30 jobs wait, no run time known yet: one slot each, capped
    assert any("no run time measured yet" in r for r in tick.decision.reasons)
    stored = run_sync(conn.backend, lock.read_decision_op(queue.ops))
    assert stored is not None and stored.target == 8 and stored.values["max"] == 8
    assert await c.arelease()
    assert not call(conn, lock.read_lock(queue.ops)).holder
    await conn.aclose()


def test_jqc_autoscale_publishes_without_local_workers(conn: jqc.Connection, clock: jqc.VirtualClock) -> None:
    clock.autojump = True
    queue = conn.queue("photos")
    for i in range(12):
        queue.add("resize", {"i": i})
    out = io.StringIO()
    argv = ["autoscale", "--queue", "photos", "--min", "1", "--max", "5", "--interval", "10", "--duration", "35"]
    argv += ["--concurrency", "1"]
    assert jqc_main([*argv, "--json"], connection=conn, out=out) == 0
    decisions = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(decisions) == 4 and {d["target"] for d in decisions} == {5} and {d["token"] for d in decisions} == {1}
    assert prometheus_target(conn) == 5
    assert call(conn, lock.read_lock(queue.ops)).holder == ""  # released when it stopped
