"""What :class:`~jqc.engine.queue.Queue` and :class:`~jqc.engine.async_queue.AsyncQueue` share:
the queue's name, clock and operations builder.
"""

from __future__ import annotations

from typing import Any, TypeVar

from jqc.clock import Clock
from jqc.engine.host import Host
from jqc.engine.job import Job, JobOptions
from jqc.engine.operations import (
    QueueOperations,
)
from jqc.errors import InvalidOptionError

__all__ = ["T", "QueueBase"]

T = TypeVar("T")


class QueueBase:
    def __init__(
        self,
        name: str,
        connection: Host,
        *,
        clock: Clock | None = None,
        default_options: JobOptions | None = None,
        max_data_bytes: int = 512 * 1024,
        events_max_len: int = 10_000,
        log_max_lines: int = 1000,
    ) -> None:
        """Open the queue ``name`` on ``connection`` (no I/O happens until the first call).

        ``default_options`` apply to every job added through this object. A job's options are
        merged in one order, whatever form ``add`` gets them in: these defaults, then each field
        of a given :class:`jqc.JobOptions` that differs from ``JobOptions()``'s own default, then
        keyword overrides (which win even when they give the default value, e.g. ``delay=0``).
        ``add_bulk`` merges each ``NewJob``'s or tuple's options the same way.

        ``max_data_bytes`` bounds a job's encoded data; ``events_max_len`` is the approximate
        length the event stream is trimmed to (0 writes no events); ``log_max_lines`` the lines
        kept per job log.
        """
        if not isinstance(connection, Host):
            raise InvalidOptionError(f"connection must come from jqc.connect(), not {connection!r}")
        self.connection = connection
        self.ops = QueueOperations(
            name,
            clock=clock or connection.clock,
            prefix=connection.prefix,
            default_options=default_options,
            max_data_bytes=max_data_bytes,
            events_max_len=events_max_len,
            log_max_lines=log_max_lines,
        )

    @property
    def name(self) -> str:
        return self.ops.name

    @property
    def clock(self) -> Clock:
        return self.ops.clock

    def _bound(self, job: Any) -> Any:
        """``job`` (a :class:`Job`, or None) able to :meth:`Job.wait` through this queue."""
        if isinstance(job, Job):
            object.__setattr__(job, "_source", self)
        return job

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.connection!r})"
