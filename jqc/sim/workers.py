"""Virtual workers and calls in flight, and a worker's view of time."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from jqc.clock import VIRTUAL_EPOCH
from jqc.engine.calls import Step
from jqc.errors import BackendError
from jqc.sim.checkers import Exec
from jqc.sim.events import EventQueue

__all__ = [
    "BUSY",
    "CLAIMING",
    "DEAD",
    "EPOCH_MS",
    "IDLE",
    "LIVE",
    "STARTING",
    "STOPPED",
    "Call",
    "Refused",
    "TimedOut",
    "Worker",
    "awake_on",
    "stamp",
    "true_time",
]

#: The virtual clock's epoch in engine stamps (milliseconds).
EPOCH_MS = int(VIRTUAL_EPOCH * 1000)

STARTING, IDLE, CLAIMING, BUSY, STOPPED, DEAD = "starting", "idle", "claiming", "busy", "stopped", "dead"
LIVE = (IDLE, CLAIMING, BUSY)


class Refused(BackendError):
    """Redis is restarting: the call was refused before it ran."""


class TimedOut(BackendError):
    """The network lost the request or the reply; the worker gave up waiting."""


class Worker:
    """One virtual worker process (one incarnation of a pool slot).

    ``state`` is one of STARTING, IDLE, CLAIMING (a claim is due or in flight), BUSY (holds
    ``exec``), STOPPED (scaled down) and DEAD (crashed). ``offset`` is how far its clock is from
    the virtual clock; ``frozen_until`` and ``cut_until`` are the ends of a pause and a partition.
    """

    __slots__ = (
        "clock_tags",
        "cut_until",
        "draining",
        "exec",
        "fail_next",
        "frozen_until",
        "id",
        "offset",
        "slot",
        "state",
    )

    def __init__(self, slot: int, incarnation: int) -> None:
        self.slot = slot
        self.id = f"w{slot}.{incarnation}"
        self.offset = 0.0
        self.state = STARTING
        self.exec: Exec | None = None
        self.frozen_until = 0.0
        self.cut_until = 0.0
        self.draining = False
        self.fail_next = False
        self.clock_tags: dict[str, None] = {}


class Call:
    """One engine call in flight: what to run, who sent it, and the worker's stamp.

    ``lost_by`` names the fault that kept the reply from the worker when one did (a job a lost
    reply handed out is tagged with it).
    """

    __slots__ = ("delayed", "ex", "extra", "issued", "kind", "lost_by", "stamp", "step", "worker")

    def __init__(self, kind: str, worker: Worker | None, step: Step[Any], stamp: int, ex: Exec | None = None) -> None:
        self.kind = kind
        self.worker = worker
        self.step = step
        self.stamp = stamp
        self.ex = ex
        self.issued = 0.0
        self.delayed = False
        self.extra: Any = None
        self.lost_by = "partition"  # the fault that kept the reply from the worker, if one did


def stamp(now: float, w: Worker | None) -> int:
    """The engine stamp (ms) a worker's clock reads at virtual time ``now`` (the true clock for None)."""
    return EPOCH_MS + math.floor((now + (w.offset if w is not None else 0.0)) * 1000)


def true_time(epoch_seconds: float, w: Worker | None) -> float:
    """The virtual time at which ``w``'s clock reads ``epoch_seconds``."""
    return epoch_seconds - VIRTUAL_EPOCH - (w.offset if w is not None else 0.0)


def awake_on(q: EventQueue, w: Worker, ex: Exec, handler: Callable[..., None], *args: Any) -> bool:
    """True if ``w`` is still on ``ex`` and awake; re-schedules ``handler(w, ex, *args)`` while ``w`` is frozen."""
    if w.exec is not ex or w.state != BUSY:
        return False
    if w.frozen_until > q.now:
        q.at(w.frozen_until, handler, w, ex, *args)
        return False
    return True
