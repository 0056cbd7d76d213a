"""A script the Cluster or Sentinel backend sends again (it did not run: a redirection, TRYAGAIN, a
failover wait) runs with its "now" argument moved forward by the time it waited, so a claim's lock,
a delay's due time or a lease expiry count from when the script runs, not from before the failover.
Scripted nodes (no server), as in test_routing.py."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.exceptions as rex

from jqc.backends import parse_url
from jqc.backends.plans import Call, restamped
from jqc.backends.routed import AsyncRoutedBackend, RoutedBackend
from jqc.backends.routing import TopologyUnknownError
from tests.backends.test_routing import KEY, SCRIPT, SLOT, Node, Router, ok, sequence

NOW = 1_700_000_000_000  # ms, the stamp the engine computed before the first send


def _stamps(node: Node) -> list[Any]:
    return [command[4] for command in node.sent if command[0] == "EVALSHA"]  # (ARGV[1] after one key)


def test_a_script_retried_after_waits_runs_with_its_now_moved_by_the_wait() -> None:
    config = parse_url("redis+cluster://a:1", {"failover_timeout": 5})
    clock = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds + 0.5  # (the wait, plus the time the refused round trips took)

    router = Router()
    backend = RoutedBackend(config, lambda _s: router, sleep=sleep, monotonic=lambda: clock[0])  # type: ignore[arg-type,return-value]
    refused = rex.ResponseError("TRYAGAIN Multiple keys request during rehashing")
    node = Node("a:1", sequence(refused, rex.ResponseError("CLUSTERDOWN The cluster is down")))
    backend.node = {"a:1": node}.__getitem__  # type: ignore[method-assign,assignment]
    assert backend.run_script(SCRIPT, [KEY], [NOW, 10, 30_000]) == 1
    first, second = sleeps
    assert _stamps(node) == [NOW, NOW + round((first + 0.5) * 1000), NOW + round((first + second + 1.0) * 1000)]
    assert [command[5:] for command in node.sent] == [(10, 30_000)] * 3  # (nothing else changes)


def test_the_asyncio_backend_moves_it_the_same_way() -> None:
    config = parse_url("redis+cluster://a:1", {"failover_timeout": 5})
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    class AsyncRouter(Router):
        async def refresh(self) -> None:  # type: ignore[override]
            Router.refresh(self)

    router = AsyncRouter()
    backend = AsyncRoutedBackend(config, lambda _s: router, sleep=sleep, monotonic=lambda: clock[0])  # type: ignore[arg-type,return-value]
    node = Node("a:1", sequence(rex.ResponseError("TRYAGAIN Multiple keys request during rehashing")))

    async def exchange(request: Any) -> list[Any]:
        return node.exchange(list(request.commands))

    backend._exchange = exchange  # type: ignore[method-assign]
    assert asyncio.run(backend.run_script(SCRIPT, [KEY], [NOW, 10])) == 1
    assert _stamps(node) == [NOW, NOW + 50]


def test_a_script_that_did_not_wait_keeps_its_now_exactly_and_commands_are_never_touched() -> None:
    call = Call(("EVALSHA", SCRIPT.sha, 1, KEY, NOW, 10), SLOT, script=SCRIPT, resendable=False)
    assert restamped(call, 7.0, waited=False) == call.command  # the first send
    assert restamped(call, 7.003, waited=False) == call.command  # sent again at once (MOVED, ASK): exact
    assert restamped(call, 7.25)[4] == NOW + 250  # after a wait
    plain = Call(("HSET", KEY, "f", 1), SLOT)
    assert restamped(plain, 1.0) == restamped(plain, 9.0) == plain.command
    assert ok(("EVALSHA",)) == 1


def test_a_script_that_waited_for_the_topology_before_its_first_send_is_moved_too() -> None:
    config = parse_url("redis+cluster://a:1", {"failover_timeout": 5})
    clock = [0.0]

    class Unknown(Router):
        def refresh(self) -> None:
            super().refresh()
            if self.refreshes == 1:
                self.stale = True
                raise TopologyUnknownError("no node of the cluster told its slots")

    router = Unknown()
    backend = RoutedBackend(config, lambda _s: router, sleep=lambda s: clock.__setitem__(0, clock[0] + s),  # type: ignore[arg-type,return-value]
                            monotonic=lambda: clock[0])  # fmt: skip
    node = Node("a:1", ok)
    backend.node = {"a:1": node}.__getitem__  # type: ignore[method-assign,assignment]
    assert backend.run_script(SCRIPT, [KEY], [NOW, 10]) == 1
    assert _stamps(node) == [NOW + 50]  # (sent once, after one 50 ms wait)
