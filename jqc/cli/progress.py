"""The progress bar of ``jqc sim``: virtual time and jobs done, drawn by ``rich`` on stderr.

Only on a terminal: when stderr is piped or captured, or with ``--quiet`` or ``--json -``, nothing
is drawn and no control code is written. The bar is transient (it is cleared once the run ends, so
the report prints below a clean screen); each run of ``--self-check`` gets a bar of its own. The
simulator itself never reads the wall clock: it hands a
:class:`~jqc.sim.progress.SimProgress` to the callback, and ``rich`` does the redrawing (and the
elapsed wall time) here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from jqc.sim.progress import ProgressCallback, SimProgress

from .output import console, is_terminal

__all__ = ["SimBar", "seeds_bar", "sim_bar", "virtual_time"]


def virtual_time(seconds: float) -> str:
    """Virtual seconds as ``1h02m03s`` / ``2m03s`` / ``3.2s``."""
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class SimBar:
    """One bar per simulated run on a live ``rich`` display (see :func:`sim_bar`)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def follow(self, label: str) -> ProgressCallback:
        """A new bar called ``label``, and the ``on_progress`` callback that moves it."""
        progress = self._progress
        task: TaskID = progress.add_task(label, total=None, virtual=virtual_time(0.0), events=0)

        def update(p: SimProgress) -> None:
            progress.update(
                task,
                completed=p.jobs_done,
                total=p.jobs_expected,
                virtual=virtual_time(p.virtual_seconds),
                events=p.events,
            )

        return update


def _bar(stream: TextIO, label: str, tally: str) -> Progress:
    """A transient bar on ``stream``: ``label``, the bar, done/total, ``tally``, time elapsed."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(tally),
        TimeElapsedColumn(),
        console=console(stream),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )


@contextlib.contextmanager
def sim_bar(stream: TextIO, *, enabled: bool = True) -> Iterator[SimBar | None]:
    """A live progress display on ``stream`` while the block runs; None (draw nothing) when
    ``enabled`` is false or ``stream`` is not a terminal."""
    if not enabled or not is_terminal(stream):
        yield None
        return
    progress = _bar(
        stream, "[bold]{task.description}", "jobs done  virtual {task.fields[virtual]}  {task.fields[events]:,} events"
    )
    with progress:
        yield SimBar(progress)


@contextlib.contextmanager
def seeds_bar(stream: TextIO, total: int, *, enabled: bool = True) -> Iterator[Callable[[bool], None] | None]:
    """A bar of seeds done (and how many failed) for ``jqc sim --seeds``; the callable is told each
    seed's verdict as it finishes. None (draw nothing) when not ``enabled`` or not on a terminal."""
    if not enabled or not is_terminal(stream):
        yield None
        return
    progress = _bar(stream, "[bold]seeds", "{task.fields[failed]} failed")
    with progress:
        task = progress.add_task("seeds", total=total, failed=0)
        failed = 0

        def done(ok: bool) -> None:
            nonlocal failed
            failed += not ok
            progress.update(task, advance=1, failed=failed)

        yield done
