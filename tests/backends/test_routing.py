"""What the Cluster and Sentinel backends do with each answer, checked against scripted nodes (no
server): redirections followed, passing refusals retried with a bounded backoff, a script never sent
twice behind the caller's back, scripts loaded per node, batches grouped by node, SCAN on every master.

The real topologies are exercised in test_cluster.py and test_sentinel.py; here every answer is chosen.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import redis.exceptions as rex
from redis.crc import key_slot

import jqc
from jqc.backends import parse_url
from jqc.backends.base import Script, ScriptInvocation
from jqc.backends.resp import NotConnectedError
from jqc.backends.routed import AsyncRoutedBackend, RoutedBackend
from jqc.backends.routing import FIRST_BACKOFF, MAX_REDIRECTS, backoff, command_slot, split_by_slot

SOURCE = "return 1"
SCRIPT = Script("t", SOURCE, hashlib.sha1(SOURCE.encode()).hexdigest())
KEY = "p:{q}:meta"
SLOT = key_slot(KEY.encode())

Answerer = Callable[[tuple[Any, ...]], Any]


class Router:
    """Routes every slot to ``default`` unless told otherwise; counts refreshes."""

    def __init__(self, default: str = "a:1", masters: tuple[str, ...] = ("a:1", "b:2")) -> None:
        self.stale = True
        self.default = default
        self.routes: dict[int, str] = {}
        self.master_list = list(masters)
        self.refreshes = 0
        self.moves: list[tuple[int, str]] = []
        self.after_refresh: str | None = None

    def address(self, slot: int | None) -> str:
        return self.routes.get(slot, self.default) if slot is not None else self.master_list[0]

    def masters(self) -> list[str]:
        return list(self.master_list)

    def moved(self, slot: int, address: str) -> None:
        self.moves.append((slot, address))
        self.routes[slot] = address

    def refresh(self) -> None:
        self.refreshes += 1
        self.stale = False
        if self.after_refresh is not None and self.refreshes > 1:
            self.default = self.after_refresh

    async def arefresh(self) -> None:
        self.refresh()

    def close(self) -> None:
        pass


class Node:
    """A node whose answers ``answer(command)`` picks; records what it was sent."""

    def __init__(self, address: str, answer: Answerer) -> None:
        self.address = address
        self.answer = answer
        self.sent: list[tuple[Any, ...]] = []
        self.exchanges = 0

    def exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.exchanges += 1
        out = []
        for command in commands:
            self.sent.append(command)
            reply = self.answer(command)
            if isinstance(reply, BaseException) and isinstance(reply, (rex.ConnectionError, rex.TimeoutError)):
                if not out:
                    raise reply
                out += [reply] * (len(commands) - len(out))
                return out
            out.append(reply)
        return out

    def close(self) -> None:
        pass


def ok(command: tuple[Any, ...]) -> Any:
    name = str(command[0]).upper()
    if name == "SCRIPT":
        return SCRIPT.sha
    return "OK" if name == "ASKING" else 1


def sequence(*answers: Any, then: Answerer = ok) -> Answerer:
    """Answers ``answers`` to the first calls (ASKING and SCRIPT LOAD aside), then ``then``."""
    left = list(answers)

    def answer(command: tuple[Any, ...]) -> Any:
        if str(command[0]).upper() in ("ASKING", "SCRIPT"):
            return ok(command)
        return left.pop(0) if left else then(command)

    return answer


def make(
    nodes: dict[str, Answerer], *, router: Router | None = None, budget: float = 1.0
) -> tuple[RoutedBackend, Router, dict[str, Node], list[float]]:
    config = parse_url("redis+cluster://a:1", {"failover_timeout": budget})
    router = router or Router()
    sleeps: list[float] = []
    backend = RoutedBackend(config, lambda _send: router, sleep=sleeps.append)  # type: ignore[arg-type,return-value]
    made = {address: Node(address, answer) for address, answer in nodes.items()}
    backend.node = made.__getitem__  # type: ignore[method-assign]
    return backend, router, made, sleeps


def test_moved_teaches_the_router_and_sends_the_call_to_the_new_node() -> None:
    backend, router, nodes, sleeps = make({"a:1": sequence(rex.ResponseError(f"MOVED {SLOT} b:2")), "b:2": ok})
    assert backend.run_script(SCRIPT, [KEY], []) == 1
    assert router.moves == [(SLOT, "b:2")] and sleeps == []
    assert backend.run_script(SCRIPT, [KEY], []) == 1  # the next call goes straight to b
    assert len(nodes["a:1"].sent) == 1 and len(nodes["b:2"].sent) == 2


def test_ask_sends_the_call_once_to_the_importing_node_with_asking() -> None:
    backend, router, nodes, _ = make({"a:1": sequence(rex.ResponseError(f"ASK {SLOT} b:2")), "b:2": ok})
    assert backend.run_command("HGET", KEY, "x") == 1
    assert nodes["b:2"].sent == [("ASKING",), ("HGET", KEY, "x")]
    assert router.moves == []  # ASK is for one call only
    backend.run_command("HGET", KEY, "x")
    assert len(nodes["a:1"].sent) == 2


def test_a_redirect_loop_ends_as_a_typed_error() -> None:
    loop = lambda _command: rex.ResponseError(f"MOVED {SLOT} a:1")  # noqa: E731
    backend, _router, nodes, _ = make({"a:1": loop})
    with pytest.raises(jqc.ClusterRedirectError, match="MOVED"):
        backend.run_script(SCRIPT, [KEY], [])
    assert len(nodes["a:1"].sent) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("code", ["TRYAGAIN Multiple keys request during rehashing", "CLUSTERDOWN The cluster is down",
                                  "LOADING Redis is loading", "MASTERDOWN Link with MASTER is down"])  # fmt: skip
def test_passing_refusals_are_retried_with_a_doubling_backoff(code: str) -> None:
    backend, router, _nodes, sleeps = make({"a:1": sequence(rex.ResponseError(code), rex.ResponseError(code))})
    assert backend.run_script(SCRIPT, [KEY], []) == 1
    assert sleeps == [FIRST_BACKOFF, 2 * FIRST_BACKOFF]
    assert router.refreshes == 3  # the first call's, then once before each new try


def test_a_refusal_that_lasts_gives_up_after_failover_timeout_with_its_typed_error() -> None:
    down = lambda _command: rex.ResponseError("CLUSTERDOWN The cluster is down")  # noqa: E731
    backend, _, nodes, sleeps = make({"a:1": down}, budget=1.0)
    with pytest.raises(jqc.ClusterDownError, match="failover_timeout") as info:
        backend.run_script(SCRIPT, [KEY], [])
    assert info.value.retryable
    assert sum(sleeps) <= 1.0 and sum(sleeps) + backoff(len(sleeps) + 1) > 1.0
    assert len(nodes["a:1"].sent) == len(sleeps) + 1


def test_readonly_from_a_demoted_master_finds_the_new_master() -> None:
    router = Router()
    router.after_refresh = "b:2"
    backend, _, nodes, sleeps = make(
        {"a:1": lambda _c: rex.ReadOnlyError("You can't write against a read only replica."), "b:2": ok}, router=router
    )
    assert backend.run_script(SCRIPT, [KEY], []) == 1
    assert len(nodes["a:1"].sent) == 1 and nodes["b:2"].sent[-1][0] == "EVALSHA" and sleeps == [FIRST_BACKOFF]


def test_a_script_whose_connection_broke_in_flight_is_not_sent_again() -> None:
    backend, router, nodes, sleeps = make({"a:1": sequence(rex.ConnectionError("Redis closed the connection"))})
    router.stale = False
    with pytest.raises(jqc.ConnectionLostError):
        backend.run_script(SCRIPT, [KEY], [])
    assert len(nodes["a:1"].sent) == 1 and sleeps == []  # it may have run: never twice
    assert router.stale  # the next call reads the topology first
    assert backend.run_script(SCRIPT, [KEY], []) == 1 and router.refreshes == 1


def test_a_script_that_could_not_be_sent_is_sent_again() -> None:
    backend, _, nodes, sleeps = make({"a:1": sequence(NotConnectedError("cannot connect to Redis: refused"))})
    assert backend.run_script(SCRIPT, [KEY], []) == 1
    assert sleeps == [FIRST_BACKOFF] and len(nodes["a:1"].sent) == 2


def test_a_plain_command_is_sent_again_after_a_lost_connection() -> None:
    backend, _, nodes, _ = make({"a:1": sequence(rex.ConnectionError("Redis closed the connection"))})
    assert backend.run_command("HGETALL", KEY) == 1
    assert len(nodes["a:1"].sent) == 2


def test_noscript_loads_the_script_on_that_node_and_runs_it_there() -> None:
    backend, _, nodes, sleeps = make({"a:1": sequence(rex.NoScriptError("NOSCRIPT No matching script."))})
    assert backend.run_script(SCRIPT, [KEY], ["x"]) == 1
    evalsha = ("EVALSHA", SCRIPT.sha, 1, KEY, "x")
    assert nodes["a:1"].sent == [evalsha, ("SCRIPT", "LOAD", SOURCE), evalsha] and sleeps == []


def test_a_script_the_node_still_does_not_know_after_loading_is_a_typed_error() -> None:
    backend, _, _, _ = make({"a:1": lambda c: ok(c) if c[0] == "SCRIPT" else rex.NoScriptError("NOSCRIPT none")})
    with pytest.raises(jqc.ScriptReplyError, match="NOSCRIPT"):
        backend.run_script(SCRIPT, [KEY], [])


def test_a_batch_is_grouped_by_node_and_answers_in_order() -> None:
    keys = ["p:{a}:meta", "p:{b}:meta", "p:{c}:meta", "p:{d}:meta"]
    router = Router()
    router.routes = {key_slot(keys[1].encode()): "b:2", key_slot(keys[3].encode()): "b:2"}

    def answer(command: tuple[Any, ...]) -> Any:
        return rex.ResponseError("ERR boom") if command[3] == keys[2] else command[3]

    backend, _, nodes, _ = make({"a:1": answer, "b:2": answer}, router=router)
    outcomes = backend.run_batch([ScriptInvocation(SCRIPT, (key,), ()) for key in keys])
    assert outcomes[:2] == keys[:2] and outcomes[3] == keys[3]
    assert isinstance(outcomes[2], jqc.ScriptReplyError)  # one failing call stops no other
    assert (nodes["a:1"].exchanges, nodes["b:2"].exchanges) == (1, 1)  # one round trip per node


def test_a_delete_of_keys_in_several_slots_is_split_by_slot_and_summed() -> None:
    keys = [f"p:{{q{i}}}:meta" for i in range(6)]
    assert split_by_slot(("UNLINK", *keys)) is not None
    assert split_by_slot(("UNLINK", "p:{q}:a", "p:{q}:b")) is None  # one slot: one command
    backend, _, nodes, _ = make({"a:1": lambda c: len(c) - 1})
    assert backend.run_command("UNLINK", *keys) == 6
    assert sorted(k for sent in nodes["a:1"].sent for k in sent[1:]) == sorted(keys)


def test_commands_route_by_their_key() -> None:
    assert command_slot(("EVALSHA", "x", 2, KEY, "other", "arg")) == SLOT
    assert command_slot(("XREAD", "COUNT", 5, "BLOCK", 10, "STREAMS", KEY, "0")) == SLOT
    assert command_slot(("HGETALL", KEY)) == SLOT
    assert command_slot(("PING",)) is None and command_slot(("SCAN", "0", "MATCH", "*")) is None


def test_scan_covers_every_master_and_starts_again_after_a_failover() -> None:
    pages = {"a:1": [["5", ["k1"]], ["0", ["k2"]]], "b:2": [["0", ["k3"]]]}
    failed: list[bool] = []

    def scanner(address: str) -> Answerer:
        def answer(command: tuple[Any, ...]) -> Any:
            if command[0] == "DBSIZE":
                return len(pages[address])
            if address == "b:2" and not failed:
                failed.append(True)
                return NotConnectedError("cannot connect to Redis: refused")
            page = pages[address][0 if command[1] == "0" else 1]
            return page

        return answer

    backend, router, _, sleeps = make({"a:1": scanner("a:1"), "b:2": scanner("b:2")})
    keys = list(backend.scan("*"))
    assert set(keys) == {"k1", "k2", "k3"} and sleeps == [FIRST_BACKOFF] and router.refreshes == 2
    assert backend.run_on_each_server("DBSIZE") == {"a:1": 2, "b:2": 1}


def test_the_asyncio_backend_follows_the_same_plan() -> None:
    config = parse_url("redis+cluster://a:1", {"failover_timeout": 1.0})
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    class AsyncRouter(Router):
        async def refresh(self) -> None:  # type: ignore[override]
            Router.refresh(self)

        async def aclose(self) -> None:
            pass

    arouter = AsyncRouter()
    backend = AsyncRoutedBackend(config, lambda _send: arouter, sleep=sleep)  # type: ignore[arg-type,return-value]
    a = Node("a:1", sequence(rex.ResponseError(f"MOVED {SLOT} b:2")))
    b = Node("b:2", sequence(rex.ResponseError("TRYAGAIN rehashing")))

    class Async:
        def __init__(self, node: Node) -> None:
            self.node = node
            self.address = node.address

        async def exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
            return self.node.exchange(commands)

        async def blocking(self, command: tuple[Any, ...], timeout: float) -> Any:
            reply = self.node.exchange([command])[0]
            if isinstance(reply, BaseException):
                raise reply
            return reply

        async def aclose(self) -> None:
            pass

    transports = {"a:1": Async(a), "b:2": Async(b)}
    backend.node = transports.__getitem__  # type: ignore[assignment,method-assign]

    async def run() -> None:
        assert await backend.run_script(SCRIPT, [KEY], []) == 1
        assert arouter.moves == [(SLOT, "b:2")] and sleeps == [FIRST_BACKOFF]
        assert await backend.run_blocking("XREAD", "BLOCK", 10, "STREAMS", KEY, "0", timeout=0.01) == 1
        assert b.sent[-1][0] == "XREAD"  # a blocking read goes to its key's node too
        with pytest.raises(jqc.ScriptReplyError, match="SCAN"):  # a node answering 1 to SCAN is refused
            [key async for key in backend.scan("*")]

    asyncio.run(run())


ADD = Script("add", "return 2", hashlib.sha1(b"return 2").hexdigest())


def test_with_wait_replicas_a_round_that_adds_ends_with_wait_on_the_same_connection() -> None:
    config = parse_url("redis+cluster://a:1", {"wait_replicas": 2, "wait_timeout": 0.25})
    router = Router()
    backend = RoutedBackend(config, lambda _send: router, sleep=lambda _s: None)  # type: ignore[arg-type,return-value]
    node = Node("a:1", lambda c: 1 if c[0] == "WAIT" else "added")
    backend.node = {"a:1": node}.__getitem__  # type: ignore[method-assign,assignment]
    assert backend.run_script(SCRIPT, [KEY], []) == "added" and node.sent[-1][0] == "EVALSHA"  # not an add
    outcomes = backend.run_batch([ScriptInvocation(ADD, (KEY,), ()), ScriptInvocation(SCRIPT, (KEY,), ())])
    assert node.sent[-3:] == [("EVALSHA", ADD.sha, 1, KEY), ("EVALSHA", SCRIPT.sha, 1, KEY), ("WAIT", 2, 250)]
    assert node.exchanges == 2  # the WAIT went with the batch, on its connection
    refused, other = outcomes
    assert isinstance(refused, jqc.NotReplicatedError) and other == "added"
    assert (refused.acknowledged, refused.wanted, refused.reply) == (1, 2, "added")
    assert "only 1 of 2 replicas" in str(refused) and not refused.retryable


def test_enough_acknowledgements_let_the_add_answer_as_usual() -> None:
    config = parse_url("redis+cluster://a:1", {"wait_replicas": 1})
    router = Router()
    backend = RoutedBackend(config, lambda _send: router, sleep=lambda _s: None)  # type: ignore[arg-type,return-value]
    node = Node("a:1", lambda c: 3 if c[0] == "WAIT" else "added")
    backend.node = {"a:1": node}.__getitem__  # type: ignore[method-assign,assignment]
    assert backend.run_script(ADD, [KEY], []) == "added" and node.sent[-1] == ("WAIT", 1, 1000)
