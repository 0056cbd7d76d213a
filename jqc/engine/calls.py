"""Sans-IO calls: each engine operation is built once as data and run by a sync or async executor.

An operation is either a single :class:`ScriptCall` / :class:`CommandCall` (what to send, plus how
to parse the reply) or a generator that yields calls and receives their parsed results, for
operations that loop in bounded batches. :func:`run_sync` and :func:`run_async` are the only two
places that hand calls to a backend, so sync and asyncio behave identically by construction, and
every backend answers in one shape (raw RESP2 replies, typed jqc errors).

A :class:`Batch` runs several scripts in one round trip. Its semantics are the backends' (see
:mod:`jqc.backends.base`): every call is sent and runs on its own; if any failed, the executor
raises :class:`jqc.BatchError` after parsing the others, with every call's result or error in it.

A :class:`jqc.PermissionDeniedError` (an ACL refusal) leaves the executor naming what was refused:
the jqc operation and the ``evalsha|<sha>`` rule it needs, or the key pattern of its declared
keys, or the plain command and its key, since Redis's own message names neither.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from jqc.backends.base import Arg, AsyncBackend, Outcome, Reply, ScriptInvocation, SyncBackend
from jqc.engine.codes import Code, raise_for
from jqc.engine.scripts import scripts
from jqc.errors import BatchError, JqcError, NotReplicatedError, PermissionDeniedError, ScriptReplyError

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


def _key_pattern(key: str) -> str:
    """The queue-wide pattern a key falls under (``jqc:{photos}:meta`` -> ``jqc:{photos}:*``)."""
    end = key.find("}")
    return key[: end + 1] + ":*" if "{" in key and end > 0 else key


def _keys_text(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
    patterns = sorted({_key_pattern(k) for k in keys})
    return f"key pattern {' '.join(patterns)} (keys {shown})"


def _denied(call: ScriptCall[Any] | CommandCall[Any], exc: PermissionDeniedError) -> PermissionDeniedError:
    """``exc`` with what was refused named: the jqc operation and its script, or the command and its
    key (Redis says only "no permissions to run the 'evalsha' command" or "... one of the keys").

    It goes by what the backend recorded on ``exc`` (:attr:`~jqc.PermissionDeniedError.command`,
    :attr:`~jqc.PermissionDeniedError.key_refused`), never by the error's text.
    """
    if isinstance(call, ScriptCall):
        operation = call.script
        what = f"jqc's {call.script!r} operation"
        if exc.key_refused:
            missing = f"access to {_keys_text(call.keys)}" if call.keys else "access to its keys"
        elif exc.command == "evalsha":
            missing = f"the command evalsha|{scripts()[call.script].sha}"
        elif exc.command:  # refused inside the script
            missing = f"the command {exc.command} (which the script calls)"
        else:
            missing = "a permission the script needs"
    else:
        operation = str(call.args[0]).lower()
        key = str(call.args[1]) if len(call.args) > 1 else ""
        what = f"the command {operation.upper()}" + (f" on {key}" if key else "")
        if exc.key_refused and key:
            missing = f"access to key {key} (key pattern {_key_pattern(key)})"
        else:
            missing = f"the command {exc.command or operation}"
    named = PermissionDeniedError(f"the Redis user may not run {what}: it lacks {missing} ({exc})")
    named.command, named.key_refused, named.operation = exc.command, exc.key_refused, operation
    return named


def _named(call: ScriptCall[Any] | CommandCall[Any], exc: JqcError) -> JqcError:
    if isinstance(exc, PermissionDeniedError) and exc.operation is None:
        return _denied(call, exc)
    if isinstance(exc, NotReplicatedError) and exc.reply is not None and exc.result is None:
        reply: Reply = exc.reply  # type: ignore[assignment]  # (a backend's raw reply)
        exc.result = _parsed(call, reply)  # it ran: what it returned (a parse error wins: it did nothing)
    return exc


def _parse_batch(calls: Sequence[ScriptCall[Any]], outcomes: list[Outcome]) -> list[Any]:
    """Parse every outcome of a batch; raise :class:`BatchError` if any call (or its parse) failed."""
    results: list[Any] = []
    errors: dict[int, JqcError] = {}
    for i, (call, outcome) in enumerate(zip(calls, outcomes, strict=True)):
        try:
            if isinstance(outcome, NotReplicatedError):
                _named(call, outcome)  # it ran: what it returned goes into the error and the results
                results.append(outcome.result)
                errors[i] = outcome
                continue
            if isinstance(outcome, JqcError):
                raise _named(call, outcome)
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
    try:
        if isinstance(call, ScriptCall):
            inv = call.invocation()
            reply = backend.run_script(inv.script, inv.keys, inv.args)
        elif call.block is not None:
            reply = backend.run_blocking(*call.args, timeout=call.block)
        else:
            reply = backend.run_command(*call.args)
    except (PermissionDeniedError, NotReplicatedError) as exc:
        raise _named(call, exc) from exc
    return _parsed(call, reply)


async def _send_async(backend: AsyncBackend, call: ScriptCall[T] | CommandCall[T]) -> T:
    try:
        if isinstance(call, ScriptCall):
            inv = call.invocation()
            reply = await backend.run_script(inv.script, inv.keys, inv.args)
        elif call.block is not None:
            reply = await backend.run_blocking(*call.args, timeout=call.block)
        else:
            reply = await backend.run_command(*call.args)
    except (PermissionDeniedError, NotReplicatedError) as exc:
        raise _named(call, exc) from exc
    return _parsed(call, reply)


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
