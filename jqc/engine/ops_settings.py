"""Reading a queue's settings back, and the queue-wide manual rate limit.

The settings live in the queue's ``meta`` hash (``docs/keys.md``); one ``HMGET`` reads them all,
and the rate window's state is judged on the caller's clock, as claims judge it.
"""

from __future__ import annotations

from dataclasses import dataclass

from jqc.clock import now_ms
from jqc.engine.arguments import seconds_to_ms
from jqc.engine.calls import CommandCall, Reply, ScriptCall, checked
from jqc.engine.ops_base import OperationsBase
from jqc.engine.replies import as_int, as_list, as_str

__all__ = ["QueueSettings", "Settings"]

_FIELDS = ("paused", "cc", "rlm", "rlw", "rls", "rln", "rlu", "ms", "dm", "mr")


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue's settings as stored, and its rate window as of the reading (queue clock, seconds).

    ``concurrency``, ``rate_limit`` (max jobs, per seconds), ``max_stalls``, ``dead_letter_cap`` and
    ``metrics_minutes`` are None when not set (the defaults apply). ``rate_remaining`` is how many
    more jobs the current window lets workers claim and ``rate_window_ends`` when it reopens (both
    None without a rate limit). ``limited_until`` is when a :meth:`jqc.Queue.limit_rate` hold ends
    (None when none is running).
    """

    paused: bool
    concurrency: int | None
    rate_limit: tuple[int, float] | None
    rate_remaining: int | None
    rate_window_ends: float | None
    limited_until: float | None
    max_stalls: int | None
    dead_letter_cap: int | None
    metrics_minutes: int | None


class Settings(OperationsBase):
    """``settings()`` and ``limit_rate()``."""

    def settings(self) -> CommandCall[QueueSettings]:
        """Read the queue's settings and the state of its rate window in one call."""
        now = now_ms(self.clock)

        def parse(reply: Reply) -> QueueSettings:
            raw = dict(zip(_FIELDS, as_list(reply), strict=True))
            value = {k: None if v is None else as_int(v) for k, v in raw.items() if k != "paused"}
            limit = remaining = ends = None
            if value["rlm"] is not None and value["rlw"]:
                width = value["rlw"]
                window = now - now % width
                used = (value["rln"] or 0) if value["rls"] == window else 0
                limit, remaining = (value["rlm"], width / 1000.0), max(0, value["rlm"] - used)
                ends = (window + width) / 1000.0
            held = value["rlu"] if value["rlu"] is not None and value["rlu"] > now else None
            return QueueSettings(
                paused=raw["paused"] is not None and as_str(raw["paused"]) == "1",
                concurrency=value["cc"],
                rate_limit=limit,
                rate_remaining=remaining,
                rate_window_ends=ends,
                limited_until=None if held is None else held / 1000.0,
                max_stalls=value["ms"],
                dead_letter_cap=value["dm"],
                metrics_minutes=value["mr"],
            )

        return CommandCall(("HMGET", self.keys.meta, *_FIELDS), parse)

    def limit_rate(self, seconds: float) -> ScriptCall[float | None]:
        """Hold off every worker's claims on this queue for ``seconds`` (0 lifts the hold); a
        shorter hold never cuts a running longer one. Returns when the hold ends (None: lifted)."""

        def parse(reply: Reply) -> float | None:
            until = as_int(checked(reply)[1])
            return until / 1000.0 if until else None

        return self._call("rate_limit", seconds_to_ms(seconds, "rate limit hold", high=86400 * 31), parse=parse)
