"""Where a run is, for a progress display: :class:`SimProgress`, handed to an ``on_progress``
callback (``Simulator(..., on_progress=...)``).

The simulator calls it before the first event, every ``progress_every`` events and once at the
end (``finished``). It knows only virtual time and counts: how often a display redraws, and any
wall-clock figure it shows, are the caller's business (``jqc sim`` draws a ``rich`` bar on a
terminal's stderr). A callback only looks; the run is the same with or without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "SimProgress"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimProgress:
    """A run's progress: virtual time, events processed, jobs added and finished.

    ``jobs_done`` counts completed, dead-lettered, dropped-by-Redis and lost-with-failover jobs; ``jobs_expected`` is
    how many jobs the run adds in all, once known (at the start for ``jobs=N``, when arrivals end
    for a ``duration`` or a replayed arrival list; None until then). Every field but
    ``jobs_expected`` only grows from one call to the next.
    """

    virtual_seconds: float
    events: int
    jobs_added: int
    jobs_done: int
    jobs_expected: int | None
    finished: bool = False


#: What ``on_progress`` is: called with each :class:`SimProgress`.
ProgressCallback = Callable[[SimProgress], None]
