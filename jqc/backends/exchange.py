"""The backend protocols implemented once, over a transport that exchanges raw commands.

A single-server backend (embedded or real) differs from another only in how it moves commands:
a :class:`SyncTransport` or :class:`AsyncTransport` sends a list of commands and answers one
reply or one redis-py error per command. Everything else (running scripts by SHA and loading them
after ``NOSCRIPT``, batches that report one outcome per call, SCAN loops, the translation of every
refusal into jqc's errors) is written here once, so the backends cannot drift apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Protocol, TypeAlias

import redis.exceptions as rex

from jqc.backends.base import Arg, Outcome, Reply, Script, ScriptInvocation
from jqc.backends.refusals import CLIENT_ERRORS, translate
from jqc.errors import CallTimeoutError, JqcError, ScriptReplyError

__all__ = ["AsyncExchangeBackend", "AsyncTransport", "ExchangeBackend", "SyncTransport"]

Command: TypeAlias = tuple[Arg, ...]
Answer: TypeAlias = "Reply | BaseException"


class SyncTransport(Protocol):
    """Moves commands to one server and back, synchronously."""

    address: str

    def exchange(self, commands: list[Command]) -> list[Answer]:
        """One answer per command, in order: its reply, or the client's exception for it."""
        ...

    def blocking(self, command: Command, timeout: float) -> Answer:
        """Send a command that may block on the server for ``timeout`` seconds, with a read deadline
        longer than ``timeout`` instead of the usual one: its reply, or the client's exception."""
        ...

    def close(self) -> None:
        """Close the transport's connections."""
        ...


class AsyncTransport(Protocol):
    """Moves commands to one server and back, on asyncio."""

    address: str

    async def exchange(self, commands: list[Command]) -> list[Answer]:
        """As :meth:`SyncTransport.exchange`."""
        ...

    async def blocking(self, command: Command, timeout: float) -> Reply:
        """Send a command that may block on the server for ``timeout`` seconds, without the usual
        read deadline (the caller bounds the wait)."""
        ...

    async def aclose(self) -> None:
        """Close the transport's connections."""
        ...


def _evalsha(call: ScriptInvocation) -> Command:
    return ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


def _unloaded(answers: list[Answer]) -> list[int]:
    return [i for i, answer in enumerate(answers) if isinstance(answer, rex.NoScriptError)]


def _outcome(answer: Answer) -> Outcome:
    if isinstance(answer, BaseException):
        return translate(answer)
    return answer


def _reply(answer: Answer) -> Reply:
    if isinstance(answer, BaseException):
        raise translate(answer) from answer
    return answer


def _scan_step(reply: Reply) -> tuple[str, list[str]]:
    if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], list):
        raise ScriptReplyError(f"unexpected SCAN reply: {reply!r:.200}")
    return str(reply[0]), [str(key) for key in reply[1]]


def _loads(calls: Sequence[ScriptInvocation], missing: list[int]) -> list[Command]:
    scripts: dict[str, Script] = {calls[i].script.sha: calls[i].script for i in missing}
    return [("SCRIPT", "LOAD", script.source) for script in scripts.values()]


class ExchangeBackend:
    """:class:`jqc.backends.base.SyncBackend` over a :class:`SyncTransport`."""

    def __init__(self, transport: SyncTransport) -> None:
        self.transport = transport

    def _exchange(self, commands: list[Command]) -> list[Answer]:
        try:
            return self.transport.exchange(commands)
        except CLIENT_ERRORS as exc:
            raise translate(exc) from exc

    def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        """Run ``script`` by SHA, loading it first if the server does not know it."""
        return _reply(self.run_batch([ScriptInvocation(script, tuple(keys), tuple(args))])[0])

    def run_command(self, *args: Arg) -> Reply:
        """One command, its raw reply."""
        return _reply(self._exchange([args])[0])

    def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        """A blocking command, its raw reply (the transport reads it under a deadline longer than ``timeout``)."""
        try:
            return _reply(self.transport.blocking(args, timeout))
        except CLIENT_ERRORS as exc:
            raise translate(exc) from exc

    def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        """Every call sent in one write; NOSCRIPT calls (which did not run) are sent again once loaded."""
        answers = self._exchange([_evalsha(call) for call in calls])
        missing = _unloaded(answers)
        if missing:
            for answer in self._exchange(_loads(calls, missing)):
                _reply(answer)
            for i, answer in zip(missing, self._exchange([_evalsha(calls[i]) for i in missing]), strict=True):
                answers[i] = answer
        return [_outcome(answer) for answer in answers]

    def scan(self, match: str, *, count: int = 1000) -> Iterator[str]:
        """Keys matching ``match`` (a key may come more than once, as SCAN allows)."""
        cursor = "0"
        while True:
            cursor, keys = _scan_step(self.run_command("SCAN", cursor, "MATCH", match, "COUNT", count))
            yield from keys
            if cursor == "0":
                return

    def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        """One server: its reply under its address."""
        return {self.transport.address: self.run_command(*args)}

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()


class AsyncExchangeBackend:
    """:class:`jqc.backends.base.AsyncBackend` over an :class:`AsyncTransport`.

    ``deadline`` (seconds of real time, None for none) bounds every exchange as a whole, whatever
    it is doing (connecting, checking a pooled connection, writing, reading): past it the exchange
    is abandoned (cancelling it drops the connection it used, which the next call rebuilds) and
    :class:`jqc.CallTimeoutError` is raised. It is a backstop behind the client's own read and
    connect timeouts, so a call can never hang however a connection or the client misbehaves.
    """

    #: Extra seconds a blocking command may take beyond its own timeout before it counts as hung.
    BLOCK_MARGIN = 1.0

    def __init__(self, transport: AsyncTransport, *, deadline: float | None = None) -> None:
        self.transport = transport
        self.deadline = deadline

    async def _exchange(self, commands: list[Command]) -> list[Answer]:
        if self.deadline is None:
            try:
                return await self.transport.exchange(commands)
            except CLIENT_ERRORS as exc:
                raise translate(exc) from exc
        bound = asyncio.timeout(self.deadline)
        try:
            async with bound:
                return await self.transport.exchange(commands)
        except TimeoutError as exc:
            if bound.expired():
                raise CallTimeoutError(
                    f"a call to Redis got no answer within its deadline of {self.deadline:.1f} s; "
                    "it was abandoned and its connection dropped"
                ) from None
            raise translate(exc) from exc
        except CLIENT_ERRORS as exc:
            raise translate(exc) from exc

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        """As :meth:`ExchangeBackend.run_script`."""
        return _reply((await self.run_batch([ScriptInvocation(script, tuple(keys), tuple(args))]))[0])

    async def run_command(self, *args: Arg) -> Reply:
        """As :meth:`ExchangeBackend.run_command`."""
        return _reply((await self._exchange([args]))[0])

    async def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        """As :meth:`ExchangeBackend.run_batch`."""
        answers = await self._exchange([_evalsha(call) for call in calls])
        missing = _unloaded(answers)
        if missing:
            for answer in await self._exchange(_loads(calls, missing)):
                _reply(answer)
            again = await self._exchange([_evalsha(calls[i]) for i in missing])
            for i, answer in zip(missing, again, strict=True):
                answers[i] = answer
        return [_outcome(answer) for answer in answers]

    async def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        """A blocking command under a deadline of ``timeout`` plus a margin (real time: it is I/O)."""
        deadline = timeout + self.BLOCK_MARGIN + 0.1 * timeout
        try:
            return await asyncio.wait_for(self.transport.blocking(args, timeout), deadline)
        except TimeoutError:
            raise CallTimeoutError(
                f"a blocking {args[0]} got no answer within {deadline:.1f} s; the connection was dropped"
            ) from None
        except JqcError:
            raise
        except CLIENT_ERRORS as exc:
            raise translate(exc) from exc

    async def scan(self, match: str, *, count: int = 1000) -> AsyncIterator[str]:
        """As :meth:`ExchangeBackend.scan`."""
        cursor = "0"
        while True:
            cursor, keys = _scan_step(await self.run_command("SCAN", cursor, "MATCH", match, "COUNT", count))
            for key in keys:
                yield key
            if cursor == "0":
                return

    async def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        """As :meth:`ExchangeBackend.run_on_each_server`."""
        return {self.transport.address: await self.run_command(*args)}

    async def aclose(self) -> None:
        """Close the transport."""
        await self.transport.aclose()
