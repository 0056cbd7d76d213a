"""Small helpers shared by the worker tests (not a test module)."""

from __future__ import annotations

from collections.abc import Callable

import jqc

EPOCH = jqc.clock.VIRTUAL_EPOCH


async def until(clock: jqc.VirtualClock, condition: Callable[[], bool], *, within: float = 600.0) -> None:
    """Let virtual time pass in small steps until ``condition()`` holds (fail after ``within`` s)."""
    deadline = clock.now() + within
    while not condition():
        assert clock.now() < deadline, f"condition not met within {within} virtual seconds"
        await clock.sleep(0.25)


def elapsed(clock: jqc.VirtualClock) -> float:
    return round(clock.now() - EPOCH, 3)
