"""How a call reaches a deployment of several servers, planned once for sync and asyncio.

A plan is a generator: it yields what it needs done (:class:`Send` commands to one node,
:class:`Refresh` the topology, :class:`Sleep` before trying again, :class:`Emit` keys to the
caller) and gets the result back; it decides from each answer what comes next
(:func:`jqc.backends.routing.judge`). The sync and asyncio backends of :mod:`jqc.backends.routed`
only carry the requests out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeAlias

import redis.exceptions as rex

from jqc.backends.base import Arg, Outcome, Reply, Script, ScriptInvocation
from jqc.backends.exchange import Answer, Command
from jqc.backends.refusals import CLIENT_ERRORS, translate
from jqc.backends.routing import MAX_REDIRECTS, Decision, Verdict, backoff, command_slot, judge, split_by_slot
from jqc.backends.url import ServerConfig
from jqc.errors import JqcError, NotReplicatedError, ScriptReplyError

__all__ = [
    "AsyncRouter",
    "Call",
    "Emit",
    "Plan",
    "Refresh",
    "Request",
    "Router",
    "Send",
    "Sleep",
    "command_calls",
    "node_config",
    "outcome",
    "plan_calls",
    "plan_each_master",
    "reply_of",
    "restamped",
    "script_call",
    "summed",
]


class _View(Protocol):
    """What a plan reads of a router (in memory, no I/O)."""

    stale: bool

    def address(self, slot: int | None) -> str:
        """The node (``host:port``) serving ``slot``, or a master for a command with no key."""
        ...

    def masters(self) -> list[str]:
        """Every master's ``host:port``."""
        ...

    def moved(self, slot: int, address: str) -> None:
        """Learn that ``slot`` is now served by ``address`` (a MOVED redirection)."""
        ...


class Router(_View, Protocol):
    """Where calls go, for sync code: re-read with :meth:`refresh` when :attr:`stale`."""

    def refresh(self) -> None:
        """Read the topology again (raises what the client raises when no node answers)."""
        ...

    def close(self) -> None:
        """Close the router's own connections."""
        ...


class AsyncRouter(_View, Protocol):
    """As :class:`Router`, for asyncio code."""

    async def refresh(self) -> None:
        """As :meth:`Router.refresh`."""
        ...

    async def aclose(self) -> None:
        """As :meth:`Router.close`."""
        ...


def node_config(config: ServerConfig, address: str) -> ServerConfig:
    """The configuration of one node (``host:port``) of ``config``'s deployment."""
    host, _, port = address.rpartition(":")
    base = config.scheme.partition("+")[0]
    return replace(config, scheme=base, host=host.strip("[]"), port=int(port), nodes=(), service=None)


# -- what a plan asks for ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    address: str
    commands: tuple[Command, ...]
    block: float | None = None  # a blocking read (one command) with this server-side timeout


@dataclass(frozen=True, slots=True)
class Refresh:
    pass


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Emit:
    keys: tuple[str, ...]


_LOST = (rex.ConnectionError, rex.TimeoutError, OSError)
Request: TypeAlias = "Send | Refresh | Sleep | Emit"
Plan: TypeAlias = Generator[Request, Any, Any]


@dataclass(slots=True)
class Call:
    command: Command
    slot: int | None
    script: Script | None = None
    resendable: bool = True
    address: str | None = None  # set by ASK (for one send) or after loading a script there
    asking: bool = False
    redirects: int = 0
    loaded: bool = False
    last: Answer = None
    planned_at: float | None = None  # (monotonic) when its plan began: its "now" was stamped just before


#: Where a script call's command holds the script's ``ARGV[1]``: every jqc script takes the
#: caller's "now" (ms) there (see :mod:`jqc.clock`).
def _now_index(command: Command) -> int | None:
    if len(command) < 3 or command[0] != "EVALSHA" or not isinstance(command[2], int):
        return None
    index = 3 + command[2]
    stamp = command[index] if index < len(command) else None
    return index if isinstance(stamp, int) and not isinstance(stamp, bool) else None


def restamped(call: Call, now: float, *, waited: bool = True) -> Command:
    """The command that sends ``call`` at monotonic time ``now``; ``waited``: its plan has slept.

    A script call sent after its plan waited (``TRYAGAIN``, a failover, a topology that could not
    be read: it did not run) gets its "now" argument moved forward by the time since its plan
    began (:attr:`Call.planned_at`, the first call to this function when unset), so that what the
    script computes from it (lock deadlines, due times, lease expiries, the stall check) is as of
    when it runs, not as of a failover ago: a claim retried 10 s late with its first stamp would
    hold its job 10 s less than asked, an expired one not at all. A call that did not wait (sent
    at once, or again at once after ``MOVED`` / ``ASK``) keeps the caller's stamp exactly, so a
    virtual clock's stamps stay exact; a virtual clock does not move while the backend waits for
    real servers, though, and then its stamp moves by the real wait.
    """
    if call.script is None:
        return call.command
    if call.planned_at is None:
        call.planned_at = now
    shift = round((now - call.planned_at) * 1000) if waited else 0
    index = _now_index(call.command) if shift > 0 else None
    if index is None:
        return call.command
    first = call.command[index]
    assert isinstance(first, int)
    return (*call.command[:index], first + shift, *call.command[index + 1 :])


def script_call(inv: ScriptInvocation) -> Call:
    command: Command = ("EVALSHA", inv.script.sha, len(inv.keys), *inv.keys, *inv.args)
    slot = command_slot(command)
    return Call(command, slot, script=inv.script, resendable=False)


def _gave_up(answer: Answer, tries: int, slept: float) -> JqcError:
    error = translate(answer) if isinstance(answer, BaseException) else ScriptReplyError(f"no answer: {answer!r}")
    try:
        return type(error)(f"{error} (still failing after {tries} tries over {slept:.1f} s: see failover_timeout)")
    except TypeError:  # pragma: no cover - every jqc error takes a message
        return error


def _refresh(view: _View) -> Generator[Request, Any, BaseException | None]:
    if not view.stale:
        return None
    failure: BaseException | None = yield Refresh()
    return failure


def plan_calls(
    view: _View,
    calls: list[Call],
    budget: float,
    wait: tuple[int, int] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Plan:
    """Send every call until each has its outcome; returns the answers, in order.

    A script sent after the plan waited has its "now" argument moved forward by the ``monotonic``
    time since the plan began (:func:`restamped`).

    With ``wait`` (replicas, timeout in ms), a round that sends an add ends with ``WAIT`` on the
    same connection, and an add that fewer replicas confirmed answers :class:`jqc.NotReplicatedError`.
    """
    pending = list(range(len(calls)))
    begun = monotonic()
    for call in calls:
        if call.planned_at is None:
            call.planned_at = begun
    tries, slept = 0, 0.0
    while pending:
        waiting: list[int] = []
        failure = yield from _refresh(view)
        if failure is not None:
            for i in pending:
                calls[i].last = failure
            waiting, pending = pending, []
        again: list[int] = []
        groups: dict[str, list[int]] = {}
        for i in pending:
            call = calls[i]
            try:
                address = call.address or view.address(call.slot)
            except CLIENT_ERRORS as exc:  # the slot is not covered (yet): wait for the topology
                call.last = exc
                waiting.append(i)
                continue
            groups.setdefault(address, []).append(i)
        for address, group in groups.items():
            commands: list[Command] = []
            sent = monotonic()
            for i in group:
                if calls[i].asking:
                    commands.append(("ASKING",))
                commands.append(restamped(calls[i], sent, waited=slept > 0))
            durable = [i for i in group if wait is not None and _durable(calls[i])]
            if durable:
                assert wait is not None
                commands.append(("WAIT", *wait))  # (covers every write of this connection so far)
            answers = yield Send(address, tuple(commands))
            if isinstance(answers, BaseException):
                answers = [answers] * len(commands)
            answers = list(answers)
            to_load: dict[str, tuple[Script, list[int]]] = {}
            for i in group:
                call = calls[i]
                if call.asking:
                    answers.pop(0)  # ASKING's own OK
                answer = answers.pop(0)
                call.asking, call.address = False, None
                _apply(view, call, i, address, answer, judge(answer, resendable=call.resendable), again, waiting)
                if call.address == address and call.script is not None and call.loaded and i in again:
                    to_load.setdefault(call.script.sha, (call.script, []))[1].append(i)
            if durable:
                assert wait is not None
                for i in durable:
                    if i not in again and i not in waiting and not isinstance(calls[i].last, BaseException):
                        calls[i].last = _replicated(calls[i].last, answers[-1], wait[0], wait[1])
            for script, loading in to_load.values():
                loaded = yield Send(address, (("SCRIPT", "LOAD", script.source),))
                error = loaded if isinstance(loaded, BaseException) else loaded[0]
                if isinstance(error, BaseException):
                    for i in loading:  # the load failed: that is their outcome
                        calls[i].last = error
                        again.remove(i)
        if waiting:
            view.stale = True
            tries += 1
            delay = backoff(tries)
            if slept + delay > budget:
                for i in waiting:
                    calls[i].last = _gave_up(calls[i].last, tries, slept)
            else:
                yield Sleep(delay)
                slept += delay
                again += waiting
        pending = sorted(again)
    return [call.last for call in calls]


#: Scripts followed by ``WAIT`` when the connection asks for it: the ones that add jobs.
DURABLE = frozenset({"add"})


def _durable(call: Call) -> bool:
    return call.script is not None and call.script.name in DURABLE


def _replicated(reply: Answer, waited: Answer, wanted: int, timeout_ms: int) -> Answer:
    """``reply`` when ``WAIT`` answered at least ``wanted`` replicas, else a NotReplicatedError."""
    if isinstance(waited, int) and not isinstance(waited, bool) and waited >= wanted:
        return reply
    if isinstance(waited, int):
        got, why = waited, f"only {waited} of {wanted} replicas acknowledged it within {timeout_ms} ms"
    else:
        got, why = 0, f"WAIT failed ({type(waited).__name__}: {waited})"
    return NotReplicatedError(
        f"the add ran on the master but {why}: it may be lost if the master fails now (wait_replicas)",
        acknowledged=got,
        wanted=wanted,
        reply=reply,
    )


def _apply(
    view: _View, call: Call, i: int, address: str, answer: Answer, decision: Decision, again: list[int],
    waiting: list[int],
) -> None:  # fmt: skip
    """Record ``decision`` about ``call``'s answer: its outcome, or where it goes next."""
    call.last = answer
    verdict = decision.verdict
    if verdict in (Verdict.MOVED, Verdict.ASK) and call.redirects < MAX_REDIRECTS:
        call.redirects += 1
        assert decision.slot is not None and decision.address is not None
        if verdict is Verdict.MOVED:
            view.moved(decision.slot, decision.address)
        else:
            call.address, call.asking = decision.address, True
        again.append(i)
    elif verdict is Verdict.LOAD and call.script is not None and not call.loaded:
        call.loaded, call.address = True, address  # loaded there, then sent there again
        again.append(i)
    elif verdict is Verdict.WAIT:
        waiting.append(i)
    elif isinstance(answer, _LOST) and not isinstance(answer, rex.ResponseError):
        view.stale = True  # a connection lost in flight: find the master again before the next call


def plan_each_master(view: _View, command: Callable[[str], Command] | None, match: str | None, count: int,
                      budget: float) -> Plan:  # fmt: skip
    """On every master: SCAN for ``match`` (emitting keys), or send ``command``; returns the
    replies by node. A failure that may pass starts the whole round again on the new masters
    (a scan may then hand out a key twice, as SCAN itself may)."""
    tries, slept = 0, 0.0
    while True:
        replies: dict[str, Reply] = {}
        failure = yield from _refresh(view)
        try:
            if failure is not None:
                raise failure
            for address in view.masters():
                if command is not None:
                    replies[address] = yield from _one(address, command(address))
                    continue
                cursor = "0"
                while True:
                    page = yield from _one(address, ("SCAN", cursor, "MATCH", str(match), "COUNT", count))
                    cursor, keys = _scan_step(page)
                    yield Emit(tuple(keys))
                    if cursor == "0":
                        break
            return replies
        except CLIENT_ERRORS as exc:
            if judge(exc, resendable=True).verdict is not Verdict.WAIT:
                raise translate(exc) from exc
            view.stale = True
            tries += 1
            delay = backoff(tries)
            if slept + delay > budget:
                raise _gave_up(exc, tries, slept) from exc
            yield Sleep(delay)
            slept += delay


def _one(address: str, command: Command) -> Generator[Request, Any, Reply]:
    answers = yield Send(address, (command,))
    answer = answers if isinstance(answers, BaseException) else answers[0]
    if isinstance(answer, BaseException):
        raise answer
    reply: Reply = answer
    return reply


def _scan_step(reply: Reply) -> tuple[str, list[str]]:
    if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], list):
        raise ScriptReplyError(f"unexpected SCAN reply: {reply!r:.200}")
    return str(reply[0]), [str(key) for key in reply[1]]


def outcome(answer: Answer) -> Outcome:
    return translate(answer) if isinstance(answer, BaseException) else answer


def reply_of(answer: Answer) -> Reply:
    if isinstance(answer, BaseException):
        raise translate(answer) from answer
    return answer


def command_calls(args: tuple[Arg, ...]) -> list[Call]:
    split = split_by_slot(args)
    return [Call(part, command_slot(part)) for part in (split or [args])]


def summed(answers: list[Answer]) -> Reply:
    if len(answers) == 1:
        return reply_of(answers[0])
    total = 0
    for answer in answers:
        reply = reply_of(answer)
        total += reply if isinstance(reply, int) else 0
    return total
