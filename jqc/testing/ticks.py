"""Time travel across schedule ticks in a drain.

A drain's workers do not drive schedules themselves (their ``schedule_interval`` is None unless the
test sets it). The drain does, so that moving the virtual clock means time passed with a driver
running, not an outage:

* every tick that fell due before the drain (``jqc_clock.advance(days=1)``, then drain) fires as
  at its own time: each tick adds its job, with the tick as its creation time, and none counts as
  missed whatever the schedule's ``missed`` policy;
* ticks fire in time order, and after a tick of an ``overlap="skip"`` schedule the drain runs the
  jobs waiting before it fires the next tick, so a run that finishes in time lets the next tick
  fire, as it would have;
* with ``until=``, the drain also walks the clock from tick to tick up to that time.

Without ``until=`` only ticks already due fire: a schedule never makes a drain endless.
"""

from __future__ import annotations

import math
from typing import TypeVar

from jqc.clock import hold, now_ms
from jqc.engine.async_queue import AsyncQueue
from jqc.engine.calls import Step, run_async
from jqc.workflows import fire_due

__all__ = ["Ticks"]

T = TypeVar("T")


async def _run(twin: AsyncQueue, step: Step[T]) -> T:
    with hold(twin.clock):
        return await run_async(twin.connection.async_backend(), step)


class Ticks:
    """Fires the schedule ticks of a drain's queues (see the module docstring)."""

    def __init__(self, twins: list[AsyncQueue]) -> None:
        self.twins = twins
        self.fired = 0  # ticks fired by this drain (its jobs added)

    async def earliest(self) -> tuple[int, AsyncQueue] | None:
        """The earliest next tick (ms) of any schedule of the drain's queues, and its queue."""
        best: tuple[int, AsyncQueue] | None = None
        for twin in self.twins:
            tick = await _run(twin, twin.ops.earliest_tick())
            if tick is not None and (best is None or tick < best[0]):
                best = (tick, twin)
        return best

    async def fire_past(self, budget: int) -> bool:
        """Fire the ticks due now, each as at its own time, until one of an ``overlap="skip"``
        schedule fired (its job must run before the next tick) or ``budget`` ticks fired; True if any did."""
        now = now_ms(self.twins[0].clock)
        any_fired = False
        while self.fired < budget:
            found = await self.earliest()
            if found is None or found[0] > now:
                return any_fired
            tick, twin = found
            done = await _run(twin, fire_due(twin.ops, now=tick))
            fired = [r for r in done.fired if r.fired]
            self.fired += sum(len(r.fired) for r in fired)
            any_fired = any_fired or bool(fired)
            for result in fired:
                schedule = await _run(twin, twin.ops.get_schedule(result.schedule))
                if schedule is not None and schedule.overlap == "skip":
                    return True
            if not done.fired:
                return any_fired  # (a schedule changed meanwhile: look again next phase)
        return any_fired

    async def next_due(self, until: float | None) -> float | None:
        """The next tick in the future, when the drain runs ``until`` a time at or after it."""
        if until is None:
            return None
        found = await self.earliest()
        if found is None or found[0] / 1000.0 > until:
            return None
        when = found[0] / 1000.0
        while int(when * 1000) < found[0]:  # the scripts' whole-ms "now" must reach the tick
            when = math.nextafter(when, math.inf)
        return when
