"""Hypothesis: any interleaving of driver reads, stale fires, abandoned plans, clock jumps (both
ways), changes and removals leaves every tick with at most one job, on both backends, and a
schedule that is left alone afterwards fires every tick of the following hour exactly once."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jqc
from jqc.clock import now_ms
from jqc.engine.calls import run_sync
from jqc.engine.ops_schedules import StoredSchedule
from jqc.engine.timing import plan
from jqc.workflows import fire_due
from tests.conftest import open_backend

EPOCH = jqc.clock.VIRTUAL_EPOCH

steps = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(0, 2)),
        st.tuples(st.just("fire"), st.integers(0, 2)),
        st.tuples(st.just("pass"), st.just(0)),
        st.tuples(st.just("advance"), st.integers(1, 400)),
        st.tuples(st.just("back"), st.integers(1, 400)),
        st.tuples(st.just("change"), st.sampled_from([30, 60])),
        st.tuples(st.just("remove"), st.just(0)),
    ),
    max_size=40,
)


def _fire(queue: jqc.Queue, stored: StoredSchedule) -> None:
    s, tick = stored.schedule, stored.next_tick
    now = now_ms(queue.clock)
    if tick is None:
        return
    chosen = plan(s.timing, next_tick=tick, now=now, missed=s.missed, cap=s.max_catch_up, grace_ms=60_000)
    if chosen is not None:
        run_sync(queue.connection.backend, queue.ops.fire(stored, chosen, now))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=steps, missed=st.sampled_from(["once", "all", "skip"]))
def test_interleaved_drivers_never_fire_a_tick_twice(backend: str, program: list[tuple[str, int]], missed: str) -> None:
    clock = jqc.VirtualClock()
    conn = open_backend(backend, clock)
    try:
        queue = conn.queue("races")
        queue.schedule("r", every=60, missed=missed)
        held: dict[int, StoredSchedule] = {}
        fired: list[str] = []
        for action, arg in program:
            if action == "read":
                found = run_sync(conn.backend, queue.ops.read_schedule("r"))
                if found is not None:
                    held[arg] = found  # a driver read and planned; it may fire much later, or never
            elif action == "fire" and arg in held:
                _fire(queue, held.pop(arg))
            elif action == "pass":
                done: Any = run_sync(conn.backend, fire_due(queue.ops))
                fired += [i for r in done.fired for i in r.fired]
            elif action == "advance":
                clock.advance(arg)
            elif action == "back":
                clock.move_to(clock.now() - arg)
            elif action == "change":
                queue.schedule("r", every=arg, missed=missed)
            elif action == "remove":
                queue.remove_schedule("r")
        assert len(fired) == len(set(fired))  # no pass reported a tick's job twice
        ids = [j.id for j in queue.list_jobs("waiting", limit=10_000).jobs]
        assert len(ids) == len(set(ids)) == queue.counts().waiting  # one entry per job, no duplicate push
        # Left alone, a live schedule fires every tick of the next hour exactly once.
        queue.schedule("r", every=60, missed="all")
        before = set(ids)
        start = clock.now()
        stored = queue.get_schedule("r")
        assert stored is not None and stored.next_at is not None
        for _ in range(60):
            clock.advance(60)
            run_sync(conn.backend, fire_due(queue.ops))
        after = [j.id for j in queue.list_jobs("waiting", limit=10_000).jobs]
        new = [i for i in after if i not in before]
        assert len(after) == len(set(after))
        ticks = sorted(jqc.scheduled_tick(i)[1].timestamp() for i in new)  # type: ignore[index]
        # A tick whose job is still there from before (the clock went back over it) is not fired
        # again: its one job counts for it.
        covered = {jqc.scheduled_tick(i)[1].timestamp() for i in after}  # type: ignore[index]
        k, first = 0, stored.next_at
        while first + 60 * k < start + 60:
            k += 1
        expected = [first + 60 * j for j in range(k, k + 100) if first + 60 * j <= clock.now()]
        assert set(expected) <= covered and ticks and ticks[-1] > clock.now() - 60
        assert all((t - first) % 60 == 0 and t <= clock.now() for t in ticks)  # only the schedule's ticks, none early
    finally:
        if not conn.embedded:
            conn.sync_client().flushdb()
        conn.close()
