"""Code that enqueues jobs, checked with assert_enqueued / refute_enqueued / enqueued_jobs (sync tests)."""

from collections.abc import Callable
from unittest.mock import ANY

import pytest
import shop

import jqc
from jqc.testing import assert_enqueued, enqueued_jobs, refute_enqueued


def test_placing_an_order_enqueues_a_charge_and_a_review(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")

    [charge] = assert_enqueued(q, name="charge", data={"order": "A1"}, delay=0, priority=0)
    assert charge.id == "charge-A1" and charge.options.attempts == 3
    assert_enqueued(q, name="ask_review", data={"email": ANY}, delay=24 * 3600, priority=5, count=1)
    refute_enqueued(q, name="send_receipt")
    refute_enqueued(q, name="charge", data={"order": "B2"})
    assert [job.name for job in enqueued_jobs(q)] == ["charge", "ask_review"]
    assert enqueued_jobs(q, name="ask_review")[0].state == jqc.JobState.DELAYED


def test_placing_an_order_twice_enqueues_one_charge(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    assert_enqueued(q, name="charge", count=1)  # the job id makes adding idempotent
    assert_enqueued(q, name="ask_review", count=2)


def test_a_failed_assert_enqueued_lists_what_was_enqueued(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    with pytest.raises(AssertionError) as info:
        assert_enqueued(q, name="charge", data={"order": "B2"})
    message = str(info.value)
    assert "expected a job matching name='charge', data={'order': 'B2'} in queue 'orders', found 0" in message
    assert "enqueued in 'orders' (waiting and delayed, in run order): 2" in message
    assert "'charge' id=charge-A1 data={'order': 'A1', 'amount': 1200" in message
    assert "<- data['order'] is 'A1', not 'B2'" in message
    assert "'ask_review' id=1 " in message and "delay=86400s priority=5 (delayed)  <- name is 'ask_review'" in message


def test_other_failure_messages(jqc_queue: Callable[..., jqc.Queue]) -> None:
    q = jqc_queue("orders")
    with pytest.raises(AssertionError, match=r"(?s)found 0\nenqueued in 'orders' .*: nothing"):
        assert_enqueued(q, name="charge")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    with pytest.raises(AssertionError) as info:
        assert_enqueued(q, name="ask_review", delay=3600)
    assert "<- delay is 86400s, not 3600s" in str(info.value)
    with pytest.raises(AssertionError) as info:
        assert_enqueued(q, name="charge", count=2)
    assert "expected 2 jobs matching name='charge'" in str(info.value) and "found 1" in str(info.value)
    with pytest.raises(AssertionError) as info:
        refute_enqueued(q, name="ask_review")
    assert "expected no job matching name='ask_review' in queue 'orders', found 1" in str(info.value)
    assert "<- matches" in str(info.value)
