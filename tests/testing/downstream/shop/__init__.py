"""A small shop that uses jqc: the application code this downstream project tests.

Placing an order enqueues charging it at once and asking for a review a day later. Charging is
idempotent (a second run of the same job charges nothing more), sending mail is not, which the
fault helpers are meant to show.
"""

from __future__ import annotations

from typing import Any

import jqc

HANDLERS: dict[str, Any] = {}


class Payments:
    """A payment provider's ledger: what was charged, per order, and every call made."""

    def __init__(self) -> None:
        self.charged: dict[str, int] = {}
        self.calls: list[str] = []
        self.declining: set[str] = set()

    def charge(self, order: str, amount: int, *, key: str) -> None:
        """Charge once per idempotency ``key`` (as real providers offer)."""
        self.calls.append(order)
        if order in self.declining:
            raise ValueError(f"card declined for order {order}")
        self.charged.setdefault(key, amount)


class Mailer:
    def __init__(self) -> None:
        self.outbox: list[tuple[str, str]] = []
        self.down = False

    def send(self, to: str, subject: str) -> None:
        if self.down:
            raise ConnectionError("mail server unreachable")
        self.outbox.append((to, subject))


payments = Payments()
mailer = Mailer()


def reset() -> None:
    global payments, mailer
    payments, mailer = Payments(), Mailer()


def place_order(queue: jqc.Queue, order: str, amount: int, email: str) -> jqc.Job:
    """Charge now (3 attempts, exponential backoff) and ask for a review in a day."""
    job = queue.add(
        "charge",
        {"order": order, "amount": amount, "email": email},
        job_id=f"charge-{order}",
        attempts=3,
        backoff=jqc.Backoff.exponential(10),
    )
    queue.add("ask_review", {"order": order, "email": email}, delay=24 * 3600, priority=5)
    return job


async def aplace_order(queue: jqc.AsyncQueue, order: str, amount: int, email: str) -> jqc.Job:
    job = await queue.add(
        "charge",
        {"order": order, "amount": amount, "email": email},
        job_id=f"charge-{order}",
        attempts=3,
        backoff=jqc.Backoff.exponential(10),
    )
    await queue.add("ask_review", {"order": order, "email": email}, delay=24 * 3600, priority=5)
    return job


async def charge(ctx: jqc.JobContext) -> dict[str, Any]:
    order = ctx.data["order"]
    await ctx.log(f"charging order {order}, attempt {ctx.attempt}")
    payments.charge(order, ctx.data["amount"], key=f"order-{order}")
    await ctx.progress(100)
    return {"order": order, "charged": payments.charged[f"order-{order}"]}


def send_receipt(ctx: jqc.SyncJobContext) -> str:
    """Not idempotent: each run sends another mail."""
    if "@" not in ctx.data["email"]:
        raise jqc.Fail(f"bad address {ctx.data['email']!r}")
    if mailer.down:
        raise jqc.Retry(delay=60, reason="mail server down")
    ctx.log(f"sending receipt for {ctx.data['order']}")
    mailer.send(ctx.data["email"], f"receipt {ctx.data['order']}")
    ctx.progress({"sent": True})
    return "sent"


def ask_review(ctx: jqc.SyncJobContext) -> str:
    mailer.send(ctx.data["email"], f"how was order {ctx.data['order']}?")
    return "asked"


HANDLERS.update({"charge": charge, "send_receipt": send_receipt, "ask_review": ask_review})
