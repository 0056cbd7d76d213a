"""What a flow stores on its jobs: a child's link to its parent and a parent's list of children.

A flow child's record carries its parent (``pq`` queue, ``pi`` id) and its failure policy (``pp``);
a parent's record carries ``ch``, one packed entry per child (``q`` queue, ``i`` id, ``p`` policy,
``s`` outcome ``c``/``f`` once delivered, ``v`` the result JSON or the failure reason), written by
``flow_deliver.lua`` (see ``include/flow.lua`` and ``docs/workflows.md``). Keeping the children's
outcomes on the parent is what keeps them readable by the parent whatever the children's retention.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jqc import _json
from jqc.engine.records import pack, pack_lines, unpack, unpack_lines
from jqc.errors import InvalidOptionError

__all__ = ["ChildOutcome", "ChildPolicy", "children_field", "children_of", "parent_of"]


class ChildPolicy(enum.StrEnum):
    """What a child's failure (for good, dead letter included) does to its parent."""

    FAIL = "fail"
    """The parent fails for good at once (code ``child``); replaying the child resumes it."""
    IGNORE = "ignore"
    """The failure counts as done; the parent runs and does not see it."""
    CONTINUE = "continue"
    """The failure counts as done; the parent runs and sees it (``ctx.children_failures()``)."""

    @property
    def code(self) -> str:
        """The one-letter code stored in records (``f``, ``i``, ``c``)."""
        return self.value[0]

    @classmethod
    def parse(cls, value: object) -> ChildPolicy:
        """``value`` as a policy (a ChildPolicy or its name), else :class:`jqc.InvalidOptionError`."""
        try:
            return cls(value)  # type: ignore[arg-type]
        except ValueError:
            raise InvalidOptionError(f"on_failure must be one of fail, ignore, continue, not {value!r}") from None


_POLICY_OF_CODE = {p.code: p for p in ChildPolicy}
_STATE_OF_CODE = {"c": "completed", "f": "failed"}


@dataclass(frozen=True, slots=True)
class ChildOutcome:
    """One child of a flow parent as the parent knows it: ``state`` is ``pending``, ``completed``
    or ``failed``; ``result`` is the child's result once completed, ``failure`` its reason once failed."""

    queue: str
    id: str
    policy: ChildPolicy
    state: str
    result: Any = None
    failure: str | None = None


def children_of(fields: Mapping[str, str]) -> tuple[ChildOutcome, ...]:
    """The children listed on a parent's record (empty for a job that is no flow parent)."""
    out: list[ChildOutcome] = []
    for text in unpack_lines(fields.get("ch")):
        entry = unpack(text)
        state = _STATE_OF_CODE.get(entry.get("s", ""), "pending")
        value = entry.get("v")
        out.append(
            ChildOutcome(
                queue=entry["q"],
                id=entry["i"],
                policy=_POLICY_OF_CODE.get(entry.get("p", "f"), ChildPolicy.FAIL),
                state=state,
                result=_json.decode(value, what=f"child {entry['i']} result")
                if state == "completed" and value is not None
                else None,
                failure=value if state == "failed" else None,
            )
        )
    return tuple(out)


def children_field(children: list[tuple[str, str, ChildPolicy]]) -> str:
    """The ``ch`` field of a new parent whose children are (queue, id, policy), all pending."""
    return pack_lines(pack({"q": q, "i": i, "p": p.code}) for q, i, p in children)


def parent_of(fields: Mapping[str, str]) -> tuple[str, str] | None:
    """The (queue, id) of a flow child's parent, None for a job that is no flow child."""
    if "pi" not in fields:
        return None
    return fields.get("pq", ""), fields["pi"]
