"""The event stream from outside the engine's scripts: a producer's own events, trimming by hand,
and where a listener starts reading.

The engine's scripts write their events themselves (``emit`` in ``lua/include/base.lua``); these
are plain stream commands on the queue's one ``events`` key, so they need no script.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from jqc.clock import now_ms
from jqc.engine.calls import CommandCall, Op
from jqc.engine.keys import validate_job_id
from jqc.engine.ops_reading import Reading
from jqc.engine.replies import as_int, as_str
from jqc.engine.results import ENGINE_EVENTS
from jqc.errors import InvalidOptionError

__all__ = ["EVENT_NAME", "Events"]

#: A custom event's name: a letter, then letters, digits, '.', '_', ':' or '-' (100 at most).
EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._:-]{0,99}")
_RESERVED_FIELDS = frozenset({"e", "j", "t"})
_MAX_FIELDS = 32
_MAX_VALUE = 64 * 1024


class Events(Reading):
    """Publishing custom events, trimming the stream, resolving a reader's start position (on top
    of :class:`Reading`, whose ``events`` and ``last_event_id`` a listener uses)."""

    def publish(self, name: str, fields: Mapping[str, str] | None = None, *, job_id: str = "") -> CommandCall[str]:
        """Append a custom event ``name`` (not one of the engine's: :data:`ENGINE_EVENTS`) with
        string ``fields``, about ``job_id`` if given; the stream is capped as the engine's events
        are. Returns the entry id."""
        if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
            raise InvalidOptionError(
                f"event name must be 1-100 characters from A-Z a-z 0-9 . _ : -, starting with a letter, not {name!r}"
            )
        if name in ENGINE_EVENTS:
            raise InvalidOptionError(f"{name!r} is an event the engine writes; give your event another name")
        if self.events_max_len == 0:
            raise InvalidOptionError("this queue object was opened with events_max_len=0: it writes no events")
        items = dict(fields or {})
        if len(items) > _MAX_FIELDS:
            raise InvalidOptionError(f"an event takes at most {_MAX_FIELDS} fields, not {len(items)}")
        flat: list[str | int] = []
        for key, value in items.items():
            if not isinstance(key, str) or not key or key in _RESERVED_FIELDS:
                raise InvalidOptionError(f"event field names are non-empty str other than e, j, t, not {key!r}")
            if not isinstance(value, str) or len(value) > _MAX_VALUE:
                raise InvalidOptionError(f"event field {key!r} must be a str of at most {_MAX_VALUE} characters")
            flat += [key, value]
        target = validate_job_id(job_id) if job_id else ""
        command = ("XADD", self.keys.events, "MAXLEN", "~", self.events_max_len, "*")
        return CommandCall((*command, "e", name, "j", target, "t", now_ms(self.clock), *flat), as_str)

    def trim_events(self, max_len: int = 0) -> CommandCall[int]:
        """Cut the stream to its newest ``max_len`` entries now (exactly; 0 empties it); returns
        how many were deleted. The engine trims approximately on every write by itself."""
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
            raise InvalidOptionError(f"max_len must be an int >= 0, not {max_len!r}")
        return CommandCall(("XTRIM", self.keys.events, "MAXLEN", max_len), as_int)

    def event_position(self, last_id: str) -> Op[str]:
        """Where a listener starting at ``last_id`` reads from: '$' (only what comes next) is
        resolved to the newest entry's id, so nothing written between two reads is missed."""
        if not isinstance(last_id, str) or not last_id:
            raise InvalidOptionError(f"last_id must be a stream id, '0' or '$', not {last_id!r}")
        if last_id != "$":
            return last_id
        newest: str = yield self.last_event_id()
        return newest
