"""Sans-IO calls: each engine operation is built once as data and run by a sync or async executor.

An operation is either a single :class:`ScriptCall` / :class:`CommandCall` (what to send, plus how
to parse the reply) or a generator that yields calls and receives their parsed results, for
operations that loop in bounded batches. :func:`run_sync` and :func:`run_async` are the only two
places that touch a client, so sync and asyncio behave identically by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

import redis.exceptions as rex

from jqc.engine.codes import Code, raise_for
from jqc.engine.scripts import scripts
from jqc.errors import BackendError, InvalidInputError, JqcError, PermissionDeniedError, ScriptReplyError

T = TypeVar("T")
Arg: TypeAlias = str | int | float


@dataclass(frozen=True, slots=True)
class ScriptCall(Generic[T]):
    """Run the named Lua script with ``keys`` and ``args``; ``parse`` turns its reply into a T."""

    script: str
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    parse: Callable[[Any], T]


@dataclass(frozen=True, slots=True)
class CommandCall(Generic[T]):
    """Send one plain Redis command (reads, SCAN, stream reads)."""

    args: tuple[Arg, ...]
    parse: Callable[[Any], T]


@dataclass(frozen=True, slots=True)
class Batch:
    """Several script calls sent together (pipelined where the client can); yields their results.

    Each call still runs as its own atomic script: a batch saves round trips, it is not a
    transaction. Results come back in order; the first error is raised after all were sent.
    """

    calls: tuple[ScriptCall[Any], ...]


AnyCall: TypeAlias = "ScriptCall[Any] | CommandCall[Any]"
Op: TypeAlias = Generator["ScriptCall[Any] | CommandCall[Any] | Batch", Any, T]
Step: TypeAlias = "ScriptCall[T] | CommandCall[T] | Op[T]"


def checked(reply: Any) -> list[Any]:
    """Validate a script reply's shape and raise the typed error for an error code."""
    if not isinstance(reply, list) or not reply or not isinstance(reply[0], int):
        raise ScriptReplyError(f"malformed script reply: {reply!r:.200}")
    if reply[0] < 0:
        raise_for(reply[0], str(reply[1]) if len(reply) > 1 else "")
    return reply


def code_of(reply: list[Any]) -> Code:
    return Code(reply[0])


def _wrap(exc: Exception) -> JqcError:
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
        return BackendError(f"cannot reach Redis: {exc}")
    if isinstance(exc, rex.NoPermissionError):
        return PermissionDeniedError(f"the Redis user may not do this: {exc}")
    if isinstance(exc, UnicodeError):
        return InvalidInputError(f"an argument cannot be encoded as UTF-8 for Redis: {exc}")
    if isinstance(exc, rex.ResponseError):
        return ScriptReplyError(f"Redis refused the call: {exc}")
    return BackendError(f"backend failure: {type(exc).__name__}: {exc}")


def _send_sync(client: Any, call: AnyCall) -> Any:
    try:
        if isinstance(call, CommandCall):
            return client.execute_command(*call.args)
        script = scripts()[call.script]
        try:
            return client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
        except rex.NoScriptError:
            client.script_load(script.source)
            return client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
    except (rex.RedisError, OSError, ValueError, OverflowError) as exc:
        raise _wrap(exc) from exc


async def _send_async(client: Any, call: AnyCall) -> Any:
    try:
        if isinstance(call, CommandCall):
            return await client.execute_command(*call.args)
        script = scripts()[call.script]
        try:
            return await client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
        except rex.NoScriptError:
            await client.script_load(script.source)
            return await client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
    except (rex.RedisError, OSError, ValueError, OverflowError) as exc:
        raise _wrap(exc) from exc


def _parse_all(calls: tuple[ScriptCall[Any], ...], replies: list[Any]) -> list[Any]:
    """Parse every reply of a batch, then raise the first error (a reply error or a parse error)."""
    results: list[Any] = []
    first: BaseException | None = None
    for call, reply in zip(calls, replies, strict=True):
        try:
            if isinstance(reply, Exception):
                raise _wrap(reply) from reply
            results.append(call.parse(reply))
        except JqcError as exc:
            first = first or exc
            results.append(None)
    if first is not None:
        raise first
    return results


def _send_batch_sync(client: Any, batch: Batch) -> list[Any]:
    many = getattr(client, "evalsha_many", None)
    if many is None:  # the embedded backend: no network to save, send one by one
        return [call.parse(_send_sync(client, call)) for call in batch.calls]
    items = [(scripts()[c.script], c) for c in batch.calls]
    try:
        replies = many([(s.sha, len(c.keys), *c.keys, *c.args) for s, c in items])
        missing = [i for i, r in enumerate(replies) if isinstance(r, rex.NoScriptError)]
        if missing:  # NOSCRIPT means the call did not run: load and send just those again
            for name in {items[i][0].name for i in missing}:
                client.script_load(scripts()[name].source)
            again = many(
                [(items[i][0].sha, len(items[i][1].keys), *items[i][1].keys, *items[i][1].args) for i in missing]
            )
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
    except (rex.RedisError, OSError, ValueError, OverflowError) as exc:
        raise _wrap(exc) from exc
    return _parse_all(batch.calls, replies)


def run_sync(client: Any, step: Step[T]) -> T:
    """Run one call or a generator of calls (and batches of calls) on a sync client."""
    if isinstance(step, (ScriptCall, CommandCall)):
        return step.parse(_send_sync(client, step))
    try:
        call = next(step)
        while True:
            if isinstance(call, Batch):
                call = step.send(_send_batch_sync(client, call))
            else:
                call = step.send(call.parse(_send_sync(client, call)))
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(client: Any, step: Step[T]) -> T:
    """Run one call or a generator of calls on an asyncio redis-py style client."""
    if isinstance(step, (ScriptCall, CommandCall)):
        return step.parse(await _send_async(client, step))
    try:
        call = next(step)
        while True:
            if isinstance(call, Batch):
                call = step.send([c.parse(await _send_async(client, c)) for c in call.calls])
            else:
                call = step.send(call.parse(await _send_async(client, call)))
    except StopIteration as stop:
        result: T = stop.value
        return result
