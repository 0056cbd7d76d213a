"""The network between virtual workers and Redis: how a call travels, runs and answers.

Calls normally take no virtual time. Under a slow-Redis window a call is stamped when sent, runs
``latency / 2`` later and its reply arrives after ``latency``; under a partition a worker's request
or reply is lost (a coin flip per call) and it learns so after ``call_timeout``; while Redis is
restarting every call is refused. The simulator always sees the true reply, which is what the
checkers use; the worker sees what the network let through.

Each kind of call has two handlers, registered with :meth:`Network.handle`: the *truth* (what the
true reply means for the model, run as the call executes) and the *reply* (what the worker does
with the reply the network delivered).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from jqc.backends.base import SyncBackend
from jqc.engine.calls import ScriptCall, Step, run_sync
from jqc.errors import LockLostError
from jqc.sim.events import EventQueue
from jqc.sim.speculation import DeferredCalls
from jqc.sim.state import FaultState, ScalingStats
from jqc.sim.workers import DEAD, STOPPED, Call, Refused, TimedOut, Worker

__all__ = ["NO_GUESS", "Guess", "Network", "Reply", "Truth"]

#: What a true reply means for the model: ``truth(call, result, delivered)``.
Truth = Callable[[Call, Any, bool], None]
#: What the worker does with the reply it got: ``reply(call, result)``.
Reply = Callable[[Call, Any], None]
#: The reply a correct engine gives to a call, known before it runs (or :data:`NO_GUESS`).
Guess = Callable[[Call], Any]

NO_GUESS: Any = object()
"""What a :data:`Guess` returns when it cannot tell the reply: the call runs at once."""


class Network:
    """Sends calls from workers through the (possibly faulty) network to the (possibly restarting) server.

    Every engine call runs on one shared sync ``backend``; :attr:`calls` counts them and
    :attr:`engine_seconds` is the wall time they took.
    """

    def __init__(
        self,
        q: EventQueue,
        faults: FaultState,
        scaling: ScalingStats,
        rng: random.Random,
        backend: SyncBackend,
        *,
        call_timeout: float,
    ) -> None:
        self.q = q
        self.faults = faults
        self.scaling = scaling
        self.rng = rng
        self.backend = backend
        self.call_timeout = call_timeout
        self.calls = 0
        self.engine_seconds = 0.0
        self._truth: dict[str, Truth] = {}
        self._replies: dict[str, Reply] = {}
        self._guesses: dict[str, Guess] = {}
        self._deferred = backend if isinstance(backend, DeferredCalls) else None

    def handle(self, kind: str, truth: Truth, reply: Reply) -> None:
        """Register what a call of ``kind`` means for the model and for its worker."""
        self._truth[kind] = truth
        self._replies[kind] = reply

    def guess(self, kind: str, guess: Guess) -> None:
        """Register the reply a correct engine gives to a call of ``kind`` (see :mod:`jqc.sim.speculation`):
        on a :class:`~jqc.sim.speculation.DeferredCalls` backend the call is then sent with the next one."""
        self._guesses[kind] = guess

    def engine(self, step: Step[Any]) -> Any:
        """Run one engine call now; a rejected write comes back as the :class:`LockLostError`."""
        self.calls += 1
        started = time.perf_counter()
        try:
            return run_sync(self.backend, step)
        except LockLostError as exc:
            return exc
        finally:
            self.engine_seconds += time.perf_counter() - started

    def send(self, call: Call) -> None:
        """Send a call through the (possibly faulty) network to the (possibly restarting) server."""
        now = self.q.now
        call.issued = now
        if self.faults.down(now):
            self.deliver(call, Refused("Redis is restarting"))
            return
        w = call.worker
        latency = self.faults.latency
        if w is not None and w.cut_until > now:
            if self.rng.random() < 0.5:  # the request got through; the reply is lost
                if latency > 0:
                    self.q.after(latency / 2, self._execute, call, False)
                else:
                    self._execute(call, False)
            self.q.after(self.call_timeout, self.deliver, call, TimedOut("no reply"))
            return
        if latency > 0:
            call.delayed = True
            if call.ex is not None:
                call.ex.tag("slow")
            self.q.after(latency / 2, self._execute, call, True)
        else:
            self._execute(call, True)

    def run_unanswered(self, call: Call) -> None:
        """Run a call now whose reply will never reach its worker (the model still learns the truth)."""
        self._execute(call, False)

    def _execute(self, call: Call, reply: bool) -> None:
        if self.faults.down(self.q.now):
            if reply:
                self.deliver(call, Refused("Redis went down"))
            return
        result = self._guessed(call)
        if result is NO_GUESS:
            result = self.engine(call.step)
        self._truth[call.kind](call, result, reply)
        if reply:
            if call.delayed:
                self.q.at(call.issued + 2 * (self.q.now - call.issued), self.deliver, call, result)
            else:
                self.deliver(call, result)

    def _guessed(self, call: Call) -> Any:
        """The guessed reply of a call kept to be sent with the next one, or NO_GUESS (run it now)."""
        guess, deferred, step = self._guesses.get(call.kind), self._deferred, call.step
        if guess is None or deferred is None or not isinstance(step, ScriptCall):
            return NO_GUESS
        expected = guess(call)
        if expected is NO_GUESS or not deferred.defer(step, expected):
            return NO_GUESS
        self.calls += 1
        return expected

    def deliver(self, call: Call, result: Any) -> None:
        """Hand ``result`` to the call's worker (later if it is frozen; to no one if it is gone)."""
        w = call.worker
        if w is not None:
            if w.state in (DEAD, STOPPED):
                self._orphaned(call, w)
                return
            if w.frozen_until > self.q.now:
                self.q.at(w.frozen_until, self.deliver, call, result)
                return
        self._replies[call.kind](call, result)

    def _orphaned(self, call: Call, w: Worker) -> None:
        """A reply reached a worker that is gone: a job it was just handed is held by no one."""
        ex = call.ex if call.kind == "claim" else call.extra[0] if call.kind == "complete" and call.extra else None
        if ex is not None:
            ex.tag("crash" if w.state == DEAD else "scale-down")
            if w.state == STOPPED:
                self.scaling.lost_by_scaling += 1
