"""Sans-IO calls: each engine operation is built once as data and run by a sync or async executor.

An operation is either a single :class:`ScriptCall` / :class:`CommandCall` (what to send, plus how
to parse the reply) or a generator that yields calls and receives their parsed results, for
operations that loop in bounded batches. :func:`run_sync` and :func:`run_async` are the only two
places that hand calls to a backend, so sync and asyncio behave identically by construction, and
every backend answers in one shape (raw RESP2 replies, typed jqc errors).

A :class:`Batch` runs several scripts in one round trip. Its semantics are the backends' (see
:mod:`jqc.backends.base`): every call is sent and runs on its own; if any failed, the executor
raises :class:`jqc.BatchError` after parsing the others, with every call's result or error in it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from jqc.backends.base import Arg, AsyncBackend, Outcome, Reply, ScriptInvocation, SyncBackend
from jqc.engine.codes import Code, raise_for
from jqc.engine.scripts import scripts
from jqc.errors import BatchError, JqcError, ScriptReplyError

__all__ = [
    "Arg",
    "Batch",
    "CommandCall",
    "Op",
    "Reply",
    "Scan",
    "ScriptCall",
    "Step",
    "checked",
    "code_of",
    "run_async",
    "run_sync",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ScriptCall(Generic[T]):
    """Run the named Lua script with its declared ``keys`` and ``args``; ``parse`` turns its reply into a T."""

    script: str
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    parse: Callable[[Reply], T]

    def invocation(self) -> ScriptInvocation:
        """What the backend runs: the loaded script, keys and arguments."""
        return ScriptInvocation(scripts()[self.script], self.keys, self.args)


@dataclass(frozen=True, slots=True)
class CommandCall(Generic[T]):
    """Send one plain Redis command (reads, SCAN, stream reads); ``block`` marks a blocking read
    that may wait that many seconds on the server."""

    args: tuple[Arg, ...]
    parse: Callable[[Reply], T]
    block: float | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    """Every key matching the glob ``match``, on every master; yields them as a list, each once."""

    match: str
    count: int = 1000


@dataclass(frozen=True, slots=True)
class Batch:
    """Several script calls sent together (pipelined where the backend can); yields their results.

    Each call still runs as its own atomic script: a batch saves round trips, it is not a
    transaction. Results come back in order; see the module docstring for failures.
    """

    calls: tuple[ScriptCall[Any], ...]


Op: TypeAlias = Generator["ScriptCall[Any] | CommandCall[Any] | Batch | Scan", Any, T]
Step: TypeAlias = "ScriptCall[T] | CommandCall[T] | Op[T]"


def checked(reply: Reply) -> list[Reply]:
    """Validate a script reply's shape and raise the typed error for an error code."""
    if not isinstance(reply, list) or not reply or not isinstance(reply[0], int):
        raise ScriptReplyError(f"malformed script reply: {reply!r:.200}")
    if reply[0] < 0:
        raise_for(reply[0], str(reply[1]) if len(reply) > 1 else "")
    return reply


def code_of(reply: list[Reply]) -> Code:
    """The reply code of a checked script reply."""
    first = reply[0]
    assert isinstance(first, int)
    return Code(first)


def _parsed(call: ScriptCall[T] | CommandCall[T], reply: Reply) -> T:
    """``call.parse(reply)``; a reply of a shape the parser did not expect is a :class:`ScriptReplyError`."""
    try:
        return call.parse(reply)
    except JqcError:
        raise
    except (IndexError, KeyError, TypeError, ValueError, AssertionError) as exc:
        what = call.script if isinstance(call, ScriptCall) else str(call.args[0])
        raise ScriptReplyError(f"unexpected reply to {what}: {reply!r:.200} ({type(exc).__name__}: {exc})") from exc


def _parse_batch(calls: Sequence[ScriptCall[Any]], outcomes: list[Outcome]) -> list[Any]:
    """Parse every outcome of a batch; raise :class:`BatchError` if any call (or its parse) failed."""
    results: list[Any] = []
    errors: dict[int, JqcError] = {}
    for i, (call, outcome) in enumerate(zip(calls, outcomes, strict=True)):
        try:
            if isinstance(outcome, JqcError):
                raise outcome
            results.append(_parsed(call, outcome))
        except JqcError as exc:
            errors[i] = exc
            results.append(None)
    if errors:
        first = errors[min(errors)]
        raise BatchError(
            f"{len(errors)} of {len(calls)} calls of a batch failed (the others were applied); first: {first}",
            results,
            errors,
        ) from first
    return results


def _send_sync(backend: SyncBackend, call: ScriptCall[T] | CommandCall[T]) -> T:
    if isinstance(call, ScriptCall):
        inv = call.invocation()
        return _parsed(call, backend.run_script(inv.script, inv.keys, inv.args))
    return _parsed(call, backend.run_command(*call.args))


async def _send_async(backend: AsyncBackend, call: ScriptCall[T] | CommandCall[T]) -> T:
    if isinstance(call, ScriptCall):
        inv = call.invocation()
        return _parsed(call, await backend.run_script(inv.script, inv.keys, inv.args))
    if call.block is not None:
        return _parsed(call, await backend.run_blocking(*call.args, timeout=call.block))
    return _parsed(call, await backend.run_command(*call.args))


def run_sync(backend: SyncBackend, step: Step[T]) -> T:
    """Run one call or a generator of calls (and batches of calls) on a sync backend."""
    if isinstance(step, (ScriptCall, CommandCall)):
        return _send_sync(backend, step)
    try:
        call = next(step)
        while True:
            if isinstance(call, Batch):
                outcomes = backend.run_batch([c.invocation() for c in call.calls])
                call = step.send(_parse_batch(call.calls, outcomes))
            elif isinstance(call, Scan):
                call = step.send(list(dict.fromkeys(backend.scan(call.match, count=call.count))))
            else:
                call = step.send(_send_sync(backend, call))
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(backend: AsyncBackend, step: Step[T]) -> T:
    """Run one call or a generator of calls on an asyncio backend."""
    if isinstance(step, (ScriptCall, CommandCall)):
        return await _send_async(backend, step)
    try:
        call = next(step)
        while True:
            if isinstance(call, Batch):
                outcomes = await backend.run_batch([c.invocation() for c in call.calls])
                call = step.send(_parse_batch(call.calls, outcomes))
            elif isinstance(call, Scan):
                call = step.send(list(dict.fromkeys([key async for key in backend.scan(call.match, count=call.count)])))
            else:
                call = step.send(await _send_async(backend, call))
    except StopIteration as stop:
        result: T = stop.value
        return result
