"""Reading a queue's settings back (concurrency, rate limit and what is left of its window, caps,
paused), and the queue-wide manual rate limit ``limit_rate`` that holds off every claim until it
ends. Every backend, both queue types."""

from __future__ import annotations

import pytest

import jqc


def test_defaults_read_back_as_none(queue: jqc.Queue) -> None:
    got = queue.settings()
    assert got == jqc.QueueSettings(
        paused=False, concurrency=None, rate_limit=None, rate_remaining=None, rate_window_ends=None,
        limited_until=None, max_stalls=None, dead_letter_cap=None, metrics_minutes=None,
    )  # fmt: skip


def test_configured_settings_read_back(queue: jqc.Queue) -> None:
    queue.configure(concurrency=4, rate_limit=(10, 2.0), max_stalls=0, dead_letter_cap=100, metrics_minutes=60)
    queue.pause()
    got = queue.settings()
    assert (got.paused, got.concurrency, got.rate_limit) == (True, 4, (10, 2.0))
    assert (got.max_stalls, got.dead_letter_cap, got.metrics_minutes) == (0, 100, 60)
    queue.configure(concurrency=None)
    assert queue.settings().concurrency is None


def test_the_rate_window_says_what_is_left_and_when_it_reopens(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.configure(rate_limit=(3, 10.0))
    for i in range(5):
        queue.add("x", i)
    assert queue.settings().rate_remaining == 3
    assert len(queue.claim("w", count=2).jobs) == 2
    now = queue.settings()
    window_start = clock.now() - clock.now() % 10
    assert now.rate_remaining == 1 and now.rate_window_ends == pytest.approx(window_start + 10)
    queue.claim("w", count=5)
    assert queue.settings().rate_remaining == 0
    clock.advance(10)
    assert queue.settings().rate_remaining == 3  # a new window


def test_limit_rate_holds_off_every_claim_until_it_ends(queue: jqc.Queue, clock: jqc.VirtualClock) -> None:
    queue.add("x")
    until = queue.limit_rate(30)
    assert until == pytest.approx(clock.now() + 30)
    got = queue.claim("w")
    assert got.status == jqc.Code.RATE_LIMITED and got.retry_at == pytest.approx(until)
    assert queue.settings().limited_until == pytest.approx(until)
    assert queue.limit_rate(5) == pytest.approx(until)  # a shorter hold does not cut it
    clock.advance(30)
    assert queue.settings().limited_until is None
    assert len(queue.claim("w").jobs) == 1


def test_limit_rate_zero_lifts_the_hold(queue: jqc.Queue) -> None:
    queue.add("x")
    queue.limit_rate(600)
    assert queue.limit_rate(0) is None
    assert len(queue.claim("w").jobs) == 1
    with pytest.raises(jqc.InvalidOptionError):
        queue.limit_rate(-1)


async def test_async_settings_and_limit_rate(aqueue: jqc.AsyncQueue) -> None:
    await aqueue.configure(concurrency=2)
    assert (await aqueue.settings()).concurrency == 2
    await aqueue.limit_rate(10)
    await aqueue.add("x")
    assert (await aqueue.claim("w")).status == jqc.Code.RATE_LIMITED
