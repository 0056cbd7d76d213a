"""What a backend of several servers decides about each answer, written once for sync and asyncio.

A Redis Cluster and a Sentinel group differ from one server in two ways only: a call must go to
the right server (the master of its key's slot, or the master the sentinels name), and that
server changes while the deployment fails over or reshards. The routed backends
(:mod:`jqc.backends.routed`) ask a router where a call goes and, after each answer, ask
:func:`judge` what to do next:

* **done**: a reply, or an error that says something about the call itself (a script's error, an
  ACL refusal, bad credentials, a TLS problem): it is the call's outcome.
* **moved** / **ask**: the cluster redirects the slot (``MOVED``: for good, the router learns it;
  ``ASK``: for this call only, sent with ``ASKING``); the call is sent again at once, up to
  :data:`MAX_REDIRECTS` times.
* **load**: ``NOSCRIPT``: that server does not know the script yet; it is loaded there and the
  call sent again.
* **wait**: the call did not run and may run soon (``TRYAGAIN``, ``CLUSTERDOWN``,
  ``MASTERDOWN``, ``LOADING``, ``READONLY`` from a demoted master, a server that could not be
  reached): the router re-reads the topology, the backend backs off (:func:`backoff`: doubling
  from 50 ms up to 1 s) and sends it again, until the sleeps add up to ``failover_timeout``.

A connection lost *after* a call was sent leaves it unknown whether it ran. A plain command
(reads, deletes: every one jqc sends is idempotent) is sent again; a script is not (an add sent
twice would add the job twice): it answers :class:`jqc.ConnectionLostError`, and the router
re-reads the topology before the next call, so that call reaches the new master.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import redis.exceptions as rex
from redis.crc import key_slot

from jqc.backends.base import Arg
from jqc.backends.refusals import refusal_code
from jqc.backends.resp import NotConnectedError, NotConnectedTimeoutError

__all__ = [
    "FIRST_BACKOFF",
    "MAX_BACKOFF",
    "MAX_REDIRECTS",
    "Decision",
    "TopologyUnknownError",
    "Verdict",
    "backoff",
    "command_slot",
    "judge",
    "not_sent",
    "split_by_slot",
]

#: Redirections (MOVED, ASK) one call may follow before its redirect error is its outcome.
MAX_REDIRECTS = 16
#: The first and the longest wait between two tries of a call the deployment could not serve.
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0

# Codes of refusals that mean "not now, and the call did not run".
_PASSING = frozenset({"TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "LOADING", "READONLY"})
# Commands whose every argument is a key, answering an integer that sums over keys.
SUMMED = frozenset({"DEL", "UNLINK", "EXISTS", "TOUCH"})


class TopologyUnknownError(rex.ConnectionError):
    """No node (or no sentinel) said where calls go: nothing was sent, so a call may be tried again."""


class Verdict(enum.Enum):
    """What to do with a call after one answer (see the module docstring)."""

    DONE = "done"
    MOVED = "moved"
    ASK = "ask"
    LOAD = "load"
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class Decision:
    """A :class:`Verdict`, with the slot and node a redirection names."""

    verdict: Verdict
    slot: int | None = None
    address: str | None = None


_DONE = Decision(Verdict.DONE)
_WAIT = Decision(Verdict.WAIT)


def _redirect(exc: BaseException, code: str) -> Decision:
    """The slot and ``host:port`` of a MOVED or ASK error, from redis-py's attributes or the text."""
    slot = getattr(exc, "slot_id", None)
    address = getattr(exc, "node_addr", None)
    if isinstance(address, tuple):
        address = f"{address[0]}:{address[1]}"
    if slot is None or not isinstance(address, str):
        words = str(exc).split()
        if words and words[0].upper() == code:
            words = words[1:]
        if len(words) < 2 or not words[0].isdigit():
            return _DONE  # not a redirection we understand: its error is the outcome
        slot, address = int(words[0]), words[1]
    verdict = Verdict.MOVED if code == "MOVED" else Verdict.ASK
    return Decision(verdict, int(slot), address)


def not_sent(exc: BaseException) -> bool:
    """True when ``exc`` says the connection could not be opened, so nothing was sent."""
    if isinstance(exc, (NotConnectedError, NotConnectedTimeoutError, TopologyUnknownError)):
        return True
    if isinstance(exc, rex.ConnectionError) and type(exc).__name__ in ("MasterNotFoundError", "SlaveNotFoundError"):
        return True
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
        text = str(exc)
        return "connecting to" in text or "Timeout connecting" in text  # (redis-py's asyncio connect errors)
    return False


def judge(answer: object, *, resendable: bool) -> Decision:
    """What to do after ``answer`` (a reply or the exception a call got); ``resendable`` says
    the call may be sent again after a connection was lost with it in flight."""
    if not isinstance(answer, BaseException):
        return _DONE
    if isinstance(answer, rex.NoScriptError) or str(answer).startswith("NOSCRIPT"):
        return Decision(Verdict.LOAD)
    if isinstance(answer, (rex.ConnectionError, rex.TimeoutError, OSError)) and not isinstance(
        answer, (rex.ResponseError, rex.AuthenticationError, rex.BusyLoadingError)
    ):
        return _WAIT if resendable or not_sent(answer) else _DONE
    if isinstance(answer, rex.BusyLoadingError):
        return _WAIT
    if not isinstance(answer, rex.RedisError):
        return _DONE
    code = refusal_code(answer)
    if code in ("MOVED", "ASK"):
        return _redirect(answer, code)
    if code in _PASSING:
        return _WAIT
    return _DONE


def backoff(tries: int) -> float:
    """Seconds to wait before the ``tries``-th new try (1, 2, ...): 50 ms doubling up to 1 s."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** min(tries - 1, 20)))


def _keys(args: Sequence[Arg]) -> list[str]:
    name = str(args[0]).upper()
    if name in ("EVAL", "EVALSHA"):
        count = int(args[2]) if len(args) > 2 and str(args[2]).isdigit() else 0
        return [str(key) for key in args[3 : 3 + count]]
    if name in ("XREAD", "XREADGROUP"):
        words = [str(arg).upper() for arg in args]
        if "STREAMS" not in words:
            return []
        rest = args[words.index("STREAMS") + 1 :]
        return [str(key) for key in rest[: len(rest) // 2]]
    if len(args) < 2 or name in ("PING", "SCAN"):
        return []  # (a command with no key may go to any master: its first argument picks one)
    if name in SUMMED:
        return [str(key) for key in args[1:]]
    return [str(args[1])]


def command_slot(args: Sequence[Arg]) -> int | None:
    """The slot a command's (first) key falls in, or None for a command with no key."""
    keys = _keys(args)
    return key_slot(keys[0].encode()) if keys else None


def split_by_slot(args: Sequence[Arg]) -> list[tuple[Arg, ...]] | None:
    """``DEL``/``UNLINK``/``EXISTS``/``TOUCH`` of keys in several slots, as one command per slot
    (their integer replies add up); None for any other command, or keys all in one slot."""
    if len(args) < 3 or str(args[0]).upper() not in SUMMED:
        return None
    by_slot: dict[int, list[Arg]] = {}
    for key in args[1:]:
        by_slot.setdefault(key_slot(str(key).encode()), []).append(key)
    if len(by_slot) < 2:
        return None
    return [(args[0], *keys) for keys in by_slot.values()]
