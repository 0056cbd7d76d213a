"""Lock renewals sent with the next call instead of on their own: half the simulator's round trips.

A busy virtual worker renews its lock every heartbeat, and those renewals are about half of the
calls a run makes. What a renewal answers is no secret: the model knows whether the worker still
holds the job with that token, and the ``token_fencing`` invariant fails the run whenever the
engine answers otherwise. So the simulator takes the model's answer as the reply at once (the
truth and the worker see exactly what they would have seen) and :class:`DeferredCalls` keeps the
call; it is sent in the same round trip as the next call that goes to the server, ahead of it, so
the server runs every call in the order the sequential run would have, and nothing reads the
server before the kept calls have run (every method of the backend sends them first).

When the kept calls run, their real replies are compared with the answers already used. A
difference means the engine broke fencing, which the sequential run would report; the run is
abandoned with :class:`SpeculationMissed` and done again from the start without keeping any call
(:class:`jqc.sim.runner.Simulator` does that), so the report is always the sequential run's, byte
for byte. A call is only kept when its script has already run once on this backend, so it is
never sent before the server knows the script (a reload after ``NOSCRIPT`` would run it after the
call it was sent ahead of).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from jqc.backends.base import Arg, Outcome, Reply, Script, ScriptInvocation, SyncBackend
from jqc.engine.calls import ScriptCall
from jqc.errors import JqcError

__all__ = ["DeferredCalls", "SpeculationMissed"]


class SpeculationMissed(Exception):
    """A kept call's real reply differed from the answer the run already used (never a JqcError, so
    no handler of the run takes it for a failed call)."""


class DeferredCalls:
    """A :class:`~jqc.backends.base.SyncBackend` that can keep script calls and send them with the next one."""

    def __init__(self, backend: SyncBackend) -> None:
        self.backend = backend
        self._pending: list[tuple[ScriptCall[Any], Any]] = []
        self._known: set[str] = set()  # SHAs of scripts that have run through this backend
        self.kept = 0
        """Calls kept and sent with a later one so far."""

    def defer(self, call: ScriptCall[Any], expected: Any) -> bool:
        """Keep ``call``, whose parsed reply must be ``expected``; False (nothing kept) when its script
        has not run here yet: then run it now."""
        if call.invocation().script.sha not in self._known:
            return False
        self._pending.append((call, expected))
        self.kept += 1
        return True

    def flush(self) -> None:
        """Send the kept calls now (one round trip) and check their replies."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._check(pending, self.backend.run_batch([call.invocation() for call, _ in pending]))

    @staticmethod
    def _check(pending: list[tuple[ScriptCall[Any], Any]], outcomes: Sequence[Outcome]) -> None:
        for (call, expected), outcome in zip(pending, outcomes, strict=True):
            try:
                got = outcome if isinstance(outcome, BaseException) else call.parse(outcome)
            except Exception as exc:
                got = exc
            if got != expected:
                raise SpeculationMissed(f"{call.script} answered {got!r:.200}, the run had used {expected!r:.200}")

    # -- the backend ---------------------------------------------------------------------------------

    def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        """Run one script, with the kept calls ahead of it in the same round trip."""
        if not self._pending or script.sha not in self._known:
            self.flush()
            reply = self.backend.run_script(script, keys, args)
            self._known.add(script.sha)
            return reply
        pending, self._pending = self._pending, []
        invocations = [call.invocation() for call, _ in pending]
        outcomes = self.backend.run_batch([*invocations, ScriptInvocation(script, tuple(keys), tuple(args))])
        self._check(pending, outcomes[:-1])
        last = outcomes[-1]
        if isinstance(last, JqcError):
            raise last
        return last

    def run_command(self, *args: Arg) -> Reply:
        """One command, after the kept calls."""
        self.flush()
        return self.backend.run_command(*args)

    def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        """A batch, after the kept calls."""
        self.flush()
        outcomes = self.backend.run_batch(calls)
        self._known.update(c.script.sha for c, o in zip(calls, outcomes, strict=True) if not isinstance(o, JqcError))
        return outcomes

    def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        """A blocking command, after the kept calls."""
        self.flush()
        return self.backend.run_blocking(*args, timeout=timeout)

    def scan(self, match: str, *, count: int = 1000) -> Iterator[str]:
        """SCAN, after the kept calls."""
        self.flush()
        return self.backend.scan(match, count=count)

    def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        """One command on every server, after the kept calls."""
        self.flush()
        return self.backend.run_on_each_server(*args)

    def close(self) -> None:
        """Close the backend (kept calls are dropped: the run is over)."""
        self._pending = []
        self.backend.close()
