"""SIGTERM and SIGINT for a worker's event loop: the first closes gracefully, a second hands
unfinished jobs back at once (see :meth:`jqc.worker.shutdown.Shutdown.on_signal`).

``Worker.run`` owns its event loop and always takes both signals over. ``Worker.serve`` runs in the
application's loop, so it takes a signal over only while nobody else handles it: SIGTERM at its
default (which would kill the process on the spot, leaving jobs active until their locks expire
and the worker listed until its entry expires), SIGINT at Python's default or asyncio's
(``asyncio.run`` cancels the main task on the first Ctrl-C). An application that installed its own
handler keeps it, and closes the worker itself. Either way the previous handlers come back when
the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["SIGNALS", "handling_signals"]

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _unclaimed(sig: signal.Signals, current: Any) -> bool:
    """True when ``current`` (what :func:`signal.getsignal` says) is nobody's own handler."""
    if sig == signal.SIGTERM:
        return current in (signal.SIG_DFL, None)
    if current is signal.default_int_handler or current in (signal.SIG_DFL, None):
        return True
    target = getattr(current, "func", None)  # asyncio.Runner's handler: partial(Runner._on_sigint, ...)
    return getattr(target, "__name__", "") == "_on_sigint"


@contextlib.contextmanager
def handling_signals(
    loop: asyncio.AbstractEventLoop, on_signal: Callable[[signal.Signals], None], *, take_over: bool
) -> Iterator[list[signal.Signals]]:
    """Route SIGTERM and SIGINT to ``on_signal`` on ``loop`` while in the block; yields the ones taken.

    With ``take_over`` both are taken whatever handled them before; without it only those nobody
    handles (see the module docstring). Outside the main thread (or on a loop without signal
    support) none is taken.
    """
    taken: list[tuple[signal.Signals, Any]] = []
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if not take_over and not _unclaimed(sig, previous):
                continue
            try:
                loop.add_signal_handler(sig, on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - no signal support
                continue
            taken.append((sig, previous))
    try:
        yield [sig for sig, _ in taken]
    finally:
        for sig, previous in taken:
            loop.remove_signal_handler(sig)
            if previous is not None:
                with contextlib.suppress(TypeError, ValueError):
                    signal.signal(sig, previous)
