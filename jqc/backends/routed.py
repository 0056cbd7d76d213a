"""The backends of deployments of several servers (Redis Cluster, Sentinel), sync and asyncio.

Every call is planned once, as a generator (:func:`_plan_calls`, :func:`_plan_each_master`) that
yields what it needs done (send commands to a node, re-read the topology, back off, hand keys to
the caller) and decides from each answer what comes next (:func:`jqc.backends.routing.judge`).
:class:`RoutedBackend` and :class:`AsyncRoutedBackend` only carry those requests out, so the
two cannot behave differently. A router (:mod:`jqc.backends.cluster`,
:mod:`jqc.backends.sentinel`) says which node serves a slot and which nodes are masters; each node
is reached through the same transports as a single server (:mod:`jqc.backends.server`), so
timeouts, keepalive, TLS checks and its diagnostics are the same.

Batches: the calls of a batch are grouped by node, each group pipelined in one round trip (the
keys of one queue share its hash tag, hence its slot and node). A call redirected or refused for
now is sent again after the others of its round, so calls that had to wait may run after later
calls of the same batch; each still runs once, atomically.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from jqc.backends.base import Arg, Outcome, Reply, Script, ScriptInvocation
from jqc.backends.exchange import Answer, Command
from jqc.backends.plans import (
    AsyncRouter,
    Call,
    Emit,
    Plan,
    Refresh,
    Request,
    Router,
    Send,
    Sleep,
    command_calls,
    node_config,
    outcome,
    plan_calls,
    plan_each_master,
    reply_of,
    script_call,
    summed,
)
from jqc.backends.refusals import CLIENT_ERRORS
from jqc.backends.resp import RespClient
from jqc.backends.routing import command_slot
from jqc.backends.server import ConnectHook, _AsyncTransport, _ThreadTransport
from jqc.backends.tls import tls_context
from jqc.backends.url import ServerConfig
from jqc.errors import CallTimeoutError, JqcError

__all__ = ["AsyncRoutedBackend", "RoutedBackend"]

# What a send may raise: a client's error, or a typed one a transport already diagnosed (TLS).
_SEND_ERRORS: tuple[type[BaseException], ...] = (*CLIENT_ERRORS, JqcError)


def _wait(config: ServerConfig) -> tuple[int, int] | None:
    """``WAIT``'s arguments after adds, or None when no replica acknowledgement is asked for."""
    return (config.wait_replicas, round(config.wait_timeout * 1000)) if config.wait_replicas else None


# -- the sync backend --------------------------------------------------------------------------


class RoutedBackend:
    """:class:`jqc.backends.base.SyncBackend` over a :class:`Router` and one transport per node.

    ``sleep`` waits between tries of a call the deployment cannot serve yet (real time by
    default: it waits for servers); ``failover_timeout`` of the configuration bounds their sum.
    ``monotonic`` measures how long a script waited before it is sent again, to move its "now"
    argument forward by as much (:func:`jqc.backends.plans.restamped`).
    """

    def __init__(
        self,
        config: ServerConfig,
        router: Callable[[Callable[[str, list[Command]], list[Answer]]], Router],
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_connect: Callable[[RespClient], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._monotonic = monotonic
        self._on_connect = on_connect
        self._tls = tls_context(config.tls) if config.tls is not None else None
        self._nodes: dict[str, _ThreadTransport] = {}
        self.router = router(self.send)  # (made with the function that reaches a node, to read the topology)

    def send(self, address: str, commands: list[Command]) -> list[Answer]:
        """Exchange ``commands`` with one node (raises what the transport raises)."""
        return self.node(address).exchange(commands)

    def node(self, address: str) -> _ThreadTransport:
        """The transport of one node (made on first use)."""
        transport = self._nodes.get(address)
        if transport is None:
            transport = self._nodes.setdefault(
                address,
                _ThreadTransport(
                    node_config(self.config, address), self._tls, check_stale=True, on_connect=self._on_connect
                ),
            )
        return transport

    def _drive(self, plan: Plan) -> Any:
        try:
            request = next(plan)
            while True:
                request = plan.send(self._do(request))
        except StopIteration as stop:
            return stop.value

    def _do(self, request: Request) -> Any:
        if isinstance(request, Send):
            try:
                if request.block is not None:
                    return [self.node(request.address).blocking(request.commands[0], request.block)]
                return self.send(request.address, list(request.commands))
            except _SEND_ERRORS as exc:
                return exc
        if isinstance(request, Refresh):
            try:
                self.router.refresh()
            except CLIENT_ERRORS as exc:
                return exc
            return None
        if isinstance(request, Sleep):
            self._sleep(request.seconds)
        return None

    def _calls(self, calls: list[Call]) -> list[Answer]:
        plan = plan_calls(self.router, calls, self.config.failover_timeout, _wait(self.config), self._monotonic)
        answers: list[Answer] = self._drive(plan)
        return answers

    def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        """Run ``script`` on the master of its keys' slot."""
        return reply_of(self._calls([script_call(ScriptInvocation(script, tuple(keys), tuple(args)))])[0])

    def run_command(self, *args: Arg) -> Reply:
        """One command on the master of its key's slot (a multi-key delete split by slot)."""
        return summed(self._calls(command_calls(args)))

    def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        """The calls grouped by node, one pipelined round trip per node."""
        return [outcome(answer) for answer in self._calls([script_call(call) for call in calls])]

    def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        """A blocking read on the master of its key's slot, its reply read under its own deadline."""
        plan = plan_calls(self.router, [Call(args, command_slot(args))], self.config.failover_timeout)
        try:
            request = next(plan)
            while True:
                if isinstance(request, Send) and request.commands == (args,):
                    request = replace(request, block=timeout)
                request = plan.send(self._do(request))
        except StopIteration as stop:
            return reply_of(stop.value[0])

    def scan(self, match: str, *, count: int = 1000) -> Iterator[str]:
        """Keys matching ``match`` on every master."""
        plan = plan_each_master(self.router, None, match, count, self.config.failover_timeout)
        try:
            request = next(plan)
            while True:
                if isinstance(request, Emit):
                    yield from request.keys
                    request = plan.send(None)
                else:
                    request = plan.send(self._do(request))
        except StopIteration:
            return

    def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        """``args`` on every master; replies by ``host:port``."""
        result: dict[str, Reply] = self._drive(
            plan_each_master(self.router, lambda _: args, None, 0, self.config.failover_timeout)
        )
        return result

    def close(self) -> None:
        """Close every node's connections and the router's."""
        nodes, self._nodes = self._nodes, {}
        for transport in nodes.values():
            transport.close()
        self.router.close()


# -- the asyncio backend -----------------------------------------------------------------------


class AsyncRoutedBackend:
    """:class:`jqc.backends.base.AsyncBackend` over an :class:`AsyncRouter`; as :class:`RoutedBackend`.

    Every exchange with a node has the deadline of the configuration (``call_deadline``), as on
    a single server; blocking reads get their block plus a margin.
    """

    BLOCK_MARGIN = 1.0

    def __init__(
        self,
        config: ServerConfig,
        router: Callable[[Callable[[str, list[Command]], Awaitable[list[Answer]]]], AsyncRouter],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_connect: ConnectHook | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._monotonic = monotonic
        self._on_connect = on_connect
        self._nodes: dict[str, _AsyncTransport] = {}
        self._refreshing: asyncio.Lock | None = None
        self.router = router(self.send)

    async def send(self, address: str, commands: list[Command]) -> list[Answer]:
        """Exchange ``commands`` with one node, under the call deadline (raises what the transport raises)."""
        return await self._exchange(Send(address, tuple(commands)))

    def node(self, address: str) -> _AsyncTransport:
        """The transport of one node (made on first use)."""
        transport = self._nodes.get(address)
        if transport is None:
            transport = self._nodes[address] = _AsyncTransport(
                node_config(self.config, address), on_connect=self._on_connect
            )
        return transport

    async def _drive(self, plan: Plan) -> Any:
        try:
            request = next(plan)
            while True:
                request = plan.send(await self._do(request))
        except StopIteration as stop:
            return stop.value

    async def _exchange(self, request: Send) -> list[Answer]:
        transport = self.node(request.address)
        if request.block is not None:
            deadline = request.block + self.BLOCK_MARGIN + 0.1 * request.block
            try:
                return [await asyncio.wait_for(transport.blocking(request.commands[0], request.block), deadline)]
            except TimeoutError:
                raise CallTimeoutError(
                    f"a blocking {request.commands[0][0]} got no answer within {deadline:.1f} s; "
                    "the connection was dropped"
                ) from None
            except CLIENT_ERRORS as exc:
                return [exc]
        if self.config.call_deadline is None:
            return await transport.exchange(list(request.commands))
        bound = asyncio.timeout(self.config.call_deadline)
        try:
            async with bound:
                return await transport.exchange(list(request.commands))
        except TimeoutError:
            if bound.expired():
                raise CallTimeoutError(
                    f"a call to Redis at {request.address} got no answer within its deadline of "
                    f"{self.config.call_deadline:.1f} s; it was abandoned and its connection dropped"
                ) from None
            raise

    async def _do(self, request: Request) -> Any:
        if isinstance(request, Send):
            try:
                return await self._exchange(request)
            except _SEND_ERRORS as exc:
                return exc
        if isinstance(request, Refresh):
            if self._refreshing is None:
                self._refreshing = asyncio.Lock()
            async with self._refreshing:  # one refresh at a time; the others find it done
                if self.router.stale:
                    try:
                        await self.router.refresh()
                    except CLIENT_ERRORS as exc:
                        return exc
            return None
        if isinstance(request, Sleep):
            await self._sleep(request.seconds)
        return None

    async def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Arg]) -> Reply:
        """As :meth:`RoutedBackend.run_script`."""
        call = script_call(ScriptInvocation(script, tuple(keys), tuple(args)))
        plan = plan_calls(self.router, [call], self.config.failover_timeout, _wait(self.config), self._monotonic)
        return reply_of((await self._drive(plan))[0])

    async def run_command(self, *args: Arg) -> Reply:
        """As :meth:`RoutedBackend.run_command`."""
        return summed(await self._drive(plan_calls(self.router, command_calls(args), self.config.failover_timeout)))

    async def run_batch(self, calls: Sequence[ScriptInvocation]) -> list[Outcome]:
        """As :meth:`RoutedBackend.run_batch`."""
        planned = [script_call(call) for call in calls]
        plan = plan_calls(self.router, planned, self.config.failover_timeout, _wait(self.config), self._monotonic)
        answers = await self._drive(plan)
        return [outcome(answer) for answer in answers]

    async def run_blocking(self, *args: Arg, timeout: float) -> Reply:
        """A blocking read on the master of its key's slot, with its own deadline."""
        plan = plan_calls(self.router, [Call(args, command_slot(args))], self.config.failover_timeout)
        try:
            request = next(plan)
            while True:
                if isinstance(request, Send) and request.commands == (args,):
                    request = replace(request, block=timeout)
                request = plan.send(await self._do(request))
        except StopIteration as stop:
            return reply_of(stop.value[0])

    async def scan(self, match: str, *, count: int = 1000) -> AsyncIterator[str]:
        """As :meth:`RoutedBackend.scan`."""
        plan = plan_each_master(self.router, None, match, count, self.config.failover_timeout)
        try:
            request = next(plan)
            while True:
                if isinstance(request, Emit):
                    for key in request.keys:
                        yield key
                    request = plan.send(None)
                else:
                    request = plan.send(await self._do(request))
        except StopIteration:
            return

    async def run_on_each_server(self, *args: Arg) -> dict[str, Reply]:
        """As :meth:`RoutedBackend.run_on_each_server`."""
        plan = plan_each_master(self.router, lambda _: args, None, 0, self.config.failover_timeout)
        result: dict[str, Reply] = await self._drive(plan)
        return result

    async def aclose(self) -> None:
        """Close every node's connections and the router's."""
        nodes, self._nodes = self._nodes, {}
        for transport in nodes.values():
            await transport.aclose()
        await self.router.aclose()
