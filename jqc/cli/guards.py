"""What state-changing commands check before they write: a real store, and a queue that exists.

``jqc pause typo`` used to create the queue ``typo``, and ``jqc add`` without ``--url`` wrote into
an embedded store that vanished with the command. Every command that changes a queue (``add``,
``retry``, ``promote``, ``pause``, ``resume``, ``dlq replay``, ``dlq purge``) goes through
:func:`existing_queue`, which refuses both with exit status 1 and a message saying what to do.
"""

from __future__ import annotations

import argparse

import jqc

__all__ = ["CommandRefused", "existing_queue", "known_queues", "opened_in_process"]

OPENED_IN_PROCESS = "_jqc_opened_in_process"


class CommandRefused(jqc.JqcError):
    """A command that would change nothing useful, or the wrong thing, and so did nothing."""


def opened_in_process(args: argparse.Namespace, value: bool | None = None) -> bool:
    """Whether ``jqc`` itself opened the embedded backend for this command (set by ``main``)."""
    if value is not None:
        setattr(args, OPENED_IN_PROCESS, value)
    return bool(getattr(args, OPENED_IN_PROCESS, False))


def known_queues(conn: jqc.Connection, limit: int = 20) -> str:
    """The queues under the connection's prefix, for a message (``none`` when there are none)."""
    names = conn.queue_names()
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def existing_queue(args: argparse.Namespace, conn: jqc.Connection, *, create: bool = False) -> jqc.Queue:
    """The queue ``args.queue`` for a command that changes it.

    Refuses (:class:`CommandRefused`) when ``jqc`` opened the embedded backend itself (a fresh,
    empty store that ends with the command: the change would be lost at once), and when the queue
    does not exist unless ``create``.
    """
    if opened_in_process(args):
        raise CommandRefused(
            f"`jqc {args.command}` changes a queue, but no server was given: the embedded backend is a fresh, "
            "empty store inside this one command, so the change would be lost when it ends; "
            "pass --url redis://HOST:PORT/DB or set JQC_REDIS_URL"
        )
    queue = conn.queue(args.queue)
    if not create and not queue.exists():
        hint = " (pass --create to create it)" if hasattr(args, "create") else ""
        raise CommandRefused(f"no such queue {args.queue!r}{hint}; known queues: {known_queues(conn)}")
    return queue
