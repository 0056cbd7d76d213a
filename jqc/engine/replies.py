"""Reading raw replies: small checked conversions from :data:`jqc.backends.Reply` to Python values.

Backends answer raw RESP2 (strings, integers, nil, arrays). Parsers narrow a reply with these
helpers; a value of the wrong shape raises :class:`jqc.ScriptReplyError` instead of a bare
``TypeError`` deep inside a parser.
"""

from __future__ import annotations

from jqc.backends.base import Reply
from jqc.errors import ScriptReplyError

__all__ = ["as_int", "as_list", "as_str", "as_strs", "pairs"]


def _bad(what: str, reply: Reply) -> ScriptReplyError:
    return ScriptReplyError(f"expected {what} in a reply, got {reply!r:.120}")


def as_list(reply: Reply) -> list[Reply]:
    """An array reply (nil counts as empty)."""
    if reply is None:
        return []
    if not isinstance(reply, list):
        raise _bad("an array", reply)
    return reply


def as_int(reply: Reply) -> int:
    """An integer reply, or a string holding an integer."""
    if isinstance(reply, int):
        return reply
    if isinstance(reply, str):
        try:
            return int(reply)
        except ValueError:
            try:
                return int(float(reply))
            except ValueError:
                pass
    raise _bad("an integer", reply)


def as_str(reply: Reply) -> str:
    """A string reply (integers are shown as their digits)."""
    if isinstance(reply, str):
        return reply
    if isinstance(reply, int):
        return str(reply)
    raise _bad("a string", reply)


def as_strs(reply: Reply) -> list[str]:
    """An array of strings."""
    return [as_str(item) for item in as_list(reply)]


def pairs(reply: Reply) -> dict[str, str]:
    """A flat array of field, value, field, value ... (HGETALL, XREAD entries) as a dict."""
    items = as_strs(reply)
    if len(items) % 2:
        raise _bad("field-value pairs", reply)
    return dict(zip(items[::2], items[1::2], strict=True))
