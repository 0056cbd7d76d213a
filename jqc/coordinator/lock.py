"""The per-queue coordinator lock (fenced, with an expiry on the caller's clock) and the published decision.

One Lua script (``coordinator.lua``) does everything atomically on the queue's hash slot:

- ``acquire``: take the lock when it is free or expired (the fencing token grows by one), or keep
  it when the caller shows the current token;
- ``release``: give it up (only with the current token);
- ``publish``: write the scaling decision to ``P:{Q}:autoscale``, only with the current token and
  before the lock expires, so a coordinator that lost the lock can never overwrite its successor's
  decision;
- ``read``: look without changing anything.

Expiry is compared with the caller's clock (``now`` from the queue's clock), never with the server's,
and nothing relies on a server-side TTL, like every jqc lock. A holder may act (scale workers) only
while :meth:`Lease.valid` says so on its own clock: until ``expires - margin``. Another coordinator
takes over only once its clock has passed ``expires``, so as long as clocks agree to within the
margin, two coordinators never act at once. Their writes to Redis are fenced regardless of clocks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jqc.clock import now_ms
from jqc.engine.calls import CommandCall, Op, Reply, ScriptCall, checked
from jqc.engine.operations import QueueOperations
from jqc.engine.replies import as_int, as_str
from jqc.errors import CorruptJobError, InvalidOptionError

__all__ = [
    "Lease",
    "ScaleDecision",
    "acquire",
    "decision_key",
    "lock_key",
    "publish",
    "read_decision_op",
    "read_lock",
    "release",
]


@dataclass(frozen=True, slots=True)
class Lease:
    """What the lock looked like after one call.

    ``done``: the call did what it asked (holds the lock after acquire, released, published).
    ``holder``: who holds it now ('' when free). ``token``: the current fencing token (the last one
    when free). ``expires``: clock seconds when the holder's lock runs out (0 when free).
    """

    done: bool
    holder: str
    token: int
    expires: float

    def held_by(self, holder: str) -> bool:
        return self.holder == holder and self.expires > 0

    def valid(self, now: float, margin: float = 0.0) -> bool:
        """True while a holder may still act, on its own clock, keeping ``margin`` seconds in hand."""
        return self.done and now < self.expires - margin


def lock_key(ops: QueueOperations) -> str:
    return ops.keys.key("coordinator")


def decision_key(ops: QueueOperations) -> str:
    return ops.keys.key("autoscale")


def _lease(reply: Reply) -> Lease:
    r = checked(reply)
    return Lease(bool(as_int(r[1])), as_str(r[2] or ""), as_int(r[3]), as_int(r[4]) / 1000.0)


def _check_holder(holder: object) -> str:
    if not isinstance(holder, str) or not holder or len(holder) > 200:
        raise InvalidOptionError(f"holder must be a non-empty str of at most 200 characters, not {holder!r}")
    return holder


def _call(ops: QueueOperations, action: str, holder: str, ttl_ms: int, token: int, *extra: str) -> ScriptCall[Lease]:
    return ScriptCall(
        "coordinator",
        ops.declared("coordinator"),
        (now_ms(ops.clock), ops.events_max_len, action, _check_holder(holder), ttl_ms, token, *extra),
        _lease,
    )


def acquire(ops: QueueOperations, holder: str, ttl: float, token: int = 0) -> ScriptCall[Lease]:
    """Take the lock for ``ttl`` seconds, or keep it (pass the token you hold)."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0.001 <= ttl <= 86400:
        raise InvalidOptionError(f"the lock duration must be between 0.001 and 86400 seconds, not {ttl!r}")
    return _call(ops, "acquire", holder, max(1, round(ttl * 1000)), token)


def release(ops: QueueOperations, holder: str, token: int) -> ScriptCall[Lease]:
    """Give the lock up so another coordinator can take it at once (a no-op without the current token)."""
    return _call(ops, "release", holder, 0, token)


def read_lock(ops: QueueOperations) -> ScriptCall[Lease]:
    """The lock as it is (``done`` is always False)."""
    return _call(ops, "read", "-", 0, 0)


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """A coordinator's decision for one queue, as published in ``P:{Q}:autoscale``.

    ``target``: worker count the queue should have. ``reasons``: why, in words. ``token`` and
    ``holder``: the fencing token and coordinator that wrote it; ``at``: when (writer's clock,
    seconds). ``values``: the numbers behind it (rates, estimates, bounds).
    """

    queue: str
    target: int
    reasons: tuple[str, ...]
    token: int = 0
    holder: str = ""
    at: float = 0.0
    policy: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def fields(self) -> list[str]:
        """The field/value pairs the script writes (token, holder and at are added by the script)."""
        return [
            "target",
            str(self.target),
            "reasons",
            json.dumps(list(self.reasons), separators=(",", ":")),
            "policy",
            self.policy,
            "values",
            json.dumps(dict(self.values), separators=(",", ":"), default=str),
        ]

    @classmethod
    def from_fields(cls, queue: str, stored: Mapping[str, str]) -> ScaleDecision:
        try:
            reasons = json.loads(stored.get("reasons", "[]"))
            values = json.loads(stored.get("values", "{}"))
            return cls(
                queue=queue,
                target=int(stored["target"]),
                reasons=tuple(str(r) for r in reasons),
                token=int(stored.get("token", 0)),
                holder=str(stored.get("holder", "")),
                at=int(stored.get("at", 0)) / 1000.0,
                policy=str(stored.get("policy", "")),
                values=values if isinstance(values, dict) else {},
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptJobError(f"scaling decision of queue {queue!r} cannot be decoded: {exc!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "target": self.target,
            "reasons": list(self.reasons),
            "token": self.token,
            "holder": self.holder,
            "at": self.at,
            "policy": self.policy,
            "values": dict(self.values),
        }


def publish(ops: QueueOperations, holder: str, token: int, decision: ScaleDecision) -> ScriptCall[Lease]:
    """Write ``decision``, fenced: only the holder of the current token, before its lock expires."""
    return _call(ops, "publish", holder, 0, token, *decision.fields())


def _pairs(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    items: Sequence[Any] = list(reply or [])
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def read_decision_op(ops: QueueOperations) -> Op[ScaleDecision | None]:
    """The last published decision of the queue, or None."""
    stored = yield CommandCall(("HGETALL", decision_key(ops)), _pairs)
    return ScaleDecision.from_fields(ops.name, stored) if stored else None
