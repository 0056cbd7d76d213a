"""Tests that fail on purpose, to show what a user sees when a drain or an assertion fails."""

from collections.abc import Callable

import shop

import jqc
from jqc.testing import assert_enqueued, crash_worker, drain, perform_job


def test_a_job_keeps_failing(jqc_queue: Callable[..., jqc.Queue]) -> None:
    shop.reset()
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    shop.payments.declining.add("A1")
    drain(q, shop.HANDLERS)


def test_the_wrong_job_was_enqueued(jqc_queue: Callable[..., jqc.Queue]) -> None:
    shop.reset()
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    assert_enqueued(q, name="charge", data={"order": "B2"})


def test_a_performed_job_raises() -> None:
    shop.reset()
    shop.payments.declining.add("A1")
    perform_job(shop.charge, {"order": "A1", "amount": 5}, name="charge")


def test_a_fault_that_matches_nothing(jqc_queue: Callable[..., jqc.Queue]) -> None:
    shop.reset()
    q = jqc_queue("orders")
    shop.place_order(q, "A1", 1200, "ann@example.com")
    drain(q, shop.HANDLERS, faults=[crash_worker("refund")])
