"""The Sentinel backend asks the sentinels again every RECHECK seconds while in use, so that after a
``SENTINEL FAILOVER`` (the old master still up, and taking writes until the sentinels demote it,
~10 s later) calls move to the new master at once; a routine re-ask that no sentinel answers keeps
the master it knows. No server: the sentinels' answers are chosen (the real failover is in
tests/topology/test_sentinel_failover.py)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.exceptions as rex

from jqc.backends import parse_url
from jqc.backends.routing import TopologyUnknownError
from jqc.backends.sentinel import RECHECK, SentinelRouter

URL = "redis+sentinel://127.0.0.1:1/mymaster"


class Sentinels:
    """Stands for redis-py's Sentinel: names ``master`` or raises ``error``."""

    def __init__(self) -> None:
        self.master: tuple[str, int] = ("10.0.0.1", 6379)
        self.error: BaseException | None = None
        self.asked = 0
        self.sentinels: list[Any] = []

    def discover_master(self, _service: str) -> tuple[str, int]:
        self.asked += 1
        if self.error is not None:
            raise self.error
        return self.master


def _router() -> tuple[SentinelRouter, Sentinels, list[float]]:
    clock = [0.0]
    router = SentinelRouter(parse_url(URL), monotonic=lambda: clock[0])
    sentinels = Sentinels()
    router._sentinel = sentinels  # type: ignore[assignment]
    return router, sentinels, clock


def test_the_master_is_asked_for_again_after_recheck_seconds() -> None:
    router, sentinels, clock = _router()
    assert router.stale
    router.refresh()
    assert router.masters() == ["10.0.0.1:6379"] and not router.stale
    clock[0] += RECHECK * 0.9
    assert not router.stale
    router.refresh()  # (a thread that waited for the lock while another asked: nothing to do)
    assert sentinels.asked == 1
    sentinels.master = ("10.0.0.2", 6379)  # the sentinels switched (SENTINEL FAILOVER)
    clock[0] += RECHECK * 0.2
    assert router.stale
    router.refresh()
    assert router.masters() == ["10.0.0.2:6379"] and sentinels.asked == 2


def test_a_routine_recheck_no_sentinel_answers_keeps_the_known_master() -> None:
    router, sentinels, clock = _router()
    router.refresh()
    sentinels.error = rex.ConnectionError("Error connecting to 127.0.0.1:1")
    clock[0] += RECHECK
    router.refresh()  # no error: the master it knows still serves
    assert router.masters() == ["10.0.0.1:6379"] and not router.stale
    router.stale = True  # a call found the master gone (READONLY, refused connection): now it must ask
    with pytest.raises(TopologyUnknownError):
        router.refresh()
