"""Before a worker claims anything: reach Redis.

:func:`reach_redis` sends a PING over every connection of the worker's queues until each answers,
through :meth:`~jqc.worker.health.Reconnect.reach`: every failed attempt is logged with the
reason and the backoff before the next one, and with ``connect_timeout`` the worker gives up with
:class:`jqc.ConnectionLostError` once that long has passed. A worker closed meanwhile (a signal,
``close()``) stops waiting at once.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from jqc.engine.calls import CommandCall
from jqc.worker.lane import Lane
from jqc.worker.shared import Shared

__all__ = ["reach_redis"]

_PING: CommandCall[Any] = CommandCall(("PING",), lambda reply: reply)


async def reach_redis(shared: Shared) -> bool:
    """Wait until every connection of ``shared``'s lanes answers; False if the worker stopped meanwhile."""
    lifecycle = shared.lifecycle
    stop = lifecycle.signals.stop
    seen: set[int] = set()
    for lane in shared.lanes:
        conn = lane.queue.connection
        if id(conn) in seen:
            continue
        seen.add(id(conn))

        def probe(lane: Lane = lane) -> Awaitable[object]:
            return shared.run(lane, _PING)

        def nap(seconds: float) -> Awaitable[bool]:
            return lifecycle.nap(seconds, stop)

        reached = await shared.health.reach(probe, where=conn.safe_url, timeout=shared.options.connect_timeout, nap=nap)
        if not reached or not lifecycle.running:
            return False
    return lifecycle.running
