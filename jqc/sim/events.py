"""The event queue (virtual time, seeded tie-breaks), the hashed event log, and the journal the
parts of a run write to (the log, stamped with the queue's time, and the fault coverage counts)."""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["EventLog", "EventQueue", "Journal"]

Handler = Callable[..., None]


class EventQueue:
    """A priority queue of callbacks keyed by virtual time.

    Events due at the same instant run in an order drawn from the ``ties`` stream when they are
    scheduled, so a seed fixes one interleaving and different seeds explore different ones. A
    sequence number breaks the (vanishingly rare) equal draws, so callbacks are never compared.
    """

    __slots__ = ("_heap", "_rand", "_seq", "now", "processed")

    def __init__(self, ties: random.Random) -> None:
        self._heap: list[tuple[float, float, int, Handler, tuple[Any, ...]]] = []
        self._rand = ties.random
        self._seq = 0
        self.now = 0.0
        self.processed = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: float, handler: Handler, *args: Any) -> None:
        """Run ``handler(*args)`` at virtual time ``when`` (never earlier than now)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(when, self.now), self._rand(), self._seq, handler, args))

    def at_tied(self, when: float, tie: float, handler: Handler, *args: Any) -> None:
        """Like :meth:`at`, with a tie-break given by the caller instead of drawn from ``ties``.

        Scheduled faults use this (with a draw of their own), so adding or removing one from a
        schedule does not reshuffle every later tie in the run: shrinking a failing schedule then
        keeps the rest of the run as it was.
        """
        self._seq += 1
        heapq.heappush(self._heap, (max(when, self.now), tie, self._seq, handler, args))

    def after(self, delay: float, handler: Handler, *args: Any) -> None:
        self.at(self.now + delay, handler, *args)

    def peek_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[Handler, tuple[Any, ...]]:
        """Advance the clock to the next event and return it."""
        when, _, _, handler, args = heapq.heappop(self._heap)
        self.now = when
        self.processed += 1
        return handler, args


class EventLog:
    """Every observable step of a run, one text line each, hashed as it goes.

    Lines hold only what both backends answer identically (virtual times, worker and job ids,
    tokens, reply codes), so one seed gives one SHA-256 on the embedded backend and on a real
    Redis. The full log is kept only when asked (``keep=True``); the last ``tail`` lines always
    are, to show what led to a violation.
    """

    __slots__ = ("_hash", "count", "lines", "recent")

    def __init__(self, *, keep: bool = False, tail: int = 200) -> None:
        self._hash = hashlib.sha256()
        self.lines: list[str] | None = [] if keep else None
        self.count = 0
        self.recent: deque[str] = deque(maxlen=tail)

    def write(self, now: float, text: str) -> None:
        line = f"{now:.6f} {text}"
        self._hash.update(line.encode())
        self._hash.update(b"\n")
        self.count += 1
        self.recent.append(line)
        if self.lines is not None:
            self.lines.append(line)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class Journal:
    """What the parts of a run record: events in the log (at the queue's current time), and for the
    report's coverage, how often each kind of fault was injected and reached its recovery path."""

    __slots__ = ("injected", "log", "q", "reached")

    def __init__(self, q: EventQueue, log: EventLog) -> None:
        self.q = q
        self.log = log
        self.injected: dict[str, int] = {}
        self.reached: dict[str, int] = {}

    def emit(self, text: str) -> None:
        """Write one event, stamped with the current virtual time."""
        self.log.write(self.q.now, text)

    def inject(self, kind: str, text: str) -> None:
        """A fault of ``kind`` was injected."""
        self.injected[kind] = self.injected.get(kind, 0) + 1
        self.emit(f"fault {kind} {text}")

    def reach(self, kind: str) -> None:
        """A fault of ``kind`` reached the recovery path it is meant to exercise."""
        self.reached[kind] = self.reached.get(kind, 0) + 1
