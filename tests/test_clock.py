"""The virtual clock: explicit moves, autojump, and holds that keep autojump out of real work."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import jqc
from jqc.clock import block_until, hold


def test_advance_and_move_to() -> None:
    clock = jqc.VirtualClock(start=100.0)
    clock.advance(2.5)
    assert clock.now() == 102.5
    clock.move_to(50.0)  # a clock jump backwards
    assert clock.now() == 50.0
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_sleepers_wake_in_deadline_order_when_time_is_moved() -> None:
    clock = jqc.VirtualClock(start=0.0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    async def main() -> None:
        tasks = [asyncio.ensure_future(sleeper(n, s)) for n, s in (("b", 2), ("a", 1), ("c", 3))]
        await asyncio.sleep(0)
        clock.advance(1.5)
        await asyncio.sleep(0)
        assert woke == ["a"]
        clock.advance(10)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert woke == ["a", "b", "c"]


def test_autojump_skips_idle_time() -> None:
    clock = jqc.VirtualClock(start=0.0, autojump=True)

    async def main() -> float:
        await clock.sleep(3600)
        await clock.sleep(60)
        return clock.now()

    assert asyncio.run(asyncio.wait_for(main(), 5)) == 3660


def test_autojump_waits_while_work_is_held() -> None:
    clock = jqc.VirtualClock(start=0.0, autojump=True)
    seen: list[float] = []

    async def renewal() -> None:
        await clock.sleep(10)
        seen.append(clock.now())

    async def main() -> None:
        task = asyncio.ensure_future(renewal())
        with hold(clock):
            await asyncio.sleep(0.05)  # real work on the wire: virtual time must stand still
            assert clock.now() == 0.0 and seen == []
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert seen == [10.0]


def test_freeze_stops_autojump() -> None:
    clock = jqc.VirtualClock(start=0.0, autojump=True)
    clock.freeze()

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(clock.sleep(1), 0.1)

    asyncio.run(main())
    assert clock.now() == 0.0


def test_hold_on_a_system_clock_does_nothing() -> None:
    with hold(jqc.SystemClock()):
        pass


def test_busy_stands_still_during_real_waits_and_moves_during_clock_sleeps() -> None:
    clock = jqc.VirtualClock(start=0.0, autojump=True)
    seen: list[tuple[str, float]] = []

    async def chore() -> None:  # e.g. a lock renewal, due every 10 s
        while True:
            await clock.sleep(10)
            seen.append(("chore", clock.now()))

    async def child() -> None:  # started inside the block: its clock sleep lets time move too
        await clock.sleep(5)
        seen.append(("child", clock.now()))

    async def main() -> None:
        chores = asyncio.ensure_future(chore())
        with clock.busy():
            await asyncio.sleep(0.05)  # a handler's real I/O: virtual time stands still
            seen.append(("real wait done", clock.now()))
            await clock.sleep(25)  # the handler waits on the clock: time passes, the chore runs twice
            seen.append(("slept", clock.now()))
            await asyncio.ensure_future(child())
        chores.cancel()
        assert clock._holds == 0

    asyncio.run(asyncio.wait_for(main(), 5))
    assert seen == [
        ("real wait done", 0.0),
        ("chore", 10.0),
        ("chore", 20.0),
        ("slept", 25.0),
        ("chore", 30.0),
        ("child", 30.0),
    ]


def test_a_clock_serves_one_event_loop_after_another() -> None:
    clock = jqc.VirtualClock(start=0.0, autojump=True)

    async def main() -> float:
        task = asyncio.ensure_future(clock.sleep(60))
        with hold(clock):  # makes autojump wait on an event bound to this loop
            await asyncio.sleep(0.01)
        await task
        return clock.now()

    assert asyncio.run(main()) == 60.0
    assert asyncio.run(main()) == 120.0  # a second loop: no "bound to a different event loop"


def test_freeze_stops_a_jumper_that_is_already_running() -> None:
    clock = jqc.VirtualClock(start=0.0, autojump=True)

    async def main() -> None:
        sleeper = asyncio.ensure_future(clock.sleep(100))
        await asyncio.sleep(0)  # the sleeper is registered and the jumper started
        clock.freeze()
        await asyncio.sleep(0.05)
        assert not sleeper.done() and clock.now() == 0.0
        clock.advance(100)
        await asyncio.wait_for(sleeper, 1)

    asyncio.run(main())


# -- sync code blocked on a clock (jqc.clock.block_until) ------------------------------------------


def _blocked_thread(clock: jqc.VirtualClock, wake: threading.Event, when: float) -> threading.Thread:
    thread = threading.Thread(target=block_until, args=(clock, wake, when), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not clock._threads:  # until it is registered on the clock
        assert time.monotonic() < deadline
        time.sleep(0.001)
    return thread


def test_a_thread_blocked_on_a_virtual_clock_wakes_when_another_moves_it_past() -> None:
    clock = jqc.VirtualClock(start=0.0)
    thread = _blocked_thread(clock, threading.Event(), 5.0)
    clock.advance(4.999)
    thread.join(0.1)
    assert thread.is_alive()
    clock.advance(0.001)
    thread.join(10)
    assert not thread.is_alive() and not clock._threads


def test_the_wake_event_ends_the_block_early_and_leaves_nothing_behind() -> None:
    clock = jqc.VirtualClock(start=0.0)
    wake = threading.Event()
    thread = _blocked_thread(clock, wake, 3600.0)
    wake.set()
    thread.join(10)
    assert not thread.is_alive() and not clock._threads
    assert clock.now() == 0.0


def test_a_deadline_already_reached_returns_at_once() -> None:
    clock = jqc.VirtualClock(start=10.0)
    block_until(clock, threading.Event(), 10.0)  # would hang if it waited
    block_until(jqc.SystemClock(), threading.Event(), 0.0)


def test_any_other_clock_is_re_read_until_it_reaches_the_deadline() -> None:
    class Stepping:
        """A clock of the Clock protocol that moves 1 s each time it is read."""

        def __init__(self) -> None:
            self.t = 0.0

        def now(self) -> float:
            self.t += 1.0
            return self.t

        async def sleep(self, seconds: float) -> None:
            raise AssertionError("not used")

    clock = Stepping()
    block_until(clock, threading.Event(), 3.5)
    assert clock.t == 4.0
