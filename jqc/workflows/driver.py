"""The schedule driver: one pass finds a queue's due schedules and fires their ticks (sans-IO).

A pass reads the due schedules (one range read of ``P:{Q}:schedules``), reads each one's record,
plans which due ticks to fire under its missed-ticks policy (:func:`jqc.engine.timing.plan`) and
fires them with one compare-and-set script per schedule (:meth:`~jqc.engine.ops_schedules.Scheduling.fire`).

Correctness does not rest on who runs a pass: any number of passes may race, crash between their
read and their write, or run on a clock that jumped back, and every tick still adds at most one job
(the script's compare-and-set and the tick's deterministic job id see to it). The ``schedule`` lease
(:func:`drive`) only keeps the work to one driver per queue at a time, so that hundreds of workers
do not all read the same schedules every second.
"""

from __future__ import annotations

from dataclasses import dataclass

from jqc.clock import now_ms
from jqc.engine.calls import CommandCall, Op, ScriptCall, checked
from jqc.engine.operations import QueueOperations
from jqc.engine.ops_schedules import FireResult, StoredSchedule
from jqc.engine.replies import pairs
from jqc.engine.schedules import Schedule
from jqc.engine.timing import plan
from jqc.errors import CorruptJobError

__all__ = ["SCHEDULE_LEASE", "DrivePass", "drive", "fire_due", "lease"]

#: The lease that lets one worker at a time drive a queue's schedules (key ``P:{Q}:schedule-lease``).
SCHEDULE_LEASE = "schedule"
#: Due schedules one pass fires at most (the rest wait for the next pass, most overdue first).
PASS_LIMIT = 100


@dataclass(frozen=True, slots=True)
class DrivePass:
    """What one pass did: ``held`` whether this driver holds the lease (it asks only when a tick is
    due; without the lease it does nothing else); ``fired`` one result per due schedule; ``corrupt``
    (name, reason) of records that could not be decoded (left alone); ``next_due`` the earliest
    next tick of the queue's schedules after the pass (ms), None when none will fire."""

    held: bool
    fired: tuple[FireResult, ...] = ()
    corrupt: tuple[tuple[str, str], ...] = ()
    next_due: int | None = None


def fire_due(ops: QueueOperations, *, now: int | None = None, limit: int = PASS_LIMIT) -> Op[DrivePass]:
    """Fire the due ticks of every due schedule of the queue at ``now`` (ms; default: the queue's clock)."""
    stamp = now_ms(ops.clock) if now is None else now
    names: list[str] = yield ops.due_schedules(stamp, limit)
    results: list[FireResult] = []
    corrupt: list[tuple[str, str]] = []
    for name in names:
        fields: dict[str, str] = yield CommandCall(("HGETALL", ops.schedule_key(name)), pairs)
        if not fields:
            continue  # removed since the range read
        try:
            stored = StoredSchedule(Schedule.from_fields(ops.name, name, fields), fields)
        except CorruptJobError as exc:
            corrupt.append((name, str(exc)))
            continue
        sched, tick = stored.schedule, stored.next_tick
        if tick is None:
            continue
        chosen = plan(
            sched.timing, next_tick=tick, now=stamp, missed=sched.missed, cap=sched.max_catch_up,
            grace_ms=round(sched.grace * 1000),
        )  # fmt: skip
        if chosen is None:
            continue  # its next tick moved on since the range read
        result: FireResult = yield ops.fire(stored, chosen, stamp)
        results.append(result)
    return DrivePass(True, tuple(results), tuple(corrupt))


def lease(ops: QueueOperations, holder: str, duration: float, *, now: int | None = None) -> ScriptCall[bool]:
    """Take or keep the ``schedule`` lease for ``duration`` seconds (0 gives it up); True when held."""
    stamp = now_ms(ops.clock) if now is None else now
    ms = 0 if duration == 0 else max(1, round(duration * 1000))
    return ScriptCall(
        "lease",
        ops.lease_keys(SCHEDULE_LEASE),
        (stamp, ops.events_max_len, SCHEDULE_LEASE, holder, ms),
        lambda reply: bool(checked(reply)[1]),
    )


def drive(
    ops: QueueOperations, holder: str, lease_for: float, *, patience: float = 0.0, now: int | None = None
) -> Op[DrivePass]:
    """One driver pass: if a tick is due (one range read says), take or keep the ``schedule`` lease
    for ``lease_for`` seconds as ``holder`` and, if held, fire what is due (:func:`fire_due`).

    A driver that does not hold the lease passes ``patience`` (seconds): it leaves a tick that is
    due for less than that to the holder, and steps in only for one the holder left undone. When
    nothing is due the pass costs that one read, and no lease call: idle queues stay cheap.
    """
    stamp = now_ms(ops.clock) if now is None else now
    earliest: int | None = yield ops.earliest_tick()
    if earliest is None or earliest > stamp - round(patience * 1000):
        return DrivePass(False, next_due=earliest)
    held: bool = yield lease(ops, holder, lease_for, now=stamp)
    if not held:
        return DrivePass(False, next_due=earliest)
    done: DrivePass = yield from fire_due(ops, now=stamp)
    after: int | None = yield ops.earliest_tick()
    return DrivePass(True, done.fired, done.corrupt, after)
